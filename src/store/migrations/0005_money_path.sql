-- Money-path hardening: orders the reconcile job cannot settle by itself are flagged for an
-- operator; idempotency keys for every create that costs money; raw callback bodies can be
-- purged after their retention period while the row (what arrived, when, what it did) stays.

-- A query answer that disagrees with the order (another amount, another order) stops the
-- reconcile ladder: the order waits for an operator instead of being queried forever.
ALTER TABLE payments
    ADD COLUMN reconcile_issue    text,
    ADD COLUMN reconcile_issue_at timestamptz;

CREATE INDEX payments_reconcile_issue_idx ON payments (reconcile_issue_at DESC)
    WHERE reconcile_issue IS NOT NULL;

-- Idempotency-Key: one row per (scope, key). `resource_id` is chosen when the key is first
-- seen and becomes the order or refund number, so a request retried after a crash makes
-- the same provider order or refund. `status` is NULL while the first request runs.
CREATE TABLE idempotency_keys (
    scope        text NOT NULL,
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    fingerprint  bytea NOT NULL CHECK (length(fingerprint) = 32),
    resource_id  text NOT NULL,
    status       smallint CHECK (status BETWEEN 100 AND 599),
    content_type text,
    location     text,
    body         bytea,
    locked_until timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (scope, key),
    CHECK ((status IS NULL) = (body IS NULL))
);

CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);

-- Raw bodies older than payments.callback_retention_days are emptied; the row stays.
ALTER TABLE callback_inbox ADD COLUMN body_purged_at timestamptz;
