//! The reconcile job: for each enabled channel on its own, every few seconds it claims due
//! work with `FOR UPDATE SKIP LOCKED` (so several instances share it without doing anything
//! twice at once) and
//! - queries pending orders on a back-off ladder (a missed callback is found this way),
//! - closes expired orders at the provider and here, cancelled ones once the provider allows
//!   it, and orders whose create died before the provider answered (`pay::close`),
//! - asks the provider where unfinished refunds stand, and re-submits those it lacks;
//!
//! and, in a loop of its own, retries the purposes' steps waiting in the outbox
//! (`pay::outbox`).
//!
//! Claiming moves a row's `next_check_at` past a lease that outlives the worst case of the
//! whole batch, so no lock is held during provider calls and no other instance touches the
//! row meanwhile. Items run [`CONCURRENCY`] at a time, each bounded by the lease: one bad
//! order is logged and skipped, never the end of the pass; an answer that contradicts the
//! order is flagged for an operator (`reconcile_issue`) instead of being asked again forever;
//! a hanging gateway delays only its own channel's loop.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::time::Instant;

use super::close::{CloseKind, close_allowed_at};
use super::engine::{Engine, EngineError, insert_event, next_check};
use super::provider::{Channel, TradeState};

/// Rows claimed per pass, kind (orders, refunds) and channel.
pub const BATCH: i64 = 50;
/// Items in progress at once per pass and channel (each makes its provider calls in turn).
pub const CONCURRENCY: usize = 16;
/// The most provider calls one item can take: query, close, query again, and for a late
/// payment under `late_payment: refund` the refund and its confirming query.
const CALLS_PER_ITEM: u32 = 5;
/// What the lease keeps beyond the batch's worst case; items not started by then are left
/// for the next claim.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// The longest one item may take: every provider call it can make, each at its worst
/// (`call_budget`: one provider call and the database work around it).
pub fn item_budget(call_budget: Duration) -> Duration {
    call_budget * CALLS_PER_ITEM
}

/// How long a claim keeps other instances off a row: the batch's rounds of
/// [`CONCURRENCY`] items, each at its worst, plus a margin.
pub fn lease_for(call_budget: Duration) -> Duration {
    let rounds = u32::try_from(BATCH).unwrap_or(u32::MAX).div_ceil(CONCURRENCY as u32);
    item_budget(call_budget) * rounds + LEASE_MARGIN
}

fn lease(engine: &Engine) -> Duration {
    lease_for(engine.settings.call_budget())
}

/// Runs one loop per enabled channel and one for the purposes' outbox, a pass every
/// `interval`, until `shutdown` turns true.
pub async fn run(engine: Arc<Engine>, interval: Duration, shutdown: watch::Receiver<bool>) {
    let loops = engine
        .providers
        .channels()
        .into_iter()
        .map(|channel| run_channel(Arc::clone(&engine), channel, interval, shutdown.clone()));
    let outbox = run_outbox(Arc::clone(&engine), interval, shutdown.clone());
    futures_util::future::join(futures_util::future::join_all(loops), outbox).await;
}

/// The outbox's loop: due steps retried every `interval`; a full batch is followed by the
/// next at once.
async fn run_outbox(engine: Arc<Engine>, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut backlog = false;
    loop {
        if !backlog {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        } else if *shutdown.borrow() {
            return;
        }
        backlog = match engine.retry_purpose_steps(BATCH).await {
            Ok(retried) => retried.applied + retried.failed == BATCH as usize && retried.failed == 0,
            Err(e) => {
                tracing::warn!(error = %e, "purpose outbox pass failed; next pass retries");
                false
            }
        };
    }
}

/// One channel's loop. A pass that claimed a full batch is followed by the next at once, so
/// a backlog (after an outage) drains at the pass rate rather than one batch per interval.
async fn run_channel(engine: Arc<Engine>, channel: Channel, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut backlog = false;
    loop {
        if !backlog {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        } else if *shutdown.borrow() {
            return;
        }
        backlog = match pass_channel(&engine, channel).await {
            Ok(report) => {
                if report.errors > 0 {
                    tracing::warn!(
                        channel = channel.as_str(),
                        ?report,
                        "reconcile pass finished with errors; those rows are retried after their lease"
                    );
                }
                let full = BATCH as usize;
                (report.queried == full || report.refunds_checked == full) && report.errors == 0
            }
            Err(e) => {
                tracing::warn!(channel = channel.as_str(), error = %e, "reconcile pass failed; next pass retries");
                false
            }
        };
    }
}

/// What one pass did (for tests and logs).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    pub queried: usize,
    pub paid: usize,
    pub closed: usize,
    /// Orders flagged for an operator: the provider's answer contradicts them.
    pub flagged: usize,
    pub refunds_checked: usize,
    /// Items that failed (database or provider trouble, or out of time); retried later.
    pub errors: usize,
    /// Items left for the next claim because the lease was running out.
    pub skipped: usize,
    /// Purpose steps applied from the outbox.
    pub purpose_steps: usize,
    /// Orders whose waiting purpose step failed again.
    pub purpose_steps_failed: usize,
}

