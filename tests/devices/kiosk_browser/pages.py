"""A tiny HTTP server with the test pages of the kiosk browser tests, on 127.0.0.1.

- ``/kiosk``: the kiosk's page: a ticking clock (it always changes);
- ``/hang``: a page whose script loops for ever once loaded;
- ``/black``: a page that turns black and empty;
- ``/globals``: a page that keeps what ``window.rpfleet`` held when its first script ran,
  and reports it with its host to ``/seen?<JSON>`` (recorded in `hits`, answered 204).

``localhost`` is another origin than ``127.0.0.1``: ``http://localhost:<port>/kiosk`` is a
disallowed URL for a kiosk configured with ``http://127.0.0.1:<port>/kiosk``.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGES = {
    "/kiosk": """<!DOCTYPE html><html lang="vi"><head><meta charset="utf-8"><title>Kiosk</title>
<style>body{font:64px sans-serif;background:#fff;color:#123}</style></head>
<body><h1>Lấy số thứ tự</h1><p id="clock"></p>
<script>setInterval(() => { document.getElementById('clock').textContent =
  new Date().toISOString(); }, 100);</script></body></html>""",
    "/hang": """<!DOCTYPE html><html><body><h1>about to hang</h1>
<script>setTimeout(() => { while (true) {} }, 50);</script></body></html>""",
    "/black": """<!DOCTYPE html><html><body style="background:#000;margin:0"></body></html>""",
    "/globals": """<!DOCTYPE html><html><head><script>
window.seenAtStart = JSON.stringify(window.rpfleet === undefined ? null : window.rpfleet);
fetch('/seen?' + encodeURIComponent(JSON.stringify([location.host, window.seenAtStart])),
      {keepalive: true});
</script></head><body><h1>globals</h1></body></html>""",
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self.server.hits.append(self.path)  # type: ignore[attr-defined]
        if self.path.startswith("/seen?"):
            self.send_response(204)
            self.end_headers()
            return
        body = PAGES.get(self.path.split("?", 1)[0])
        if body is None:
            self.send_error(404)
            return
        data = body.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


class PageServer:
    """Serves PAGES on ``port`` (0: a free one) until `stop`."""

    def __init__(self, port: int = 0) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.hits = []  # type: ignore[attr-defined]
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    @property
    def hits(self) -> list[str]:
        return self.httpd.hits  # type: ignore[attr-defined]

    def start(self) -> "PageServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
