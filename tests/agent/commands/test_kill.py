"""At most once across a SIGKILL of the real agent process (`rpfleet agent run`).

fetch-logs runs `journalctl`; here a stand-in on the agent's PATH appends its pid to a
file each time it runs (so the file counts the command's effects) and, while a "hold"
file exists, waits (so the agent can be killed in the middle of the command). The
agent's process group is killed: the stand-in dies with it."""

from __future__ import annotations

import os
import signal
import stat

import pytest
import sqlalchemy as sa

from fleet_server import jobs
from fleet_server.api.job_routes import detail
from fleet_server.jobs import JobRequest, command_of
from fleet_server.schema import jobs as jobs_table
from fleet_server.schema import nodes
from provisioning.mosquitto import SERVER_USERNAME
from rpfleet.protocol import Channel, topic
from tests.conftest import eventually
from tests.servers import start_server  # noqa: F401 - fixture


@pytest.fixture
def journal(tmp_path):
    """The stand-in journalctl: (PATH for the agent, the file of runs, the hold file)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ran, hold = tmp_path / "journalctl.ran", tmp_path / "journalctl.hold"
    script = bin_dir / "journalctl"
    script.write_text(
        "#!/bin/sh\n"
        f'echo $$ >> "{ran}"\n'
        f'n=0; while [ -e "{hold}" ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n+1)); done\n'
        'echo "2026-11-25T09:00:00+0700 node rpfleet-agent[1]: đang chạy"\n',
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return f"{bin_dir}:{os.environ['PATH']}", ran, hold


def runs(ran) -> int:
    return len(ran.read_text().splitlines()) if ran.exists() else 0


def answered_again(log) -> int:
    """How often the agent answered a redelivered command from its store (not running it)."""
    return log.read_text().count("was received before; not run again")


def kill(agent) -> None:
    os.killpg(agent.pid, signal.SIGKILL)
    agent.wait(10)


def target(engine, job_id):
    with engine.connect() as conn:
        return detail(conn, job_id).nodes[0]


def online(engine, node) -> bool:
    with engine.connect() as conn:
        return conn.execute(sa.select(nodes.c.state).where(nodes.c.id == node)).scalar() == "online"


def redeliver(probe, engine, node, job_id) -> None:
    """Publish the job's command again, as the server would after a reconnect."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(jobs_table).where(jobs_table.c.id == job_id)).one()
    probe(SERVER_USERNAME).publish(topic(node, Channel.CMD), command_of(row).to_json())


def test_a_command_killed_midway_or_after_is_never_run_again_and_its_result_arrives(
    start_server, agent_process, new_node, probe, journal, tmp_path
):
    path, ran, hold = journal
    node = new_node()
    log = tmp_path / f"{node}.log"
    fleet = start_server(f"sqlite:///{tmp_path / 'fleet.sqlite'}")
    agent = agent_process(node, env={"PATH": path})
    eventually(lambda: online(fleet.engine, node))

    # 1. Killed in the middle of the command.
    hold.touch()
    midway = jobs.create_job(fleet.engine, JobRequest("fetch-logs", nodes=(node,)), "ops")
    eventually(lambda: runs(ran) == 1)
    kill(agent)
    hold.unlink()  # from now on a run would finish at once, and count
    agent = agent_process(node, env={"PATH": path})
    outcome = eventually(lambda: (t := target(fleet.engine, midway)).outcome and t)
    assert outcome.outcome == "failed" and "interrupted" in outcome.detail
    before = answered_again(log)
    redeliver(probe, fleet.engine, node, midway)
    eventually(lambda: answered_again(log) > before)
    assert runs(ran) == 1

    # 2. Killed after the command finished: the redelivery is answered, not run.
    after = jobs.create_job(fleet.engine, JobRequest("fetch-logs", nodes=(node,)), "ops")
    eventually(lambda: target(fleet.engine, after).outcome == "ok")
    assert runs(ran) == 2
    kill(agent)
    agent = agent_process(node, env={"PATH": path})
    eventually(lambda: online(fleet.engine, node))
    before = answered_again(log)
    redeliver(probe, fleet.engine, node, after)
    eventually(lambda: answered_again(log) > before)
    assert runs(ran) == 2
    assert target(fleet.engine, after).detail == "1 line(s) of rpfleet-agent"


def test_a_result_not_yet_acked_survives_a_kill_and_reaches_a_server_that_was_down(
    start_server, agent_process, new_node, probe, journal, tmp_path
):
    path, ran, _ = journal
    node = new_node()
    url = f"sqlite:///{tmp_path / 'fleet.sqlite'}"
    first = start_server(url, name="first")
    agent = agent_process(node, env={"PATH": path})
    eventually(lambda: online(first.engine, node))
    first.stop()  # no server: nothing is ingested, nothing acked

    job_id = jobs.create_job(first.engine, JobRequest("fetch-logs", nodes=(node,)), "ops")
    redeliver(probe, first.engine, node, job_id)  # what the server had published before it went
    eventually(lambda: runs(ran) == 1)
    eventually(lambda: f"command {job_id}: ok" in (tmp_path / f"{node}.log").read_text())
    kill(agent)

    # A new worker (a new broker session: whatever the old one queued stays there).
    second = start_server(url, name="second")
    agent_process(node, env={"PATH": path})
    answered = eventually(lambda: (t := target(second.engine, job_id)).outcome and t)
    assert answered.outcome == "ok"
    assert runs(ran) == 1


def test_restart_agent_ends_the_agent_cleanly_once_its_ok_is_on_disk(
    start_server, agent_process, new_node, tmp_path
):
    node = new_node()
    fleet = start_server(f"sqlite:///{tmp_path / 'fleet.sqlite'}")
    agent = agent_process(node)
    eventually(lambda: online(fleet.engine, node))
    job_id = jobs.create_job(fleet.engine, JobRequest("restart-agent", nodes=(node,)), "ops")
    assert agent.wait(30) == 0  # a clean stop: systemd's Restart=always starts it again
    agent_process(node)  # as systemd would
    answered = eventually(lambda: (t := target(fleet.engine, job_id)).outcome and t)
    assert answered.outcome == "ok"
    assert (tmp_path / f"{node}.log").read_text().count(f"running command {job_id}") == 1
