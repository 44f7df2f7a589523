"""``spoc followups``: what is due, oldest first, for an owner or a team lead."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from projections.reading import read_analytics
from reports.query import print_result

# Why: the follow-up's kind and the touch it anchors on (its department, topic and outcome); how late:
# hours from due_at to when it closed, or to as_of while it is open.
FOLLOW_UPS_DUE = """
SELECT
    f.owner_id,
    f.customer_id,
    f.kind,
    f.due_at,
    round((epoch(coalesce(f.closed_at, w.as_of)) - epoch(f.due_at)) / 3600.0, 1) AS hours_late,
    f.status,
    f.anchor_event_id,
    concat_ws(' · ', t.department, t.topic, t.outcome, CASE WHEN t.csat IS NOT NULL THEN 'csat ' || t.csat END)
        AS anchor_touch,
    f.journey_id,
    f.closed_event_id
FROM follow_ups f
CROSS JOIN spoc_window w
LEFT JOIN touchpoints t ON t.event_id = f.anchor_event_id AND t.customer_id = f.customer_id
WHERE ($owner IS NULL OR f.owner_id = $owner) AND ($status = 'all' OR f.status = $status)
ORDER BY f.due_at, f.customer_id, f.kind
"""


def print_follow_ups(
    db: str | Path, *, owner: str | None, status: str, as_of: datetime | None, max_rows: int, csv: bool,
) -> None:
    con = read_analytics(db, as_of=as_of)
    try:
        print_result(con.execute(FOLLOW_UPS_DUE, {"owner": owner, "status": status}), max_rows=max_rows, csv=csv)
    finally:
        con.close()
