"""The OpenAPI document of the HTTP API, as committed under docs/openapi.json.

Generated from the code (`create_app`), never written by hand; a test fails
when the committed file differs from what the code generates.
"""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

COMMITTED = Path("docs") / "openapi.json"
"""Where the document lives, relative to the repository root."""


def document() -> str:
    """The OpenAPI document as JSON text (stable: same code, same bytes)."""
    from fleet_server.api.app import create_app

    # The app only keeps the engine; describing the routes never connects.
    app = create_app(sa.create_engine("sqlite://"))
    return json.dumps(app.openapi(), indent=2, ensure_ascii=False) + "\n"


def write(path: Path) -> Path:
    """Write the document to ``path`` (its folders made as needed) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document(), encoding="utf-8")
    return path
