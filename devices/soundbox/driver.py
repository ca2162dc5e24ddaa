"""The Soundbox driver: `Announce` messages -> the queue -> composed and rendered with the voice
pack -> said through an adapter, one at a time -> what happened, recorded as an event."""

from __future__ import annotations

import array
import asyncio
import logging
import sys
from datetime import datetime, timezone
from typing import Callable

from devices.base import DeviceSlot, OnSlot, Record
from devices.soundbox.adapter import DeviceBusy, NotSaid, Played, SpeakerAdapter, Utterance
from devices.soundbox.config import SoundboxConfig
from devices.soundbox.queue import (
    AnnouncementQueue,
    Duplicate,
    Entry,
    Expired,
    Merged,
    Queued,
    Refused,
)
from devices.soundbox.voice_pack import (
    Announcement,
    ComposeError,
    VoicePack,
    VoicePackError,
    compose,
    gap_samples,
    load_pack,
    missing_files,
    pcm_bytes,
    render,
)
from rpfleet.protocol.messages import Announce, AnnouncementResult, PeripheralHealth

log = logging.getLogger(__name__)

REOPEN_DELAYS_S = (1, 2, 5, 10, 30)
BUSY_RETRY_S = (0.5, 1.0, 2.0)
"""While the output is busy, try again after these pauses (as long as the announcement is
not expired), then give up and report it."""
CHECK_EVERY_S = 30.0
"""While idle, make sure the output is still there this often (health says missing)."""
SECONDS_PER_WORD = 0.4
"""The estimate for clips whose length the pack does not record."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Soundbox(OnSlot):
    """Serves one soundbox: says the announcements given to `announce`, in the queue's order
    (devices/soundbox/queue.py), each in full, and records an `AnnouncementResult` for each.

    The voice pack is loaded when the driver starts; a pack that cannot be used makes the
    soundbox ``failed`` (and the supervisor starts it again later). An output that is absent
    or vanishes makes it ``missing`` until it is back; what waits meanwhile is reported
    ``no-device``, not kept for later.
    """

    kind = "soundbox"

    def __init__(
        self,
        config: SoundboxConfig,
        adapter: SpeakerAdapter,
        record: Record,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.config = config
        self.id = config.id
        self.adapter = adapter
        self.slot = DeviceSlot(config.device)
        self._record = record
        self._clock = clock
        self.queue: AnnouncementQueue[Announce] = AnnouncementQueue(
            clock, merge_window_s=config.merge_window, max_pending=config.max_pending
        )
        self._pack: VoicePack | None = None
        self._wake = asyncio.Event()
        self._state = PeripheralHealth(id=config.id, kind=self.kind, state="missing")
        self._reporting: set[asyncio.Task] = set()
        self.played = 0

    # -- what the agent calls ----------------------------------------------------------------

    def announce(self, message: Announce) -> bool:
        """Take ``message`` for saying (on the agent's loop; returns at once).

        False when this soundbox does not serve its counter. What happens to it is recorded
        later as an `AnnouncementResult` (played, merged, expired, ...); a redelivery of an id
        already taken is ignored.
        """
        if not self.config.serves(message.counter):
            return False
        outcome = self.queue.offer(message)
        if isinstance(outcome, Queued):
            log.info("soundbox %s: %s %s queued", self.id, message.kind, message.id)
            self._wake.set()
        elif isinstance(outcome, Duplicate):
            log.info("soundbox %s: %s already taken (a redelivery)", self.id, message.id)
        elif isinstance(outcome, Merged):
            self._report_later(message, "merged", outcome.reason, merged_into=outcome.into)
        elif isinstance(outcome, Expired):
            self._report_later(message, "expired", outcome.reason)
        elif isinstance(outcome, Refused):
            self._report_later(message, "failed", outcome.reason)
        return True

    @property
    def busy(self) -> bool:
        """Saying an announcement, or holding one to say (the updater waits for quiet)."""
        return self.queue.playing is not None or self.queue.pending_count() > 0

    def health(self) -> PeripheralHealth:
        if self._state.state == "ok":
            return self._state.model_copy(update={"detail": self.adapter.describe()})
        return self._state

    async def run(self) -> None:
        if self.queue.playing is not None:  # the last run was stopped while saying it
            self.queue.finished(said=False)
        try:
            self._pack = self._load_pack()
        except VoicePackError as exc:
            self._set("failed", str(exc))
            await self._give_up_waiting("failed", f"the voice pack cannot be used: {exc}")
            raise
        failures = 0
        while True:
            opened = self.slot.path
            try:
                await self.adapter.open(opened)
                self._set("ok")
                failures = 0
                await self._serve(opened)
                continue  # hot-plug moved the device: open it where it is now
            except OSError as exc:
                self._set("missing", str(exc) or type(exc).__name__)
                await self._give_up_waiting("no-device", f"the soundbox is missing: {exc}")
            except Exception as exc:
                # Not the device's absence: a fault. The agent's supervisor restarts us.
                self._set("failed", f"{type(exc).__name__}: {exc}")
                await self._give_up_waiting("failed", f"the soundbox failed: {exc}")
                raise
            finally:
                await self.adapter.close()
            delay = REOPEN_DELAYS_S[min(failures, len(REOPEN_DELAYS_S) - 1)]
            failures += 1
            await self._idle(delay)  # an announcement or a replug tries again at once

    # -- serving -------------------------------------------------------------------------------

    async def _serve(self, opened: str | None) -> None:
        """Say what comes until the output fails (OSError) or hot-plug moves it (returns)."""
        while True:
            taken = self.queue.take()
            for expired in taken.expired:
                await self._report(expired.announce, "expired", expired.reason)
            if taken.entry is not None:
                await self._say(taken.entry)
                continue
            if not await self._idle(CHECK_EVERY_S):
                await self.adapter.check()
            if self.slot.path != opened:
                return

    async def _say(self, entry: Entry[Announce]) -> None:
        message = entry.announce
        try:
            utterance = await asyncio.to_thread(self._prepare, message)
        except (ComposeError, VoicePackError) as exc:
            self.queue.finished(said=False)
            await self._report(message, "failed", str(exc))
            return
        pauses = list(BUSY_RETRY_S)
        while True:
            started = self._clock()
            try:
                played = await self.adapter.play(utterance)
                break
            except DeviceBusy as exc:
                pause = pauses.pop(0) if pauses else None
                if pause is None or (self._clock() - entry.expires_at).total_seconds() > -pause:
                    self.queue.finished(said=False)
                    self._set("degraded", f"device busy: {exc}")
                    await self._report(message, "device-busy", str(exc) or "device busy")
                    return
                self._set("degraded", f"device busy: {exc}")
                await asyncio.sleep(pause)
            except NotSaid as exc:
                self.queue.finished(said=False)
                await self._report(message, "failed", str(exc))
                return
            except OSError as exc:
                self.queue.finished(said=False)
                await self._report(message, "no-device", f"the soundbox went away: {exc}")
                raise
            except Exception as exc:
                self.queue.finished(said=False)
                await self._report(message, "failed", f"{type(exc).__name__}: {exc}")
                raise
        self.queue.finished(said=True)
        self.played += 1
        self._set("ok")
        self._check_full(played, utterance)
        await self._report(
            message, "played", None, at=started, clips=list(utterance.clips),
            duration_ms=round(played.duration_s * 1000),
            waited_ms=max(0, round((started - entry.arrived_at).total_seconds() * 1000)),
        )

    def _prepare(self, message: Announce) -> Utterance:
        """Compose (and render, for outputs that take sound) ``message``; in a worker thread."""
        pack = self._pack
        assert pack is not None, "run() loads the pack first"
        config = self.config
        counter = message.counter
        if counter is None and len(config.counters) == 1:
            counter = config.counters[0]  # "this is the speaker of counter N"
        said = Announcement(message.kind, message.ticket, counter, message.amount_vnd, message.text)
        clips = compose(said, pack, config.style, variant=self._wording(message, pack),
                        ticket_reading=config.ticket_reading)
        words = " ".join(pack.manifest.clips[clip].text for clip in clips)
        rate = pack.info.sample_rate
        if not self.adapter.wants_pcm:
            return Utterance(message.id, tuple(clips), words, rate, None, estimate_s(clips, pack))
        pcm = scaled(render(clips, pack), config.volume)
        return Utterance(message.id, tuple(clips), words, rate, pcm, len(pcm) / 2 / rate)

    def _wording(self, message: Announce, pack) -> str:
        """The server's choice (priority, then service) where the pack has it, else the node's."""
        variants = pack.manifest.templates.get(message.kind) or {}
        for asked in ("priority" if message.priority else None, message.service):
            if asked and asked in variants:
                return asked
        return self.config.wording.get(message.kind, "default")

    def _check_full(self, played: Played, utterance: Utterance) -> None:
        # An output that finished sooner than the sound lasts cannot have said all of it.
        if utterance.pcm is not None and played.elapsed_s + 0.02 < utterance.expected_s:
            log.warning("soundbox %s: %s took %.3fs, less than its %.3fs: is the output real?",
                        self.id, utterance.ref, played.elapsed_s, utterance.expected_s)
        log.info("soundbox %s: said %s (%.2fs%s)", self.id, utterance.ref, played.duration_s,
                 f"; {played.detail}" if played.detail else "")

    # -- waiting -------------------------------------------------------------------------------

    async def _idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for an announcement or a hot-plug change; True if one came."""
        if self._wake.is_set():
            self._wake.clear()
            return True
        woken = asyncio.create_task(self._wake.wait())
        moved = asyncio.create_task(self.slot.wait_change(timeout))
        try:
            done, _ = await asyncio.wait({woken, moved}, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
            moved.cancel()
        self._wake.clear()
        return woken in done or (moved in done and moved.result())

    # -- reporting -----------------------------------------------------------------------------

    async def _give_up_waiting(self, outcome: str, reason: str) -> None:
        for expired in self.queue.drop_expired():
            await self._report(expired.announce, "expired", expired.reason)
        for entry in self.queue.drain():
            await self._report(entry.announce, outcome, reason)

    def _report_later(self, message: Announce, outcome: str, reason: str, **fields) -> None:
        report = self._report(message, outcome, reason, **fields)
        task = asyncio.get_running_loop().create_task(report)
        self._reporting.add(task)
        task.add_done_callback(self._reporting.discard)

    async def _report(self, message: Announce, outcome: str, reason: str | None, *,
                      at: datetime | None = None, **fields) -> None:
        if outcome != "played":
            log.warning("soundbox %s: %s %s %s: %s",
                        self.id, message.kind, message.id, outcome, reason)
        detail = AnnouncementResult(
            soundbox=self.id, announce_id=message.id, announce_kind=message.kind,
            counter=message.counter, ticket=message.ticket, outcome=outcome,
            reason=reason[:2000] if reason else None, **fields,
        )
        try:
            await self._record(detail, at or self._clock())
        except Exception:  # noqa: BLE001 - the announcement is over either way; it serves on
            log.exception("soundbox %s: the result of %s could not be recorded",
                          self.id, message.id)

    # -- the rest --------------------------------------------------------------------------------

    def _load_pack(self) -> VoicePack:
        pack = load_pack(self.config.voice_pack)
        if self.config.style not in pack.info.styles:
            raise VoicePackError(f"voice pack {pack.label} does not read numbers in the "
                                 f"{self.config.style} style "
                                 f"(it has {', '.join(pack.info.styles)})")
        for kind, variant in self.config.wording.items():
            if variant not in pack.manifest.templates.get(kind, {}):
                raise VoicePackError(
                    f"voice pack {pack.label} has no {variant!r} wording for {kind}")
        if self.adapter.wants_pcm:
            missing = missing_files(pack)
            if missing:
                raise VoicePackError(f"voice pack {pack.label} at {pack.root} is not built: "
                                     f"{len(missing)} clip file(s) missing, e.g. {missing[0]} "
                                     "(rpfleet provision voice-pack build)")
        log.info("soundbox %s: voice pack %s", self.id, pack.label)
        return pack

    def _set(self, state: str, detail: str | None = None) -> None:
        if state != self._state.state:
            log.info("soundbox %s: %s%s", self.id, state, f" ({detail})" if detail else "")
        self._state = PeripheralHealth(id=self.id, kind=self.kind, state=state, detail=detail)


def scaled(pcm: bytes, volume: float) -> bytes:
    """16-bit little-endian PCM with every sample multiplied by ``volume`` (0..1)."""
    if volume >= 1.0:
        return pcm
    samples = array.array("h")
    samples.frombytes(pcm)
    if sys.byteorder == "big":
        samples.byteswap()
    return pcm_bytes(array.array("h", (round(s * volume) for s in samples)))


def estimate_s(clips: list[str], pack: VoicePack) -> float:
    """How long ``clips`` take to say with ``pack``'s gaps, from the lengths its manifest
    records (an unmeasured clip counts SECONDS_PER_WORD a word)."""
    info, table = pack.info, pack.manifest.clips
    total = 0.0
    for index, clip_id in enumerate(clips):
        clip = table[clip_id]
        if clip.duration_ms is not None:
            total += clip.duration_ms / 1000
        else:
            total += SECONDS_PER_WORD * len(clip.text.split())
        if index:
            total += gap_samples(table[clips[index - 1]].text, clip.text, info) / info.sample_rate
    return total


def build_soundbox(config: SoundboxConfig, record: Record) -> Soundbox:
    """The soundbox's driver with the adapter its ``output`` names; hardware libraries load
    only here."""
    adapter: SpeakerAdapter
    if config.output == "fake":
        from devices.soundbox.fake import FakeSpeaker

        adapter = FakeSpeaker()
    elif config.output == "serial":
        from devices.soundbox.serial_adapter import SerialSpeaker

        adapter = SerialSpeaker(config.baudrate, volume=config.volume)
    else:
        from devices.soundbox.sounddevice_adapter import SounddeviceSpeaker

        adapter = SounddeviceSpeaker(config.output_name, card_required=config.match is not None,
                                     lead_in_s=config.lead_in, tail_s=config.tail)
    return Soundbox(config, adapter, record)

