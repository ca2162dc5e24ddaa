"""agent.systemd: sd_notify over a real unix datagram socket, and the watchdog period."""

import os
import socket
import uuid
from pathlib import Path

import pytest

from agent.systemd import notify, watchdog_period


@pytest.fixture
def short_dir() -> Path:
    # A unix socket path must fit in 108 bytes; pytest's tmp_path can be longer.
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="sdn-"))
    yield path
    for child in path.iterdir():
        child.unlink()
    path.rmdir()


@pytest.fixture
def systemd_socket(short_dir: Path):
    """What systemd listens on for a Type=notify service: a bound datagram socket."""
    path = short_dir / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(5)
        yield path, sock


def nothing_waiting(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        sock.recv(4096)
    except BlockingIOError:
        return True
    return False


@pytest.mark.parametrize(
    "message",
    ["READY=1\nSTATUS=serving 1 peripheral(s)", "WATCHDOG=1", "STATUS=Cảm ơn quý khách"],
    ids=["ready-and-status", "watchdog", "utf-8-status"],
)
def test_notify_sends_exactly_the_message(systemd_socket, monkeypatch, message):
    path, sock = systemd_socket
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))

    assert notify(message) is True

    assert sock.recv(4096) == message.encode()
    assert nothing_waiting(sock)


def test_notify_to_an_abstract_socket(monkeypatch):
    name = f"rpfleet-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)

        assert notify("STOPPING=1") is True

        assert sock.recv(4096) == b"STOPPING=1"


@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
def test_notify_without_systemd_sends_nothing(systemd_socket, monkeypatch, value):
    _, sock = systemd_socket
    if value is None:
        monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    else:
        monkeypatch.setenv("NOTIFY_SOCKET", value)

    assert notify("READY=1") is False

    assert nothing_waiting(sock)


def test_notify_to_a_socket_nobody_listens_on_is_false(short_dir, monkeypatch):
    path = short_dir / "gone"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))  # systemd went away: the file stays, nobody reads it
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))

    assert notify("READY=1") is False


@pytest.mark.parametrize(
    "address",
    ["/nonexistent-dir/notify", "@rpfleet-test-nobody-" + uuid.uuid4().hex],
    ids=["missing-path", "abstract-nobody"],
)
def test_notify_to_an_address_that_does_not_exist_is_false(monkeypatch, address):
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    assert notify("READY=1") is False


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        ("30000000", None, 15.0),
        ("30000000", "self", 15.0),
        ("3000000", "self", 1.5),
        ("30000000", "other", None),
        (None, None, None),
        (None, "self", None),
        ("", None, None),
    ],
    ids=["30s-no-pid", "30s-our-pid", "3s", "another-process", "unset", "pid-only", "empty"],
)
def test_watchdog_period_is_half_of_watchdog_sec(monkeypatch, usec, pid, expected):
    for name, value in (("WATCHDOG_USEC", usec), ("WATCHDOG_PID", pid)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            own = os.getpid()
            value = {"self": str(own), "other": str(own + 1)}.get(value, value)
            monkeypatch.setenv(name, value)

    assert watchdog_period() == expected
