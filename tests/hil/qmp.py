"""A small QMP client (QEMU's JSON control protocol) over a unix socket: commands
wait for their own reply, events are kept for whoever waits for them."""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from typing import Any, Callable


class QmpError(RuntimeError):
    """QEMU refused a command; ``klass`` is its error class (e.g. ``DeviceNotFound``)."""

    def __init__(self, command: str, klass: str, desc: str) -> None:
        super().__init__(f"{command}: {klass}: {desc}")
        self.klass = klass


class Qmp:
    def __init__(self, path: str) -> None:
        self.path = path
        self._sock: socket.socket | None = None
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._replies: dict[int, dict] = {}
        self._events: list[dict] = []
        self._closed = False
        self._reader: threading.Thread | None = None

    def connect(self, timeout: float = 10) -> "Qmp":
        """Connect (QEMU may still be creating the socket), read the greeting, leave
        capabilities negotiation mode."""
        deadline = time.monotonic() + timeout
        while True:
            sock = socket.socket(socket.AF_UNIX)
            try:
                sock.connect(self.path)
                break
            except OSError:
                sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        self._sock = sock
        self._file = sock.makefile("rb")
        greeting = json.loads(self._file.readline())
        if "QMP" not in greeting:
            raise ConnectionError(f"not a QMP greeting: {greeting}")
        self._reader = threading.Thread(target=self._read, name="qmp-reader", daemon=True)
        self._reader.start()
        self.command("qmp_capabilities")
        return self

    def _read(self) -> None:
        try:
            for line in self._file:
                message = json.loads(line)
                with self._cond:
                    if "event" in message:
                        self._events.append(message)
                    elif "id" in message:
                        self._replies[message["id"]] = message
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def command(self, name: str, timeout: float = 30, **arguments: Any) -> Any:
        """Run ``name`` with ``arguments``; its ``return`` value, or QmpError."""
        if self._sock is None:
            raise ConnectionError("QMP is not connected")
        rid = next(self._ids)
        message: dict[str, Any] = {"execute": name, "id": rid}
        if arguments:
            message["arguments"] = arguments
        with self._lock:
            self._sock.sendall(json.dumps(message).encode() + b"\n")
        deadline = time.monotonic() + timeout
        with self._cond:
            while rid not in self._replies:
                if self._closed:
                    raise ConnectionError(f"QMP closed before {name} was answered")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"QMP {name}: no reply within {timeout}s")
                self._cond.wait(left)
            reply = self._replies.pop(rid)
        if "error" in reply:
            raise QmpError(name, reply["error"].get("class", "?"), reply["error"].get("desc", ""))
        return reply.get("return")

    def wait_event(self, name: str, match: Callable[[dict], bool] = lambda _: True,
                   timeout: float = 30) -> dict:
        """The first event called ``name`` (past or future) whose ``data`` satisfies
        ``match``; it is taken, so each event is awaited once."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self._events:
                    if event["event"] == name and match(event.get("data", {})):
                        self._events.remove(event)
                        return event
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    raise TimeoutError(f"no QMP event {name} within {timeout}s")
                self._cond.wait(left)

    def close(self) -> None:
        sock, self._sock = self._sock, None
        hang_up(sock)
        if self._reader is not None:
            self._reader.join(2)


def hang_up(sock: socket.socket | None) -> None:
    """Shut ``sock`` down both ways (waking a thread blocked reading it) and close it."""
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
