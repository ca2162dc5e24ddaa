// The sample kiosk page: take a queue number, or check in an iHanoi booking by its QR code.
// It talks only to the node's device bridge (docs/device-bridge.md), whose address and token
// the kiosk browser injects as window.rpfleet = {bridge, token}.
//
// Numbering: in a real deployment the queue system numbers tickets. This sample numbers them
// itself, per service per day, in the browser's localStorage: each service has its own range
// (Hộ tịch 1001, 1002, ...), and a number is used up only once its ticket has printed.
"use strict";

const FALLBACK = "Vui lòng lấy số tại quầy hướng dẫn";
const SERVICES = [
  { id: "ho-tich", name: "Hộ tịch", detail: "Khai sinh, kết hôn, khai tử, xác nhận tình trạng hôn nhân", base: 1000, counter: "1" },
  { id: "dat-dai", name: "Đất đai", detail: "Đăng ký, cấp giấy chứng nhận quyền sử dụng đất", base: 2000, counter: "2" },
  { id: "kinh-doanh", name: "Đăng ký kinh doanh", detail: "Hộ kinh doanh, doanh nghiệp, hợp tác xã", base: 3000, counter: "3" },
  { id: "chung-thuc", name: "Chứng thực", detail: "Chứng thực bản sao, chữ ký, hợp đồng", base: 4000, counter: "4" },
  { id: "tu-phap", name: "Lý lịch tư pháp", detail: "Cấp phiếu lý lịch tư pháp", base: 5000, counter: "5" },
  { id: "xay-dung", name: "Xây dựng", detail: "Cấp giấy phép xây dựng nhà ở riêng lẻ", base: 6000, counter: "6" },
];
const BOOKING = { id: "lich-hen", name: "Lịch hẹn iHanoi", base: 9000, counter: "7" };
const RESULT_SHOWN_MS = 15000;

const config = window.rpfleet || {};
const bridge = (config.bridge || window.location.origin).replace(/\/$/, "");
const token = config.token || "";
const $ = (id) => document.getElementById(id);
let busy = false;
let backHome = null;

// ---- numbering (the sample's stand-in for a queue system) ----------------------------------

function today() {
  const now = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
}

function issuedToday(service) {
  return Number(window.localStorage.getItem(`rpfleet-sample:${today()}:${service.id}`) || 0);
}

function markIssued(service) {
  window.localStorage.setItem(`rpfleet-sample:${today()}:${service.id}`, issuedToday(service) + 1);
}

// ---- the bridge ----------------------------------------------------------------------------

