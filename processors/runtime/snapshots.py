"""The core's working state as bytes: pickled, gzip-compressed, checked by SHA-256 and by the code it came from.

Used by the replay's history (``processors/batch/history.py``) and the worker's checkpoints
(``processors/live/checkpoints.py``).  A snapshot is trusted as the store it is kept in is
(the analytics file's folder, the ledger store): its checksum catches damage, not malice.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import pickle
from collections.abc import MutableMapping
from functools import cache
from itertools import islice
from pathlib import Path
from typing import IO, Any

from processors.runtime.state_store import SpillingMapping

SNAPSHOT_FORMAT = 2
CODE_PACKAGES = ("ledger", "schemas")
"""What a snapshot's meaning depends on: the core's classes and the input's structs."""


@cache
def code_fingerprint() -> str:
    """The snapshot format and the source of :data:`CODE_PACKAGES`: any change makes old snapshots foreign."""
    digest = hashlib.sha256(f"snapshot format {SNAPSHOT_FORMAT}".encode())
    for package in CODE_PACKAGES:
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.origin is not None, package
        for path in sorted(Path(spec.origin).parent.glob("*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


CUSTOMERS, IDS = "customers", "ids"
"""The tags of a snapshot's parts after the state's own pickle."""
CUSTOMERS_PER_PART = 256
"""Small enough that a part of customers with long histories does not break a cache budget on restore."""


def dump(state: Any, out: IO[bytes]) -> None:
    """Write ``state`` (an object whose ``intake`` holds a ledger core) to ``out`` as a snapshot.

    The core's customers go in parts of :data:`CUSTOMERS_PER_PART`, each pickled with a fresh memo:
    one pickle of the whole state kept an entry for each of its millions of objects (~700 MiB more
    at the peak of a 1M-event replay), and a part is unpickled whole on restore.  A customer's
    objects refer to nothing outside it (the core's indexes name customers by id), so nothing
    shared is split.  The duplicate index's folded ids follow in chunks.  Streamed: the bytes go
    out as made, and what waits on disk is read from there, not brought into memory.
    """
    core, dedup = state.intake.core, state.intake.dedup
    customers = core.customers
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1, mtime=0) as packed:
        core.customers, folded = {}, dedup.swap_folded()
        try:
            pickle.dump(state, packed, protocol=pickle.HIGHEST_PROTOCOL)
        finally:
            core.customers = customers
            dedup.swap_folded(folded)
        items = customers.stored_items() if isinstance(customers, SpillingMapping) else iter(customers.items())
        while part := list(islice(items, CUSTOMERS_PER_PART)):  # one pickle each: its own memo
            pickle.dump((CUSTOMERS, part), packed, protocol=pickle.HIGHEST_PROTOCOL)
        for keys, digests in folded.chunks():
            pickle.dump((IDS, keys, digests), packed, protocol=pickle.HIGHEST_PROTOCOL)


def pack(state: Any) -> bytes:
    """``state`` as snapshot bytes (see :func:`dump`)."""
    buffer = io.BytesIO()
    dump(state, buffer)
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def unpack(
    data: bytes, expected_sha256: str, customers: MutableMapping[str, Any] | None = None, folded: Any = None,
) -> Any | None:
    """The state in snapshot bytes, or None when they are not what was written (damaged, half-written).

    Its customers go into ``customers`` and its duplicate index's ids into ``folded`` (either may
    keep them on disk), or in memory.
    """
    if sha256(data) != expected_sha256:
        return None
    stream = gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb")
    state = pickle.load(stream)
    core, dedup = state.intake.core, state.intake.dedup
    if customers is not None:
        core.customers = customers
    if folded is not None:
        dedup.swap_folded(folded)
    while True:
        try:
            part = pickle.load(stream)
        except EOFError:
            return state
        if part[0] == CUSTOMERS:
            core.customers.update(part[1])
        else:
            dedup.folded.add(part[1], part[2])
