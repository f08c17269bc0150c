-- A write's events and COMMIT in one round trip: events::APPEND
-- (crates/postgres/src/events.rs), sent with COMMIT as `commit` in
-- crates/postgres/src/tickets.rs sends it. The bench binary replaces `:event_ticket`,
-- `:event_types`, `:event_internal` and `:event_data` with the write's own (see
-- `events_of` in crates/bench/src/pgbench.rs). The service binds the ids it read from
-- its first statement's row; pgbench cannot carry a result into a pipeline, so the
-- same ids are the sequences' current values here.
\startpipeline
INSERT INTO ticket_events (ticket_id, actor_id, type, internal, data)
SELECT :event_ticket, :uid, e.type::ticket_event_type, e.internal, e.data
FROM unnest(:event_types::text[], :event_internal::bool[], :event_data::jsonb[])
WITH ORDINALITY AS e(type, internal, data, n)
ORDER BY e.n;
COMMIT;
\endpipeline
