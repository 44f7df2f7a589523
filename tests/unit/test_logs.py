"""The JSON log lines: one object per record, its time in RFC 3339 UTC whatever the host's zone."""

from __future__ import annotations

import logging
import time
from datetime import datetime

import orjson
import pytest
from pythonjsonlogger.json import JsonFormatter

from processors.runtime.logs import json_logging_config


def test_a_record_is_one_json_object_with_an_rfc3339_utc_time(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = json_logging_config()["formatters"]["json"]
    assert spec["()"] == "pythonjsonlogger.json.JsonFormatter"
    formatter = JsonFormatter(**{k: v for k, v in spec.items() if k != "()"})
    record = logging.LogRecord("spoc.test", logging.WARNING, __file__, 1, "partition %d restored", (3,), None)
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        line = formatter.format(record)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert "\n" not in line
    fields = orjson.loads(line)
    assert (fields["level"], fields["logger"], fields["message"]) == ("WARNING", "spoc.test", "partition 3 restored")
    assert fields["time"].endswith("+00:00") and fields["time"][10] == "T"
    assert datetime.fromisoformat(fields["time"]).timestamp() == pytest.approx(record.created, abs=0.001)
