"""The fleet's broker over mutual TLS: who gets in, and what reaches whom.

Against a real Mosquitto with the generated config, on a fleet PKI of its own
(so revoking a certificate here touches no other test). Every "not delivered"
is proven with a sentinel: messages reach one subscriber in the order the
broker routed them, and a publish returns once the broker has routed it
(PUBACK), so a listener whose next message is the sentinel published
afterwards did not get the forbidden one. No waiting for silence.
"""

from __future__ import annotations

import datetime as dt
import getpass
import itertools
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from provisioning import cli
from provisioning.fleet_dir import FleetDir, Identity
from provisioning.mosquitto import (
    MOSQUITTO, SERVER_USERNAME, ClientTls, free_port, new_password, render_acl, write_password_file,
)
from rpfleet import process
from rpfleet.protocol import Channel, topic
from tests.conftest import eventually, tls_broker
from tests.mqtt import Probe

_names = itertools.count(1)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """Overrides the session broker for this module (and so for `probe`)."""
    with tls_broker(tmp_path_factory.mktemp("tls-acl")) as running:
        yield running


@pytest.fixture
def nodes():
    """Fresh node ids: ``nodes(3)`` -> three never used in this module."""
    return lambda n: [f"acl{next(_names):03d}-node" for _ in range(n)]


def sentinel_to(node: str, probe) -> bytes:
    """Publish, as the server, a message that ``node`` may read; returns its payload."""
    payload = f"sentinel for {node}".encode()
    probe(SERVER_USERNAME).publish(topic(node, Channel.ACK), payload)
    return payload


# ---- what a node may publish --------------------------------------------------


def test_a_node_publishes_under_its_own_up_only(probe, nodes):
    a, b = nodes(2)
    server = probe(SERVER_USERNAME)
    server.subscribe(f"rp/v1/nodes/{a}/up/#")
    server.subscribe(f"rp/v1/nodes/{b}/up/#")
    node_a = probe(a)
    node_a.publish(topic(b, Channel.EVENTS), b'{"forged": true}')
    node_a.publish(topic(a, Channel.EVENTS), b'{"own": true}')

    got = server.next()
    assert (got.topic, got.payload) == (topic(a, Channel.EVENTS), b'{"own": true}')


def test_a_node_cannot_publish_on_its_own_down_topics(probe, nodes):
    (a,) = nodes(1)
    node_a = probe(a)
    node_a.subscribe(f"rp/v1/nodes/{a}/down/#")
    node_a.publish(topic(a, Channel.ACK), b'{"self-acked": true}')
    node_a.publish(topic(a, Channel.CMD), b'{"self-commanded": true}')
    sentinel = sentinel_to(a, probe)
    assert node_a.next().payload == sentinel


# ---- what a node may read -----------------------------------------------------


def test_a_node_reads_its_own_down_topics(probe, nodes):
    (a,) = nodes(1)
    node_a = probe(a)
    node_a.subscribe(f"rp/v1/nodes/{a}/down/#")
    probe(SERVER_USERNAME).publish(topic(a, Channel.CMD), b'{"cmd": "ping"}')
    got = node_a.next()
    assert (got.topic, got.payload) == (topic(a, Channel.CMD), b'{"cmd": "ping"}')


@pytest.mark.parametrize(
    "subscription",
    ["rp/v1/nodes/{b}/down/#", "rp/v1/nodes/+/down/#", "rp/v1/nodes/+/up/#",
     "rp/v1/nodes/{b}/up/#", "#"],
    ids=["other-down", "all-down", "all-up", "other-up", "everything"],
)
def test_a_node_reads_nothing_of_other_nodes(probe, nodes, subscription):
    a, b = nodes(2)
    node_a = probe(a)
    node_a.subscribe(subscription.format(b=b))
    node_a.subscribe(f"rp/v1/nodes/{a}/down/#")
    node_b = probe(b)
    node_b.subscribe(f"rp/v1/nodes/{b}/down/#")
    server = probe(SERVER_USERNAME)
    server.subscribe(f"rp/v1/nodes/{b}/up/#")

    node_b.publish(topic(b, Channel.EVENTS), b'{"b": "up"}')
    node_b.publish(topic(b, Channel.STATUS), b'{"b": "retained"}', retain=True)
    server.publish(topic(b, Channel.ACK), b'{"b": "down"}')
    # The forbidden messages were there to be had: B's up reached the server, B's down reached B.
    assert server.next().payload == b'{"b": "up"}'
    assert node_b.next().payload == b'{"b": "down"}'

    sentinel = sentinel_to(a, probe)
    assert node_a.next().payload == sentinel


