-- Donation totals per category × donor × local day, kept in step with payments and refunds
-- inside their transactions, so rankings and stats never scan payments.
-- donor_key: 'u:<user id>' for a signed-in donor, 'n:<trimmed name>' for a named one, and
-- 'a:<order_no>' for an anonymous or nameless donation (never merged with another).
CREATE TABLE donation_totals (
    category_id   bigint NOT NULL REFERENCES categories (id),
    donor_key     text NOT NULL,
    day           date NOT NULL,
    donor         text NOT NULL,
    amount_fen    bigint NOT NULL,
    count         integer NOT NULL,
    first_paid_at timestamptz NOT NULL,
    PRIMARY KEY (category_id, donor_key, day)
);

CREATE INDEX donation_totals_day_idx ON donation_totals (day);

-- Recent donations: the newest paid ones first.
CREATE INDEX payments_paid_at_idx ON payments (paid_at DESC) WHERE paid_at IS NOT NULL;

-- Settings the stored data depends on (the rankings time zone the days were cut in).
CREATE TABLE app_state (
    key   text PRIMARY KEY,
    value text NOT NULL
);
