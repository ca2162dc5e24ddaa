"""The fleet server process: broker link -> ingest -> store, acks back."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from fleet_server import desired_config
from fleet_server.duty import Duties, PeriodicDuty
from fleet_server.ingest import Ingest
from fleet_server.jobs import Dispatcher
from fleet_server.link import ServerLink
from fleet_server.settings import ServerSettings
from fleet_server.store import connect
from rpfleet.protocol import Channel

if TYPE_CHECKING:
    from fleet_server.api.serving import HttpService

log = logging.getLogger(__name__)

CONFIG_RECONCILE_S = 60.0
"""How often nodes placed, moved or enrolled since the last layer change get their config."""
ROLLOUT_STEP_S = 10.0
"""How often rollouts are stepped and due desired updates published (fleet_server.rollouts)."""


class FleetServer:
    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.engine = connect(settings.db_url)
        self.link = ServerLink(
            settings.broker, on_message=lambda t, p, retained: self.ingest.submit(t, p, retained)
        )
        self.ingest = Ingest(
            self.engine, publish_ack=lambda node, ack: self.link.publish(node, Channel.ACK, ack)
        )
        self.http: HttpService | None = None
        """The HTTP API once started; None while stopped or when http_port is 0."""
        self.enroll: HttpService | None = None
        """The enrollment endpoint once started; None without a PKI dir or with port 0."""
        self.duties = Duties(
            self.engine, settings.presence, settings.alerts, link_up=self.link.connected.is_set,
            periodic=(PeriodicDuty("desired config", CONFIG_RECONCILE_S, self._reconcile_config),
                      PeriodicDuty("rollouts", ROLLOUT_STEP_S, self._step_rollouts)),
        )
        """Presence sweep, alert rules and desired configs, done by one worker of many
        (fleet_server.duty)."""
        self.dispatcher = Dispatcher(self.engine, self.link.publish, self.link.connected.is_set)
        """Publishes remote commands to their nodes, again when a node comes back (fleet_server.jobs)."""

    def start(self) -> None:
        """Bind the HTTP API first, so that a taken port fails before anything runs."""
        if self.settings.http_port:
            from fleet_server.api.app import create_app
            from fleet_server.api.serving import HttpService

            app = create_app(self.engine, lambda: self.ingest.stats, link=self.link,
                             pki_dir=self.settings.enrollment.pki_dir)
            app.state.wake_jobs = self.dispatcher.wake
            self.http = HttpService(app, self.settings.http_host, self.settings.http_port)
            self.http.start()
        if self.settings.enrollment.pki_dir and self.settings.enrollment.port:
            self.enroll = self._enrollment_endpoint()
            self.enroll.start()
        self.ingest.start()
        self.link.start()
        self.duties.start()
        self.dispatcher.start()

    def stop(self) -> None:
        """Store and ack what arrived, then disconnect; safe to call twice.

        Whatever arrives during the flush is not acked, so its node sends it again.
        """
        for service in (self.http, self.enroll):
            if service is not None:
                service.stop()
        self.http = self.enroll = None
        self.duties.stop()
        self.dispatcher.stop()
        self.ingest.stop()
        self.link.stop()
        self.engine.dispose()

    def _reconcile_config(self, now) -> None:
        changed, published = desired_config.reconcile(self.engine, self.link, now=now)
        if changed:
            log.info("desired config recomputed for %d node(s), %d published",
                     len(changed), len(published))

    def _step_rollouts(self, now) -> None:
        from fleet_server.rollouts.publish import step

        step(self.engine, self.link.publish, self.settings.enrollment.artifact_base_url, now)

    def _enrollment_endpoint(self) -> "HttpService":
        from fleet_server import enrollment
        from fleet_server.api.enroll_app import create_enroll_app
        from fleet_server.api.serving import HttpService
        from provisioning.fleet_dir import FleetDir

        settings = self.settings.enrollment
        assert settings.pki_dir is not None
        fleet = FleetDir(settings.pki_dir)
        fleet.load_ca()  # a missing or unreadable PKI fails here, at start

        def rewrite_crl() -> None:
            with self.engine.begin() as conn:
                fleet.write_crl(enrollment.revoked(conn))
            log.info("CRL rewritten after a re-enrollment; the broker applies it when it reloads")

        return HttpService(
            create_enroll_app(self.engine, fleet, settings, on_revoked=rewrite_crl),
            settings.host, settings.port,
            tls=(fleet.server.cert, fleet.server.key), name="enrollment endpoint",
        )

    def serve(self, stop: threading.Event) -> None:
        self.start()
        log.info("fleet server running on %s", self.engine.url.render_as_string(hide_password=True))
        try:
            stop.wait()
        finally:
            self.stop()
            log.info("fleet server stopped: %s", self.ingest.stats)
