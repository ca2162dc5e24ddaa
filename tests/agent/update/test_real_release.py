"""A real signed artifact built from the working tree, fetched over HTTP, verified with the
release key, installed into a real virtualenv beside the running release and switched to."""

from __future__ import annotations

import hashlib
import subprocess
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agent.update.artifacts import SignedArtifacts
from agent.update.proof import ProofRecorder
from agent.update.settings import UpdateSettings
from agent.update.updater import Updater
from rpfleet.protocol.messages import UpdateDesired
from rpfleet.release import keys
from rpfleet.release.build import build_artifact
from rpfleet.release.signing import sign_artifact
from tests.agent.update.tiny import NODE, Clock, FakeNode, RecordingRestart, installed_node


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """rpfleet 1.1.0 built from this tree (wheel only), signed with a key made here, served over HTTP."""
    root = tmp_path_factory.mktemp("release")
    key_id, private, public = keys.generate_key_pair(root / "keys")
    artifact = root / "www" / "rpfleet-1.1.0.artifact"
    artifact.parent.mkdir()
    build_artifact(artifact, version="1.1.0")
    sign_artifact(artifact, keys.load_private_key(private))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(artifact.parent)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield {"artifact": artifact, "public": keys.load_public_key(public), "port": httpd.server_address[1],
           "root": root}
    httpd.shutdown()


def announce(release, name="rpfleet-1.1.0.artifact", version="1.1.0") -> UpdateDesired:
    data = (release["artifact"].parent / name).read_bytes()
    return UpdateDesired(version=version, url=f"http://127.0.0.1:{release['port']}/{name}",
                         sha256=hashlib.sha256(data).hexdigest(), size=len(data), signature="in the artifact")


def node_updater(tmp_path, release, trusted, store=None):
    prefix = tmp_path / "opt"
    prefix.mkdir(exist_ok=True)
    store = store or installed_node(prefix, "1.0.0")
    return Updater(node_id=NODE, state_dir=tmp_path / "state", settings=UpdateSettings(prefix=prefix),
                   running=store.current(), artifacts=SignedArtifacts(trusted, no_deps=True),
                   node=FakeNode(), restarter=RecordingRestart(), clock=Clock()), store


def test_a_signed_release_is_installed_into_a_real_venv_and_switched_to(tmp_path, release):
    old, store = node_updater(tmp_path, release, [release["public"]])
    journal = old.desired(announce(release))
    assert journal.state == "proving", journal.reason
    assert store.current() == "1.1.0" and store.guard() == "1.0.0"
    python = tmp_path / "opt" / "current" / "bin" / "python"
    out = subprocess.run([python, "-c", "import importlib.metadata as m, rpfleet, sys; "
                          "print(m.version('rpfleet'), sys.prefix)"],
                         capture_output=True, text=True, check=True, cwd=tmp_path)  # not the tree's egg-info
    version, prefix = out.stdout.split()
    assert version == "1.1.0" and Path(prefix).resolve() == (tmp_path / "opt" / "releases" / "1.1.0")
    script = (tmp_path / "opt" / "current" / "bin" / "rpfleet").read_text().splitlines()[0]
    # the entry point names its own release, not the link: an old agent still running is not
    # affected by the switch, and running_release() tells each process which release it is
    assert script == f"#!{tmp_path / 'opt' / 'releases' / '1.1.0' / 'bin' / 'python'}"
    assert (tmp_path / "opt" / "current" / "bin" / "rpfleet").exists()
    assert not list((tmp_path / "opt" / "releases").glob(".payload-*"))
    new = Updater(node_id=NODE, state_dir=tmp_path / "state", settings=old.settings, running="1.1.0",
                  artifacts=old.artifacts, node=FakeNode(), restarter=RecordingRestart(), clock=old.clock)
    new.resume()
    proof = ProofRecorder(tmp_path / "state" / "update", "1.1.0")
    now = old.clock()
    proof.started(now, {"pad-1": "ok"})
    proof.connected(now)
    proof.health_sent(now)
    proof.test_event_written("0" * 32, now)
    proof.test_event_sent(now)
    assert new.tick().state == "done"
    assert sorted(p.name for p in (tmp_path / "opt" / "releases").iterdir()) == ["1.0.0", "1.1.0"]


def flipped(release) -> str:
    """A copy of the artifact with one byte flipped in the middle of a wheel of the payload."""
    import tarfile

    with tarfile.open(release["artifact"]) as tar:
        wheel = next(m for m in tar.getmembers() if m.name.startswith("payload/"))
    data = bytearray(release["artifact"].read_bytes())
    data[wheel.offset_data + wheel.size // 2] ^= 0x01
    name = "flipped.artifact"
    (release["artifact"].parent / name).write_bytes(bytes(data))
    return name


def test_untrusted_or_tampered_artifacts_are_refused_and_say_why(tmp_path, release):
    other = keys.load_public_key(keys.generate_key_pair(tmp_path / "other")[2])
    (tmp_path / "a").mkdir()
    updater, store = node_updater(tmp_path / "a", release, [other])
    journal = updater.desired(announce(release))
    assert journal.state == "refused" and journal.reason.startswith("unknown-key")
    assert updater.reports.pending()[-1][1].evidence == {"verify": "unknown-key"}
    assert store.current() == "1.0.0" and not store.path("1.1.0").exists()

    (tmp_path / "b").mkdir()
    updater, store = node_updater(tmp_path / "b", release, [release["public"]])
    name = flipped(release)
    journal = updater.desired(announce(release, name))
    assert journal.state == "refused" and journal.reason.startswith("tampered")
    assert store.current() == "1.0.0"
