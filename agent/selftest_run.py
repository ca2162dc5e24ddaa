"""Walks the technician through the self-test: drives the real peripheral drivers,
talks to the person at the terminal, and judges each step with `agent.selftest`.

Only the peripheral under test runs, each for its own step, and what it records
goes to the step, never to the outbox: test taps are not citizens' ratings.
Hot-plug runs throughout, so a device plugged in during the test is found.
Every wait has a timeout, so nothing hangs on an absent device or an absent
person; cancelling (Ctrl-C) closes every device on the way out.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
import os
from datetime import datetime, timezone
from typing import AsyncIterator, Callable, TextIO

from agent import __version__
from agent.hotplug import HotPlug, udev_monitor
from agent.selftest import (
    Outcome,
    clip,
    Prompt,
    Step,
    Watch,
    handover,
    judge_answer,
    judge_probe,
    judge_watch,
    parse_answer,
    plan,
    watch_for,
)
from agent.settings import AgentSettings
from devices.base import Driver
from devices.hotplug.adapter import DeviceMonitor, UdevEvent
from devices.hotplug.nodes import Properties
from devices.registry import build_driver
from rpfleet.durations import format_duration
from rpfleet.protocol.messages import EventDetail, Handover

log = logging.getLogger(__name__)

HOTPLUG_WAIT_S = 3.0
"""How long the test waits for hot-plug's first look at what is plugged in."""
LOOK_EVERY_S = 2.0
"""How often a watch step looks whether the device is there at all."""
STOP_AGENT_HINT = Prompt(
    "Nếu dịch vụ agent đang chạy, hãy dừng nó trước: sudo systemctl stop rpfleet-agent",
    "if the agent service is running, stop it first: sudo systemctl stop rpfleet-agent",
)


class Console:
    """The technician's terminal: prompts out, answer lines in.

    Lines are read through the event loop (``add_reader``), so a wait for an
    answer can time out and be cancelled; a thread blocked in ``readline``
    could not.
    """

    def __init__(self, input_fd: int, out: TextIO) -> None:
        self._fd = input_fd
        self._out = out
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self.open = False
        """True until the input ends."""

    def start(self) -> None:
        self.open = True
        loop = asyncio.get_running_loop()
        try:
            loop.add_reader(self._fd, self._readable)
        except PermissionError:
            # A regular file (`< answers.txt`) cannot be polled; it never blocks either.
            while self.open:
                self._readable()
            return
        self._loop = loop

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self._fd)
            self._loop = None

    def say(self, text: str) -> None:
        print(text, file=self._out, flush=True)

    async def line(self, timeout: float | None) -> str | None:
        """The next line typed, stripped; None when ``timeout`` passed or the input ended."""
        if not self.open and self._lines.empty():
            return None
        try:
            return await asyncio.wait_for(self._lines.get(), timeout)
        except asyncio.TimeoutError:
            return None

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.stop()
            self.open = False
            self._lines.put_nowait(None)
            return
        self._buffer += self._decoder.decode(data)
        *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            self._lines.put_nowait(line.strip())


class _Watched:
    """A udev monitor that says when hot-plug has carried out its first look."""

    def __init__(self, monitor: DeviceMonitor) -> None:
        self._monitor = monitor
        self.looked = asyncio.Event()

    async def open(self) -> list[Properties]:
        return await self._monitor.open()

    async def events(self) -> AsyncIterator[UdevEvent]:
        self.looked.set()  # HotPlug asks for events only once it has attached what is present
        async for event in self._monitor.events():
            yield event

    async def close(self) -> None:
        await self._monitor.close()


