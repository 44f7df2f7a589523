"""A bounded atheris run of ``fuzz_intake.py`` (``FUZZ_SECONDS``, 20 s by default; ``make fuzz``
runs longer).  Any exception, hang or memory blow-up in the validator or the intake step
fails the test with the input libFuzzer saved."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from ledger.intake import Intake
from ledger.policy import DEFAULT_POLICY
from ledger.records import Position

HERE = Path(__file__).parent
SECONDS = int(os.environ.get("FUZZ_SECONDS", "20"))


def test_the_seeds_are_valid_events_so_the_fuzzer_starts_from_accepted_input() -> None:
    for seed in sorted((HERE / "seeds").iterdir()):
        intake = Intake(DEFAULT_POLICY)
        for offset, line in enumerate(seed.read_bytes().split(b"\n")):
            intake.take(line, Position(seed.name, offset, offset))
        assert intake.counts.accepted > 0 and not intake.counts.rejected, seed.name


def test_a_bounded_fuzzing_run_finds_no_crash(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    run = subprocess.run(
        [sys.executable, str(HERE / "fuzz_intake.py"), f"-max_total_time={SECONDS}", "-rss_limit_mb=2048",
         "-timeout=10", f"-dict={HERE / 'events.dict'}", f"-artifact_prefix={tmp_path}/", str(corpus), str(HERE / "seeds")],
        capture_output=True, text=True, timeout=SECONDS + 120, cwd=tmp_path,
    )
    crashes = [path.name for path in tmp_path.iterdir() if path.is_file()]
    assert run.returncode == 0 and not crashes, f"{crashes}\n{run.stderr[-4000:]}"
    done = re.search(r"Done (\d+) runs", run.stderr)
    assert done and int(done[1]) > 10_000, run.stderr[-2000:]
