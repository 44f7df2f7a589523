"""Follow-ups (SPEC §8): the owner keeps in touch.

While a customer has an owner it has a ``check_in`` follow-up, anchored where the
owner period started and anew at each owner touch, and an ``after_issue`` one after
a touch by someone else that went badly.  A follow-up is *pending* until its
``due_at`` passes on one of the customer's events (then *open*, "due"); an owner
touch cancels the pending ones and closes the open ones as ``done``; an owner change
or a ``customer_churned`` cancels them and closes the open ones as ``dropped``.

The core calls :class:`FollowUpRules` at the three steps of one event (§8's order) and
gets each transition as a :class:`FollowUpFact`; the sinks keep them as rows and the
``follow_ups`` view reads the latest per follow-up.  With ``announce`` (the live
worker), it also says as soon as the stream's time passes a pending follow-up's due
time (:class:`Announcement`), from a heap of due times: no scan of the customers.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from hashlib import sha1

from ledger.journeys import Handoff
from ledger.policy import Policy
from ledger.records import Position
from ledger.relationship import NAMESPACE
from schemas.events import Touchpoint

CHECK_IN = "check_in"
AFTER_ISSUE = "after_issue"

# A follow-up's states, in the order one follow-up can take them.  Its rows record pending and how it ended;
# falling due (open) is not a row of its own (the view reads a pending one past its due time as open).
PENDING = "pending"
OPEN = "open"
DONE = "done"
DROPPED = "dropped"
CANCELLED = "cancelled"
"""A pending follow-up that ended before it was due: it never appears in ``follow_ups``."""

BAD_OUTCOMES = frozenset({"redirected", "abandoned"})


_NAMESPACE_BYTES = NAMESPACE.bytes


def follow_up_id(customer_id: str, kind: str, anchor_event_id: str) -> str:
    """UUID v5 (the ledger's namespace) of customer, kind and anchor event id, NUL-separated.

    ``uuid.uuid5`` computed inline (RFC 4122 §4.3: SHA-1 of namespace and name, version 5, variant 10):
    the library's UUID object took a tenth of a replay's core time; a test holds the two equal."""
    digest = bytearray(sha1(_NAMESPACE_BYTES + f"{customer_id}\x00{kind}\x00{anchor_event_id}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(slots=True)
class FollowUp:
    follow_up_id: str
    kind: str
    owner_id: str
    anchor_event_id: str
    journey_id: str | None
    due_at: datetime
    due_t: float


@dataclass(slots=True)
class FollowUpBook:
    """One customer's live follow-ups: at most one pending of each kind, any number open."""

    pending: list[FollowUp] = field(default_factory=list)
    open: list[FollowUp] = field(default_factory=list)


@dataclass(slots=True)  # not frozen: see the docstring of ledger/records.py
class FollowUpFact:
    """One transition of a follow-up, caused by the event at ``position``; ``step`` orders the
    transitions of one event for one customer (a follow-up may take several: pending → open → done),
    the same whichever other customers the stream holds."""

    follow_up: FollowUp
    customer_id: str
    status: str
    closed_at: datetime | None
    closed_event_id: str | None
    position: Position
    step: int


@dataclass(slots=True)
class Announcement:
    """For the live topic: a follow-up became due by the stream's time (``FollowUpDue``), or one the
    topic announced closed (``FollowUpDone`` / ``FollowUpDropped``)."""

    follow_up: FollowUp
    customer_id: str
    status: str
    """``open`` (due), ``done`` or ``dropped``."""
    at: datetime
    """The stream's time that passed the due time, or when it closed."""
    event_id: str | None
    """What closed it; None for a due."""
    position: Position


class FollowUpRules:
    """§8 over the books of one stream's customers; the transitions go to ``facts``."""

    def __init__(self, policy: Policy, book_of: Callable[[str], FollowUpBook | None], *, announce: bool = False) -> None:
        """``book_of``: a customer's book, None when it has none (for the heap's stale entries)."""
        self.check_in = timedelta(days=policy.check_in_days)
        self.after_issue = timedelta(hours=policy.follow_up_after_hours)
        self.book_of = book_of
        self.facts: list[FollowUpFact] = []
        self.announcements: list[Announcement] | None = [] if announce else None
        self.stream_t = float("-inf")
        """The latest event time of the stream (with ``announce``): what has passed a due time."""
        self.heap: list[tuple[float, str, str]] = []
        """(due_t, follow_up_id, customer_id) of pending follow-ups not yet announced (with ``announce``);
        entries of follow-ups that left pending stay until popped or until :meth:`_compact_heap`."""
        self.heap_live = 0
        """How many of the heap's entries are still pending."""
        self._step = 0
        self._stepping: tuple[Position, str] | None = None

    # The stream's time (live announcements).

    def advance(self, t: float, at: datetime, position: Position) -> None:
        """Before an event at ``t``: announce every pending follow-up whose due time it passes."""
        if self.announcements is None or t <= self.stream_t:
            return
        self.stream_t = t
        heap = self.heap
        while heap and heap[0][0] < t:
            entry = heapq.heappop(heap)
            while heap and heap[0] == entry:  # anchored twice at one event (cancelled, then anew)
                heapq.heappop(heap)
            pending = self._pending(entry)
            if pending is not None:
                self.heap_live -= 1
                self._announce(pending, entry[2], OPEN, at, None, position)

    def _pending(self, entry: tuple[float, str, str]) -> FollowUp | None:
        book = self.book_of(entry[2])
        if book is None:
            return None
        return next((f for f in book.pending if f.follow_up_id == entry[1] and f.due_t == entry[0]), None)

    def _left_pending(self, follow_up: FollowUp) -> None:
        """A follow-up left pending before the stream's time passed it: its heap entry is stale."""
        if self.announcements is None or follow_up.due_t < self.stream_t:
            return
        self.heap_live -= 1
        if len(self.heap) > 2 * self.heap_live + 1024:
            self._compact_heap()

    def _compact_heap(self) -> None:
        """Drop the stale entries (each owner touch leaves one): the heap stays the size of what is pending."""
        self.heap = sorted({entry for entry in self.heap if self._pending(entry) is not None})
        self.heap_live = len(self.heap)

    # §8 step 1.

    def come_due(self, customer_id: str, book: FollowUpBook | None, t: float, position: Position) -> None:
        """Before an event of the customer at ``t``: pending follow-ups due before it open."""
        if book is None or not book.pending:
            return
        still = []
        for follow_up in book.pending:
            if follow_up.due_t < t:  # no row: the view shows a pending follow-up as open once its due time passed
                self._left_pending(follow_up)
                book.open.append(follow_up)
            else:
                still.append(follow_up)
        book.pending = still

    # §8 step 2: an owner touch, or an after_issue trigger.

    def touch(
        self, customer_id: str, book: FollowUpBook, touch: Touchpoint, owner: str | None,
        journey_id: str, handoff: Handoff | None, position: Position,
    ) -> None:
        """``owner``: the customer's owner just before the touch."""
        if owner is None:
            return
        if touch.employee_id == owner:
            self._close(customer_id, book, DONE, touch.occurred_at, touch.event_id, position)
            self._anchor(customer_id, book, CHECK_IN, owner, touch.event_id, None, touch.occurred_at, position)
        elif _troubled(touch, handoff) and not any(f.kind == AFTER_ISSUE for f in book.pending):
            self._anchor(customer_id, book, AFTER_ISSUE, owner, touch.event_id, journey_id, touch.occurred_at, position)

    # §8 step 3.

    def owner_changed(
        self, customer_id: str, book: FollowUpBook, owner: str | None, event_id: str, at: datetime, position: Position,
    ) -> None:
        """An owner change (any reason, to nobody included) at the event ``event_id``."""
        self._close(customer_id, book, DROPPED, at, event_id, position)
        if owner is not None:
            self._anchor(customer_id, book, CHECK_IN, owner, event_id, None, at, position)

    def churned(self, customer_id: str, book: FollowUpBook, event_id: str, at: datetime, position: Position) -> None:
        self._close(customer_id, book, DROPPED, at, event_id, position)

    def forget(self, book: FollowUpBook | None) -> None:
        """The customer is erased: its follow-ups go without a trace."""
        if book is not None:
            for follow_up in book.pending:
                self._left_pending(follow_up)

    # Helpers.

    def _close(
        self, customer_id: str, book: FollowUpBook, status: str, at: datetime, event_id: str, position: Position,
    ) -> None:
        """Cancel the pending follow-ups and close the open ones as ``status``."""
        for follow_up in book.pending:
            self._left_pending(follow_up)
            self._fact(follow_up, customer_id, CANCELLED, at, event_id, position)
            if self.announcements is not None and follow_up.due_t < self.stream_t:
                self._announce(follow_up, customer_id, status, at, event_id, position)  # announced as due
        for follow_up in book.open:
            self._fact(follow_up, customer_id, status, at, event_id, position)
            if self.announcements is not None:
                self._announce(follow_up, customer_id, status, at, event_id, position)
        book.pending, book.open = [], []

    def _anchor(
        self, customer_id: str, book: FollowUpBook, kind: str, owner: str, event_id: str,
        journey_id: str | None, at: datetime, position: Position,
    ) -> None:
        due_at = at + (self.check_in if kind == CHECK_IN else self.after_issue)
        follow_up = FollowUp(
            follow_up_id(customer_id, kind, event_id), kind, owner, event_id, journey_id, due_at, due_at.timestamp(),
        )
        book.pending.append(follow_up)
        self._fact(follow_up, customer_id, PENDING, None, None, position)
        if self.announcements is not None:
            if follow_up.due_t < self.stream_t:  # anchored by a late event: already past
                self._announce(follow_up, customer_id, OPEN, at, None, position)
            else:
                heapq.heappush(self.heap, (follow_up.due_t, follow_up.follow_up_id, customer_id))
                self.heap_live += 1

    def _fact(
        self, follow_up: FollowUp, customer_id: str, status: str, closed_at: datetime | None,
        closed_event_id: str | None, position: Position,
    ) -> None:
        self.facts.append(
            FollowUpFact(
                follow_up, customer_id, status, closed_at, closed_event_id, position, self._next_step(position, customer_id),
            )
        )

    def _announce(
        self, follow_up: FollowUp, customer_id: str, status: str, at: datetime, event_id: str | None, position: Position,
    ) -> None:
        assert self.announcements is not None
        self.announcements.append(Announcement(follow_up, customer_id, status, at, event_id, position))

    def _next_step(self, position: Position, customer_id: str) -> int:
        stepping = self._stepping
        if stepping is None or stepping[0] is not position or stepping[1] != customer_id:
            self._stepping, self._step = (position, customer_id), 0
        step = self._step
        self._step += 1
        return step


def _troubled(touch: Touchpoint, handoff: Handoff | None) -> bool:
    """An ``after_issue`` trigger: the later touch of a silo handoff, a low score, a redirect or an
    abandon, or a complaint."""
    return (
        (handoff is not None and handoff.cross_department)
        or (touch.csat is not None and touch.csat <= 2)
        or touch.outcome in BAD_OUTCOMES
        or touch.kind == "complaint"
    )
