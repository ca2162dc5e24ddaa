"""Validation errors as lines a person can act on: the field path, the bad value, why."""

from __future__ import annotations

from pydantic import ValidationError


def error_lines(exc: ValidationError, limit: int | None = None) -> list[str]:
    """One line per error, e.g. ``health_interval: 'soon' is not a valid duration``."""
    lines = []
    for err in exc.errors()[:limit]:
        where = ".".join(str(part) for part in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"{where}: unknown key")
        elif err["type"] == "value_error":
            # Our own validators name the bad value in their message already.
            lines.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
        elif err["type"] == "missing":
            lines.append(f"{where}: required but missing")
        else:
            lines.append(f"{where}: {err['input']!r}: {err['msg']}")
    if limit is not None and exc.error_count() > limit:
        lines.append(f"(+{exc.error_count() - limit} more)")
    return lines
