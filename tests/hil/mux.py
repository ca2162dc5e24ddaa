"""TCP connections carried over one byte stream: how the emulated node, which has
no IP network (``-nic none``), reaches the test broker on the host.

In the guest, ``python3 mux.py guest --listen 127.0.0.1:1883 --device
/dev/virtio-ports/rpfleet.mqtt`` accepts the agent's connections and carries
them over the virtio-serial port; on the host, `HostMux` reads QEMU's end of
that port (a unix socket) and opens one TCP connection to the broker per guest
connection. Standard library only: the guest runs it with its own python3.

Frames are ``type (1 byte) | channel (2) | length (2) | payload``:

    OPEN   guest -> host   a new connection on ``channel``
    DATA   both ways       bytes of ``channel``
    CLOSE  both ways       ``channel`` is closed (either end)
    RESET  host -> guest   the host end (re)attached: forget every channel

The stream is reliable and ordered (virtio-serial), so there is no checksum.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import struct
import threading

HEADER = struct.Struct(">BHH")
OPEN, DATA, CLOSE, RESET = 1, 2, 3, 4
MAX_CHUNK = 0xFFFF


class Frames:
    """Writes frames to a stream; every write of one frame is whole (one call)."""

    def __init__(self, writer: asyncio.StreamWriter | "PipeWriter") -> None:
        self._writer = writer

    def send(self, kind: int, channel: int, payload: bytes = b"") -> None:
        for start in range(0, max(len(payload), 1), MAX_CHUNK):
            chunk = payload[start:start + MAX_CHUNK]
            self._writer.write(HEADER.pack(kind, channel, len(chunk)) + chunk)


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
    kind, channel, length = HEADER.unpack(await reader.readexactly(HEADER.size))
    return kind, channel, await reader.readexactly(length) if length else b""


class Channels:
    """The connections of one side, by channel number."""

    def __init__(self, frames: Frames) -> None:
        self.frames = frames
        self.writers: dict[int, asyncio.StreamWriter] = {}

    async def pump(self, channel: int, reader: asyncio.StreamReader) -> None:
        """Carry what ``reader`` gives as DATA frames; when it ends, close both ends
        (no half-close: MQTT has no use for it)."""
        try:
            while data := await reader.read(MAX_CHUNK):
                self.frames.send(DATA, channel, data)
        except (ConnectionError, OSError):
            pass
        writer = self.writers.pop(channel, None)
        if writer is not None:
            writer.close()
            self.frames.send(CLOSE, channel)

    def deliver(self, kind: int, channel: int, payload: bytes) -> None:
        writer = self.writers.get(channel)
        if writer is None:
            return
        if kind == DATA:
            writer.write(payload)
        elif kind == CLOSE:
            del self.writers[channel]
            writer.close()

    def close_all(self) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()


async def run_guest(listen: tuple[str, int], reader: asyncio.StreamReader, frames: Frames,
                    ready: asyncio.Event | None = None) -> None:
    """Accept TCP connections on ``listen`` and carry them over the stream."""
    channels = Channels(frames)
    numbers = itertools.cycle(range(1, 0x10000))

    async def accepted(conn_r: asyncio.StreamReader, conn_w: asyncio.StreamWriter) -> None:
        channel = next(numbers)
        channels.writers[channel] = conn_w
        frames.send(OPEN, channel)
        await channels.pump(channel, conn_r)

    server = await asyncio.start_server(accepted, *listen)
    if ready is not None:
        ready.set()
    async with server:
        while True:
            kind, channel, payload = await read_frame(reader)
            if kind == RESET:
                channels.close_all()
            else:
                channels.deliver(kind, channel, payload)


async def run_host(target: tuple[str, int], reader: asyncio.StreamReader, frames: Frames) -> None:
    """Open a TCP connection to ``target`` for every channel the guest opens."""
    channels = Channels(frames)
    pumps: set[asyncio.Task] = set()
    frames.send(RESET, 0)
    try:
        while True:
            kind, channel, payload = await read_frame(reader)
            if kind != OPEN:
                channels.deliver(kind, channel, payload)
                continue
            try:
                conn_r, conn_w = await asyncio.open_connection(*target)
            except OSError:
                frames.send(CLOSE, channel)
                continue
            channels.writers[channel] = conn_w
            task = asyncio.create_task(channels.pump(channel, conn_r))
            pumps.add(task)
            task.add_done_callback(pumps.discard)
    finally:
        channels.close_all()
        for task in pumps:
            task.cancel()


class HostMux:
    """The host end: attaches to QEMU's chardev socket at ``stream_path`` from a thread."""

    def __init__(self, stream_path: str, target: tuple[str, int]) -> None:
        self.stream_path = stream_path
        self.target = target
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="hil-mux", daemon=True)
        self._task: asyncio.Future | None = None

    def start(self, timeout: float = 30) -> "HostMux":
        self._thread.start()
        attached = asyncio.run_coroutine_threadsafe(self._attach(timeout), self._loop)
        reader, writer = attached.result(timeout + 5)
        self._task = asyncio.run_coroutine_threadsafe(
            run_host(self.target, reader, Frames(writer)), self._loop
        )
        return self

    async def _attach(self, timeout: float):
        deadline = self._loop.time() + timeout
        while True:
            try:
                return await asyncio.open_unix_connection(self.stream_path)
            except OSError:
                if self._loop.time() > deadline:
                    raise
                await asyncio.sleep(0.05)

    def stop(self) -> None:
        if self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)


