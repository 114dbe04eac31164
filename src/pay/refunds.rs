//! Refunds: queue (never more than what is left, under the order's row lock), submit to the
//! provider (idempotent by refund number, so re-submitting is how they are retried), and apply
//! the outcome — a success adds to `refunded_fen` exactly once, audited and announced; a
//! final failure runs the purpose's `on_refund_failed` (its module undoes what the request
//! changed), once.
//!
//! A refund is `failed` only when the provider says so for certain: a signed refusal its
//! documentation calls final, confirmed by a refund query that finds nothing, or a refund the
//! provider itself reports closed. Rate limits, busy answers, 5xx, timeouts and unsigned
//! answers keep it `processing`, retried with the same number. A verified success later
//! still wins over `failed` (the provider changed its mind), and closes the amount again.

use std::sync::atomic::Ordering;

use deadpool_postgres::Transaction;

use super::engine::{Engine, EngineError, Inbox, Provider, insert_event, insert_inbox, new_order_no, publish_change};
use super::outbox::{Ran, Step, run_step};
use super::provider::{Channel, ProviderError, RefundOrder, RefundState};
use super::purpose::PaymentRef;
use super::status::Status;
use crate::store::audit::{self, Actor};

/// Pushes a processing refund's next check back (10 s, doubling, at most 10 minutes) and
/// keeps the provider's last word for operators: `$2`, or the previous one when NULL.
const POSTPONE_REFUND: &str = "UPDATE refunds SET attempts = attempts + 1, updated_at = now(),
        failure = COALESCE($2, failure),
        next_check_at = now() + make_interval(secs => least(600, 10 * power(2, least(attempts, 6))))
  WHERE refund_no = $1 AND status = 'processing'";

const INSERT_REFUND: &str = "INSERT INTO refunds (refund_no, order_no, amount_fen, reason, requested_by, next_check_at)
     VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))";

const SELECT_REFUND: &str = "SELECT r.order_no, r.amount_fen, r.reason, r.status, p.amount_fen, p.channel
       FROM refunds r JOIN payments p USING (order_no) WHERE r.refund_no = $1";

/// A refund turned succeeded, from `processing` or (the provider changed its mind) `failed`.
const REFUND_SUCCEEDED: &str = "UPDATE refunds r SET status = 'succeeded', provider_refund_id = $2, updated_at = now()
       FROM (SELECT refund_no, status FROM refunds WHERE refund_no = $1 FOR UPDATE) was
      WHERE r.refund_no = was.refund_no AND was.status IN ('processing', 'failed')
  RETURNING r.order_no, r.amount_fen, was.status";

const REFUND_FAILED: &str = "UPDATE refunds SET status = 'failed', failure = $2, updated_at = now()
      WHERE refund_no = $1 AND status = 'processing' RETURNING order_no, amount_fen";

/// The payment of a refund that failed, locked for its purpose's hook.
const LOCK_PAYMENT: &str = "SELECT purpose, channel, amount_fen, late, cancel_requested_at IS NOT NULL, refunded_fen,
        purpose_backlog FROM payments WHERE order_no = $1 FOR UPDATE";

const PAYMENT_REFUNDED: &str =
    "UPDATE payments SET refunded_fen = refunded_fen + $2, status = 'refunded', updated_at = now()
      WHERE order_no = $1
  RETURNING purpose, refunded_fen, channel, amount_fen, late, cancel_requested_at IS NOT NULL, purpose_backlog";

/// What is left to refund of a locked payment: paid, less refunded and refunds in flight.
const REFUNDABLE: &str = "SELECT p.amount_fen - p.refunded_fen
          - COALESCE((SELECT sum(amount_fen) FROM refunds r
                       WHERE r.order_no = p.order_no AND r.status = 'processing'), 0)::bigint
       FROM payments p WHERE p.order_no = $1 AND p.status IN ('paid', 'refunded')";

/// Who asked for a refund, for the audit row written in the refund's own transaction.
pub type RefundAudit<'a> = Actor<'a>;

/// A refund to queue.
#[derive(Debug, Clone, Copy)]
pub struct NewRefund<'a> {
    pub order_no: &'a str,
    /// Fen, above 0.
    pub amount_fen: i64,
    pub reason: &'a str,
    /// `admin:<name>`, `late_payment_policy`, …
    pub requested_by: &'a str,
    /// The refund number to use (an idempotent request brings its own); `None` = a new one.
    pub refund_no: Option<&'a str>,
}

