"""The report's Wilson interval, written out by hand, against scipy's (a test-only dependency)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import binomtest

from reports.stats import Proportion, wilson_interval


@given(st.integers(min_value=1, max_value=100_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_interval_equals_scipys(case: tuple[int, int]) -> None:
    hits, total = case
    ci = binomtest(hits, total).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson_interval(hits, total) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_a_hand_computed_case() -> None:
    # 0 in 1: [0, z²/(1+z²)] with z = 1.959963984540054, i.e. [0, 0.7934506...].
    assert wilson_interval(0, 1) == pytest.approx((0.0, 0.793450685), abs=1e-9)
    assert Proportion(0, 0).interval is None
    assert Proportion(5, 10).interval == pytest.approx((0.236593, 0.763407), abs=1e-6)
