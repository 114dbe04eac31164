//! The payment engine: creates orders at the provider, and applies every transition —
//! pending → paid, closed → paid (late), pending → closed, paid → refunded — as a conditional
//! UPDATE inside one transaction with its audit row (`payment_events`) and its NOTIFY, so
//! exactly one caller wins under any concurrency and every instance hears about it at commit.
//! What a payment is *for* (donation, backing, order) is its purpose's business
//! (`pay::purpose`): its hooks run inside these transactions (`pay::outbox`). Creating orders
//! lives in `pay::create`, closing and cancelling them in `pay::close`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use deadpool_postgres::Transaction;
use time::OffsetDateTime;

use super::outbox::{Ran, Step, run_step};
use super::policy::Policy;
use super::provider::{Channel, Paid, ProviderError, TradeState};
pub use super::providers::{Provider, Providers};
pub use super::purpose::Purposes;
use super::purpose::{LatePayment, PaymentRef, Verdict};
use super::qr::QrCache;
use super::refunds::{NewRefund, queue_refund};
use super::status::{Status, StatusBoard};
use crate::store::events;
use crate::store::{Store, StoreError};

/// Settings the engine applies.
#[derive(Debug)]
pub struct EngineSettings {
    /// Base of the notify URLs: `{base}/notify/wechat`, `{base}/notify/alipay`.
    pub notify_base: String,
    /// What each payment is for, by `payments.purpose`: the modules' hooks.
    pub purposes: Purposes,
    /// The longest a provider API call may take (`payments.request_timeout_secs`); claims
    /// and queued work are leased from it.
    pub provider_timeout: Duration,
}

impl EngineSettings {
    /// The worst case of one provider call and the database work around it.
    pub fn call_budget(&self) -> Duration {
        self.provider_timeout + crate::store::ANSWER_WITHIN
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct PayMetrics {
    pub created: AtomicU64,
    pub paid: AtomicU64,
    pub paid_late: AtomicU64,
    pub closed: AtomicU64,
    pub refunds_succeeded: AtomicU64,
    pub callbacks_applied: AtomicU64,
    pub callbacks_duplicate: AtomicU64,
    pub callbacks_refused: AtomicU64,
    pub provider_errors: AtomicU64,
    /// Purpose steps that failed inside their transition and went to the outbox.
    pub purpose_steps_deferred: AtomicU64,
    /// Outbox steps applied by a retry.
    pub purpose_steps_retried: AtomicU64,
}

/// Why an engine operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the {} channel is not enabled", .0.as_str())]
    ChannelDisabled(Channel),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no such order")]
    UnknownOrder,
    /// A verified notification or query answer disagrees with the order.
    #[error("mismatch: {0}")]
    Mismatch(String),
    /// A refund that cannot be made (state, amount).
    #[error("{0}")]
    RefundRefused(String),
    /// An order's amount outside what its purpose and the providers allow.
    #[error("amount must be between {min_fen} and {max_fen} fen")]
    AmountOutOfBounds { min_fen: i64, max_fen: i64 },
    /// An order for a purpose nobody registered (a wiring mistake).
    #[error("purpose {0:?} is not registered")]
    UnknownPurpose(String),
    /// The order closed before its QR code was stored (its create took longer than its
    /// lease, and the reconcile job closed it as abandoned).
    #[error("the order closed before its QR code was stored")]
    Abandoned,
}

impl From<tokio_postgres::Error> for EngineError {
    fn from(e: tokio_postgres::Error) -> Self {
        EngineError::Store(StoreError::from(e))
    }
}

/// The raw callback that carried a notification, for the inbox.
#[derive(Debug, Clone)]
pub struct Inbox {
    pub kind: &'static str,
    /// Unique per delivery subject: the provider's transaction id, or our refund number.
    pub subject_id: String,
    pub headers: serde_json::Value,
    pub body: Bytes,
}

/// What applying a payment did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The order turned paid now (`late`: it had closed). `refund_no`: the automatic refund
    /// queued under `payments.late_payment: refund`.
    Credited { late: bool, refund_no: Option<String> },
    /// This callback was seen before: nothing changed.
    Duplicate,
    /// The order was already paid (by a query or another callback): nothing changed.
    AlreadyPaid,
}

/// The order row `apply_payment` locked.
#[derive(Debug)]
struct Locked {
    status: Status,
    purpose: String,
    /// Its purpose's steps waiting in the outbox.
    backlog: i32,
    cancelled: bool,
}