impl Engine {
    /// Queues a refund of `amount_fen` of a paid order and submits it to the provider.
    /// Returns the refund number; the refund completes now or later (notification, reconcile).
    pub async fn request_refund(
        &self,
        order_no: &str,
        amount_fen: i64,
        reason: &str,
        requested_by: &str,
    ) -> Result<String, EngineError> {
        let refund = NewRefund {
            order_no,
            amount_fen,
            reason,
            requested_by,
            refund_no: None,
        };
        self.refund(refund, None).await
    }

    /// [`Engine::request_refund`], with the admin audit row (`payment.refund`, the payment
    /// before, the refund queued) committed together with the refund.
    pub async fn request_refund_audited(
        &self,
        order_no: &str,
        amount_fen: i64,
        reason: &str,
        requested_by: &str,
        audit: Option<RefundAudit<'_>>,
    ) -> Result<String, EngineError> {
        let refund = NewRefund {
            order_no,
            amount_fen,
            reason,
            requested_by,
            refund_no: None,
        };
        self.refund(refund, audit).await
    }

    /// Queues `refund` (with its audit row, if any) and submits it. A refund number already
    /// queued for the same order is not queued twice: its number is returned, as when a
    /// retried request finds its own refund.
    pub async fn refund(&self, refund: NewRefund<'_>, audit: Option<Actor<'_>>) -> Result<String, EngineError> {
        if refund.amount_fen <= 0 {
            return Err(EngineError::RefundRefused("a refund must be more than 0".into()));
        }
        let refund_no = refund.refund_no.map_or_else(new_order_no, str::to_string);
        let queued = crate::store::bounded(self.queue(&refund, &refund_no, audit)).await?;
        if queued && let Err(e) = self.submit_refund(&refund_no).await {
            tracing::warn!(%refund_no, error = %e, "refund not settled yet; reconcile will retry");
        }
        Ok(refund_no)
    }

    /// Queues a refund inside the caller's own transaction `tx` — a module that changes its
    /// rows and refunds together (a paid order cancelled, a project that failed) — and
    /// returns its number (a number already queued for the same order: that one, nothing
    /// new). It locks the payment row: call it before locking the module's own rows that
    /// its purpose's hooks lock too, so every transaction takes the payment row first. After
    /// the commit, [`Engine::submit_refund`] sends it at once; otherwise the reconcile job
    /// sends it once its lease (three call budgets) is over. Refused (`RefundRefused`) for
    /// an order not paid or an amount above what is left.
    pub async fn queue_refund_in(&self, tx: &Transaction<'_>, refund: NewRefund<'_>) -> Result<String, EngineError> {
        if refund.amount_fen <= 0 {
            return Err(EngineError::RefundRefused("a refund must be more than 0".into()));
        }
        let refund_no = refund.refund_no.map_or_else(new_order_no, str::to_string);
        self.queue_in(tx, &refund, &refund_no, None).await?;
        Ok(refund_no)
    }

    /// Inserts the refund under the order's row lock; false when `refund_no` was queued before.
    async fn queue(
        &self,
        refund: &NewRefund<'_>,
        refund_no: &str,
        audit: Option<Actor<'_>>,
    ) -> Result<bool, EngineError> {
        let mut client = self.store.client().await?;
        let tx = client.transaction().await?;
        let queued = self.queue_in(&tx, refund, refund_no, audit).await?;
        tx.commit().await?;
        Ok(queued)
    }

