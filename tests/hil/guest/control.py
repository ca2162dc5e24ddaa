"""The emulated node's control program (tests/hil): the host's rig drives the guest
through it over the virtio-serial port ``rpfleet.control``. Standard library only:
it runs with the guest's own python3, before and beside the agent.

The protocol is one JSON object per line. The guest speaks first, once, when it
is ready (udev has settled, the MQTT mux listens): ``{"ready": true, ...}``.
Then every request ``{"id": N, "op": ..., ...}`` gets one reply carrying its
``id``: ``{"id": N, "ok": true, ...}`` or ``{"id": N, "ok": false, "error": ...}``.
Requests run in threads of their own, so a slow command does not hold the rest.

ops:
  write         path, content (text) or content_b64, mode (int, default 0o644)
  read          path -> content (text) and content_b64
  run           cmd (shell), timeout (s, default 60) -> rc, stdout, stderr
  agent_start   config, log (default /var/log/rpfleet-agent.log), args (list) -> pid
  agent_signal  signal (name, default SIGTERM; null: none), wait (s, default 10) -> exited, rc
  agent_status  -> running, pid, rc
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

PORT_NAME = "rpfleet.control"
MQTT_PORT_NAME = "rpfleet.mqtt"
MQTT_LISTEN = ("127.0.0.1", 1883)
AGENT = "/opt/rpfleet/venv/bin/rpfleet"
AGENT_LOG = "/var/log/rpfleet-agent.log"


def log(message: str) -> None:
    print(f"hil-control: {message} at {uptime():.2f}s", file=sys.stderr, flush=True)


def uptime() -> float:
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


def virtio_port(name: str, timeout: float = 30) -> str:
    """The /dev node of the virtio-serial port called ``name`` (sysfs: no wait for udev)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            for vport in os.listdir("/sys/class/virtio-ports"):
                with open(f"/sys/class/virtio-ports/{vport}/name") as f:
                    if f.read().strip() == name:
                        path = f"/dev/{vport}"
                        if os.path.exists(path):
                            return path
        except FileNotFoundError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"no virtio-serial port {name}")
        time.sleep(0.05)


def listening(addr: tuple[str, int]) -> bool:
    """Something listens on ``addr`` (read from /proc: a test connection would reach the broker)."""
    host = socket.inet_aton(addr[0])[::-1].hex().upper()
    wanted = f"{host}:{addr[1]:04X}"
    with open("/proc/net/tcp") as f:
        return any(line.split()[1] == wanted and line.split()[3] == "0A" for line in list(f)[1:])


