"""Issue 11 end to end: a real agent process, its fake rating pad pressing itself the whole
time, takes a signed update (a real venv installed from a ``--with-deps`` artifact served
over HTTP), restarts into it as systemd would, and the new release proves itself; a bad
release is switched to, cannot start, and the guard takes the node back by itself. Every
tap the pad made is stored at the server exactly once.

The test plays systemd: ``ExecStartPre=`` the guard from ``<prefix>/guard``, ``ExecStart=``
``<prefix>/current/bin/rpfleet agent run``, restart on status 75 and on failure.

The old release (the tree's own version) is a directory under ``<prefix>/releases/``
whose ``bin/rpfleet`` and ``bin/python`` exec this test venv's interpreter: a venv cannot
be copied or linked into place, and building one more from an artifact costs ~13 s.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa

import rpfleet
from agent.update.journal import JournalFile
from agent.update.releases import COMPLETE
from fleet_server.schema import node_updates
from provisioning.mosquitto import SERVER_USERNAME
from rpfleet import process
from rpfleet.protocol import Channel, topic
from rpfleet.protocol.messages import UpdateDesired
from rpfleet.release import keys
from rpfleet.release.build import build_artifact, copy_tree
from rpfleet.release.signing import sign_artifact
from tests.conftest import agent_toml, eventually
from tests.system.helpers import outbox_ids, stored_events

OLD = rpfleet.__version__
GOOD = "99.0.0"
BAD = "99.1.0"
DEFECT = 'raise SystemExit("deliberate defect of the bad test release: the agent cannot start")\n'


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class Ranges(Quiet):
    """``Range: bytes=N-`` as a download resumes it (SimpleHTTPRequestHandler ignores it)."""

    def send_head(self):
        wanted = self.headers.get("Range", "")
        if not wanted.startswith("bytes="):
            return super().send_head()
        path = Path(self.translate_path(self.path))
        start = int(wanted[len("bytes="):].split("-")[0] or 0)
        size = path.stat().st_size
        f = open(path, "rb")
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        self.send_header("Content-Length", str(size - start))
        self.end_headers()
        return f


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: the store is not the point here, and one run keeps the module short."""
    return f"sqlite:///{tmp_path / 'fleet.sqlite'}"


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    """GOOD (this tree) and BAD (this tree with agent/node.py raising at import), each with
    its [agent] dependency wheels, signed with a key made here and served over HTTP."""
    root = tmp_path_factory.mktemp("update-under-taps")
    _, private, public = keys.generate_key_pair(root / "keys")
    www = root / "www"
    www.mkdir()
    bad_tree = root / "bad-tree"
    copy_tree(Path(rpfleet.__file__).resolve().parents[1], bad_tree)
    node_py = bad_tree / "agent" / "node.py"
    future = "from __future__ import annotations\n"
    defective = node_py.read_text(encoding="utf-8").replace(future, future + DEFECT, 1)
    node_py.write_text(defective, encoding="utf-8")
    desired = {}
    for version, source in ((GOOD, None), (BAD, bad_tree)):
        artifact = www / f"rpfleet-{version}.artifact"
        build_artifact(artifact, version=version, source=source, with_deps=True)
        sign_artifact(artifact, keys.load_private_key(private))
        data = artifact.read_bytes()
        desired[version] = (artifact.name, hashlib.sha256(data).hexdigest(), len(data))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Ranges, directory=str(www)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port = httpd.server_address[1]
    yield {"keys_file": public, "desired": {
        v: UpdateDesired(version=v, url=f"http://127.0.0.1:{port}/{name}", sha256=sha, size=size,
                         signature="in the artifact") for v, (name, sha, size) in desired.items()}}
    httpd.shutdown()


def old_release(prefix: Path) -> None:
    """``releases/OLD`` running this test venv's interpreter; ``current`` names it."""
    target = prefix / "releases" / OLD
    (target / "bin").mkdir(parents=True)
    for name, command in (("python", f'exec "{sys.executable}" "$@"'),
                          ("rpfleet", f'exec "{sys.executable}" -m rpfleet "$@"')):
        script = target / "bin" / name
        script.write_text(f"#!/bin/sh\n{command}\n", encoding="utf-8")
        script.chmod(0o755)
    (target / COMPLETE).write_text(OLD + "\n", encoding="utf-8")
    os.symlink(Path("releases") / OLD, prefix / "current")


