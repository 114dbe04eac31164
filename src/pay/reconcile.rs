//! The reconcile job: every few seconds it claims due work with `FOR UPDATE SKIP LOCKED`
//! (so several instances share it without doing anything twice at once) and
//! - queries pending orders on a back-off ladder (a missed callback is found this way),
//! - closes expired orders at the provider and here,
//! - submits or re-checks refunds that are not finished.
//!
//! Claiming moves a row's `next_check_at` forward, so no lock is held during provider calls.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;

use super::engine::{Engine, EngineError, next_check};
use super::provider::{Channel, TradeState};

/// Rows claimed per pass and kind.
const BATCH: i64 = 50;
/// How long a claim keeps other instances off a row.
const LEASE_SECS: f64 = 60.0;

/// Runs passes every `interval` until `shutdown` turns true.
pub async fn run(engine: Arc<Engine>, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        if let Err(e) = pass(&engine).await {
            tracing::warn!(error = %e, "reconcile pass failed; next pass retries");
        }
    }
}

/// What one pass did (for tests and logs).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    pub queried: usize,
    pub paid: usize,
    pub closed: usize,
    pub refunds_checked: usize,
}

/// One pass over everything due now.
pub async fn pass(engine: &Engine) -> Result<PassReport, EngineError> {
    let mut report = PassReport::default();
    let due = claim_pending(engine).await?;
    for (order_no, channel, expires_at, checks) in due {
        report.queried += 1;
        let now = OffsetDateTime::now_utc();
        match engine.query(channel, &order_no).await {
            Ok(TradeState::Paid(paid)) => {
                if paid.order_no == order_no {
                    engine.apply_payment(channel, &paid, None, "reconcile").await?;
                    report.paid += 1;
                }
            }
            Ok(TradeState::Pending) if now >= expires_at => {
                engine.close_expired(&order_no, channel).await?;
                report.closed += 1;
            }
            Ok(TradeState::Closed) => {
                engine.close_expired(&order_no, channel).await?;
                report.closed += 1;
            }
            Ok(TradeState::Pending) => schedule(engine, &order_no, next_check(now, checks, expires_at)).await?,
            Err(e) => {
                tracing::info!(%order_no, error = %e, "order query failed; will ask again");
                schedule(engine, &order_no, next_check(now, checks, expires_at)).await?;
            }
        }
    }
    // The provider's books first; a refund they lack is re-submitted under the same number.
    for refund_no in claim_refunds(engine).await? {
        report.refunds_checked += 1;
        if let Err(e) = engine.check_refund(&refund_no).await {
            tracing::info!(%refund_no, error = %e, "refund not settled yet; will retry");
        }
    }
    Ok(report)
}

/// Pending orders whose next check is due, claimed for [`LEASE_SECS`].
async fn claim_pending(engine: &Engine) -> Result<Vec<(String, Channel, OffsetDateTime, usize)>, EngineError> {
    let client = engine.store.client().await?;
    let statement = client
        .prepare_cached(
            "UPDATE payments p SET next_check_at = now() + make_interval(secs => $2), check_count = check_count + 1
               FROM (SELECT order_no FROM payments
                      WHERE status = 'pending' AND next_check_at <= now()
                      ORDER BY next_check_at LIMIT $1 FOR UPDATE SKIP LOCKED) due
              WHERE p.order_no = due.order_no
              RETURNING p.order_no, p.channel, p.expires_at, p.check_count",
        )
        .await?;
    let rows = client.query(&statement, &[&BATCH, &LEASE_SECS]).await?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            let channel = Channel::parse(row.get(1))?;
            let checks: i32 = row.get(3);
            Some((row.get(0), channel, row.get(2), usize::try_from(checks).unwrap_or(0)))
        })
        .collect())
}

/// Processing refunds whose next check is due, claimed for [`LEASE_SECS`].
async fn claim_refunds(engine: &Engine) -> Result<Vec<String>, EngineError> {
    let client = engine.store.client().await?;
    let statement = client
        .prepare_cached(
            "UPDATE refunds r SET next_check_at = now() + make_interval(secs => $2)
               FROM (SELECT refund_no FROM refunds
                      WHERE status = 'processing' AND next_check_at <= now()
                      ORDER BY next_check_at LIMIT $1 FOR UPDATE SKIP LOCKED) due
              WHERE r.refund_no = due.refund_no
              RETURNING r.refund_no",
        )
        .await?;
    let rows = client.query(&statement, &[&BATCH, &LEASE_SECS]).await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

async fn schedule(engine: &Engine, order_no: &str, at: OffsetDateTime) -> Result<(), EngineError> {
    let client = engine.store.client().await?;
    client
        .execute(
            "UPDATE payments SET next_check_at = $2 WHERE order_no = $1 AND status = 'pending'",
            &[&order_no, &at],
        )
        .await?;
    Ok(())
}
