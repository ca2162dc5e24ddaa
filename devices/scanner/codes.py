"""What a scanned code is. Pure: a table of kinds (data, `codes.toml`) turns a
read into a kind, the parts its kind keeps, and, for personal data, a
placeholder instead of the read.

Personal data never leaves this module in clear: a read that matches (or,
through its ``guard``, merely starts like) a ``personal`` kind comes out as
``<redacted KIND>`` with only the parts the kind keeps, and hashed parts only
as keyed hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

UNKNOWN = "unknown"
MAX_FIELD = 2000
"""The wire contract's limit for one field value."""
MAX_NAME = 128
"""The wire contract's limit for a field name."""

Policy = Literal["keep", "redact"]


class CodeKind(BaseModel):
    """One row of the classification table (see `codes.toml` for the fields' meaning)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    description: str | None = None
    pattern: str = Field(description="A regular expression the whole code must match.")
    keep: list[str] = Field(default=[], description="Named groups stored in clear.")
    hash: list[str] = Field(default=[], description="Named groups stored only as keyed hashes.")
    personal: bool = Field(
        default=False, description="The code holds personal data: never store it."
    )
    guard: str | None = Field(
        default=None, description="Personal kinds: a code that starts like this is this kind."
    )

    @field_validator("pattern", "guard")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression ({exc})") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "CodeKind":
        if self.name == UNKNOWN:
            raise ValueError(f"{UNKNOWN!r} is for codes no row matches; choose another name")
        groups = set(re.compile(self.pattern).groupindex)
        missing = sorted((set(self.keep) | set(self.hash)) - groups)
        if missing:
            raise ValueError(
                f"keep/hash name groups the pattern does not have: {', '.join(missing)}"
            )
        both = sorted(set(self.keep) & set(self.hash))
        if both:
            raise ValueError(f"a part is either kept or hashed, not both: {', '.join(both)}")
        if self.guard and not self.personal:
            raise ValueError("guard is for personal kinds only")
        too_long = sorted(part for part in self.hash + self.keep if len(f"{part}_hash") > MAX_NAME)
        if too_long:
            raise ValueError(f"part names longer than the wire allows: {', '.join(too_long)}")
        return self


@lru_cache(maxsize=1)
def shipped_kinds() -> tuple[CodeKind, ...]:
    """The table shipped with the package (`codes.toml`), validated."""
    text = resources.files("devices.scanner").joinpath("codes.toml").read_text(encoding="utf-8")
    return tuple(CodeKind.model_validate(row) for row in tomllib.loads(text)["kind"])


def keyed_hash(key: bytes, part: str, value: str) -> str:
    """HMAC-SHA256 of one part, hex. The part's name is mixed in so that equal
    values of different parts do not hash alike."""
    return hmac.new(key, f"{part}\0{value}".encode(), hashlib.sha256).hexdigest()


def placeholder(kind: str) -> str:
    return f"<redacted {kind}>"


@dataclass(frozen=True)
class Classified:
    """What may be stored of a read: ``code`` is the read itself unless ``redacted``."""

    kind: str
    code: str
    fields: dict[str, str] = field(default_factory=dict)
    redacted: bool = False


class CodeClassifier:
    """Classifies reads with a table of kinds.

    ``hash_key`` keys the hashes; without one, hashed parts are left out (never
    stored in clear). ``unknown`` / ``partial``: whether a code no kind
    matches is kept or redacted, for whole and for partial reads. A redacted
    unknown code keeps only its length.
    """

    def __init__(
        self,
        kinds: Sequence[CodeKind],
        *,
        hash_key: bytes | None,
        unknown: Policy = "keep",
        partial: Policy = "redact",
    ) -> None:
        self._rows = [
            (kind, re.compile(kind.pattern), re.compile(kind.guard) if kind.guard else None)
            for kind in kinds
        ]
        self._key = hash_key
        self._unknown = unknown
        self._partial = partial

    @property
    def drops_hashed_parts(self) -> bool:
        """True when some kind hashes parts but there is no key: those parts are not stored."""
        return self._key is None and any(kind.hash for kind, _, _ in self._rows)

    def classify(self, code: str, *, partial: bool = False) -> Classified:
        for kind, pattern, _ in self._rows:
            match = pattern.fullmatch(code)
            if match:
                return self._parts(kind, match, code)
        for kind, _, guard in self._rows:
            if guard is not None and guard.match(code):
                return Classified(kind.name, placeholder(kind.name), {}, redacted=True)
        if self._unknown == "redact" or (partial and self._partial == "redact"):
            length = {"length": str(len(code))}
            return Classified(UNKNOWN, placeholder(UNKNOWN), length, redacted=True)
        return Classified(UNKNOWN, code)

    def _parts(self, kind: CodeKind, match: re.Match[str], code: str) -> Classified:
        fields = {
            part: value[:MAX_FIELD]
            for part in kind.keep
            if (value := match.group(part)) is not None
        }
        if self._key is not None:
            for part in kind.hash:
                value = match.group(part)
                if value is not None:
                    fields[f"{part}_hash"] = keyed_hash(self._key, part, value)
        if kind.personal:
            return Classified(kind.name, placeholder(kind.name), fields, redacted=True)
        return Classified(kind.name, code, fields)
