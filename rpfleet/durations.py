"""Durations in config files: ``250ms``, ``30s``, ``5m``, ``1h``, ``1d`` or plain seconds."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PlainSerializer

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)?\s*")


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string such as ``"30s"``; ValueError names the bad value."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a valid duration (use 30s, 5m, 1h or seconds)")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.fullmatch(str(value))
        if match is None:
            raise ValueError(f"{value!r} is not a valid duration (use 30s, 5m, 1h or seconds)")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds < 0:
        raise ValueError(f"{value!r} is not a valid duration: it is negative")
    return seconds


def format_duration(seconds: float) -> str:
    for unit in ("d", "h", "m", "s"):
        if seconds >= _UNITS[unit] and (seconds / _UNITS[unit]).is_integer():
            return f"{int(seconds / _UNITS[unit])}{unit}"
    return f"{round(seconds * 1000)}ms" if seconds < 1 else f"{seconds}s"


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    Field(json_schema_extra={"examples": ["30s", "5m"]}),
]
"""A duration in seconds, written in config as ``"30s"``, ``"5m"``, ``"250ms"`` or a number."""
