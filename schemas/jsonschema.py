"""Generate the published JSON Schema files from the msgspec structs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import orjson

from schemas.events import CONTROL_TYPES, Touchpoint

HERE = Path(__file__).parent
INPUT_SCHEMA_FILE = HERE / "input-event.v1.schema.json"


def input_event_schema() -> dict[str, Any]:
    structs = (Touchpoint, *CONTROL_TYPES.values())
    refs, definitions = msgspec.json.schema_components(structs, ref_template="#/$defs/{name}")
    schema: dict[str, Any] = {"oneOf": list(refs), "$defs": definitions}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "SPOC Ledger input event, schema_version 1"
    schema["description"] = (
        "One JSON object per Kafka message or JSONL line. `type` defaults to `touchpoint`; "
        "unknown top-level fields are ignored. See SPEC.md section 1."
    )
    return schema


def render(schema: dict[str, Any]) -> bytes:
    return orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def write_all() -> list[Path]:
    INPUT_SCHEMA_FILE.write_bytes(render(input_event_schema()))
    return [INPUT_SCHEMA_FILE]
