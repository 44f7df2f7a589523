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
    coalesce((SELECT value::DOUBLE FROM spoc_settings WHERE key = 'churn_inactivity_days'), 180) AS churn_inactivity_days,
    coalesce((SELECT value::DOUBLE FROM spoc_settings WHERE key = 'outcome_window_days'), 90) AS outcome_window_days,
    coalesce((SELECT value::DOUBLE FROM spoc_settings WHERE key = 'landmark_days'), 90) AS landmark_days;

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

-- SPEC §7, analyses that do not mistake exposure for effect: each journey and each owner change
-- is judged by what followed it within `outcome_window_days`, and continuity by survival after
-- a landmark, so a customer's later contacts cannot count in their own favour.

CREATE OR REPLACE VIEW journey_outcomes AS
WITH handoff_counts AS (
    SELECT journey_id,
           count(*) FILTER (WHERE cross_department) AS silo_handoffs,
           count(*) FILTER (WHERE kind = 'redirect') AS redirects,
           count(*) FILTER (WHERE reexplained) AS reexplained,
           count(*) FILTER (WHERE ping_pong) AS ping_pongs
    FROM handoff_facts GROUP BY journey_id
)
SELECT
    j.journey_id, j.customer_id, j.last_at,
    coalesce(h.silo_handoffs, 0) AS silo_handoffs,
    coalesce(h.redirects, 0) AS redirects,
    coalesce(h.reexplained, 0) AS reexplained,
    coalesce(h.ping_pongs, 0) AS ping_pongs,
    j.fcr,
    CASE
        WHEN m.churned_at >= j.last_at AND m.churned_at <= j.last_at + to_days(1) * w.outcome_window_days THEN true
        WHEN j.last_at + to_days(1) * w.outcome_window_days <= w.as_of THEN false
    END AS churned_within_window
FROM journeys j
CROSS JOIN spoc_window w
LEFT JOIN handoff_counts h USING (journey_id)
LEFT JOIN customer_metrics m USING (customer_id);

-- The 95 % Wilson score interval of k successes in n trials, clamped to [0, 1]; null when n = 0.
CREATE OR REPLACE MACRO wilson_low(k, n) AS CASE WHEN n > 0 THEN greatest(0.0,
    (k / n + 1.959963984540054 ^ 2 / (2 * n)
     - 1.959963984540054 * sqrt(k / n * (1 - k / n) / n + 1.959963984540054 ^ 2 / (4 * n * n)))
    / (1 + 1.959963984540054 ^ 2 / n)) END;
CREATE OR REPLACE MACRO wilson_high(k, n) AS CASE WHEN n > 0 THEN least(1.0,
    (k / n + 1.959963984540054 ^ 2 / (2 * n)
     + 1.959963984540054 * sqrt(k / n * (1 - k / n) / n + 1.959963984540054 ^ 2 / (4 * n * n)))
    / (1 + 1.959963984540054 ^ 2 / n)) END;

CREATE OR REPLACE VIEW churn_after_journeys AS
WITH buckets(bucket, ord) AS (VALUES ('0', 1), ('1', 2), ('2+', 3)),
judged AS (
    SELECT CASE WHEN silo_handoffs = 0 THEN '0' WHEN silo_handoffs = 1 THEN '1' ELSE '2+' END AS bucket,
           churned_within_window AS churned
    FROM journey_outcomes
    WHERE churned_within_window IS NOT NULL
),
counts AS (
    SELECT b.bucket, b.ord, count(j.bucket)::DOUBLE AS n, (count(j.bucket) FILTER (WHERE j.churned))::DOUBLE AS k
    FROM buckets b LEFT JOIN judged j USING (bucket)
    GROUP BY b.bucket, b.ord
)
SELECT bucket, n::BIGINT AS journeys, k::BIGINT AS churned,
       CASE WHEN n > 0 THEN k / n END AS churn_rate,
       wilson_low(k, n) AS ci_low, wilson_high(k, n) AS ci_high
FROM counts
ORDER BY ord;

