"""The emulated node: Debian's kernel and the agent under QEMU (TCG, no IP network),
with USB keyboards, keypads and serial devices that the test plugs, presses and
feeds from the host.

A `GuestNode` owns one QEMU process. ``start()`` boots it paused, attaches every
host end (QMP, the control and MQTT channels, the USB serial lines), lets it run
and returns once the guest's control program says it is ready; ``stop()`` always
ends QEMU, gently (QMP ``quit``, so that an audio WAV is complete) then by force.

Keyboards: each ``usb-kbd`` sits on a display head of its own (``-device VGA`` and
``secondary-vga``), and keys are sent with QMP ``input-send-event`` naming that
head; that is how QEMU routes input to one keyboard among several.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rpfleet import process
from tests.hil.image import Image
from tests.hil.keys import SHIFT, key_events, qcode, strokes
from tests.hil.qmp import Qmp, QmpError, hang_up

QEMU = "qemu-system-x86_64"
KERNEL_ARGS = "console=ttyS0 quiet panic=-1 tsc=reliable"
AGENT_LOG = "/var/log/rpfleet-agent.log"
# Time given to the guest to take each key event from QEMU's HID queue, which holds
# 16 and drops the rest (one USB report per event; the guest needs well under 1 ms
# each when it gets the CPU). A drop is detected and fails the test: see _send_keys.
KEY_PACE_S = 0.015


class GuestError(RuntimeError):
    """The guest's control program could not do what was asked."""


class BootFailed(RuntimeError):
    """QEMU did not start, or the guest did not say it is ready in time."""


class KeysDropped(RuntimeError):
    """QEMU dropped key events: what the guest saw is not what the test typed."""


@dataclass(frozen=True)
class RunResult:
    rc: int | None
    stdout: str
    stderr: str
    timed_out: bool = False


