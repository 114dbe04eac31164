//! Refunds: queue (never more than what is left, under the order's row lock), submit to the
//! provider (idempotent by refund number, so re-submitting is how they are retried), and apply
//! the outcome — a success adds to `refunded_fen` exactly once, audited and announced.

use std::sync::atomic::Ordering;

use deadpool_postgres::Transaction;

use super::engine::{Engine, EngineError, Inbox, insert_event, insert_inbox, new_order_no, publish_change};
use super::provider::{Channel, ProviderError, RefundOrder, RefundState};

/// Pushes a processing refund's next attempt back: 10 s, doubling, at most 10 minutes.
const POSTPONE_REFUND: &str = "UPDATE refunds SET attempts = attempts + 1, updated_at = now(),
        next_check_at = now() + make_interval(secs => least(600, 10 * power(2, least(attempts, 6))))
  WHERE refund_no = $1 AND status = 'processing'";

/// Who asked for a refund, for the admin audit row written in the refund's own transaction.
#[derive(Debug, Clone, Copy)]
pub struct RefundAudit<'a> {
    pub actor_id: Option<i64>,
    pub actor: &'a str,
    pub ip: &'a str,
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
        self.request_refund_audited(order_no, amount_fen, reason, requested_by, None)
            .await
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
        if amount_fen <= 0 {
            return Err(EngineError::RefundRefused("a refund must be more than 0".into()));
        }
        let refund_no = new_order_no();
        {
            let mut client = self.store.client().await?;
            let tx = client.transaction().await?;
            // Lock first, then read what is left in a statement of its own: under READ
            // COMMITTED a statement sees the refunds committed before it began, so a refund
            // queued by the transaction we waited for is counted.
            tx.query_opt("SELECT 1 FROM payments WHERE order_no = $1 FOR UPDATE", &[&order_no])
                .await?
                .ok_or(EngineError::UnknownOrder)?;
            let row = tx
                .query_one(
                    "SELECT p.status, p.amount_fen - p.refunded_fen
                          - COALESCE((SELECT sum(amount_fen) FROM refunds r
                                       WHERE r.order_no = p.order_no AND r.status = 'processing'), 0)::bigint,
                            p.refunded_fen
                       FROM payments p WHERE p.order_no = $1",
                    &[&order_no],
                )
                .await?;
            let status: String = row.get(0);
            let refundable: i64 = row.get(1);
            if status != "paid" && status != "refunded" {
                return Err(EngineError::RefundRefused(format!("the order is {status}, not paid")));
            }
            if amount_fen > refundable {
                return Err(EngineError::RefundRefused(format!(
                    "only {} can still be refunded",
                    super::money::format_yuan(refundable.max(0))
                )));
            }
            queue_refund(&tx, &refund_no, order_no, amount_fen, reason, requested_by).await?;
            if let Some(audit) = audit {
                let refunded_fen: i64 = row.get(2);
                let before = serde_json::json!({
                    "status": status, "refunded_fen": refunded_fen, "refundable_fen": refundable,
                });
                let after = serde_json::json!({
                    "refund": {"refund_no": refund_no, "amount_fen": amount_fen, "reason": reason, "status": "processing"},
                    "refundable_fen": refundable - amount_fen,
                });
                crate::admin::audit(
                    &tx,
                    audit.actor_id,
                    audit.actor,
                    "payment.refund",
                    &format!("payment:{order_no}"),
                    Some(&before),
                    Some(&after),
                    audit.ip,
                )
                .await?;
            }
            tx.commit().await?;
        }
        if let Err(e) = self.submit_refund(&refund_no).await {
            tracing::warn!(%refund_no, error = %e, "refund not submitted yet; reconcile will retry");
        }
        Ok(refund_no)
    }

    /// Sends (or re-sends: the refund number makes it idempotent) a processing refund to the
    /// provider and applies the answer.
    pub async fn submit_refund(&self, refund_no: &str) -> Result<(), EngineError> {
        let client = self.store.client().await?;
        let row = client
            .query_opt(
                "SELECT r.order_no, r.amount_fen, r.reason, r.status, p.amount_fen, p.channel
                   FROM refunds r JOIN payments p USING (order_no) WHERE r.refund_no = $1",
                &[&refund_no],
            )
            .await?
            .ok_or(EngineError::UnknownOrder)?;
        drop(client);
        let order_no: String = row.get(0);
        let status: String = row.get(3);
        if status != "processing" {
            return Ok(());
        }
        let channel = Channel::parse(row.get(5)).unwrap_or(Channel::Wechat);
        let notify_url = self.notify_url(channel);
        let refund = RefundOrder {
            order_no: &order_no,
            refund_no,
            amount_fen: row.get(1),
            total_fen: row.get(4),
            reason: row.get(2),
            notify_url: &notify_url,
        };
        let state = self.providers.get(channel)?.refund(&refund).await;
        match state {
            Ok(state) => {
                self.apply_refund_state(channel, &order_no, refund_no, &state, None, "provider")
                    .await
            }
            Err(ProviderError::Rejected { code, message }) => {
                let state = RefundState::Failed {
                    reason: format!("{code}: {message}"),
                };
                self.apply_refund_state(channel, &order_no, refund_no, &state, None, "provider")
                    .await
            }
            Err(e) => {
                self.postpone_refund(refund_no).await?;
                Err(e.into())
            }
        }
    }

    async fn postpone_refund(&self, refund_no: &str) -> Result<(), EngineError> {
        let client = self.store.client().await?;
        client.execute(POSTPONE_REFUND, &[&refund_no]).await?;
        Ok(())
    }

    /// Applies a refund's outcome (from the provider's answer, a query or a notification).
    /// A success adds to `refunded_fen` exactly once.
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
        let mut refunded = false;
        match state {
            RefundState::Processing => {
                tx.execute(POSTPONE_REFUND, &[&refund_no]).await?;
            }
            RefundState::Failed { reason } => {
                let failed = tx
                    .query_opt(
                        "UPDATE refunds SET status = 'failed', failure = $2, updated_at = now()
                          WHERE refund_no = $1 AND status = 'processing' RETURNING order_no, amount_fen",
                        &[&refund_no, reason],
                    )
                    .await?;
                if let Some(row) = failed {
                    let order_no: String = row.get(0);
                    insert_event(
                        &tx,
                        &order_no,
                        "refund_failed",
                        None,
                        None,
                        Some(row.get(1)),
                        source,
                        serde_json::json!({"refund_no": refund_no, "reason": reason}),
                    )
                    .await?;
                }
            }
            RefundState::Succeeded { refund_id } => {
                let done = tx
                    .query_opt(
                        "UPDATE refunds SET status = 'succeeded', provider_refund_id = $2, updated_at = now()
                          WHERE refund_no = $1 AND status = 'processing' RETURNING order_no, amount_fen",
                        &[&refund_no, refund_id],
                    )
                    .await?;
                if let Some(row) = done {
                    let order_no: String = row.get(0);
                    let amount: i64 = row.get(1);
                    let payment = tx
                        .query_one(
                            "UPDATE payments SET refunded_fen = refunded_fen + $2, status = 'refunded', updated_at = now()
                              WHERE order_no = $1 RETURNING purpose, refunded_fen",
                            &[&order_no, &amount],
                        )
                        .await?;
                    let purpose: String = payment.get(0);
                    if let Some(hook) = self.settings.hook(&purpose) {
                        let statement = tx.prepare_cached(hook.on_refunded).await?;
                        tx.execute(&statement, &[&order_no, &amount, &hook.param]).await?;
                    }
                    insert_event(
                        &tx,
                        &order_no,
                        "refund_succeeded",
                        None,
                        Some("refunded"),
                        Some(amount),
                        source,
                        serde_json::json!({"refund_no": refund_no, "refund_id": refund_id, "refunded_fen": payment.get::<_, i64>(1)}),
                    )
                    .await?;
                    publish_change(&tx, &order_no, "refunded", &purpose).await?;
                    self.metrics.refunds_succeeded.fetch_add(1, Ordering::Relaxed);
                    refunded = true;
                }
            }
        }
        tx.commit().await?;
        if refunded {
            self.status.changed(order_no).await;
        }
        Ok(())
    }
}

pub(super) async fn queue_refund(
    tx: &Transaction<'_>,
    refund_no: &str,
    order_no: &str,
    amount_fen: i64,
    reason: &str,
    requested_by: &str,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "INSERT INTO refunds (refund_no, order_no, amount_fen, reason, requested_by) VALUES ($1, $2, $3, $4, $5)",
        &[&refund_no, &order_no, &amount_fen, &reason, &requested_by],
    )
    .await?;
    insert_event(
        tx,
        order_no,
        "refund_requested",
        None,
        None,
        Some(amount_fen),
        requested_by,
        serde_json::json!({"refund_no": refund_no, "reason": reason}),
    )
    .await
}
