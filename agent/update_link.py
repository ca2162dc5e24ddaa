"""The updater (agent/update) inside the running agent: ``down/update`` in, ``up/update``
out, the install gate's view of the node, and the proof a just-switched release writes.

Every `Updater` call runs in one worker thread, one at a time: downloads and ``pip
install`` block, and the updater is not made for two callers at once. The rest runs on the
agent's loop. What the proof needs from the link (PUBACKs) is polled from `Receipt`s on
the tick, so nothing here runs on paho's thread.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, Callable

import rpfleet
from agent.update.artifacts import Refused, SignedArtifacts
from agent.update.proof import ProofRecorder
from agent.update.updater import Updater, running_release
from rpfleet.protocol import Channel, PayloadError, decode_as
from rpfleet.protocol.messages import Alarm, EventBatch, UpdateDesired

log = logging.getLogger(__name__)

TICK_S = 5.0
PROVING_TICK_S = 1.0
RESTART_STATUS = 75
"""The agent's exit status when it ends for an update; the unit restarts on it
(``RestartForceExitStatus=75``) and systemd then runs what ``current`` names."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Untrusted:
    """`agent.update.artifacts.Artifacts` when the node has no usable release keys: every
    artifact is refused with the reason, and the agent runs on."""

    def __init__(self, why: str) -> None:
        self.why = why

    def verify(self, *args) -> None:
        raise Refused("no-trusted-keys", self.why)

    install = verify


def trusted_artifacts(keys_file) -> SignedArtifacts | Untrusted:
    from rpfleet.release import keys

    try:
        trusted = keys.load_public_keys(keys_file)
    except (OSError, ValueError) as exc:
        why = f"no trusted release keys in {keys_file}: {exc}"
        log.warning("updates will be refused: %s", why)
        return Untrusted(why)
    if not trusted:
        return Untrusted(f"{keys_file} holds no release key")
    return SignedArtifacts(trusted)


