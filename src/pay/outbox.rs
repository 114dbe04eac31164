//! Running a purpose's steps (`on_paid`, `on_closed`, `on_refunded`, `on_refund_failed`) inside the payment's
//! transaction, each in a SAVEPOINT. A step that fails is rolled back to its savepoint and
//! written to `purpose_outbox` in the same transaction, so the payment commits and the money
//! is never rolled back by a purpose. The retry (run by the reconcile job) takes an order's
//! waiting steps in order with the payment row locked, and marks each done in the same
//! transaction as its effects: exactly once. Steps of an order that has one waiting queue
//! behind it, so a purpose sees them in order.

use std::sync::atomic::Ordering;

use deadpool_postgres::Transaction;

use super::engine::{Engine, EngineError, publish_change};
use super::purpose::{HookError, PaymentRef, Purpose, Purposes, Verdict};
use super::status::Status;

/// One of a purpose's steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    Paid,
    Closed,
    /// A refund succeeded: its number and amount (fen).
    Refunded {
        refund_no: &'a str,
        amount_fen: i64,
    },
    /// A refund failed for good: its number and amount (fen).
    RefundFailed {
        refund_no: &'a str,
        amount_fen: i64,
    },
}

impl Step<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            Step::Paid => "paid",
            Step::Closed => "closed",
            Step::Refunded { .. } => "refunded",
            Step::RefundFailed { .. } => "refund_failed",
        }
    }

    fn subject(&self) -> &str {
        match self {
            Step::Refunded { refund_no, .. } | Step::RefundFailed { refund_no, .. } => refund_no,
            _ => "",
        }
    }

    fn amount(&self) -> Option<i64> {
        match self {
            Step::Refunded { amount_fen, .. } | Step::RefundFailed { amount_fen, .. } => Some(*amount_fen),
            _ => None,
        }
    }
}

/// What became of a step run inside a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    /// The hook ran and its writes are part of the transaction; for `Paid`, its verdict.
    Applied(Verdict),
    /// It failed, or waits behind an earlier step of the order: it is in the outbox.
    Deferred,
}

/// First retry of a failed step, then doubling up to ten minutes.
const DEFER: &str = "WITH o AS (
        INSERT INTO purpose_outbox (order_no, purpose, step, subject, amount_fen, last_error, next_attempt_at)
        VALUES ($1, $2, $3, $4, $5, $6, now() + interval '10 seconds')
        ON CONFLICT (order_no, step, subject) DO NOTHING
        RETURNING order_no)
     UPDATE payments p SET purpose_backlog = p.purpose_backlog + 1 FROM o WHERE p.order_no = o.order_no";

/// The savepoint a step runs in. It is not released after a step that succeeded: COMMIT
/// releases it, and a step costs one round trip more than its hook's own statements.
const SAVEPOINT: &str = "SAVEPOINT zhifu_purpose_step";
const ROLLBACK_TO_SAVEPOINT: &str = "ROLLBACK TO SAVEPOINT zhifu_purpose_step";

/// Runs `step` of the purpose named `purpose` for `payment` in `tx` (whose payment row the
/// caller has locked), in a savepoint. `backlog`: the order's steps already waiting in the
/// outbox (this one then waits behind them).
pub(super) async fn run_step(
    tx: &Transaction<'_>,
    purposes: &Purposes,
    purpose: &str,
    payment: &PaymentRef,
    step: Step<'_>,
    backlog: i32,
) -> Result<Ran, tokio_postgres::Error> {
    let why = if backlog > 0 {
        "waits for an earlier step of this order".to_string()
    } else {
        match purposes.get(purpose) {
            None => format!("purpose {purpose:?} is not registered in this build"),
            Some(hook) => match call(tx, hook, payment, step).await? {
                Ok(verdict) => return Ok(Ran::Applied(verdict)),
                Err(e) => {
                    tracing::warn!(order_no = %payment.order_no, purpose, step = step.name(), error = %e,
                        "a purpose step failed; the payment stands and the step is retried from the outbox");
                    e.to_string()
                }
            },
        }
    };
    let statement = tx.prepare_cached(DEFER).await?;
    tx.execute(
        &statement,
        &[
            &payment.order_no,
            &purpose,
            &step.name(),
            &step.subject(),
            &step.amount(),
            &why,
        ],
    )
    .await?;
    Ok(Ran::Deferred)
}

/// One hook inside a savepoint: `Ok(Err(_))` when the hook failed (its writes undone). A
/// failure of the connection itself is the transition's (`Err`): nothing commits then.
async fn call(
    tx: &Transaction<'_>,
    purpose: &dyn Purpose,
    payment: &PaymentRef,
    step: Step<'_>,
) -> Result<Result<Verdict, HookError>, tokio_postgres::Error> {
    tx.batch_execute(SAVEPOINT).await?;
    let outcome = match step {
        Step::Paid => purpose.on_paid(tx, payment).await,
        Step::Closed => purpose.on_closed(tx, payment).await.map(|()| Verdict::Keep),
        Step::Refunded { amount_fen, .. } => purpose
            .on_refunded(tx, payment, amount_fen)
            .await
            .map(|()| Verdict::Keep),
        Step::RefundFailed { refund_no, amount_fen } => purpose
            .on_refund_failed(tx, payment, refund_no, amount_fen)
            .await
            .map(|()| Verdict::Keep),
    };
    match outcome {
        Ok(verdict) => Ok(Ok(verdict)),
        Err(e) => tx.batch_execute(ROLLBACK_TO_SAVEPOINT).await.map(|()| Err(e)),
    }
}

