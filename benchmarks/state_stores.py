"""Candidates for the on-disk part of the core's working state: SQLite (standard library), RocksDB
(``rocksdict``, as Quix Streams uses) and LMDB (``lmdb``), with the access pattern of the spill
store (``processors/runtime/state_store.py``): customers written out in batches as the cache evicts
them, read back one at a time at random.  Prints the medians of ``--runs`` runs.

    python -m benchmarks.state_stores --keys 200000   # rocksdict and lmdb are optional
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

BATCH = 2_000


def sqlite_store(directory: Path) -> tuple[Callable[[Iterable[tuple[bytes, bytes]]], None], Callable[[bytes], bytes | None]]:
    con = sqlite3.connect(directory / "state.sqlite", isolation_level=None)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-65536")  # 64 MiB, as RocksDB's write buffer
    # A rowid table: WITHOUT ROWID suits rows far smaller than a page, and a customer is not.
    con.execute("CREATE TABLE kv (key BLOB PRIMARY KEY, value BLOB NOT NULL)")

    def put(items: Iterable[tuple[bytes, bytes]]) -> None:
        con.execute("BEGIN")
        con.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?)", items)
        con.execute("COMMIT")

    def get(key: bytes) -> bytes | None:
        row = con.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    return put, get


def rocksdb_store(directory: Path) -> tuple[Callable[[Iterable[tuple[bytes, bytes]]], None], Callable[[bytes], bytes | None]]:
    from rocksdict import Options, Rdict, WriteBatch  # optional: not a dependency

    options = Options(raw_mode=True)
    db = Rdict(str(directory / "rocks"), options)

    def put(items: Iterable[tuple[bytes, bytes]]) -> None:
        batch = WriteBatch(raw_mode=True)
        for key, value in items:
            batch.put(key, value)
        db.write(batch)

    return put, db.get


def lmdb_store(directory: Path) -> tuple[Callable[[Iterable[tuple[bytes, bytes]]], None], Callable[[bytes], bytes | None]]:
    import lmdb  # optional: not a dependency

    env = lmdb.open(str(directory / "lmdb"), map_size=1 << 36, sync=False, metasync=False, writemap=True)

    def put(items: Iterable[tuple[bytes, bytes]]) -> None:
        with env.begin(write=True) as txn:
            for key, value in items:
                txn.put(key, value)

    def get(key: bytes) -> bytes | None:
        with env.begin() as txn:
            return txn.get(key)

    return put, get


CANDIDATES = {"sqlite": sqlite_store, "rocksdict": rocksdb_store, "lmdb": lmdb_store}


def measure(name: str, keys: int, value_bytes: int) -> tuple[float, float]:
    """Microseconds a key written (in batches) and read back (at random)."""
    rng = random.Random(7)
    names = [f"customer-{n:09d}".encode() for n in range(keys)]
    value = rng.randbytes(value_bytes)
    with tempfile.TemporaryDirectory() as scratch:
        put, get = CANDIDATES[name](Path(scratch))
        shuffled = names[:]
        rng.shuffle(shuffled)
        started = time.perf_counter()
        for start in range(0, keys, BATCH):
            put((key, value) for key in shuffled[start:start + BATCH])
        written = time.perf_counter() - started
        rng.shuffle(shuffled)
        started = time.perf_counter()
        for key in shuffled:
            assert get(key) is not None
        read = time.perf_counter() - started
    return written / keys * 1e6, read / keys * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=200_000)
    parser.add_argument("--value-bytes", type=int, default=600, help="a spilled customer's size (~600 bytes pickled)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.keys:,} keys of {args.value_bytes} bytes; median of {args.runs} runs (µs a key)")
    print(f"{'store':<10} {'write':>8} {'read':>8}")
    for name in CANDIDATES:
        try:
            runs = [measure(name, args.keys, args.value_bytes) for _ in range(args.runs)]
        except ImportError:
            print(f"{name:<10} not installed")
            continue
        print(f"{name:<10} {statistics.median(w for w, _ in runs):>8.2f} {statistics.median(r for _, r in runs):>8.2f}")


if __name__ == "__main__":
    main()
