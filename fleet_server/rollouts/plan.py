"""Wave planning, pure: which node goes in which wave of a rollout.

A node's *bucket* is a number in [0, 1) from the sha256 of its id, so the same
node always lands in the same place, whatever else the fleet holds and
whichever server worker asks. Waves are cumulative shares (``1%,10%,50%,100%``):
at the start the nodes are ranked by bucket and wave *k* takes the first
``ceil(share_k * N)`` of them not in an earlier wave, the first wave at least
one. Each wave then ends at a *threshold* bucket (that of its last node), so a
node that joins later (enrolled after the start, or first heard of) lands in
the wave whose range holds its bucket, and nobody already planned moves.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import Iterable, Mapping

from rpfleet.durations import parse_duration


class PlanError(ValueError):
    """A rollout that cannot be planned; ``field`` names the option at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def bucket(node_id: str) -> float:
    """The node's fixed place in [0, 1)."""
    digest = hashlib.sha256(node_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


_SHARE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*%\s*$")


def parse_waves(text: str) -> list[float]:
    """``"1%,10%,50%,100%"`` -> ``[0.01, 0.1, 0.5, 1.0]``: cumulative shares, rising,
    the last 100%. Raises PlanError naming ``waves``."""
    shares = []
    for part in text.split(","):
        match = _SHARE.match(part)
        if match is None:
            raise PlanError("waves", f"{part.strip()!r} is not a share such as 10%")
        share = float(match.group(1)) / 100
        if not 0 < share <= 1:
            raise PlanError("waves", f"{part.strip()} is not between 0% and 100%")
        if shares and share <= shares[-1]:
            raise PlanError("waves", f"{part.strip()} does not grow from the wave before it "
                                     "(each wave is the share reached so far)")
        shares.append(share)
    if shares[-1] != 1:
        raise PlanError("waves", "the last wave must be 100%")
    return shares


@dataclass(frozen=True)
class FailureLimit:
    """How many failed nodes a rollout tolerates: a share of the nodes sent the
    version so far, or a count. The rollout halts when failures go *past* it."""

    share: float | None = None
    count: int | None = None

    def exceeded(self, failures: int, sent: int) -> bool:
        if self.count is not None:
            return failures > self.count
        return failures > (self.share or 0.0) * sent

    def describe(self) -> str:
        return f"{self.count}" if self.count is not None else f"{(self.share or 0) * 100:g}%"

    def to_json(self) -> dict:
        return {"share": self.share} if self.count is None else {"count": self.count}

    @classmethod
    def from_json(cls, data: Mapping) -> "FailureLimit":
        return cls(share=data.get("share"), count=data.get("count"))


def parse_failure_limit(text: str) -> FailureLimit:
    """``"5%"`` (a share of the nodes sent the version) or ``"3"`` (a count)."""
    match = _SHARE.match(text)
    if match is not None:
        share = float(match.group(1)) / 100
        if not 0 <= share <= 1:
            raise PlanError("max-failures", f"{text.strip()} is not between 0% and 100%")
        return FailureLimit(share=share)
    if text.strip().isdigit():
        return FailureLimit(count=int(text.strip()))
    raise PlanError("max-failures", f"{text!r} is neither a share (5%) nor a count (3)")


def parse_soak(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise PlanError("soak", str(exc)) from None


@dataclass(frozen=True)
class Plan:
    waves: dict[str, int]
    """Node id -> wave (0-based)."""
    thresholds: list[float]
    """The highest bucket of each wave; the last is 1.0."""

    def size(self, wave: int) -> int:
        return sum(1 for w in self.waves.values() if w == wave)


def plan_waves(node_ids: Iterable[str], shares: list[float]) -> Plan:
    """Split ``node_ids`` into ``len(shares)`` waves (see the module's docstring)."""
    ranked = sorted(set(node_ids), key=lambda node: (bucket(node), node))
    total = len(ranked)
    waves: dict[str, int] = {}
    thresholds: list[float] = []
    start = 0
    for index, share in enumerate(shares):
        # The epsilon keeps 10% of 30 at 3 (0.1 * 30 is 3.0000000000000004 in binary).
        end = total if index == len(shares) - 1 else math.ceil(share * total - 1e-9)
        if index == 0 and total:
            end = max(end, 1)
        end = max(end, start)
        for node in ranked[start:end]:
            waves[node] = index
        if index == len(shares) - 1:
            thresholds.append(1.0)
        elif not total:  # nobody yet: later nodes split by the shares themselves
            thresholds.append(share)
        elif end > start:
            thresholds.append(bucket(ranked[end - 1]))
        else:  # an empty wave of a small fleet: it ends where the previous one did
            thresholds.append(thresholds[-1])
        start = end
    return Plan(waves, thresholds)


def wave_of(node_id: str, thresholds: list[float]) -> int:
    """The wave a node joining after the start belongs in."""
    place = bucket(node_id)
    for index, threshold in enumerate(thresholds):
        if place <= threshold:
            return index
    return len(thresholds) - 1
