"""The simulated company: its settings, its staff, and the true effects it is built on.

docs/simulator.md explains the model; ``Effects`` holds the numbers a test checks
the analytics recover.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

DEPARTMENTS = ("sales", "billing", "support", "technical", "returns")
# Each topic belongs to the department that can resolve it.
TOPICS = {
    "order.new": "sales", "order.status": "sales",
    "billing.invoice": "billing", "billing.refund": "billing",
    "device.setup": "technical", "device.fault": "technical",
    "account.access": "support", "account.change": "support",
    "return.request": "returns",
}
TOPIC_NAMES = tuple(TOPICS)
CHANNELS = ("phone", "phone", "phone", "chat", "chat", "email", "visit", "portal")
PERSONAL, SILOED = "personal", "siloed"


@dataclass(frozen=True, slots=True)
class Effects:
    """The true causal effects of the simulation (per journey, multiplicative).

    After each journey a customer leaves (``customer_churned``) with probability
    ``base_churn × silo_churn_ratio^[journey had a silo handoff the customer re-explained]
    × warm_silo_churn_ratio^[journey's silo handoff was a warm transfer] × repeat_churn_ratio^[journey had a repeat
    contact] × check_in_churn_ratio^[someone checked in on them since their previous journey]``.

    A siloed team's transfer passes the context along (``context_passed``: a warm transfer, so the next person
    needs no re-explaining) with probability ``warm_transfer_rate``; a redirect never does.

    After a journey that did not end in churn, the customer's person (personal service) or whoever last
    handled them (siloed) checks in (an outbound ``outreach`` touch, topic ``check_in``) 20–60 days later
    with probability ``check_in_rate_personal`` or ``check_in_rate_siloed``.
    """

    base_churn: float = 0.012
    silo_churn_ratio: float = 3.0
    warm_silo_churn_ratio: float = 1.5
    warm_transfer_rate: float = 0.5
    repeat_churn_ratio: float = 2.0
    check_in_churn_ratio: float = 0.5
    check_in_rate_personal: float = 0.7
    check_in_rate_siloed: float = 0.15
    base_csat: float = 4.5
    csat_per_silo_handoff: float = -0.9
    csat_per_repeat: float = -0.6

    def churn_probability(self, silo: bool, repeat: bool, checked_in: bool = False, warm: bool = False) -> float:
        """``warm``: the silo handoff was a warm transfer."""
        silo_ratio = (self.warm_silo_churn_ratio if warm else self.silo_churn_ratio) if silo else 1.0
        return (
            self.base_churn * silo_ratio * (self.repeat_churn_ratio if repeat else 1.0)
            * (self.check_in_churn_ratio if checked_in else 1.0)
        )

    def check_in_rate(self, style: str) -> float:
        return self.check_in_rate_personal if style == PERSONAL else self.check_in_rate_siloed


@dataclass(frozen=True, slots=True)
class Settings:
    customers: int = 2000
    days: int = 365
    seed: int = 1
    personal_share: float = 0.5
    """Share of customers served by teams that give them one person who follows up."""
    issues_per_month: float = 1.5
    leave_share: float = 0.1
    """Share of employees who leave during the period (each replaced by a new hire)."""
    holiday_share: float = 0.6
    """Share of employees who take a holiday (5–15 days) during the period: away, colleagues stand in."""
    announced_holiday_share: float = 0.5
    """Share of holidays announced with their end (``until``); the others end with ``employee_returned``."""
    pin_share: float = 0.03
    malformed_share: float = 0.005
    duplicate_share: float = 0.01
    start: datetime = datetime(2025, 1, 1, tzinfo=UTC)
    regions: int = 2
    """Independent regions (own staff, own customers), simulated side by side in processes."""
    effects: Effects = field(default_factory=Effects)


class Staff:
    """Each department's employees in both styles of team; leavers are replaced by new hires."""

    def __init__(self, customers: int, rng: random.Random, prefix: str = "") -> None:
        self.rng = rng
        self.prefix = prefix
        size = max(3, customers // 250)
        self.teams: dict[tuple[str, str], list[str]] = {
            (d, style): [f"{prefix}{d[:3]}-{style[0]}{i:03d}" for i in range(size)]
            for d in DEPARTMENTS for style in (PERSONAL, SILOED)
        }
        self.hired = dict.fromkeys(self.teams, size)
        self.department = {e: d for (d, _), members in self.teams.items() for e in members}

    def everyone(self) -> list[str]:
        return [e for members in self.teams.values() for e in members]

    def pick(self, department: str, style: str) -> str:
        members = self.teams[(department, style)]
        return members[int(self.rng.random() * len(members))]

    def replace(self, employee: str) -> str:
        """``employee`` leaves; returns the new hire who takes their place."""
        department = self.department[employee]
        key = next(k for k, members in self.teams.items() if employee in members)
        members = self.teams[key]
        hire = f"{self.prefix}{department[:3]}-{key[1][0]}{self.hired[key]:03d}"
        self.hired[key] += 1
        members[members.index(employee)] = hire
        self.department[hire] = department
        return hire