class NodeProbe:
    """`agent.update.updater.NodeProbe` over a `agent.node.NodeAgent`. Called from the
    updater's thread: it only reads attributes (no await, no loop state changed)."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent

    def connected(self) -> bool:
        return self.agent.link.connected

    def busy(self) -> str | None:
        for driver in list(self.agent.drivers):
            if getattr(driver, "busy", False):
                return {"soundbox": f"a call is being spoken ({driver.id})",
                        "ticket-printer": f"a ticket printing ({driver.id})"}.get(
                            driver.kind, f"{driver.id} is busy")
        return None

    def drivers_ok(self) -> list[str]:
        # driver.health() only reads; the agent's _peripherals() would also raise and clear
        # alarms (outbox, link), which belong to the loop's thread.
        return [d.id for d in list(self.agent.drivers) if d.health().state == "ok"]


class AgentUpdates:
    """The updater wired into one agent. ``agent`` is the `agent.node.NodeAgent`; its
    ``settings`` (the applied desired config) give the site's maintenance window."""

    def __init__(self, agent: Any, clock: Callable[[], datetime] = utc_now) -> None:
        settings = agent.local_settings.update
        self.agent = agent
        self.clock = clock
        self.updater = Updater(
            node_id=agent.settings.node_id, state_dir=agent.settings.state_dir, settings=settings,
            running=running_release(settings.prefix) or rpfleet.__version__,
            artifacts=trusted_artifacts(settings.trusted_keys_file), node=NodeProbe(agent),
            restarter=self)
        self.recorder: ProofRecorder | None = None
        self.exit_status: int | None = None
        """`RESTART_STATUS` once the updater asked for a restart."""
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="updater")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._reports: dict[str, Any] = {}  # report id -> Receipt of its publish
        self._health_receipt = None
        self._test_event_receipt = None
        self._drivers_reported: dict[str, str] | None = None
        self._started_at: datetime | None = None
        self._tasks: set[asyncio.Task] = set()

    # ---- the updater's thread ---------------------------------------------------

    async def _call(self, fn: Callable, *args):
        """``fn(*args)`` in the updater's one thread; its errors are logged, never raised."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._worker, self._with_site_window, fn, *args)
        except Exception:  # noqa: BLE001 - an update problem must not stop the agent
            log.exception("updater: %s failed", getattr(fn, "__name__", fn))
            return None
        finally:
            self.pump_reports()

    def restart(self) -> None:
        """`agent.update.updater.Restarter`, called in the updater's thread: end the agent
        with `RESTART_STATUS`."""
        log.warning("ending the agent so that systemd starts the release `current` names")
        self.exit_status = RESTART_STATUS
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    # ---- what the agent calls -----------------------------------------------------

    async def open(self, stop: asyncio.Event) -> None:
        """At start, before the drivers and the link: resume an interrupted update (or roll
        back), then start recording this release's proof if it is the one being proven."""
        self._loop, self._stop = asyncio.get_running_loop(), stop
        journal = await self._call(self.updater.resume)
        self.recorder = ProofRecorder(self.updater.directory, self.updater.running)
        log.info("release %s; update state %s%s", self.updater.running,
                 journal.state if journal else "unknown",
                 " (proving this release)" if self.recorder.active else "")

    def drivers_started(self) -> None:
        self._started_at = self.clock()
        self._record_drivers()

    def close(self) -> None:
        """At stop. A download or install under way finishes in its thread (the process
        waits for it at exit, or systemd's stop timeout ends it: every step is kill-safe)."""
        for task in self._tasks:
            task.cancel()
        self._worker.shutdown(wait=False, cancel_futures=True)

    async def run(self) -> None:
        """Every `PROVING_TICK_S`: the proof, and reports the broker took; the updater's tick
        every `TICK_S` (every `PROVING_TICK_S` while this release proves itself)."""
        loop = asyncio.get_running_loop()
        next_tick = loop.time() + TICK_S
        while True:
            await asyncio.sleep(PROVING_TICK_S)
            proving = self.recorder is not None and self.recorder.active
            if proving:
                self._prove()
            self.pump_reports()
            if proving or loop.time() >= next_tick:
                next_tick = loop.time() + TICK_S
                await self._call(self.updater.tick)

    def _with_site_window(self, fn: Callable, *args):
        """``fn(*args)`` under the site's maintenance window when the desired config sets
        one (a site layer's ``maintenance_window``); else the node file's ``[update].window``."""
        window = self.agent.settings.maintenance_window or self.agent.local_settings.update.window
        if window != self.updater.settings.window:
            self.updater.settings = self.updater.settings.model_copy(update={"window": window})
        return fn(*args)

    def desired(self, payload: bytes) -> None:
        """``down/update`` (retained: again at every connect). Empty: no update desired."""
        if not payload:
            log.debug("no desired update")
            return
        try:
            message = decode_as(UpdateDesired, payload)
        except PayloadError as exc:
            log.warning("ignoring malformed desired update: %s", exc)
            return
        task = asyncio.get_running_loop().create_task(self._call(self.updater.desired, message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reset(self, reason: str) -> str:
        """The server's ``update-reset``; returns the journal's state afterwards."""
        journal = await self._call(self.updater.reset, reason)
        if journal is None:
            raise RuntimeError("the updater could not reset (see the agent's log)")
        return journal.state

    def connected(self) -> None:
        self._reports.clear()  # a new session: what was in flight goes again
        self.pump_reports()
        if self.recorder is not None and self.recorder.active:
            self.recorder.connected(self.clock())
            if self.recorder.proof.health_sent_at is None:
                self._health_receipt = self.agent.link.send(Channel.HEALTH, self.agent.health())

    def broker_failed(self, why: str) -> None:
        if self.recorder is not None:
            self.recorder.broker_failed(why)

    def publish_events(self, batch: EventBatch) -> bool:
        """The sender's publish: notes the receipt of the batch that holds the test event."""
        receipt = self.agent.link.send(Channel.EVENTS, batch)
        proof = self._proof_event_id()
        if receipt is not None and proof is not None and any(e.id == proof for e in batch.events):
            self._test_event_receipt = receipt
        return receipt is not None

    def acked(self, ids: list[str]) -> None:
        proof = self._proof_event_id()
        if proof is not None and proof in ids:
            self.recorder.test_event_acked(self.clock())

    def pump_reports(self) -> None:
        """Publish queued ``up/update`` reports (QoS 1); forget each once the broker took it."""
        link = self.agent.link
        if not link.connected:
            return
        for report_id, receipt in list(self._reports.items()):
            if receipt.acked:
                self.updater.reports.sent(report_id)
                del self._reports[report_id]
        for report_id, report in self.updater.reports.pending():
            if report_id not in self._reports:
                receipt = link.send(Channel.UPDATE_PROGRESS, report)
                if receipt is None:
                    return
                self._reports[report_id] = receipt

    # ---- the proof ------------------------------------------------------------------

    def _proof_event_id(self) -> str | None:
        recorder = self.recorder
        if recorder is None or recorder.proof is None:
            return None
        return recorder.proof.test_event_id

    def _record_drivers(self) -> None:
        if self.recorder is None or not self.recorder.active or self._started_at is None:
            return
        drivers = {p.id: "ok" if p.state == "ok" else f"{p.state}: {p.detail or ''}".rstrip(": ")
                   for p in self.agent._peripherals()}
        if drivers != self._drivers_reported:  # a driver opens its device a moment after start
            self.recorder.started(self._started_at, drivers)
            self._drivers_reported = drivers

    def _prove(self) -> None:
        recorder = self.recorder
        self._record_drivers()
        if self._health_receipt is not None and self._health_receipt.acked:
            recorder.health_sent(self.clock())
            self._health_receipt = None
        elif self._health_receipt is None and self.agent.link.connected and \
                recorder.proof.health_sent_at is None:
            self._health_receipt = self.agent.link.send(Channel.HEALTH, self.agent.health())
        if recorder.wants_test_event and self._started_at is not None:
            alarm = Alarm(code="update-proof", severity="info",
                          message=f"release {self.updater.running} proves it can record and send events")
            event = self.agent.outbox.record(alarm, self.clock(), clock_synced=self.agent.clock_synced)
            recorder.test_event_written(event.id, self.clock())
            self.agent.sender.pump()
        if self._test_event_receipt is not None and self._test_event_receipt.acked:
            recorder.test_event_sent(self.clock())
            self._test_event_receipt = None