def test_a_node_cannot_claim_the_servers_username(probe, nodes):
    """The username in CONNECT is ignored: the certificate's CN is the username."""
    a, b = nodes(2)
    impostor = probe(a, username=SERVER_USERNAME, password="whatever")
    impostor.subscribe("rp/v1/nodes/+/up/#")
    impostor.subscribe(f"rp/v1/nodes/{a}/down/#")
    probe(b).publish(topic(b, Channel.EVENTS), b'{"b": "up"}')
    sentinel = sentinel_to(a, probe)
    assert impostor.next().payload == sentinel


# ---- what the server may do -----------------------------------------------------


def test_the_server_reads_every_up_and_writes_every_down(probe, nodes):
    a, b = nodes(2)
    server = probe(SERVER_USERNAME)
    server.subscribe("rp/v1/nodes/+/up/#")
    node_a, node_b = probe(a), probe(b)
    node_a.subscribe(f"rp/v1/nodes/{a}/down/#")
    node_b.subscribe(f"rp/v1/nodes/{b}/down/#")
    node_a.publish(topic(a, Channel.STATUS), b'{"a": "online"}', retain=True)
    node_b.publish(topic(b, Channel.HEALTH), b'{"b": "health"}')
    server.publish(topic(a, Channel.CONFIG_DESIRED), b'{"a": "config"}', retain=True)
    server.publish(topic(b, Channel.CMD), b'{"b": "cmd"}')

    ours = lambda m: m.topic.split("/")[3] in (a, b)  # noqa: E731 - not earlier tests' retained
    received = {m.topic: m.payload for m in (server.wait_for(ours), server.wait_for(ours))}
    assert received == {topic(a, Channel.STATUS): b'{"a": "online"}',
                        topic(b, Channel.HEALTH): b'{"b": "health"}'}
    assert node_a.next().payload == b'{"a": "config"}'
    assert node_b.next().payload == b'{"b": "cmd"}'
    # Retained: a server that subscribes later is told the status, a node its config.
    late = probe(SERVER_USERNAME)
    late.subscribe(f"rp/v1/nodes/{a}/up/#")
    assert (late.next().payload, late.messages.empty()) == (b'{"a": "online"}', True)


def test_the_server_cannot_publish_as_a_node(probe, nodes):
    (a,) = nodes(1)
    server = probe(SERVER_USERNAME)
    watcher = probe(SERVER_USERNAME)
    watcher.subscribe(f"rp/v1/nodes/{a}/up/#")
    server.publish(topic(a, Channel.EVENTS), b'{"forged": true}')
    probe(a).publish(topic(a, Channel.EVENTS), b'{"own": true}')
    assert watcher.next().payload == b'{"own": true}'


# ---- who gets in ----------------------------------------------------------------


def test_tls_without_a_client_certificate_is_refused(probe):
    with pytest.raises(ConnectionRefusedError):
        probe(None)


def test_a_certificate_from_another_ca_is_refused(probe, broker, nodes, tmp_path):
    (a,) = nodes(1)
    other = FleetDir.create(tmp_path / "other-pki")
    forged = Identity(tmp_path / "forged.crt", tmp_path / "forged.key")
    other.issue_identity(forged, a)
    with pytest.raises(ConnectionRefusedError):
        probe(a, tls=ClientTls(broker.fleet.ca_cert, forged.cert, forged.key))
    probe(a)  # the same name with the fleet's certificate is welcome


