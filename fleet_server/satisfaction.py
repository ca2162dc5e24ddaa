"""What counts as a satisfied citizen, and how sure we are of a share, in one place."""

from __future__ import annotations

import math
from typing import Any

UNASSIGNED = "(unassigned)"
"""Where taps of nodes the registry does not place are counted, in summaries and reports."""

Z_95 = 1.959963984540054
"""The normal quantile of a two-sided 95 % interval."""


def is_satisfied(rating: int, scale: int) -> bool:
    """The top two buttons of any pad (3 to 5 buttons) are "satisfied" ("hài lòng")."""
    return rating >= scale - 1


def satisfied_sql(rating: Any, scale: Any) -> Any:
    """The same rule as a SQL expression over ``rating`` and ``scale`` columns."""
    return rating >= scale - 1


def wilson_interval(satisfied: int, total: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of the share ``satisfied / total`` (0..1 both ends).

    With no ratings at all the share is unknown: (0.0, 1.0). Unlike the plain
    normal interval it stays inside 0..1 and is honest for small counts, which
    is what keeps three unhappy taps at a quiet agency from paging anyone.
    """
    if total < 0 or not 0 <= satisfied <= total:
        raise ValueError(f"need 0 <= satisfied <= total, got {satisfied} of {total}")
    if total == 0:
        return 0.0, 1.0
    p = satisfied / total
    z2 = z * z
    centre = (p + z2 / (2 * total)) / (1 + z2 / total)
    half = z * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total)) / (1 + z2 / total)
    return max(0.0, centre - half), min(1.0, centre + half)
