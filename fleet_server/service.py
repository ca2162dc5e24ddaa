"""The fleet server process: broker link -> ingest -> store, acks back."""

from __future__ import annotations

import logging
import threading

from fleet_server.ingest import Ingest
from fleet_server.link import ServerLink
from fleet_server.settings import ServerSettings
from fleet_server.store import connect
from rpfleet.protocol import Channel

log = logging.getLogger(__name__)


class FleetServer:
    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.engine = connect(settings.db_url)
        self.link = ServerLink(settings.broker, on_message=lambda t, p: self.ingest.submit(t, p))
        self.ingest = Ingest(
            self.engine, publish_ack=lambda node, ack: self.link.publish(node, Channel.ACK, ack)
        )

    def start(self) -> None:
        self.ingest.start()
        self.link.start()

    def stop(self) -> None:
        """Store and ack what arrived, then disconnect; safe to call twice.

        Whatever arrives during the flush is not acked, so its node sends it again.
        """
        self.ingest.stop()
        self.link.stop()
        self.engine.dispose()

    def serve(self, stop: threading.Event) -> None:
        self.start()
        log.info("fleet server running on %s", self.engine.url.render_as_string(hide_password=True))
        try:
            stop.wait()
        finally:
            self.stop()
            log.info("fleet server stopped: %s", self.ingest.stats)
