"""The core's customers beyond a memory budget, and the duplicate index's folded ids, on local disk
(SPEC §2: resident memory bounded by configuration, not by the length of history).

A :class:`SpillingMapping` is a mapping of customer id to the core's per-customer working state.
The customers used most recently stay in memory as objects; when the process's
:class:`CacheBudget` is spent, the least recently used are pickled to a RocksDB database
(``rocksdict``, as Quix Streams keeps its state) in a scratch directory and come back when an
event needs them, a late one included, so results are exactly those of an all-in-memory run.

A customer is either in memory or on disk, never both: loading one deletes its stored copy, and
evicting one writes it whole (an event that loads a customer changes it).  The database is
scratch: checkpoints and replay histories hold the state as snapshots
(``processors/runtime/snapshots.py``), and the directory is deleted when the mapping is closed.
RocksDB's write-ahead log is off for the same reason.

Memory is charged approximately: a customer costs :data:`EXPANSION` times the bytes of its
pickle when it comes from disk (its objects' size in memory), one never pickled costs
:data:`NEW_VALUE_BYTES`, and every access adds :data:`ACCESS_BYTES`, what handling one event adds
to a customer at most; an evicted customer's pickle gives its true size again.

:class:`StoredIds` keeps the duplicate index's folded event-id hashes in a second database: the
index asks it only for ids its bitmap says may have been seen.

Imports nothing of the project's other packages.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import numpy as np
from rocksdict import BlockBasedOptions, Cache, Options, Rdict, WriteBatch, WriteOptions

EXPANSION = 3
"""A customer's objects in memory take about this many times the bytes of its pickle."""
NEW_VALUE_BYTES = 2_048
"""The charge of a customer not yet pickled: a new customer has a touch or two."""
ACCESS_BYTES = 160
"""What an event adds to a customer's objects at most: a touch kept in its affinity and repeat
histories (~150 bytes measured, ``benchmarks/memory_growth.py``)."""
WRITE_BATCH_BYTES = 4 << 20
"""Evicted customers are written to the database once their pickles take this much."""
ROCKSDB_MEMORY = 8 << 20
"""Each database's write buffer and block cache, on top of the budget."""
DEFAULT_CACHE_MB = 256


class CacheBudget:
    """The bytes every spilling mapping of a process may keep in memory together (approximately).

    The worker's partitions run in threads of their own, so the count is kept under a lock.
    """

    def __init__(self, limit_mb: float = DEFAULT_CACHE_MB) -> None:
        self.limit = int(limit_mb * (1 << 20))
        self.used = 0
        self._lock = threading.Lock()

    def charge(self, size: int) -> bool:
        """Count ``size`` more bytes (negative: fewer); True while over the limit."""
        with self._lock:
            self.used += size
            return self.used > self.limit


class SpillingMapping(MutableMapping[str, Any]):
    """Customer id -> state, the least recently used beyond the budget pickled to ``directory``."""

    def __init__(self, directory: Path, budget: CacheBudget) -> None:
        self.directory = directory
        self.budget = budget
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._charges: dict[str, int] = {}
        self._pending: dict[bytes, bytes] = {}
        """Evicted, not written to the database yet."""
        self._pending_bytes = 0
        self._stored = 0
        """Customers pending or in the database."""
        self.loads = 0
        self.evictions = 0
        self._db = _open(directory)

    # The mapping.

    def get(self, key: str, default: Any = None) -> Any:
        value = self._cache.get(key)
        if value is not None:
            self._cache.move_to_end(key)
            self._charges[key] += ACCESS_BYTES
            if self.budget.charge(ACCESS_BYTES):
                self._evict()
            return value
        value = self._load(key)
        return default if value is None else value

    def __getitem__(self, key: str) -> Any:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        if key in self._cache or self._load(key) is not None:
            self._cache[key] = value
            self._cache.move_to_end(key)
            return
        self._admit(key, value, NEW_VALUE_BYTES)

    def __delitem__(self, key: str) -> None:
        if key in self._cache:
            del self._cache[key]
            self.budget.charge(-self._charges.pop(key))
            return
        stored = key.encode()
        blob = self._pending.pop(stored, None)
        if blob is not None:
            self._pending_bytes -= len(blob)
        else:
            if self._db.get(stored) is None:
                raise KeyError(key)
            self._db.delete(stored)
            # An erasure (SPEC §3 rule 5): rewrite the files that held it, so its bytes leave the disk now.
            self._db.compact_range(stored, stored + b"\x00")
        self._stored -= 1

    def __iter__(self) -> Iterator[str]:
        yield from list(self._cache)
        yield from [key.decode() for key in self._pending]
        for key in self._db.keys():  # noqa: SIM118 - a database, not a dict
            yield cast(bytes, key).decode()

    def __len__(self) -> int:
        return len(self._cache) + self._stored

    @property
    def in_memory(self) -> int:
        return len(self._cache)

    def stored_items(self) -> Iterator[tuple[str, Any]]:
        """Every customer, without bringing the stored ones into memory (for a snapshot)."""
        yield from list(self._cache.items())
        for pending, blob in list(self._pending.items()):
            yield pending.decode(), pickle.loads(blob)
        for stored, value in self._db.items():
            yield cast(bytes, stored).decode(), pickle.loads(cast(bytes, value))

    def flush_to_files(self) -> None:
        """Write the evicted customers and the database's memory to its files (for tests)."""
        self._write_pending()
        self._db.flush()

    def close(self) -> None:
        """Forget the memory and delete the database (it is scratch)."""
        self.budget.charge(-sum(self._charges.values()))
        self._cache.clear()
        self._charges.clear()
        self._pending.clear()
        self._db.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    # Moving customers between memory and disk.

    def _load(self, key: str) -> Any:
        stored = key.encode()
        blob = self._pending.pop(stored, None)
        if blob is not None:
            self._pending_bytes -= len(blob)
        else:
            blob = cast(bytes | None, self._db.get(stored))
            if blob is None:
                return None
            self._db.delete(stored)
        self._stored -= 1
        self.loads += 1
        value = pickle.loads(blob)
        self._admit(key, value, len(blob) * EXPANSION)
        return value

    def _admit(self, key: str, value: Any, charge: int) -> None:
        self._cache[key] = value
        self._charges[key] = charge
        if self.budget.charge(charge):
            self._evict()

    def _evict(self) -> None:
        over, cache = True, self._cache
        while over and len(cache) > 1:  # the newest stays: the caller holds it
            evicted, state = cache.popitem(last=False)
            over = self.budget.charge(-self._charges.pop(evicted))
            blob = self._pending[evicted.encode()] = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
            self._pending_bytes += len(blob)
            self._stored += 1
            self.evictions += 1
            if self._pending_bytes >= WRITE_BATCH_BYTES:
                self._write_pending()

    def _write_pending(self) -> None:
        batch = WriteBatch(raw_mode=True)
        for key, blob in self._pending.items():
            batch.put(key, blob)
        self._db.write(batch)
        self._pending, self._pending_bytes = {}, 0


