"""Every tunable number of the SPEC in one value object (defaults are the SPEC's).

A ``msgspec`` struct, so a policy file decodes straight into it with the
constraints checked and unknown keys refused (``spoc/policy_file.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

DAY = 86400.0
HOUR = 3600.0

Positive = Annotated[float, msgspec.Meta(gt=0)]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]
TopicPrefix = Annotated[str, msgspec.Meta(min_length=1)]
Department = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class Policy(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    half_life_days: Positive = 180.0
    """H of the affinity decay (§3)."""
    stability_ratio: NonNegative = 2.0
    """A challenger needs at least this multiple of the owner's affinity (§3 rule 2)."""
    stability_margin: NonNegative = 2.0
    """... and at least this much more than the owner's affinity (§3 rule 2)."""
    min_days_between_changes: NonNegative = 30.0
    """No affinity change sooner than this after the last owner change (§3 rule 2)."""
    journey_window_hours: Positive = 72.0
    """A topic journey stays open this long after its last unresolved touch (§4)."""
    repeat_window_days: Positive = 7.0
    """An inbound touch within this long of an earlier touch with the same key repeats it (§5)."""
    churn_inactivity_days: Positive = 180.0
    """With no churn event, a customer silent this long before ``as_of`` churned (§6)."""
    check_in_days: Positive = 60.0
    """An owner's ``check_in`` follow-up falls due this long after its anchor (§8)."""
    follow_up_after_hours: Positive = 48.0
    """An ``after_issue`` follow-up falls due this long after the touch that went badly (§8)."""
    outcome_window_days: Positive = 90.0
    """A journey's or an owner change's outcome is read this long after it (§7)."""
    landmark_days: Positive = 90.0
    """Continuity survival is judged from this long after a customer's first owner (§7)."""
    home_departments: dict[TopicPrefix, Department] = msgspec.field(default_factory=dict)
    """Topic prefix → the department that should resolve it; the longest prefix wins (§7 ``help_first``)."""
    late_event_horizon_days: Positive | None = None
    """Not the SPEC's: how far behind a customer's newest touch an event may arrive and still be
    judged exactly.  Older touch history is folded, so memory stops growing with each touch;
    None (the default) keeps all of it, exact for any lateness (docs/ledger.md, "Late events")."""

    @property
    def half_life_seconds(self) -> float:
        return self.half_life_days * DAY

    @property
    def min_seconds_between_changes(self) -> float:
        return self.min_days_between_changes * DAY

    @property
    def journey_window_seconds(self) -> float:
        return self.journey_window_hours * HOUR

    @property
    def repeat_window_seconds(self) -> float:
        return self.repeat_window_days * DAY

    @property
    def late_event_horizon_seconds(self) -> float:
        return math.inf if self.late_event_horizon_days is None else self.late_event_horizon_days * DAY

    def as_dict(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self)

    def as_recorded(self) -> dict[str, str]:
        """Each setting as written to a record: what :meth:`changes_from` compares."""
        return {key: recorded_value(value) for key, value in self.as_dict().items()}

    def changes_from(self, recorded: Mapping[str, Any]) -> list[str]:
        """How this policy differs from a recorded one, as ``key old → new``.

        ``recorded`` holds values, or strings as :meth:`as_recorded` writes them; either way they
        compare as :func:`recorded_value` writes them.  A key the record lacks was recorded before
        that key existed, so under its default.
        """
        before = {
            key: recorded_value(recorded[key]) if key in recorded else default
            for key, default in DEFAULT_POLICY.as_recorded().items()
        }
        return [f"{key} {before[key]} → {value}" for key, value in self.as_recorded().items() if before[key] != value]


def recorded_value(value: Any) -> str:
    """A setting as records compare it: a number as :func:`recorded_number` writes it, a table
    (``home_departments``, or its record) as JSON with sorted keys."""
    if isinstance(value, str) and value.startswith("{"):
        value = msgspec.json.decode(value)
    if isinstance(value, Mapping):
        return msgspec.json.encode(dict(value), order="sorted").decode()
    return recorded_number(value)


def recorded_number(value: float | str | None) -> str:
    """A policy number as records compare it: ``repr`` of a float, so ``2`` and ``2.0`` in code and
    ``"2"`` and ``"2.0"`` in a record are one number."""
    return repr(None if value is None or value == "None" else float(value))


DEFAULT_POLICY = Policy()
