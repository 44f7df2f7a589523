"""Reading JSONL input: files, gzip files or stdin, with the position of every line."""

from __future__ import annotations

import gzip
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ledger.errors import TerminalError

STDIN = "-"


class InputError(TerminalError):
    """An input file cannot be read."""


def check_readable(paths: list[str]) -> None:
    """Fail before any work when an input is missing, so nothing is half-done."""
    for path in paths:
        if path == STDIN:
            continue
        p = Path(path)
        if not p.is_file():
            raise InputError(f"input file not found: {path}")
        try:
            with p.open("rb"):
                pass
        except OSError as error:
            raise InputError(f"cannot read input file {path}: {error.strerror}") from None


def source_name(path: str) -> str:
    return "stdin" if path == STDIN else str(Path(path).resolve())


def read_lines(path: str) -> Iterator[tuple[int, bytes]]:
    """Yield (line number, line without its line ending), numbering from 1."""
    stream: BinaryIO
    if path == STDIN:
        stream = sys.stdin.buffer
    elif path.endswith(".gz"):
        stream = gzip.open(path, "rb")  # type: ignore[assignment]
    else:
        stream = open(path, "rb")  # noqa: SIM115 - closed below
    try:
        for number, line in enumerate(stream, 1):
            yield number, line.rstrip(b"\r\n")
    except (OSError, EOFError) as error:
        raise InputError(f"cannot read {path}: {error}") from None
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
