"""Decode and validate one raw input message into a typed event or a rejection.

Validation is a single msgspec decode for the common case (a touchpoint); only
messages that fail it, or control events, take a second, slower look.  Every
rejection names the reason (a stable code) and the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec
from xxhash import xxh3_64_intdigest

from schemas.events import (
    CONTROL_TYPES,
    EVENT_TYPES,
    OUT_OF_RANGE,
    ControlEvent,
    InputEvent,
    Touchpoint,
)

MAX_MESSAGE_BYTES = 1024 * 1024
MAX_ATTRIBUTES_DEPTH = 64
"""Deeper ``attributes`` could not be written back: orjson writes at most 254 levels."""

# Stable rejection reason codes (SPEC §1 "Bad input").
TOO_LARGE = "too_large"
INVALID_JSON = "invalid_json"
NOT_AN_OBJECT = "not_an_object"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
INVALID_VALUE = "invalid_value"
UNKNOWN_ENUM_VALUE = "unknown_enum_value"
UNKNOWN_TYPE = "unknown_type"
NAIVE_TIMESTAMP = "naive_timestamp"
INVALID_TIMESTAMP = "invalid_timestamp"
UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"
EVENT_ID_CONFLICT = "event_id_conflict"
WRONG_KEY = "wrong_key"
"""A Kafka message keyed by something other than its ``customer_id`` (SPEC §2: keyed by customer)."""

REASONS = (
    TOO_LARGE, INVALID_JSON, NOT_AN_OBJECT, MISSING_FIELD, WRONG_TYPE, INVALID_VALUE,
    UNKNOWN_ENUM_VALUE, UNKNOWN_TYPE, NAIVE_TIMESTAMP, INVALID_TIMESTAMP,
    UNKNOWN_SCHEMA_VERSION, EVENT_ID_CONFLICT, WRONG_KEY,
)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message was not accepted. ``field`` is the JSON path inside the message, if any."""

    reason: str
    detail: str
    field: str | None = None


_touchpoint_decoder = msgspec.json.Decoder(Touchpoint)
_control_decoder = msgspec.json.Decoder(ControlEvent)


class _Kind(msgspec.Struct):
    """Only an event's ``type``, whatever its JSON value: which decoder applies, or why none does."""

    type: Any = "touchpoint"


