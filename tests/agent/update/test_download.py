"""Resumable download against a real HTTP server that honours Range and can cut a transfer."""

from __future__ import annotations

import hashlib
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agent.update.download import DownloadError, check_disk_space, download

DATA = bytes(range(256)) * 4096  # 1 MiB


class Server:
    def __init__(self) -> None:
        self.cut_after: int | None = None
        self.ranges: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                wanted = self.headers.get("Range")
                outer.ranges.append(wanted)
                start = int(re.match(r"bytes=(\d+)-", wanted).group(1)) if wanted else 0
                if start >= len(DATA):
                    self.send_response(416)
                    self.end_headers()
                    return
                body = DATA[start:]
                self.send_response(206 if wanted else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if outer.cut_after is not None:
                    self.wfile.write(body[: outer.cut_after])
                    self.wfile.flush()
                    outer.cut_after = None
                    self.connection.shutdown(2)  # the link drops mid-transfer
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/rpfleet-1.1.0.artifact"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.httpd.shutdown()


SHA = hashlib.sha256(DATA).hexdigest()


def test_a_cut_download_resumes_from_where_it_stopped(tmp_path, server):
    dest = tmp_path / "a.artifact"
    server.cut_after = 300_000
    with pytest.raises(DownloadError) as cut:
        download(server.url, dest, len(DATA), SHA, timeout=5)
    assert cut.value.kind == "transient"
    part = tmp_path / "a.artifact.part"
    assert 0 < part.stat().st_size < len(DATA)
    have = part.stat().st_size
    assert download(server.url, dest, len(DATA), SHA) == dest
    assert dest.read_bytes() == DATA and not part.exists()
    assert server.ranges == [None, f"bytes={have}-"]
    assert download(server.url, dest, len(DATA), SHA) == dest  # already there: no request
    assert len(server.ranges) == 2


def test_wrong_hash_or_size_is_refused_and_the_part_dropped(tmp_path, server):
    dest = tmp_path / "a.artifact"
    with pytest.raises(DownloadError, match="sha256") as wrong:
        download(server.url, dest, len(DATA), "0" * 64)
    assert wrong.value.kind == "refused" and not dest.exists()
    assert not (tmp_path / "a.artifact.part").exists()
    with pytest.raises(DownloadError, match="ended after"):
        download(server.url, dest, len(DATA) + 10, SHA)


def test_disk_space_is_checked_first(tmp_path):
    with pytest.raises(DownloadError, match="not enough disk space") as full:
        check_disk_space(tmp_path, 1 << 60)
    assert full.value.kind == "failed"
    check_disk_space(tmp_path, 1024)