async function call(path, body) {
  const response = await fetch(bridge + path, {
    method: "POST",
    headers: { "Authorization": `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  try {
    return await response.json();
  } catch (error) {
    return { error: "bad-answer", message: `HTTP ${response.status}` };
  }
}

async function printTicket(service, qr) {
  const waiting = issuedToday(service);  // nobody is called in the sample: all still wait
  const ticket = {
    number: String(service.base + waiting + 1),
    service: service.name,
    counter: service.counter,
    waiting_ahead: waiting,
    site_name: "Trung tâm Phục vụ hành chính công Hà Nội",
  };
  if (qr) ticket.qr = qr;
  let result;
  try {
    result = await call("/v1/tickets", ticket);
  } catch (error) {
    result = { error: "no-bridge", message: String(error) };
  }
  if (result.printed === true) markIssued(service);
  return { ticket, result };
}

// ---- screens -------------------------------------------------------------------------------

function showHome() {
  clearTimeout(backHome);
  $("result").hidden = true;
  $("booking").hidden = true;
  $("home").hidden = false;
  setBusy(false);
}

function setBusy(value) {
  busy = value;
  for (const button of document.querySelectorAll("#services button")) button.disabled = value;
}

function showPrinting(service) {
  $("home").hidden = true;
  $("result").hidden = false;
  $("result").className = "result";
  $("result-label").textContent = "Đang in phiếu…";
  $("result-number").textContent = "";
  $("result-service").textContent = service.name;
  $("result-message").textContent = "";
}

function showOutcome(service, ticket, result) {
  const box = $("result");
  if (result.printed === true) {
    box.className = "result printed";
    $("result-label").textContent = "Số thứ tự của bạn";
    $("result-number").textContent = ticket.number;
    $("result-service").textContent = `${service.name} · Quầy ${ticket.counter}`;
    $("result-message").textContent = "Mời bạn nhận phiếu bên dưới";
  } else {
    box.className = "result failed";
    $("result-label").textContent = "Không in được phiếu";
    $("result-number").textContent = "";
    $("result-service").textContent = service.name;
    $("result-message").textContent = result.fallback || FALLBACK;
  }
  clearTimeout(backHome);
  backHome = setTimeout(showHome, RESULT_SHOWN_MS);
}

async function takeNumber(service, qr) {
  if (busy) return;
  setBusy(true);
  showPrinting(service);
  const { ticket, result } = await printTicket(service, qr);
  showOutcome(service, ticket, result);
  setBusy(false);
}

// ---- iHanoi bookings -----------------------------------------------------------------------

function dayOf(yyyymmdd) {
  return `${yyyymmdd.slice(6, 8)}/${yyyymmdd.slice(4, 6)}/${yyyymmdd.slice(0, 4)}`;
}

async function checkIn(scan) {
  if (busy) return;
  const fields = scan.fields || {};
  if (scan.code_kind !== "ihanoi-booking" || !fields.date) {
    showNotice("Mã này không phải lịch hẹn iHanoi", "Vui lòng quét mã QR lịch hẹn trong ứng dụng iHanoi");
    return;
  }
  $("booking").hidden = false;
  $("booking-title").textContent = `Lịch hẹn ${scan.code}`;
  if (fields.date !== today().replaceAll("-", "")) {
    $("booking").className = "booking wrong-day";
    $("booking-detail").textContent = `Ngày hẹn: ${dayOf(fields.date)} — không phải hôm nay`;
    showNotice("Lịch hẹn không đúng ngày", FALLBACK, true);
    return;
  }
  $("booking").className = "booking";
  $("booking-detail").textContent = `Ngày hẹn: ${dayOf(fields.date)} · Đã xác nhận`;
  await takeNumber(BOOKING, scan.code);
  $("booking").hidden = false;
}

function showNotice(label, message, keepBooking) {
  $("home").hidden = true;
  $("result").hidden = false;
  if (!keepBooking) $("booking").hidden = true;
  $("result").className = "result failed";
  $("result-label").textContent = label;
  $("result-number").textContent = "";
  $("result-service").textContent = "";
  $("result-message").textContent = message;
  clearTimeout(backHome);
  backHome = setTimeout(showHome, RESULT_SHOWN_MS);
}

// ---- live events ---------------------------------------------------------------------------

function showStatus(status) {
  const printer = (status.printers || [])[0];
  const pill = $("printer");
  let text = "Máy in: không có";
  let good = false;
  if (printer) {
    const s = printer.status;
    if (!s.present) text = "Máy in: mất kết nối";
    else if (s.paper === "out") text = "Máy in: hết giấy";
    else if (s.cover_open) text = "Máy in: nắp đang mở";
    else if (!s.online) text = "Máy in: chưa sẵn sàng";
    else if (s.paper === "near-end") { text = "Máy in: sắp hết giấy"; good = true; }
    else { text = "Máy in: sẵn sàng"; good = true; }
  }
  pill.textContent = text;
  pill.className = `pill ${good ? "good" : "bad"}`;
}

function setConnection(text, good) {
  $("connection").textContent = text;
  $("connection").className = `pill ${good ? "good" : "bad"}`;
}

function listen(delay = 1000) {
  const socket = new WebSocket(bridge.replace(/^http/, "ws") + "/v1/events");
  socket.onopen = () => socket.send(JSON.stringify({ type: "hello", token }));
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "ready") {
      delay = 1000;
      setConnection("Thiết bị: đã kết nối", true);
      showStatus(message.status);
    } else if (message.type === "status") {
      showStatus(message.status);
    } else if (message.type === "scan") {
      checkIn(message);
    } else if (message.type === "error") {
      setConnection("Thiết bị: từ chối kết nối", false);
    }
  };
  socket.onclose = () => {
    setConnection("Đang kết nối lại thiết bị…", false);
    setTimeout(() => listen(Math.min(delay * 2, 30000)), delay);
  };
}

// ---- start ---------------------------------------------------------------------------------

function tick() {
  const now = new Date();
  $("clock").textContent = now.toLocaleTimeString("vi-VN", { hour: "2-digit", minute: "2-digit" });
}

function start() {
  for (const service of SERVICES) {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.service = service.id;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = service.name;
    const detail = document.createElement("span");
    detail.className = "detail";
    detail.textContent = service.detail;
    button.append(name, detail);
    button.addEventListener("click", () => takeNumber(service));
    $("services").append(button);
  }
  $("done").addEventListener("click", showHome);
  tick();
  setInterval(tick, 10000);
  if (!token) {
    setConnection("Thiết bị: chưa có mã kết nối", false);
    return;
  }
  listen();
}

start();