def test_an_expired_certificate_is_refused(probe, broker, nodes, tmp_path):
    (a,) = nodes(1)
    expired = Identity(tmp_path / "expired.crt", tmp_path / "expired.key")
    month_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=30)
    broker.fleet.issue_identity(expired, a, now=month_ago, days=1)
    with pytest.raises(ConnectionRefusedError):
        probe(a, tls=ClientTls(broker.fleet.ca_cert, expired.cert, expired.key))


def test_a_revoked_certificate_is_refused_after_a_reload(probe, broker, nodes, tmp_path):
    """Mosquitto 2.0.11 re-reads its CRL on SIGHUP: no restart needed."""
    a, b = nodes(2)
    lost = Identity(tmp_path / "lost.crt", tmp_path / "lost.key")
    cert = broker.fleet.issue_identity(lost, a)
    tls = ClientTls(broker.fleet.ca_cert, lost.cert, lost.key)
    probe(a, tls=tls)  # accepted before the revocation
    other = probe(b)
    started = broker.pid

    broker.fleet.write_crl([(cert.serial_number, dt.datetime.now(dt.timezone.utc))])
    broker.reload()

    with pytest.raises(ConnectionRefusedError):
        probe(a, tls=tls)
    assert broker.pid == started and other.client.is_connected()
    probe(b)  # everyone else still gets in
    broker.fleet.write_crl([])
    broker.reload()
    probe(a, tls=tls)


def test_a_revoked_node_already_connected_is_cut_off_by_a_restart_not_a_reload(
    probe, broker, nodes, tmp_path
):
    """TLS checks a certificate at the handshake only: after a reload the revoked
    node keeps its connection (and its down/ messages) until it reconnects."""
    (a,) = nodes(1)
    lost = Identity(tmp_path / "lost.crt", tmp_path / "lost.key")
    cert = broker.fleet.issue_identity(lost, a)
    tls = ClientTls(broker.fleet.ca_cert, lost.cert, lost.key)
    connected = probe(a, tls=tls)
    connected.subscribe(f"rp/v1/nodes/{a}/down/#")
    broker.fleet.write_crl([(cert.serial_number, dt.datetime.now(dt.timezone.utc))])
    try:
        broker.reload()
        sentinel = sentinel_to(a, probe)
        assert connected.next().payload == sentinel

        broker.restart()
        eventually(lambda: not connected.client.is_connected())
        with pytest.raises(ConnectionRefusedError):
            probe(a, tls=tls)
    finally:
        broker.fleet.write_crl([])
        broker.reload()


def test_a_broker_whose_certificate_does_not_name_the_host_is_refused(broker, tmp_path):
    """Clients check the broker's name: 127.0.0.1 is in its certificate, 127.0.0.2 is not
    (the listener is bound to 127.0.0.1, so a relay stands in for another address)."""
    from tests.netcut import CuttableLink

    link = CuttableLink(broker.host, broker.port, listen_host="127.0.0.2").start()
    try:
        client = Probe("127.0.0.2", link.port, tls=broker.tls_for(SERVER_USERNAME))
        with pytest.raises(ConnectionRefusedError, match="IP address mismatch"):
            client.connect()
        Probe("127.0.0.1", broker.port, tls=broker.tls_for(SERVER_USERNAME)).connect().close()
    finally:
        link.close()


# ---- `rpfleet provision broker-config` ------------------------------------------


def listeners(config: str) -> list[dict[str, str]]:
    """Each listener block of a mosquitto.conf: its options by name, ``listener`` included."""
    found: list[dict[str, str]] = []
    for line in config.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, _, value = line.partition(" ")
        if name == "listener":
            found.append({})
        if found:
            found[-1][name] = value
    return found


