"""Vietnamese number reading: the hand-checked table (testcases/numbers.tsv), properties, errors."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.soundbox.number_parser import parse_digits, parse_number
from devices.soundbox.numbers import (
    MAX_NUMBER,
    NORTHERN,
    SOUTHERN,
    STYLES,
    ReadingStyle,
    read_amount,
    read_digits,
    read_number,
)

TABLE = Path(__file__).parent / "testcases" / "numbers.tsv"


def table_cases() -> list[tuple[int, str, str]]:
    """(number, style name, expected words) for every case line of the table."""
    cases = []
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        number, style, expected = line.split("\t")
        cases.append((int(number), style, expected))
    return cases


CASES = table_cases()
STYLE_OF_SITE = st.sampled_from([NORTHERN, SOUTHERN])
ANY_NUMBER = st.integers(min_value=0, max_value=MAX_NUMBER)
ZERO_HEAVY_NUMBER = st.lists(st.sampled_from("00014590"), min_size=1, max_size=15).map(
    lambda digits: int("".join(digits))
)
"""Numbers made of the digits that trip readers up: empty classes, 1, 4, 5, 9."""


def test_the_table_is_big_unique_and_nfc():
    assert len(CASES) >= 200
    keys = [(number, style) for number, style, _ in CASES]
    assert len(keys) == len(set(keys)), "a number is listed twice for one style"
    assert {style for _, style, _ in CASES} == set(STYLES)
    assert all(unicodedata.is_normalized("NFC", text) for _, _, text in CASES)


@pytest.mark.parametrize(
    "number, style, expected", CASES, ids=[f"{n}-{style}" for n, style, _ in CASES]
)
def test_reads_the_table(number, style, expected):
    assert read_number(number, STYLES[style]) == expected


@pytest.mark.parametrize(
    "number, style, expected", CASES, ids=[f"{n}-{style}" for n, style, _ in CASES]
)
def test_parses_the_table(number, style, expected):
    assert parse_number(expected) == number


def test_northern_is_the_default():
    assert read_number(1024) == "một nghìn không trăm hai mươi bốn"
    assert read_amount(105_000) == "một trăm linh năm nghìn đồng"


@pytest.mark.parametrize(
    "dong, style, expected",
    [
        (0, NORTHERN, "không đồng"),
        (50_000, NORTHERN, "năm mươi nghìn đồng"),
        (50_000, SOUTHERN, "năm mươi ngàn đồng"),
        (1_250_000, NORTHERN, "một triệu hai trăm năm mươi nghìn đồng"),
        (2_024_000, SOUTHERN, "hai triệu không trăm hai mươi tư ngàn đồng"),
    ],
    ids=["zero", "50k-north", "50k-south", "1.25M", "2.024M-south"],
)
def test_reads_amounts_in_dong(dong, style, expected):
    assert read_amount(dong, style) == expected


@pytest.mark.parametrize(
    "ticket, expected",
    [
        ("1023", "một không hai ba"),
        ("0", "không"),
        ("0045", "không không bốn năm"),
        ("21", "hai một"),
        ("15", "một năm"),
        ("9876543210", "chín tám bảy sáu năm bốn ba hai một không"),
    ],
    ids=["1023", "zero", "leading-zeros", "no-mot", "no-lam", "all-digits"],
)
def test_reads_tickets_digit_by_digit(ticket, expected):
    assert read_digits(ticket) == expected
    assert parse_digits(expected) == ticket


@given(ANY_NUMBER | ZERO_HEAVY_NUMBER, STYLE_OF_SITE)
def test_every_number_reads_cleanly(n, style):
    text = read_number(n, style)
    assert text and text == text.strip()
    assert "  " not in text
    assert text == text.lower()
    assert unicodedata.is_normalized("NFC", text)


@given(ANY_NUMBER | ZERO_HEAVY_NUMBER, STYLE_OF_SITE)
def test_every_reading_parses_back(n, style):
    assert parse_number(read_number(n, style)) == n


@given(ANY_NUMBER | ZERO_HEAVY_NUMBER)
def test_each_style_keeps_to_its_own_words(n):
    northern = set(read_number(n, NORTHERN).split())
    southern = set(read_number(n, SOUTHERN).split())
    assert not northern & {"ngàn", "lẻ", "tư"}
    assert not southern & {"nghìn", "linh"}


@given(ANY_NUMBER | ZERO_HEAVY_NUMBER, STYLE_OF_SITE)
def test_amounts_are_the_number_and_dong(n, style):
    assert read_amount(n, style) == read_number(n, style) + " đồng"


@given(st.text(alphabet="0123456789", min_size=1, max_size=20))
def test_digit_readings_parse_back(ticket):
    text = read_digits(ticket)
    assert len(text.split()) == len(ticket)
    assert parse_digits(text) == ticket


def test_parser_takes_case_spacing_and_decomposed_text():
    decomposed = unicodedata.normalize("NFD", "  Một   Nghìn không trăm hai mươi ba ")
    assert parse_number(decomposed) == 1023
    assert parse_number("một tỉ không trăm linh một") == 1_000_000_001


@pytest.mark.parametrize(
    "n, match",
    [(-1, "negative"), (MAX_NUMBER + 1, "above"), (-(10**20), "negative"), (10**18, "above")],
    ids=["minus-one", "max-plus-one", "very-negative", "too-large"],
)
def test_refuses_numbers_out_of_range(n, match):
    with pytest.raises(ValueError, match=match):
        read_number(n)
    with pytest.raises(ValueError, match=match):
        read_amount(n, SOUTHERN)


def test_reads_the_largest_number():
    assert read_number(MAX_NUMBER).startswith("chín trăm chín mươi chín nghìn chín trăm")


@pytest.mark.parametrize("n", [True, 1.0, "5", None], ids=["bool", "float", "str", "none"])
def test_refuses_what_is_not_an_int(n):
    with pytest.raises(TypeError, match="must be an int"):
        read_number(n)


@pytest.mark.parametrize(
    "text", ["", "12a", " 12", "12\n", "-1", "1.5", "١٢"], ids=lambda t: repr(t)
)
def test_refuses_tickets_that_are_not_digits(text):
    with pytest.raises(ValueError, match="not a string of digits"):
        read_digits(text)


def test_refuses_a_ticket_that_is_an_int():
    with pytest.raises(TypeError, match="must be a string"):
        read_digits(1023)


@pytest.mark.parametrize(
    "fields, match",
    [
        ({"zero_tens": "lẽ"}, "zero_tens: 'lẽ' is not one of linh, lẻ"),
        ({"thousand": "ngan"}, "thousand: 'ngan' is not one of nghìn, ngàn"),
        ({"thousand": None}, "thousand: None"),
        ({"tu_after_muoi": "yes"}, "tu_after_muoi"),
    ],
    ids=["le-with-tilde", "no-diacritics", "none", "not-a-bool"],
)
def test_refuses_a_style_with_unknown_words(fields, match):
    with pytest.raises(ValueError, match=match):
        ReadingStyle(**fields)


def test_a_style_given_decomposed_text_is_normalized():
    style = ReadingStyle(thousand=unicodedata.normalize("NFD", "ngàn"))
    assert style.thousand == "ngàn"
    assert unicodedata.is_normalized("NFC", read_number(1000, style))


@pytest.mark.parametrize(
    "words",
    [
        "",
        "hai mươi một",
        "mười mốt",
        "hai mươi năm",
        "mười tư",
        "một trăm linh lăm",
        "một trăm linh mười",
        "linh năm",
        "không trăm năm",
        "một nghìn hai mươi ba",
        "một nghìn không trăm",
        "một triệu không nghìn không trăm linh năm",
        "một nghìn hai triệu",
        "một triệu tỷ",
        "nghìn",
        "tỷ",
        "một mươi",
        "năm mươi nghìn đồng",
        "âm năm",
        "không không",
    ],
    ids=lambda w: repr(w),
)
def test_parser_refuses_what_read_number_never_says(words):
    with pytest.raises(ValueError, match="is not a number reading"):
        parse_number(words)


@pytest.mark.parametrize("words", ["", "một mười", "bốn lăm", "hai tư"], ids=lambda w: repr(w))
def test_digit_parser_refuses_other_words(words):
    with pytest.raises(ValueError, match="is not a digit reading"):
        parse_digits(words)
