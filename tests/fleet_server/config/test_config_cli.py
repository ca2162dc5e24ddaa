"""`rpfleet server config`: set a layer from TOML (published over the broker), show a
node, list drift; a refusal names the path and the layer; without a broker the change
is stored and `publish` sends it later."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from fleet_server.cli import main
from provisioning.mosquitto import SERVER_USERNAME, free_port
from rpfleet.node_config import short_version
from rpfleet.protocol import Channel, decode_as, topic
from rpfleet.protocol.messages import ConfigDesired
from tests.fleet_server.config.conftest import place


@pytest.fixture
def store(tmp_path: Path, broker, monkeypatch):
    """A SQLite store and the server's broker settings in the environment, as on the server host."""
    from fleet_server.store import connect

    url = f"sqlite:///{tmp_path / 'fleet.sqlite'}"
    engine = connect(url)
    monkeypatch.setenv("RPFLEET_SERVER_DB_URL", url)
    monkeypatch.setenv("RPFLEET_SERVER_BROKER__HOST", broker.host)
    monkeypatch.setenv("RPFLEET_SERVER_BROKER__PORT", str(broker.port))
    for key, value in asdict(broker.tls_for(SERVER_USERNAME)).items():
        monkeypatch.setenv(f"RPFLEET_SERVER_BROKER__TLS__{key.upper()}", str(value))
    yield engine
    engine.dispose()


def layer_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "layer.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_set_publishes_then_show_and_drift_say_where_the_node_stands(store, tmp_path, new_node, probe,
                                                                      capsys):
    node = new_node()
    place(store, node, "bd-" + node)
    toml = layer_file(tmp_path, 'health_interval = "12s"\n[[peripherals]]\nid = "pad-1"\n'
                                'kind = "rating-pad"\nsource = "fake"\ncounter = "5"\n')

    assert main(["config", "set", f"site:bd-{node}", toml, "--by", "Nguyễn Văn An"]) == 0
    assert "1 node(s) with a new desired config, 1 published" in capsys.readouterr().out

    watcher = probe(node)
    watcher.subscribe(topic(node, Channel.CONFIG_DESIRED))
    message = decode_as(ConfigDesired, watcher.next().payload)
    assert message.config["health_interval"] == "12s"  # as written; the agent reads durations
    assert main(["config", "show", node]) == 0
    shown = capsys.readouterr().out
    assert f"desired {short_version(message.version)}" in shown and f"site:bd-{node}" in shown
    assert "reported: nothing yet" in shown and "NOT in sync" in shown
    assert main(["config", "drift"]) == 0
    assert node in capsys.readouterr().out
    assert main(["config", "layers"]) == 0
    assert "by Nguyễn Văn An" in capsys.readouterr().out


def test_a_refused_layer_names_the_path_and_the_layer(store, tmp_path, capsys):
    place(store, "bd-1", "bd")

    assert main(["config", "set", "site:bd", layer_file(tmp_path, "batch_size = 900\n")]) == 1

    assert "layer site:bd: batch_size: 900: Input should be less than or equal to 500" in capsys.readouterr().err


def test_without_a_broker_the_change_is_stored_and_publish_sends_it_later(store, broker, tmp_path,
                                                                          new_node, probe,
                                                                          monkeypatch, capsys):
    node = new_node()
    place(store, node, None)
    monkeypatch.setenv("RPFLEET_SERVER_BROKER__PORT", str(free_port()))  # nothing listens there

    assert main(["config", "set", f"node:{node}", layer_file(tmp_path, "batch_size = 40\n")]) == 3
    assert "not published yet (no broker)" in capsys.readouterr().out

    monkeypatch.setenv("RPFLEET_SERVER_BROKER__PORT", str(broker.port))  # the broker is back
    assert main(["config", "publish", "--all"]) == 0
    watcher = probe(node)
    watcher.subscribe(topic(node, Channel.CONFIG_DESIRED))
    assert decode_as(ConfigDesired, watcher.next().payload).config == {"batch_size": 40}
