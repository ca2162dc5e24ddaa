"""agent.logs: logfmt lines for journald, and no secret in the real agent's output."""

import logging
import re
import signal
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from agent.logs import LogfmtFormatter
from rpfleet import process
from tests.conftest import agent_toml, eventually

NODE = "hk-tiep-nhan-q1"
CREATED = 1795573837.123456  # 2026-11-25T02:30:37.123456Z
ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t", "r": "\r"}


def parse_logfmt(line: str) -> dict[str, str]:
    """A strict logfmt reader: ``key=value`` pairs separated by one space; a bare
    value is made of characters above ' ' other than '=' and '"'; a quoted value
    knows the escapes \\\\ \\" \\n \\t \\r \\xNN and holds no raw control character."""
    fields: dict[str, str] = {}
    i = 0
    while i < len(line):
        start = i
        while i < len(line) and line[i] > " " and line[i] not in '="':
            i += 1
        if i == start or i == len(line) or line[i] != "=":
            raise ValueError(f"no key=… at column {start}: {line!r}")
        key = line[start:i]
        if key in fields:
            raise ValueError(f"key {key} repeated at column {start}: {line!r}")
        i += 1
        if i < len(line) and line[i] == '"':
            i += 1
            value = []
            while True:
                if i >= len(line):
                    raise ValueError(f"unterminated quoted value of {key}: {line!r}")
                char = line[i]
                if char == '"':
                    i += 1
                    break
                if line.startswith("\\x", i) and re.fullmatch(r"[0-9a-f]{2}", line[i + 2:i + 4]):
                    value.append(chr(int(line[i + 2:i + 4], 16)))
                    i += 4
                    continue
                if char == "\\":
                    if i + 1 >= len(line) or line[i + 1] not in ESCAPES:
                        raise ValueError(f"bad escape in {key} at column {i}: {line!r}")
                    value.append(ESCAPES[line[i + 1]])
                    i += 2
                    continue
                if char < " ":
                    raise ValueError(f"raw control character {char!r} in {key}: {line!r}")
                value.append(char)
                i += 1
            fields[key] = "".join(value)
        else:
            start = i
            while i < len(line) and line[i] > " " and line[i] not in '="':
                i += 1
            fields[key] = line[start:i]
        if i < len(line):
            if line[i] != " " or i + 1 == len(line):
                raise ValueError(f"expected one space between pairs at column {i}: {line!r}")
            i += 1
    return fields


def test_the_parser_itself_refuses_what_is_not_logfmt():
    assert parse_logfmt('a=1 b="x y" c=') == {"a": "1", "b": "x y", "c": ""}
    for bad in ["a", "a=1  b=2", 'a="open', "a=x\ty=1", 'a="\\q"', "=1", "a=1 a=2", "a=1 "]:
        with pytest.raises(ValueError, match="column|unterminated|escape"):
            parse_logfmt(bad)


def record(msg: str, *args, level: int = logging.INFO, name: str = "agent.node",
           exc_info=None) -> logging.LogRecord:
    entry = logging.LogRecord(name, level, __file__, 1, msg, args, exc_info)
    entry.created = CREATED
    return entry


def formatted(entry: logging.LogRecord) -> str:
    line = LogfmtFormatter(NODE).format(entry)
    assert "\n" not in line, "one record must be one line for journald"
    return line


def test_a_line_has_ts_level_node_logger_and_msg_in_that_order():
    fields = parse_logfmt(formatted(record("pad %s: %d taps", "pad-1", 5, level=logging.WARNING)))

    assert list(fields) == ["ts", "level", "node", "logger", "msg"]
    assert fields == {
        "ts": "2026-11-25T02:30:37.123+00:00",
        "level": "warning",
        "node": NODE,
        "logger": "agent.node",
        "msg": "pad pad-1: 5 taps",
    }
    assert datetime.fromisoformat(fields["ts"]).utcoffset() == timezone.utc.utcoffset(None)