    /// [`Engine::queue`] in `tx`, not committed.
    async fn queue_in(
        &self,
        tx: &Transaction<'_>,
        refund: &NewRefund<'_>,
        refund_no: &str,
        audit: Option<Actor<'_>>,
    ) -> Result<bool, EngineError> {
        // Lock first, then read what is left in a statement of its own: under READ
        // COMMITTED a statement sees the refunds committed before it began, so a refund
        // queued by the transaction we waited for is counted.
        tx.query_opt(
            "SELECT 1 FROM payments WHERE order_no = $1 FOR UPDATE",
            &[&refund.order_no],
        )
        .await?
        .ok_or(EngineError::UnknownOrder)?;
        let known = tx
            .query_opt("SELECT order_no FROM refunds WHERE refund_no = $1", &[&refund_no])
            .await?;
        if let Some(row) = known {
            let order_no: String = row.get(0);
            return if order_no == refund.order_no {
                Ok(false)
            } else {
                Err(EngineError::RefundRefused(
                    "that refund number belongs to another order".into(),
                ))
            };
        }
        let row = tx
            .query_one(
                "SELECT p.status, p.amount_fen - p.refunded_fen
                      - COALESCE((SELECT sum(amount_fen) FROM refunds r
                                   WHERE r.order_no = p.order_no AND r.status = 'processing'), 0)::bigint,
                        p.refunded_fen
                   FROM payments p WHERE p.order_no = $1",
                &[&refund.order_no],
            )
            .await?;
        let status: Status = row.try_get(0)?;
        let refundable: i64 = row.get(1);
        if !matches!(status, Status::Paid | Status::Refunded) {
            return Err(EngineError::RefundRefused(format!(
                "the order is {}, not paid",
                status.as_str()
            )));
        }
        if refund.amount_fen > refundable {
            return Err(EngineError::RefundRefused(format!(
                "only {} can still be refunded",
                super::money::format_yuan(refundable.max(0))
            )));
        }
        // The submitter has this long before the reconcile job may take the refund over.
        let lease = (3 * self.settings.call_budget()).as_secs_f64();
        queue_refund(tx, refund_no, refund, lease).await?;
        if let Some(actor) = audit {
            let refunded_fen: i64 = row.get(2);
            let before = serde_json::json!({
                "status": status.as_str(), "refunded_fen": refunded_fen, "refundable_fen": refundable,
            });
            let after = serde_json::json!({
                "refund": {"refund_no": refund_no, "amount_fen": refund.amount_fen, "reason": refund.reason, "status": "processing"},
                "refundable_fen": refundable - refund.amount_fen,
            });
            let target = format!("payment:{}", refund.order_no);
            audit::write(tx, actor, "payment.refund", &target, Some(&before), Some(&after)).await?;
        }
        Ok(true)
    }

    /// Sends (or re-sends: the refund number makes it idempotent) a processing refund to the
    /// provider and applies the answer. A final refusal is confirmed by a refund query before
    /// the refund is called failed; any other failure postpones it.
    pub async fn submit_refund(&self, refund_no: &str) -> Result<(), EngineError> {
        let Some(refund) = self.load_refund(refund_no).await? else {
            return Ok(());
        };
        let provider = self.providers.get(refund.channel)?;
        let notify_url = self.notify_url(refund.channel);
        let order = RefundOrder {
            order_no: &refund.order_no,
            refund_no,
            amount_fen: refund.amount_fen,
            total_fen: refund.total_fen,
            reason: &refund.reason,
            notify_url: &notify_url,
        };
        match provider.refund(&order).await {
            Ok(state) => self.settle(&refund, refund_no, &state).await,
            Err(refusal) if provider.refused_for_good(&refusal) => {
                self.confirm_refusal(provider, &refund, refund_no, refusal).await
            }
            Err(e) => {
                self.metrics.provider_errors.fetch_add(1, Ordering::Relaxed);
                self.postpone_refund(refund_no, &e.to_string()).await?;
                Err(e.into())
            }
        }
    }

    /// The reconcile job's look at a processing refund: what the provider's books say; a
    /// refund they do not have (never reached them, or was refused) is submitted again.
    pub async fn check_refund(&self, refund_no: &str) -> Result<(), EngineError> {
        let Some(refund) = self.load_refund(refund_no).await? else {
            return Ok(());
        };
        let provider = self.providers.get(refund.channel)?;
        match provider.query_refund(&refund.order_no, refund_no).await {
            Ok(Some(state)) => self.settle(&refund, refund_no, &state).await,
            Ok(None) => self.submit_refund(refund_no).await,
            Err(e) => {
                self.postpone_refund(refund_no, &format!("refund query: {e}")).await?;
                Err(e.into())
            }
        }
    }

    /// A final refusal: failed only if the provider's books have no such refund.
    async fn confirm_refusal(
        &self,
        provider: Provider<'_>,
        refund: &QueuedRefund,
        refund_no: &str,
        refusal: ProviderError,
    ) -> Result<(), EngineError> {
        let reason = match &refusal {
            ProviderError::Rejected { code, message } => format!("{code}: {message}"),
            other => other.to_string(),
        };
        match provider.query_refund(&refund.order_no, refund_no).await {
            Ok(None) => self.settle(refund, refund_no, &RefundState::Failed { reason }).await,
            Ok(Some(state)) => {
                tracing::warn!(%refund_no, %reason, "the provider refused a refund its books hold; following its books");
                self.settle(refund, refund_no, &state).await
            }
            Err(e) => {
                let note = format!("{reason} (not yet confirmed: the refund query failed: {e})");
                self.postpone_refund(refund_no, &note).await?;
                Err(e.into())
            }
        }
    }

