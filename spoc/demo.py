"""``spoc demo`` / ``make demo``: a simulated company streamed through the whole live pipeline.

Starts the embedded broker and a ``spoc worker``, publishes the company's touchpoints
to Kafka, lets the worker build the ledger, follows its output into DuckDB with the
sink, then prints the report and writes the HTML page.  Ctrl-C (or SIGTERM) stops
every process it started.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tqdm import tqdm

from processors.kafka.embedded_broker import EmbeddedBroker
from processors.kafka.topics import ALL_TOPICS, TOUCHPOINTS, ensure_topics
from processors.project import SinkSettings, run_sink
from processors.publish import publish
from projections.reading import read_analytics
from reports.data import gather
from reports.html import write_html
from reports.terminal import print_report
from simulator.company import Settings
from simulator.write import write_simulation
from spoc.worker_process import (
    WorkerProcess,
    free_port,
    partition_ends,
    wait_until_processed,
)

PARTITIONS = 3
PROCESS_TIMEOUT = 600.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DemoFiles:
    out: Path

    @property
    def company(self) -> Path:
        return self.out / "demo-company.jsonl.gz"

    @property
    def db(self) -> Path:
        return self.out / "demo.duckdb"

    @property
    def ledger(self) -> Path:
        return self.out / "demo-ledger.sqlite"

    @property
    def worker_log(self) -> Path:
        return self.out / "demo-worker.log"

    @property
    def html(self) -> Path:
        return self.out / "report.html"

    def clear(self) -> None:
        """A new broker starts at offset 0: an old ledger would take the new messages for done ones."""
        for stale in (self.db, self.ledger, self.worker_log, Path(f"{self.db}.sink")):
            stale.unlink(missing_ok=True)


@contextmanager
def _bar(description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    with tqdm(total=total, desc=description.ljust(22), unit=" msg", file=sys.stderr, disable=None) as bar:
        def update(done: int) -> None:
            bar.update(done - bar.n)

        yield update


def _stop_on_signals() -> None:
    """SIGTERM, and SIGINT even where the shell ignores it (a background job), end the demo through its cleanup."""
    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    for signum in STOP_SIGNALS:
        signal.signal(signum, stop)


def _run_async(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` where a stop signal cancels ``main``, so its cleanup runs inside the loop.

    A KeyboardInterrupt raised by a signal handler lands wherever the loop happens to be,
    possibly inside aiokafka's callbacks, and can leave a future that never completes:
    the loop then hangs while cancelling its tasks.  A loop signal handler runs between
    callbacks instead; the interrupt is raised once the loop is closed.
    """
    interrupted = False

    async def guarded() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def stop() -> None:
            nonlocal interrupted
            interrupted = True
            task.cancel()

        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, stop)
        try:
            return await main
        finally:
            for signum in STOP_SIGNALS:
                loop.remove_signal_handler(signum)
            _stop_on_signals()

    try:
        result = asyncio.run(guarded())
    except asyncio.CancelledError:
        if not interrupted:
            raise
        raise KeyboardInterrupt from None
    if interrupted:  # ``main`` ended its own way after the cancellation
        raise KeyboardInterrupt
    return result


def run_demo(settings: Settings, out: Path) -> None:
    _stop_on_signals()
    files = DemoFiles(out)
    out.mkdir(parents=True, exist_ok=True)
    files.clear()
    started = time.monotonic()
    with _bar("simulating company") as progress:
        written = write_simulation(settings, files.company, progress)
    print(f"{settings.customers:,} customers over {settings.days} days: {written.lines:,} lines in {files.company}",
          file=sys.stderr)

    with EmbeddedBroker(free_port()) as broker:
        bootstrap = broker.bootstrap
        print(f"embedded Kafka broker on {bootstrap}", file=sys.stderr)
        _run_async(ensure_topics(bootstrap, ALL_TOPICS, PARTITIONS))
        ledger_url = f"sqlite:///{files.ledger}"
        worker = WorkerProcess(bootstrap, ledger_url, files.worker_log, "spoc-demo")
        try:
            print(f"spoc worker started (pid {worker.process.pid}, log {files.worker_log})", file=sys.stderr)
            with _bar("publishing to Kafka", written.lines) as progress:
                _run_async(publish([str(files.company)], bootstrap, TOUCHPOINTS, progress))
            ends = partition_ends(bootstrap, TOUCHPOINTS)
            with _bar("ledger worker", sum(ends.values())) as progress:
                wait_until_processed(ends, [worker], PROCESS_TIMEOUT, progress)
            with _bar("DuckDB sink") as progress:
                sink = SinkSettings(bootstrap, files.db, stop_when_caught_up=True, ledger_url=ledger_url)
                _run_async(run_sink(sink, asyncio.Event(), progress))
            worker.terminate()
        finally:
            worker.close()
    print(f"pipeline done in {time.monotonic() - started:.0f} s; broker and worker stopped\n", file=sys.stderr)

    con = read_analytics(files.db)
    try:
        report = gather(con)
        owned = con.execute("SELECT customer_id FROM customer_owner ORDER BY customer_id LIMIT 1").fetchone()
    finally:
        con.close()
    print_report(report)
    write_html(report, str(files.db), files.html)
    _next_steps(files, owned[0] if owned else "CUSTOMER_ID")


def _next_steps(files: DemoFiles, customer: str) -> None:
    spoc = ".venv/bin/spoc" if Path(".venv/bin/spoc").exists() else "spoc"
    print(f"""
Files:
  {files.html}   the report with charts (one page, works offline)
  {files.db}   the analysts' DuckDB file (tables: docs/analytics.md)
  {files.ledger}   the relationship ledger (every owner decision and its reason)
  {files.company}   the simulated input
Try:
  {spoc} sql --db {files.db} "SELECT * FROM silo_paths LIMIT 5"
  {spoc} owner {customer} --db {files.db}
  {spoc} policy > out/what-if.toml   # the default policy, every number explained: edit one, then
  {spoc} replay {files.company} --db out/what-if.duckdb --policy out/what-if.toml
  {spoc} compare {files.db} out/what-if.duckdb""")
