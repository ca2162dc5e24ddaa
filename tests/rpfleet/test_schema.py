"""JSON Schemas of the wire contract: generated from the models, committed in docs/schemas."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rpfleet.protocol.messages import MODEL_BY_CHANNEL
from rpfleet.protocol.schema import export, schema_files

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "docs" / "schemas"
REGENERATE = "run `rpfleet schema export docs/schemas` and commit the result"

SCHEMAS = schema_files()
MODEL_NAMES = [model.__name__ for model in MODEL_BY_CHANNEL.values()]


def test_committed_schemas_are_the_same_files() -> None:
    committed = {path.name for path in COMMITTED.glob("*.json")}
    generated = set(SCHEMAS)

    assert committed == generated, (
        f"docs/schemas is out of date (missing: {sorted(generated - committed)}, "
        f"stale: {sorted(committed - generated)}); {REGENERATE}"
    )


def test_committed_schemas_have_the_same_content() -> None:
    differ = sorted(
        name
        for name, text in SCHEMAS.items()
        if not (COMMITTED / name).is_file()
        or (COMMITTED / name).read_text(encoding="utf-8") != text
    )

    assert not differ, f"docs/schemas differs from the models in {differ}; {REGENERATE}"


def test_one_schema_per_model() -> None:
    assert sorted(SCHEMAS) == sorted(f"{name}.json" for name in MODEL_NAMES)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_schema_is_json_with_id_and_title(name: str) -> None:
    schema = json.loads(SCHEMAS[f"{name}.json"])

    assert schema["$id"] == f"https://rpfleet.invalid/schemas/v1/{name}.json"
    assert schema["title"] == name
    assert schema["type"] == "object"
    assert "v" in schema["properties"]
    assert "v" in schema["required"], "the wire requires the version even if Python defaults it"


@pytest.mark.parametrize(
    "channel", list(MODEL_BY_CHANNEL), ids=[c.name for c in MODEL_BY_CHANNEL]
)
def test_schema_description_names_the_topic(channel) -> None:
    schema = json.loads(SCHEMAS[f"{MODEL_BY_CHANNEL[channel].__name__}.json"])

    assert schema["description"].endswith(f"Topic: rp/v1/nodes/{{node}}/{channel.value}.")


def test_schema_ids_are_unique() -> None:
    ids = [json.loads(text)["$id"] for text in SCHEMAS.values()]

    assert len(set(ids)) == len(ids)


def test_export_cli_writes_one_file_per_model_and_removes_stale(tmp_path: Path) -> None:
    out = tmp_path / "schemas"
    out.mkdir()
    (out / "Retired.json").write_text("{}", encoding="utf-8")
    (out / "Status.json").write_text('{"outdated": true}', encoding="utf-8")
    (out / "README.md").write_text("not a schema", encoding="utf-8")

    done = subprocess.run(
        [sys.executable, "-m", "rpfleet", "schema", "export", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert {path.name for path in out.glob("*.json")} == set(SCHEMAS)
    assert not (out / "Retired.json").exists()
    assert (out / "README.md").read_text(encoding="utf-8") == "not a schema"
    for name, text in SCHEMAS.items():
        assert (out / name).read_text(encoding="utf-8") == text, name
    assert sorted(Path(line).name for line in done.stdout.splitlines()) == sorted(SCHEMAS)


def test_export_creates_a_missing_directory(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"

    written = export(out)

    assert sorted(path.name for path in written) == sorted(SCHEMAS)
    assert all(path.parent == out for path in written)
