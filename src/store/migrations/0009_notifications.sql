-- Notifications: written by any module inside its own transaction (notify::notify), read
-- newest first, counted unread through a partial index.

CREATE TABLE notifications (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recipient_id bigint NOT NULL REFERENCES users (id),
    kind         text NOT NULL CHECK (kind IN ('comment', 'reply', 'like', 'follow', 'project_review',
                     'project_update', 'project_result', 'order_paid', 'order_shipped', 'refund')),
    -- Who acted, as shown; NULL for the system or an anonymous author.
    actor_id     bigint REFERENCES users (id),
    target_type  text NOT NULL CHECK (target_type ~ '^[a-z_]{1,32}$'),
    -- The target's id: a number (users, posts, projects…) or a key (an order number).
    target_id    bigint,
    target_key   text,
    text         text NOT NULL DEFAULT '' CHECK (char_length(text) <= 500),
    -- The same key for the same recipient notifies once (a like removed and given again).
    dedupe_key   text,
    read_at      timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((target_id IS NULL) <> (target_key IS NULL))
);

CREATE INDEX notifications_recipient_idx ON notifications (recipient_id, id DESC);
CREATE INDEX notifications_unread_idx ON notifications (recipient_id, id DESC) WHERE read_at IS NULL;
CREATE UNIQUE INDEX notifications_dedupe_key ON notifications (recipient_id, dedupe_key) WHERE dedupe_key IS NOT NULL;
