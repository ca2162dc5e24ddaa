"""The Scanner driver: reader items -> reads -> classified scans -> recorded -> acknowledged.

What a reader sends never reaches a log line: logs name a scan's kind and
length only, and a read holding personal data is redacted (`codes`) before
it is built into an event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from pydantic import ValidationError

from devices.base import DeviceSlot, OnSlot, Record
from devices.scanner.adapter import Assembler, ReaderAdapter
from devices.scanner.codes import Classified, CodeClassifier, shipped_kinds
from devices.scanner.config import ScannerConfig
from devices.scanner.lines import LineFramer
from devices.scanner.reads import Read
from devices.scanner.symbology import split_symbology
from devices.scanner.wedge import WedgeDecoder, WedgeTerminator
from rpfleet.protocol.messages import PeripheralHealth, Scan

log = logging.getLogger(__name__)

REOPEN_DELAYS_S = (1, 2, 5, 10, 30)
MIN_SECRET_BYTES = 16


class Scanner(OnSlot):
    kind = "scanner"

    def __init__(
        self,
        config: ScannerConfig,
        adapter: ReaderAdapter[Any],
        new_assembler: Callable[[], Assembler[Any]],
        record: Record,
    ) -> None:
        self.config = config
        self.id = config.id
        self.adapter = adapter
        self.slot = DeviceSlot(config.device)
        self._new_assembler = new_assembler
        self._record = record
        self._classifier: CodeClassifier | None = None
        self._problem: str | None = None
        """Why the reader serves degraded (an unusable hash secret)."""
        self._note: str | None = None
        """What health should say while all is well (no hash secret configured)."""
        self._state = PeripheralHealth(id=config.id, kind=self.kind, state="missing")
        self.scans = 0

    def health(self) -> PeripheralHealth:
        return self._state

    async def run(self) -> None:
        self._classifier = self._load_classifier()
        failures = 0
        while True:
            assembler = self._new_assembler()
            try:
                await self.adapter.open(self.slot.path)
                self._set_serving()
                failures = 0
                await self._serve(assembler)
                self._set("missing", "device went away")
            except OSError as exc:
                self._set("missing", str(exc))
            except Exception as exc:
                # Not the device's absence: a fault. The agent's supervisor restarts us.
                self._set("failed", f"{type(exc).__name__}: {exc}")
                raise
            finally:
                lost = assembler.discard()
                if lost:
                    log.warning("scanner %s: a code cut off by the reader going away was dropped "
                                "(%d characters)", self.id, lost)
                await self.adapter.close()
            delay = REOPEN_DELAYS_S[min(failures, len(REOPEN_DELAYS_S) - 1)]
            failures += 1
            await self.slot.wait_change(delay)

    async def _serve(self, assembler: Assembler[Any]) -> None:
        """Feed the reader's items to the assembler, and wake it when silence ends a read."""
        items = aiter(self.adapter.items())
        upcoming = asyncio.ensure_future(anext(items))
        try:
            while True:
                deadline = assembler.deadline()
                wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                done, _ = await asyncio.wait({upcoming}, timeout=wait)
                if not done:
                    reads = assembler.expire(time.monotonic())
                else:
                    try:
                        item = upcoming.result()
                    except StopAsyncIteration:
                        return
                    upcoming = asyncio.ensure_future(anext(items))
                    reads = assembler.feed(item)
                for read in reads:
                    await self._take(read)
        finally:
            # Let the adapter's generator finish (and unhook its device) before close().
            upcoming.cancel()
            await asyncio.gather(upcoming, return_exceptions=True)
            closing = getattr(items, "aclose", None)
            if closing is not None:
                await closing()

    async def _take(self, read: Read) -> None:
        assert self._classifier is not None
        symbology, code = None, read.code
        if self.config.aim_prefix:
            symbology, code = split_symbology(code)
        if not code:
            return
        found = self._classifier.classify(code, partial=read.partial)
        try:
            detail = self._event(found, symbology, read.partial)
        except ValueError as exc:  # a table or config the wire contract refuses: fix, serve on
            log.error("scanner %s: %s", self.id, exc)
            self._set("failed", str(exc)[:500])
            return
        log.debug("scanner %s: %s code, %d characters%s", self.id, found.kind, len(code),
                  " (partial)" if read.partial else "")
        try:
            await self._record(detail, read.at)
        except Exception as exc:  # noqa: BLE001 - whatever the store's failure, we serve on
            log.error("scanner %s: a %s scan could not be recorded: %s", self.id, found.kind, exc)
            self._set("failed", f"last scan not recorded: {exc}")
            return
        self.scans += 1
        self._set_serving()
        try:
            await self.adapter.acknowledge()
        except OSError as exc:
            log.warning("scanner %s: could not acknowledge the scan: %s", self.id, exc)

    def _event(self, found: Classified, symbology: str | None, partial: bool) -> Scan:
        try:
            return Scan(
                scanner=self.id,
                counter=self.config.counter,
                code=found.code,
                symbology=symbology,
                partial=partial,
                code_kind=found.kind,
                fields=found.fields or None,
                redacted=found.redacted,
            )
        except ValidationError as exc:
            # pydantic quotes the bad input in its message; the input may be personal.
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                for e in exc.errors(include_input=False, include_url=False)
            )
            raise ValueError(f"scan event refused: {problems}") from None

    def _load_classifier(self) -> CodeClassifier:
        """The classifier, keyed with the hash secret when one is configured and usable.

        A configured secret that cannot be used is a fault to fix (degraded);
        no secret at all is a choice (ok, said in the detail). Either way the
        hashed parts are then not stored, never stored in clear.
        """
        key, self._problem, self._note = None, None, None
        path = self.config.hash_secret_file
        if path is not None:
            try:
                key = path.read_bytes().rstrip(b"\r\n")  # as `echo` leaves it
            except OSError as exc:
                self._problem = f"hash secret unreadable ({exc.strerror}: {path})"
            else:
                if len(key) < MIN_SECRET_BYTES:
                    key = None
                    self._problem = f"hash secret {path} is shorter than {MIN_SECRET_BYTES} bytes"
        classifier = CodeClassifier(
            self.config.code_kinds if self.config.code_kinds is not None else shipped_kinds(),
            hash_key=key,
            unknown=self.config.unknown_codes,
            partial=self.config.partial_codes,
        )
        if classifier.drops_hashed_parts:
            if self._problem:
                self._problem += "; hashed parts are not stored"
                log.error("scanner %s: %s", self.id, self._problem)
            else:
                self._note = "no hash secret: hashed parts are not stored"
                log.warning("scanner %s: %s", self.id, self._note)
        return classifier

    def _set_serving(self) -> None:
        if self._problem:
            self._set("degraded", self._problem)
        else:
            self._set("ok", self._note)

    def _set(self, state: str, detail: str | None = None) -> None:
        if state != self._state.state:
            log.info("scanner %s: %s%s", self.id, state, f" ({detail})" if detail else "")
        self._state = PeripheralHealth(id=self.id, kind=self.kind, state=state, detail=detail)