-- A landmark analysis: customers still kept `landmark_days` after their first owner, grouped by
-- their continuity up to then, followed from the landmark with Kaplan-Meier survival.
CREATE OR REPLACE VIEW continuity_survival AS
WITH buckets(bucket, ord) AS (VALUES ('0-25', 1), ('25-50', 2), ('50-75', 3), ('75-100', 4), ('none', 5)),
first_owner AS (
    SELECT customer_id, min(valid_from) AS assigned_at
    FROM owner_history WHERE owner_id IS NOT NULL GROUP BY customer_id
),
landmarked AS (
    SELECT f.customer_id, f.assigned_at, f.assigned_at + to_days(1) * w.landmark_days AS landmark,
           m.churned_at, w.as_of
    FROM first_owner f
    CROSS JOIN spoc_window w
    JOIN customer_metrics m USING (customer_id)
    WHERE f.assigned_at + to_days(1) * w.landmark_days <= w.as_of
      AND NOT coalesce(m.churned_at <= f.assigned_at + to_days(1) * w.landmark_days, false)
),
early_continuity AS (
    SELECT l.customer_id, avg(t.owner_match::INTEGER) AS continuity
    FROM landmarked l JOIN touchpoints t USING (customer_id)
    WHERE t.owner_match IS NOT NULL AND t.occurred_at > l.assigned_at AND t.occurred_at <= l.landmark
    GROUP BY l.customer_id
),
subjects AS (
    SELECT
        CASE
            WHEN c.continuity IS NULL THEN 'none'
            WHEN c.continuity < 0.25 THEN '0-25'
            WHEN c.continuity < 0.50 THEN '25-50'
            WHEN c.continuity < 0.75 THEN '50-75'
            ELSE '75-100'
        END AS bucket,
        coalesce(l.churned_at <= l.as_of, false) AS churned,
        (epoch(CASE WHEN l.churned_at <= l.as_of THEN l.churned_at ELSE l.as_of END) - epoch(l.landmark)) / 86400.0 AS days
    FROM landmarked l LEFT JOIN early_continuity c USING (customer_id)
),
event_times AS (
    SELECT bucket, days, count(*) FILTER (WHERE churned) AS deaths, count(*) AS leaving
    FROM subjects GROUP BY bucket, days
),
at_risk AS (
    SELECT bucket, days, deaths,
           sum(leaving) OVER (PARTITION BY bucket ORDER BY days DESC ROWS UNBOUNDED PRECEDING) AS at_risk
    FROM event_times
),
curve AS (  -- S(days) just after each time with a churn: the product of (1 - deaths / at risk)
    SELECT bucket, days,
           CASE WHEN bool_or(deaths = at_risk) OVER running THEN 0.0
                ELSE exp(sum(ln(1 - deaths / at_risk)) OVER running) END AS survival
    FROM at_risk
    WHERE deaths > 0
    WINDOW running AS (PARTITION BY bucket ORDER BY days ROWS UNBOUNDED PRECEDING)
),
followed AS (
    SELECT bucket, count(*) AS customers, count(*) FILTER (WHERE churned) AS churned, max(days) AS longest
    FROM subjects GROUP BY bucket
),
survival_at AS (
    SELECT f.bucket, horizon.d,
           CASE WHEN f.longest >= horizon.d
                THEN coalesce((SELECT arg_max(c.survival, c.days) FROM curve c
                               WHERE c.bucket = f.bucket AND c.days <= horizon.d), 1.0) END AS survival
    FROM followed f CROSS JOIN (VALUES (90), (180), (365)) horizon(d)
)
SELECT b.bucket,
       coalesce(f.customers, 0) AS customers,
       coalesce(f.churned, 0) AS churned,
       (SELECT survival FROM survival_at s WHERE s.bucket = b.bucket AND s.d = 90) AS survival_90d,
       (SELECT survival FROM survival_at s WHERE s.bucket = b.bucket AND s.d = 180) AS survival_180d,
       (SELECT survival FROM survival_at s WHERE s.bucket = b.bucket AND s.d = 365) AS survival_365d
FROM buckets b LEFT JOIN followed f USING (bucket)
ORDER BY b.ord;

-- Who helps first: per department and employee, how inbound touches they handled ended.  A
-- topic's home department is the policy's `home_departments` entry with the longest prefix of it.
CREATE OR REPLACE VIEW help_first AS
WITH homes AS (
    SELECT h.key AS prefix, h.value ->> '$' AS department
    FROM spoc_settings s, json_each(s.value) h
    WHERE s.key = 'home_departments'
),
topic_homes AS (
    SELECT t.topic, arg_max(h.department, length(h.prefix)) AS home
    FROM (SELECT DISTINCT topic FROM touchpoints WHERE topic IS NOT NULL) t
    JOIN homes h ON starts_with(t.topic, h.prefix)
    GROUP BY t.topic
),
counts AS (
    SELECT t.department, t.employee_id,
           count(*) AS handled,
           count(*) FILTER (WHERE t.outcome = 'resolved') AS resolved,
           count(*) FILTER (WHERE t.outcome = 'transferred') AS transferred,
           count(*) FILTER (WHERE t.outcome = 'redirected') AS redirected,
           count(*) FILTER (WHERE t.outcome = 'resolved' AND th.home <> t.department) AS resolved_outside_home
    FROM touchpoints t LEFT JOIN topic_homes th USING (topic)
    WHERE t.direction = 'inbound' AND t.employee_id IS NOT NULL
    GROUP BY t.department, t.employee_id
)
SELECT department, employee_id, handled, resolved, transferred, redirected,
       CASE WHEN resolved + transferred + redirected > 0
            THEN resolved / (resolved + transferred + redirected) END AS help_first_rate,
       resolved_outside_home
