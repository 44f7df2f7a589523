-- The analysts' tables of SPEC §7, as views over the fact tables (tables.sql).
-- Names and columns are a stable contract: add columns, never rename them.

CREATE OR REPLACE VIEW spoc_window AS
SELECT
    coalesce(
        (SELECT value::TIMESTAMPTZ FROM spoc_settings WHERE key = 'as_of'),
        (SELECT value::TIMESTAMPTZ FROM spoc_settings WHERE key = 'latest_event_at'),
        (SELECT max(occurred_at) FROM (SELECT occurred_at FROM touchpoints UNION ALL SELECT occurred_at FROM control_events))
    ) AS as_of,
    coalesce((SELECT value::DOUBLE FROM spoc_settings WHERE key = 'repeat_window_days'), 7) AS repeat_window_days,
    coalesce((SELECT value::DOUBLE FROM spoc_settings WHERE key = 'churn_inactivity_days'), 180) AS churn_inactivity_days;

CREATE OR REPLACE VIEW handoffs AS
SELECT customer_id, journey_id, from_event_id, to_event_id, from_department, to_department,
       from_employee_id, to_employee_id, kind, cross_department, reexplained, ping_pong,
       gap_seconds, occurred_at
FROM handoff_facts;

CREATE OR REPLACE VIEW repeat_contacts AS
SELECT event_id, previous_event_id, customer_id, journey_key, gap_seconds, occurred_at
FROM repeat_facts;

CREATE OR REPLACE VIEW owner_history AS
SELECT
    customer_id,
    owner_id,
    occurred_at AS valid_from,
    lead(occurred_at) OVER (PARTITION BY customer_id ORDER BY seq, version) AS valid_to,
    reason,
    trigger_event_id AS event_id,
    previous_owner_id,
    affinities
FROM ledger_events
WHERE event_type IN ('OwnerAssigned', 'OwnerChanged');

CREATE OR REPLACE VIEW customer_owner AS
SELECT customer_id, owner_id, valid_from AS since, reason
FROM owner_history
WHERE valid_to IS NULL AND owner_id IS NOT NULL;

-- A journey's first touch is the one that opened it (journey_id = its event_id); its other
-- touches are few, so they are aggregated apart.  First and last touch are taken as they are:
-- a touch with no outcome is not skipped (arg_min/arg_max would skip its NULL outcome).
CREATE OR REPLACE VIEW journeys AS
WITH openers AS (
    SELECT journey_id, customer_id, journey_key, event_id, occurred_at, seq, outcome
    FROM touchpoints
    WHERE journey_id = event_id
),
later_touches AS (
    SELECT journey_id, count(*) AS touches, arg_max(event_id, seq) AS last_event_id,
           arg_max(occurred_at, seq) AS last_at, arg_max_null(outcome, seq) AS last_outcome
    FROM touchpoints
    WHERE journey_id <> event_id
    GROUP BY journey_id
),
handoff_counts AS (
    SELECT journey_id, count(*) AS handoffs FROM handoff_facts GROUP BY journey_id
),
followed_by_repeat AS (
    SELECT f.journey_id
    FROM (
        SELECT o.*, o.occurred_at + to_days(1) * w.repeat_window_days AS window_end
        FROM openers o CROSS JOIN spoc_window w
        WHERE o.outcome = 'resolved'
    ) f
    SEMI JOIN repeat_facts r
      ON r.customer_id = f.customer_id AND r.journey_key = f.journey_key AND r.seq > f.seq
     AND r.occurred_at >= f.occurred_at AND r.occurred_at <= f.window_end
)
SELECT
    o.journey_id, o.customer_id, o.journey_key,
    o.event_id AS first_event_id,
    coalesce(l.last_event_id, o.event_id) AS last_event_id,
    o.occurred_at AS first_at,
    coalesce(l.last_at, o.occurred_at) AS last_at,
    1 + coalesce(l.touches, 0) AS touches,
    coalesce(h.handoffs, 0) AS handoffs,
    coalesce(CASE WHEN l.journey_id IS NULL THEN o.outcome ELSE l.last_outcome END = 'resolved', false) AS resolved,
    coalesce(o.outcome = 'resolved', false) AND f.journey_id IS NULL AS fcr
