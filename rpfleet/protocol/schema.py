"""JSON Schemas of every message, generated from the models (never written by hand)."""

from __future__ import annotations

import json
from pathlib import Path

from rpfleet.protocol.messages import MODEL_BY_CHANNEL


def schema_files() -> dict[str, str]:
    """File name -> JSON text, one per message model."""
    files = {}
    for channel, model in MODEL_BY_CHANNEL.items():
        schema = model.model_json_schema(mode="validation")
        # Python code may leave "v" to its default; on the wire it is required.
        schema["required"] = ["v", *[f for f in schema.get("required", []) if f != "v"]]
        schema["$id"] = f"https://rpfleet.invalid/schemas/v1/{model.__name__}.json"
        schema["description"] = (
            f"{(model.__doc__ or '').strip()} Topic: rp/v1/nodes/{{node}}/{channel.value}."
        ).strip()
        files[f"{model.__name__}.json"] = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
    return files


def export(directory: Path) -> list[Path]:
    """Write every schema into ``directory`` and delete stale ``*.json`` there."""
    directory.mkdir(parents=True, exist_ok=True)
    files = schema_files()
    for stale in directory.glob("*.json"):
        if stale.name not in files:
            stale.unlink()
    written = []
    for name, text in files.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
