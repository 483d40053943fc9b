-- Leitstand history, schema v1 (docs/database.md). Applied in one transaction by
-- `leitstand db migrate`; never edit an applied migration: add 0002_... instead.
--
-- Every table filled from a topic carries the Kafka position of its record (src_partition,
-- src_offset) under a UNIQUE constraint: beside sink_offsets, a second guard that one record
-- never becomes two rows.

CREATE TABLE aggregates (
    aggregate_id    text NOT NULL,
    intersection_id text NOT NULL,
    detector_id     text NOT NULL,
    window_start    timestamptz NOT NULL,
    window_end      timestamptz NOT NULL,
    frames          int NOT NULL,
    count_sum       int NOT NULL,
    occupancy_mean  double precision NOT NULL,
    speed_kmh_mean  double precision NULL,
    src_partition   int NOT NULL,
    src_offset      bigint NOT NULL,
    UNIQUE (src_partition, src_offset)
);
CREATE INDEX aggregates_intersection_window ON aggregates (intersection_id, window_start);
-- retention deletes by window_start
CREATE INDEX aggregates_window_start ON aggregates (window_start);

CREATE TABLE pool_readings (
    pool_id           text NOT NULL,
    event_time        timestamptz NOT NULL,
    free_chlorine     double precision NULL,  -- mg/l
    combined_chlorine double precision NULL,  -- mg/l
    ph                double precision NULL,  -- pH
    redox             double precision NULL,  -- mV
    temperature       double precision NULL,  -- degC
    turbidity         double precision NULL,  -- FNU
    visitors          int NULL,
    src_partition     int NOT NULL,
    src_offset        bigint NOT NULL,
    UNIQUE (src_partition, src_offset)
);
CREATE INDEX pool_readings_pool_time ON pool_readings (pool_id, event_time);
CREATE INDEX pool_readings_event_time ON pool_readings (event_time);

CREATE TABLE signal_decisions (
    event_time      timestamptz NOT NULL,
    intersection_id text NOT NULL,
    plan_id         text NOT NULL,
    session         text NOT NULL,
    status          text NOT NULL,
    mode            text NOT NULL,
    controller      text NOT NULL,
    version         text NOT NULL,
    rule            text NOT NULL,
    cyclic          bool NOT NULL,
    phases          jsonb NOT NULL,
    explanation     jsonb NOT NULL,
    violations      jsonb NOT NULL,
    expires_at_s    double precision NULL,
    src_partition   int NOT NULL,
    src_offset      bigint NOT NULL,
    UNIQUE (src_partition, src_offset)
);
CREATE INDEX signal_decisions_intersection_time ON signal_decisions (intersection_id, event_time);
CREATE INDEX signal_decisions_event_time ON signal_decisions (event_time);

-- two source topics: (src_partition, src_offset) is unique per source
CREATE TABLE audit_log (
    event_time    timestamptz NOT NULL,
    source        text NOT NULL CHECK (source IN ('signals.audit', 'alerts.acks')),
    subject_id    text NOT NULL,
    session       text NULL,
    action        text NOT NULL,
    actor         text NOT NULL,
    detail        jsonb NOT NULL,
    src_partition int NOT NULL,
    src_offset    bigint NOT NULL,
    UNIQUE (source, src_partition, src_offset)
);
CREATE INDEX audit_log_event_time ON audit_log (event_time);

CREATE TABLE alarm_transitions (
    event_time      timestamptz NOT NULL,
    transition      text NOT NULL,
    alarm_id        text NOT NULL,
    subject_id      text NOT NULL,
    subject_type    text NOT NULL,
    kind            text NOT NULL,
    severity        text NOT NULL,
    state           text NOT NULL,
    level           int NOT NULL,
    message         text NOT NULL,
    raised_at       timestamptz NOT NULL,
    acknowledged_at timestamptz NULL,
    acknowledged_by text NULL,
    escalated_at    timestamptz NULL,
    resolved_at     timestamptz NULL,
    resolved_by     text NULL,
    evidence        jsonb NOT NULL,
    src_partition   int NOT NULL,
    src_offset      bigint NOT NULL,
    UNIQUE (src_partition, src_offset)
);
CREATE INDEX alarm_transitions_alarm_time ON alarm_transitions (alarm_id, event_time);
CREATE INDEX alarm_transitions_event_time ON alarm_transitions (event_time);

-- the newest transition of every alarm: its state now (ties on event_time broken by position)
CREATE VIEW alarms_current AS
SELECT DISTINCT ON (alarm_id) *
FROM alarm_transitions
ORDER BY alarm_id, event_time DESC, src_partition DESC, src_offset DESC;

CREATE TABLE forecasts (
    series_id     text NOT NULL,
    series_kind   text NOT NULL,
    model         text NOT NULL,
    model_version text NOT NULL,
    origin        timestamptz NOT NULL,
    published_at  timestamptz NOT NULL,
    trigger       text NOT NULL,
    point_index   int NOT NULL,
    ts            timestamptz NOT NULL,
    yhat          double precision NOT NULL,
    yhat_lower    double precision NOT NULL,
    yhat_upper    double precision NOT NULL,
    src_partition int NOT NULL,
    src_offset    bigint NOT NULL,
    UNIQUE (src_partition, src_offset, point_index)
);
CREATE INDEX forecasts_series_ts ON forecasts (series_id, ts);
CREATE INDEX forecasts_published_at ON forecasts (published_at);

-- the next Kafka offset to read per partition, written in the same transaction as the rows
CREATE TABLE sink_offsets (
    topic       text NOT NULL,
    partition   int NOT NULL,
    next_offset bigint NOT NULL CHECK (next_offset >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);
