"""`rpfleet agent self-test` as a technician runs it: a real process with fake
devices, answers typed into its stdin, the record through the real broker into the
fleet server, and what happens when the server cannot confirm it or Ctrl-C comes."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from fleet_server.schema import handovers
from provisioning.mosquitto import free_port
from rpfleet import process
from tests.conftest import eventually

PAD = {"kind": "rating-pad", "id": "pad-1", "counter": "1", "source": "fake", "scale": 3, "bounce": 0}
PRESSING_PAD = {**PAD, "fake_press_every": 0.02}
SCANNING_READER = {"kind": "scanner", "id": "qr-1", "counter": "1", "source": "fake",
                   "fake_scan_every": 0.1}
DESK = {"kind": "document-scanner", "id": "desk-1", "source": "fake"}


def toml_value(value) -> str:
    """A JSON-shaped value as TOML (inline tables and arrays; JSON strings are TOML strings)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()
                                if v is not None) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)


def write_config(path: Path, settings) -> Path:
    data = settings.model_dump(mode="json", exclude_none=True)
    path.write_text("".join(f"{key} = {toml_value(value)}\n" for key, value in data.items()),
                    encoding="utf-8")
    return path


class Terminal:
    """The self-test process with its stdin and stdout: what it says, and typing into it."""

    def __init__(self, config: Path, *options: str) -> None:
        self.proc = process.spawn(
            [sys.executable, "-m", "rpfleet", "agent", "self-test", "--config", str(config), *options],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        self._said: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in iter(self.proc.stdout.readline, b""):
            self._said.append(line.decode("utf-8", errors="replace"))

    @property
    def screen(self) -> str:
        return "".join(self._said)

    def sees(self, text: str, timeout: float = 30) -> None:
        eventually(lambda: text in self.screen, timeout)

    def types(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def leaves(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def exit_code(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            process.stop(self.proc)


@pytest.fixture
def terminal():
    opened: list[Terminal] = []

    def run(config: Path, *options: str) -> Terminal:
        opened.append(Terminal(config, *options))
        return opened[-1]

    yield run
    for t in opened:
        t.stop()


def stored(server, node: str) -> list[sa.Row]:
    with server.engine.connect() as conn:
        return list(conn.execute(sa.select(handovers).where(handovers.c.node_id == node)))


def test_the_technician_walks_through_and_the_server_stores_the_record(
    server, new_node, agent_settings, terminal, tmp_path
):
    node = new_node()
    settings = agent_settings(node, peripherals=[PRESSING_PAD, SCANNING_READER, DESK])
    config = write_config(tmp_path / "agent.toml", settings)

    t = terminal(config, "--technician", "Trần Thị Bình", "--timeout", "20s")
    t.sees("Trang quét thử có rõ không? (c/k)")
    t.types("có")
    code = t.exit_code()

    assert code == 0, t.screen
    screen = t.screen
    assert f"Tự kiểm tra nút {node}: 3 thiết bị ngoại vi" in screen
    assert "Nhấn lần lượt từng nút trên bàn phím đánh giá: 1, 2, 3." in screen
    assert "Quét thẻ thử (mã vạch hoặc QR) bằng máy đọc." in screen
    assert "3/3 đạt / passed" in screen
    assert "Máy chủ đã xác nhận biên bản / the server confirmed the handover record." in screen
    [row] = stored(server, node)
    assert (row.technician, row.passed) == ("Trần Thị Bình", True)
    assert [(r["peripheral"], r["passed"]) for r in row.results] == [
        ("pad-1", True), ("qr-1", True), ("desk-1", True)
    ]
    assert not re.search(r"\d{12}", json.dumps(row.results) + screen), "no ID number anywhere"
    assert not (settings.state_dir / "handover-pending.json").exists()


def test_a_failed_peripheral_is_sent_all_the_same_and_exits_1(
    server, new_node, agent_settings, terminal, tmp_path
):
    node = new_node()
    settings = agent_settings(node, peripherals=[PAD])
    config = write_config(tmp_path / "agent.toml", settings)

    t = terminal(config, "--timeout", "1s")
    t.sees("technician's name (Enter to skip):")
    t.types("Lê Văn Cường")
    t.sees("note (Enter to skip):")
    t.types("bàn phím không phản hồi")
    code = t.exit_code()

    assert code == 1, t.screen
    assert "✗ pad-1  nothing seen in 1s" in t.screen
    [row] = stored(server, node)
    assert row.results == [{"peripheral": "pad-1", "kind": "rating-pad", "passed": False,
                            "seen": "nothing seen in 1s", "note": "bàn phím không phản hồi"}]


def test_unconfirmed_is_said_plainly_saved_and_resent(
    server, new_node, agent_settings, terminal, tmp_path
):
    node = new_node()
    offline = agent_settings(node, port=free_port(), peripherals=[PRESSING_PAD])
    config = write_config(tmp_path / "agent.toml", offline)

    t = terminal(config, "--technician", "Phạm Thu", "--confirm-timeout", "1s")
    code = t.exit_code()

    assert code == 75, t.screen
    assert "CHƯA GỬI ĐƯỢC: could not reach the broker at 127.0.0.1:" in t.screen
    assert "NOT SENT:" in t.screen
    assert "rpfleet agent self-test --resend" in t.screen
    assert "confirmed" not in t.screen.split("NOT SENT")[0].split("Kết quả")[1]
    pending = offline.state_dir / "handover-pending.json"
    [saved] = json.loads(pending.read_text(encoding="utf-8"))
    assert saved["technician"] == "Phạm Thu"
    assert stored(server, node) == []

    write_config(config, agent_settings(node, state_dir=offline.state_dir, peripherals=[PRESSING_PAD]))
    again = terminal(config, "--resend")

    assert again.exit_code() == 0, again.screen
    assert "Máy chủ đã xác nhận biên bản / the server confirmed the handover record." in again.screen
    [row] = stored(server, node)
    assert row.handover_id == saved["handover_id"]
    assert not pending.exists()

    nothing = terminal(config, "--resend")
    assert nothing.exit_code() == 0
    assert "no handover record is waiting to be sent" in nothing.screen


def test_ctrl_c_stops_cleanly_and_sends_nothing(server, new_node, agent_settings, terminal, tmp_path):
    node = new_node()
    settings = agent_settings(node, peripherals=[PAD])
    config = write_config(tmp_path / "agent.toml", settings)

    t = terminal(config, "--technician", "Phạm Thu", "--timeout", "5m")
    t.sees("Press each button on the rating pad in turn: 1, 2, 3.")
    time.sleep(0.2)
    t.proc.send_signal(signal.SIGINT)
    code = t.exit_code(timeout=15)

    assert code == 130, t.screen
    assert "Đã dừng; chưa gửi gì / stopped; nothing was sent." in t.screen
    assert "Traceback" not in t.screen
    assert not (settings.state_dir / "handover-pending.json").exists()
    time.sleep(0.5)
    assert stored(server, node) == []
