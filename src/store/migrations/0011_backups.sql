-- Scheduled backups (backup.*): one row per run, claimed by one instance; the metric
-- zhifu_last_backup_timestamp_seconds reads the newest completed one.
CREATE TABLE backup_runs (
    id          bigserial PRIMARY KEY,
    file        text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    bytes       bigint,
    -- NULL when the run succeeded (or is still running).
    error       text
);
CREATE INDEX backup_runs_started_idx ON backup_runs (started_at DESC);