_ID_OFFSET = 1 << 63
"""Added to a signed 64-bit hash so that its big-endian bytes sort as the numbers do."""
IDS_A_CHUNK = 1 << 16
"""Ids a chunk of a snapshot holds: built as Python ints first, so kept small (~6 MB a chunk)."""


class StoredIds:
    """The duplicate index's folded ids (``ledger.dedup.FoldedIds``) in a RocksDB database: hash -> digest."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._db = _open(directory)

    @property
    def nbytes(self) -> int:
        return 0  # in memory: the database's own buffers only

    def find(self, key: int) -> int | None:
        digest = cast(bytes | None, self._db.get((key + _ID_OFFSET).to_bytes(8, "big")))
        return None if digest is None else int.from_bytes(digest, "big", signed=True)

    def add(self, keys: np.ndarray, digests: np.ndarray) -> None:
        batch = WriteBatch(raw_mode=True)
        for key, digest in zip(keys.tolist(), digests.tolist(), strict=True):
            batch.put((key + _ID_OFFSET).to_bytes(8, "big"), digest.to_bytes(8, "big", signed=True))
        self._db.write(batch)

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        keys: list[int] = []
        digests: list[int] = []
        for key, digest in self._db.items():  # in key order: each chunk is sorted
            keys.append(int.from_bytes(cast(bytes, key), "big") - _ID_OFFSET)
            digests.append(int.from_bytes(cast(bytes, digest), "big", signed=True))
            if len(keys) == IDS_A_CHUNK:
                yield np.array(keys, dtype=np.int64), np.array(digests, dtype=np.int64)
                keys, digests = [], []
        if keys:
            yield np.array(keys, dtype=np.int64), np.array(digests, dtype=np.int64)

    def close(self) -> None:
        self._db.close()
        shutil.rmtree(self.directory, ignore_errors=True)


class ScratchState:
    """A core's working state kept partly on disk: its customers and its folded ids, in one scratch directory."""

    def __init__(self, directory: Path, budget: CacheBudget) -> None:
        self.directory = directory
        self.customers = SpillingMapping(directory / "customers", budget)
        self.ids = StoredIds(directory / "ids")

    def close(self) -> None:
        self.customers.close()
        self.ids.close()
        shutil.rmtree(self.directory, ignore_errors=True)


WORKER_SCRATCH_PREFIX = "spoc-worker-state-"


def worker_scratch() -> Path:
    """A new scratch directory for this worker process in the system's temporary directory; those of
    workers no longer running (killed before they could delete theirs) are deleted first."""
    for stale in Path(tempfile.gettempdir()).glob(f"{WORKER_SCRATCH_PREFIX}*"):
        pid = stale.name.removeprefix(WORKER_SCRATCH_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{WORKER_SCRATCH_PREFIX}{os.getpid()}-"))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def new_scratch(parent: Path, budget: CacheBudget, prefix: str = "state-") -> ScratchState:
    parent.mkdir(parents=True, exist_ok=True)
    return ScratchState(Path(tempfile.mkdtemp(prefix=prefix, dir=parent)), budget)


@contextmanager
def spilling(parent: Path, budget: CacheBudget) -> Iterator[ScratchState]:
    """Scratch state in a new directory under ``parent``, deleted on the way out."""
    scratch = new_scratch(parent, budget)
    try:
        yield scratch
    finally:
        scratch.close()


def _open(directory: Path) -> Rdict:
    """A scratch database: no write-ahead log (a crash loses nothing the snapshots hold)."""
    db = Rdict(str(directory), _options())
    write_options = WriteOptions()
    write_options.disable_wal = True  # type: ignore[method-assign,assignment]  # a property; the stub says a method
    db.set_write_options(write_options)
    return db


def _options() -> Options:
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.set_write_buffer_size(ROCKSDB_MEMORY // 2)
    options.set_max_write_buffer_number(2)
    table = BlockBasedOptions()
    table.set_block_cache(Cache(ROCKSDB_MEMORY // 2))
    table.set_bloom_filter(10, False)
    options.set_block_based_table_factory(table)
    return options
