"""The history a DuckDB file holds, so that a replay continues it (SPEC §2, "History continues").

Beside its tables, a replayed file records which inputs it holds (by content: the
SHA-256 of the decompressed bytes, so the same file under another path, compressed
or not, or on stdin, is the same input) and where the core's working state after
them is: one state file per share of the customers in ``<db>.state/``, each named
in the file with its checksum.  Both are written in the same DuckDB transaction as
the tables, after the state files are complete on disk; so a crash at any moment
leaves the tables and the state they were built with, or the ones before.  A
replay into such a file restores the state and processes only the inputs it does
not hold yet.

The state is the core's objects, pickled: a state file is trusted as the DuckDB
file beside it is (same owner, same directory), and checked against the checksum
the file recorded before it is read.  A state written by other code (any change to
``ledger/`` or ``schemas/``) or under another policy is refused; ``--rebuild``
starts over.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ledger.errors import TerminalError
from ledger.intake import Intake
from processors.runtime import snapshots
from processors.runtime.state_store import ScratchState
from processors.sources import STDIN, InputError, source_name

HASH_CHUNK = 1 << 20
REBUILD_FIX = "replay with --rebuild to start the history over from the inputs you give, or use a new --db"

HISTORY_DDL = (
    "CREATE TABLE IF NOT EXISTS spoc_inputs (ordinal INTEGER PRIMARY KEY, content_sha256 VARCHAR NOT NULL UNIQUE, "
    "source VARCHAR NOT NULL)",
    "CREATE TABLE IF NOT EXISTS spoc_state (share INTEGER PRIMARY KEY, shares INTEGER NOT NULL, "
    "file VARCHAR NOT NULL, sha256 VARCHAR NOT NULL, code VARCHAR NOT NULL)",
)
HISTORY_TABLES = ("spoc_inputs", "spoc_state")


class HistoryError(TerminalError):
    """The history a file holds cannot be continued."""


@dataclass(frozen=True)
class Input:
    """One input to replay: where it is read from, and what it holds."""

    path: str
    """The file to read (for stdin, a copy of it)."""
    source: str
    """The name its positions carry (the resolved path, or ``stdin``)."""
    content_sha256: str

    @property
    def tracking(self) -> str:
        """The ledger store's name for this input's positions: the same content is the same input."""
        return f"{self.source}@{self.content_sha256[:16]}"


def identify(path: str, spool_dir: Path) -> Input:
    """Hash an input's decompressed content; stdin is copied to ``spool_dir`` on the way (it is read twice)."""
    digest = hashlib.sha256()
    if path == STDIN:
        spool_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=spool_dir, prefix="stdin-", suffix=".jsonl", delete=False) as copy:
            while chunk := sys.stdin.buffer.read(HASH_CHUNK):
                digest.update(chunk)
                copy.write(chunk)
        return Input(copy.name, source_name(STDIN), digest.hexdigest())
    try:
        with (gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")) as stream:
            while chunk := stream.read(HASH_CHUNK):
                digest.update(chunk)
    except (OSError, EOFError) as error:
        raise InputError(f"cannot read {path}: {error}") from None
    return Input(path, source_name(path), digest.hexdigest())


@dataclass
class ShareState:
    """What one share of the customers carries from one replay to the next."""

    intake: Intake
    seq: int
    """The last sequence number given to an input line (positions keep increasing across replays)."""


@dataclass(frozen=True)
class StateFile:
    share: int
    shares: int
    file: str
    sha256: str


def state_dir(analytics_path: Path) -> Path:
    return analytics_path.with_name(analytics_path.name + ".state")


def write_state(directory: Path, share: int, shares: int, state: ShareState) -> StateFile:
    """Write a share's state to a new file (complete and synced before it is named); return its record."""
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=directory, prefix=".writing-", delete=False) as out:
        snapshots.dump(state, out)
        out.flush()
        os.fsync(out.fileno())
    sha256 = _file_sha256(Path(out.name))
    final = directory / f"share-{share}-of-{shares}.{sha256[:16]}.state"
    os.replace(out.name, final)
    return StateFile(share, shares, final.name, sha256)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_state(directory: Path, record: StateFile, scratch: ScratchState) -> ShareState:
    """A share's state, its customers and folded ids restored into ``scratch``."""
    path = directory / record.file
    try:
        payload = path.read_bytes()
    except OSError as error:
        raise HistoryError(f"the replay state {path} cannot be read ({error.strerror}); {REBUILD_FIX}") from None
    state = snapshots.unpack(payload, record.sha256, scratch.customers, scratch.ids)
    if state is None:
        raise HistoryError(f"the replay state {path} is damaged (its checksum does not match); {REBUILD_FIX}")
    if not isinstance(state, ShareState):
        raise HistoryError(f"{path} is not a replay state; {REBUILD_FIX}")
    return state


@dataclass
class History:
    """What an analytics file holds: its inputs by content, and its state files (empty: a new history)."""

    inputs: dict[str, int]
    """Content SHA-256 -> ordinal."""
    states: list[StateFile]

    @property
    def shares(self) -> int | None:
        return self.states[0].shares if self.states else None


def _table_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {name for (name,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}


def holds_file_history(con: duckdb.DuckDBPyConnection) -> bool:
    return "spoc_state" in _table_names(con)


def read_history(con: duckdb.DuckDBPyConnection, path: Path) -> History:
    """The history in an open analytics file; refuses one made by other code, or tables without a history."""
    tables = _table_names(con)
    if "spoc_state" not in tables:
        if "touchpoints" in tables:
            raise HistoryError(f"{path} holds tables but no replay history (an older version, or `spoc project`, "
                               f"wrote it); {REBUILD_FIX}")
        return History({}, [])
    codes = {code for (code,) in con.execute("SELECT DISTINCT code FROM spoc_state").fetchall()}
    if codes and codes != {snapshots.code_fingerprint()}:
        raise HistoryError(f"{path} holds a history built by another version of spoc; {REBUILD_FIX}")
    inputs = dict(con.execute("SELECT content_sha256, ordinal FROM spoc_inputs").fetchall())
    states = [StateFile(*row) for row in con.execute("SELECT share, shares, file, sha256 FROM spoc_state ORDER BY share").fetchall()]
    return History(inputs, states)


def clear_history(con: duckdb.DuckDBPyConnection) -> None:
    """Forget what the file held (``--rebuild``); its state files go once the new history is committed."""
    for table in HISTORY_TABLES:
        con.execute(f"DROP TABLE IF EXISTS {table}")


def record_history(con: duckdb.DuckDBPyConnection, added: list[Input], states: list[StateFile], start: int) -> None:
    """Add this run's inputs and replace the state records (inside the replay's transaction)."""
    for statement in HISTORY_DDL:
        con.execute(statement)
    for ordinal, held in enumerate(added, start):
        con.execute("INSERT INTO spoc_inputs VALUES (?, ?, ?)", [ordinal, held.content_sha256, held.source])
    con.execute("DELETE FROM spoc_state")
    for state in states:
        con.execute("INSERT INTO spoc_state VALUES (?, ?, ?, ?, ?)",
                    [state.share, state.shares, state.file, state.sha256, snapshots.code_fingerprint()])


def forget_unreferenced(directory: Path, keep: list[StateFile]) -> None:
    """Delete the state files the analytics file no longer names (after its commit), and spooled input."""
    if not directory.is_dir():
        return
    kept = {state.file for state in keep}
    for entry in directory.iterdir():
        if entry.name not in kept:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink(missing_ok=True)
