"""The runner's state machine: at most once per id, never after expiry, refusals that say why,
results kept until acked. Real store on disk; a journal stand-in and a fake machine."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from agent.commands.handlers import Handlers, NodeParts
from agent.commands.runner import Answer, CommandRunner, Known, Run, judge
from agent.commands.store import KEEP_AFTER_EXPIRY, CommandStore
from agent.commands.system import FakeSystemActions
from tests.agent.commands.helpers import NOW, FakeJournal, command

NODE = "t-node"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self):
        return self.now


@pytest.fixture
def parts():
    return NodeParts(drivers=lambda: [], system=FakeSystemActions(), journal=FakeJournal(),
                     clock=Clock())


def runner_for(tmp_path, parts, published: list) -> CommandRunner:
    runner = CommandRunner(NODE, CommandStore(tmp_path / "commands.sqlite"), Handlers(parts),
                           lambda result: published.append(result) or True, clock=parts.clock)
    runner.open()
    return runner


def run(runner: CommandRunner, payload: bytes) -> None:
    """Receive ``payload`` and run what it queued, as the agent's worker would."""

    async def go():
        runner.receive(payload)
        while not runner._queue.empty():
            item = runner._queue.get_nowait()
            await runner.execute(item)
            runner._waiting.discard(item.command.id)

    asyncio.run(go())


# judge: pure ----------------------------------------------------------------


def nothing_known(_id):
    return None


def test_a_new_unexpired_command_is_run_with_its_args_checked():
    decision = judge(command(args={"lines": 5}).to_json(), NODE, nothing_known, NOW)
    assert isinstance(decision, Run)
    assert decision.args.lines == 5


def test_an_expired_command_is_answered_expired_and_kept():
    sent = command(expires_in=60)
    decision = judge(sent.to_json(), NODE, nothing_known, NOW + timedelta(seconds=61))
    assert isinstance(decision, Answer) and decision.keep
    assert decision.result.outcome == "expired"
    assert decision.result.id == sent.id


@pytest.mark.parametrize("payload, keep, reason", [
    (command(args={"lines": 5000}).to_json(), True, "args.lines"),
    (command(args={"colour": "red"}).to_json(), True, "args.colour"),
    (command(id="test-1").to_json(), False, "32 lowercase hex"),
    (json.dumps({"id": "a" * 32, "name": "format-disk"}).encode(), True, "malformed command"),
    (command(expires_in=30 * 24 * 3600).to_json(), True, "expires_at: more than 7 days"),
], ids=["arg-out-of-range", "unknown-arg", "id-not-hex", "unknown-name", "expiry-too-far"])
def test_a_malformed_command_is_refused_naming_what_is_wrong(payload, keep, reason):
    decision = judge(payload, NODE, nothing_known, NOW)
    assert isinstance(decision, Answer)
    assert decision.result.outcome == "refused"
    assert reason in decision.result.detail
    assert decision.keep is keep


def test_a_payload_without_an_id_cannot_be_answered():
    assert judge(b'{"name": "reboot"}', NODE, nothing_known, NOW) is None
    assert judge(b"\xff not json", NODE, nothing_known, NOW) is None


def test_a_known_id_is_never_run_again_even_when_expired(tmp_path):
    store = CommandStore(tmp_path / "c.sqlite").open()
    sent = command()
    store.start(sent.id, sent.name, sent.issuer, sent.expires_at, NOW)
    for at in (NOW, NOW + timedelta(days=1)):
        decision = judge(sent.to_json(), NODE, store.get, at)
        assert isinstance(decision, Known) and decision.entry.state == "started"


# the runner with its store -----------------------------------------------------


def test_a_command_runs_once_and_a_redelivery_gets_the_same_result_again(tmp_path, parts):
    published = []
    runner = runner_for(tmp_path, parts, published)
    sent = command(args={"lines": 3})
    run(runner, sent.to_json())
    run(runner, sent.to_json())
    assert len(parts.journal.reads) == 1
    assert list(runner.ran) == [sent.id]
    assert [r.id for r in published] == [sent.id, sent.id]
    assert published[0] == published[1]
    assert published[0].outcome == "ok"
    assert published[0].output["lines"] == ["line 8", "line 9", "line 10"]


def test_results_are_resent_until_acked_and_survive_a_restart(tmp_path, parts):
    published = []
    runner = runner_for(tmp_path, parts, published)
    first, second = command(), command(name="self-test")
    run(runner, first.to_json())
    run(runner, second.to_json())
    runner.close()

    published.clear()
    again = runner_for(tmp_path, parts, published)
    assert again.resend() == 2
    assert {r.id for r in published} == {first.id, second.id}
    again.acked([first.id, "f" * 32])
    published.clear()
    again.resend()
    assert [r.id for r in published] == [second.id]


def test_a_command_cut_short_by_a_crash_is_reported_interrupted_and_not_run_again(tmp_path, parts):
    sent = command()
    store = CommandStore(tmp_path / "commands.sqlite").open()
    store.start(sent.id, sent.name, sent.issuer, sent.expires_at, NOW)  # ... and then the kill
    store.close()

    published = []
    runner = runner_for(tmp_path, parts, published)
    run(runner, sent.to_json())  # the server sends it again when the node is back
    assert parts.journal.reads == []
    assert not runner.ran
    assert [r.outcome for r in published] == ["failed"]
    assert "interrupted" in published[0].detail
    runner.resend()
    assert [r.outcome for r in published] == ["failed", "failed"]


