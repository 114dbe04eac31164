-- Purposes on the pay engine: a purchase's payment row is written before its provider order
-- (in the transaction that reserves its stock), so `code_url` is filled in afterwards; a
-- purpose is any registered name, checked by the engine; a buyer's cancel is remembered until
-- the provider allows the close; and a purpose step that failed waits in an outbox, retried,
-- while the payment it belongs to stands.

ALTER TABLE payments DROP CONSTRAINT payments_purpose_check;
ALTER TABLE payments ADD CONSTRAINT payments_purpose_check CHECK (purpose ~ '^[a-z][a-z0-9_]{0,31}$');

-- NULL between a purchase's commit and its provider's answer (or for good, when the process
-- died in between: the reconcile job then closes the order).
ALTER TABLE payments ALTER COLUMN code_url DROP NOT NULL;

ALTER TABLE payments
    -- The buyer asked to cancel while it was pending: closed at the provider once its rules
    -- allow (WeChat: 5 minutes after creation); a payment landing meanwhile is refunded.
    ADD COLUMN cancel_requested_at timestamptz,
    -- Steps of this order's purpose still waiting in purpose_outbox: later steps queue
    -- behind them, so a purpose sees its steps in order.
    ADD COLUMN purpose_backlog integer NOT NULL DEFAULT 0 CHECK (purpose_backlog >= 0);

-- A purpose's step (on_paid, on_closed, on_refunded) that failed inside the payment's
-- transaction, rolled back to its savepoint while the payment committed. Retried with the
-- payment row locked; `done_at` is set in the same transaction as the step's effects.
CREATE TABLE purpose_outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_no        text NOT NULL REFERENCES payments (order_no),
    purpose         text NOT NULL,
    step            text NOT NULL CHECK (step IN ('paid', 'closed', 'refunded')),
    -- The refund number of a `refunded` step; '' otherwise.
    subject         text NOT NULL DEFAULT '',
    amount_fen      bigint,
    attempts        integer NOT NULL DEFAULT 1,
    last_error      text,
    next_attempt_at timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    done_at         timestamptz,
    UNIQUE (order_no, step, subject)
);

CREATE INDEX purpose_outbox_due_idx ON purpose_outbox (next_attempt_at) WHERE done_at IS NULL;
