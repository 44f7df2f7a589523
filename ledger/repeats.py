"""Repeat contacts (SPEC §5): an inbound touch soon after an earlier touch with the same key."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)  # not frozen: see the docstring of ledger/core.py
class Repeat:
    previous_event_id: str
    gap_seconds: float


class RepeatIndex:
    """Recent touches per key (``case:``/``topic:``), kept for one repeat window."""

    __slots__ = ("recent", "_sweep_at")

    def __init__(self) -> None:
        self.recent: dict[str, list[tuple[float, str]]] = {}
        self._sweep_at = 8  # sweep stale keys when this many are held

    def observe(
        self, key: str, t: float, event_id: str, *, may_repeat: bool, window_seconds: float
    ) -> Repeat | None:
        """Record a touch; return the repeat it makes, if ``may_repeat`` and one applies.

        ``may_repeat`` is false for outbound touches and for the receiving leg of a
        transfer.  The previous touch is the latest earlier touch at most one window
        before ``t`` (ties: the one that arrived last).
        """
        touches = self.recent.get(key)
        if touches is None:
            self.recent[key] = [(t, event_id)]
            if len(self.recent) >= self._sweep_at:
                self._sweep(t - window_seconds)
            return None
        if t >= touches[-1][0]:
            # In time order (the usual case): forget what no later touch can repeat.
            horizon = t - window_seconds
            stale = 0
            while stale < len(touches) and touches[stale][0] < horizon:
                stale += 1
            if stale:
                del touches[:stale]
        repeat = None
        if may_repeat:
            best: tuple[float, str] | None = None
            for touch in touches:
                if touch[0] <= t and t - touch[0] <= window_seconds and (best is None or touch[0] >= best[0]):
                    best = touch
            if best is not None:
                repeat = Repeat(best[1], t - best[0])
        touches.append((t, event_id))
        return repeat

    def _sweep(self, horizon: float) -> None:
        """Forget keys whose every touch is older than one window (no in-order touch can repeat them)."""
        self.recent = {k: v for k, v in self.recent.items() if max(v)[0] >= horizon}
        self._sweep_at = max(8, 2 * len(self.recent))
