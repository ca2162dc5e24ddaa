"""Numbers read aloud in Vietnamese: pure code, an integer in, lowercase NFC words out.

A soundbox that says the wrong number sends a citizen to the wrong counter,
so this module says exactly one thing for each number, by these rules:

1.  0 is "không"; 1-9 are "một hai ba bốn năm sáu bảy tám chín".
2.  10-19 are "mười" and the unit: "mười", "mười một", "mười bốn".
3.  20-90 are the tens digit and "mươi" (not "mười"): "hai mươi", "năm mươi".
4.  A unit 1 after "mươi" is "mốt" ("hai mươi mốt"); after "mười" and after
    "linh"/"lẻ" it stays "một" ("mười một", "một trăm linh một").
5.  A unit 5 after "mười" or "mươi" is "lăm" ("mười lăm", "hai mươi lăm");
    alone, after "linh"/"lẻ" and as a tens or hundreds digit it is "năm"
    ("năm", "một trăm linh năm", "năm mươi", "năm trăm").
6.  A unit 4 after "mươi" is "tư" where the style says so ("hai mươi tư",
    southern) and "bốn" otherwise ("hai mươi bốn", northern). "mười bốn" and
    "linh bốn" never change ("mười tư" is literary, not for announcements).
7.  A zero tens digit before a non-zero unit, after a hundreds digit, is read
    "linh" (northern) or "lẻ" (southern): "một trăm linh năm"; a zero unit is
    not read: "một trăm", "một trăm mười", "hai mươi".
8.  Digits are grouped in classes of three from the right and read from the
    left, each class followed by its scale word: (none), "nghìn" (northern)
    or "ngàn" (southern), "triệu", "tỷ". The count of "tỷ" is itself read
    with its classes, so 10^12 is "một nghìn tỷ".
9.  The first class is read as it stands ("hai mươi ba nghìn"); every later
    class is read with its hundreds digit even when that digit is 0:
    1023 "một nghìn không trăm hai mươi ba", 1005 "một nghìn không trăm linh
    năm", 1,001,000 "một triệu không trăm linh một nghìn".
10. A later class that is all zeros is not read at all, scale word included:
    1,000,005 "một triệu không trăm linh năm", 1,000,000,001 "một tỷ không
    trăm linh một", 85,000,120 "tám mươi lăm triệu một trăm hai mươi". The
    next non-empty class still starts with its hundreds ("không trăm ...")
    and ends with its own scale word (none for units), so nothing is ambiguous.
11. Words are separated by single spaces, lowercase, NFC-normalized; the
    range is 0 to MAX_NUMBER (10^15 - 1, "chín trăm ... nghìn tỷ ..."):
    anything else is refused with ValueError (TypeError for a non-integer).

References: the Vietnamese primary-school mathematics textbook, Toán 4
("Triệu và lớp triệu", Luyện tập p. 16), whose exercise text reads 86,004,702
"tám mươi sáu triệu không trăm linh bốn nghìn bảy trăm linh hai" and
800,004,720 "tám trăm triệu không trăm linh bốn nghìn bảy trăm hai mươi", and
the published answers to its reading exercise (178,320,005 "... ba trăm hai
mươi nghìn không trăm linh năm", 1,000,001 "một triệu không trăm linh một");
Wikipedia "Vietnamese numerals" (Hanoi and Saigon notes: linh/lẻ, nghìn/ngàn,
mốt, tư, lăm); the learners' grammars at vietnamesemaestro.com and
vietnamese.nil.seattle.wa.us (mốt; lăm "but not numerals ending in 05";
Northern "linh"). Rule 10 follows the 1,000,001 answer and the common
accounting and banking readers. The same answer key reads 85,000,120 as
"... triệu không nghìn một trăm hai mươi", so "không nghìn" for an empty
class is a variant in use; it is not what we say.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

DIGIT_WORDS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
TEN = "mười"
TENS = "mươi"
HUNDRED = "trăm"
MILLION = "triệu"
BILLION = "tỷ"
DONG = "đồng"
ONE_AFTER_TENS = "mốt"
FIVE_AFTER_TEN = "lăm"
FOUR_AFTER_TENS = "tư"
THOUSAND_WORDS = ("nghìn", "ngàn")
ZERO_TENS_WORDS = ("linh", "lẻ")

MAX_NUMBER = 10**15 - 1

_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class ReadingStyle:
    """The regional conventions a site speaks with; NORTHERN (Hanoi) is the default.

    ``thousand``: "nghìn" (north) or "ngàn" (south); ``zero_tens``: the word
    for a zero tens digit, "linh" (north) or "lẻ" (south); ``tu_after_muoi``:
    read a unit 4 after "mươi" as "tư" ("hai mươi tư") instead of "bốn".
    Any other word is refused with ValueError, so a misspelling such as "lẽ"
    can never reach a loudspeaker.
    """

    thousand: str = "nghìn"
    zero_tens: str = "linh"
    tu_after_muoi: bool = False

    def __post_init__(self) -> None:
        for field, allowed in (("thousand", THOUSAND_WORDS), ("zero_tens", ZERO_TENS_WORDS)):
            value = getattr(self, field)
            word = unicodedata.normalize("NFC", value) if isinstance(value, str) else value
            if word not in allowed:
                raise ValueError(f"{field}: {value!r} is not one of {', '.join(allowed)}")
            object.__setattr__(self, field, word)
        if not isinstance(self.tu_after_muoi, bool):
            raise ValueError(f"tu_after_muoi: {self.tu_after_muoi!r} is not true or false")


NORTHERN = ReadingStyle(thousand="nghìn", zero_tens="linh", tu_after_muoi=False)
SOUTHERN = ReadingStyle(thousand="ngàn", zero_tens="lẻ", tu_after_muoi=True)
STYLES = {"northern": NORTHERN, "southern": SOUTHERN}
"""The presets by the name a site's config gives."""