FROM openers o
LEFT JOIN later_touches l USING (journey_id)
LEFT JOIN handoff_counts h USING (journey_id)
LEFT JOIN followed_by_repeat f USING (journey_id);

CREATE OR REPLACE VIEW customer_metrics AS
WITH touch_stats AS (
    SELECT customer_id,
           count(*) AS touches,
           count(DISTINCT employee_id) AS employees_seen,
           avg(owner_match::INTEGER) AS owner_continuity,
           min(occurred_at) AS first_touch_at,
           max(occurred_at) AS last_touch_at
    FROM touchpoints GROUP BY customer_id
),
control_stats AS (
    SELECT customer_id, min(occurred_at) AS first_at, max(occurred_at) AS last_at,
           arg_max(occurred_at, seq) FILTER (WHERE type = 'customer_churned') AS churned_at
    FROM control_events
    WHERE customer_id IS NOT NULL AND type <> 'customer_erased'
    GROUP BY customer_id
),
handoff_stats AS (
    SELECT customer_id, count(*) AS handoffs, count(*) FILTER (WHERE cross_department) AS silo_handoffs
    FROM handoff_facts GROUP BY customer_id
),
repeat_stats AS (
    SELECT customer_id, count(*) AS repeat_contacts FROM repeat_facts GROUP BY customer_id
)
SELECT
    customer_id,
    coalesce(t.touches, 0) AS touches,
    coalesce(t.employees_seen, 0) AS employees_seen,
    t.owner_continuity,
    coalesce(h.handoffs, 0) AS handoffs,
    coalesce(h.silo_handoffs, 0) AS silo_handoffs,
    coalesce(r.repeat_contacts, 0) AS repeat_contacts,
    least(t.first_touch_at, c.first_at) AS first_seen,  -- least and greatest skip NULLs
    greatest(t.last_touch_at, c.last_at) AS last_seen,
    (c.churned_at IS NOT NULL
        OR coalesce(t.last_touch_at < w.as_of - to_days(1) * w.churn_inactivity_days, false)) AS churned,
    CASE
        WHEN c.churned_at IS NOT NULL THEN c.churned_at
        WHEN t.last_touch_at < w.as_of - to_days(1) * w.churn_inactivity_days THEN t.last_touch_at
    END AS churned_at
FROM touch_stats t
FULL JOIN control_stats c USING (customer_id)
CROSS JOIN spoc_window w
LEFT JOIN handoff_stats h USING (customer_id)
LEFT JOIN repeat_stats r USING (customer_id);

-- Each customer in its owner-continuity bucket and its silo-handoff bucket.
CREATE OR REPLACE VIEW customer_churn_buckets AS
SELECT customer_id, churned, 'continuity' AS dimension,
       CASE
           WHEN owner_continuity IS NULL THEN 'none'
           WHEN owner_continuity < 0.25 THEN '0-25'
           WHEN owner_continuity < 0.50 THEN '25-50'
           WHEN owner_continuity < 0.75 THEN '50-75'
           ELSE '75-100'
       END AS bucket
FROM customer_metrics
UNION ALL
SELECT customer_id, churned, 'handoffs',
       CASE
           WHEN silo_handoffs = 0 THEN '0'
           WHEN silo_handoffs = 1 THEN '1'
           WHEN silo_handoffs <= 3 THEN '2-3'
           ELSE '4+'
       END
FROM customer_metrics;

