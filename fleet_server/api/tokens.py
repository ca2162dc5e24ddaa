"""API tokens: minted at random, stored only as a SHA-256 digest, refused once revoked.

Why SHA-256 and not bcrypt/argon2: those are for passwords, which people pick
and which are therefore guessable; a slow hash buys time against a dictionary.
Our tokens are 256 random bits from `secrets`: there is no dictionary, and
brute force over 2**256 is out of reach at any hash speed. A fast hash then
costs nothing in safety, and lets every request be checked with one indexed
lookup instead of a deliberately slow computation (bcrypt would also cap the
token at 72 bytes, argon2 needs another dependency).

Lookup and timing: the presented token is hashed and the row is found by its
digest. The index walk's timing depends on the digest, which an attacker
cannot steer towards a stored one without breaking SHA-256's preimage
resistance; the final comparison is `hmac.compare_digest` all the same.

The token itself is printed once, by `rpfleet server token create`, and is
never stored, logged or shown again; only its name appears anywhere else.

Scopes: a token has a role. An ``operator`` token (the default, and what every
token made before roles existed became) reads the whole API. An integration
token belongs to the queue system (``queue``) or the payment gateway
(``payment``) and lists the sites it serves; it may only announce, and only
at those sites (fleet_server.api.app decides who may call what). A
``dashboard`` token is bound to exactly one site and may only read that site's
dashboard (the hall's TV; see docs/dashboard.md).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable

import sqlalchemy as sa

from fleet_server.schema import api_token_sites, api_tokens, sites

PREFIX = "rpf_"
"""Marks a string as an rpfleet API token, so secret scanners and people can tell."""

TOKEN_BYTES = 32
"""256 random bits."""

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")

OPERATOR = "operator"
QUEUE = "queue"
PAYMENT = "payment"
INTEGRATION_ROLES = (QUEUE, PAYMENT)
"""The queue system (queue calls) and the payment gateway (payment confirmations)."""
DASHBOARD = "dashboard"
"""A hall TV's read-only token: one site's dashboard and nothing else."""
ROLES = (OPERATOR, *INTEGRATION_ROLES, DASHBOARD)


class TokenError(ValueError):
    """A token cannot be created or revoked as asked; the message says why."""


@dataclass(frozen=True)
class TokenInfo:
    """What is known about a token apart from the secret itself."""

    name: str
    created_at: datetime
    revoked_at: datetime | None
    role: str = OPERATOR
    sites: tuple[str, ...] = ()
    """The sites an integration token serves, sorted; empty for an operator token."""

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def is_operator(self) -> bool:
        return self.role == OPERATOR


def new_token() -> str:
    """A fresh token: ``rpf_`` and 43 URL-safe characters (256 random bits)."""
    return PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def digest(token: str) -> str:
    """The hex SHA-256 of ``token``: what the store keeps instead of the token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_name(name: str) -> str:
    """``name`` if it is a usable token name (1-100 of letters, digits and ``._@-``).

    Raises TokenError otherwise.
    """
    if not NAME_PATTERN.match(name):
        raise TokenError(
            f"token name {name!r} must be 1-100 letters, digits or ._@-"
            " and start with a letter or digit"
        )
    return name


def create(
    conn: sa.Connection,
    name: str,
    *,
    role: str = OPERATOR,
    sites: Iterable[str] = (),
    now: datetime | None = None,
) -> str:
    """Store a new token named ``name`` and return it; the caller shows it once.

    ``role`` is ``operator`` (no sites) or an integration role (``queue``,
    ``payment``) with the registered ``sites`` it serves, at least one.
    Raises TokenError when the name is malformed or already taken (revoked
    tokens keep their name, so that the history stays readable), or when the
    role and sites do not fit together.
    """
    check_name(name)
    served = _check_scope(conn, role, sites)
    if conn.execute(sa.select(api_tokens.c.id).where(api_tokens.c.name == name)).first():
        raise TokenError(f"a token named {name!r} exists already; choose another name")
    token = new_token()
    try:
        token_id = conn.execute(
            api_tokens.insert().values(
                name=name, token_hash=digest(token), created_at=now or _utc_now(), role=role
            ).returning(api_tokens.c.id)
        ).scalar_one()
    except sa.exc.IntegrityError:  # the same name, created at the same moment elsewhere
        raise TokenError(f"a token named {name!r} exists already; choose another name") from None
    if served:
        conn.execute(api_token_sites.insert(),
                     [{"token_id": token_id, "site_id": site} for site in served])
    return token


