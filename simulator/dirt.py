"""What upstream systems really send: some lines broken, some delivered twice, some ids reused."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import orjson

from simulator.company import Settings


def _truncated(raw: bytes, event: dict[str, Any], rng: random.Random) -> bytes:
    return raw[: rng.randrange(1, len(raw))]


def _unknown_channel(raw: bytes, event: dict[str, Any], rng: random.Random) -> bytes:
    return orjson.dumps({**event, "channel": "carrier-pigeon"})


def _naive_timestamp(raw: bytes, event: dict[str, Any], rng: random.Random) -> bytes:
    return orjson.dumps({**event, "occurred_at": event["occurred_at"].replace(tzinfo=None)})


def _no_customer(raw: bytes, event: dict[str, Any], rng: random.Random) -> bytes:
    return orjson.dumps({k: v for k, v in event.items() if k != "customer_id"})


def _csat_as_text(raw: bytes, event: dict[str, Any], rng: random.Random) -> bytes:
    return orjson.dumps({**event, "csat": "five"})


def _reused_id(raw: bytes, event: dict[str, Any], rng: random.Random) -> bytes:
    """The same event_id with different content: a conflict, rejected."""
    return orjson.dumps({**event, "department": "legal"})


BREAKAGES = (_truncated, _unknown_channel, _naive_timestamp, _no_customer, _csat_as_text, _reused_id)


class Dirt:
    """How touchpoints arrive: a roll of ``rng`` below ``share`` makes one dirty (broken or twice)."""

    def __init__(self, settings: Settings, rng: random.Random) -> None:
        self.malformed = settings.malformed_share
        self.share = settings.malformed_share + settings.duplicate_share
        self.rng = rng

    def deliver(self, raw: bytes, event: dict[str, Any], roll: float) -> Iterator[bytes]:
        """A dirty touchpoint as delivered: broken (after the good one, for a reused id) or twice."""
        rng = self.rng
        if roll < self.malformed:
            breakage = rng.choice(BREAKAGES)
            if breakage is _reused_id:
                yield raw
            yield breakage(raw, event, rng)
            return
        yield raw
        yield raw
