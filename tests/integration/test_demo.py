"""`spoc demo` end to end as a user runs it (a small company), and Ctrl-C in the middle of it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spoc.demo import _run_async
from tests.replaying import rows, run_replay

BROKER = re.compile(r"embedded Kafka broker on 127\.0\.0\.1:(\d+)")


def strays(*markers: str) -> list[str]:
    """Command lines of running processes that mention any marker (the demo's port or files)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(marker in command for marker in markers):
            found.append(command)
    return found


def demo(out: Path, *options: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "spoc", "demo", "--out", str(out), *options],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def settle(markers: tuple[str, ...], seconds: float = 10.0) -> list[str]:
    deadline = time.monotonic() + seconds
    while (left := strays(*markers)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def test_demo_runs_the_pipeline_and_leaves_the_report_and_no_processes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = demo(out, "--customers", "400", "--days", "120", "--seed", "3")
    output, _ = run.communicate(timeout=300)
    assert run.returncode == 0, output
    port = BROKER.search(output)
    assert port, output
    assert settle((f":{port.group(1)}", str(out))) == []

    assert "SPOC report as of" in output and "Churn by owner continuity" in output
    for name in ("report.html", "demo.duckdb", "demo-ledger.sqlite", "demo-company.jsonl.gz"):
        assert (out / name).is_file(), name
        assert str(out / name) in output, f"the demo should say where {name} is"
    assert "spoc sql --db" in output

    # What went through Kafka equals a batch replay of the same simulated file.
    batch, _ = run_replay(tmp_path, [out / "demo-company.jsonl.gz"], "batch")
    for query in ("SELECT count(*) FROM touchpoints", "SELECT count(*) FROM owner_history",
                  "SELECT count(*) FROM handoffs", "SELECT count(*) FROM rejected_events",
                  "SELECT count(*) FILTER (WHERE churned) FROM customer_metrics"):
        assert rows(out / "demo.duckdb", query) == rows(batch, query), query


def test_ctrl_c_stops_everything_it_started(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = demo(out, "--customers", "20000", "--days", "365")
    assert run.stdout is not None
    seen = []
    for line in run.stdout:
        seen.append(line)
        if "spoc worker started" in line:
            break
    port = BROKER.search("".join(seen))
    assert port, "".join(seen)
    time.sleep(1.0)  # publishing by now
    run.send_signal(signal.SIGINT)
    try:
        rest, _ = run.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        run.kill()
        rest, _ = run.communicate()
        raise AssertionError("the demo was still running 30 s after Ctrl-C:\n" + "".join(seen) + rest) from None
    assert run.returncode != 0, rest
    assert settle((f":{port.group(1)}", str(out))) == []


def test_a_stop_signal_inside_a_loop_callback_lets_the_phase_clean_up() -> None:
    """The demo's hang, in miniature: a signal lands while a loop callback (aiokafka's, in the
    demo) runs, before it completes a future that the phase's cleanup then waits for.  Raised
    in the callback, the interrupt left the future pending and the cleanup waiting for ever."""
    cleaned: list[bool] = []

    async def phase() -> None:
        loop = asyncio.get_running_loop()
        delivered = loop.create_future()

        def deliver() -> None:
            os.kill(os.getpid(), signal.SIGINT)
            delivered.set_result(None)

        loop.call_soon(deliver)
        try:
            await asyncio.sleep(10)
        finally:
            await asyncio.wait_for(asyncio.shield(delivered), 5)  # as a producer's stop() waits for its sends
            cleaned.append(True)

    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        with pytest.raises(KeyboardInterrupt):
            _run_async(phase())
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert cleaned == [True]