impl PassReport {
    fn add(&mut self, other: PassReport) {
        self.queried += other.queried;
        self.paid += other.paid;
        self.closed += other.closed;
        self.flagged += other.flagged;
        self.refunds_checked += other.refunds_checked;
        self.errors += other.errors;
        self.skipped += other.skipped;
        self.purpose_steps += other.purpose_steps;
        self.purpose_steps_failed += other.purpose_steps_failed;
    }
}

/// One pass over everything due now, every enabled channel at once, then the outbox.
pub async fn pass(engine: &Engine) -> Result<PassReport, EngineError> {
    let passes = engine
        .providers
        .channels()
        .into_iter()
        .map(|channel| pass_channel(engine, channel));
    let mut report = PassReport::default();
    for result in futures_util::future::join_all(passes).await {
        report.add(result?);
    }
    let retried = engine.retry_purpose_steps(BATCH).await?;
    report.purpose_steps = retried.applied;
    report.purpose_steps_failed = retried.failed;
    Ok(report)
}

/// What became of one claimed item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Paid,
    Closed,
    /// Still pending (or its query failed): asked again later on the ladder.
    Rescheduled,
    Flagged,
    /// A refund looked at.
    Checked,
    Failed,
    Skipped,
}

/// A pending order due for a query.
#[derive(Debug)]
struct Due {
    order_no: String,
    expires_at: OffsetDateTime,
    /// Queries so far (the ladder's step).
    checks: usize,
    /// Its QR code was stored (false: its create died before the provider answered).
    submitted: bool,
    /// When the provider allows closing it, if the buyer cancelled it.
    cancel_at: Option<OffsetDateTime>,
}

