"""Structured logs: one JSON object per line on stderr (python-json-logger)."""

from __future__ import annotations

from typing import Any

JSON_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def json_logging_config(level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` that sends every record to stderr as JSON."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": JSON_FORMAT,
                "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            },
        },
        "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "json"}},
        "root": {"level": level, "handlers": ["stderr"]},
        # The framework's per-message chatter is noise at INFO.
        "loggers": {"aiokafka": {"level": "WARNING"}, "faust.transport.drivers.aiokafka": {"level": "WARNING"}},
    }