const SELECT_FOR_PAYMENT: &str = "SELECT status, channel, amount_fen, transaction_id, purpose, purpose_backlog,
            cancel_requested_at IS NOT NULL
       FROM payments WHERE order_no = $1 FOR UPDATE";

/// The conditional pending|closed → paid; `late` when it had closed.
const CREDIT: &str = "UPDATE payments SET status = 'paid', paid_at = $2, transaction_id = $3,
            late = (status = 'closed'), updated_at = now()
      WHERE order_no = $1 AND status IN ('pending', 'closed')
  RETURNING late";

/// The engine. One per process, shared.
#[derive(Debug)]
pub struct Engine {
    pub store: Store,
    pub providers: Providers,
    pub status: StatusBoard,
    pub qr: QrCache,
    pub settings: EngineSettings,
    /// Channels on/off, bounds, TTL and late-payment policy, changeable at run time.
    pub policy: Arc<Policy>,
    pub metrics: PayMetrics,
    /// `Idempotency-Key` records of the creates that cost money.
    pub keys: super::idempotency::Keys,
}

/// How far apart reconcile queries of a pending order are: 15 s after creation, then
/// growing; always once more at expiry.
const QUERY_LADDER: &[u64] = &[15, 30, 60, 120, 300, 600];

/// When to query a pending order next, after `checks` queries so far.
pub fn next_check(now: OffsetDateTime, checks: usize, expires_at: OffsetDateTime) -> OffsetDateTime {
    let step = QUERY_LADDER[checks.min(QUERY_LADDER.len() - 1)];
    let at = now + Duration::from_secs(step);
    if now < expires_at && at > expires_at {
        expires_at
    } else {
        at
    }
}

pub(super) fn new_order_no() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

impl Engine {
    pub fn new(store: Store, providers: Providers, settings: EngineSettings, policy: Arc<Policy>) -> Arc<Engine> {
        Arc::new(Engine {
            store,
            providers,
            status: StatusBoard::default(),
            qr: QrCache::default(),
            settings,
            policy,
            metrics: PayMetrics::default(),
            keys: super::idempotency::Keys::default(),
        })
    }

    /// True when `channel` has a configured provider (whether or not it takes new orders now).
    pub fn is_configured(&self, channel: Channel) -> bool {
        self.providers.get(channel).is_ok()
    }

    pub(super) fn notify_url(&self, channel: Channel) -> String {
        format!("{}/notify/{}", self.settings.notify_base, channel.as_str())
    }

    /// How long an idempotent create may run before a retry may take its key over: a
    /// provider call or two and the database work around them, with room to spare.
    pub fn idempotency_lock(&self) -> Duration {
        4 * self.settings.call_budget()
    }

    /// Applies a confirmed payment from a verified callback (`inbox` set) or a query.
    /// Exactly one caller credits an order; repeats change nothing.
    pub async fn apply_payment(
        &self,
        channel: Channel,
        paid: &Paid,
        inbox: Option<&Inbox>,
        source: &str,
    ) -> Result<Applied, EngineError> {
        // Bounded: a database that stops answering gets the provider a failure to retry on
        // (the late-payment refund below is a provider call and keeps its own timeout).
        let outcome = crate::store::bounded(self.apply_payment_tx(channel, paid, inbox, source)).await;
        match &outcome {
            Err(e @ (EngineError::UnknownOrder | EngineError::Mismatch(_))) => {
                if let Some(inbox) = inbox {
                    self.record_refused(channel, inbox, Some(&paid.order_no), &e.to_string())
                        .await;
                }
            }
            Ok(Applied::Credited { late, refund_no }) => {
                // This instance sees its own write at once; others hear it from the event bus.
                self.status.changed(&paid.order_no).await;
                self.metrics.paid.fetch_add(1, Ordering::Relaxed);
                if *late {
                    self.metrics.paid_late.fetch_add(1, Ordering::Relaxed);
                }
                // The late-payment refund goes out now; the reconcile job retries it if this fails.
                if let Some(refund_no) = refund_no
                    && let Err(e) = self.submit_refund(refund_no).await
                {
                    tracing::warn!(order_no = %paid.order_no, error = %e, "late-payment refund not submitted yet; reconcile will retry");
                }
            }
            _ => {}
        }
        outcome
    }

