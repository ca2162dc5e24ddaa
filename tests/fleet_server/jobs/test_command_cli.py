"""`rpfleet server command send` and `rpfleet server job show`, as an operator runs them."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from fleet_server import job_store
from fleet_server.api.job_routes import Progress
from fleet_server.commands.command import parse_arg, progress_line
from fleet_server.schema import jobs
from fleet_server.store import connect
from rpfleet.protocol.messages import CommandResult
from tests.conftest import eventually
from tests.fleet_server.api.fleet_data import seed
from tests.fleet_server.jobs.test_jobs import T


@pytest.fixture
def url(tmp_path):
    url = f"sqlite:///{tmp_path / 'fleet.sqlite'}"
    engine = connect(url)
    with engine.begin() as conn:
        seed(conn)
    engine.dispose()
    return url


class Ran:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def rpfleet(capsys):
    """`rpfleet server ARGS` in this process (the front door's own tests cover the process)."""
    from fleet_server.cli import main

    def run(*args: str) -> Ran:
        code = main(list(args))
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


def answer(url, node, job_id, outcome, **fields):
    engine = connect(url)
    with engine.begin() as conn:
        job_store.record_results(conn, [(CommandResult(node=node, id=job_id, outcome=outcome,
                                                        finished_at=T, **fields), T)])
    engine.dispose()


def test_send_prints_the_job_id_and_follows_until_every_node_answered(url, rpfleet):
    ran: list[Ran] = []
    sending = threading.Thread(target=lambda: ran.append(rpfleet(
        "command", "send", "fetch-logs", "--site", "hk-01", "--arg", "lines=20",
        "--expires", "5m", "--db", url)))
    sending.start()
    engine = connect(url)
    with engine.connect() as conn:
        job_id = eventually(lambda: conn.execute(sa.select(jobs.c.id)).scalar())
    engine.dispose()
    answer(url, "hk-01-c1", job_id, "ok", detail="20 line(s) of rpfleet-agent")
    answer(url, "hk-01-c2", job_id, "failed", detail="the journal could not be read")
    sending.join(30)
    (done,) = ran
    out, err = done.stdout, done.stderr
    assert out.splitlines()[0] == job_id
    assert done.returncode == 3  # not every node did it
    assert "2/2  done 1 · failed 1 · expired 0 · pending 0" in err
    assert "hk-01-c2                 failed   failed" in out
    engine = connect(url)
    with engine.connect() as conn:
        row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).one()
    assert row.args == {"lines": "20"} and row.issuer.startswith("cli:")
    assert row.selector == {"site": "hk-01"}


def test_a_refused_send_names_the_field_and_makes_no_job(url, rpfleet):
    refused = rpfleet("command", "send", "reboot", "--node", "hk-01-c1", "--arg", "lines=5",
                      "--db", url)
    assert refused.returncode == 2
    assert "args.lines: reboot does not take it" in refused.stderr
    whole_site = rpfleet("command", "send", "reboot", "--site", "hk-01", "--db", url)
    assert whole_site.returncode == 2 and "--yes" in whole_site.stderr
    shown = rpfleet("job", "show", "0" * 32, "--db", url)
    assert shown.returncode == 2 and "no job" in shown.stderr


def test_job_show_prints_the_audit_record_and_saves_fetched_logs(url, rpfleet, tmp_path):
    sent = rpfleet("command", "send", "fetch-logs", "--node", "hk-02-c1", "--no-wait", "--db", url)
    job_id = sent.stdout.strip()
    answer(url, "hk-02-c1", job_id, "ok", detail="2 line(s)",
           output={"lines": ["09:00 bắt đầu", "09:01 xong"], "truncated": False})
    shown = rpfleet("job", "show", job_id, "--db", url, "--save", str(tmp_path / "out"))
    assert shown.returncode == 0, shown.stderr
    assert "command   fetch-logs" in shown.stdout and "asked by  cli:" in shown.stdout
    assert "hk-02-c1                 done     ok" in shown.stdout
    saved = tmp_path / "out" / f"hk-02-c1-{job_id[:8]}.log"
    assert saved.read_text(encoding="utf-8") == "09:00 bắt đầu\n09:01 xong\n"
    listed = rpfleet("job", "list", "--db", url)
    assert listed.returncode == 0
    assert job_id in listed.stdout and "1/1 done 1" in listed.stdout


def test_parse_arg_and_the_progress_bar():
    assert parse_arg("since=2h") == ("since", "2h")
    assert parse_arg("unit=a=b") == ("unit", "a=b")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_arg("lines")
    bar = progress_line(Progress(total=4, done=1, failed=1, expired=0, pending=2), width=10)
    assert bar == "[#####-----] 2/4  done 1 · failed 1 · expired 0 · pending 2"
