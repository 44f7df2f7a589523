"""A ``spoc worker`` child process: started, watched through its HTTP port, stopped.

Used by the demo, the benchmarks and the integration tests, which all run the
worker as users do: a separate process speaking Kafka and HTTP.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from ledger.store import LEDGER_URL_ENV
from processors.kafka.reading import assign_topic, reader
from processors.live.web_guard import HTTP_TOKEN_ENV
from processors.runtime.child_process import die_with_parent

NOTABLE_LEVEL = re.compile(r'"level": "(ERROR|CRITICAL)"')
POSITION = re.compile(r'^spoc_partition_position\{partition="(\d+)",topic="[^"]*"\} ([0-9.e+]+)$', re.M)


def sink_process(
    bootstrap: str, ledger_url: str, db: Path, log: Path, snapshot_every: float = 0.5, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``spoc project`` as a user runs it, in its own process, its output appended to ``log``, reading the
    keys of the customers' facts from the worker's ledger store (``env``: variables added to this process's)."""
    return subprocess.Popen(
        [sys.executable, "-m", "spoc", "project", "--bootstrap", bootstrap, "--db", str(db),
         "--snapshot-every", str(snapshot_every), "--metrics-port", "0"],
        stdout=log.open("ab"), stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
        env={**os.environ, **(env or {}), LEDGER_URL_ENV: ledger_url},
    )


def memory_mib(pid: int, field: str = "VmRSS") -> float:
    """A process's resident memory now (``VmRSS``) or at its peak (``VmHWM``), in MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no {field} in /proc/{pid}/status")


def caught_up(positions: dict[int, int], ends: dict[int, int]) -> bool:
    """Whether every partition with messages is read up to its end."""
    return all(positions.get(p, 0) >= end for p, end in ends.items() if end > 0)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class WorkerProcess:
    """``spoc worker`` on a free HTTP port, its output appended to ``log``.

    The ledger URL reaches it in ``$SPOC_LEDGER_URL``, never on the command line, where any user's
    ``ps`` shows it with its password."""

    def __init__(
        self, bootstrap: str, ledger_url: str, log: Path, group: str, *options: str, env: dict[str, str] | None = None
    ) -> None:
        """``env``: variables added to this process's for the worker."""
        self.port = free_port()
        self.token = os.environ.get(HTTP_TOKEN_ENV)  # the worker's, which it inherits
        self.log_path = log
        self.log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "spoc", "worker", "--bootstrap", bootstrap,
             "--web-port", str(self.port), "--group", group, *options],
            env={**os.environ, **(env or {}), LEDGER_URL_ENV: ledger_url},
            stdout=self.log, stderr=self.log, start_new_session=True, preexec_fn=die_with_parent,
        )

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def get(self, path: str, *, token: str | None = None) -> tuple[int, bytes]:
        """GET from the worker, with ``token`` (default: the worker's own) as the bearer token."""
        token = token if token is not None else self.token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def positions(self) -> dict[int, int]:
        """Each held partition's next input offset whose effects are all made (empty while starting)."""
        try:
            _, body = self.get("/metrics")
        except OSError:
            return {}
        return {int(p): int(float(v)) for p, v in POSITION.findall(body.decode())}

    def metric(self, name: str, **labels: str) -> float:
        """The sum of a metric's samples over its labels (those with ``labels``, when given)."""
        _, body = self.get("/metrics")
        wanted = {f'{key}="{value}"' for key, value in labels.items()}
        return sum(
            float(value)
            for found, value in re.findall(rf"^{name}(?:{{([^}}]*)}})? ([0-9.e+]+)$", body.decode(), re.M)
            if wanted <= set(found.split(","))
        )

    def tail(self, lines: int = 30) -> str:
        """What a failed wait shows: the log's errors and lines not from the JSON logger (tracebacks),
        then its last ``lines``, and whether the worker still runs."""
        self.log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        notable = [line for line in text if not line.startswith("{") or NOTABLE_LEVEL.search(line)]
        state = "running" if self.running else f"exited with {self.process.returncode}"
        return "\n".join([
            f"--- {self.log_path.name} (pid {self.process.pid}, {state}): errors and tracebacks", *notable[-lines:],
            "--- last lines:", *text[-lines:],
        ])

    def kill(self) -> None:
        if self.running:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def terminate(self, timeout: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def close(self) -> None:
        self.kill()
        self.log.close()


def partition_ends(bootstrap: str, topic: str) -> dict[int, int]:
    """The end of each partition of ``topic`` now (from a fetch: see ``high_watermarks``)."""
    async def ends() -> dict[int, int]:
        consumer = reader(bootstrap)
        await consumer.start()
        try:
            return {tp.partition: end for tp, end in (await assign_topic(consumer, bootstrap, topic)).items()}
        finally:
            await consumer.stop()

    return asyncio.run(ends())


def wait_until_processed(
    ends: dict[int, int], workers: list[WorkerProcess], timeout: float = 180,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Until every partition's effects are made up to ``ends`` (any of the workers may hold it).

    ``progress`` hears how many of the messages up to ``ends`` are done so far.
    """
    deadline = time.monotonic() + timeout
    ends = {p: end for p, end in ends.items() if end > 0}
    seen: dict[int, int] = {}
    while time.monotonic() < deadline:
        if not any(worker.running for worker in workers):
            raise RuntimeError("every worker exited; see the worker log")
        seen = {}
        for worker in workers:
            if worker.running:
                for partition, position in worker.positions().items():
                    seen[partition] = max(seen.get(partition, 0), position)
        if progress is not None:
            progress(sum(min(seen.get(p, 0), end) for p, end in ends.items()))
        if caught_up(seen, ends):
            return
        time.sleep(0.1)
    raise TimeoutError(f"workers did not finish in {timeout} s: positions {seen}, ends {ends}")
