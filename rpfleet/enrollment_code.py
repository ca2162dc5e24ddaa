"""Enrollment codes: short, read over the phone, and pinned to the fleet CA.

A code is 20 characters of Crockford base32 in groups of four, for example
``7KQ2-MX4P-9HRT-W3ZC-A8NB``:

- 8 characters (40 bits) of secret, which the server stores only hashed;
- 11 characters (55 bits) of the fleet CA's key fingerprint, so the node can
  refuse a server that does not hold that CA before it sends anything (as
  ``kubeadm join`` pins the CA hash; forging a CA key that matches 55 bits
  takes far longer than the code lives);
- 1 check character (Luhn mod 32), so a misheard character is caught on the
  node and does not count as a failed attempt.

Crockford's alphabet has no I, L, O or U; when read back, O is taken as 0 and
I or L as 1, and case, spaces and dashes do not matter.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
SECRET_CHARS = 8
PIN_CHARS = 11
LENGTH = SECRET_CHARS + PIN_CHARS + 1
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1", "-": None, " ": None})
_B32_TO_CROCKFORD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", ALPHABET)


class CodeError(ValueError):
    """A code that cannot be right; the message says what to check."""


@dataclass(frozen=True)
class EnrollmentCode:
    secret: str
    pin: str

    def __str__(self) -> str:
        body = self.secret + self.pin
        raw = body + _check_char(body)
        return "-".join(raw[i : i + 4] for i in range(0, LENGTH, 4))

    def secret_hash(self) -> str:
        """What the server stores: the code's secret, hashed."""
        return hashlib.sha256(self.secret.encode()).hexdigest()

    def pins(self, ca_fingerprint: str) -> bool:
        """True when ``ca_fingerprint`` (hex SHA-256) is the CA this code was made for."""
        return secrets.compare_digest(self.pin, ca_pin(ca_fingerprint))


def ca_pin(ca_fingerprint: str) -> str:
    """The first 55 bits of a hex SHA-256 fingerprint, in the code's alphabet."""
    digest = bytes.fromhex(ca_fingerprint)
    return base64.b32encode(digest).decode().translate(_B32_TO_CROCKFORD)[:PIN_CHARS]


def new_code(ca_fingerprint: str) -> EnrollmentCode:
    secret = "".join(secrets.choice(ALPHABET) for _ in range(SECRET_CHARS))
    return EnrollmentCode(secret=secret, pin=ca_pin(ca_fingerprint))


def parse_code(text: str) -> EnrollmentCode:
    """The code a person typed or read out; raises CodeError saying what is wrong."""
    raw = text.upper().translate(_READ_AS)
    bad = sorted({c for c in raw if c not in _VALUE})
    if bad:
        raise CodeError(f"the code has characters that are not in codes: {' '.join(bad)}")
    if len(raw) != LENGTH:
        raise CodeError(f"a code has {LENGTH} characters; this one has {len(raw)}")
    body, check = raw[:-1], raw[-1]
    if _check_char(body) != check:
        raise CodeError("the code does not add up: a character was misread or mistyped")
    return EnrollmentCode(secret=body[:SECRET_CHARS], pin=body[SECRET_CHARS:])


def _check_char(body: str) -> str:
    """Luhn mod N: catches any one wrong character and most swaps of neighbours."""
    n = len(ALPHABET)
    total = 0
    factor = 2
    for char in reversed(body):
        addend = factor * _VALUE[char]
        total += addend // n + addend % n
        factor = 1 if factor == 2 else 2
    return ALPHABET[(n - total % n) % n]