FROM counts
ORDER BY department, employee_id;

-- The customer's effort in each journey: its redirects, channel switches and self-service
-- touches that led nowhere, and how long until it was first resolved.
CREATE OR REPLACE VIEW journey_effort AS
WITH ordered AS (
    SELECT journey_id, channel, employee_id, outcome, occurred_at,
           lag(channel) OVER by_journey AS previous_channel,
           lead(seq) OVER by_journey IS NOT NULL AS followed
    FROM touchpoints
    WINDOW by_journey AS (PARTITION BY journey_id ORDER BY seq)
),
per_journey AS (
    SELECT journey_id,
           count(*) FILTER (WHERE previous_channel IS NOT NULL AND channel <> previous_channel) AS channel_switches,
           count(*) FILTER (WHERE employee_id IS NULL AND outcome IS DISTINCT FROM 'resolved' AND followed)
               AS self_service_dead_ends,
           min(occurred_at) FILTER (WHERE outcome = 'resolved') AS resolved_at
    FROM ordered GROUP BY journey_id
),
redirect_counts AS (
    SELECT journey_id, count(*) AS redirects FROM handoff_facts WHERE kind = 'redirect' GROUP BY journey_id
)
SELECT j.journey_id, j.customer_id, j.touches,
       coalesce(r.redirects, 0) AS redirects,
       p.channel_switches, p.self_service_dead_ends,
       (epoch(p.resolved_at) - epoch(j.first_at)) / 3600.0 AS hours_to_resolve
FROM journeys j
JOIN per_journey p USING (journey_id)
LEFT JOIN redirect_counts r USING (journey_id);

-- What followed each change of an existing owner, against the same span before it.
CREATE OR REPLACE VIEW owner_change_outcomes AS
WITH changes AS (
    SELECT o.customer_id, o.event_id, o.reason, o.valid_from AS changed_at,
           o.valid_from - to_days(1) * w.outcome_window_days AS window_start,
           o.valid_from + to_days(1) * w.outcome_window_days AS window_end,
           w.as_of
    FROM owner_history o CROSS JOIN spoc_window w
    WHERE o.previous_owner_id IS NOT NULL
),
touch_sides AS (
    SELECT c.event_id, c.customer_id, c.changed_at,
           count(*) FILTER (WHERE t.occurred_at < c.changed_at) AS touches_before,
           count(*) FILTER (WHERE t.occurred_at > c.changed_at) AS touches_after,
           avg(t.csat) FILTER (WHERE t.occurred_at < c.changed_at) AS mean_csat_before,
           avg(t.csat) FILTER (WHERE t.occurred_at > c.changed_at) AS mean_csat_after
    FROM changes c JOIN touchpoints t
      ON t.customer_id = c.customer_id AND t.occurred_at >= c.window_start AND t.occurred_at <= c.window_end
    GROUP BY c.event_id, c.customer_id, c.changed_at
),
repeat_sides AS (
    SELECT c.event_id, c.customer_id, c.changed_at,
           count(*) FILTER (WHERE r.occurred_at < c.changed_at) AS repeat_contacts_before,
           count(*) FILTER (WHERE r.occurred_at > c.changed_at) AS repeat_contacts_after
    FROM changes c JOIN repeat_facts r
      ON r.customer_id = c.customer_id AND r.occurred_at >= c.window_start AND r.occurred_at <= c.window_end
    GROUP BY c.event_id, c.customer_id, c.changed_at
)
SELECT c.customer_id, c.event_id, c.reason, c.changed_at,
       coalesce(t.touches_before, 0) AS touches_before,
       coalesce(t.touches_after, 0) AS touches_after,
       coalesce(r.repeat_contacts_before, 0) AS repeat_contacts_before,
       coalesce(r.repeat_contacts_after, 0) AS repeat_contacts_after,
       t.mean_csat_before, t.mean_csat_after,
       CASE
           WHEN m.churned_at > c.changed_at AND m.churned_at <= c.window_end THEN true
           WHEN c.window_end <= c.as_of THEN false
       END AS churned_within_window
FROM changes c
LEFT JOIN touch_sides t USING (event_id, customer_id, changed_at)
LEFT JOIN repeat_sides r USING (event_id, customer_id, changed_at)
LEFT JOIN customer_metrics m USING (customer_id);