_kind_decoder = msgspec.json.Decoder(_Kind)
_syntax_decoder = msgspec.json.Decoder(msgspec.Raw)  # checks JSON syntax only, numbers of any size included
_encoder = msgspec.json.Encoder()
_HALF_RANGE = 1 << 63
_AT_PATH = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`")


def decode(raw: bytes) -> InputEvent | Rejection:
    """Decode one message. Never raises for bad input: returns a :class:`Rejection`.

    A message in the Confluent wire format (a Schema Registry serializer's: magic byte 0, a
    4-byte schema id, then the JSON) is read from its JSON and validated against this schema,
    whichever registered schema the id names. JSON text never starts with a zero byte, so the
    two are told apart by the first byte alone.
    """
    if len(raw) > MAX_MESSAGE_BYTES:
        return Rejection(TOO_LARGE, f"message is {len(raw)} bytes; the limit is {MAX_MESSAGE_BYTES}")
    if raw[:1] == b"\x00":
        if len(raw) <= 5:
            return Rejection(INVALID_JSON, "a Confluent wire-format header (zero byte, 4-byte schema id) with nothing after it")
        raw = raw[5:]
    try:
        try:
            touchpoint = _touchpoint_decoder.decode(raw)
        except msgspec.ValidationError as error:
            return _decode_other(raw, error)
        if touchpoint.attributes is not None and _nests_deeper(touchpoint.attributes, MAX_ATTRIBUTES_DEPTH):
            return Rejection(
                INVALID_VALUE,
                f"attributes nest more than {MAX_ATTRIBUTES_DEPTH} levels of objects and arrays; flatten them",
                "attributes",
            )
        return touchpoint
    except msgspec.DecodeError as error:
        return Rejection(INVALID_JSON, f"not valid JSON: {error}")
    except UnicodeDecodeError as error:  # msgspec checks some strings (enum values) only when it reads them
        return Rejection(INVALID_JSON, f"not valid UTF-8 ({error}); JSON text must be encoded in UTF-8")
    except RecursionError:  # msgspec's decoders recurse; a hostile message may nest thousands deep
        return Rejection(INVALID_JSON, "JSON nested too deeply to read; input events are flat objects")


_JSON_KINDS = {
    dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean",
    type(None): "null",
}
"""What a decoded JSON value is, in JSON's words."""
_TOP_LEVEL_KINDS = {b"[": "an array", b'"': "a string", b"t": "a boolean", b"f": "a boolean", b"n": "null"}
"""The same, by a JSON text's first byte (anything else is a number)."""


def _shown(value: Any) -> str:
    """A decoded value as JSON if it is a scalar, else its kind: a container may nest too deep to write back."""
    return f"({_JSON_KINDS[type(value)]})" if isinstance(value, (dict, list)) else _encoder.encode(value).decode()


def _nests_deeper(value: Any, limit: int) -> bool:
    """Whether objects and arrays nest more than ``limit`` levels in ``value``, walked level by level."""
    level = [value]
    for _ in range(limit):
        level = [child for v in level if isinstance(v, (dict, list)) for child in (v.values() if isinstance(v, dict) else v)]
        if not level:
            return False
    return any(isinstance(v, (dict, list)) for v in level)


def _decode_other(raw: bytes, touchpoint_error: msgspec.ValidationError) -> InputEvent | Rejection:
    """Slow path: a control event, or a touchpoint with an error to explain."""
    try:
        event_type = _kind_decoder.decode(raw).type  # a DecodeError is invalid JSON, for decode() to report
    except msgspec.ValidationError as error:  # not an object, or a `type` number beyond a double's range
        top = bytes(_syntax_decoder.decode(raw)).lstrip()  # invalid JSON after all: a DecodeError again
        if not top.startswith(b"{"):
            return Rejection(NOT_AN_OBJECT, f"expected a JSON object, got {_TOP_LEVEL_KINDS.get(top[:1], 'a number')}")
        return Rejection(UNKNOWN_TYPE, f"unknown event type: {error}; expected one of {', '.join(EVENT_TYPES)}", "type")
    if event_type == "touchpoint":
        return _explain(touchpoint_error)
    if not isinstance(event_type, str) or event_type not in CONTROL_TYPES:
        return Rejection(
            UNKNOWN_TYPE,
            f"unknown event type {_shown(event_type)}; expected one of {', '.join(EVENT_TYPES)}",
            "type",
        )
    try:
        return _control_decoder.decode(raw)
    except msgspec.ValidationError as error:
        return _explain(error)


def _explain(error: msgspec.ValidationError) -> Rejection:
    message = str(error)
    missing = _MISSING.match(message)
    if missing:
        field = missing["field"]
        return Rejection(MISSING_FIELD, f"required field `{field}` is missing", field)
    at = _AT_PATH.search(message)
    field = at["path"] if at else None
    if field == "schema_version" and message.startswith("Invalid enum value"):
        return Rejection(UNKNOWN_SCHEMA_VERSION, f"{message}; this reader knows schema_version 1", field)
    if "with a timezone component" in message:
        return Rejection(NAIVE_TIMESTAMP, f"{message}; add an offset such as Z or +02:00", field)
    if OUT_OF_RANGE in message:  # check_instant's message names the field: "`until` 9999-... is outside ..."
        detail = message.split(" - at `")[0]
        return Rejection(INVALID_TIMESTAMP, detail, detail.split("`")[1])
    if "RFC3339" in message:
        return Rejection(INVALID_TIMESTAMP, message, field)
    if message.startswith("Invalid enum value"):
        return Rejection(UNKNOWN_ENUM_VALUE, message, field)
    if ", got `" in message:
        return Rejection(WRONG_TYPE, message, field)
    return Rejection(INVALID_VALUE, message, field)


def digest64(data: bytes) -> int:
    """A 64-bit digest (xxh3, as a signed integer) that is the same in every process: it is kept in
    the replay state and the worker's checkpoints, where Python's seeded ``hash`` would not do."""
    return xxh3_64_intdigest(data) - _HALF_RANGE


def content_digest(event: InputEvent) -> int:
    """A 64-bit digest of an event's content, for telling duplicates from conflicts.

    Computed on the decoded event, so key order, white space and ignored unknown
    fields do not make two deliveries of the same event look different.
    """
    return digest64(_encoder.encode(event))
