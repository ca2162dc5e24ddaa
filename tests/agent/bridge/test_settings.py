"""The agent's [bridge] section: loopback only, page origins checked and normalised; and the
example in docs/device-bridge.md is a valid one."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.bridge.settings import BridgeSettings, origin_of
from agent.settings import AgentSettings

DOC = Path(__file__).resolve().parents[3] / "docs" / "device-bridge.md"


def test_without_a_bridge_section_there_is_no_bridge():
    assert AgentSettings(node_id="kiosk-ba-dinh-1").bridge is None


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1"])
def test_loopback_addresses_are_accepted(host):
    assert BridgeSettings(host=host).host == host


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "localhost", "kiosk.local"],
                         ids=["any", "lan", "any-v6", "a name", "another name"])
def test_any_other_address_is_refused_naming_the_field(host):
    with pytest.raises(ValidationError, match=r"bridge\.host[\s\S]*not a loopback address"):
        AgentSettings(node_id="kiosk-ba-dinh-1", bridge={"host": host})


@pytest.mark.parametrize(
    "given, origin",
    [
        ("https://XepHang.hcc.hanoi.gov.vn", "https://xephang.hcc.hanoi.gov.vn"),
        ("https://xephang.hcc.hanoi.gov.vn:443/", "https://xephang.hcc.hanoi.gov.vn"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://[::1]:80", "http://[::1]"),
    ],
    ids=["case", "default port and slash", "port kept", "ipv6"],
)
def test_origins_are_normalised_as_browsers_send_them(given, origin):
    assert origin_of(given) == origin


@pytest.mark.parametrize(
    "given, why",
    [
        ("*", "not allowed"),
        ("null", "not allowed"),
        ("https://xephang.hcc.hanoi.gov.vn/kiosk", "no path"),
        ("xephang.hcc.hanoi.gov.vn", "not an origin"),
        ("file:///srv/kiosk/index.html", "not an origin"),
        ("https://user@xephang.hcc.hanoi.gov.vn", "no path, query or user"),
    ],
    ids=["wildcard", "opaque", "path", "no scheme", "file", "user"],
)
def test_what_is_not_an_origin_is_refused_naming_it(given, why):
    with pytest.raises(ValidationError, match=re.escape(why)) as raised:
        BridgeSettings(allowed_origins=[given])
    assert "allowed_origins" in str(raised.value)


def test_the_example_in_the_docs_is_valid():
    block = re.search(r"```toml\n(\[bridge\][\s\S]*?)```", DOC.read_text(encoding="utf-8"))
    assert block, "docs/device-bridge.md has no ```toml [bridge] example"

    settings = AgentSettings(node_id="kiosk-ba-dinh-1", **tomllib.loads(block.group(1)))

    assert settings.bridge is not None
    assert settings.bridge.host == "127.0.0.1"
    assert settings.bridge.allowed_origins