def read_number(n: int, style: ReadingStyle = NORTHERN) -> str:
    """The words for ``n`` (0 <= n <= MAX_NUMBER) in ``style``, by the rules above.

    Raises TypeError when ``n`` is not an int (a bool is not a number here) and
    ValueError when it is negative or above MAX_NUMBER.
    """
    _check_number(n)
    if n == 0:
        return DIGIT_WORDS[0]
    billions, rest = divmod(n, 10**9)
    if not billions:
        return " ".join(_below_billion(rest, style, leading=True))
    words = [*_below_billion(billions, style, leading=True), BILLION]
    if rest:
        words += _below_billion(rest, style, leading=False)
    return " ".join(words)


def read_amount(dong: int, style: ReadingStyle = NORTHERN) -> str:
    """An amount of money: ``read_amount(50000)`` is "năm mươi nghìn đồng".

    Same range and errors as `read_number`.
    """
    return f"{read_number(dong, style)} {DONG}"


def read_digits(text: str) -> str:
    """A ticket number read digit by digit: "1023" is "một không hai ba".

    ``text`` is one or more ASCII digits, leading zeros kept ("0045" is "không
    không bốn năm"); a 4 is always "bốn" and a 5 "năm", whatever the style.
    Raises TypeError for a non-string and ValueError for anything else.
    """
    if not isinstance(text, str):
        raise TypeError(f"digits to read must be a string, not {type(text).__name__}")
    if not _DIGITS.fullmatch(text):
        raise ValueError(f"{text!r} is not a string of digits 0-9")
    return " ".join(DIGIT_WORDS[int(digit)] for digit in text)


def _check_number(n: object) -> None:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"a number to read must be an int, not {type(n).__name__}")
    if n < 0:
        raise ValueError(f"{n} is negative: only 0 to {MAX_NUMBER:,} can be read")
    if n > MAX_NUMBER:
        raise ValueError(f"{n:,} is above {MAX_NUMBER:,}, the largest number read")


def _below_billion(n: int, style: ReadingStyle, leading: bool) -> list[str]:
    """Words for 1 <= n < 10^9; ``leading`` is false when a larger class was already read."""
    words: list[str] = []
    for scale, scale_word in ((10**6, MILLION), (10**3, style.thousand), (1, None)):
        group, n = divmod(n, scale)
        if not group:
            continue  # rule 10: an empty class is not read
        words += _group(group, style, leading)
        if scale_word:
            words.append(scale_word)
        leading = False
    return words


def _group(n: int, style: ReadingStyle, leading: bool) -> list[str]:
    """Words for one class, 1 <= n <= 999 (rules 1-7 and 9)."""
    hundreds, tens_and_unit = divmod(n, 100)
    tens, unit = divmod(tens_and_unit, 10)
    words = [DIGIT_WORDS[hundreds], HUNDRED] if hundreds or not leading else []
    if tens == 0:
        if unit and words:
            words.append(style.zero_tens)
        if unit:
            words.append(DIGIT_WORDS[unit])
    elif tens == 1:
        words.append(TEN)
        if unit:
            words.append(FIVE_AFTER_TEN if unit == 5 else DIGIT_WORDS[unit])
    else:
        words += [DIGIT_WORDS[tens], TENS]
        if unit:
            words.append(_unit_after_tens(unit, style))
    return words


def _unit_after_tens(unit: int, style: ReadingStyle) -> str:
    if unit == 1:
        return ONE_AFTER_TENS
    if unit == 5:
        return FIVE_AFTER_TEN
    if unit == 4 and style.tu_after_muoi:
        return FOUR_AFTER_TENS
    return DIGIT_WORDS[unit]
