"""The OpenAPI document committed as docs/openapi.json is the one the code generates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fleet_server.api.openapi import document
from tests.fleet_server.api.test_endpoints import ANNOUNCE_ROUTES, OTHER_ROUTES, ROUTES, WRITES

REPO = Path(__file__).resolve().parents[3]
COMMITTED = REPO / "docs" / "openapi.json"
REGENERATE = "run `rpfleet server openapi docs/openapi.json` and commit the result"


def test_the_committed_document_is_what_the_code_generates() -> None:
    assert COMMITTED.is_file(), f"docs/openapi.json is missing; {REGENERATE}"
    assert COMMITTED.read_text(encoding="utf-8") == document(), (
        f"docs/openapi.json differs from the HTTP API in the code; {REGENERATE}"
    )


def test_the_document_is_stable() -> None:
    assert document() == document()


def test_every_operation_requires_the_api_token_and_documents_401() -> None:
    spec = json.loads(document())

    assert spec["components"]["securitySchemes"]["ApiToken"] == {
        "type": "http", "scheme": "bearer",
        "description": "An API token made with `rpfleet server token create --name NAME`.",
    }
    operations = [(path, op) for path, ops in spec["paths"].items() for op in ops.values()]
    assert len(operations) == (len(ROUTES) + len(ANNOUNCE_ROUTES)
                               + sum(len(methods) for methods in OTHER_ROUTES.values())
                               + sum(len(methods) - 1 for methods in WRITES.values()))
    for path, op in operations:
        assert op["security"] == [{"ApiToken": []}], path
        assert {"401", "403"} <= set(op["responses"]), path


def test_the_command_writes_the_document(tmp_path: Path) -> None:
    out = tmp_path / "docs" / "openapi.json"

    done = subprocess.run(
        [sys.executable, "-m", "rpfleet", "server", "openapi", str(out)],
        capture_output=True, text=True, timeout=60, check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    assert out.read_text(encoding="utf-8") == document()
