"""Stream a simulated company's events as JSONL lines, in time order, deterministic per seed.

An event-driven simulation: a heap holds each customer's next issue, the touches of
issues under way, the staff departures and holidays, so memory grows with customers, never
with days or events.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from math import log
from typing import Any

import orjson

from simulator.company import (
    CHANNELS,
    DEPARTMENTS,
    PERSONAL,
    SILOED,
    TOPIC_NAMES,
    TOPICS,
    Settings,
    Staff,
)
from simulator.dirt import Dirt

DAY = 86400.0
HOUR = 3600.0
MINUTE = 60.0
MONTH = 30.44 * DAY


KINDS = ("inquiry", "inquiry", "complaint", "other")
CHANNEL_COUNT = len(CHANNELS)
OTHER_DEPARTMENTS = {home: tuple(d for d in DEPARTMENTS if d != home) for home in DEPARTMENTS}


def pick(rng: random.Random, options: tuple[str, ...]) -> str:
    """``rng.choice``, about twice as fast (the simulator's hottest call)."""
    return options[int(rng.random() * len(options))]


class Customer:
    __slots__ = ("checked_in", "churned", "id", "issues", "last_handler", "person", "style")

    def __init__(self, cid: str, style: str, person: str | None) -> None:
        self.id = cid
        self.style = style
        self.person = person
        self.issues = 0
        self.last_handler: str | None = None
        self.checked_in = False
        self.churned = False


class CheckIn:
    """A check-in on ``customer`` planned for later (it does not happen if they have left by then)."""

    __slots__ = ("customer",)

    def __init__(self, customer: Customer) -> None:
        self.customer = customer


class Holiday:
    """An employee's holiday, ``[start, back)`` in whole seconds of the period; ``announced``: ``employee_away``
    says when it ends (``until``), else an ``employee_returned`` does.  Planned before the period starts, so
    that touches planned ahead (an issue's later legs) already go to whoever will be there."""

    __slots__ = ("announced", "back", "employee", "start")

    def __init__(self, employee: str, start: float, back: float, announced: bool) -> None:
        self.employee = employee
        self.start = start
        self.back = back
        self.announced = announced


class Simulation:
    """One region of the company: its staff and its customers (every ``regions``-th one)."""

    def __init__(self, settings: Settings, region: int = 0) -> None:
        self.s = settings
        self.region = region
        self.effects = settings.effects
        self.rng = random.Random(f"company {settings.seed}, region {region}")
        self.first_customer, self.customer_step = region, settings.regions
        self.staff = Staff(len(range(region, settings.customers, settings.regions)), self.rng, f"r{region}-")
        self.end = settings.days * DAY
        self.mean_gap = MONTH / settings.issues_per_month
        self.heap: list[tuple[float, int, Any]] = []
        self.order = 0
        self.ids = 0
        self.prefix = f"s{settings.seed}-r{region}-"
        self.customers: dict[str, Customer] = {}
        self.owners_of: dict[str, set[str]] = {}
        self.departed: set[str] = set()
        self.holidays: dict[str, Holiday] = {}
        # Holidays draw from their own stream, so that adding them left the rest of the company as it was.
        self.holiday_rng = random.Random(f"company {settings.seed}, region {region}, holidays")

    # --- scheduling -------------------------------------------------------------------

    def _at(self, t: float, item: Any) -> None:
        if t < self.end:
            self.order += 1
            heapq.heappush(self.heap, (t, self.order, item))

    def _next_issue(self, customer: Customer, now: float) -> None:
        # rng.expovariate(rate), written out: the simulator's second hottest call.
        self._at(now - log(1.0 - self.rng.random()) * self.mean_gap, customer)

    def _event_id(self) -> str:
        self.ids += 1
        return f"{self.prefix}{self.ids}"

    # --- the company ------------------------------------------------------------------

    def _setup(self) -> None:
        rng, s = self.rng, self.s
        for i in range(self.first_customer, s.customers, self.customer_step):
            style = PERSONAL if rng.random() < s.personal_share else SILOED
            person = self.staff.pick(rng.choice(DEPARTMENTS), PERSONAL) if style == PERSONAL else None
            customer = Customer(f"c{i:06d}", style, person)
            self.customers[customer.id] = customer
            if person:
                self.owners_of.setdefault(person, set()).add(customer.id)
            # Customers join over the first half of the period.
            self._next_issue(customer, rng.uniform(0, self.end / 2))
        for employee in self.staff.everyone():
            if rng.random() < s.leave_share:
                self._at(rng.uniform(0, self.end), employee)
        holidays = self.holiday_rng
        for employee in self.staff.everyone():
            if holidays.random() < s.holiday_share:
                start = float(int(holidays.uniform(0, self.end)))
                back = start + int(holidays.uniform(5, 15) * DAY)
                holiday = self.holidays[employee] = Holiday(
                    employee, start, back, holidays.random() < s.announced_holiday_share
                )
                self._at(start, holiday)

    def _away(self, employee: str, t: float) -> bool:
        holiday = self.holidays.get(employee)
        return holiday is not None and holiday.start <= t < holiday.back

    def _present(self, employee: str, t: float, department: str, style: str) -> str:
        """``employee``, or when they are on holiday at ``t`` a colleague of their team who is not."""
        if not self._away(employee, t):
            return employee
        present = [e for e in self.staff.teams[(department, style)] if not self._away(e, t)]
        return present[int(self.holiday_rng.random() * len(present))] if present else employee

    def _holiday(self, holiday: Holiday) -> dict[str, Any] | None:
        """The employee goes away (None: they have left the company meanwhile)."""
        employee = holiday.employee
        if employee in self.departed:
            return None
        away: dict[str, Any] = {"type": "employee_away", "event_id": self._event_id(), "employee_id": employee}
        if holiday.announced:
            away["until"] = datetime.fromtimestamp(self.s.start.timestamp() + holiday.back, UTC)
        else:
            self._at(holiday.back, {"type": "employee_returned", "event_id": self._event_id(),
                                    "occurred_at": holiday.back, "employee_id": employee})
        return away

    def _touch(
        self, t: float, c: Customer, department: str, employee: str | None, direction: str, kind: str,
        key: dict[str, str],
    ) -> dict[str, Any]:
        self.ids += 1
        touch = {"event_id": f"{self.prefix}{self.ids}", "occurred_at": t, "customer_id": c.id,
                 "department": department, "employee_id": employee, "channel": CHANNELS[int(self.rng.random() * CHANNEL_COUNT)],
                 "direction": direction, "kind": kind}
        touch.update(key)
        return touch

    def _issue(self, c: Customer, t: float) -> dict[str, Any]:
        """Plan one issue's touches, then whether the customer leaves after it.

        Returns the first touch, which happens now; the later ones go on the heap.
        """
        rng, effects = self.rng, self.effects
        c.issues += 1
        topic = pick(rng, TOPIC_NAMES)
        key = {"topic": topic, "case_id": f"{c.id}-{c.issues}"} if rng.random() < 0.8 else {"topic": topic}
        purchase = topic == "order.new" and rng.random() < 0.6
        kind = "purchase" if purchase else pick(rng, KINDS)
        if c.style == PERSONAL:
            touches, silo, repeat = self._personal(c, t, key, kind), False, False
        else:
            touches, silo, repeat = self._siloed(c, t, TOPICS[topic], key, kind)
        warm = silo and touches[0].get("context_passed") is True
        last = touches[-1]
        # Triangular noise with a standard deviation of about 0.6.
        score = effects.base_csat + effects.csat_per_silo_handoff * silo + effects.csat_per_repeat * repeat \
            + 1.5 * (rng.random() - rng.random())
        if rng.random() < 0.4:
            last["csat"] = min(5, max(1, round(score)))
        if purchase:
            last["revenue"] = round(rng.lognormvariate(4, 0.8), 2)
        mood = max(-0.8, min(0.8, (score - 3) / 2))
        heap, end = self.heap, self.end
        for x in touches:
            x["sentiment"] = round(mood + 0.4 * (rng.random() - 0.5), 2)
        for x in touches[1:]:
            if x["occurred_at"] < end:
                self.order += 1
                heapq.heappush(heap, (x["occurred_at"], self.order, x))
        if c.issues == 1 and c.style == PERSONAL and rng.random() < self.s.pin_share:
            self._at(t + 1, {"type": "owner_pinned", "event_id": self._event_id(), "occurred_at": t + 1,
                             "customer_id": c.id, "employee_id": c.person})
        done = last["occurred_at"]
        handlers = [x["employee_id"] for x in touches if x["employee_id"] is not None]
        c.last_handler = handlers[-1] if handlers else c.last_handler
        checked_in, c.checked_in = c.checked_in, False
        if rng.random() < effects.churn_probability(silo, repeat, checked_in, warm):
            c.churned = True
            when = done + rng.uniform(1, 10) * DAY
            self._at(when, {"type": "customer_churned", "event_id": self._event_id(), "occurred_at": when,
                            "customer_id": c.id})
        else:
            self._next_issue(c, done)
            if rng.random() < effects.check_in_rate(c.style):
                self._at(done + rng.uniform(20, 60) * DAY, CheckIn(c))
        return touches[0]

    def _check_in(self, check_in: CheckIn, t: float) -> dict[str, Any] | None:
        """The person (or whoever last handled a siloed customer) reaches out; None when the customer has left."""
        c = check_in.customer
        employee = c.person if c.style == PERSONAL else c.last_handler
        if c.churned or employee is None or employee in self.departed or self._away(employee, t):
            return None
        c.checked_in = True
        touch = self._touch(t, c, self.staff.department[employee], employee, "outbound", "outreach", {"topic": "check_in"})
        touch["outcome"] = "resolved"
        return touch

    def _personal(self, c: Customer, t: float, key: dict[str, str], kind: str) -> list[dict[str, Any]]:
        """Their person takes it (a colleague when busy or on holiday), and follows up until it is resolved."""
        rng = self.rng
        assert c.person is not None
        department = self.staff.department[c.person]
        employee = c.person if rng.random() < 0.9 else self.staff.pick(department, PERSONAL)
        employee = self._present(employee, t, department, PERSONAL)
        first = self._touch(t, c, department, employee, "inbound", kind, key)
        if kind == "purchase" or rng.random() < 0.8:
            first["outcome"] = "resolved"
            return [first]
        first["outcome"] = "pending"
        later = t + rng.uniform(2 * HOUR, DAY)
        follow = self._touch(later, c, department, self._present(c.person, later, department, PERSONAL), "outbound",
                             "follow_up", key)
        follow["outcome"] = "resolved"
        return [first, follow]

    def _siloed(
        self, c: Customer, t: float, home: str, key: dict[str, str], kind: str
    ) -> tuple[list[dict[str, Any]], bool, bool]:
        """Whoever picks up; wrong departments transfer or redirect; unresolved issues make people call again.

        Returns the touches, whether a silo handoff happened, and whether the customer had to come back
        (a repeat contact: after a redirect or an unresolved touch, not after a transfer).
        """
        rng = self.rng
        touches: list[dict[str, Any]] = []
        silo = repeat = False
        department = home if rng.random() < 0.55 else pick(rng, OTHER_DEPARTMENTS[home])
        for attempt in range(4):
            if touches and touches[-1]["outcome"] != "transferred":
                repeat = True
            employee = self._present(self.staff.pick(department, SILOED), t, department, SILOED)
            touch = self._touch(t, c, department, employee, "inbound", kind, key)
            touches.append(touch)
            if department != home:
                silo = True
                transferred = rng.random() < 0.6
                touch["outcome"] = "transferred" if transferred else "redirected"
                if transferred:
                    touch["context_passed"] = rng.random() < self.effects.warm_transfer_rate
                touch["transferred_to_department"] = department = home
                t += rng.uniform(2, 10) * MINUTE if transferred else rng.uniform(4 * HOUR, 2 * DAY)
            elif kind == "purchase" or attempt == 3 or rng.random() < 0.6:
                touch["outcome"] = "resolved"
                break
            else:
                touch["outcome"] = "unresolved"
                t += rng.uniform(1, 3) * DAY
        return touches, silo, repeat

    def _departure(self, employee: str, t: float) -> dict[str, Any]:
        self.departed.add(employee)
        hire = self.staff.replace(employee)
        for cid in self.owners_of.pop(employee, set()):
            c = self.customers[cid]
            c.person = hire
            self.owners_of.setdefault(hire, set()).add(cid)
        return {"type": "employee_departed", "event_id": self._event_id(), "occurred_at": t, "employee_id": employee}

    # --- the stream -------------------------------------------------------------------

    def events(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """Events in time order with their Unix second; ``occurred_at`` a datetime (orjson writes it as RFC 3339)."""
        self._setup()
        start = self.s.start.timestamp()
        heap, pop = self.heap, heapq.heappop
        utc, stamp, issue = UTC, datetime.fromtimestamp, self._issue
        while heap:
            t, _, item = pop(heap)
            if type(item) is Customer:
                event = issue(item, t)
            elif type(item) is CheckIn:
                checked = self._check_in(item, t)
                if checked is None:
                    continue
                event = checked
            elif type(item) is Holiday:
                away = self._holiday(item)
                if away is None:
                    continue
                event = away
            else:
                event = item if type(item) is dict else self._departure(item, t)
            second = int(start + t)
            event["occurred_at"] = stamp(second, utc)
            yield second, event


def region_lines(settings: Settings, region: int) -> Iterator[tuple[int, bytes]]:
    """One region's JSONL lines (without newlines) with their Unix second, in time order,
    bad input mixed in as configured."""
    dirt = Dirt(settings, random.Random(f"company {settings.seed}, region {region}, delivery"))
    dumps, roll, share = orjson.dumps, dirt.rng.random, dirt.share
    for second, event in Simulation(settings, region).events():
        raw = dumps(event)
        if "type" in event or (chance := roll()) >= share:
            yield second, raw
        else:
            for line in dirt.deliver(raw, event, chance):
                yield second, line
