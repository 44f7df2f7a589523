"""Structured logs: one JSON object per line on stderr (python-json-logger)."""

from __future__ import annotations

from typing import Any

JSON_FORMAT = "%(levelname)s %(name)s %(message)s"


def json_logging_config(level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` that sends every record to stderr as JSON."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": JSON_FORMAT,
                # RFC 3339 in UTC ("2026-12-05T06:40:56.659000+00:00"), whatever the host's time zone.
                "timestamp": "time",
                "rename_fields": {"levelname": "level", "name": "logger"},
            },
        },
        # aiokafka's error for every attempt to reach a lost broker becomes a few lines (kafka_outage).
        "filters": {"kafka_outage": {"()": "processors.kafka.outage.reachability_filter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "json",
                "filters": ["kafka_outage"],
            },
        },
        "root": {"level": level, "handlers": ["stderr"]},
        # The framework's per-message chatter is noise at INFO.
        "loggers": {"aiokafka": {"level": "WARNING"}, "faust.transport.drivers.aiokafka": {"level": "WARNING"}},
    }
