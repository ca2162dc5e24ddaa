"""The announcement routes: the queue system's calls and the payment gateway's
confirmations, each with its integration token (fleet_server.api.access), turned
into `down/announce` by fleet_server.announcements."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request

from fleet_server import announcements
from fleet_server.api import models, tokens
from fleet_server.api.access import require_integration

REFUSALS = {
    403: {"model": models.Problem,
          "description": "Not an integration token of this role, or not for this site."},
    404: {"model": models.Problem, "description": "No such site."},
    409: {"model": models.Problem,
          "description": "No node can announce at that counter, or the id was used for "
                         "another announcement."},
    422: {"description": "A field is missing, malformed or not accepted (the error names it); "
                         "or the site has no such counter."},
    503: {"model": models.Problem,
          "description": "The server is not connected to the broker; nothing was announced."},
}


def _answer(made: announcements.Announced) -> models.Announcement:
    m = made.message
    return models.Announcement(
        id=m.id, kind=m.kind, site_id=made.site_id, counter=m.counter or "", ticket=m.ticket,
        amount_vnd=m.amount_vnd, sent_at=made.sent_at, expires_at=m.expires_at,
        nodes=[models.Recipient(node=r.node, state=r.state, reason=r.reason) for r in made.nodes],
        duplicate=made.duplicate, service_id=made.service_id,
    )


def _announce(http: Request, site_id: str, request: announcements.Request,
              token: tokens.TokenInfo) -> models.Announcement:
    try:
        made = announcements.announce(
            http.app.state.engine, site_id, request, token_name=token.name,
            link=http.app.state.link,
        )
    except announcements.AnnounceError as exc:
        raise HTTPException(exc.status, detail=str(exc)) from None
    return _answer(made)


def announcement_routes(prefix: str) -> APIRouter:
    api = APIRouter(prefix=prefix, tags=["announcements"], responses=REFUSALS)

    @api.post("/sites/{site_id}/calls", status_code=202, response_model=models.Announcement)
    def queue_call(
        site_id: str,
        call: models.CallRequest,
        http: Request,
        token: tokens.TokenInfo = Depends(require_integration(tokens.QUEUE)),
    ) -> models.Announcement:
        """Call ticket `ticket` to counter `counter` (queue-system tokens only).

        Published to the nodes at that counter and to the site's soundbox and
        dashboard nodes; starts the counter's service, to which its rating taps
        belong until the next call there (or 30 minutes)."""
        return _announce(http, site_id, announcements.Call(
            ticket=call.ticket, counter=call.counter, service=call.service,
            priority=call.priority, officer=call.officer, id=call.id, ttl_s=call.ttl_s,
        ), token)

    @api.post("/sites/{site_id}/payments", status_code=202, response_model=models.Announcement)
    def payment(
        site_id: str,
        paid: models.PaymentRequest,
        http: Request,
        token: tokens.TokenInfo = Depends(require_integration(tokens.PAYMENT)),
    ) -> models.Announcement:
        """Confirm `amount_vnd` đồng received at cashier `counter` (payment-gateway tokens
        only). Published to the nodes at that counter only."""
        return _announce(http, site_id, announcements.Payment(
            amount_vnd=paid.amount_vnd, counter=paid.counter, id=paid.id, ttl_s=paid.ttl_s,
        ), token)

    return api
