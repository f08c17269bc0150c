-- Webhooks fed from the ticket event log, and login throttling shared by every replica.

-- A superuser's subscription: `events` holds event types, or '*' for all.
CREATE TABLE webhooks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    url         text        NOT NULL CHECK (url ~ '^https?://' AND char_length(url) <= 2048),
    events      text[]      NOT NULL CHECK (cardinality(events) >= 1),
    description text        NOT NULL DEFAULT '' CHECK (char_length(description) <= 1000),
    -- The signing key, `whsec_` and base64. Shown once, when the webhook is created.
    secret      text        NOT NULL,
    active      boolean     NOT NULL DEFAULT true
);

CREATE TYPE webhook_delivery_state AS ENUM ('pending', 'delivered', 'failed');

-- The outbox: one row per event and matching subscription, written in the transaction
-- of the event itself (see the adapter's event append), so that no event is lost
-- between its commit and its delivery. Workers in every replica claim due rows with
-- FOR UPDATE SKIP LOCKED and a lease (`leased_until`); a replica killed mid-delivery
-- leaves a lease that expires, and another takes the row over.
CREATE TABLE webhook_deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id      bigint                 NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        bigint                 NOT NULL REFERENCES ticket_events (id),
    created_at      timestamptz            NOT NULL DEFAULT now(),
    state           webhook_delivery_state NOT NULL DEFAULT 'pending',
    -- Attempts made so far.
    attempts        integer                NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz            NOT NULL DEFAULT now(),
    leased_until    timestamptz,
    UNIQUE (webhook_id, event_id)
);

-- What workers claim: due, pending deliveries, oldest due first.
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';
-- Serves the foreign key to events.
CREATE INDEX webhook_deliveries_event_id_idx ON webhook_deliveries (event_id);

-- Every attempt, as `GET /webhooks/{id}/deliveries` lists them (newest first).
CREATE TABLE webhook_attempts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id     bigint      NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    webhook_id      bigint      NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        bigint      NOT NULL REFERENCES ticket_events (id),
    attempt         integer     NOT NULL CHECK (attempt >= 1),
    -- NULL when no HTTP answer came; `error` says why then.
    status_code     integer     CHECK (status_code BETWEEN 100 AND 599),
    error           text,
    duration_ms     integer     NOT NULL CHECK (duration_ms >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- When the next attempt is due; NULL when none is.
    next_attempt_at timestamptz,
    -- Either an HTTP answer came (its status) or it did not (why).
    CHECK ((status_code IS NULL) <> (error IS NULL))
);

CREATE INDEX webhook_attempts_webhook_id_id_idx ON webhook_attempts (webhook_id, id DESC);
CREATE INDEX webhook_attempts_delivery_id_idx ON webhook_attempts (delivery_id);
CREATE INDEX webhook_attempts_event_id_idx ON webhook_attempts (event_id);

-- Failed logins per account and per client address, counted in fixed windows, so that
-- N replicas enforce one limit rather than N times it.
CREATE TABLE login_failures (
    scope        text        NOT NULL CHECK (scope IN ('account', 'address')),
    key          text        NOT NULL,
    window_start timestamptz NOT NULL,
    failures     integer     NOT NULL CHECK (failures >= 0),
    PRIMARY KEY (scope, key)
);

-- Forgetting expired windows.
CREATE INDEX login_failures_window_start_idx ON login_failures (window_start);
