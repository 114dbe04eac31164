-- An index for every filter of the admin area and every housekeeping delete, checked by
-- tests/api/indexes.rs with EXPLAIN on 100 000 rows (no sequential scan of a big table).

-- Payment search: order number prefix (a range on text_pattern_ops, usable by generic
-- plans), status and channel (newest first), and the reconcile report's old pending orders.
CREATE INDEX payments_order_no_pattern_idx ON payments (order_no text_pattern_ops);
CREATE INDEX payments_status_created_idx ON payments (status, created_at);
CREATE INDEX payments_channel_created_idx ON payments (channel, created_at);
-- The reconcile report's late payments, newest first.
CREATE INDEX payments_late_idx ON payments (paid_at) WHERE late;

-- The callback inbox by order, and the refused callbacks (rare) by arrival.
CREATE INDEX callback_inbox_order_idx ON callback_inbox (order_no, id) WHERE order_no IS NOT NULL;
CREATE INDEX callback_inbox_refused_idx ON callback_inbox (id) WHERE NOT accepted;
-- Bodies still to purge once past their retention.
CREATE INDEX callback_inbox_unpurged_idx ON callback_inbox (received_at) WHERE body_purged_at IS NULL;

-- The reconcile report's refunds still processing or failed, oldest first.
CREATE INDEX refunds_open_idx ON refunds (created_at) WHERE status IN ('processing', 'failed');