    async fn settle(&self, refund: &QueuedRefund, refund_no: &str, state: &RefundState) -> Result<(), EngineError> {
        self.apply_refund_state(refund.channel, &refund.order_no, refund_no, state, None, "provider")
            .await
    }

    /// A processing refund and its payment; `None` when it is no longer processing.
    async fn load_refund(&self, refund_no: &str) -> Result<Option<QueuedRefund>, EngineError> {
        let client = self.store.client().await?;
        let statement = client.prepare_cached(SELECT_REFUND).await?;
        let row = client
            .query_opt(&statement, &[&refund_no])
            .await?
            .ok_or(EngineError::UnknownOrder)?;
        let status: &str = row.get(3);
        if status != "processing" {
            return Ok(None);
        }
        Ok(Some(QueuedRefund {
            order_no: row.get(0),
            amount_fen: row.get(1),
            reason: row.get(2),
            total_fen: row.get(4),
            channel: row.try_get(5)?,
        }))
    }

    async fn postpone_refund(&self, refund_no: &str, note: &str) -> Result<(), EngineError> {
        let client = self.store.client().await?;
        let statement = client.prepare_cached(POSTPONE_REFUND).await?;
        client.execute(&statement, &[&refund_no, &Some(note)]).await?;
        Ok(())
    }

    /// Applies a refund's outcome (from the provider's answer, a query or a notification).
    /// A success adds to `refunded_fen` exactly once, also after the refund was failed.
    pub async fn apply_refund_state(
        &self,
        channel: Channel,
        order_no: &str,
        refund_no: &str,
        state: &RefundState,
        inbox: Option<&Inbox>,
        source: &str,
    ) -> Result<(), EngineError> {
        let mut client = self.store.client().await?;
        let tx = client.transaction().await?;
        if let Some(inbox) = inbox
            && !insert_inbox(&tx, channel, inbox, Some(order_no), true, "applied").await?
        {
            tx.commit().await?;
            return Ok(());
        }
        let refunded = match state {
            RefundState::Processing => {
                tx.execute(POSTPONE_REFUND, &[&refund_no, &None::<String>]).await?;
                false
            }
            RefundState::Stuck { reason } => {
                tx.execute(POSTPONE_REFUND, &[&refund_no, &Some(reason)]).await?;
                false
            }
            RefundState::Failed { reason } => {
                self.refund_failed(&tx, refund_no, reason, source).await?;
                false
            }
            RefundState::Succeeded { refund_id } => self.refund_succeeded(&tx, refund_no, refund_id, source).await?,
        };
        tx.commit().await?;
        if refunded {
            self.metrics.refunds_succeeded.fetch_add(1, Ordering::Relaxed);
            self.status.changed(order_no).await;
        }
        Ok(())
    }

    /// Marks a processing refund failed, with its event and the purpose's `on_refund_failed`
    /// (the payment row locked after the refund's, as a success locks them); nothing when it
    /// was not processing.
    async fn refund_failed(
        &self,
        tx: &Transaction<'_>,
        refund_no: &str,
        reason: &str,
        source: &str,
    ) -> Result<(), EngineError> {
        let Some(row) = tx
            .query_opt(&tx.prepare_cached(REFUND_FAILED).await?, &[&refund_no, &reason])
            .await?
        else {
            return Ok(());
        };
        let order_no: String = row.get(0);
        let amount: i64 = row.get(1);
        let payment = tx
            .query_one(&tx.prepare_cached(LOCK_PAYMENT).await?, &[&order_no])
            .await?;
        let purpose: String = payment.get(0);
        let of = PaymentRef {
            order_no: order_no.clone(),
            channel: payment.try_get(1)?,
            amount_fen: payment.get(2),
            late: payment.get(3),
            cancelled: payment.get(4),
            refunded_fen: payment.get(5),
        };
        let backlog: i32 = payment.get(6);
        let step = Step::RefundFailed {
            refund_no,
            amount_fen: amount,
        };
        if run_step(tx, &self.settings.purposes, &purpose, &of, step, backlog).await? == Ran::Deferred {
            self.metrics.purpose_steps_deferred.fetch_add(1, Ordering::Relaxed);
        }
        let detail = serde_json::json!({"refund_no": refund_no, "reason": reason});
        insert_event(tx, &order_no, "refund_failed", None, None, Some(amount), source, detail).await?;
        Ok(())
    }