class Control:
    """The host end of the ``rpfleet.control`` virtio-serial port (line-based JSON)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._sock: socket.socket | None = None
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._replies: dict[int, dict] = {}
        self._ready: dict | None = None
        self._closed = False
        self._send_lock = threading.Lock()

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(self.path)
        self._sock = sock
        threading.Thread(target=self._read, args=(sock.makefile("rb"),), name="hil-control",
                         daemon=True).start()

    def _read(self, lines) -> None:
        try:
            for line in lines:
                message = json.loads(line)
                with self._cond:
                    if message.get("ready"):
                        self._ready = message
                    elif message.get("id") is not None:
                        self._replies[message["id"]] = message
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def wait_ready(self, timeout: float, alive=lambda: True) -> dict:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._ready is None:
                left = deadline - time.monotonic()
                if self._closed or left <= 0 or not alive():
                    raise TimeoutError(f"the guest did not say it is ready within {timeout}s")
                self._cond.wait(min(left, 0.5))
            return self._ready

    def call(self, op: str, reply_timeout: float = 30, **args: Any) -> dict:
        """Send one request and wait for its reply; GuestError when the guest failed it."""
        if self._sock is None:
            raise ConnectionError("the control channel is not connected")
        rid = next(self._ids)
        with self._send_lock:
            self._sock.sendall(json.dumps({"id": rid, "op": op, **args}).encode() + b"\n")
        deadline = time.monotonic() + reply_timeout
        with self._cond:
            while rid not in self._replies:
                left = deadline - time.monotonic()
                if self._closed:
                    raise ConnectionError(f"the control channel closed before {op} was answered")
                if left <= 0:
                    raise TimeoutError(f"guest {op}: no reply within {reply_timeout}s")
                self._cond.wait(left)
            reply = self._replies.pop(rid)
        if not reply.pop("ok"):
            raise GuestError(f"guest {op}: {reply.get('error')}")
        reply.pop("id", None)
        return reply

    def close(self) -> None:
        sock, self._sock = self._sock, None
        hang_up(sock)


class SerialLine:
    """The far end of an emulated USB serial adapter (QEMU's ``usb-serial``, an FTDI):
    what the test writes, the guest reads from its ttyUSB, and the other way round."""

    def __init__(self, id: str, serial: str, path: str) -> None:
        self.id, self.serial, self.path = id, serial, path
        self._sock: socket.socket | None = None
        self._received = bytearray()
        self._cond = threading.Condition()

    @property
    def by_id(self) -> str:
        """The guest's /dev/serial/by-id/ link of this adapter."""
        return f"/dev/serial/by-id/usb-QEMU_QEMU_USB_SERIAL_{self.serial}-if00-port0"

    def connect(self) -> None:
        """Attach the host end; QEMU shows the adapter to the guest only from then on."""
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(self.path)
        self._sock = sock
        threading.Thread(target=self._read, name=f"hil-serial-{self.id}", daemon=True).start()

    def _read(self) -> None:
        sock = self._sock
        while sock is not None:
            try:
                data = sock.recv(4096)
            except OSError:
                break
            if not data:
                break
            with self._cond:
                self._received += data
                self._cond.notify_all()

    def send(self, data: bytes) -> None:
        if self._sock is None:
            raise ConnectionError(f"serial line {self.id} is not connected")
        self._sock.sendall(data)

    def received(self) -> bytes:
        with self._cond:
            return bytes(self._received)

    def wait_for(self, data: bytes, timeout: float = 20) -> bytes:
        """Everything received so far, once it holds ``data``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while data not in self._received:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.id}: {data!r} not received (got {bytes(self._received)!r})")
                self._cond.wait(left)
            return bytes(self._received)

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


@dataclass
class _Keyboard:
    id: str
    serial: str
    head: str


@dataclass
class GuestNode:
    """One emulated node. Constructing it stores options only; `start` boots.

    ``workdir`` receives the console log (and the audio WAV); sockets live in a
    short temporary directory of their own (unix socket paths are limited to 107
    bytes). ``broker`` is the (host, port) the guest's MQTT connections are
    carried to; None: no MQTT relay. ``heads``: how many keyboards can be
    plugged at once. ``audio``: capture the guest's sound card (``intel-hda``
    with ``hda-output``) into ``workdir/audio.wav``, complete once stopped.
    """

    image: Image
    workdir: Path
    broker: tuple[str, int] | None = None
    heads: int = 4
    memory_mb: int = 1024
    audio: bool = False
    boot_timeout: float = 120
    boot_seconds: float | None = field(default=None, init=False)
    ready: dict | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        self._process: subprocess.Popen | None = None
        self._sockets: Path | None = None
        self._qmp: Qmp | None = None
        self._control: Control | None = None
        self._mux = None
        self._idle_mqtt: socket.socket | None = None
        self._serial: dict[str, SerialLine] = {}
        self._keyboards: dict[str, _Keyboard] = {}
        self._ids = itertools.count(1)

    # --- life ----------------------------------------------------------------------

    @property
    def console_path(self) -> Path:
        return self.workdir / "console.log"

    @property
    def _trace_path(self) -> Path:
        return self.workdir / "qemu-trace.log"

    @property
    def audio_path(self) -> Path:
        return self.workdir / "audio.wav"

    def console_log(self) -> str:
        """What the guest printed on its serial console (kernel, /init, control)."""
        try:
            return self.console_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self) -> "GuestNode":
        """Boot and wait for the guest's ready handshake (never a fixed sleep).

        Serial lines plugged before this are on the command line and attached
        before the guest runs. Raises BootFailed (with QEMU's output and the
        console's tail) when the guest is not ready within ``boot_timeout``.
        """
        started = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._sockets = Path(tempfile.mkdtemp(prefix="hil-", dir="/tmp"))
        try:
            with open(self.workdir / "qemu.log", "wb") as qemu_log:
                # Dies with the test process, even a kill -9 of it.
                self._process = process.spawn(self._command(), stdin=subprocess.DEVNULL,
                                              stdout=qemu_log, stderr=subprocess.STDOUT)
            self._qmp = Qmp(str(self._sockets / "qmp.sock")).connect()
            self._control = Control(str(self._sockets / "control.sock"))
            self._control.connect()
            # The guest's mux ends when it reads EOF, which a port with no host end gives:
            # without a broker, a socket that carries nothing holds the port open.
            if self.broker is not None:
                from tests.hil.mux import HostMux

                self._mux = HostMux(str(self._sockets / "mqtt.sock"), self.broker).start()
            else:
                self._idle_mqtt = socket.socket(socket.AF_UNIX)
                self._idle_mqtt.connect(str(self._sockets / "mqtt.sock"))
            for line in self._serial.values():
                line.connect()
            self._qmp.command("cont")
            self.ready = self._control.wait_ready(self.boot_timeout, alive=self._alive)
        except BaseException as exc:
            self.stop()
            if not isinstance(exc, Exception):
                raise
            console = "\n".join(self.console_log().splitlines()[-30:])
            qemu = (self.workdir / "qemu.log").read_text(errors="replace")[-2000:]
            raise BootFailed(f"{type(exc).__name__}: {exc}\n--- qemu ---\n{qemu}"
                             f"\n--- guest console (tail) ---\n{console}") from exc
        self.boot_seconds = time.monotonic() - started
        return self

    def _alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _command(self) -> list[str]:
        sockets = self._sockets
        cmd = [
            QEMU, "-nodefaults", "-no-user-config", "-machine", "q35", "-accel", "tcg",
            "-m", str(self.memory_mb), "-smp", "1", "-display", "none", "-nic", "none",
            "-no-reboot", "-S",
            "-kernel", str(self.image.kernel), "-initrd", str(self.image.initrd),
            "-append", KERNEL_ARGS,
            "-serial", f"file:{self.console_path}",
            # QEMU says when a keyboard's queue overflowed: _send_keys fails loudly on it.
            "-trace", f"enable=hid_kbd_queue_full,file={self._trace_path}",
            "-qmp", f"unix:{sockets / 'qmp.sock'},server=on,wait=off",
            "-device", "qemu-xhci,id=xhci,p2=8,p3=4",
            "-device", "virtio-serial-pci,id=vserial",
        ]
        for n in range(self.heads):
            cmd += ["-device", f"{'VGA' if n == 0 else 'secondary-vga'},id=head{n}"]
        for name in ("control", "mqtt"):
            cmd += [
                "-chardev", f"socket,id={name},path={sockets / (name + '.sock')},server=on,wait=off",
                "-device", f"virtserialport,bus=vserial.0,chardev={name},name=rpfleet.{name}",
            ]
        for line in self._serial.values():
            line.path = str(sockets / f"{line.id}.sock")
            cmd += ["-chardev", f"socket,id=chr-{line.id},path={line.path},server=on,wait=off",
                    "-device", f"usb-serial,id={line.id},bus=xhci.0,chardev=chr-{line.id},"
                               f"serial={line.serial}"]
        if self.audio:
            cmd += ["-audiodev", f"wav,id=snd,path={self.audio_path}",
                    "-device", "intel-hda,id=hda", "-device", "hda-output,audiodev=snd"]
        return cmd

    def stop(self) -> None:
        """End QEMU (QMP quit, then SIGKILL after 5 s) and every host end. Safe twice."""
        qemu, self._process = self._process, None
        if qemu is not None and qemu.poll() is None:
            try:
                if self._qmp is not None:
                    self._qmp.command("quit", timeout=5)
            except (OSError, TimeoutError, QmpError):
                pass
            try:
                qemu.wait(5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(qemu.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                qemu.wait()
        if self._mux is not None:
            self._mux.stop()
            self._mux = None
        if self._idle_mqtt is not None:
            self._idle_mqtt.close()
            self._idle_mqtt = None
        for closer in (self._control, self._qmp, *self._serial.values()):
            if closer is not None:
                closer.close()
        self._control = self._qmp = None
        if self._sockets is not None:
            shutil.rmtree(self._sockets, ignore_errors=True)
            self._sockets = None

    def __enter__(self) -> "GuestNode":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- USB keyboards ---------------------------------------------------------------

    def plug_keypad(self, serial: str, id: str | None = None) -> str:
        """Hot-plug a USB numeric keypad (a ``usb-kbd``: the same HID boot keyboard
        a cheap pad is) with USB serial number ``serial``; returns its device id."""
        return self._plug_keyboard(serial, id or f"keypad{next(self._ids)}")

    def plug_keyboard(self, serial: str, id: str | None = None) -> str:
        """Hot-plug a USB keyboard (or keyboard-wedge scanner); returns its device id."""
        return self._plug_keyboard(serial, id or f"kbd{next(self._ids)}")

    def _plug_keyboard(self, serial: str, id: str) -> str:
        taken = {k.head for k in self._keyboards.values()}
        free = [f"head{n}" for n in range(self.heads) if f"head{n}" not in taken]
        if not free:
            raise RuntimeError(f"all {self.heads} display heads have a keyboard: start with more heads")
        self._qmp_command("device_add", driver="usb-kbd", id=id, bus="xhci.0", serial=serial,
                          display=free[0])
        self._keyboards[id] = _Keyboard(id, serial, free[0])
        return id

    def unplug(self, device_id: str, timeout: float = 30) -> None:
        """Pull a USB device out; returns once QEMU has removed it."""
        self._qmp_command("device_del", id=device_id)
        self._qmp.wait_event("DEVICE_DELETED", lambda data: data.get("device") == device_id, timeout)
        self._keyboards.pop(device_id, None)
        line = self._serial.pop(device_id, None)
        if line is not None:
            line.close()
            try:
                self._qmp_command("chardev-remove", id=f"chr-{device_id}")
            except QmpError:
                pass

    def press(self, device_id: str, key: str, *, shift: bool = False) -> None:
        """Press and release ``key`` (a qcode such as ``kp_1``, or an evdev name such as
        ``KEY_KP1``) on that keyboard only."""
        code = qcode(key)
        events = [key_events(code, True), key_events(code, False)]
        if shift:
            events = [key_events(SHIFT, True), *events, key_events(SHIFT, False)]
        self._send_keys(device_id, events)

    def type_text(self, device_id: str, text: str, enter: bool = False) -> None:
        """Type ``text`` on a US layout (shift held for capitals and symbols), as a
        keyboard-wedge scanner does; ``enter`` ends it with Return."""
        for code, shifted in strokes(text + ("\n" if enter else "")):
            self.press(device_id, code, shift=shifted)

    def _send_keys(self, device_id: str, events: list[dict]) -> None:
        keyboard = self._keyboards.get(device_id)
        if keyboard is None:
            raise KeyError(f"no keyboard {device_id} is plugged")
        self._qmp_command("input-send-event", device=keyboard.head, head=0, events=events)
        time.sleep(KEY_PACE_S * len(events))
        if self._trace_path.exists() and self._trace_path.stat().st_size:
            raise KeysDropped(
                "QEMU's keyboard queue overflowed: the guest did not take the keys in time "
                f"(KEY_PACE_S={KEY_PACE_S}); see {self._trace_path}"
            )

    # --- USB serial ------------------------------------------------------------------

    def plug_serial(self, serial: str, id: str | None = None) -> SerialLine:
        """A USB serial adapter (FTDI) with USB serial number ``serial``, its far end
        returned. Before `start` it is plugged at boot; after, hot-plugged."""
        id = id or f"ser{next(self._ids)}"
        if self._process is None:  # on the command line; its socket path comes with start()
            line = self._serial[id] = SerialLine(id, serial, "")
            return line
        line = SerialLine(id, serial, str(self._sockets / f"{id}.sock"))
        self._qmp_command("chardev-add", id=f"chr-{id}", backend={
            "type": "socket", "data": {
                "addr": {"type": "unix", "data": {"path": line.path}},
                "server": True, "wait": False,
            },
        })
        self._qmp_command("device_add", driver="usb-serial", id=id, bus="xhci.0",
                          chardev=f"chr-{id}", serial=serial)
        line.connect()
        self._serial[id] = line
        return line

    def serial_line(self, device_id: str) -> SerialLine:
        """The far end of a plugged USB serial adapter."""
        return self._serial[device_id]

    def send_serial(self, device_id: str, data: bytes) -> None:
        self._serial[device_id].send(data)

    # --- control ---------------------------------------------------------------------

    def write_file(self, path: str, content: str | bytes, mode: int = 0o644) -> None:
        """Write ``content`` to ``path`` in the guest (atomically, parents made)."""
        if isinstance(content, bytes):
            self._call("write", path=path, content_b64=base64.b64encode(content).decode(), mode=mode)
        else:
            self._call("write", path=path, content=content, mode=mode)

    def read_file(self, path: str) -> str:
        return self._call("read", path=path)["content"]

    def read_bytes(self, path: str) -> bytes:
        return base64.b64decode(self._call("read", path=path)["content_b64"])

    def run(self, cmd: str, timeout: float = 60) -> RunResult:
        """Run a shell command in the guest; its exit code and output."""
        reply = self._call("run", reply_timeout=timeout + 10, cmd=cmd, timeout=timeout)
        return RunResult(reply["rc"], reply["stdout"], reply["stderr"], reply["timed_out"])

    def start_agent(self, config: str, log: str = AGENT_LOG, args: list[str] | None = None) -> int:
        """``rpfleet agent run --config CONFIG`` in the guest, output to ``log``; its pid."""
        return self._call("agent_start", config=config, log=log, args=args or [])["pid"]

    def signal_agent(self, name: str = "SIGTERM", wait: float = 10) -> int | None:
        """Send the agent a signal and wait up to ``wait`` s; its exit code, None if it runs on."""
        return self._call("agent_signal", reply_timeout=wait + 10, signal=name, wait=wait)["rc"]

    def wait_agent(self, timeout: float = 30) -> int | None:
        """Wait up to ``timeout`` s for the agent to end by itself; its exit code, None if it runs on."""
        return self._call("agent_signal", reply_timeout=timeout + 10, signal=None, wait=timeout)["rc"]

    def kill_agent(self) -> int | None:
        return self.signal_agent("SIGKILL")

    def agent_status(self) -> dict:
        return self._call("agent_status")

    def agent_log(self) -> str:
        try:
            return self.read_file(AGENT_LOG)
        except (GuestError, OSError, TimeoutError):
            return ""

    def _call(self, op: str, reply_timeout: float = 30, **args: Any) -> dict:
        if self._control is None:
            raise ConnectionError("the guest is not running")
        return self._control.call(op, reply_timeout=reply_timeout, **args)

    def _qmp_command(self, name: str, **args: Any) -> Any:
        if self._qmp is None:
            raise ConnectionError("the guest is not running")
        return self._qmp.command(name, **args)
