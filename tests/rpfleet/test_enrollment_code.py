"""Enrollment codes: readable, pinned to the CA, and a misheard character is caught locally."""

from __future__ import annotations

import hashlib
import itertools

import pytest

from rpfleet.enrollment_code import ALPHABET, LENGTH, CodeError, ca_pin, new_code, parse_code

FP = hashlib.sha256(b"fleet ca key").hexdigest()


def test_a_code_is_five_groups_of_four_readable_characters():
    text = str(new_code(FP))
    groups = text.split("-")
    assert [len(g) for g in groups] == [4] * 5
    assert set("".join(groups)) <= set(ALPHABET)
    assert not set("ILOU") & set(text)


def test_a_code_pins_its_ca_and_no_other():
    code = new_code(FP)
    assert code.pins(FP)
    assert not code.pins(hashlib.sha256(b"another key").hexdigest())
    assert code.pin == ca_pin(FP)


def test_codes_differ():
    assert len({new_code(FP).secret for _ in range(200)}) == 200


@pytest.mark.parametrize("typed", [
    lambda c: c.lower(),
    lambda c: c.replace("-", ""),
    lambda c: c.replace("-", " "),
    lambda c: c.replace("0", "O").replace("1", "I"),
    lambda c: c.replace("1", "l"),
], ids=["lower-case", "no-dashes", "spaces", "O-for-0-I-for-1", "l-for-1"])
def test_what_people_type_is_read_back(typed):
    code = new_code(FP)
    assert parse_code(typed(str(code))) == code


def test_every_single_wrong_character_is_caught():
    raw = str(new_code(FP)).replace("-", "")
    for position, char in itertools.product(range(LENGTH), ALPHABET):
        if raw[position] == char:
            continue
        wrong = raw[:position] + char + raw[position + 1:]
        with pytest.raises(CodeError, match="misread or mistyped"):
            parse_code(wrong)


def test_swapped_neighbours_are_caught_except_0_and_z():
    """Luhn mod 32 misses exactly one swap: "0" and "Z" (values 0 and 31)."""
    for _ in range(200):
        raw = str(new_code(FP)).replace("-", "")
        for i in range(LENGTH - 1):
            pair = raw[i:i + 2]
            if pair[0] == pair[1]:
                continue
            swapped = raw[:i] + pair[::-1] + raw[i + 2:]
            if set(pair) == {"0", "Z"}:
                assert parse_code(swapped) is not None
            else:
                with pytest.raises(CodeError):
                    parse_code(swapped)


@pytest.mark.parametrize("text, message", [
    ("ABCD-EFGH", "has 20 characters; this one has 8"),
    ("ABCD-EFGH-JKMN-PQRS-TVWX-YZ", "this one has 22"),
    ("ABCD-EFGH-JKMN-PQRS-TVW!", "not in codes: !"),
    ("ÂBCD-EFGH-JKMN-PQRS-TVWX", "not in codes: Â"),
    ("", "this one has 0"),
], ids=["short", "long", "punctuation", "diacritic", "empty"])
def test_bad_codes_say_what_is_wrong(text, message):
    with pytest.raises(CodeError, match=message):
        parse_code(text)
