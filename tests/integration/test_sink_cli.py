"""`spoc project` refuses unusable arguments and an unreachable broker with one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from spoc.worker_process import free_port


def _project(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spoc", "project", "--db", str(tmp_path / "live.duckdb"), *options],
        capture_output=True, text=True, timeout=120,
    )


def test_an_unusable_memory_limit_is_refused_before_anything_starts(tmp_path: Path) -> None:
    for size in ("lots", "64MB'; DROP TABLE touchpoints; --"):
        result = _project(tmp_path, "--memory-limit", size, "--bootstrap", f"127.0.0.1:{free_port()}")
        assert result.returncode == 2
        assert "--memory-limit: must be a size such as 64MB or 1GB" in result.stderr
    assert not list(tmp_path.iterdir())


def test_an_unreachable_broker_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    result = _project(tmp_path, "--memory-limit", "32MB", "--bootstrap", f"127.0.0.1:{free_port()}")
    assert result.returncode == 2
    assert result.stderr.startswith("spoc: error: cannot reach Kafka at 127.0.0.1:")
    assert "spoc broker" in result.stderr
    assert "Traceback" not in result.stderr and "Unclosed" not in result.stderr, result.stderr
