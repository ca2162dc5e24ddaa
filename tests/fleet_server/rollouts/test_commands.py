"""`rpfleet server release` and `rollout` as an operator types them, on a SQLite store
(the command's entry point in this process: one interpreter start per command would
cost seconds each here)."""

from __future__ import annotations

from types import SimpleNamespace

import sqlalchemy as sa

from fleet_server import cli
from fleet_server.store import connect
from tests.fleet_server.rollouts.conftest import make_artifact


def test_release_add_then_rollout_start_status_pause_abort(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RPFLEET_SERVER_RELEASES_DIR", raising=False)

    def rpfleet(*args: str) -> SimpleNamespace:
        code = cli.main(list(args))
        out, err = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out, stderr=err)

    from rpfleet.release.keys import generate_key_pair

    db = f"sqlite:///{tmp_path / 'fleet.sqlite'}"
    engine = connect(db)
    with engine.begin() as conn:
        for i in range(5):
            conn.execute(sa.text("INSERT INTO nodes (id, state, agent_version) VALUES (:id, 'online', '1.0.0')"),
                         {"id": f"bd-q{i}"})
    engine.dispose()
    _, private, public = generate_key_pair(tmp_path / "keys")
    from rpfleet.release.keys import load_private_key

    artifact = make_artifact(tmp_path, "1.1.0", load_private_key(private))

    added = rpfleet("release", "add", str(artifact), "--trust", str(public), "--db", db)
    assert added.returncode == 0, added.stderr
    assert "release 1.1.0" in added.stdout
    assert (tmp_path / "releases" / "1.1.0.rpa").read_bytes() == artifact.read_bytes()
    assert "1.1.0" in rpfleet("release", "list", "--db", db).stdout

    bad = rpfleet("rollout", "start", "1.1.0", "--waves", "50%,10%", "--db", db)
    assert bad.returncode == 2 and "--waves" in bad.stderr

    started = rpfleet("rollout", "start", "1.1.0", "--waves", "20%,100%", "--soak", "10m", "--db", db)
    assert started.returncode == 0, started.stderr
    assert "rollout 1 of 1.1.0: running, wave 1 of 2" in started.stdout
    assert "wave 1 (20%): 1 node(s), open" in started.stdout

    assert rpfleet("rollout", "pause", "1", "--db", db).returncode == 0
    assert "paused" in rpfleet("rollout", "status", "--db", db).stdout
    aborted = rpfleet("rollout", "abort", "1", "--db", db)
    assert aborted.returncode == 0 and "1 desired update(s) cleared" in aborted.stdout
    again = rpfleet("rollout", "abort", "1", "--db", db)
    assert again.returncode == 2 and "aborted" in again.stderr
