"""A deterministic, streaming generator of touchpoint JSONL for benchmarks and samples.

Not the company simulator (that is ``spoc simulate``): just realistic shapes —
customers with journeys over several departments, transfers, redirects, cases,
departures, pins, churn, and a small share of duplicates and malformed lines.
"""

from __future__ import annotations

import argparse
import gzip
import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

DEPARTMENTS = ("sales", "billing", "support", "returns", "technical")
TOPICS = ("billing.refund", "billing.invoice", "order.status", "device.setup", "account.access", None)
CHANNELS = ("phone", "chat", "email", "visit", "portal")
OUTCOMES = ("resolved", "resolved", "unresolved", "transferred", "redirected", "pending", None)
START = datetime(2024, 1, 1, tzinfo=UTC)
STEADY_TOUCHES_A_YEAR = 1_000_000


def generate(touches: int, customers: int, seed: int, dirty: float = 0.0, steady: bool = False) -> Iterator[bytes]:
    """Yield ``touches`` touchpoint lines (plus a few control events) in time order over a year.

    ``steady``: each customer keeps the same person in each department and three cases,
    and touches come at a fixed rate (``STEADY_TOUCHES_A_YEAR``) however long that takes,
    so more touches mean more time and nothing else: the per-customer state stops growing.
    """
    rng = random.Random(seed)
    employees = {d: [f"{d[:3]}-{i:03d}" for i in range(max(2, customers // 400))] for d in DEPARTMENTS}
    span = 365 * 86400 * (touches / STEADY_TOUCHES_A_YEAR if steady else 1)
    step = span / touches
    departed: set[str] = set()
    for i in range(touches):
        at = START + timedelta(seconds=i * step)
        customer = f"cust-{rng.randrange(customers):07d}"
        department = rng.choice(DEPARTMENTS)
        staff = employees[department]
        roll = rng.random()
        if roll < 0.1:
            employee = None  # self-service
        elif steady or roll < 0.7:
            employee = staff[int(customer[5:]) % len(staff)]  # the customer's usual person there
        else:
            employee = rng.choice(staff)
        event: dict[str, Any] = {
            "event_id": f"tp-{seed}-{i:09d}",
            "occurred_at": at.isoformat(),
            "customer_id": customer,
            "channel": rng.choice(CHANNELS),
            "direction": "inbound" if rng.random() < 0.8 else "outbound",
            "department": department,
            "employee_id": employee,
        }
        topic = rng.choice(TOPICS)
        if topic is not None:
            event["topic"] = topic
        if rng.random() < 0.2:
            event["case_id"] = f"case-{customer[5:]}-{rng.randrange(3)}" if steady else f"case-{rng.randrange(customers * 2)}"
        outcome = rng.choice(OUTCOMES)
        if outcome is not None:
            event["outcome"] = outcome
        if outcome in ("transferred", "redirected"):
            event["transferred_to_department"] = rng.choice(DEPARTMENTS)
        if rng.random() < 0.3:
            event["csat"] = rng.randint(1, 5)
        if rng.random() < 0.05:
            event["kind"] = "purchase"
            event["revenue"] = round(rng.uniform(5, 500), 2)
        line = orjson.dumps(event)
        yield line
        roll = rng.random()
        if roll < dirty:
            yield line  # a duplicate delivery
        elif roll < 2 * dirty:
            yield line[: len(line) // 2]  # a truncated, malformed message
        if i % 5000 == 4999:
            yield from _control_events(rng, at, seed, i, customers, employees, departed)


def _control_events(
    rng: random.Random, at: datetime, seed: int, i: int, customers: int,
    employees: dict[str, list[str]], departed: set[str],
) -> Iterator[bytes]:
    customer = f"cust-{rng.randrange(customers):07d}"
    department = rng.choice(DEPARTMENTS)
    employee = rng.choice(employees[department])
    stamp = at.isoformat()
    yield orjson.dumps({"type": "customer_churned", "event_id": f"ch-{seed}-{i}", "occurred_at": stamp, "customer_id": customer})
    yield orjson.dumps({"type": "owner_pinned", "event_id": f"pin-{seed}-{i}", "occurred_at": stamp, "customer_id": customer, "employee_id": employee})
    if rng.random() < 0.3 and employee not in departed:
        departed.add(employee)
        yield orjson.dumps({"type": "employee_departed", "event_id": f"dep-{seed}-{i}", "occurred_at": stamp, "employee_id": employee})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--touches", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dirty", type=float, default=0.0, help="share of duplicates and of malformed lines")
    parser.add_argument("--out", default="-")
    args = parser.parse_args()
    out = sys.stdout.buffer if args.out == "-" else (gzip.open(args.out, "wb") if args.out.endswith(".gz") else open(args.out, "wb"))  # noqa: SIM115 (closed by the with below)
    with out:
        for line in generate(args.touches, args.customers, args.seed, args.dirty):
            out.write(line + b"\n")


if __name__ == "__main__":
    main()
