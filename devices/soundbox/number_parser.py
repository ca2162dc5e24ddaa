"""Vietnamese number words back to the number: the reverse of `devices.soundbox.numbers`.

Strict on purpose: it takes exactly the phrases `read_number` and `read_digits`
write, in either style (and mixed: "nghìn" or "ngàn", "linh" or "lẻ", "tư" or
"bốn" after "mươi", "tỷ" or "tỉ"), and refuses the rest with ValueError. So a
round trip through it checks the form of a reading, not only its value:
"hai mươi một", "mười mốt", "hai mươi năm", "một nghìn hai mươi ba" (no
"không trăm") and "không trăm năm" (a leading "không trăm") are all refused,
though a person would understand most of them.
"""

from __future__ import annotations

import unicodedata

from devices.soundbox.numbers import (
    BILLION,
    DIGIT_WORDS,
    FIVE_AFTER_TEN,
    FOUR_AFTER_TENS,
    HUNDRED,
    MILLION,
    ONE_AFTER_TENS,
    TEN,
    TENS,
    THOUSAND_WORDS,
    ZERO_TENS_WORDS,
)

_DIGIT = {word: value for value, word in enumerate(DIGIT_WORDS)}
_NONZERO = {word: value for word, value in _DIGIT.items() if value}
_UNIT_AFTER_TEN = {
    (FIVE_AFTER_TEN if value == 5 else word): value for word, value in _NONZERO.items()
}
"""After "mười": "lăm", never "năm"; "bốn", never "tư"."""
_UNIT_AFTER_TENS = {
    (ONE_AFTER_TENS if value == 1 else word): value for word, value in _UNIT_AFTER_TEN.items()
} | {FOUR_AFTER_TENS: 4}
"""After "mươi": "mốt", never "một"; "tư" or "bốn"."""
_TENS_DIGIT = {word: value for word, value in _NONZERO.items() if value >= 2}
_BILLION_WORDS = {BILLION, "tỉ"}


class _NotAReading(ValueError):
    pass


def parse_number(words: str) -> int:
    """The number a phrase of `read_number` says: "một nghìn không trăm hai mươi ba" is 1023.

    Case and runs of whitespace do not matter; the text is NFC-normalized first.
    Raises ValueError, naming the phrase and what is wrong with it, for any
    other phrase.
    """
    tokens = _tokens(words)
    try:
        return _number(tokens)
    except _NotAReading as error:
        raise ValueError(f"{words!r} is not a number reading: {error}") from None


def parse_digits(words: str) -> str:
    """The digits a phrase of `read_digits` says: "một không hai ba" is "1023"."""
    tokens = _tokens(words)
    if not tokens:
        raise ValueError(f"{words!r} is not a digit reading: no words")
    for token in tokens:
        if token not in _DIGIT:
            raise ValueError(f"{words!r} is not a digit reading: {token!r} is not a digit")
    return "".join(str(_DIGIT[token]) for token in tokens)


def _tokens(words: str) -> list[str]:
    if not isinstance(words, str):
        raise TypeError(f"words to parse must be a string, not {type(words).__name__}")
    return unicodedata.normalize("NFC", words).lower().split()


def _number(tokens: list[str]) -> int:
    if tokens == [DIGIT_WORDS[0]]:
        return 0
    at = _scale_at(tokens, _BILLION_WORDS)
    if at is None:
        return _below_billion(tokens, leading=True)
    billions = _below_billion(tokens[:at], leading=True)
    if billions >= 10**6:
        raise _NotAReading("no more than 999,999 tỷ is read")
    rest = tokens[at + 1 :]
    return billions * 10**9 + (_below_billion(rest, leading=False) if rest else 0)


def _below_billion(tokens: list[str], leading: bool) -> int:
    value = 0
    for scale, scale_words in ((10**6, {MILLION}), (10**3, set(THOUSAND_WORDS))):
        at = _scale_at(tokens, scale_words)
        if at is not None:
            value += _group(tokens[:at], leading) * scale
            leading = False
            tokens = tokens[at + 1 :]
    if tokens:
        value += _group(tokens, leading)
    elif not value:
        raise _NotAReading("no number")
    return value


def _scale_at(tokens: list[str], scale_words: set[str]) -> int | None:
    found = [i for i, token in enumerate(tokens) if token in scale_words]
    if len(found) > 1:
        raise _NotAReading(f"{' / '.join(sorted(scale_words))} more than once")
    return found[0] if found else None


def _group(tokens: list[str], leading: bool) -> int:
    """One class, 1..999; a class after a larger one must start with its hundreds."""
    phrase = " ".join(tokens) or "nothing"
    if len(tokens) >= 2 and tokens[1] == HUNDRED and tokens[0] in _DIGIT:
        hundreds = _DIGIT[tokens[0]]
        if hundreds == 0 and leading:
            raise _NotAReading(f"{phrase!r} starts with 'không trăm'")
        value = hundreds * 100 + _tens_and_unit(tokens[2:], after_hundreds=True, phrase=phrase)
    elif leading:
        value = _tens_and_unit(tokens, after_hundreds=False, phrase=phrase)
    else:
        raise _NotAReading(f"{phrase!r} follows a larger class but does not read its hundreds")
    if not value:
        raise _NotAReading(f"{phrase!r} is an empty class, which is not read")
    return value


def _tens_and_unit(tokens: list[str], after_hundreds: bool, phrase: str) -> int:
    match tokens:
        case []:
            return 0
        case [zero_tens, unit] if after_hundreds and zero_tens in ZERO_TENS_WORDS:
            if unit in _NONZERO:
                return _NONZERO[unit]
        case [unit] if not after_hundreds and unit in _NONZERO:
            return _NONZERO[unit]
        case [word] if word == TEN:
            return 10
        case [word, unit] if word == TEN and unit in _UNIT_AFTER_TEN:
            return 10 + _UNIT_AFTER_TEN[unit]
        case [tens, word] if word == TENS and tens in _TENS_DIGIT:
            return 10 * _TENS_DIGIT[tens]
        case [tens, word, unit] if word == TENS and tens in _TENS_DIGIT:
            if unit in _UNIT_AFTER_TENS:
                return 10 * _TENS_DIGIT[tens] + _UNIT_AFTER_TENS[unit]
    raise _NotAReading(f"{' '.join(tokens)!r} in {phrase!r} is not a reading of tens and units")
