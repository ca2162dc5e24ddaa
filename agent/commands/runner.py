"""Remote commands on the node: each runs at most once, never after its expiry.

`judge` is the pure part: a received payload and what the node already knows of
its id become one decision:

- `Run`: new, unexpired, well-formed: run it;
- `Answer`: not run, with a result to send at once (``refused`` with the
  reason, or ``expired``); kept like any result when its id can be acked;
- `Known`: the id was seen before (a redelivery, a republish after the node
  came back): never run again; its result, if it has one, is sent again.

`CommandRunner` does the I/O: one command at a time, in order of arrival.
Before a command's effect the id is written to the store as *started*
(fsync'd); the result is written as *finished* before it is published, and an
effect that must wait for it (restart, reboot) runs only then (a machine that
refuses it turns the kept ``ok`` into ``failed``). A command found
*started* at start-up was cut short and is reported ``failed`` ("interrupted"),
not run again. Results are published on ``up/cmd-result`` and sent again on
every reconnect and every `RESEND_EVERY_S` until the server's `Ack` names them.

Command ids are 32 lowercase hex digits (1.5), like event ids, so that the
server's `Ack` can confirm a result; another id is refused (and that refusal,
which no `Ack` can confirm, is sent once and not kept).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sqlite3
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Collection

from agent.commands.args import BadArgs, NoArgs, parse_args
from agent.commands.handlers import Done, Handlers
from agent.commands.store import CommandStore, Entry
from rpfleet.protocol import PayloadError, decode_as
from rpfleet.protocol.codec import MAX_PAYLOAD
from rpfleet.protocol.messages import Command, CommandResult

log = logging.getLogger(__name__)

ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
MAX_EXPIRY = timedelta(days=7)
"""The longest a command may wait for its node; the server refuses longer (fleet_server.jobs)."""
CLOCK_SLACK = timedelta(minutes=5)
RUN_TIMEOUT_S = 120.0
RESEND_EVERY_S = 15.0
MAX_DETAIL = 2000


@dataclass(frozen=True)
class Run:
    command: Command
    args: NoArgs


@dataclass(frozen=True)
class Answer:
    result: CommandResult
    keep: bool
    """True: store it and send it until acked; False: send once (its id cannot be acked)."""
    command: Command | None = None


@dataclass(frozen=True)
class Known:
    id: str
    entry: Entry | None
    """None: the command is waiting its turn in this run of the agent."""


Decision = Run | Answer | Known


def result(node: str, command_id: str, outcome: str, detail: str | None, now: datetime,
           output: dict | None = None) -> CommandResult:
    """A `CommandResult` that fits one payload: a detail cut to its limit, an output that
    would not fit dropped (outcome ``failed``, saying how large it was)."""
    if detail is not None and len(detail) > MAX_DETAIL:
        detail = detail[: MAX_DETAIL - 1] + "…"
    made = CommandResult(node=node, id=command_id, outcome=outcome,  # type: ignore[arg-type]
                         detail=detail, output=output, finished_at=now)
    size = len(made.to_json())
    if size > MAX_PAYLOAD:
        return result(node, command_id, "failed",
                      f"the output is {size} bytes, more than a message holds ({MAX_PAYLOAD}); "
                      "ask for less", now)
    return made


def judge(payload: bytes, node: str, known: Callable[[str], Entry | None],
          now: datetime, waiting: Collection[str] = ()) -> Decision | None:
    """What to do with a ``down/cmd`` payload; None: nothing can be answered (no id).

    ``known`` looks an id up in the store; ``waiting``: ids queued or running now."""
    try:
        command = decode_as(Command, payload)
    except PayloadError as exc:
        command_id = _loose_id(payload)
        if command_id is None:
            return None
        entry = known(command_id) if ID_PATTERN.match(command_id) else None
        if entry is not None:
            return Known(command_id, entry)
        return Answer(result(node, command_id, "refused", f"malformed command: {exc.detail}", now),
                      keep=bool(ID_PATTERN.match(command_id)))
    if not ID_PATTERN.match(command.id):
        return Answer(result(node, command.id, "refused",
                             "id: a command id is 32 lowercase hex digits (1.5), so that the "
                             "server's ack can name its result", now), keep=False)
    if command.id in waiting:
        return Known(command.id, None)
    entry = known(command.id)
    if entry is not None:
        return Known(command.id, entry)
    if now >= command.expires_at:
        return Answer(result(node, command.id, "expired",
                             f"expired at {command.expires_at.isoformat()}; not run", now),
                      keep=True, command=command)
    if command.expires_at - max(now, command.issued_at) > MAX_EXPIRY + CLOCK_SLACK:
        return Answer(result(node, command.id, "refused",
                             f"expires_at: more than {MAX_EXPIRY.days} days ahead", now),
                      keep=True, command=command)
    try:
        args = parse_args(command.name, command.args)
    except BadArgs as exc:
        return Answer(result(node, command.id, "refused", str(exc), now), keep=True,
                      command=command)
    return Run(command, args)


def _loose_id(payload: bytes) -> str | None:
    try:
        found = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    value = found.get("id") if isinstance(found, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= 128 else None


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class CommandRunner:
    """Receives commands (on the agent's loop), runs them one at a time, reports results.

    ``publish(result)`` returns False when the link is down (the result is sent on the
    next reconnect).
    """

    def __init__(
        self,
        node: str,
        store: CommandStore,
        handlers: Handlers,
        publish: Callable[[CommandResult], bool],
        *,
        clock: Callable[[], datetime] = utc_now,
        run_timeout_s: float = RUN_TIMEOUT_S,
    ) -> None:
        self.node = node
        self.store = store
        self.handlers = handlers
        self._publish = publish
        self._clock = clock
        self._run_timeout_s = run_timeout_s
        self._queue: asyncio.Queue[Run] = asyncio.Queue()
        self._waiting: set[str] = set()
        self.unusable: str | None = None
        """Why commands are refused now (the store cannot be used); None normally."""
        self.ran: deque[str] = deque(maxlen=1000)
        """Ids of the last commands this process ran, in order (for logs and tests)."""

    def open(self) -> None:
        """Open the store; report the commands a crash cut short as interrupted.

        A store that cannot be opened (a failing or read-only disk) does not stop the
        agent: commands are refused, saying why, until it opens (tried again on each).
        """
        try:
            self._open()
            self.unusable = None
        except (sqlite3.Error, OSError) as exc:
            self.unusable = (f"the node cannot record command ids ({exc}): not run, to stay "
                             "at most once")
            log.error("command store %s: %s", self.store.path, exc)
            self.store.close()

    def _open(self) -> None:
        self.store.open()
        now = self._clock()
        for entry in self.store.interrupted():
            log.warning("command %s (%s) was interrupted by a stop of the agent; not run again",
                        entry.id, entry.name)
            self.store.finish(result(self.node, entry.id, "failed",
                                     "interrupted: the agent stopped while it ran (crash, kill or "
                                     "power cut); not run again", now),
                              entry.name, expires_at=entry.expires_at)
        pruned = self.store.prune(now)
        if pruned:
            log.info("forgot %d command id(s) long past their expiry", pruned)

    def close(self) -> None:
        self.store.close()

    # from the link ------------------------------------------------------------

    def receive(self, payload: bytes) -> None:
        """A ``down/cmd`` payload: decide at once; a command to run waits its turn."""
        if self.unusable is not None:
            self.open()
        if self.unusable is not None:
            self._refuse_unrecorded(payload, self.unusable)
            return
        now = self._clock()
        decision = judge(payload, self.node, self.store.get, now, self._waiting)
        if decision is None:
            log.warning("ignoring a command without an id: %r", payload[:200])
        elif isinstance(decision, Known):
            if decision.entry is None:
                log.info("command %s is waiting to run or running; not run again", decision.id)
            elif decision.entry.result is not None:
                log.info("command %s was received before; not run again, its result is sent again",
                         decision.id)
                self._send(decision.entry.result)
            else:
                log.info("command %s is running; not run again", decision.id)
        elif isinstance(decision, Answer):
            log.info("command %s: %s (%s)", decision.result.id, decision.result.outcome,
                     decision.result.detail)
            if decision.keep:
                c = decision.command
                self.store.finish(decision.result, c.name if c else "?", c.issuer if c else "?",
                                  c.expires_at if c else None)
            self._send(decision.result)
        else:
            self._waiting.add(decision.command.id)
            self._queue.put_nowait(decision)

    def acked(self, ids: list[str]) -> None:
        if self.unusable is None:
            self.store.acked(ids)

    def reconnected(self) -> None:
        self.resend()

    def resend(self) -> int:
        """Publish every result the server has not acked; how many were handed to the link."""
        sent = 0
        if self.unusable is not None:
            return 0
        for kept in self.store.unacked():
            if not self._publish(kept):
                break
            sent += 1
        return sent

    # the worker ---------------------------------------------------------------

    async def run(self) -> None:
        """Run queued commands until cancelled; resend unacked results now and then."""
        resender = asyncio.create_task(self._resend_forever())
        try:
            while True:
                item = await self._queue.get()
                try:
                    await self.execute(item)
                except (sqlite3.Error, OSError) as exc:
                    # The disk refused the id or the result: say so, once, and go on.
                    log.exception("command %s: the command store failed", item.command.id)
                    self._send(result(self.node, item.command.id, "refused",
                                      f"the node could not record it: {exc}", self._clock()))
                finally:
                    self._waiting.discard(item.command.id)
        finally:
            resender.cancel()

    async def execute(self, item: Run) -> CommandResult | None:
        """Run one command at most once; None when it was not run (already known)."""
        command = item.command
        now = self._clock()
        if now >= command.expires_at:  # it waited its turn past its expiry
            answer = result(self.node, command.id, "expired",
                            f"expired at {command.expires_at.isoformat()} while waiting to "
                            "run; not run",
                            now)
            self.store.finish(answer, command.name, command.issuer, command.expires_at)
            self._send(answer)
            return answer
        if not self.store.start(command.id, command.name, command.issuer, command.expires_at, now):
            log.info("command %s already started once; not run again", command.id)
            return None
        log.info("running command %s: %s from %s", command.id, command.name, command.issuer)
        self.ran.append(command.id)
        try:
            done = await asyncio.wait_for(self.handlers.run(command, item.args),
                                          self._run_timeout_s)
        except asyncio.TimeoutError:
            done = Done("failed", f"no outcome within {self._run_timeout_s:g}s")
        except asyncio.CancelledError:
            raise  # the agent is stopping: the row stays "started", reported interrupted
        except Exception as exc:  # noqa: BLE001 - a failed command is an outcome
            log.exception("command %s failed", command.id)
            done = Done("failed", f"{type(exc).__name__}: {exc}")
        answer = result(self.node, command.id, done.outcome, done.detail, self._clock(),
                        done.output)
        self.store.finish(answer, command.name, command.issuer, command.expires_at)
        if done.then is not None:
            # The outcome is on disk first: a reboot or restart that comes through is not
            # "interrupted" when the agent is back, and its ok is sent from there.
            try:
                await done.then()
            except Exception as exc:  # noqa: BLE001 - refused by the machine: say so instead
                log.exception("command %s: %s was refused", command.id, command.name)
                answer = result(self.node, command.id, "failed",
                                f"{command.name} was refused: {exc}", self._clock())
                self.store.finish(answer, command.name, command.issuer, command.expires_at)
        log.info("command %s: %s (%s)", command.id, answer.outcome, answer.detail)
        self._send(answer)
        return answer

    async def _resend_forever(self) -> None:
        while True:
            await asyncio.sleep(RESEND_EVERY_S)
            try:
                self.resend()
                if self.unusable is None:
                    self.store.prune(self._clock())  # an agent may run for months
            except Exception:  # noqa: BLE001 - try again next round
                log.exception("could not resend command results")

    def _refuse_unrecorded(self, payload: bytes, why: str) -> None:
        command_id = _loose_id(payload)
        if command_id is not None:
            self._send(result(self.node, command_id, "refused", why, self._clock()))

    def _send(self, answer: CommandResult) -> None:
        if not self._publish(answer):
            log.info("result of command %s waits for the broker", answer.id)
