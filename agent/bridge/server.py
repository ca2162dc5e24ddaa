"""The running bridge: this boot's token, the loopback socket, and uvicorn on the agent's loop.

uvicorn serves the Starlette app as one task of the agent (``await bridge.serve()``). The agent
owns SIGTERM and SIGINT, so the server is told not to install its own signal handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
from typing import Callable, Iterable, Iterator

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from agent.bridge.app import BridgeApp
from agent.bridge.guard import Guard, names_for
from agent.bridge.guarded import Guarded
from agent.bridge.page_socket import PageSockets
from agent.bridge.settings import BridgeSettings, is_loopback
from agent.local_events import LocalEvents
from rpfleet.protocol.messages import PeripheralHealth

log = logging.getLogger("agent.bridge")

STATUS_EVERY_S = 1.0
"""How often the status is compared with the last one pushed to the pages."""
STOP_WITHIN_S = 3.0


class DeviceBridge:
    """The local device bridge of one agent (docs/device-bridge.md).

    The constructor only stores what it is given and draws this boot's token; `bind` opens the
    loopback socket (so the URL is known before the kiosk browsers start); `serve` answers until
    cancelled. The token is kept in memory only and never logged.
    """

    def __init__(
        self,
        settings: BridgeSettings,
        drivers: Iterable[object],
        events: LocalEvents,
        peripherals: Callable[[], list[PeripheralHealth]],
    ) -> None:
        self.settings = settings
        self._drivers = drivers  # iterated at each call: the drivers follow the node's config
        self._events = events
        self._peripherals = peripherals
        self.token = secrets.token_urlsafe(32)
        self._socket: socket.socket | None = None
        self.guarded: Guarded | None = None
        """The ASGI app behind the socket, once serving."""

    def __repr__(self) -> str:  # never the token
        return f"DeviceBridge({self.url if self.bound else 'not bound'})"

    @property
    def bound(self) -> bool:
        return self._socket is not None

    @property
    def port(self) -> int:
        if self._socket is None:
            raise RuntimeError("the bridge is not bound yet: call bind() first")
        return self._socket.getsockname()[1]

    @property
    def url(self) -> str:
        host = self.settings.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def page_globals(self) -> dict[str, str]:
        """What the kiosk browser injects into its pages as ``window.rpfleet``."""
        return {"bridge": self.url, "token": self.token}

    def bind(self) -> str:
        """Open the listening socket on the loopback address and return the bridge's URL.

        Raises ValueError for an address that is not loopback, OSError when the port is taken.
        """
        host = self.settings.host
        if not is_loopback(host):  # settings refuse it too; this holds for any caller
            raise ValueError(f"the device bridge listens only on loopback, not on {host!r}")
        if self._socket is None:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host.strip("[]"), self.settings.port))
            except OSError:
                sock.close()
                raise
            sock.listen(100)  # pages that call before serve() starts wait in the backlog
            sock.setblocking(False)
            self._socket = sock
        return self.url

    async def serve(self) -> None:
        """Answer pages until cancelled (binding first if `bind` was not called)."""
        self.bind()
        assert self._socket is not None
        hosts, own = names_for(self.settings.host, self.port)
        guard = Guard(hosts=hosts, allowed_origins=frozenset(self.settings.allowed_origins),
                      own_origins=own if self.settings.sample_page else frozenset(),
                      token=self.token)
        sockets = PageSockets(guard, self._events, lambda: app.status())
        app = BridgeApp(self._drivers, self._peripherals, sockets)
        self.guarded = app.asgi(guard, sample_page=self.settings.sample_page)
        config = _quiet_config(
            self.guarded, http=_UnloggedRequests, ws=_UnloggedFrames, lifespan="off", log_config=None,
            server_header=False,
            proxy_headers=False,  # all peers are 127.0.0.1: X-Forwarded-For must not fake one
            timeout_graceful_shutdown=STOP_WITHIN_S,
        )
        server = _AgentServer(config)
        log.info("device bridge on %s: %d printer(s), %d soundbox(es), origins %s%s",
                 self.url, len(app.printers), len(app.soundboxes),
                 ", ".join(self.settings.allowed_origins) or "(none)",
                 f"; sample page {self.url}/kiosk/" if self.settings.sample_page else "")
        watch = asyncio.create_task(sockets.watch_status(STATUS_EVERY_S), name="bridge status")
        serving = asyncio.create_task(server.serve(sockets=[self._socket]), name="bridge server")
        try:
            await asyncio.shield(serving)
        finally:
            watch.cancel()
            server.should_exit = True
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(serving, STOP_WITHIN_S + 1)
            self.close()

    def close(self) -> None:
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()


def _quiet_config(app, **options) -> uvicorn.Config:
    """A uvicorn config that leaves the process's logging alone.

    ``access_log=False`` makes uvicorn empty the process-wide ``uvicorn.access`` logger and
    stop its propagation, which would silence any other uvicorn server in the process: the
    logger is given back as it was. This server's own protocols log no access lines
    (`_UnloggedRequests`, `_UnloggedFrames`).
    """
    access = logging.getLogger("uvicorn.access")
    propagate, handlers = access.propagate, list(access.handlers)
    config = uvicorn.Config(app, access_log=False, **options)
    access.propagate, access.handlers = propagate, handlers
    return config


class _AgentServer(uvicorn.Server):
    """A uvicorn server that leaves the process's signals to the agent."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _UnloggedRequests(H11Protocol):
    """uvicorn's HTTP protocol without access lines: the node's log keeps what the bridge
    itself says (refusals, prints), not every request of a page."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.access_log = False


class _UnloggedFrames(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, except that the frames and the handshake are never logged,
    even at DEBUG: a page's first message holds its token."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.conn.debug = False  # websockets logs every frame and request line when True
