-- Leitstand history, schema v4 (docs/database.md): bus stop passages (adherence per line).
-- Never edit an applied migration: add 0005_... instead.

-- transit.passages (BusPassage): one row per bus at a stop, as the bus agent estimated it.
-- punctuality is the worker's judgement with its on-time window (LEITSTAND_BUS_ON_TIME_*), so the
-- dashboards do not repeat that rule; the headway columns are NULL when no bus of the line and
-- direction passed the stop before it (or the headway was not measured: too long, or a timetable
-- whose trips lie under a minute apart).
CREATE TABLE bus_passages (
    event_time          timestamptz NOT NULL,  -- estimated passage time
    route_id            text NOT NULL,
    direction_id        smallint NOT NULL,
    trip_id             text NOT NULL,
    vehicle_id          text NOT NULL,
    stop_id             text NOT NULL,
    stop_index          int NOT NULL,
    scheduled_at        timestamptz NOT NULL,
    delay_s             double precision NOT NULL,  -- negative: early
    punctuality         text NOT NULL CHECK (punctuality IN ('early', 'on_time', 'late')),
    headway_s           double precision NULL,
    scheduled_headway_s double precision NULL,
    headway_kind        text NULL CHECK (headway_kind IN ('bunched', 'gap', 'regular')),
    src_partition       int NOT NULL,
    src_offset          bigint NOT NULL,
    UNIQUE (src_partition, src_offset),
    -- one row per passage: a passage made again (the bus agent re-reading positions after a
    -- crash) is not written twice (the sink inserts ON CONFLICT DO NOTHING: the first stays)
    UNIQUE (trip_id, stop_index, scheduled_at)
);
-- the dashboards ask per line over a time range; retention deletes by event_time
CREATE INDEX bus_passages_route_time ON bus_passages (route_id, event_time);
CREATE INDEX bus_passages_event_time ON bus_passages (event_time);
