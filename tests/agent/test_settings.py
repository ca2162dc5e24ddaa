from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.settings import load_settings

SAMPLE = Path(__file__).resolve().parents[2] / "agent" / "agent.sample.toml"


def test_the_shipped_sample_config_is_valid():
    settings = load_settings(SAMPLE)
    assert settings.node_id == "bd-phuong-q1"
    assert settings.peripherals[0].kind == "rating-pad"
    assert settings.peripherals[0].keys["KEY_KP5"] == 5


def test_environment_overrides_the_file(monkeypatch):
    monkeypatch.setenv("RPFLEET_BROKER__PORT", "8883")
    assert load_settings(SAMPLE).broker.port == 8883


def test_an_unknown_key_is_an_error_naming_it(tmp_path):
    config = tmp_path / "agent.toml"
    config.write_text('node_id = "n1"\n[broker]\nhots = "x"\n', encoding="utf-8")
    with pytest.raises(ValidationError, match="hots"):
        load_settings(config)


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_two_peripherals_with_one_id_are_refused(tmp_path):
    config = tmp_path / "agent.toml"
    pad = '[[peripherals]]\nkind = "rating-pad"\nid = "pad-1"\nsource = "fake"\n'
    config.write_text('node_id = "n1"\n' + pad + pad, encoding="utf-8")
    with pytest.raises(ValidationError, match="repeated: pad-1"):
        load_settings(config)
