"""Rates with their uncertainty, so a small bucket is not over-read."""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

CONFIDENCE = 0.95
# The two-sided normal quantile for CONFIDENCE (1.959963984540054 at 95 %); projections/views.sql
# spells the same constant in its wilson_low/wilson_high macros.
_Z = NormalDist().inv_cdf(0.5 + CONFIDENCE / 2)


def wilson_interval(hits: int, total: int, z: float = _Z) -> tuple[float, float]:
    """The Wilson score interval of ``hits`` successes in ``total`` trials, clamped to [0, 1]."""
    p = hits / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True, slots=True)
class Proportion:
    """``hits`` out of ``total``, with the Wilson score interval at 95 % confidence."""

    hits: int
    total: int

    @property
    def rate(self) -> float | None:
        return self.hits / self.total if self.total else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson_interval(self.hits, self.total) if self.total else None
