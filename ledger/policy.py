"""Every tunable number of the SPEC in one value object (defaults are the SPEC's)."""

from __future__ import annotations

from dataclasses import dataclass

DAY = 86400.0
HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class Policy:
    half_life_days: float = 180.0
    """H of the affinity decay (§3)."""
    stability_ratio: float = 2.0
    """A challenger needs at least this multiple of the owner's affinity (§3 rule 2)."""
    stability_margin: float = 2.0
    """... and at least this much more than the owner's affinity (§3 rule 2)."""
    min_days_between_changes: float = 30.0
    """No affinity change sooner than this after the last owner change (§3 rule 2)."""
    journey_window_hours: float = 72.0
    """A topic journey stays open this long after its last unresolved touch (§4)."""
    repeat_window_days: float = 7.0
    """An inbound touch within this long of an earlier touch with the same key repeats it (§5)."""
    churn_inactivity_days: float = 180.0
    """With no churn event, a customer silent this long before ``as_of`` churned (§6)."""

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


DEFAULT_POLICY = Policy()
