"""The benchmark's Quix Streams peer computes what ours computes, so comparing their speed is fair.

On a clean workload (no duplicates, nothing malformed) the peer sees every keyed message, and its
SPEC §4 handoffs must be ours, one for one.  Its owner changes (rules 1 and 2; it leaves out rule 3)
must at least cover our first assignments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from benchmarks.workload import generate
from processors.kafka.embedded_broker import EmbeddedBroker
from processors.kafka.topics import TOUCHPOINTS
from spoc.worker_process import free_port
from tests.live import publish_file
from tests.replaying import rows, run_replay

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    os.environ.get("SPOC_TEST_BROKER") == "apache", reason="uses its own embedded broker: runs in `make test`",
)
def test_the_quix_peer_finds_the_handoffs_ours_finds(tmp_path: Path) -> None:
    workload = tmp_path / "workload.jsonl"
    workload.write_bytes(b"\n".join(generate(8_000, customers=400, seed=5)) + b"\n")
    db, summary = run_replay(tmp_path, [workload])
    with EmbeddedBroker(free_port()) as broker:
        publish_file(broker.bootstrap, workload)
        group = f"peer-{uuid.uuid4().hex[:8]}"
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.peers.quix_owner", broker.bootstrap, TOUCHPOINTS, group,
             str(tmp_path / "state"), "3"],
            capture_output=True, text=True, check=True, cwd=ROOT, timeout=300,
        ).stdout
    peer = json.loads(out.strip().splitlines()[-1])
    departures = workload.read_bytes().count(b'"employee_departed"')  # keyless: the peer skips them
    assert peer["messages"] == summary.accepted - departures > 0 and peer["unparsable"] == 0
    assert peer["handoffs"] == summary.handoffs > 0
    [(first_assignments,)] = rows(db, "SELECT count(*) FROM owner_history WHERE reason = 'first_productive_contact'")
    assert peer["owner_changes"] >= first_assignments > 0
