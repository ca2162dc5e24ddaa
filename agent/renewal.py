"""Renewing the node's certificate before it expires, with no technician.

Once the certificate has less than `rpfleet.pki.RENEW_BEFORE` (30 days) left,
the agent makes a new key and asks the enrollment endpoint for a certificate,
proving itself with the current one (`agent.identity.renew`). A failure is
retried an hour later, for 30 days. The old certificate is not revoked by a
renewal: a node that lost power before storing the new one must still be able
to connect with the old one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from typing import Callable

from agent.identity import EnrollError, IdentityFiles, renew
from rpfleet import pki

log = logging.getLogger(__name__)

CHECK_EVERY_S = 6 * 3600
RETRY_AFTER_S = 3600


def renewal_due(files: IdentityFiles, now: dt.datetime | None = None) -> bool:
    cert = pki.load_cert(files.cert.read_bytes())
    return pki.expires_within(cert, pki.RENEW_BEFORE, now)


class CertificateRenewal:
    """Checks every few hours; ``on_renewed`` runs on the loop after new files are in place."""

    def __init__(self, url: str, files: IdentityFiles, on_renewed: Callable[[], None]) -> None:
        self.url = url
        self.files = files
        self.on_renewed = on_renewed

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            wait = CHECK_EVERY_S * random.uniform(0.9, 1.1)
            try:
                if await asyncio.to_thread(renewal_due, self.files):
                    await self.renew_now()
            except (EnrollError, OSError, pki.PkiError) as exc:
                log.warning("certificate renewal failed, retrying in %d s: %s", RETRY_AFTER_S, exc)
                wait = RETRY_AFTER_S
            try:
                await asyncio.wait_for(stop.wait(), timeout=wait)
            except asyncio.TimeoutError:
                pass

    async def renew_now(self) -> None:
        await asyncio.to_thread(renew, self.url, self.files)
        cert = pki.load_cert(self.files.cert.read_bytes())
        log.info("certificate renewed: valid until %s", cert.not_valid_after_utc.isoformat())
        self.on_renewed()
