"""Structured logs on stdout for journald: ``key=value`` lines (logfmt)."""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timezone

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    if ord(char) < 0x20 or ord(char) == 0x7F:
        return f"\\x{ord(char):02x}"  # NUL, ESC and friends from devices never reach the journal raw
    return char


def _quote(value: str) -> str:
    if value and all(c not in ' "=\\' and c.isprintable() for c in value):
        return value
    return '"' + "".join(_escape(c) for c in value) + '"'


class LogfmtFormatter(logging.Formatter):
    def __init__(self, node_id: str) -> None:
        super().__init__()
        self._node_id = node_id

    def format(self, record: logging.LogRecord) -> str:
        at = datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
        fields = [
            ("ts", at),
            ("level", record.levelname.lower()),
            ("node", self._node_id),
            ("logger", record.name),
            ("msg", record.getMessage()),
        ]
        if record.exc_info:
            fields.append(("exc", self.formatException(record.exc_info)))
        return " ".join(f"{key}={_quote(str(value))}" for key, value in fields)


def setup(level: str, style: str, node_id: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    if style == "logfmt":
        handler.setFormatter(LogfmtFormatter(node_id))
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s {node_id} %(name)s %(levelname)s %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # paho logs nothing by itself; keep libraries quiet below warnings.
    logging.getLogger("asyncio").setLevel(logging.WARNING)
