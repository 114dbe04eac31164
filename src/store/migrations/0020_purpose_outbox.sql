-- Finished purpose steps are purged after the callback retention period (the hourly
-- housekeeping): this index finds the old ones without reading the rows still waiting.
CREATE INDEX purpose_outbox_done_idx ON purpose_outbox (done_at) WHERE done_at IS NOT NULL;

-- A refund that failed for good is a purpose step too (`on_refund_failed`): its module puts
-- back what the refund request changed.
ALTER TABLE purpose_outbox DROP CONSTRAINT purpose_outbox_step_check;
ALTER TABLE purpose_outbox ADD CONSTRAINT purpose_outbox_step_check
    CHECK (step IN ('paid', 'closed', 'refunded', 'refund_failed'));
