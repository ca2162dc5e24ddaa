// The site dashboard on a hall TV (see docs/dashboard.md).
//
// Its token comes from the URL's fragment (#key=rpf_...), which no browser sends
// to a server, and goes to the event stream as "Authorization: Bearer": the
// stream is read with fetch, as EventSource cannot send that header. The page
// keeps showing the last state it received; when the stream breaks or falls
// silent for three keepalives it says "Đang kết nối lại…" and reconnects by
// itself, with a short back-off, for as long as it runs.
"use strict";

(function () {
  const WEEKDAYS = ["Chủ nhật", "Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy"];
  const HANOI_MS = 7 * 3600 * 1000; // UTC+7 all year, as the server counts days
  const numbers = new Intl.NumberFormat("vi-VN");

  const fragment = new URLSearchParams(location.hash.slice(1));
  const key = fragment.get("key") || "";
  const keepaliveS = Math.min(60, Math.max(0.2, Number(fragment.get("alive")) || 15));
  const eventsUrl = location.pathname.replace(/\/+$/, "") + "/events?keepalive_s=" + keepaliveS;

  const $ = (id) => document.getElementById(id);
  const state = { connected: false, lastCall: null, shown: null, received: 0, renderedAt: 0 };
  window.rpfleetDashboard = state; // for the browser tests and for a look from DevTools

  function hanoi(date) {
    return new Date(date.getTime() + HANOI_MS); // read with getUTC*
  }
  const two = (n) => String(n).padStart(2, "0");
  const hhmm = (d) => two(d.getUTCHours()) + ":" + two(d.getUTCMinutes());

  function tick() {
    const now = hanoi(new Date());
    $("date").textContent = WEEKDAYS[now.getUTCDay()] + ", " + two(now.getUTCDate()) + "/" +
      two(now.getUTCMonth() + 1) + "/" + now.getUTCFullYear();
    $("time").textContent = hhmm(now);
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function renderCalls(calls) {
    const now = $("now-calling");
    const newest = calls[0];
    if (!newest) {
      now.className = "now empty";
      $("now-ticket").textContent = "—";
      $("now-counter").textContent = "Chưa có lượt gọi nào hôm nay";
    } else {
      const id = newest.ticket + "|" + newest.counter + "|" + newest.called_at;
      $("now-ticket").textContent = newest.ticket;
      $("now-counter").textContent = newest.counter_label;
      if (newest.priority) $("now-counter").appendChild(el("span", "priority", "Ưu tiên"));
      now.className = "now";
      if (state.lastCall !== null && state.lastCall !== id) {
        void now.offsetWidth; // restart the animation for a new call
        now.className = "now fresh";
      }
      state.lastCall = id;
    }
    const list = $("recent");
    list.replaceChildren();
    for (const call of calls.slice(1)) {
      const li = el("li");
      li.append(el("span", "ticket", call.ticket), el("span", "counter", call.counter_label),
                el("span", "when", hhmm(hanoi(new Date(call.called_at)))));
      list.append(li);
    }
    // Only whole rows: a TV has no scroll bar, and half a ticket number misleads.
    while (list.lastChild && list.scrollHeight > list.clientHeight) list.lastChild.remove();
  }

  function renderRatings(shown) {
    const share = $("share");
    if (shown.ratings === 0 || shown.share === null) {
      share.className = "share none";
      share.textContent = "—";
      $("ratings").textContent = "Chưa có lượt đánh giá nào hôm nay";
    } else {
      share.className = "share";
      share.textContent = Math.round(shown.share * 100) + "%";
      $("ratings").textContent = numbers.format(shown.satisfied) + " hài lòng trên " +
        numbers.format(shown.ratings) + " lượt đánh giá";
    }
  }

  function renderCounters(counters) {
    const grid = $("counters");
    grid.replaceChildren();
    let open = 0;
    for (const c of counters) {
      const li = el("li", c.open ? "open" : "closed");
      li.dataset.counter = c.id;
      li.append(el("span", "label", c.label),
                el("span", c.open && c.ticket ? "state" : "state note",
                   c.open ? (c.ticket || "Đang mở") : "Đóng"));
      grid.append(li);
      if (c.open) open += 1;
    }
    $("open-count").textContent = "(" + open + "/" + counters.length + ")";
    grid.classList.remove("dense");
    const box = grid.parentElement;
    if (box.scrollHeight > box.clientHeight) grid.classList.add("dense");
  }

  function render(shown) {
    state.shown = shown;
    state.received += 1;
    state.renderedAt = Date.now();
    document.title = "Bảng thông tin – " + shown.site_name;
    const name = $("site-name");
    if (name.textContent !== shown.site_name) {
      name.textContent = shown.site_name;
      // A long name gets smaller type rather than an ellipsis, down to a floor.
      let vh = 5.2;
      name.style.fontSize = vh + "vh";
      while (name.scrollWidth > name.clientWidth && vh > 3.4) {
        vh -= 0.2;
        name.style.fontSize = vh + "vh";
      }
    }
    renderCalls(shown.calls);
    renderRatings(shown);
    renderCounters(shown.counters);
  }

  function setConnected(connected) {
    state.connected = connected;
    $("link-state").hidden = connected;
    document.body.classList.toggle("offline", !connected);
  }

  function problem(text) {
    $("problem").hidden = !text;
    $("problem").textContent = text || "";
  }

  function handle(block) {
    let event = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue; // a keepalive
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    if (event === "hello") {
      setConnected(true);
      problem("");
    } else if (event === "dashboard") {
      render(JSON.parse(data.join("\n")));
    }
  }

  async function follow() {
    const abort = new AbortController();
    let watchdog = null;
    const alive = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => abort.abort(), 3 * keepaliveS * 1000);
    };
    alive(); // also bounds the connect: a black-holed server must not hang us
    try {
      const answer = await fetch(eventsUrl, {
        headers: { Authorization: "Bearer " + key, Accept: "text/event-stream" },
        cache: "no-store",
        signal: abort.signal,
      });
      if (answer.status === 401 || answer.status === 403) {
        problem("Màn hình này chưa được cấp quyền xem bảng thông tin (mã truy cập không " +
                "hợp lệ hoặc đã bị thu hồi). Vui lòng báo bộ phận CNTT.");
        return false;
      }
      if (!answer.ok || !answer.body) return true;
      const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        alive();
        buffer += value.replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          handle(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (err) {
      // A network error, or the watchdog: reconnect below.
    } finally {
      clearTimeout(watchdog);
      abort.abort();
      setConnected(false);
    }
    return true;
  }

  async function run() {
    let pause = 1000;
    for (;;) {
      const before = state.received;
      const allowed = await follow();
      if (state.received > before) pause = 1000; // it worked for a while: retry soon
      const wait = allowed ? pause : 30000;
      pause = Math.min(pause * 2, 5000);
      await new Promise((resume) => setTimeout(resume, wait * (0.8 + 0.4 * Math.random())));
    }
  }

  tick();
  setInterval(tick, 1000);
  if (!key) {
    problem("Thiếu mã truy cập: địa chỉ của màn hình phải kết thúc bằng #key=… " +
            "(rpfleet server token create --role dashboard). Vui lòng báo bộ phận CNTT.");
  } else {
    run();
  }
})();
