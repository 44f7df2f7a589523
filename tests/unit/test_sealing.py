"""Which customer's key seals a rejected line (processors/live/sealing.py): the one the line names in
``customer_id``, as the sink's erasure reads it, also when the line does not parse."""

from __future__ import annotations

import pytest

from processors.live.sealing import customer_named


@pytest.mark.parametrize(("raw", "customer"), [
    (b'{"customer_id": "c1", "channel": "pigeon"}', "c1"),
    (b'{"event_id": "e1", "customer_id" : "c\\u002d1", "x"', "c-1"),  # not JSON; the id written with an escape
    (b'{"event_id": "e1", "customer_id": "c1', "c1"),  # cut short right after the id
    (b'{"customer_id": "c1\\', None),  # cut inside an escape: no id to be sure of
    (b'{"customer_id": 5}', None),
    (b'{"customer_id": ""}', None),
    (b'["customer_id", "c1"]', None),
    (b"\xff\xfe not text", None),
])
def test_the_customer_a_rejected_line_names(raw: bytes, customer: str | None) -> None:
    assert customer_named(raw) == customer