/// One pass over `channel`'s due orders and refunds.
pub async fn pass_channel(engine: &Engine, channel: Channel) -> Result<PassReport, EngineError> {
    let lease = lease(engine);
    let mut report = PassReport::default();
    let started = Instant::now();
    let due = claim_pending(engine, channel, lease).await?;
    report.queried = due.len();
    let deadline = started + lease - LEASE_MARGIN;
    let outcomes: Vec<Outcome> = futures_util::stream::iter(due)
        .map(|order| async move { bounded(deadline, &order.order_no, reconcile_order(engine, channel, &order)).await })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let refunds = claim_refunds(engine, channel, lease).await?;
    report.refunds_checked = refunds.len();
    let deadline = Instant::now() + lease - LEASE_MARGIN;
    let checked: Vec<Outcome> = futures_util::stream::iter(refunds)
        .map(|refund_no| async move {
            let work = async { engine.check_refund(&refund_no).await.map(|()| Outcome::Checked) };
            bounded(deadline, &refund_no, work).await
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for outcome in outcomes.into_iter().chain(checked) {
        match outcome {
            Outcome::Paid => report.paid += 1,
            Outcome::Closed => report.closed += 1,
            Outcome::Flagged => report.flagged += 1,
            Outcome::Failed => report.errors += 1,
            Outcome::Skipped => report.skipped += 1,
            Outcome::Rescheduled | Outcome::Checked => {}
        }
    }
    Ok(report)
}

/// Runs one item unless the lease is running out, and only until it does; its error is
/// logged and counted, never the end of the pass.
async fn bounded(
    deadline: Instant,
    subject: &str,
    work: impl Future<Output = Result<Outcome, EngineError>>,
) -> Outcome {
    if Instant::now() >= deadline {
        return Outcome::Skipped;
    }
    match tokio::time::timeout_at(deadline, work).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => {
            tracing::info!(%subject, error = %e, "reconcile item failed; retried after its lease");
            Outcome::Failed
        }
        Err(_) => {
            tracing::warn!(%subject, "reconcile item out of time; retried after its lease");
            Outcome::Failed
        }
    }
}

/// Queries one pending order and acts on the answer.
async fn reconcile_order(engine: &Engine, channel: Channel, due: &Due) -> Result<Outcome, EngineError> {
    let no = &due.order_no;
    let now = OffsetDateTime::now_utc();
    let cancel_due = due.cancel_at.is_some_and(|at| now >= at);
    let closing = match engine.query(channel, no).await {
        Ok(TradeState::Paid(paid)) if paid.order_no != *no => {
            let why = format!("the query answered about order {:?}", paid.order_no);
            flag(engine, no, &why).await?;
            return Ok(Outcome::Flagged);
        }
        Ok(TradeState::Paid(paid)) => {
            return match engine.apply_payment(channel, &paid, None, "reconcile").await {
                Ok(_) => Ok(Outcome::Paid),
                Err(EngineError::Mismatch(why)) => flag(engine, no, &why).await.map(|()| Outcome::Flagged),
                Err(e) => Err(e),
            };
        }
        // Not paid, or unknown to the provider: an order nobody has the QR code of (its
        // create died before it was stored) closes now, others at expiry or once a cancel
        // may close them.
        Ok(TradeState::Pending) => !due.submitted || cancel_due || now >= due.expires_at,
        Ok(TradeState::Closed) => true,
        Err(e) => {
            tracing::info!(order_no = %no, error = %e, "order query failed; will ask again");
            false
        }
    };
    if !closing {
        let next = next_check(now, due.checks, due.expires_at);
        let next = due.cancel_at.filter(|at| *at > now).map_or(next, |at| next.min(at));
        schedule(engine, no, next).await?;
        return Ok(Outcome::Rescheduled);
    }
    let kind = if !due.submitted {
        CloseKind::Abandoned
    } else if due.cancel_at.is_some() {
        CloseKind::Cancelled
    } else {
        CloseKind::Expired
    };
    match engine.close_order(no, channel, kind).await {
        Ok(()) => Ok(Outcome::Closed),
        Err(EngineError::Mismatch(why)) => flag(engine, no, &why).await.map(|()| Outcome::Flagged),
        Err(e) => Err(e),
    }
}

const FLAG: &str = "UPDATE payments SET reconcile_issue = $2, reconcile_issue_at = now(), next_check_at = 'infinity'
      WHERE order_no = $1 AND status = 'pending' RETURNING order_no";

/// Takes a pending order off the ladder for an operator, with the reason, audited.
async fn flag(engine: &Engine, order_no: &str, why: &str) -> Result<(), EngineError> {
    tracing::warn!(%order_no, %why, "the provider's answer contradicts the order; flagged for an operator");
    let mut client = engine.store.client().await?;
    let tx = client.transaction().await?;
    if tx.query_opt(FLAG, &[&order_no, &why]).await?.is_some() {
        let detail = serde_json::json!({ "issue": why });
        insert_event(
            &tx,
            order_no,
            "reconcile_flagged",
            Some("pending"),
            None,
            None,
            "reconcile",
            detail,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

const CLAIM_PENDING: &str =
    "UPDATE payments p SET next_check_at = now() + make_interval(secs => $2), check_count = check_count + 1
       FROM (SELECT order_no FROM payments
              WHERE status = 'pending' AND next_check_at <= now() AND channel = $3
              ORDER BY next_check_at LIMIT $1 FOR UPDATE SKIP LOCKED) due
      WHERE p.order_no = due.order_no
  RETURNING p.order_no, p.expires_at, p.check_count, p.code_url IS NOT NULL, p.cancel_requested_at IS NOT NULL,
            p.created_at";

/// `channel`'s pending orders whose next check is due, claimed for `lease`.
async fn claim_pending(engine: &Engine, channel: Channel, lease: Duration) -> Result<Vec<Due>, EngineError> {
    let client = engine.store.client().await?;
    let statement = client.prepare_cached(CLAIM_PENDING).await?;
    let rows = client
        .query(&statement, &[&BATCH, &lease.as_secs_f64(), &channel.as_str()])
        .await?;
    Ok(rows
        .iter()
        .map(|row| Due {
            order_no: row.get(0),
            expires_at: row.get(1),
            checks: usize::try_from(row.get::<_, i32>(2)).unwrap_or(0),
            submitted: row.get(3),
            cancel_at: row.get::<_, bool>(4).then(|| close_allowed_at(channel, row.get(5))),
        })
        .collect())
}

const CLAIM_REFUNDS: &str = "UPDATE refunds r SET next_check_at = now() + make_interval(secs => $2)
       FROM (SELECT r.refund_no FROM refunds r JOIN payments p USING (order_no)
              WHERE r.status = 'processing' AND r.next_check_at <= now() AND p.channel = $3
              ORDER BY r.next_check_at LIMIT $1 FOR UPDATE OF r SKIP LOCKED) due
      WHERE r.refund_no = due.refund_no
  RETURNING r.refund_no";

/// `channel`'s processing refunds whose next check is due, claimed for `lease`.
async fn claim_refunds(engine: &Engine, channel: Channel, lease: Duration) -> Result<Vec<String>, EngineError> {
    let client = engine.store.client().await?;
    let statement = client.prepare_cached(CLAIM_REFUNDS).await?;
    let rows = client
        .query(&statement, &[&BATCH, &lease.as_secs_f64(), &channel.as_str()])
        .await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_outlives_the_worst_case_of_its_whole_batch() {
        for timeout_secs in [1, 10, 60] {
            let call_budget = Duration::from_secs(timeout_secs) + crate::store::ANSWER_WITHIN;
            let lease = lease_for(call_budget);
            // Every item at its worst, CONCURRENCY at a time, with nothing overlapping.
            let worst = item_budget(call_budget) * (BATCH as u32).div_ceil(CONCURRENCY as u32);
            assert!(lease >= worst + LEASE_MARGIN, "{timeout_secs} s: {lease:?} < {worst:?}");
            assert!(
                item_budget(call_budget) >= call_budget * 5,
                "query, close, query, refund, refund query"
            );
        }
    }
}
