"""Repeat contacts (SPEC §5): an inbound touch soon after an earlier touch with the same key."""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass


@dataclass(slots=True)  # not frozen: see the docstring of ledger/records.py
class Repeat:
    previous_event_id: str
    gap_seconds: float


_FORGET_FROM = 4
"""Touches of a key before forgetting is first tried (with a finite horizon); then at every power of two."""


class _KeyTouches:
    """One key's touches in time order (equal times in arrival order)."""

    __slots__ = ("event_ids", "times")

    def __init__(self, t: float, event_id: str) -> None:
        self.times = array("d", (t,))
        self.event_ids = [event_id]

    def forget_before(self, before: float) -> None:
        at = bisect_left(self.times, before)
        del self.times[:at]
        del self.event_ids[:at]


class RepeatIndex:
    """Every touch of a customer per key (``case:``/``topic:``), in time order.

    A late touch (older than touches already seen) is judged against the touches
    that arrived before it, however old, so every touch is kept: 16 bytes and its
    event id.  A window's worth would do for touches in time order only.  A key
    touched once (most cases are) is kept as a bare ``(time, event_id)``: 80 bytes
    against ~180 for the arrays.  With a finite ``horizon_seconds`` a key forgets the
    touches more than the horizon and a window older than its newest, which no event
    within the horizon can repeat.
    """

    __slots__ = ("by_key",)

    def __init__(self) -> None:
        self.by_key: dict[str, _KeyTouches | tuple[float, str]] = {}

    def observe(
        self, key: str, t: float, event_id: str, *, may_repeat: bool, window_seconds: float,
        horizon_seconds: float = math.inf,
    ) -> Repeat | None:
        """Record a touch; return the repeat it makes, if ``may_repeat`` and one applies.

        ``may_repeat`` is false for outbound touches and for the receiving leg of a
        transfer.  The previous touch is the latest one at or before ``t`` and at most
        one window before it (ties: the one that arrived last).
        """
        touches = self.by_key.get(key)
        if touches is None:
            self.by_key[key] = (t, event_id)
            return None
        if isinstance(touches, tuple):
            touches = self.by_key[key] = _KeyTouches(*touches)
        times = touches.times
        at = len(times) if t >= times[-1] else bisect_right(times, t)
        repeat = None
        if may_repeat and at:
            gap = t - times[at - 1]
            if gap <= window_seconds:
                repeat = Repeat(touches.event_ids[at - 1], gap)
        if at == len(times):
            times.append(t)
            touches.event_ids.append(event_id)
        else:
            times.insert(at, t)
            touches.event_ids.insert(at, event_id)
        size = len(times)
        if size >= _FORGET_FROM and not size & (size - 1) and horizon_seconds != math.inf:
            touches.forget_before(times[-1] - horizon_seconds - window_seconds)
        return repeat