class PipeWriter:
    """A write-only character device as a frame sink (the guest's virtio-serial port)."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def write(self, data: bytes) -> None:
        if self._fd is None:
            raise ConnectionError("the port was closed")
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._fd, view)
            except BlockingIOError:
                import select

                # A port whose host end went away never becomes writable; poll says HUP.
                poller = select.poll()
                poller.register(self._fd, select.POLLOUT)
                if any(events & select.POLLHUP for _, events in poller.poll()):
                    raise ConnectionError("the host end of the port went away") from None
                continue
            view = view[written:]

    def close(self) -> None:
        """Close the fd; later writes raise ConnectionError, never reach a reused fd number."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


async def _guest_main(listen: tuple[str, int], device: str, retry_s: float = 0.1) -> None:
    """Carry connections while the host end is attached, for as long as the guest runs.

    A virtio-serial port whose host end is not attached (not yet, or not any more)
    reads as end of file at once: the port is then closed and opened again every
    ``retry_s`` until the host is there, and the mux listens only meanwhile. A host
    that attaches sends RESET first, so nothing of an earlier attachment lingers;
    connections accepted before the host went away end at their next write.
    """
    loop = asyncio.get_running_loop()
    while True:
        # A virtio-serial port can be open once only (EBUSY): both directions share one open.
        read_fd = os.open(device, os.O_RDWR | os.O_NONBLOCK)
        try:
            first = os.read(read_fd, MAX_CHUNK)
        except BlockingIOError:  # attached, nothing sent yet
            first = None
        if first == b"":  # no host end: try again
            os.close(read_fd)
            await asyncio.sleep(retry_s)
            continue
        write_fd = os.dup(read_fd)
        writer = PipeWriter(write_fd)
        reader = asyncio.StreamReader()
        if first:
            reader.feed_data(first)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", 0))
        try:
            await run_guest(listen, reader, Frames(writer))
        except asyncio.IncompleteReadError:
            pass  # the host end went away
        finally:
            transport.close()
            writer.close()
        await asyncio.sleep(retry_s)  # the transport lets go of the port meanwhile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="side", required=True)
    guest = sub.add_parser("guest", help="in the emulated node")
    guest.add_argument("--listen", default="127.0.0.1:1883", help="HOST:PORT the agent dials")
    guest.add_argument("--device", default="/dev/virtio-ports/rpfleet.mqtt")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    asyncio.run(_guest_main((host, int(port)), args.device))


if __name__ == "__main__":
    main()
