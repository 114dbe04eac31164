-- Finished purpose steps are purged after the callback retention period (the hourly
-- housekeeping): this index finds the old ones without reading the rows still waiting.
CREATE INDEX purpose_outbox_done_idx ON purpose_outbox (done_at) WHERE done_at IS NOT NULL;