    async fn apply_payment_tx(
        &self,
        channel: Channel,
        paid: &Paid,
        inbox: Option<&Inbox>,
        source: &str,
    ) -> Result<Applied, EngineError> {
        let mut client = self.store.client().await?;
        let tx = client.transaction().await?;
        if let Some(inbox) = inbox
            && !insert_inbox(&tx, channel, inbox, Some(&paid.order_no), true, "applied").await?
        {
            tx.commit().await?;
            return Ok(Applied::Duplicate);
        }
        let statement = tx.prepare_cached(SELECT_FOR_PAYMENT).await?;
        let row = tx
            .query_opt(&statement, &[&paid.order_no])
            .await?
            .ok_or(EngineError::UnknownOrder)?;
        let status: Status = row.try_get(0)?;
        let order_channel: Channel = row.try_get(1)?;
        let amount_fen: i64 = row.get(2);
        let transaction_id: Option<String> = row.get(3);
        if order_channel != channel {
            return Err(EngineError::Mismatch(format!(
                "order is {}, payment came from {}",
                order_channel.as_str(),
                channel.as_str()
            )));
        }
        if paid.amount_fen != amount_fen {
            return Err(EngineError::Mismatch(format!(
                "amount {} fen paid for an order of {amount_fen} fen",
                paid.amount_fen
            )));
        }
        if matches!(status, Status::Paid | Status::Refunded) {
            if transaction_id.as_deref() != Some(paid.transaction_id.as_str()) {
                // A second, different payment for one order: keep it visible for ops.
                insert_event(
                    &tx,
                    &paid.order_no,
                    "second_payment",
                    Some(status.as_str()),
                    None,
                    Some(paid.amount_fen),
                    source,
                    serde_json::json!({"transaction_id": paid.transaction_id}),
                )
                .await?;
                tracing::warn!(order_no = %paid.order_no, "a second payment arrived for an already paid order");
            }
            tx.commit().await?;
            return Ok(Applied::AlreadyPaid);
        }
        let order = Locked {
            status,
            purpose: row.get(4),
            backlog: row.get(5),
            cancelled: row.get(6),
        };
        let applied = self.credit(&tx, channel, paid, &order, source).await?;
        tx.commit().await?;
        Ok(applied)
    }

    /// The pending|closed → paid transition of a locked order, with its event, its purpose's
    /// `on_paid` and the refund that follows from it, if any.
    async fn credit(
        &self,
        tx: &Transaction<'_>,
        channel: Channel,
        paid: &Paid,
        order: &Locked,
        source: &str,
    ) -> Result<Applied, EngineError> {
        let statement = tx.prepare_cached(CREDIT).await?;
        let updated = tx
            .query_opt(&statement, &[&paid.order_no, &paid.paid_at, &paid.transaction_id])
            .await?;
        let Some(updated) = updated else {
            return Ok(Applied::AlreadyPaid);
        };
        let late: bool = updated.get(0);
        insert_event(
            tx,
            &paid.order_no,
            if late { "paid_late" } else { "paid" },
            Some(order.status.as_str()),
            Some("paid"),
            Some(paid.amount_fen),
            source,
            serde_json::json!({"transaction_id": paid.transaction_id}),
        )
        .await?;
        let payment = PaymentRef {
            order_no: paid.order_no.clone(),
            channel,
            amount_fen: paid.amount_fen,
            late,
            cancelled: order.cancelled,
            refunded_fen: 0,
        };
        let purposes = &self.settings.purposes;
        let ran = run_step(tx, purposes, &order.purpose, &payment, Step::Paid, order.backlog).await?;
        if ran == Ran::Deferred {
            self.metrics.purpose_steps_deferred.fetch_add(1, Ordering::Relaxed);
        }
        let refund_no = match self.automatic_refund(&order.purpose, &payment, &ran) {
            Some((reason, requested_by)) => {
                let refund_no = new_order_no();
                let refund = NewRefund {
                    order_no: &paid.order_no,
                    amount_fen: paid.amount_fen,
                    reason: &reason,
                    requested_by: &requested_by,
                    refund_no: None,
                };
                let lease = (3 * self.settings.call_budget()).as_secs_f64();
                queue_refund(tx, &refund_no, &refund, lease).await?;
                Some(refund_no)
            }
            None => None,
        };
        publish_change(tx, &paid.order_no, "paid", &order.purpose).await?;
        Ok(Applied::Credited { late, refund_no })
    }

