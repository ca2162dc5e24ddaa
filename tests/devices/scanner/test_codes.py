"""Golden cases for classifying codes: codes/<case>/input (one code per line),
expected (one JSON result per line), config.toml (hash key, policies, partial)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from devices.scanner.codes import CodeClassifier, CodeKind, keyed_hash, shipped_kinds
from devices.scanner.symbology import split_symbology

CASES = Path(__file__).parent / "codes"


def options(case: str) -> dict:
    path = CASES / case / "config.toml"
    return tomllib.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if p.is_dir()), ids=str)
def test_golden_case(case):
    config = options(case)
    key = config.get("hash_key")
    classifier = CodeClassifier(
        shipped_kinds(),
        hash_key=key.encode() if key else None,
        unknown=config.get("unknown_codes", "keep"),
        partial=config.get("partial_codes", "redact"),
    )
    codes = (CASES / case / "input").read_text(encoding="utf-8").splitlines()
    expected = [json.loads(line) for line in (CASES / case / "expected").read_text(encoding="utf-8").splitlines()]
    found = [classifier.classify(code, partial=config.get("partial", False)) for code in codes]
    assert [{"kind": f.kind, "code": f.code, "fields": f.fields, "redacted": f.redacted} for f in found] == expected


def test_nothing_of_a_citizen_id_survives_classification_but_what_its_kind_keeps():
    code = (CASES / "citizen-id-qr" / "input").read_text(encoding="utf-8").splitlines()[0]
    found = CodeClassifier(shipped_kinds(), hash_key=b"k" * 32).classify(code)
    kept = json.dumps([found.code, found.fields], ensure_ascii=False)
    for piece in code.split("|"):
        if piece and piece != "1990":
            assert piece not in kept
    assert "1990" in kept  # the birth year: the one part this kind keeps in clear


def test_hashes_depend_on_the_secret_and_on_the_part():
    assert keyed_hash(b"a" * 16, "id_number", "001099012345") != keyed_hash(b"b" * 16, "id_number", "001099012345")
    assert keyed_hash(b"a" * 16, "id_number", "1990") != keyed_hash(b"a" * 16, "birth_year", "1990")


def test_without_a_secret_the_classifier_says_it_drops_hashed_parts():
    assert CodeClassifier(shipped_kinds(), hash_key=None).drops_hashed_parts
    assert not CodeClassifier(shipped_kinds(), hash_key=b"k" * 16).drops_hashed_parts
    plain = CodeKind(name="booking", pattern=r"B-(?P<n>\d+)", keep=["n"])
    assert not CodeClassifier([plain], hash_key=None).drops_hashed_parts


def test_the_first_matching_kind_wins():
    broad = CodeKind(name="anything", pattern=r".+")
    narrow = CodeKind(name="booking", pattern=r"IHN-\d+")
    assert CodeClassifier([broad, narrow], hash_key=None).classify("IHN-1").kind == "anything"
    assert CodeClassifier([narrow, broad], hash_key=None).classify("IHN-1").kind == "booking"


@pytest.mark.parametrize(
    "row, message",
    [
        ({"pattern": "IHN-(?P<n>"}, "not a regular expression"),
        ({"pattern": r"IHN-(?P<n>\d+)", "keep": ["number"]}, "groups the pattern does not have: number"),
        ({"pattern": r"(?P<n>\d+)", "keep": ["n"], "hash": ["n"]}, "either kept or hashed"),
        ({"pattern": r"\d+", "guard": r"\d"}, "guard is for personal kinds"),
        ({"pattern": r"\d+", "name": "unknown"}, "no row matches"),
        ({"pattern": r"\d+", "name": "Bad Name"}, "String should match pattern"),
        ({"pattern": r"\d+", "colour": "red"}, "colour"),
        ({"pattern": rf"(?P<{'p' * 130}>\d+)", "keep": ["p" * 130]}, "longer than the wire allows"),
    ],
    ids=["bad-regex", "keep-missing-group", "kept-and-hashed", "guard-not-personal", "reserved-name",
         "bad-name", "unknown-key", "part-name-too-long"],
)
def test_a_bad_table_row_is_refused_naming_the_problem(row, message):
    with pytest.raises(ValidationError, match=message):
        CodeKind.model_validate({"name": "booking", **row})


def test_the_shipped_table_loads_and_every_personal_kind_is_redacted_whole():
    kinds = {kind.name: kind for kind in shipped_kinds()}
    assert {"citizen-id", "citizen-id-number", "dossier-receipt", "ihanoi-booking"} <= set(kinds)
    assert kinds["citizen-id"].personal and "name" not in kinds["citizen-id"].keep


@pytest.mark.parametrize(
    "code, symbology, rest",
    [
        ("]Q1IHN-20241125-000731", "qr", "IHN-20241125-000731"),
        ("]C1010893504950001", "gs1-128", "010893504950001"),
        ("]C0ABC", "code128", "ABC"),
        ("]E08935049500018", "ean-upc", "8935049500018"),
        ("]X0abc", "aim-X", "abc"),
        ("IHN-20241125-000731", None, "IHN-20241125-000731"),
        ("]", None, "]"),
    ],
)
def test_aim_prefixes_name_the_symbology_and_are_taken_off(code, symbology, rest):
    assert split_symbology(code) == (symbology, rest)