class Agent:
    """The one agent process the host may start, signal and watch."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.lock = threading.Lock()

    def start(self, config: str, log_path: str = AGENT_LOG, args: list[str] | None = None) -> dict:
        with self.lock:
            if self.process is not None and self.process.poll() is None:
                raise RuntimeError(f"the agent runs already (pid {self.process.pid})")
            with open(log_path, "ab") as out:
                self.process = subprocess.Popen(
                    [AGENT, "agent", "run", "--config", config, *(args or [])],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            return {"pid": self.process.pid}

    def signal(self, name: str | None = "SIGTERM", wait: float = 10) -> dict:
        """Send ``name`` (None: none) and wait up to ``wait`` s for the agent to end."""
        process = self.process
        if process is None:
            raise RuntimeError("the agent was never started")
        if name is not None and process.poll() is None:
            process.send_signal(getattr(signal, name))
        try:
            rc = process.wait(wait) if wait else process.poll()
        except subprocess.TimeoutExpired:
            rc = None
        return {"exited": rc is not None, "rc": rc}

    def status(self) -> dict:
        process = self.process
        if process is None:
            return {"running": False, "pid": None, "rc": None}
        rc = process.poll()
        return {"running": rc is None, "pid": process.pid, "rc": rc}


class Control:
    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR)
        self.out_lock = threading.Lock()
        self.agent = Agent()

    def send(self, message: dict) -> None:
        data = (json.dumps(message) + "\n").encode()
        with self.out_lock:
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view):]

    def lines(self):
        buffer = b""
        while True:
            chunk = os.read(self.fd, 65536)
            if not chunk:  # the host is not attached (yet, or any more)
                time.sleep(0.1)
                continue
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.strip():
                    yield line

    def serve(self) -> None:
        for line in self.lines():
            try:
                request = json.loads(line)
            except ValueError as exc:
                self.send({"id": None, "ok": False, "error": f"bad request: {exc}"})
                continue
            threading.Thread(target=self.answer, args=(request,), daemon=True).start()

    def answer(self, request: dict) -> None:
        rid = request.get("id")
        try:
            handler = getattr(self, f"op_{request.get('op')}", None)
            if handler is None:
                raise ValueError(f"unknown op {request.get('op')!r}")
            args = {k: v for k, v in request.items() if k not in ("id", "op")}
            reply = {"id": rid, "ok": True, **handler(**args)}
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the host
            reply = {"id": rid, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
        self.send(reply)

    def op_write(self, path: str, content: str | None = None, content_b64: str | None = None,
                 mode: int = 0o644) -> dict:
        data = base64.b64decode(content_b64) if content_b64 is not None else (content or "").encode()
        os.makedirs(os.path.dirname(path) or "/", exist_ok=True)
        tmp = f"{path}.hil-tmp"
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        return {"bytes": len(data)}

    def op_read(self, path: str) -> dict:
        with open(path, "rb") as f:
            data = f.read()
        return {"content": data.decode("utf-8", "replace"),
                "content_b64": base64.b64encode(data).decode()}

    def op_run(self, cmd: str, timeout: float = 60) -> dict:
        # A session of its own: on timeout the whole group goes, not just the shell
        # (a child left holding the pipes would keep the reply waiting).
        proc = subprocess.Popen(cmd, shell=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
            rc, timed_out = proc.returncode, False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            rc, timed_out = None, True
        return {"rc": rc, "timed_out": timed_out,
                "stdout": out.decode("utf-8", "replace"), "stderr": err.decode("utf-8", "replace")}

    def op_agent_start(self, config: str, log: str = AGENT_LOG, args: list[str] | None = None) -> dict:
        return self.agent.start(config, log, args)

    def op_agent_signal(self, signal: str | None = "SIGTERM", wait: float = 10) -> dict:
        return self.agent.signal(signal, wait)

    def op_agent_status(self) -> dict:
        return self.agent.status()


def loopback_up() -> None:
    """``ip link set lo up``: the node has no network but loopback (the kernel gives it
    127.0.0.1 on the way up), where the mux listens and paho makes its socket pair."""
    import fcntl
    import struct

    siocsifflags, iff_up = 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        fcntl.ioctl(sock, siocsifflags, struct.pack("16sH22x", b"lo", iff_up))


def start_mux() -> subprocess.Popen:
    device = virtio_port(MQTT_PORT_NAME)
    return subprocess.Popen(
        [sys.executable, "/opt/hil/mux.py", "guest", "--listen", "%s:%d" % MQTT_LISTEN,
         "--device", device],
        stdin=subprocess.DEVNULL,
    )


def main() -> None:
    control = Control(virtio_port(PORT_NAME))
    log("control port open")
    loopback_up()
    mux = start_mux()
    while not os.path.exists("/run/hil-udev-triggered"):  # /init triggers udev meanwhile
        time.sleep(0.02)
    settled = subprocess.run(["udevadm", "settle", "--timeout=60"]).returncode == 0
    log(f"udev settled ({settled})")
    deadline = time.monotonic() + 60
    while not listening(MQTT_LISTEN):
        if mux.poll() is not None:
            raise SystemExit(f"the MQTT mux exited ({mux.returncode})")
        if time.monotonic() > deadline:
            raise SystemExit("the MQTT mux does not listen")
        time.sleep(0.05)
    log("mux listens")
    with open("/proc/sys/kernel/osrelease") as f:
        kernel = f.read().strip()
    control.send({"ready": True, "uptime": uptime(), "kernel": kernel, "udev_settled": settled})
    control.serve()


if __name__ == "__main__":
    main()