def test_broker_config_help_works():
    shown = subprocess.run(
        [sys.executable, "-m", "rpfleet", "provision", "broker-config", "--help"],
        capture_output=True, text=True, timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "--pki DIR" in shown.stdout and "--plain-port" in shown.stdout


@pytest.mark.parametrize("plain", [False, True], ids=["tls-only", "with-plain"])
def test_broker_config_listens_in_clear_on_loopback_only(tmp_path, plain):
    pki = FleetDir.create(tmp_path / "pki")
    out = tmp_path / "etc"
    argv = ["broker-config", "--pki", str(pki.path), "--out", str(out)]
    if plain:
        write_password_file(tmp_path / "passwd", {SERVER_USERNAME: new_password()})
        argv += ["--plain-port", "1884", "--password-file", str(tmp_path / "passwd")]
    assert cli.main(argv) == 0

    config = (out / "mosquitto.conf").read_text()
    blocks = listeners(config)
    tls = [b for b in blocks if "certfile" in b]
    clear = [b for b in blocks if "certfile" not in b]
    assert [b["listener"] for b in tls] == ["8883"]  # every interface: this one is TLS
    assert tls[0] == {
        "listener": "8883",
        "cafile": str(pki.ca_cert.resolve()),
        "certfile": str(pki.broker.cert.resolve()),
        "keyfile": str(pki.broker.key.resolve()),
        "crlfile": str(pki.crl.resolve()),
        "require_certificate": "true",
        "use_identity_as_username": "true",
        "tls_version": "tlsv1.2",
    }
    assert [b["listener"] for b in clear] == (["1884 127.0.0.1"] if plain else [])
    assert "allow_anonymous false" in config.splitlines()
    assert str(pki.ca_key) not in config
    assert (out / "acl").read_text() == render_acl()


def test_broker_config_refuses_what_would_not_work(tmp_path, capsys):
    pki = FleetDir.create(tmp_path / "pki")
    out = str(tmp_path / "etc")
    assert cli.main(["broker-config", "--pki", str(tmp_path / "none"), "--out", out]) == 2
    assert "rpfleet provision init" in capsys.readouterr().err
    plain_without_passwords = ["--plain-port", "1884"]
    assert cli.main(["broker-config", "--pki", str(pki.path), "--out", out,
                     *plain_without_passwords]) == 2
    assert "--password-file" in capsys.readouterr().err
    assert not (tmp_path / "etc" / "mosquitto.conf").exists()


def test_the_generated_broker_config_runs(tmp_path):
    """Mosquitto takes the file as written: a node gets in with its certificate,
    a local tool with its password on the loopback listener."""
    pki = FleetDir.create(tmp_path / "pki")
    node = Identity(tmp_path / "n1.crt", tmp_path / "n1.key")
    pki.issue_identity(node, "gen01-node")
    password = new_password()
    write_password_file(tmp_path / "passwd", {"gen01-node": password})
    port, plain_port = free_port(), free_port()
    out = tmp_path / "etc"
    assert cli.main([
        "broker-config", "--pki", str(pki.path), "--out", str(out), "--bind", "127.0.0.1",
        "--port", str(port), "--plain-port", str(plain_port),
        "--password-file", str(tmp_path / "passwd"),
        "--data-dir", str(tmp_path), "--log-file", str(tmp_path / "mosquitto.log"),
    ]) == 0
    config = out / "mosquitto.conf"
    # Not as root's default user "mosquitto", who could not read this test's files.
    config.write_text(f"user {getpass.getuser()}\n" + config.read_text())
    broker = process.spawn([MOSQUITTO, "-c", str(config)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        over_tls = Probe("127.0.0.1", port, tls=ClientTls(pki.ca_cert, node.cert, node.key))
        _connect_when_listening(over_tls, broker, tmp_path / "mosquitto.log")
        over_tls.subscribe("rp/v1/nodes/gen01-node/down/#")
        over_tls.close()
        Probe("127.0.0.1", plain_port, "gen01-node", password).connect().close()
        with pytest.raises(ConnectionRefusedError):
            Probe("127.0.0.1", plain_port, "gen01-node", "wrong").connect()
    finally:
        process.stop(broker)


def _connect_when_listening(client: Probe, broker: subprocess.Popen, log: Path) -> None:
    """Connect once Mosquitto says it runs (it writes that after opening its listeners)."""
    import time

    deadline = time.monotonic() + 15
    while not (log.exists() and "running" in log.read_text()):
        said = log.read_text() if log.exists() else ""
        assert broker.poll() is None, f"mosquitto exited: {said}"
        assert time.monotonic() < deadline, "mosquitto did not start"
        time.sleep(0.05)
    client.connect()
