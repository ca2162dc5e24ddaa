"""The OpenAPI document committed as docs/device-bridge.openapi.json is the one the code
generates, and it describes every route the bridge serves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from starlette.routing import Route

from agent.bridge.app import BridgeApp
from agent.bridge.guard import Guard
from agent.bridge.openapi import document

REPO = Path(__file__).resolve().parents[3]
COMMITTED = REPO / "docs" / "device-bridge.openapi.json"
REGENERATE = ("run `python -m agent.bridge.openapi docs/device-bridge.openapi.json` and commit "
              "the result")


def test_the_committed_document_is_what_the_code_generates():
    assert COMMITTED.is_file(), f"docs/device-bridge.openapi.json is missing; {REGENERATE}"
    assert COMMITTED.read_text(encoding="utf-8") == document(), (
        f"docs/device-bridge.openapi.json differs from the bridge in the code; {REGENERATE}")


def test_every_route_the_app_serves_is_documented_with_its_refusals():
    guard = Guard(hosts=frozenset(), allowed_origins=frozenset(), own_origins=frozenset(),
                  token="t")
    app = BridgeApp([], list, sockets=None).asgi(guard, sample_page=False).app
    served = {(method.lower(), route.path) for route in app.routes if isinstance(route, Route)
              for method in route.methods if method != "HEAD"}
    spec = json.loads(document())
    documented = {(method, path) for path, ops in spec["paths"].items() for method in ops}

    assert served | {("get", "/v1/events")} == documented
    for path, ops in spec["paths"].items():
        for op in ops.values():
            assert "403" in op["responses"], path
            if path != "/v1/events":
                assert op["security"] == [{"BridgeToken": []}], path
                assert "401" in op["responses"], path


def test_the_module_writes_the_document(tmp_path):
    out = tmp_path / "docs" / "device-bridge.openapi.json"

    done = subprocess.run([sys.executable, "-m", "agent.bridge.openapi", str(out)],
                          capture_output=True, text=True, timeout=60, check=False, cwd=REPO)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    assert out.read_text(encoding="utf-8") == document()
