"""What counts as a satisfied citizen, in one place for Python and SQL alike."""

from __future__ import annotations

from typing import Any


def is_satisfied(rating: int, scale: int) -> bool:
    """The top two buttons of any pad (3 to 5 buttons) are "satisfied" ("hài lòng")."""
    return rating >= scale - 1


def satisfied_sql(rating: Any, scale: Any) -> Any:
    """The same rule as a SQL expression over ``rating`` and ``scale`` columns."""
    return rating >= scale - 1
