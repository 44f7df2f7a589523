"""Which key `spoc publish` gives a line: its customer, also when the line does not parse."""

from __future__ import annotations

import pytest

from processors.kafka.routing import routing


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (b'{"event_id":"e1","customer_id":"cust-1","channel":"phone"}', b"cust-1"),
        (b'{"event_id":"e1","customer_id":"cust-1","chan', b"cust-1"),  # cut short after the id
        (b'{"event_id":"e1","customer_id":"cust-1', b"cust-1"),  # cut at the id's end
        (b'{"customer_id" : "cu\\u0073t-1", "x":', b"cust-1"),  # escapes decoded
        (b'{"event_id":"e1","customer_id":"cust-1\\', None),  # cut inside an escape
        (b'{"event_id":"e1","customer_id":5,', None),
        (b'{"event_id":"e1","customer_id":"",', None),
        (b'{"event_id":"e1","chan', None),
        (b"[1, 2", None),
        (b'{"type":"employee_departed","employee_id":"alice"}', None),
    ],
)
def test_a_line_is_keyed_by_the_customer_it_names(raw: bytes, key: bytes | None) -> None:
    assert routing(raw)[0] == key


def test_a_departure_and_an_absence_are_broadcasts() -> None:
    assert routing(b'{"type":"employee_departed","employee_id":"alice"}') == (None, True)
    assert routing(b'{"type":"employee_away","employee_id":"alice","until":"2025-01-02T00:00:00Z"}') == (None, True)
    assert routing(b'{"type":"employee_returned","employee_id":"alice"}') == (None, True)
