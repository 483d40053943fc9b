-- Leitstand history, schema v2 (docs/database.md): queues in the aggregates, announced events
-- and holidays. Never edit an applied migration: add 0003_... instead.

-- mean queue (vehicles) of the window's readings that reported one; NULL when none did (and for
-- every row written before this migration)
ALTER TABLE aggregates ADD COLUMN queue_veh_mean double precision NULL;

-- events.schedule (ScheduledEvent): events at venues, public and school holidays (venue 'city').
-- One row per (venue_id, event_id): the sink upserts and keeps the newest announcement (by
-- announced_at, then Kafka position), so a re-announced event moves instead of doubling.
CREATE TABLE scheduled_events (
    venue_id            text NOT NULL,
    event_id            text NOT NULL,
    kind                text NOT NULL,
    starts_at           timestamptz NOT NULL,
    ends_at             timestamptz NOT NULL,
    title               text NULL,
    expected_attendance int NULL,
    announced_at        timestamptz NOT NULL,  -- the announcement's event_time
    src_partition       int NOT NULL,
    src_offset          bigint NOT NULL,
    PRIMARY KEY (venue_id, event_id),
    UNIQUE (src_partition, src_offset)
);
-- the annotations ask for the events overlapping a time range
CREATE INDEX scheduled_events_starts_at ON scheduled_events (starts_at);