    /// Marks the refund succeeded and raises `refunded_fen`, with the purpose's hook, the
    /// event and the NOTIFY; false when it already was succeeded.
    async fn refund_succeeded(
        &self,
        tx: &Transaction<'_>,
        refund_no: &str,
        refund_id: &str,
        source: &str,
    ) -> Result<bool, EngineError> {
        let Some(row) = tx.query_opt(REFUND_SUCCEEDED, &[&refund_no, &refund_id]).await? else {
            return Ok(false);
        };
        let order_no: String = row.get(0);
        let amount: i64 = row.get(1);
        let was: String = row.get(2);
        if was == "failed" {
            tracing::warn!(%refund_no, %order_no, "a refund marked failed succeeded after all (verified by the provider)");
        }
        let payment = tx
            .query_one(&tx.prepare_cached(PAYMENT_REFUNDED).await?, &[&order_no, &amount])
            .await?;
        let purpose: String = payment.get(0);
        let refunded_fen: i64 = payment.get(1);
        let step = Step::Refunded {
            refund_no,
            amount_fen: amount,
        };
        let of = PaymentRef {
            order_no: order_no.clone(),
            channel: payment.try_get(2)?,
            amount_fen: payment.get(3),
            late: payment.get(4),
            cancelled: payment.get(5),
            refunded_fen,
        };
        let backlog: i32 = payment.get(6);
        if run_step(tx, &self.settings.purposes, &purpose, &of, step, backlog).await? == Ran::Deferred {
            self.metrics.purpose_steps_deferred.fetch_add(1, Ordering::Relaxed);
        }
        let detail = serde_json::json!({
            "refund_no": refund_no, "refund_id": refund_id, "was": was,
            "refunded_fen": refunded_fen,
        });
        insert_event(
            tx,
            &order_no,
            "refund_succeeded",
            None,
            Some("refunded"),
            Some(amount),
            source,
            detail,
        )
        .await?;
        publish_change(tx, &order_no, "refunded", &purpose).await?;
        Ok(true)
    }
}

impl Engine {
    /// Queues a refund of everything still refundable of a payment whose row `tx` holds
    /// locked, requested by its purpose (`on_paid` answered `Refund` on a retry); `None`
    /// when nothing is left to refund.
    pub(super) async fn queue_full_refund(
        &self,
        tx: &Transaction<'_>,
        order_no: &str,
        reason: &str,
        purpose: &str,
    ) -> Result<Option<String>, EngineError> {
        let Some(row) = tx
            .query_opt(&tx.prepare_cached(REFUNDABLE).await?, &[&order_no])
            .await?
        else {
            return Ok(None);
        };
        let refundable: i64 = row.get(0);
        if refundable <= 0 {
            return Ok(None);
        }
        let refund_no = new_order_no();
        let requested_by = format!("purpose:{purpose}");
        let refund = NewRefund {
            order_no,
            amount_fen: refundable,
            reason,
            requested_by: &requested_by,
            refund_no: None,
        };
        let lease = (3 * self.settings.call_budget()).as_secs_f64();
        queue_refund(tx, &refund_no, &refund, lease).await?;
        Ok(Some(refund_no))
    }
}

/// A processing refund as the provider call needs it.
#[derive(Debug)]
struct QueuedRefund {
    order_no: String,
    amount_fen: i64,
    reason: String,
    /// The whole payment, fen.
    total_fen: i64,
    channel: Channel,
}

/// Inserts a processing refund and its `refund_requested` event in the caller's transaction.
/// The reconcile job leaves it alone for `lease_secs` (its submitter is at work meanwhile).
pub(super) async fn queue_refund(
    tx: &Transaction<'_>,
    refund_no: &str,
    refund: &NewRefund<'_>,
    lease_secs: f64,
) -> Result<(), tokio_postgres::Error> {
    let statement = tx.prepare_cached(INSERT_REFUND).await?;
    tx.execute(
        &statement,
        &[
            &refund_no,
            &refund.order_no,
            &refund.amount_fen,
            &refund.reason,
            &refund.requested_by,
            &lease_secs,
        ],
    )
    .await?;
    let detail = serde_json::json!({"refund_no": refund_no, "reason": refund.reason});
    insert_event(
        tx,
        refund.order_no,
        "refund_requested",
        None,
        None,
        Some(refund.amount_fen),
        refund.requested_by,
        detail,
    )
    .await
}
