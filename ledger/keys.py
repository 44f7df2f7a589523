"""Customers' keys: what seals the personal facts the project writes to its own topics.

Crypto-shredding: the worker seals each customer's facts with a key of that customer
kept in the ledger store, and an erasure deletes the key, so whatever the topics still
hold of the customer can no longer be read by anyone, the DuckDB sink included.

A key belongs to one customer from an input position on (``from_offset`` of ``source``):
an erasure deletes the customer's keys up to its position, and facts after it (the
customer came back) get a new key.  Which key seals which fact is decided here, without
I/O, so the rule can be read and tested on its own (:func:`choose_keys`).
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


@dataclass(frozen=True, slots=True)
class CustomerKey:
    key_id: str
    customer_id: str
    key: bytes
    source: str
    from_offset: int
    """The first input position (of ``source``) whose facts it seals."""


def new_key(customer_id: str, source: str, from_offset: int) -> CustomerKey:
    return CustomerKey(secrets.token_hex(16), customer_id, AESGCM.generate_key(bit_length=256), source, from_offset)


def seal(key: CustomerKey, plaintext: bytes) -> bytes:
    """AES-256-GCM with a random nonce (in front); the key id is authenticated with it."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(key.key).encrypt(nonce, plaintext, key.key_id.encode())


def unseal(key_id: str, key: bytes, box: bytes) -> bytes:
    """The plaintext of a :func:`seal`'d box; ``ValueError`` when the box was not sealed with this key."""
    try:
        return AESGCM(key).decrypt(box[:NONCE_BYTES], box[NONCE_BYTES:], key_id.encode())
    except InvalidTag:
        raise ValueError(f"a box under key {key_id} does not open with it (corrupt, or another store's key)") from None


@dataclass
class KeyChoice:
    """The key for each (customer, offset) that needs one, and the keys to store before any is used."""

    keys: dict[tuple[str, int], CustomerKey]
    new: list[CustomerKey]


def choose_keys(
    source: str,
    needs: Iterable[tuple[str, int]],
    erasures: Iterable[tuple[str, int]],
    stored: Iterable[CustomerKey],
    recorded: int | None,
) -> KeyChoice:
    """The key that seals each customer's facts at each offset of one stretch of ``source``.

    ``needs``: (customer, offset) of the facts to seal; ``erasures``: the stretch's (customer,
    offset) erasures, which the ledger store applies after the facts are sealed (deleting the
    customer's keys up to them); ``stored``: the customers' keys in the store now; ``recorded``:
    the store's position of ``source`` before the stretch.

    A fact takes the customer's newest key from after the last erasure before it.  Without
    one, it gets a new key, except when the fact is made again for a stretch already stored
    (a rebuild after a crash) or precedes a key already made (the customer was erased and came
    back): then a key is gone that sealed it the first time, an erasure removed it, and the
    fact is sealed with a key that is never stored, unreadable as the first copy is.
    """
    erased_at: defaultdict[str, list[int]] = defaultdict(list)
    for customer, offset in erasures:
        erased_at[customer].append(offset)
    known: defaultdict[str, list[CustomerKey]] = defaultdict(list)
    for key in stored:
        if key.source == source:
            known[key.customer_id].append(key)
    choice = KeyChoice({}, [])
    for customer, offset in sorted(set(needs), key=lambda need: need[1]):
        floor = max((e for e in erased_at.get(customer, ()) if e < offset), default=-1)
        keys = known[customer]
        usable = [k for k in keys if floor < k.from_offset <= offset]
        if usable:
            choice.keys[customer, offset] = max(usable, key=lambda k: k.from_offset)
        elif (recorded is not None and offset <= recorded) or any(k.from_offset > offset for k in keys):
            choice.keys[customer, offset] = new_key(customer, source, offset)  # never stored
        else:
            key = new_key(customer, source, offset)
            keys.append(key)
            choice.new.append(key)
            choice.keys[customer, offset] = key
    return choice
