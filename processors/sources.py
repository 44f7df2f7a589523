"""Reading JSONL input: files, gzip files or stdin, with the position of every line."""

from __future__ import annotations

import asyncio
import gzip
import os
import stat
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import BinaryIO

from ledger.errors import TerminalError

STDIN = "-"
UTF8_BOM = b"\xef\xbb\xbf"
"""What some Windows tools write at the start of a UTF-8 file; RFC 8259 §8.1 lets a reader ignore it."""


class InputError(TerminalError):
    """An input file cannot be read."""


def check_readable(paths: list[str]) -> None:
    """Fail before any work when an input is missing, so nothing is half-done."""
    for path in paths:
        if path == STDIN:
            continue
        p = Path(path)
        if p.is_dir():
            raise InputError(f"input {path} is a directory; give the JSONL files in it")
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
    """Yield (line number, line without its line ending), numbering from 1; a leading byte order mark is dropped."""
    stream = _open(path)
    try:
        for number, line in enumerate(stream, 1):
            if number == 1:
                line = line.removeprefix(UTF8_BOM)
            yield number, line.rstrip(b"\r\n")
    except (OSError, EOFError) as error:
        raise InputError(f"cannot read {path}: {error}") from None
    finally:
        _close(stream)


async def stream_lines(path: str) -> AsyncIterator[tuple[int, bytes]]:
    """:func:`read_lines` for an event loop: stdin, when a pipe or a terminal, is read as data arrives.

    A pipe from an upstream system may stay quiet for minutes; meanwhile the loop
    keeps running, so a producer sends what it holds and rides out broker outages,
    and Ctrl-C still stops the process.  Files are read as they are (never slow).
    """
    if path != STDIN or stat.S_ISREG(os.fstat(sys.stdin.fileno()).st_mode):
        for item in read_lines(path):
            yield item
        return
    async for item in pipe_lines(sys.stdin.buffer):
        yield item


async def pipe_lines(pipe: BinaryIO, chunk_bytes: int = 1 << 16) -> AsyncIterator[tuple[int, bytes]]:
    """The lines of a pipe, numbered from 1, each as soon as its line ending arrives."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=chunk_bytes)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    number, tail = 0, b""
    try:
        while chunk := await reader.read(chunk_bytes):
            lines = (tail + chunk).split(b"\n")
            tail = lines.pop()
            for line in lines:
                number += 1
                yield number, (line.removeprefix(UTF8_BOM) if number == 1 else line).rstrip(b"\r")
        if tail:
            yield number + 1, (tail.removeprefix(UTF8_BOM) if number == 0 else tail).rstrip(b"\r")
    finally:
        transport.close()


def _open(path: str) -> BinaryIO:
    if path == STDIN:
        return sys.stdin.buffer
    if path.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]  # a GzipFile reads as a BinaryIO; typeshed does not say so
    return open(path, "rb")


def _close(stream: BinaryIO) -> None:
    if stream is not sys.stdin.buffer:
        stream.close()
