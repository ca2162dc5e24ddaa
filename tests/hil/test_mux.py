"""The mux alone, over a socket pair: what the guest and host ends of the
virtio-serial port do, without QEMU."""

from __future__ import annotations

import asyncio
import socket

import pytest

from tests.hil.mux import Frames, run_guest, run_host


async def _echo_server() -> tuple[asyncio.AbstractServer, int]:
    async def echo(reader, writer):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _linked(target_port: int):
    """A guest end listening on a free port and a host end dialling ``target_port``."""
    guest_sock, host_sock = socket.socketpair()
    g_reader, g_writer = await asyncio.open_connection(sock=guest_sock)
    h_reader, h_writer = await asyncio.open_connection(sock=host_sock)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        listen_port = probe.getsockname()[1]
    ready = asyncio.Event()
    tasks = [
        asyncio.create_task(run_guest(("127.0.0.1", listen_port), g_reader, Frames(g_writer), ready)),
        asyncio.create_task(run_host(("127.0.0.1", target_port), h_reader, Frames(h_writer))),
    ]
    await asyncio.wait_for(ready.wait(), 5)
    return listen_port, tasks


async def test_connections_are_carried_both_ways_and_apart():
    server, port = await _echo_server()
    listen, tasks = await _linked(port)
    try:
        clients = [await asyncio.open_connection("127.0.0.1", listen) for _ in range(3)]
        for n, (_, writer) in enumerate(clients):
            writer.write(f"client {n}\n".encode())
        for n, (reader, _) in enumerate(clients):
            assert await asyncio.wait_for(reader.readline(), 5) == f"client {n}\n".encode()
        big = bytes(range(256)) * 1024  # 256 KiB: several frames
        reader, writer = clients[0]
        writer.write(big)
        assert await asyncio.wait_for(reader.readexactly(len(big)), 10) == big
    finally:
        for task in tasks:
            task.cancel()
        server.close()


async def test_a_close_at_either_end_reaches_the_other():
    seen_eof = asyncio.Event()

    async def hang_up_on_bye(reader, writer):
        line = await reader.readline()
        if line == b"bye\n":
            writer.close()  # the broker end hangs up
            return
        await reader.read()  # wait for the client to hang up
        seen_eof.set()
        writer.close()

    server = await asyncio.start_server(hang_up_on_bye, "127.0.0.1", 0)
    listen, tasks = await _linked(server.sockets[0].getsockname()[1])
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", listen)
        writer.write(b"bye\n")
        assert await asyncio.wait_for(reader.read(), 5) == b""

        reader, writer = await asyncio.open_connection("127.0.0.1", listen)
        writer.write(b"hello\n")
        await writer.drain()
        writer.close()  # the guest's client hangs up
        await asyncio.wait_for(seen_eof.wait(), 5)
    finally:
        for task in tasks:
            task.cancel()
        server.close()


async def test_a_refused_target_closes_the_guest_connection():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    listen, tasks = await _linked(port)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", listen)
        writer.write(b"hello")
        assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        for task in tasks:
            task.cancel()


@pytest.mark.parametrize("size", [0, 1, 0xFFFF, 0x10000, 0x2FFFF])
async def test_frames_split_payloads_at_the_length_field(size):
    chunks = []

    class Sink:
        def write(self, data: bytes) -> None:
            chunks.append(data)

    Frames(Sink()).send(2, 7, b"a" * size)
    assert sum(len(c) - 5 for c in chunks) == size
    assert all(len(c) - 5 <= 0xFFFF for c in chunks)
