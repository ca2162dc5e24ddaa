"""The device bridge's OpenAPI document, committed as docs/device-bridge.openapi.json.

Generated from `app.OPERATIONS` and the models, never written by hand; a test fails when the
committed file differs. Regenerate with ``python -m agent.bridge.openapi
docs/device-bridge.openapi.json``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from agent.bridge.app import OPERATIONS, Operation
from agent.bridge.models import FALLBACK_VI, WEBSOCKET_MESSAGES, BridgeError, PrintResult
from agent.bridge.settings import DEFAULT_PORT

COMMITTED = Path("docs") / "device-bridge.openapi.json"
"""Where the document lives, relative to the repository root."""

REFUSALS = {
    401: "No token, or not this boot's (`token-missing`, `token-invalid`).",
    403: "Not from this node, not addressed to this bridge, or from a page origin that is not "
         "allowed (`peer-not-loopback`, `host-not-allowed`, `origin-missing`, "
         "`origin-not-allowed`).",
}

DESCRIPTION = f"""\
A loopback-only HTTP and WebSocket API on each kiosk node: the kiosk's page prints queue \
tickets, receives scans, asks for announcements and reads the peripherals' status \
(docs/device-bridge.md).

Every call must come from this node (127.0.0.1 / ::1), name the bridge in its Host header, \
come from an allow-listed page origin (`Origin`), and carry this boot's token \
(`Authorization: Bearer`), which the kiosk browser injects into the page as \
`window.rpfleet.token`. The WebSocket takes the token in its first message. Refusals are JSON \
`BridgeError`s. When a ticket does not print, show the citizen `fallback` ("{FALLBACK_VI}")."""


def _schemas() -> tuple[dict, dict[type[BaseModel], dict]]:
    models: list[type[BaseModel]] = [BridgeError, *WEBSOCKET_MESSAGES]
    for op in OPERATIONS:
        models.extend(m for m in (op.request, op.response) if m is not None)
    unique = list(dict.fromkeys(models))
    refs, defs = models_json_schema([(m, "validation") for m in unique],
                                    ref_template="#/components/schemas/{model}")
    return defs.get("$defs", {}), {m: refs[(m, "validation")] for m in unique}


def _content(ref: dict) -> dict:
    return {"application/json": {"schema": ref}}


def _operation(op: Operation, refs: dict[type[BaseModel], dict]) -> dict:
    responses: dict[str, dict] = {
        str(op.status): {"description": op.response.__doc__.strip().splitlines()[0]
                         if op.response.__doc__ else "OK", "content": _content(refs[op.response])},
    }
    failed = {500: "The bridge failed (`bridge-failed`, with `fallback`)."}
    for status, text in {**op.errors, **REFUSALS, **failed}.items():
        schema = refs[BridgeError]
        if status == 503 and op.response is PrintResult:
            schema = {"oneOf": [refs[PrintResult], refs[BridgeError]]}
        responses[str(status)] = {"description": text, "content": _content(schema)}
    described = {
        "operationId": op.id,
        "summary": op.summary,
        **({"description": op.description} if op.description else {}),
        "security": [{"BridgeToken": []}],
        "parameters": [{"name": "Origin", "in": "header", "required": True,
                        "description": "The calling page's origin: one of `allowed_origins`.",
                        "schema": {"type": "string"}}],
    }
    for name in re.findall(r"{(\w+)}", op.path):
        described["parameters"].append({"name": name, "in": "path", "required": True,
                                        "schema": {"type": "string"}})
    if op.request is not None:
        described["requestBody"] = {"required": True, "content": _content(refs[op.request])}
    described["responses"] = dict(sorted(responses.items()))
    return described


def _events(refs: dict[type[BaseModel], dict]) -> dict:
    return {
        "operationId": "events",
        "summary": "Scans and status changes, live (WebSocket)",
        "description": "Open a WebSocket here (the browser sends `Origin`). Send `Hello` "
        "(`{\"type\": \"hello\", \"token\": ...}`) first, within 10 s; the bridge answers "
        "`Ready` with the status now, then sends `ScanNotice` for every code a scanner of this "
        "node reads, `StatusNotice` when the status changes, and `MissedNotice` if the page "
        "fell behind. A bad hello or token gets an `ErrorNotice`, then the socket is closed "
        "(4400 bad hello, 4401 token).",
        "parameters": [{"name": "Origin", "in": "header", "required": True,
                        "schema": {"type": "string"}}],
        "responses": {
            "101": {"description": "Switching to the WebSocket protocol."},
            "403": {"description": REFUSALS[403], "content": _content(refs[BridgeError])},
        },
        "x-websocket-messages": {
            "page-to-bridge": [refs[WEBSOCKET_MESSAGES[0]]],
            "bridge-to-page": [refs[m] for m in WEBSOCKET_MESSAGES[1:]],
        },
    }


def spec() -> dict:
    """The OpenAPI document as a dict."""
    schemas, refs = _schemas()
    paths: dict[str, dict] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs)
    paths["/v1/events"] = {"get": _events(refs)}
    return {
        "openapi": "3.1.0",
        "info": {"title": "rpfleet local device bridge", "version": "1",
                 "description": DESCRIPTION},
        "servers": [{"url": f"http://127.0.0.1:{DEFAULT_PORT}",
                     "description": "the node itself (loopback only)"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {"BridgeToken": {
                "type": "http", "scheme": "bearer",
                "description": "This boot's token: random at each agent start, kept in memory "
                "only, injected by the kiosk browser into allowed pages as "
                "`window.rpfleet.token`.",
            }},
        },
    }


def document() -> str:
    """The OpenAPI document as JSON text (stable: same code, same bytes)."""
    return json.dumps(spec(), indent=2, ensure_ascii=False) + "\n"


def write(path: Path) -> Path:
    """Write the document to ``path`` (its folders made as needed) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document(), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(write(Path(sys.argv[1]) if len(sys.argv) > 1 else COMMITTED))
