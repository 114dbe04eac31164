-- The payment engine: one row per order whatever its purpose, the donation details, every
-- transition audited, every accepted provider callback kept raw, and refunds.

CREATE TABLE payments (
    order_no       text PRIMARY KEY CHECK (order_no ~ '^[0-9A-Za-z_-]{6,32}$'),
    purpose        text NOT NULL CHECK (purpose IN ('donation', 'backing', 'mall_order')),
    channel        text NOT NULL CHECK (channel IN ('wechat', 'alipay')),
    amount_fen     bigint NOT NULL CHECK (amount_fen > 0),
    status         text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'paid', 'closed', 'refunded')),
    code_url       text NOT NULL,
    description    text NOT NULL DEFAULT '',
    expires_at     timestamptz NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    paid_at        timestamptz,
    closed_at      timestamptz,
    transaction_id text,
    -- Paid after the order had closed.
    late           boolean NOT NULL DEFAULT false,
    refunded_fen   bigint NOT NULL DEFAULT 0,
    -- Reconcile ladder: when to ask the provider next, and how often we asked.
    next_check_at  timestamptz NOT NULL,
    check_count    integer NOT NULL DEFAULT 0,
    CHECK (refunded_fen >= 0 AND refunded_fen <= amount_fen),
    CHECK ((status IN ('paid', 'refunded')) = (paid_at IS NOT NULL))
);

CREATE UNIQUE INDEX payments_channel_transaction_key ON payments (channel, transaction_id)
    WHERE transaction_id IS NOT NULL;
CREATE INDEX payments_pending_check_idx ON payments (next_check_at) WHERE status = 'pending';
CREATE INDEX payments_created_idx ON payments (created_at);

CREATE TABLE donations (
    order_no    text PRIMARY KEY REFERENCES payments (order_no),
    category_id bigint NOT NULL REFERENCES categories (id),
    donor_name  text NOT NULL DEFAULT '' CHECK (length(donor_name) <= 32),
    message     text NOT NULL DEFAULT '' CHECK (length(message) <= 200),
    anonymous   boolean NOT NULL DEFAULT false,
    -- The signed-in donor, once accounts exist.
    user_id     bigint
);

CREATE INDEX donations_category_idx ON donations (category_id);

-- Every state change of a payment or refund, with who or what caused it.
CREATE TABLE payment_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_no    text NOT NULL REFERENCES payments (order_no),
    kind        text NOT NULL,
    from_status text,
    to_status   text,
    amount_fen  bigint,
    source      text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX payment_events_order_idx ON payment_events (order_no, id);

-- Provider callbacks, raw. An accepted callback is stored once per (channel, subject, kind):
-- a repeat finds the row and changes nothing. Refused ones (verified but mismatching) are
-- kept for the reconcile report, as many times as they arrive.
CREATE TABLE callback_inbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel     text NOT NULL CHECK (channel IN ('wechat', 'alipay')),
    kind        text NOT NULL CHECK (kind IN ('payment', 'refund', 'other')),
    subject_id  text NOT NULL,
    order_no    text,
    accepted    boolean NOT NULL,
    outcome     text NOT NULL,
    headers     jsonb NOT NULL DEFAULT '{}',
    body        bytea NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX callback_inbox_subject_key ON callback_inbox (channel, subject_id, kind) WHERE accepted;
CREATE INDEX callback_inbox_received_idx ON callback_inbox (received_at);

-- Refunds: our refund_no is WeChat's out_refund_no / Alipay's out_request_no, so retrying a
-- refund at the provider is idempotent.
CREATE TABLE refunds (
    refund_no          text PRIMARY KEY CHECK (refund_no ~ '^[0-9A-Za-z_-]{6,64}$'),
    order_no           text NOT NULL REFERENCES payments (order_no),
    amount_fen         bigint NOT NULL CHECK (amount_fen > 0),
    reason             text NOT NULL DEFAULT '',
    status             text NOT NULL DEFAULT 'processing'
                       CHECK (status IN ('processing', 'succeeded', 'failed')),
    provider_refund_id text,
    requested_by       text NOT NULL,
    failure            text,
    attempts           integer NOT NULL DEFAULT 0,
    next_check_at      timestamptz NOT NULL DEFAULT now(),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX refunds_order_idx ON refunds (order_no);
CREATE INDEX refunds_processing_idx ON refunds (next_check_at) WHERE status = 'processing';