@pytest.mark.parametrize(
    "message",
    [
        "connected",
        "connected to 127.0.0.1:1883",
        'the pad said "hello"',
        "retry=3 after=1.5s",
        "=",
        "first line\nsecond line",
        "col\tumn",
        "C:\\rpfleet\\agent.toml",
        "literal \\n is not a newline",
        "ends with a backslash \\",
        '\\"',
        "Cảm ơn quý khách",
        "Cảm ơn quý khách!\n\"Rất hài lòng\" = 5 sao",
        '{"kind": "rating-tap", "rating": 5}',
        "",
        " ",
    ],
    ids=["bare", "spaces", "quotes", "equals", "only-equals", "newline", "tab", "windows-path",
         "backslash-n-literal", "trailing-backslash", "escaped-quote-literal", "vietnamese",
         "vietnamese-quotes-equals-newline", "json", "empty", "one-space"],
)
def test_messages_round_trip_through_a_logfmt_parser(message):
    fields = parse_logfmt(formatted(record("%s", message)))
    assert fields["msg"] == message
    assert fields["node"] == NODE


@pytest.mark.parametrize(
    "message",
    ["scanned 8934563\r", "a\rb", "nul\x00byte", "\x1b[2Jcleared"],
    ids=["trailing-cr", "carriage-return", "nul", "ansi-escape"],
)
def test_control_characters_round_trip_through_a_logfmt_parser(message):
    assert parse_logfmt(formatted(record("%s", message)))["msg"] == message


def test_the_node_and_logger_are_quoted_when_they_need_it():
    line = LogfmtFormatter("node with space").format(record("x", name="weird=name"))
    fields = parse_logfmt(line)
    assert fields["node"] == "node with space"
    assert fields["logger"] == "weird=name"


def test_an_exception_adds_an_exc_field_with_the_traceback():
    try:
        raise ValueError('bàn phím "pad-1" = mất kết nối')
    except ValueError:
        entry = record("driver %s failed", "pad-1", level=logging.ERROR, exc_info=sys.exc_info())

    fields = parse_logfmt(formatted(entry))

    assert list(fields) == ["ts", "level", "node", "logger", "msg", "exc"]
    assert fields["level"] == "error"
    assert fields["msg"] == "driver pad-1 failed"
    assert fields["exc"].startswith("Traceback (most recent call last):\n")
    assert fields["exc"].endswith('ValueError: bàn phím "pad-1" = mất kết nối')
    assert "test_an_exception_adds_an_exc_field_with_the_traceback" in fields["exc"]


def test_no_exc_field_without_an_exception():
    assert "exc" not in parse_logfmt(formatted(record("fine")))


# ---- the real agent process -------------------------------------------------


def run_agent_until_it_logged(tmp_path: Path, broker, node: str) -> tuple[str, str]:
    """Runs ``rpfleet agent run --log-level DEBUG`` until it has connected and logged
    at debug level, then stops it with SIGTERM; returns its stdout and stderr."""
    config = tmp_path / f"{node}.toml"
    config.write_text(agent_toml(broker, node, tmp_path / node, press_every_s=0.5),
                      encoding="utf-8")
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        agent = process.spawn(
            [sys.executable, "-m", "rpfleet", "agent", "run", "--config", str(config),
             "--log-level", "DEBUG"],
            stdout=stdout, stderr=stderr,
        )
    try:
        logged = lambda: out.read_text(encoding="utf-8")  # noqa: E731
        eventually(lambda: "connected to" in logged() and "level=debug" in logged())
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(20) == 0
    finally:
        process.stop(agent)
    return out.read_text(encoding="utf-8"), err.read_text(encoding="utf-8")


def test_the_real_agent_logs_logfmt_at_debug_level_and_never_its_private_key(
    tmp_path, broker, new_node
):
    node = new_node()
    key_lines = [line for line in broker.tls_for(node).key_file.read_text().splitlines()
                 if not line.startswith("-----") and len(line) >= 16]
    stdout, stderr = run_agent_until_it_logged(tmp_path, broker, node)

    assert key_lines
    assert not any(line in stdout or line in stderr for line in key_lines)
    assert stderr == "", "every log line goes to stdout, for journald"

    parsed = [parse_logfmt(line) for line in stdout.splitlines()]
    for fields in parsed:
        assert list(fields)[:5] == ["ts", "level", "node", "logger", "msg"]
        assert fields["node"] == node
        assert datetime.fromisoformat(fields["ts"]).utcoffset() == timezone.utc.utcoffset(None)
    assert {"debug", "info"} <= {fields["level"] for fields in parsed}
    assert any(f["msg"] == f"connected to 127.0.0.1:{broker.port}" for f in parsed)
    assert parsed[-1]["msg"] == "agent stopped"
