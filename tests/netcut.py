"""A TCP relay on loopback between one client and the broker, which a test can cut
the way a network fails: silently (a pulled cable, a dead 4G modem: the sockets
stay open and nothing more arrives) or with a reset (both ends get an RST)."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading


class CuttableLink:
    """Listens on ``listen_host``:`port` and relays every connection to ``target``.

    It relays bytes, so TLS passes through it untouched: a client dialling the
    relay checks the broker's certificate against the relay's address.
    """

    def __init__(self, target_host: str, target_port: int, *,
                 listen_host: str = "127.0.0.1") -> None:
        self._target = (target_host, target_port)
        self._listen_host = listen_host
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._silent = False
        self.port = 0

    def start(self) -> "CuttableLink":
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._relay, self._listen_host, 0))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def cut(self, how: str = "silent") -> None:
        """``silent``: drop every byte both ways and black-hole new connections;
        ``reset``: abort every connection with an RST and refuse new ones."""
        if how not in ("silent", "reset"):
            raise ValueError(f"cut how? {how!r}")
        self._call(self._cut(how))

    def close(self) -> None:
        if self._thread.is_alive():
            self._call(self._cut("reset"))
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    async def _cut(self, how: str) -> None:
        self._silent = True
        if how == "reset":
            if self._server is not None:
                self._server.close()
            for writer in self._writers:
                sock = writer.get_extra_info("socket")
                if sock is not None and sock.fileno() != -1:  # linger 0: close sends RST, not FIN
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
            self._writers.clear()

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self._writers.append(client_w)
        if self._silent:
            await self._swallow(client_r)
            return
        try:
            broker_r, broker_w = await asyncio.open_connection(*self._target)
        except OSError:
            client_w.transport.abort()
            return
        self._writers.append(broker_w)
        await asyncio.gather(self._pump(client_r, broker_w), self._pump(broker_r, client_w),
                             return_exceptions=True)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            if not self._silent:
                writer.write(data)
                await writer.drain()
        if not self._silent:  # a real close from one side passes on, before any cut
            writer.close()

    async def _swallow(self, reader: asyncio.StreamReader) -> None:
        while await reader.read(65536):
            pass