-- Churn per bucket of one dimension; every bucket is listed, empty ones with a null rate.
CREATE OR REPLACE MACRO churn_by_bucket(dim) AS TABLE
WITH buckets(dimension, bucket, ord) AS (
    VALUES ('continuity', '0-25', 1), ('continuity', '25-50', 2), ('continuity', '50-75', 3),
           ('continuity', '75-100', 4), ('continuity', 'none', 5),
           ('handoffs', '0', 1), ('handoffs', '1', 2), ('handoffs', '2-3', 3), ('handoffs', '4+', 4)
)
SELECT b.bucket,
       count(x.customer_id) AS customers,
       count(x.customer_id) FILTER (WHERE x.churned) AS churned,
       CASE WHEN count(x.customer_id) > 0
            THEN (count(x.customer_id) FILTER (WHERE x.churned))::DOUBLE / count(x.customer_id) END AS churn_rate
FROM buckets b
LEFT JOIN customer_churn_buckets x ON x.dimension = b.dimension AND x.bucket = b.bucket
WHERE b.dimension = dim
GROUP BY b.bucket, b.ord
ORDER BY b.ord;

CREATE OR REPLACE VIEW churn_by_continuity AS SELECT * FROM churn_by_bucket('continuity');

CREATE OR REPLACE VIEW churn_by_handoffs AS SELECT * FROM churn_by_bucket('handoffs');

CREATE OR REPLACE VIEW silo_paths AS
SELECT
    h.from_department,
    h.to_department,
    count(*) AS handoffs,
    avg(h.reexplained::INTEGER) AS reexplained_rate,
    avg((r.event_id IS NOT NULL)::INTEGER) AS repeat_contact_rate
FROM handoff_facts h
LEFT JOIN repeat_facts r ON r.event_id = h.to_event_id
WHERE h.cross_department
GROUP BY h.from_department, h.to_department
ORDER BY handoffs DESC, h.from_department, h.to_department;

CREATE OR REPLACE VIEW owner_load AS
WITH current_customers AS (
    SELECT owner_id, count(*) AS customers FROM customer_owner GROUP BY owner_id
),
handled AS (
    SELECT employee_id AS owner_id, count(*) AS touches
    FROM touchpoints WHERE employee_id IS NOT NULL GROUP BY employee_id
),
continuity AS (
    SELECT o.owner_id, avg(t.owner_match::INTEGER) AS continuity
    FROM customer_owner o JOIN touchpoints t USING (customer_id)
    WHERE t.owner_match IS NOT NULL
    GROUP BY o.owner_id
)
SELECT c.owner_id, c.customers, coalesce(h.touches, 0) AS touches, k.continuity
FROM current_customers c
LEFT JOIN handled h USING (owner_id)
LEFT JOIN continuity k USING (owner_id)
ORDER BY c.customers DESC, c.owner_id;

-- SPEC §8: each follow-up that fell due by `as_of`, as it stands (its latest transition). A
-- pending one whose due time `as_of` has passed is open; one cancelled before it was due
-- never appears.
CREATE OR REPLACE VIEW follow_ups AS
WITH latest AS (
    SELECT * FROM follow_up_facts
    QUALIFY row_number() OVER (PARTITION BY follow_up_id ORDER BY seq DESC, step DESC) = 1
)
SELECT l.follow_up_id, l.customer_id, l.owner_id, l.kind, l.anchor_event_id, l.journey_id, l.due_at,
       CASE WHEN l.status = 'pending' THEN 'open' ELSE l.status END AS status,
       l.closed_at, l.closed_event_id
FROM latest l, spoc_window w
WHERE l.due_at <= w.as_of AND l.status <> 'cancelled';

CREATE OR REPLACE VIEW follow_up_compliance AS
SELECT
    owner_id,
    count(*) AS due,
    count(*) FILTER (WHERE status = 'done') AS done,
    count(*) FILTER (WHERE status = 'open') AS open,
    count(*) FILTER (WHERE status = 'dropped') AS dropped,
    count(*) FILTER (WHERE status = 'done') / count(*) AS done_rate,
    median((epoch(closed_at) - epoch(due_at)) / 3600.0) FILTER (WHERE status = 'done') AS median_hours_late
FROM follow_ups
GROUP BY owner_id;
