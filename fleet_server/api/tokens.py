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
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa

from fleet_server.schema import api_tokens

PREFIX = "rpf_"
"""Marks a string as an rpfleet API token, so secret scanners and people can tell."""

TOKEN_BYTES = 32
"""256 random bits."""

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")


class TokenError(ValueError):
    """A token cannot be created or revoked as asked; the message says why."""


@dataclass(frozen=True)
class TokenInfo:
    """What is known about a token apart from the secret itself."""

    name: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


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


def create(conn: sa.Connection, name: str, *, now: datetime | None = None) -> str:
    """Store a new token named ``name`` and return it; the caller shows it once.

    Raises TokenError when the name is malformed or already taken (revoked
    tokens keep their name, so that the history stays readable).
    """
    check_name(name)
    if conn.execute(sa.select(api_tokens.c.id).where(api_tokens.c.name == name)).first():
        raise TokenError(f"a token named {name!r} exists already; choose another name")
    token = new_token()
    try:
        conn.execute(
            api_tokens.insert().values(
                name=name, token_hash=digest(token), created_at=now or _utc_now()
            )
        )
    except sa.exc.IntegrityError:  # the same name, created at the same moment elsewhere
        raise TokenError(f"a token named {name!r} exists already; choose another name") from None
    return token


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
    return _info(row)


def listing(conn: sa.Connection) -> list[TokenInfo]:
    """Every token ever made, oldest first, without their digests."""
    rows = conn.execute(sa.select(api_tokens).order_by(api_tokens.c.created_at, api_tokens.c.id))
    return [_info(row) for row in rows]


def identify(conn: sa.Connection, presented: str) -> TokenInfo | None:
    """The token ``presented`` is (active or revoked), or None when it is no token of ours.

    Callers grant access only when the result is ``active``.
    """
    wanted = digest(presented)
    row = conn.execute(sa.select(api_tokens).where(api_tokens.c.token_hash == wanted)).first()
    if row is None or not hmac.compare_digest(row.token_hash, wanted):
        return None
    return _info(row)


def _info(row: sa.Row) -> TokenInfo:
    return TokenInfo(row.name, _aware(row.created_at), _aware(row.revoked_at))


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything the server writes is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)