def test_a_command_that_expires_while_waiting_its_turn_is_not_run(tmp_path, parts):
    published = []
    runner = runner_for(tmp_path, parts, published)
    sent = command(expires_in=5)

    async def go():
        runner.receive(sent.to_json())
        parts.clock.now = NOW + timedelta(seconds=6)  # the command before it took long
        await runner.execute(runner._queue.get_nowait())

    asyncio.run(go())
    assert parts.journal.reads == []
    assert [r.outcome for r in published] == ["expired"]
    assert runner.store.get(sent.id).state == "finished"


def test_an_expired_answer_is_kept_so_a_redelivery_is_not_run(tmp_path, parts):
    published = []
    runner = runner_for(tmp_path, parts, published)
    sent = command(expires_in=5)
    parts.clock.now = NOW + timedelta(seconds=10)
    run(runner, sent.to_json())
    run(runner, sent.to_json())
    assert [r.outcome for r in published] == ["expired", "expired"]
    assert not runner.ran


def test_restart_and_reboot_happen_only_once_their_result_is_on_disk(tmp_path, parts):
    states = []

    class Machine(FakeSystemActions):
        async def restart_agent(self):
            states.append(runner.store.get(sent.id).state)
            await super().restart_agent()

    parts.system = Machine()
    published = []
    runner = runner_for(tmp_path, parts, published)
    sent = command("restart-agent")
    run(runner, sent.to_json())
    assert parts.system.asked == ["restart-agent"]
    assert states == ["finished"]
    assert published[0].outcome == "ok"

    run(runner, command("reboot").to_json())
    assert parts.system.asked == ["restart-agent", "reboot"]


def test_a_failing_handler_is_a_failed_outcome_not_a_crash(tmp_path, parts):
    class Broken(FakeJournal):
        async def read(self, *args):
            raise OSError("journal files are corrupt")

    parts.journal = Broken()
    published = []
    runner = runner_for(tmp_path, parts, published)
    run(runner, command().to_json())
    assert published[0].outcome == "failed"
    assert "journal files are corrupt" in published[0].detail


def test_ids_are_kept_past_their_expiry_then_pruned_once_acked(tmp_path, parts):
    published = []
    runner = runner_for(tmp_path, parts, published)
    acked, unacked = command(expires_in=60), command(expires_in=60)
    run(runner, acked.to_json())
    run(runner, unacked.to_json())
    runner.acked([acked.id])
    store = runner.store

    assert store.prune(NOW + KEEP_AFTER_EXPIRY) == 0  # not yet long enough past the expiry
    assert store.prune(NOW + KEEP_AFTER_EXPIRY + timedelta(minutes=2)) == 1
    assert store.get(acked.id) is None
    assert store.get(unacked.id) is not None  # its result has not reached the server yet


def test_a_store_that_cannot_be_opened_refuses_commands_instead_of_running_them(tmp_path, parts):
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the state directory should be")
    published = []
    runner = CommandRunner(NODE, CommandStore(blocked / "commands.sqlite"), Handlers(parts),
                           lambda r: published.append(r) or True, clock=parts.clock)
    runner.open()  # the agent goes on
    assert runner.unusable is not None
    sent = command()
    run(runner, sent.to_json())
    assert parts.journal.reads == []
    assert [(r.id, r.outcome) for r in published] == [(sent.id, "refused")]
    assert "cannot record command ids" in published[0].detail
    assert runner.resend() == 0


def test_a_redelivery_while_the_command_waits_or_runs_is_not_queued_again(tmp_path, parts):
    published = []
    runner = runner_for(tmp_path, parts, published)
    sent = command()

    async def go():
        runner.receive(sent.to_json())
        runner.receive(sent.to_json())  # the broker's copy and the server's republish
        assert runner._queue.qsize() == 1
        await runner.execute(runner._queue.get_nowait())

    asyncio.run(go())
    assert len(parts.journal.reads) == 1 and len(published) == 1
    assert isinstance(judge(sent.to_json(), NODE, nothing_known, NOW, {sent.id}), Known)


def test_a_reboot_the_machine_refuses_is_reported_failed(tmp_path, parts):
    parts.system = FakeSystemActions(refuse_reboot="Access denied: interactive authentication required")
    published = []
    runner = runner_for(tmp_path, parts, published)
    sent = command("reboot")
    run(runner, sent.to_json())
    assert [r.outcome for r in published] == ["failed"]
    assert "Access denied" in published[0].detail
    assert runner.store.get(sent.id).result.outcome == "failed"


def test_an_output_too_large_for_one_message_is_dropped_and_reported():
    from agent.commands.runner import result
    from rpfleet.protocol.codec import MAX_PAYLOAD

    big = result(NODE, "a" * 32, "ok", "logs", NOW, {"lines": ["é" * 1000] * 300})
    assert big.outcome == "failed" and big.output is None
    assert f"more than a message holds ({MAX_PAYLOAD})" in big.detail
    fits = result(NODE, "a" * 32, "ok", "x" * 5000, NOW, {"lines": ["ok"]})
    assert fits.outcome == "ok" and len(fits.detail) == 2000
