"""What sealing each customer's facts (crypto-shredding, docs/security.md) costs the worker and the sink.

    python benchmarks/sealing.py                    # 200k touchpoints, 5 runs
    python benchmarks/sealing.py --events 400000 --runs 3

One process, no broker.  The touchpoints go through a partition's state in stretches of
1,000 messages (the worker's ``PartitionLedger.process``: the core, the outputs and the
facts), which is the baseline.  Then, per stretch, what sealing adds to the worker (the
customers' keys looked up and new ones stored in a SQLite ledger store, then each
customer's part encoded and sealed) and what the sink does with the result (decode and
open every part, with its keys looked up), beside the sink's decoding of the same facts
unsealed (the format before).  Prints medians over the runs in microseconds per input
message and as ratios to the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402

from benchmarks.workload import generate  # noqa: E402
from ledger.policy import DEFAULT_POLICY  # noqa: E402
from ledger.store import LedgerStore  # noqa: E402
from processors.kafka.reading import Incoming  # noqa: E402
from processors.kafka.routing import routing  # noqa: E402
from processors.kafka.topics import OUTPUT_TOPICS, TOUCHPOINTS  # noqa: E402
from processors.live.partition import Effects, PartitionLedger  # noqa: E402
from processors.live.sealing import seal_stretch  # noqa: E402
from processors.project import FactRows, decode_facts, sealed_key_ids  # noqa: E402
from processors.runtime.heap import chunked_collection, settle  # noqa: E402
from schemas.facts import InputFactsV1  # noqa: E402

STRETCH = 1_000
_encode = msgspec.json.Encoder().encode


def one_run(lines: list[bytes], tmp: Path) -> dict[str, float]:
    """Seconds spent in each step over the whole input."""
    state = PartitionLedger(TOUCHPOINTS, 0, DEFAULT_POLICY, None, dict.fromkeys(OUTPUT_TOPICS))
    store = LedgerStore(f"sqlite:///{tmp / 'ledger.sqlite'}")
    seconds = dict.fromkeys(("process", "seal", "sink_open", "sink_plain"), 0.0)
    try:
        with chunked_collection():  # the collector runs between stretches only, as in the worker's rebuild
            for start in range(0, len(lines), STRETCH):
                _stretch(state, store, lines[start:start + STRETCH], start, seconds)
                settle()
    finally:
        store.close()
    return seconds


def _stretch(state: PartitionLedger, store: LedgerStore, lines: list[bytes], first: int, seconds: dict[str, float]) -> None:
    stretch = [Incoming(first + i, routing(raw)[0], raw, False, None) for i, raw in enumerate(lines)]
    began = time.perf_counter()
    effects = state.process(stretch)
    seconds["process"] += time.perf_counter() - began

    began = time.perf_counter()
    sealed = seal_stretch(store, state.source, state.recorded, effects.facts, effects.erasures)
    value = b"[" + b",".join(v for _, v in sealed) + b"]"
    seconds["seal"] += time.perf_counter() - began

    began = time.perf_counter()
    messages = decode_facts(value)
    FactRows().add(messages, store.keys_by_id(sealed_key_ids(messages)))
    seconds["sink_open"] += time.perf_counter() - began

    plain = b"[" + b",".join(_encode(msgspec.structs.replace(f, sealed=[])) for _, f in _unsplit(effects)) + b"]"
    began = time.perf_counter()
    FactRows().add(decode_facts(plain), {})
    seconds["sink_plain"] += time.perf_counter() - began
    state.done(effects)
    state.recorded = effects.last_offset


def _unsplit(effects: Effects) -> list[tuple[int, InputFactsV1]]:
    """Each input message's facts whole (the format before sealing): the plain part with the customers' rows."""
    whole = []
    for offset, plain, parts in effects.facts:
        merged = msgspec.structs.replace(plain)
        for part in parts.values():
            for name in ("touch", "handoff", "repeat", "control", "rejected"):
                if getattr(part, name) is not None:
                    setattr(merged, name, getattr(part, name))
            merged.ledger = [*merged.ledger, *part.ledger]
            merged.follow_ups = [*merged.follow_ups, *part.follow_ups]
        whole.append((offset, merged))
    return whole


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    lines = list(generate(args.events, customers=args.customers, seed=7))
    runs = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="spoc-bench-sealing-") as tmp:
            runs.append(one_run(lines, Path(tmp)))
        print(f"run {run + 1}: " + ", ".join(f"{k} {v:.2f} s" for k, v in runs[-1].items()), file=sys.stderr)

    def per_message(step: str) -> float:
        return statistics.median(r[step] for r in runs) / len(lines) * 1e6

    def ratio(step: str, base: str = "process") -> float:
        return statistics.median(r[step] / r[base] for r in runs)

    print(f"{len(lines):,} input messages, {args.customers:,} customers, stretches of {STRETCH:,}; medians of {args.runs} runs")
    print(f"worker: partition state, outputs and facts (baseline)  {per_message('process'):6.1f} µs/message")
    print(f"worker: + keys looked up and stored, parts sealed      {per_message('seal'):6.1f} µs/message  "
          f"({ratio('seal'):.3f} of the baseline)")
    print(f"sink:   facts decoded and opened, keys looked up       {per_message('sink_open'):6.1f} µs/message  "
          f"({ratio('sink_open', 'sink_plain'):.2f}× the same facts unsealed: {per_message('sink_plain'):.1f} µs)")


if __name__ == "__main__":
    main()
