"""Coverage-guided fuzzing (atheris / libFuzzer) of the validator and the intake step that
replay and the worker share.

Each fuzz input is split into lines; every line goes through one fresh :class:`Intake`
as a message, then the batch is drained.  The invariant: nothing raises, and every
message ends accepted, a duplicate, or rejected with a SPEC §1 reason.  libFuzzer
reports a crash (an exception, a memory blow-up past ``-rss_limit_mb``, a hang past
``-timeout``) with the input that caused it.

Run it for a bounded time (``make fuzz`` runs it for ``FUZZ_SECONDS``)::

    python tests/fuzz/fuzz_intake.py -max_total_time=60 -dict=tests/fuzz/events.dict tests/fuzz/seeds
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["ledger", "schemas"]):
    from ledger.intake import Intake
    from ledger.policy import DEFAULT_POLICY
    from ledger.records import Position
    from schemas.validation import REASONS

KNOWN_REASONS = frozenset(REASONS)


def test_one_input(data: bytes) -> None:
    intake = Intake(DEFAULT_POLICY, dedup_filter_bits=1 << 10)
    lines = data.split(b"\n")
    for offset, line in enumerate(lines):
        intake.take(line, Position("fuzz", offset, offset))
    batch = intake.drain()
    counts = intake.counts
    rejected = sum(counts.rejected.values())
    if counts.accepted + counts.duplicates + rejected != len(lines):
        raise AssertionError(f"{len(lines)} messages but {counts}: a message was neither processed nor dead-lettered")
    if not set(counts.rejected) <= KNOWN_REASONS or len(batch.rejected) != rejected:
        raise AssertionError(f"rejections without a SPEC reason or a dead letter: {counts.rejected}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
