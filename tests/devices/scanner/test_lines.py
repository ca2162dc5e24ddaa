"""The serial framer, fed bytes in the pieces a port may deliver them."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from devices.scanner.lines import LineFramer
from devices.scanner.reads import Chunk

T0 = datetime(2026, 11, 25, 1, 0, tzinfo=timezone.utc)


def feed(framer: LineFramer, *pieces: bytes, start: float = 10.0, gap: float = 0.01):
    reads = []
    for n, piece in enumerate(pieces):
        reads += framer.feed(Chunk(piece, T0, start + n * gap))
    return [(r.code, r.partial) for r in reads]


def test_cr_lf_and_cr_lf_each_end_one_code():
    framer = LineFramer("enter", timeout_s=0.5)
    assert feed(framer, b"A1\rB2\nC3\r\nD4\r", b"\nE5\n\n\n") == [
        ("A1", False), ("B2", False), ("C3", False), ("D4", False), ("E5", False)
    ]


@pytest.mark.parametrize(
    "terminator, data, codes",
    [
        ("cr", b"A\nB\rC\r", ["A\nB", "C"]),
        ("lf", b"A\rB\nC\n", ["A\rB", "C"]),
        ("tab", b"A B\tC\t", ["A B", "C"]),
    ],
)
def test_a_single_byte_terminator_leaves_the_other_line_ends_in_the_code(terminator, data, codes):
    assert [code for code, _ in feed(LineFramer(terminator, timeout_s=0.5), data)] == codes


def test_utf8_split_across_pieces_comes_out_whole():
    name = "Nguyễn Văn An".encode()
    assert feed(LineFramer("enter", timeout_s=0.5), name[:6], name[6:] + b"\r\n") == [("Nguyễn Văn An", False)]


def test_bytes_that_are_not_utf8_and_nul_show_as_damage():
    assert feed(LineFramer("enter", timeout_s=0.5), b"AB\xffC\x00D\r\n") == [("AB\ufffdC\ufffdD", False)]


def test_line_noise_is_no_code_and_is_counted():
    framer = LineFramer("enter", timeout_s=0.5)
    assert feed(framer, b"\xff\xfe\x00\r\n", b" \t \r\n", b"IHN-20241125-000731\r\n") == [
        ("IHN-20241125-000731", False)
    ]
    assert framer.noise == 2


def test_bytes_that_stop_before_the_terminator_are_partial_and_not_glued_to_the_next():
    framer = LineFramer("enter", timeout_s=0.5)
    assert feed(framer, b"IHN-2024") == []
    assert framer.deadline() == pytest.approx(10.5)
    assert framer.expire(10.49) == []
    assert [(r.code, r.partial) for r in framer.expire(10.5)] == [("IHN-2024", True)]
    assert feed(framer, b"IHN-20241125-000731\r\n", start=20.0) == [("IHN-20241125-000731", False)]


def test_a_late_piece_ends_the_quiet_code_before_starting_its_own():
    framer = LineFramer("enter", timeout_s=0.5)
    assert feed(framer, b"IHN-2024", b"0731\r\n", gap=2.0) == [("IHN-2024", True), ("0731", False)]


def test_without_a_terminator_silence_ends_a_whole_code():
    framer = LineFramer("none", timeout_s=0.3)
    feed(framer, b"8935049", b"500018")
    assert [(r.code, r.partial) for r in framer.expire(11.0)] == [("8935049500018", False)]


def test_an_overlong_code_comes_in_partial_pieces_that_lose_nothing():
    framer = LineFramer("enter", timeout_s=0.5, max_length=16)
    code = b"0123456789" * 4
    reads = feed(framer, code[:25], code[25:] + b"\r\nNEXT\r\n")
    assert [c for c, _ in reads] == [code[:16].decode(), code[16:32].decode(), code[32:].decode(), "NEXT"]
    assert [p for _, p in reads] == [True, True, True, False]


def test_a_reader_that_goes_away_drops_its_half_code():
    framer = LineFramer("enter", timeout_s=0.5)
    feed(framer, b"IHN-20")
    assert framer.discard() == 6
    assert framer.deadline() is None
    assert feed(framer, b"IHN-20241125-000731\r\n") == [("IHN-20241125-000731", False)]