def _check_scope(conn: sa.Connection, role: str, wanted: Iterable[str]) -> tuple[str, ...]:
    """The sorted sites of a token with ``role``; TokenError when they do not fit the role."""
    served = tuple(sorted(set(wanted)))
    if role not in ROLES:
        raise TokenError(f"no role {role!r}: a token is {', '.join(ROLES)}")
    if role == OPERATOR:
        if served:
            raise TokenError("an operator token reads every site and takes no --site;"
                             f" give --role ({'|'.join(INTEGRATION_ROLES)}) for an integration")
        return ()
    if not served:
        raise TokenError(f"a {role} token serves named sites: give at least one --site")
    if role == DASHBOARD and len(served) != 1:
        raise TokenError("a dashboard token shows exactly one site: give one --site "
                         "(make one token per site's screens)")
    known = set(conn.execute(sa.select(sites.c.id).where(sites.c.id.in_(served))).scalars())
    unknown = [site for site in served if site not in known]
    if unknown:
        raise TokenError(f"no site {', '.join(map(repr, unknown))} is registered"
                         " (see `rpfleet server import-sites`)")
    return served


def revoke(conn: sa.Connection, name: str, *, now: datetime | None = None) -> TokenInfo:
    """Revoke the token named ``name`` (from the next request on) and return it.

    Revoking a revoked token changes nothing. Raises TokenError for an unknown name.
    """
    row = conn.execute(sa.select(api_tokens).where(api_tokens.c.name == name)).first()
    if row is None:
        raise TokenError(f"no token is named {name!r}")
    if row.revoked_at is None:
        conn.execute(
            api_tokens.update()
            .where(api_tokens.c.id == row.id)
            .values(revoked_at=now or _utc_now())
        )
        row = conn.execute(sa.select(api_tokens).where(api_tokens.c.id == row.id)).one()
    return _info(row, _sites_of(conn, [row.id]).get(row.id, ()))


def listing(conn: sa.Connection) -> list[TokenInfo]:
    """Every token ever made, oldest first, without their digests."""
    rows = conn.execute(
        sa.select(api_tokens).order_by(api_tokens.c.created_at, api_tokens.c.id)
    ).all()
    served = _sites_of(conn, None)
    return [_info(row, served.get(row.id, ())) for row in rows]


def identify(conn: sa.Connection, presented: str) -> TokenInfo | None:
    """The token ``presented`` is (active or revoked), or None when it is no token of ours.

    Callers grant access only when the result is ``active``.
    """
    wanted = digest(presented)
    row = conn.execute(sa.select(api_tokens).where(api_tokens.c.token_hash == wanted)).first()
    if row is None or not hmac.compare_digest(row.token_hash, wanted):
        return None
    if row.role == OPERATOR:
        return _info(row, ())
    return _info(row, _sites_of(conn, [row.id]).get(row.id, ()))


def _sites_of(conn: sa.Connection, token_ids: list[int] | None) -> dict[int, tuple[str, ...]]:
    """The sites of the tokens ``token_ids`` (None: of every token), each sorted."""
    query = sa.select(api_token_sites).order_by(api_token_sites.c.site_id)
    if token_ids is not None:
        query = query.where(api_token_sites.c.token_id.in_(token_ids))
    served: dict[int, tuple[str, ...]] = {}
    for row in conn.execute(query):
        served[row.token_id] = (*served.get(row.token_id, ()), row.site_id)
    return served


def _info(row: sa.Row, served: tuple[str, ...]) -> TokenInfo:
    return TokenInfo(row.name, _aware(row.created_at), _aware(row.revoked_at), row.role, served)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything the server writes is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)
