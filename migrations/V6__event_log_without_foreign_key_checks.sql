-- The event log's rows no longer have PostgreSQL check their ticket and actor. Every
-- write of the service appends its events in the transaction that has just written
-- (and so locked) the ticket's row, after confirming the acting user in that same
-- transaction; no statement of the service deletes a ticket or a user. The checks were
-- therefore always true, and not cheap: each event's insert ran one trigger query per
-- reference, about 60 and 30 µs (EXPLAIN ANALYZE), most of the append's time, on every
-- write. The end-to-end tests check after every test that each event's ticket and
-- actor exist (crates/http/tests/api/invariants.rs: EventWithoutTicket,
-- EventWithoutActor).
--
-- A tool that deletes tickets or users by hand must delete their events first, as the
-- constraint used to demand.
ALTER TABLE ticket_events DROP CONSTRAINT ticket_events_ticket_id_fkey;
ALTER TABLE ticket_events DROP CONSTRAINT ticket_events_actor_id_fkey;
