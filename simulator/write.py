"""Write a simulation to a JSONL file (``.gz``: gzip at level 1, fast) or to standard output."""

from __future__ import annotations

import gzip
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import BinaryIO

from simulator.company import Settings
from simulator.regions import simulate

CHUNK_LINES = 8192


@dataclass(frozen=True, slots=True)
class Written:
    lines: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.lines / self.seconds if self.seconds else 0.0


def open_jsonl_output(out: str | Path | None) -> BinaryIO:
    """A JSONL file to write (``.gz``: gzip at level 1), or standard output for None or ``-``."""
    if out is None or str(out) == "-":
        return nullcontext(sys.stdout.buffer)  # type: ignore[return-value]  # used in a with: stdout stays open
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        return gzip.open(path, "wb", compresslevel=1)  # type: ignore[return-value]  # a GzipFile writes as a BinaryIO; typeshed does not say so
    return path.open("wb")


def write_simulation(
    settings: Settings, out: str | Path | None, progress: Callable[[int], None] | None = None,
    processes: bool = True,
) -> Written:
    started = time.perf_counter()
    lines = 0
    stream = simulate(settings, processes)
    with open_jsonl_output(out) as sink:
        while chunk := list(islice(stream, CHUNK_LINES)):
            sink.write(b"\n".join(chunk) + b"\n")
            lines += len(chunk)
            if progress is not None:
                progress(lines)
    return Written(lines, time.perf_counter() - started)
