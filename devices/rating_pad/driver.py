"""The RatingPad driver: adapter events -> decoded taps -> recorded events -> thanks."""

from __future__ import annotations

import logging

from devices.base import DeviceSlot, OnSlot, Record
from devices.rating_pad.adapter import KeypadAdapter
from devices.rating_pad.config import RatingPadConfig
from devices.rating_pad.decoding import Tap, TapDecoder
from rpfleet.protocol.messages import PeripheralHealth, RatingTap

log = logging.getLogger(__name__)

REOPEN_DELAYS_S = (1, 2, 5, 10, 30)


class RatingPad(OnSlot):
    """Serves one pad: reopens it whenever it comes back, records each tap, then thanks.

    A tap that cannot be recorded is not thanked; the pad serves on and its
    health says so. A device that is absent or vanishes makes the pad
    ``missing`` until it is back; any other error is a fault for the agent's
    supervisor.
    """

    kind = "rating-pad"

    def __init__(self, config: RatingPadConfig, adapter: KeypadAdapter, record: Record) -> None:
        self.config = config
        self.id = config.id
        self.adapter = adapter
        self.slot = DeviceSlot(config.device)
        self._record = record
        self._state: PeripheralHealth = PeripheralHealth(id=config.id, kind=self.kind, state="missing")
        self.taps = 0

    def health(self) -> PeripheralHealth:
        if self._state.state == "ok":
            return self._state.model_copy(update={"detail": self.adapter.describe()})
        return self._state

    async def run(self) -> None:
        # One decoder for the pad's whole run: a burst goes on counting across a replug.
        decoder = TapDecoder(self.config.keys, self.config.bounce, self.config.misuse_limits())
        failures = 0
        while True:
            try:
                await self.adapter.open(self.slot.path)
                self._set("ok")
                failures = 0
                async for event in self.adapter.events():
                    tap = decoder.feed(event)
                    if tap is not None:
                        await self._take(tap)
                self._set("missing", "device went away")
            except OSError as exc:
                self._set("missing", str(exc))
            except Exception as exc:
                # Not the device's absence: a fault. The agent's supervisor restarts us.
                self._set("failed", f"{type(exc).__name__}: {exc}")
                raise
            finally:
                await self.adapter.close()
            delay = REOPEN_DELAYS_S[min(failures, len(REOPEN_DELAYS_S) - 1)]
            failures += 1
            await self.slot.wait_change(delay)

    async def _take(self, tap: Tap) -> None:
        detail = RatingTap(
            pad=self.config.id,
            counter=self.config.counter,
            rating=tap.rating,
            scale=self.config.scale,
            suspect=tap.suspect,
            mono_ns=round(tap.mono * 1e9),
        )
        try:
            await self._record(detail, tap.at)
        except Exception as exc:  # noqa: BLE001 - whatever the store's failure, the pad serves on
            log.exception("pad %s: a tap could not be recorded", self.id)
            self._set("failed", f"last tap not recorded: {exc}")
            return
        self.taps += 1
        if tap.suspect:
            log.info("pad %s: rating %d stored as suspect (%s)", self.id, tap.rating, tap.suspect)
        self._set("ok")
        await self.adapter.thank()

    def _set(self, state: str, detail: str | None = None) -> None:
        if state != self._state.state:
            log.info("pad %s: %s%s", self.id, state, f" ({detail})" if detail else "")
        self._state = PeripheralHealth(id=self.id, kind=self.kind, state=state, detail=detail)


def build_rating_pad(config: RatingPadConfig, record: Record) -> RatingPad:
    """The pad's driver with the adapter its ``source`` names; hardware libraries load only here."""
    adapter: KeypadAdapter
    if config.source == "fake":
        from devices.rating_pad.fake import FakeKeypad

        adapter = FakeKeypad(config.keys, press_every_s=config.fake_press_every)
    elif config.source == "serial":
        from devices.rating_pad.serial_adapter import SerialPad

        adapter = SerialPad(config.baudrate)
    else:
        from devices.rating_pad.evdev_adapter import EvdevKeypad

        adapter = EvdevKeypad(config.keys)
    return RatingPad(config, adapter, record)
