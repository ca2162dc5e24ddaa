"""The node kinds handed out at enrollment are configs the agent accepts."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter

from devices.registry import PeripheralConfig
from fleet_server.node_kinds import initial_peripherals, load_node_kinds

KINDS = load_node_kinds()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_shipped_kind_validates_as_agent_peripherals(kind):
    peripherals = initial_peripherals(KINDS, kind, "7")
    configs = [TypeAdapter(PeripheralConfig).validate_python(p) for p in peripherals]
    assert all(getattr(c, "counter", "7") == "7" for c in configs)
    assert len({c.id for c in configs}) == len(configs)


def test_the_default_kind_is_a_counter_desk():
    assert [p["kind"] for p in initial_peripherals(KINDS, "counter", "1")] == ["rating-pad", "scanner"]


def test_an_operator_file_replaces_the_shipped_kinds(tmp_path):
    path = tmp_path / "kinds.toml"
    path.write_text('[desk]\nperipherals = [{ kind = "rating-pad", id = "p", counter = "{counter}", '
                    'source = "fake" }]\n', encoding="utf-8")
    kinds = load_node_kinds(path)
    assert list(kinds) == ["desk"]
    assert initial_peripherals(kinds, "desk", "4")[0]["counter"] == "4"


@pytest.mark.parametrize("text, message", [
    ("[desk\n", "kinds.toml"),
    ("[desk]\ndescription = 'no peripherals'\n", "kind 'desk' needs a peripherals list"),
], ids=["not-toml", "no-peripherals"])
def test_a_bad_kinds_file_is_named(tmp_path, text, message):
    path = tmp_path / "kinds.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_node_kinds(path)