class Systemd:
    """The agent's unit: guard, then ``current``; restarted on 75 and on failure."""

    def __init__(self, prefix: Path, config: Path, log: Path, cwd: Path) -> None:
        self.prefix, self.config, self.log, self.cwd = prefix, config, log, cwd
        self.runs: list[tuple[str, int | None]] = []  # (release started, exit status)
        self.proc: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)

    def start(self) -> "Systemd":
        self._thread.start()
        return self

    def running(self) -> str | None:
        """The release the agent process runs now, or None between starts."""
        if self.runs and self.runs[-1][1] is None and self.proc is not None and self.proc.poll() is None:
            return self.runs[-1][0]
        return None

    def _main(self) -> None:
        while not self._stopping.is_set():
            with open(self.log, "ab") as log:
                guard = self.prefix / "guard" / "bin" / "python"
                if guard.exists():
                    subprocess.run([str(guard), "-m", "agent.update.guard", "--config", str(self.config)],
                                   stdout=log, stderr=subprocess.STDOUT, cwd=self.cwd, timeout=60)
                release = Path(os.readlink(self.prefix / "current")).name
                self.proc = process.spawn([str(self.prefix / "current" / "bin" / "rpfleet"), "agent", "run",
                                           "--config", str(self.config)],
                                          stdout=log, stderr=subprocess.STDOUT, cwd=self.cwd)
            self.runs.append((release, None))
            status = self.proc.wait()
            self.runs[-1] = (release, status)
            if status == 0:
                return
            self._stopping.wait(0.2)  # RestartSec=, short

    def stop(self) -> None:
        self._stopping.set()
        if self.proc is not None:
            process.stop(self.proc)
        self._thread.join(30)


def stored_update(server, node: str):
    with server.engine.connect() as conn:
        return conn.execute(sa.select(node_updates).where(node_updates.c.node_id == node)).first()


def taps(server, node: str) -> int:
    return sum(row.kind == "rating-tap" for row in stored_events(server, node))


def assert_every_event_stored_once(server, node: str, state_dir: Path) -> list:
    """The outbox numbers every event it records (taps, the proof's test event) 1, 2, 3…
    across releases, since they share the state dir: stored once each, none missing."""
    eventually(lambda: outbox_ids(state_dir) == [], timeout=30)
    rows = stored_events(server, node)
    seqs = [row.seq for row in rows]
    assert seqs == list(range(1, len(seqs) + 1)), f"gaps or doubles in {seqs}"
    assert len({row.event_id for row in rows}) == len(rows)
    return rows


def test_taps_flow_through_a_good_update_and_a_bad_one_that_rolls_back(
        server, new_node, probe, broker, releases, tmp_path):
    node = new_node()
    prefix, state_dir = tmp_path / "opt", tmp_path / node
    prefix.mkdir()
    old_release(prefix)
    config = tmp_path / f"{node}.toml"
    config.write_text(agent_toml(broker, node, state_dir, press_every_s=0.3) + f"""
[update]
prefix = "{prefix}"
trusted_keys_file = "{releases['keys_file']}"
window = {{ start = "00:00", end = "00:00" }}
max_starts_while_proving = 2

[update.timeouts]
proving = 60
""", encoding="utf-8")
    admin = probe(SERVER_USERNAME)
    unit = Systemd(prefix, config, tmp_path / f"{node}.log", cwd=tmp_path).start()
    log = lambda: (tmp_path / f"{node}.log").read_text(errors="replace")  # noqa: E731
    try:
        eventually(lambda: taps(server, node) >= 5, timeout=30)  # the old release serves

        # 1. the good release: installed beside, switched to, restarted into, proven
        admin.publish(topic(node, Channel.UPDATE_DESIRED), releases["desired"][GOOD].to_json(), retain=True)
        eventually(lambda: unit.running() == GOOD, timeout=60)
        assert [(r, s) for r, s in unit.runs[:-1]] == [(OLD, 75)], log()
        eventually(lambda: (row := stored_update(server, node)) is not None
                   and (row.reported_version, row.reported_state) == (GOOD, "done"), timeout=60)
        assert Path(os.readlink(prefix / "guard")).name == GOOD  # the proven release guards now
        python = prefix / "current" / "bin" / "python"
        asked = "import rpfleet, sys; print(rpfleet.__version__, sys.prefix)"
        out = subprocess.run([str(python), "-c", asked], capture_output=True, text=True, check=True,
                             cwd=tmp_path).stdout.split()
        assert out[0] == GOOD and Path(out[1]).resolve() == prefix / "releases" / GOOD  # not this tree
        before = taps(server, node)
        eventually(lambda: taps(server, node) >= before + 5)  # the new release's pad works

        # 2. the bad release: switched to, cannot start, the guard goes back by itself
        admin.publish(topic(node, Channel.UPDATE_DESIRED), releases["desired"][BAD].to_json(), retain=True)
        eventually(lambda: any(r == BAD for r, _ in unit.runs), timeout=60)
        eventually(lambda: unit.running() == GOOD and unit.runs[-2][0] == BAD, timeout=60)
        bad_runs = [s for r, s in unit.runs if r == BAD]
        assert bad_runs and all(s not in (None, 0, 75) for s in bad_runs), unit.runs
        row = eventually(lambda: (row := stored_update(server, node)) is not None
                         and (row.reported_version, row.reported_state) == (BAD, "rolled-back") and row,
                         timeout=60)
        assert row.reported_reason, row  # the reason reaches the server
        assert "deliberate defect" in log()  # it failed for the defect planted, nothing else
        assert Path(os.readlink(prefix / "current")).name == GOOD
        assert JournalFile(state_dir / "update").load().state == "rolled-back"
        before = taps(server, node)
        eventually(lambda: taps(server, node) >= before + 5)  # back to work
    finally:
        unit.stop()
    rows = assert_every_event_stored_once(server, node, state_dir)
    assert sum(row.kind == "rating-tap" for row in rows) >= 15