/// What one retry pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Retried {
    /// Steps applied now.
    pub applied: usize,
    /// Orders whose first waiting step failed again (retried later, with backoff).
    pub failed: usize,
}

const CLAIM: &str = "UPDATE purpose_outbox o SET next_attempt_at = now() + make_interval(secs => $2)
       FROM (SELECT id FROM purpose_outbox WHERE done_at IS NULL AND next_attempt_at <= now()
              ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) due
      WHERE o.id = due.id
  RETURNING o.order_no";

const LOCK_PAYMENT: &str =
    "SELECT purpose, channel, amount_fen, late, cancel_requested_at IS NOT NULL, refunded_fen, status
       FROM payments WHERE order_no = $1 FOR UPDATE";

const WAITING: &str = "SELECT id, step, subject, amount_fen FROM purpose_outbox
      WHERE order_no = $1 AND done_at IS NULL ORDER BY id";

const DONE: &str = "WITH o AS (
        UPDATE purpose_outbox SET done_at = now(), attempts = attempts + 1 WHERE id = $1 AND done_at IS NULL
        RETURNING order_no)
     UPDATE payments p SET purpose_backlog = p.purpose_backlog - 1 FROM o WHERE p.order_no = o.order_no";

const FAILED_AGAIN: &str = "UPDATE purpose_outbox SET attempts = attempts + 1, last_error = $2,
        next_attempt_at = now() + make_interval(secs => least(600, 10 * power(2, least(attempts, 6))))
  WHERE id = $1";

/// How long a claim keeps other instances off a row: an order's retry is database work only.
const CLAIM_LEASE_SECS: f64 = 60.0;

impl Engine {
    /// Retries up to `limit` due outbox rows (each instance claims its own with
    /// `FOR UPDATE SKIP LOCKED`): per order, its waiting steps in order, each marked done in
    /// the transaction of its effects; the first that fails again stops that order's turn.
    pub async fn retry_purpose_steps(&self, limit: i64) -> Result<Retried, EngineError> {
        let claimed: Vec<String> = {
            let client = self.store.job_client().await?;
            let statement = client.prepare_cached(CLAIM).await?;
            let rows = client.query(&statement, &[&limit, &CLAIM_LEASE_SECS]).await?;
            rows.iter().map(|row| row.get(0)).collect()
        };
        let mut orders = claimed;
        orders.sort_unstable();
        orders.dedup();
        let mut retried = Retried::default();
        for order_no in orders {
            match crate::store::bounded(self.retry_order(&order_no)).await {
                Ok((applied, failed)) => {
                    retried.applied += applied;
                    retried.failed += usize::from(failed);
                }
                Err(e) => {
                    tracing::info!(%order_no, error = %e, "purpose steps not retried now; retried after the claim");
                    retried.failed += 1;
                }
            }
        }
        Ok(retried)
    }

    /// One order's waiting steps: `(applied, failed again)`.
    async fn retry_order(&self, order_no: &str) -> Result<(usize, bool), EngineError> {
        let mut client = self.store.job_client().await?;
        let tx = client.transaction().await?;
        let Some(row) = tx
            .query_opt(&tx.prepare_cached(LOCK_PAYMENT).await?, &[&order_no])
            .await?
        else {
            return Err(EngineError::UnknownOrder);
        };
        let purpose: String = row.get(0);
        let status: Status = row.try_get(6)?;
        let payment = PaymentRef {
            order_no: order_no.to_string(),
            channel: row.try_get(1)?,
            amount_fen: row.get(2),
            late: row.get(3),
            cancelled: row.get(4),
            refunded_fen: row.get(5),
        };
        let waiting = tx.query(&tx.prepare_cached(WAITING).await?, &[&order_no]).await?;
        let (mut applied, mut failed, mut refund) = (0, false, None);
        for step_row in &waiting {
            let id: i64 = step_row.get(0);
            let (name, subject): (&str, &str) = (step_row.get(1), step_row.get(2));
            let amount_fen = step_row.get::<_, Option<i64>>(3).unwrap_or(0);
            let step = match name {
                "paid" => Step::Paid,
                "closed" => Step::Closed,
                "refund_failed" => Step::RefundFailed {
                    refund_no: subject,
                    amount_fen,
                },
                _ => Step::Refunded {
                    refund_no: subject,
                    amount_fen,
                },
            };
            let outcome = match self.settings.purposes.get(&purpose) {
                Some(hook) => call(&tx, hook, &payment, step).await?,
                None => Err(format!("purpose {purpose:?} is not registered in this build").into()),
            };
            match outcome {
                Ok(verdict) => {
                    tx.execute(&tx.prepare_cached(DONE).await?, &[&id]).await?;
                    applied += 1;
                    if let Verdict::Refund(reason) = verdict
                        && step == Step::Paid
                    {
                        refund = self.queue_full_refund(&tx, order_no, &reason, &purpose).await?;
                    }
                }
                Err(e) => {
                    tx.execute(&tx.prepare_cached(FAILED_AGAIN).await?, &[&id, &e.to_string()])
                        .await?;
                    failed = true;
                    break;
                }
            }
        }
        if applied > 0 {
            // What the purpose derives in memory on every instance follows its new rows.
            publish_change(&tx, order_no, status.as_str(), &purpose).await?;
        }
        tx.commit().await?;
        if applied > 0 {
            self.metrics
                .purpose_steps_retried
                .fetch_add(applied as u64, Ordering::Relaxed);
            self.status.changed(order_no).await;
        }
        if let Some(refund_no) = refund
            && let Err(e) = self.submit_refund(&refund_no).await
        {
            tracing::warn!(%refund_no, error = %e, "purpose refund not submitted yet; reconcile will retry");
        }
        Ok((applied, failed))
    }
}
