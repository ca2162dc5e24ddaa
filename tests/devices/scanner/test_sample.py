"""The README's sample config is the sample file, and the agent accepts it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import devices.scanner

PACKAGE = Path(devices.scanner.__file__).parent


def test_the_sample_is_what_the_readme_shows():
    sample = (PACKAGE / "sample.toml").read_text(encoding="utf-8")
    assert f"```toml\n{sample}```" in (PACKAGE / "README.md").read_text(encoding="utf-8")


def test_the_agent_accepts_the_sample():
    from agent.settings import AgentSettings

    peripherals = tomllib.loads((PACKAGE / "sample.toml").read_text(encoding="utf-8"))["peripherals"]
    settings = AgentSettings(node_id="hn-badinh-c03", peripherals=peripherals)
    assert [(p.kind, p.id) for p in settings.peripherals] == [
        ("scanner", "qr-kiosk"), ("scanner", "qr-3"), ("document-scanner", "desk-scanner")
    ]
    assert settings.peripherals[1].code_kinds[0].name == "queue-ticket"
