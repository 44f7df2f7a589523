"""Checkpoints of the worker's partition states (SPEC §2): a restart or takeover restores the last one
and reads only the input after it, instead of the partition's whole history.

A checkpoint is taken when every effect up to its offset is durable (ledger events stored, output
messages acknowledged), so the input after it makes exactly the effects still missing, as a
rebuild from the beginning would.  It goes to the ledger store, which every worker of a group
shares (PostgreSQL across machines), in one row with its checksum and the code that wrote it.
Two are kept per partition: a damaged newest one (its checksum fails) is passed over for the one
before, and one from other code is never restored.  After an erasure the partition is
checkpointed at once and the older checkpoints, which still hold the customer, are deleted.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from ledger.intake import Intake
from ledger.store import LedgerStore, StoredCheckpoint
from processors.kafka.topics import partition_source
from processors.live.partition import PartitionLedger
from processors.live.retrying import retrying
from processors.runtime import snapshots
from processors.runtime.failpoints import failpoint
from processors.runtime.state_store import ScratchState

log = logging.getLogger("spoc.worker")

KEEP = 2


@dataclass
class PartitionSnapshot:
    intake: Intake
    last_offset: int
    """The last input offset whose effects the state holds."""


def restore_starts(ledger: LedgerStore, topic: str, partitions: int) -> dict[int, int]:
    """Per input partition, the first offset a restore reads: after the newest checkpoint this code
    can restore, else 0 (a rebuild)."""
    fingerprint = snapshots.code_fingerprint()
    starts = {}
    for partition in range(partitions):
        usable = [offset for offset, code in ledger.checkpoint_offsets(partition_source(topic, partition)) if code == fingerprint]
        starts[partition] = usable[0] + 1 if usable else 0
    return starts


class Checkpoints:
    def __init__(self, ledger: LedgerStore) -> None:
        self.ledger = ledger
        self.saved: dict[int, int] = {}
        """Each partition's last checkpointed offset (this worker's)."""

    async def save(self, state: PartitionLedger, *, erased: bool = False) -> None:
        """Checkpoint ``state`` (every effect it holds must be durable); after an erasure, delete the
        older checkpoints of the partition."""
        assert state.all_made, "a checkpoint must not hold input whose effects are not made"
        last = state.next_offset - 1
        data = await asyncio.to_thread(snapshots.pack, PartitionSnapshot(state.intake, last))
        stored = StoredCheckpoint(state.source, last, snapshots.code_fingerprint(), snapshots.sha256(data), data)
        failpoint("worker-checkpointing")
        await retrying(
            "ledger store", lambda: asyncio.to_thread(self.ledger.save_checkpoint, stored, keep=1 if erased else KEEP)
        )
        self.saved[state.partition] = last
        log.info("partition checkpointed", extra={"partition": state.partition, "offset": last, "bytes": len(data)})

    async def restore(self, source: str, scratch: ScratchState) -> PartitionSnapshot | None:
        """The newest checkpoint of ``source`` this code can trust, restored into ``scratch``; or None (then:
        rebuild from the beginning)."""
        stored = await retrying("ledger store", lambda: asyncio.to_thread(self.ledger.checkpoints, source))
        for checkpoint in stored:
            if checkpoint.code != snapshots.code_fingerprint():
                log.warning("checkpoint written by another version of spoc; not restored",
                            extra={"source": source, "offset": checkpoint.last_offset})
                continue
            snapshot = await asyncio.to_thread(
                snapshots.unpack, checkpoint.state, checkpoint.sha256, scratch.customers, scratch.ids
            )
            if isinstance(snapshot, PartitionSnapshot):
                return snapshot
            log.warning("checkpoint damaged (its checksum does not match); trying the one before",
                        extra={"source": source, "offset": checkpoint.last_offset})
        return None
