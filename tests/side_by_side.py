"""Feed one history to the ledger core and to the plain reading of the SPEC (tests/spec_model.py), event by event."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from ledger.core import LedgerCore
from ledger.records import Position
from schemas import InputEvent, Rejection, decode
from tests.spec_model import SpecModel


def side_by_side(
    events: list[dict[str, Any]], core: LedgerCore, model: SpecModel,
) -> Iterator[tuple[int, dict[str, Any], InputEvent]]:
    """After each event both have processed, yield its position, body and decoded event; stop early when a
    decision turned on a near-tie of floating-point sums (``model.ambiguous``: nothing can be compared)."""
    for seq, body in enumerate(events):
        event = decode(orjson.dumps(body))
        assert not isinstance(event, Rejection), event
        core.process(event, Position("stream", seq, seq))
        model.process(event)
        if model.ambiguous:
            return
        yield seq, body, event
