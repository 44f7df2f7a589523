-- Fact tables: written by `spoc replay` and the live sink, one row per fact.
-- The analysts' tables of SPEC §7 are views over these (views.sql).

CREATE TABLE IF NOT EXISTS touchpoints (
    event_id VARCHAR NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    customer_id VARCHAR NOT NULL,
    schema_version INTEGER NOT NULL,
    channel VARCHAR NOT NULL,
    direction VARCHAR NOT NULL,
    department VARCHAR NOT NULL,
    employee_id VARCHAR,
    case_id VARCHAR,
    topic VARCHAR,
    kind VARCHAR,
    outcome VARCHAR,
    transferred_to_department VARCHAR,
    transferred_to_employee VARCHAR,
    csat INTEGER,
    sentiment DOUBLE,
    revenue DOUBLE,
    attributes JSON,
    journey_id VARCHAR NOT NULL,
    journey_key VARCHAR NOT NULL,
    weight DOUBLE,
    owner_before VARCHAR,
    owner_match BOOLEAN,
    source VARCHAR NOT NULL,
    position BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    context_passed BOOLEAN
);
-- Added with warm transfers (SPEC §4): files made before gain it, last like here.
ALTER TABLE touchpoints ADD COLUMN IF NOT EXISTS context_passed BOOLEAN;

CREATE TABLE IF NOT EXISTS rejected_events (
    reason VARCHAR NOT NULL,
    detail VARCHAR NOT NULL,
    field VARCHAR,
    raw BLOB NOT NULL,
    raw_text VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    position BIGINT NOT NULL,
    seq BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS handoff_facts (
    customer_id VARCHAR NOT NULL,
    journey_id VARCHAR NOT NULL,
    from_event_id VARCHAR NOT NULL,
    to_event_id VARCHAR NOT NULL,
    from_department VARCHAR NOT NULL,
    to_department VARCHAR NOT NULL,
    from_employee_id VARCHAR,
    to_employee_id VARCHAR,
    kind VARCHAR NOT NULL,
    cross_department BOOLEAN NOT NULL,
    reexplained BOOLEAN NOT NULL,
    ping_pong BOOLEAN NOT NULL,
    gap_seconds DOUBLE NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    seq BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS repeat_facts (
    event_id VARCHAR NOT NULL,
    previous_event_id VARCHAR NOT NULL,
    customer_id VARCHAR NOT NULL,
    journey_key VARCHAR NOT NULL,
    gap_seconds DOUBLE NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    seq BIGINT NOT NULL
);

-- Every decision of the relationship ledger (the Relationship aggregate's events).
CREATE TABLE IF NOT EXISTS ledger_events (
    relationship_id VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    customer_id VARCHAR NOT NULL,
    event_type VARCHAR NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    trigger_event_id VARCHAR,
    previous_owner_id VARCHAR,
    owner_id VARCHAR,
    employee_id VARCHAR,
    reason VARCHAR,
    affinities JSON,
    source VARCHAR NOT NULL,
    position BIGINT NOT NULL,
    seq BIGINT NOT NULL
);

-- Accepted events other than touchpoints (churn, departures, pins, erasures).
CREATE TABLE IF NOT EXISTS control_events (
    event_id VARCHAR NOT NULL,
    type VARCHAR NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    customer_id VARCHAR,
    employee_id VARCHAR,
    source VARCHAR NOT NULL,
    position BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    until TIMESTAMPTZ
);
-- Added with availability (SPEC §9): files made before gain it, last like here.
ALTER TABLE control_events ADD COLUMN IF NOT EXISTS until TIMESTAMPTZ;

-- Settings the views read: the policy's windows and the churn `as_of`.
CREATE TABLE IF NOT EXISTS spoc_settings (
    key VARCHAR PRIMARY KEY,
    value VARCHAR
);

-- The transitions of a follow-up (SPEC §8): pending, then done, dropped, or cancelled (ended
-- before it was due). Falling due has no row: the `follow_ups` view reads each follow-up's
-- latest row and shows a pending one as open once `as_of` has passed its due time. `step`
-- orders the rows of one event for one customer.
CREATE TABLE IF NOT EXISTS follow_up_facts (
    follow_up_id VARCHAR NOT NULL,
    customer_id VARCHAR NOT NULL,
    owner_id VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    anchor_event_id VARCHAR NOT NULL,
    journey_id VARCHAR,
    due_at TIMESTAMPTZ NOT NULL,
    status VARCHAR NOT NULL,
    closed_at TIMESTAMPTZ,
    closed_event_id VARCHAR,
    seq BIGINT NOT NULL,
    step INTEGER NOT NULL
);