    /// The full refund a payment that just landed gets, as `(reason, requested_by)`: one
    /// the buyer cancelled, one late under its purpose's late-payment policy, or one its
    /// purpose cannot honour (`on_paid` answered `Refund`).
    fn automatic_refund(&self, purpose: &str, payment: &PaymentRef, ran: &Ran) -> Option<(String, String)> {
        if payment.cancelled {
            let reason = "订单已取消后到账，自动全额退款 (paid after the order was cancelled)";
            return Some((reason.to_string(), "order_cancelled".to_string()));
        }
        if payment.late {
            let policy = self
                .settings
                .purposes
                .get(purpose)
                .map_or(LatePayment::Refund, |p| p.late_payment());
            if policy == LatePayment::Refund || self.policy.current().refund_late_payments {
                let reason = "订单已关闭后到账，自动退款 (late payment)";
                return Some((reason.to_string(), "late_payment_policy".to_string()));
            }
        }
        match ran {
            Ran::Applied(Verdict::Refund(reason)) => Some((reason.clone(), format!("purpose:{purpose}"))),
            _ => None,
        }
    }

    /// Keeps a verified callback that was refused (unknown order, mismatch), for ops.
    pub async fn record_refused(&self, channel: Channel, inbox: &Inbox, order_no: Option<&str>, why: &str) {
        self.metrics.callbacks_refused.fetch_add(1, Ordering::Relaxed);
        let stored = async {
            let mut client = self.store.client().await?;
            let tx = client.transaction().await?;
            insert_inbox(&tx, channel, inbox, order_no, false, why).await?;
            tx.commit().await?;
            Ok::<(), EngineError>(())
        };
        if let Err(e) = stored.await {
            tracing::warn!(error = %e, "could not keep a refused callback");
        }
    }

    /// Asks the provider where an order stands.
    pub async fn query(&self, channel: Channel, order_no: &str) -> Result<TradeState, EngineError> {
        Ok(self.providers.get(channel)?.query(order_no).await?)
    }
}

/// Inserts the callback; false when the same accepted callback is already there.
pub(super) async fn insert_inbox(
    tx: &Transaction<'_>,
    channel: Channel,
    inbox: &Inbox,
    order_no: Option<&str>,
    accepted: bool,
    outcome: &str,
) -> Result<bool, tokio_postgres::Error> {
    let statement = tx
        .prepare_cached(
            "INSERT INTO callback_inbox (channel, kind, subject_id, order_no, accepted, outcome, headers, body)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (channel, subject_id, kind) WHERE accepted DO NOTHING
             RETURNING id",
        )
        .await?;
    let row = tx
        .query_opt(
            &statement,
            &[
                &channel.as_str(),
                &inbox.kind,
                &inbox.subject_id,
                &order_no,
                &accepted,
                &outcome,
                &inbox.headers,
                &inbox.body.as_ref(),
            ],
        )
        .await?;
    Ok(row.is_some())
}

/// Appends to `payment_events`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn insert_event(
    tx: &Transaction<'_>,
    order_no: &str,
    kind: &str,
    from: Option<&str>,
    to: Option<&str>,
    amount_fen: Option<i64>,
    source: &str,
    detail: serde_json::Value,
) -> Result<(), tokio_postgres::Error> {
    let statement = tx
        .prepare_cached(
            "INSERT INTO payment_events (order_no, kind, from_status, to_status, amount_fen, source, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .await?;
    tx.execute(
        &statement,
        &[&order_no, &kind, &from, &to, &amount_fen, &source, &detail],
    )
    .await?;
    Ok(())
}

/// Tells every instance (at commit) that the order changed.
pub(super) async fn publish_change(
    tx: &Transaction<'_>,
    order_no: &str,
    status: &str,
    purpose: &str,
) -> Result<(), tokio_postgres::Error> {
    let payload = serde_json::json!({"kind": "payment", "order_no": order_no, "status": status, "purpose": purpose});
    events::publish(tx, &payload.to_string()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_ladder_grows_and_never_skips_expiry() {
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let expiry = t0 + Duration::from_secs(900);
        assert_eq!(next_check(t0, 0, expiry), t0 + Duration::from_secs(15));
        assert_eq!(next_check(t0, 3, expiry), t0 + Duration::from_secs(120));
        let near = t0 + Duration::from_secs(800);
        assert_eq!(
            next_check(near, 5, expiry),
            expiry,
            "checks once more exactly at expiry"
        );
        let after = expiry + Duration::from_secs(1);
        assert_eq!(next_check(after, 9, expiry), after + Duration::from_secs(600));
    }
}
