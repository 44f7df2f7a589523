"""Touch weights and decayed affinity of an employee for a customer (SPEC §3)."""

from __future__ import annotations

import math
from array import array

from schemas.events import Touchpoint

PRODUCTIVE = 1.0
NO_CONNECTION = 0.0
ENGAGED = 0.2
LOW_CSAT_PENALTY = -0.5
_NO_CONNECTION_OUTCOMES = frozenset({"transferred", "redirected", "abandoned"})
_FOLD_FROM = 8
"""History entries (two a touch) before folding is first tried; then at every power of two."""


def is_productive(touch: Touchpoint) -> bool:
    csat = touch.csat
    return touch.outcome == "resolved" or touch.kind == "purchase" or (csat is not None and csat >= 4)


def touch_weight(touch: Touchpoint) -> float:
    if is_productive(touch):
        weight = PRODUCTIVE
    elif touch.outcome in _NO_CONNECTION_OUTCOMES:
        weight = NO_CONNECTION
    else:
        weight = ENGAGED
    if touch.csat is not None and touch.csat <= 2:
        weight += LOW_CSAT_PENALTY
    return weight


class Affinity:
    """A(c, e, t) = sum of w_i * 2^(-(t - t_i) / H) over touches at or before t.

    The running value is kept anchored at the latest touch, so the usual query
    (t at or after every touch so far) costs one power.  From the second touch on,
    the touch times and weights are also kept, compactly, so that a late event
    (arriving after touches that happened later than it) sees only the touches at
    or before its time; a single touch is its own history (anchor, value), and most
    pairs of customer and employee never get a second one.  With a finite ``horizon``
    the touches older than the newest one minus the horizon are folded into one
    (see :meth:`_fold`), so the history stays bounded.
    """

    __slots__ = ("anchor", "department", "history", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.anchor = float("-inf")
        self.history: array[float] | None = None  # t0, w0, t1, w1, ... once there are two touches
        self.department: str | None = None
        """The department of the latest touch by time (SPEC §9: where a route sends the customer)."""

    @property
    def last_touch(self) -> float:
        return self.anchor

    def add(self, t: float, weight: float, half_life: float, horizon: float = math.inf) -> None:
        if self.anchor != float("-inf"):
            history = self.history
            if history is None:
                history = self.history = array("d", (self.anchor, self.value))
            history.append(t)
            history.append(weight)
            size = len(history)
            if size >= _FOLD_FROM and not size & (size - 1) and horizon != math.inf:
                self._fold(max(t, self.anchor) - horizon, half_life)
        if t >= self.anchor:
            if self.value:
                self.value = self.value * 2.0 ** (-(t - self.anchor) / half_life) + weight
            else:
                self.value = weight
            self.anchor = t
        else:
            self.value += weight * 2.0 ** (-(self.anchor - t) / half_life)

    def at(self, t: float, half_life: float) -> float:
        if t >= self.anchor:
            if t == self.anchor or not self.value:
                return self.value
            return self.value * float(2.0 ** (-(t - self.anchor) / half_life))
        history = self._touches()
        return sum(
            w * float(2.0 ** (-(t - ti) / half_life)) for ti, w in zip(history[::2], history[1::2]) if ti <= t
        )

    def last_touch_at_or_before(self, t: float) -> float:
        if t >= self.anchor:
            return self.anchor
        return max((ti for ti in self._touches()[::2] if ti <= t), default=float("-inf"))

    def _fold(self, before: float, half_life: float) -> None:
        """Replace the touches before ``before`` with one at the latest of them, weighing their decayed sum.

        At any time from that touch on, it adds exactly what they did, so events no
        older than ``before`` are still judged exactly; an even older event no longer
        sees the folded touches that happened before it.
        """
        history = self.history
        assert history is not None
        touches = list(zip(history[::2], history[1::2]))
        old = [(ti, w) for ti, w in touches if ti < before]
        if len(old) < 2:
            return
        latest = max(ti for ti, _ in old)
        folded = array("d", (latest, sum(w * 2.0 ** (-(latest - ti) / half_life) for ti, w in old)))
        for ti, w in touches:
            if ti >= before:
                folded.append(ti)
                folded.append(w)
        self.history = folded

    def _touches(self) -> array[float]:
        return self.history if self.history is not None else array("d", (self.anchor, self.value))
