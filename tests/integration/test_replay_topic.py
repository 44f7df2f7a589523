"""`spoc replay --from-topic`: the topic rebuilt in batch gives the tables of the file it was published from."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks.workload import generate
from processors.kafka.topics import TOUCHPOINTS
from tests.live import publish_file
from tests.replaying import rows, run_replay, snapshot

ROOT = Path(__file__).resolve().parents[2]


def _spoc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "spoc", *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


def _summary(output: str) -> dict[str, str]:
    return {line[:22].strip(): line[22:].strip() for line in output.splitlines() if line[:1] not in ("", " ")}


def test_a_topic_replays_to_the_tables_of_its_file(tmp_path: Path, pipeline_bootstrap: str) -> None:
    source = tmp_path / "touchpoints.jsonl"
    source.write_bytes(b"\n".join(generate(6_000, customers=750, seed=23, dirty=0.02)) + b"\n")
    publish_file(pipeline_bootstrap, source, partitions=3)
    from_file, file_summary = run_replay(tmp_path, [source], name="file")

    split = _spoc("replay", "--from-topic", TOUCHPOINTS, "--bootstrap", pipeline_bootstrap,
                  "--db", str(tmp_path / "split.duckdb"), "--workers", "2")
    assert split.returncode == 0, split.stderr
    assert snapshot(tmp_path / "split.duckdb") == snapshot(from_file)
    counted = _summary(split.stdout)
    assert counted["accepted"] == f"{file_summary.accepted:,}"
    assert counted["duplicates"] == f"{file_summary.duplicates:,}"
    assert counted["rejected"] == f"{sum(file_summary.rejected.values()):,}"
    assert counted["owner changes"] == f"{file_summary.owner_changes:,}"
    assert file_summary.rejected and file_summary.duplicates and file_summary.owner_changes

    # One process or two: the same rows, down to the topic positions they came from.
    one = _spoc("replay", "--from-topic", TOUCHPOINTS, "--bootstrap", pipeline_bootstrap,
                "--db", str(tmp_path / "one.duckdb"), "--workers", "1")
    assert one.returncode == 0, one.stderr
    every_row = "SELECT * FROM touchpoints ORDER BY source, position"
    assert rows(tmp_path / "one.duckdb", every_row) == rows(tmp_path / "split.duckdb", every_row)
    assert {s for (s,) in rows(tmp_path / "one.duckdb", "SELECT DISTINCT source FROM touchpoints")} == {
        f"{TOUCHPOINTS}:{p}" for p in range(3)
    }

    # The ledger store holds the topic positions: the same topic again writes nothing new.
    again = _spoc("replay", "--from-topic", TOUCHPOINTS, "--bootstrap", pipeline_bootstrap,
                  "--db", str(tmp_path / "split.duckdb"), "--workers", "2")
    assert again.returncode == 0, again.stderr
    assert _summary(split.stdout)["ledger events written"] != "0"
    assert _summary(again.stdout)["ledger events written"] == "0"
    assert snapshot(tmp_path / "split.duckdb") == snapshot(from_file)


def test_a_missing_topic_or_no_input_is_refused_with_the_fix(tmp_path: Path, pipeline_bootstrap: str) -> None:
    missing = _spoc("replay", "--from-topic", "no.such.topic", "--bootstrap", pipeline_bootstrap,
                    "--db", str(tmp_path / "x.duckdb"))
    assert missing.returncode == 2
    assert "topic no.such.topic does not exist" in missing.stderr and "spoc publish" in missing.stderr
    neither = _spoc("replay", "--db", str(tmp_path / "x.duckdb"))
    assert neither.returncode == 2 and "--from-topic" in neither.stderr
