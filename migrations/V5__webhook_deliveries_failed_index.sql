-- Counting given-up webhook deliveries, for the `webhook_deliveries_failed` gauge that
-- every replica refreshes every few seconds. The outbox gains a row per event and
-- subscription and keeps delivered and failed rows, so without this index the count
-- would read the whole table each time; with it, only the failed rows. (Pending rows are
-- counted through webhook_deliveries_due_idx.)
--
-- Building it blocks writes to webhook_deliveries, and so every event written while a
-- subscription is active, for as long as it reads the table. On a large outbox, build
-- it beforehand with CREATE INDEX CONCURRENTLY and this very definition; this statement
-- then finds it and does nothing.
CREATE INDEX IF NOT EXISTS webhook_deliveries_failed_idx ON webhook_deliveries (id)
    WHERE state = 'failed';