class SelfTest:
    def __init__(
        self,
        settings: AgentSettings,
        console: Console,
        *,
        timeout: float,
        monitor: Callable[[], DeviceMonitor] = udev_monitor,
    ) -> None:
        self.settings = settings
        self.console = console
        self.timeout = timeout
        self._monitor = monitor
        self.steps: list[Step] = plan(settings.peripherals)
        self.drivers: dict[str, Driver] = {
            p.id: build_driver(p, self._record) for p in settings.peripherals
        }
        self._watching: Watch | None = None
        self._watch_done = asyncio.Event()

    async def run(self, technician: str | None = None) -> Handover:
        """Every step in turn, then the record (not yet sent). Cancelling stops it cleanly."""
        say = self.console.say
        started_at = datetime.now(timezone.utc)
        monitor = _Watched(self._monitor())
        hotplug = asyncio.create_task(
            HotPlug(self.drivers.values(), _discard, monitor).run(), name="selftest hotplug"
        )
        looked = asyncio.create_task(monitor.looked.wait())
        try:
            # Devices found by udev identity are attached by hot-plug's first look.
            await asyncio.wait({looked, hotplug}, timeout=HOTPLUG_WAIT_S,
                               return_when=asyncio.FIRST_COMPLETED)
            if technician is None:
                technician = await self._technician()
            outcomes: list[Outcome] = []
            total = len(self.steps)
            for number, step in enumerate(self.steps, start=1):
                say(f"\n[{number}/{total}] {step.title.vi}\n      {step.title.en}")
                outcome = await self._do(step)
                say(f"    => {'ĐẠT / PASSED' if outcome.passed else 'KHÔNG ĐẠT / FAILED'}: {outcome.seen}")
                outcomes.append(await self._noted(outcome))
        finally:
            looked.cancel()
            hotplug.cancel()
            await asyncio.gather(looked, hotplug, return_exceptions=True)
        return handover(
            self.settings.node_id, self.steps, outcomes,
            technician=technician, started_at=started_at,
            finished_at=datetime.now(timezone.utc), agent_version=__version__,
        )

    # steps ------------------------------------------------------------------

    async def _do(self, step: Step) -> Outcome:
        driver = self.drivers.get(step.peripheral)
        if step.how == "watch" and driver is not None:
            return await self._watch(step, driver)
        if step.how == "probe" and driver is not None and hasattr(driver, "look"):
            self.console.say("    Đang kiểm tra thiết bị… / checking the device…")
            try:
                found = await asyncio.wait_for(driver.look(), self.timeout)
            except asyncio.TimeoutError:
                return Outcome(False, f"no answer from the device in {format_duration(self.timeout)}")
            except Exception as exc:  # noqa: BLE001 - a failed look is the step's verdict
                return Outcome(False, clip(f"could not look at the device: {type(exc).__name__}: {exc}"))
            failed = judge_probe(found.state, found.detail)
            if failed is not None:
                return failed
            probed = found.detail or found.state
        else:
            probed = None
        assert step.question is not None
        self.console.say(step.instruction.text("    "))
        answer = await self._ask(step.question)
        return judge_answer(answer, self.timeout, probed)

    async def _watch(self, step: Step, driver: Driver) -> Outcome:
        say = self.console.say
        say(step.instruction.text("    "))
        say(f"    (Enter: bỏ qua / skip; tối đa / at most {format_duration(self.timeout)})")
        loop = asyncio.get_running_loop()
        self._watching, self._watch_done = watch_for(step), asyncio.Event()
        watch = self._watching
        running = asyncio.create_task(driver.run(), name=f"selftest {driver.id}")
        done = asyncio.create_task(self._watch_done.wait())
        typed: asyncio.Task[str | None] | None = (
            asyncio.create_task(self.console.line(None)) if self.console.open else None
        )
        started = loop.time()
        deadline = started + self.timeout
        told_missing: str | None = None
        ending = "timeout"
        try:
            while (left := deadline - loop.time()) > 0:
                waiting = {done, running} | ({typed} if typed is not None else set())
                finished, _ = await asyncio.wait(
                    waiting, timeout=min(left, LOOK_EVERY_S), return_when=asyncio.FIRST_COMPLETED
                )
                if done in finished:
                    ending = "done"
                    break
                if running in finished:
                    ending = "driver-failed"
                    break
                if typed is not None and typed in finished:
                    if typed.result() is not None:
                        ending = "skipped"
                        break
                    typed = None  # the input ended: wait for the device alone
                health = driver.health()
                if health.state in ("missing", "failed") and told_missing != health.state:
                    told_missing = health.state
                    say(f"    Chưa thấy thiết bị / device not found: {health.detail or health.state}")
                    say(STOP_AGENT_HINT.text("    "))
        finally:
            self._watching = None
            for task in (done, running, typed):
                if task is not None:
                    task.cancel()
            results = await asyncio.gather(
                *(t for t in (done, running, typed) if t is not None), return_exceptions=True
            )
        device = None
        if ending == "driver-failed":
            error = results[1]
            device = f"failed: {type(error).__name__}: {error}" if isinstance(error, BaseException) \
                else "failed: the driver stopped"
        else:
            health = driver.health()
            if health.state != "ok" and not watch.done:
                device = f"{health.state}: {health.detail}" if health.detail else health.state
        return judge_watch(watch, ending, loop.time() - started, device)

    async def _record(self, detail: EventDetail, at: datetime) -> None:
        """The drivers' `Record`: what the peripheral under test sends goes to its step."""
        watch = self._watching
        if watch is None:
            return
        feedback = watch.feed(detail)
        if feedback is not None:
            self.console.say(f"    {feedback.vi} / {feedback.en}")
        if watch.done:
            self._watch_done.set()

    # questions --------------------------------------------------------------

    async def _ask(self, question: Prompt) -> bool | None:
        """Yes or no from the technician; None when no answer came within the timeout."""
        say = self.console.say
        say(f"    {question.vi} (c/k)\n    {question.en} (y/n)")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while (left := deadline - loop.time()) > 0:
            line = await self.console.line(left)
            if line is None:
                return None
            answer = parse_answer(line)
            if answer is not None:
                return answer
            say("    Xin trả lời có (c) hoặc không (k) / please answer yes (y) or no (n)")
        return None

    async def _technician(self) -> str | None:
        if not self.console.open:
            return None
        self.console.say("Tên kỹ thuật viên (Enter để bỏ qua) / technician's name (Enter to skip):")
        return await self.console.line(self.timeout) or None

    async def _noted(self, outcome: Outcome) -> Outcome:
        """A failed step may get the technician's note."""
        if outcome.passed or not self.console.open:
            return outcome
        self.console.say("    Ghi chú (Enter để bỏ qua) / note (Enter to skip):")
        note = await self.console.line(self.timeout)
        return Outcome(outcome.passed, outcome.seen, note or None)


async def _discard(detail: EventDetail, at: datetime) -> None:
    """Hot-plug's attach and detach events during a test are not the fleet's business."""

