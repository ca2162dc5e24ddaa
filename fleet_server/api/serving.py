"""The HTTP API served by uvicorn on a thread of the fleet server's process."""

from __future__ import annotations

import logging
import socket
import threading
from pathlib import Path

import uvicorn
from fastapi import FastAPI

log = logging.getLogger(__name__)


class CannotListen(OSError):
    """The HTTP API's address cannot be bound (taken, or not this machine's)."""


class HttpService:
    """Serves ``app`` on ``host:port`` from a thread; `stop` is safe to call twice.

    `start` binds the socket itself, so that a taken port or a bad address
    raises CannotListen at once in the caller's thread (uvicorn would only log it
    and end its thread). Once `start` returns, connections are accepted by the
    kernel and answered as soon as uvicorn's loop runs.
    """

    def __init__(
        self,
        app: FastAPI,
        host: str,
        port: int,
        tls: tuple[Path, Path] | None = None,
        name: str = "HTTP API",
    ) -> None:
        """``tls``: (certificate, key) files to serve HTTPS instead of HTTP."""
        self.name = name
        self._app = app
        self._host = host
        self._port = port
        self._tls = tls
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) actually bound; raises RuntimeError before `start`."""
        if self._socket is None:
            raise RuntimeError("the HTTP service is not started")
        host, port = self._socket.getsockname()[:2]
        return host, port

    @property
    def url(self) -> str:
        """The service's base URL, e.g. ``http://127.0.0.1:8080``."""
        host, port = self.address
        scheme = "https" if self._tls else "http"
        return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"

    def start(self) -> None:
        """Bind ``host:port`` and serve from a thread; raises CannotListen if the bind fails."""
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, self._port))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            raise CannotListen(
                f"cannot serve the HTTP API on {self._host}:{self._port}: {exc.strerror or exc}"
            ) from exc
        self._socket = sock
        config = uvicorn.Config(
            self._app,
            # Our loggers, formatted and levelled by `rpfleet server run`, not uvicorn's own setup.
            log_config=None,
            lifespan="off",
            # Access lines carry method, path and status, never headers: no token in them.
            access_log=True,
            server_header=False,
            timeout_graceful_shutdown=5,
            ssl_certfile=str(self._tls[0]) if self._tls else None,
            ssl_keyfile=str(self._tls[1]) if self._tls else None,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=self.name, daemon=True
        )
        self._thread.start()
        log.info("%s on %s", self.name, self.url)

    def stop(self, timeout: float = 10) -> None:
        """End long-lived streams (the app's ``state.before_stop`` hooks), let requests in
        flight finish (up to 5 s), then close the socket."""
        if self._server is not None and self._thread is not None:
            for hook in getattr(self._app.state, "before_stop", ()):
                hook()
            self._server.should_exit = True
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("HTTP API did not stop within %.0f s", timeout)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