FAKE_TERMINATOR_BYTES = {"enter": b"\r\n", "cr": b"\r", "lf": b"\n", "tab": b"\t", "none": b""}


def build_scanner(config: ScannerConfig, record: Record) -> Scanner:
    """The driver for one configured reader, not yet started."""
    adapter: ReaderAdapter[Any]
    new_assembler: Callable[[], Assembler[Any]]
    if config.source == "evdev":
        from devices.scanner.evdev_adapter import EvdevReader

        adapter = EvdevReader()
        # The config allows a wedge only enter, tab or none.
        terminator: WedgeTerminator = config.terminator  # type: ignore[assignment]

        def new_assembler() -> Assembler[Any]:
            return WedgeDecoder(terminator, config.timeout, config.max_length)

    else:
        if config.source == "serial":
            from devices.scanner.serial_adapter import SerialReader

            adapter = SerialReader(config.baudrate, config.ack_bytes)
        else:
            from devices.scanner.fake import FakeReader

            terminator_bytes = FAKE_TERMINATOR_BYTES[config.terminator]
            adapter = FakeReader(terminator_bytes, scan_every_s=config.fake_scan_every)

        def new_assembler() -> Assembler[Any]:
            return LineFramer(config.terminator, config.timeout, config.max_length)

    return Scanner(config, adapter, new_assembler, record)
