"""The serial pads' line protocol, as pure bytes."""

import pytest

from devices.rating_pad.serial_protocol import MAX_LINE, Hello, PadLineReader, Press, ack, parse_line


@pytest.mark.parametrize(
    "line, message",
    [
        (b"PRESS 3", Press(3)),
        (b"HELLO RP5-00123 5", Hello("RP5-00123", 5)),
        (b"press 3", None),
        (b"PRESS 0", None),
        (b"PRESS 12", None),
        (b"PRESS  3", None),
        (b"PRESS 3 extra", None),
        (b"HELLO RP5 00123 5", None),
        (b"HELLO " + b"X" * 33 + b" 5", None),
        (b"PRESS \xb3", None),
    ],
    ids=["press", "hello", "lower-case", "button-0", "two-digits", "two-spaces", "trailing",
         "space-in-serial", "serial-too-long", "not-ascii"],
)
def test_parse_line(line, message):
    assert parse_line(line) == message


def test_ack_names_the_button():
    assert ack(4) == b"ACK 4\n"


STREAM = b"HELLO RP5-00123 5\r\nPRESS 2\nPRESS 5\r\n"


@pytest.mark.parametrize("cut", [1, 7, 18, 19, 26, len(STREAM) - 1], ids=lambda c: f"cut-at-{c}")
def test_messages_come_out_whole_whatever_pieces_the_bytes_arrive_in(cut):
    reader = PadLineReader()
    messages = reader.feed(STREAM[:cut]) + reader.feed(STREAM[cut:])
    assert messages == [Hello("RP5-00123", 5), Press(2), Press(5)]
    assert (reader.garbage, reader.overlong, reader.cut_off) == (0, 0, 0)


def test_byte_at_a_time():
    reader = PadLineReader()
    assert [m for byte in STREAM for m in reader.feed(bytes([byte]))] == [Hello("RP5-00123", 5), Press(2), Press(5)]


def test_garbage_lines_are_skipped_and_counted():
    reader = PadLineReader()
    noise = b"\x00\xff\xfe\n" + b"PRESS 9x\n" + b"\n\r\n" + b"\x86\x1e\x98PRESS 1\n"
    assert reader.feed(noise + b"PRESS 4\n") == [Press(4)]
    assert (reader.garbage, reader.overlong) == (3, 0)  # empty lines are not garbage


def test_an_overlong_line_is_skipped_up_to_its_end_and_counted_once():
    reader = PadLineReader()
    assert reader.feed(b"PRESS 1" + b"!" * MAX_LINE) == []
    assert reader.feed(b"!" * 1000) == []
    assert reader.feed(b"PRESS 2\nPRESS 3\n") == [Press(3)]  # "PRESS 2" ended the long line
    assert (reader.garbage, reader.overlong) == (0, 1)


@pytest.mark.parametrize(
    "length, overlong", [(MAX_LINE, 0), (MAX_LINE + 1, 1)], ids=["max-line", "one-byte-more"]
)
def test_max_line_counts_the_line_without_its_terminator(length, overlong):
    reader = PadLineReader()
    reader.feed(b"x" * length + b"\r\n")
    assert (reader.garbage, reader.overlong) == (1 - overlong, overlong)


def test_a_half_line_at_disconnect_is_dropped_not_glued_to_the_next_connection():
    reader = PadLineReader()
    assert reader.feed(b"PRESS 1\nPRESS 2") == [Press(1)]
    reader.disconnected()
    assert reader.feed(b"\nPRESS 4\n") == [Press(4)]
    assert reader.cut_off == 1


def test_a_clean_disconnect_cuts_nothing():
    reader = PadLineReader()
    reader.feed(b"PRESS 1\n")
    reader.disconnected()
    assert reader.cut_off == 0
