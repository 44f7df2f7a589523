"""The peer: SPEC §3 owner rules 1, 2 and 4 and §4 journeys and handoffs as a Quix Streams application.

What a team might build instead of SPOC Ledger: a stateful Quix Streams app (RocksDB state with its
changelog topic, at-least-once) over the same input topic, emitting owner changes and handoffs to
an output topic.  It is deliberately lighter than ours, so ratios against it flatter the peer:

- rule 3 (departures) is left out: a departure concerns every customer its employee owns, and Quix's
  state is reachable only under the key of the message being processed;
- affinities decay from each employee's latest touch (events taken in arrival order: no exact
  recomputation for late events), and input is only parsed, not validated against SPEC §1;
- no ledger store, no analytics tables, no dead-letter topic (unparsable messages are counted, skipped).

    python -m benchmarks.peers.quix_owner BOOTSTRAP TOPIC GROUP STATE_DIR IDLE_SECONDS

Prints one JSON line: messages processed, owner changes, handoffs, and events/s from the first to the
last message (start-up, rebalance and the idle wait excluded), and peak RSS.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from quixstreams import Application, State

HALF_LIFE_S = 180 * 86400.0
STABILITY_S = 30 * 86400.0
JOURNEY_GAP_S = 72 * 3600.0
PRODUCTIVE = {"resolved"}
NO_CONNECTION = {"transferred", "redirected", "abandoned"}
STATE_KEYS = ("affinities", "owner", "since", "pinned", "journeys")


def weight(touch: dict[str, Any]) -> float:
    csat = touch.get("csat")
    if touch.get("outcome") in PRODUCTIVE or touch.get("kind") == "purchase" or (csat is not None and csat >= 4):
        w = 1.0
    elif touch.get("outcome") in NO_CONNECTION:
        w = 0.0
    else:
        w = 0.2
    return w - 0.5 if csat is not None and csat <= 2 else w


def affinity(entry: list[float], at: float) -> float:
    """``entry`` is [affinity at the employee's latest touch, that touch's time]."""
    value, since = entry
    return value * 2 ** (-(at - since) / HALF_LIFE_S)


class Counters:
    def __init__(self) -> None:
        self.messages = self.unparsable = self.owner_changes = self.handoffs = 0
        self.first = self.last = 0.0


def owner_rules(touch: dict[str, Any], at: float, state: State[str, Any], out: dict[str, Any]) -> None:
    employee = touch.get("employee_id")
    affinities: dict[str, list[float]] = state.get("affinities", {})
    owner, since, pinned = state.get("owner"), state.get("since", 0.0), state.get("pinned", False)
    if employee is not None:
        w = weight(touch)
        entry = affinities.get(employee)
        value = affinity(entry, at) if entry else 0.0
        affinities[employee] = [value + w, at]
        state.set("affinities", affinities)
        if not pinned and owner is None and w >= 1.0:
            owner, since = employee, at
            out["owner_changed"] = {"owner": owner, "reason": "first_productive_contact"}
    if not pinned and owner is not None and at - since >= STABILITY_S:
        held = affinity(affinities[owner], at) if owner in affinities else 0.0
        ranked = sorted(
            ((affinity(e, at), e[1], name) for name, e in affinities.items() if name != owner),
            key=lambda c: (-c[0], -c[1], c[2]),
        )
        if ranked and ranked[0][0] >= max(2 * held, held + 2.0):
            owner, since = ranked[0][2], at
            out["owner_changed"] = {"owner": owner, "reason": "affinity", "affinity": ranked[0][0], "previous": held}
    state.set("owner", owner)
    state.set("since", since)


def journey_step(touch: dict[str, Any], at: float, state: State[str, Any], out: dict[str, Any]) -> None:
    journeys: dict[str, dict[str, Any]] = state.get("journeys", {})
    case = touch.get("case_id")
    key = f"case:{case}" if case is not None else f"topic:{touch.get('topic') or 'general'}"
    previous = journeys.get(key)
    if previous is not None and case is None and (at - previous["at"] > JOURNEY_GAP_S or previous["outcome"] == "resolved"):
        previous = None
    department, employee = touch.get("department"), touch.get("employee_id")
    if previous is not None and (previous["employee"] != employee or previous["department"] != department):
        cross = previous["department"] != department
        kind = {"transferred": "transfer", "redirected": "redirect"}.get(previous["outcome"], "bounce")
        out["handoff"] = {
            "journey": key, "kind": kind, "cross_department": cross, "reexplained": previous["employee"] != employee,
            "ping_pong": cross and department in previous["departments"], "gap_seconds": at - previous["at"],
        }
    departments = previous["departments"] if previous is not None else []
    if department not in departments:
        departments = [*departments, department]
    journeys[key] = {"at": at, "outcome": touch.get("outcome"), "employee": employee, "department": department,
                     "departments": departments}
    state.set("journeys", journeys)


def build(bootstrap: str, topic: str, group: str, state_dir: Path, counters: Counters) -> Application:
    app = Application(
        broker_address=bootstrap, consumer_group=group, auto_offset_reset="earliest", state_dir=str(state_dir),
        use_changelog_topics=True, processing_guarantee="at-least-once",
    )
    source = app.topic(topic, value_deserializer="bytes", key_deserializer="str")
    sink = app.topic(f"{group}-decisions", value_serializer="json")

    def process(value: bytes, state: State[str, Any]) -> dict[str, Any]:
        now = time.perf_counter()
        counters.first = counters.first or now
        counters.last = now
        counters.messages += 1
        out: dict[str, Any] = {}
        try:
            event = orjson.loads(value)
            at = datetime.fromisoformat(event["occurred_at"]).timestamp()
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            counters.unparsable += 1
            return out
        kind = event.get("type", "touchpoint")
        if kind == "owner_pinned":
            state.set("owner", event.get("employee_id"))
            state.set("since", at)
            state.set("pinned", True)
        elif kind == "owner_unpinned":
            state.set("pinned", False)
        elif kind == "customer_erased":
            for name in STATE_KEYS:
                state.delete(name)
        elif kind == "touchpoint":
            owner_rules(event, at, state, out)
            journey_step(event, at, state, out)
        counters.owner_changes += "owner_changed" in out
        counters.handoffs += "handoff" in out
        return out

    sdf = app.dataframe(source)
    sdf = sdf.filter(lambda value, key, timestamp, headers: key is not None, metadata=True)  # departures: no key
    sdf = sdf.apply(process, stateful=True)
    sdf = sdf.filter(lambda out: bool(out))
    sdf.to_topic(sink)
    return app


def main() -> None:
    bootstrap, topic, group, state_dir, idle = sys.argv[1:6]
    counters = Counters()
    app = build(bootstrap, topic, group, Path(state_dir), counters)
    app.run(timeout=float(idle), collect=False)
    peak = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM"))
    rate = (counters.messages - 1) / (counters.last - counters.first) if counters.messages > 1 else 0.0
    print(orjson.dumps({
        "messages": counters.messages, "unparsable": counters.unparsable, "owner_changes": counters.owner_changes,
        "handoffs": counters.handoffs, "events_per_s": rate, "peak_rss_mb": peak / 1024,
    }).decode())


if __name__ == "__main__":
    main()
