"""The agent config a node writes after enrolling: its id, the broker over TLS
with the new identity, and the peripherals its kind starts with."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from agent.identity import IdentityFiles
from rpfleet.enrollment_api import Enrollment

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def render_config(enrolled: Enrollment, files: IdentityFiles, *, state_dir: Path, server_url: str) -> str:
    lines = [
        "# Written by `rpfleet agent enroll`; check it with `rpfleet agent check-config`.",
        f"# Node {enrolled.node_id}: site {enrolled.site_id}, counter {enrolled.counter}, kind {enrolled.kind}.",
        f"node_id = {_value(enrolled.node_id)}",
        f"state_dir = {_value(str(state_dir))}",
        "# Where the certificate is renewed before it expires (no technician needed).",
        f"enrollment_url = {_value(server_url)}",
        "",
        "[broker]",
        f"host = {_value(enrolled.broker.host)}",
        f"port = {enrolled.broker.port}",
        "",
        "[broker.tls]",
        f"ca_file = {_value(str(files.ca))}",
        f"cert_file = {_value(str(files.cert))}",
        f"key_file = {_value(str(files.key))}",
    ]
    for peripheral in enrolled.peripherals:
        lines += ["", "[[peripherals]]"]
        lines += [f"{_key(k)} = {_value(v)}" for k, v in peripheral.items()]
    return "\n".join(lines) + "\n"


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _value(value: Any) -> str:
    """TOML for the values a config holds (JSON's string escapes are TOML's too)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to the agent config")
