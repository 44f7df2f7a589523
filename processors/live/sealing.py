"""Sealing the facts the worker ships to the sink: each customer's part with the customer's key.

``spoc.facts`` is kept for ever (a sink away for long resumes from it), so an erasure
cannot wait for its retention: each customer's rows travel sealed with a key from the
ledger store (``ledger/keys.py``), and the erasure deletes the key.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

import msgspec

from ledger.keys import CustomerKey, choose_keys, seal
from ledger.records import Erasure
from ledger.store import LedgerStore
from processors.kafka.routing import routing
from projections.duckdb_store import ERASED
from schemas.facts import InputFactsV1, RejectedFactV1, SealedFactsV1

_encode = msgspec.json.Encoder().encode


def customer_named(raw: bytes) -> str | None:
    """The customer a rejected line is about: the one ``spoc publish`` keys it by (its ``customer_id``,
    also in a line cut short), whose partition and erasure it follows."""
    key, _ = routing(raw)
    return key.decode() if key else None


def split_by_customer(facts: InputFactsV1) -> tuple[InputFactsV1, dict[str, InputFactsV1]]:
    """The facts no customer's (to travel as they are), and each customer's part (to be sealed)."""
    plain = InputFactsV1(at=facts.at, erasure=facts.erasure)
    parts: defaultdict[str, InputFactsV1] = defaultdict(InputFactsV1)
    if facts.touch is not None:
        parts[facts.touch.customer_id].touch = facts.touch
    if facts.handoff is not None:
        parts[facts.handoff.customer_id].handoff = facts.handoff
    if facts.repeat is not None:
        parts[facts.repeat.customer_id].repeat = facts.repeat
    if facts.control is not None:
        if facts.control.customer_id is None:
            plain.control = facts.control
        else:
            parts[facts.control.customer_id].control = facts.control
    for ledger in facts.ledger:
        parts[ledger.customer_id].ledger.append(ledger)
    for follow_up in facts.follow_ups:
        parts[follow_up.customer_id].follow_ups.append(follow_up)
    rejected = facts.rejected
    if rejected is not None:
        customer = customer_named(rejected.raw)
        if customer is None:
            plain.rejected = rejected
        else:
            parts[customer].rejected = rejected
            plain.rejected = blanked(rejected, customer)
    return plain, dict(parts)


def blanked(rejected: RejectedFactV1, customer_id: str) -> RejectedFactV1:
    """A rejected line's row as an erasure of its customer leaves it (``AnalyticsStore.blank_rejected``)."""
    return msgspec.structs.replace(rejected, raw=ERASED.encode(), detail=rejected.detail.replace(customer_id, ERASED))


Split = list[tuple[int, InputFactsV1, dict[str, InputFactsV1]]]
"""Input messages' facts (offset, the part no customer's, each customer's part), in offset order."""


def split_facts(facts: list[tuple[int, InputFactsV1]]) -> Split:
    return [(offset, *split_by_customer(message_facts)) for offset, message_facts in facts]


def sealed_facts(split: Split, key_of: Callable[[str, int], CustomerKey]) -> list[tuple[int, bytes]]:
    """Each input message's facts as JSON, every customer's part sealed with ``key_of(customer, offset)``."""
    out: list[tuple[int, bytes]] = []
    for offset, plain, parts in split:
        sealed = []
        for customer, part in parts.items():
            key = key_of(customer, offset)
            sealed.append(SealedFactsV1(key.key_id, seal(key, _encode(part))))
        out.append((offset, _encode(msgspec.structs.replace(plain, sealed=sealed))))
    return out


def seal_stretch(
    ledger: LedgerStore, source: str, recorded: int | None, split: Split, erasures: Sequence[Erasure]
) -> list[tuple[int, bytes]]:
    """A stretch's facts, each customer's part sealed with a key of theirs (new keys stored first, durably,
    so nothing is published that no key opens); ``erasures``: the stretch's, which the store applies next."""
    needs = [(customer, offset) for offset, _, parts in split for customer in parts]
    choice = choose_keys(
        source, needs, [(e.customer_id, e.position.offset) for e in erasures],
        ledger.customer_keys(customer for customer, _ in needs), recorded,
    )
    ledger.add_customer_keys(choice.new)
    return sealed_facts(split, lambda customer, offset: choice.keys[customer, offset])
