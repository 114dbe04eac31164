//! Housekeeping of the payment tables, run hourly by the app: raw callback bodies older than
//! `payments.callback_retention_days` are emptied (the row — channel, subject, order, outcome,
//! when — stays for the audit trail and the duplicate check), finished `purpose_outbox` rows
//! older than the same period are deleted (a step still waiting is never), and idempotency
//! keys past their day are deleted. Work is done in bounded batches so a backlog never holds a lock
//! long.

use crate::store::{Store, StoreError};

/// Rows per statement.
const BATCH: i64 = 5_000;
/// Statements per run and kind: a bigger backlog is finished by the next runs.
const BATCHES_PER_RUN: usize = 20;

pub(crate) const PURGE_BODIES: &str =
    "UPDATE callback_inbox SET body = '\\x'::bytea, headers = '{}', body_purged_at = now()
      WHERE id IN (SELECT id FROM callback_inbox
                    WHERE body_purged_at IS NULL AND received_at < now() - make_interval(days => $1)
                    ORDER BY received_at LIMIT $2)";

/// Purpose steps finished more than `$1` days ago; a waiting one (`done_at IS NULL`) stays
/// however old, for the retry and the operators.
pub(crate) const PURGE_OUTBOX: &str = "DELETE FROM purpose_outbox
      WHERE id IN (SELECT id FROM purpose_outbox
                    WHERE done_at IS NOT NULL AND done_at < now() - make_interval(days => $1)
                    ORDER BY done_at LIMIT $2)";

/// What one run removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub callback_bodies: u64,
    /// Finished `purpose_outbox` rows past retention.
    pub outbox_steps: u64,
    pub idempotency_keys: u64,
}

/// Empties the raw bodies of callbacks received more than `retention_days` ago.
pub async fn purge_callback_bodies(store: &Store, retention_days: u32) -> Result<u64, StoreError> {
    in_batches(store, PURGE_BODIES, retention_days).await
}

/// Deletes the purpose steps finished more than `retention_days` ago.
pub async fn purge_outbox_steps(store: &Store, retention_days: u32) -> Result<u64, StoreError> {
    in_batches(store, PURGE_OUTBOX, retention_days).await
}

/// Runs `sql` (`$1` days, `$2` batch size) until a batch comes back short.
async fn in_batches(store: &Store, sql: &str, retention_days: u32) -> Result<u64, StoreError> {
    let days = i32::try_from(retention_days).unwrap_or(i32::MAX);
    let mut total = 0;
    for _ in 0..BATCHES_PER_RUN {
        let client = store.job_client().await?;
        let statement = client.prepare_cached(sql).await?;
        let n = client.execute(&statement, &[&days, &BATCH]).await?;
        total += n;
        if n < BATCH as u64 {
            break;
        }
    }
    Ok(total)
}

/// One housekeeping run.
pub async fn run_once(store: &Store, retention_days: u32) -> Result<Purged, StoreError> {
    let callback_bodies = purge_callback_bodies(store, retention_days).await?;
    let outbox_steps = purge_outbox_steps(store, retention_days).await?;
    let mut idempotency_keys = 0;
    for _ in 0..BATCHES_PER_RUN {
        let n = super::idempotency::purge(store, BATCH).await?;
        idempotency_keys += n;
        if n < BATCH as u64 {
            break;
        }
    }
    Ok(Purged {
        callback_bodies,
        outbox_steps,
        idempotency_keys,
    })
}
