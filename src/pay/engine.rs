//! The payment engine: creates orders at the provider, and applies every transition —
//! pending → paid, closed → paid (late), pending → closed, paid → refunded — as a conditional
//! UPDATE inside one transaction with its audit row (`payment_events`) and its NOTIFY, so
//! exactly one caller wins under any concurrency and every instance hears about it at commit.
//! What a payment is *for* (donation, backing, order) is the callers' business.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use deadpool_postgres::Transaction;
use time::OffsetDateTime;

use super::policy::Policy;
use super::provider::{Channel, CreateOrder, Paid, ProviderError, TradeState};
pub use super::providers::{Provider, Providers};
use super::qr::QrCache;
use super::refunds::{NewRefund, queue_refund};
use super::status::{Snapshot, Status, StatusBoard};
use crate::store::events;
use crate::store::{Store, StoreError};

/// Settings the engine applies.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Base of the notify URLs: `{base}/notify/wechat`, `{base}/notify/alipay`.
    pub notify_base: String,
    /// What each purpose keeps in step with its payments, inside the same transactions.
    pub hooks: Vec<PurposeHook>,
    /// The longest a provider API call may take (`payments.request_timeout_secs`); claims
    /// and queued work are leased from it.
    pub provider_timeout: Duration,
}

/// SQL a purpose runs inside the transaction of a transition, so what it derives from
/// payments (donation rankings, goal progress) is exact at every commit.
#[derive(Debug, Clone)]
pub struct PurposeHook {
    /// The `payments.purpose` it applies to.
    pub purpose: &'static str,
    /// Runs after the order turned paid: `$1` order_no, `$2` [`param`](Self::param).
    pub on_paid: &'static str,
    /// Runs after a refund succeeded (`refunded_fen` already raised): `$1` order_no,
    /// `$2` the refund in fen, `$3` [`param`](Self::param).
    pub on_refunded: &'static str,
    /// A text parameter for both statements (e.g. the rankings time zone).
    pub param: String,
    /// Runs on every instance when a payment of this purpose changed (its new status from
    /// the event bus): what the purpose derives from its payments in memory (cached
    /// rankings, progress) is dropped here when that status changes it.
    pub on_event: Option<EventHook>,
}

/// A purpose's reaction to a payment event, see [`PurposeHook::on_event`].
#[derive(Clone)]
pub struct EventHook(pub Arc<dyn Fn(Status) + Send + Sync>);

impl std::fmt::Debug for EventHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventHook")
    }
}

impl EngineSettings {
    /// The hook of `purpose`, if it has one.
    pub fn hook(&self, purpose: &str) -> Option<&PurposeHook> {
        self.hooks.iter().find(|h| h.purpose == purpose)
    }

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
}

impl From<tokio_postgres::Error> for EngineError {
    fn from(e: tokio_postgres::Error) -> Self {
        EngineError::Store(StoreError::from(e))
    }
}

/// An order created at the provider, not yet stored.
#[derive(Debug, Clone)]
pub struct PreparedOrder {
    pub order_no: String,
    pub channel: Channel,
    pub amount_fen: i64,
    pub description: String,
    pub code_url: String,
    pub expires_at: OffsetDateTime,
    /// First reconcile query, in case the callback never comes.
    pub next_check_at: OffsetDateTime,
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

    /// Creates the QR order at the provider. The caller stores it (one INSERT of its own,
    /// with the purpose's row) and then calls [`Engine::remember`].
    pub async fn prepare(
        &self,
        channel: Channel,
        amount_fen: i64,
        description: &str,
    ) -> Result<PreparedOrder, EngineError> {
        self.prepare_as(None, channel, amount_fen, description).await
    }

    /// [`Engine::prepare`] under a given order number (an idempotent request's resource id:
    /// asking the provider again with the same number makes no second order); `None` = new.
    pub async fn prepare_as(
        &self,
        order_no: Option<String>,
        channel: Channel,
        amount_fen: i64,
        description: &str,
    ) -> Result<PreparedOrder, EngineError> {
        let order_no = order_no.unwrap_or_else(new_order_no);
        let now = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or_else(|_| OffsetDateTime::now_utc());
        let policy = self.policy.current();
        if !policy.accepts(channel) {
            return Err(EngineError::ChannelDisabled(channel));
        }
        let expires_at = now + policy.order_ttl;
        let notify_url = self.notify_url(channel);
        let order = CreateOrder {
            order_no: &order_no,
            amount_fen,
            description,
            expires_at,
            notify_url: &notify_url,
        };
        let created = self.providers.get(channel)?.create(&order).await.inspect_err(|_| {
            self.metrics.provider_errors.fetch_add(1, Ordering::Relaxed);
        })?;
        Ok(PreparedOrder {
            next_check_at: next_check(now, 0, expires_at),
            order_no,
            channel,
            amount_fen,
            description: description.to_string(),
            code_url: created.code_url,
            expires_at,
        })
    }

    /// Seeds the status board with an order just stored, so its first polls need no query.
    pub async fn remember(&self, order: &PreparedOrder) {
        self.metrics.created.fetch_add(1, Ordering::Relaxed);
        let snapshot = Snapshot::new(
            order.order_no.clone(),
            Status::Pending,
            order.channel,
            order.amount_fen,
            order.description.clone(),
            order.code_url.clone(),
            order.expires_at,
            None,
            false,
            0,
        );
        self.status.put(snapshot).await;
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
        let row = tx
            .query_opt(
                "SELECT status, channel, amount_fen, transaction_id, purpose FROM payments WHERE order_no = $1 FOR UPDATE",
                &[&paid.order_no],
            )
            .await?
            .ok_or(EngineError::UnknownOrder)?;
        let status: Status = row.try_get(0)?;
        let order_channel: Channel = row.try_get(1)?;
        let amount_fen: i64 = row.get(2);
        let transaction_id: Option<String> = row.get(3);
        let purpose: String = row.get(4);
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
        let updated = tx
            .query_opt(
                "UPDATE payments SET status = 'paid', paid_at = $2, transaction_id = $3,
                        late = (status = 'closed'), updated_at = now()
                  WHERE order_no = $1 AND status IN ('pending', 'closed')
                  RETURNING late",
                &[&paid.order_no, &paid.paid_at, &paid.transaction_id],
            )
            .await?;
        let Some(updated) = updated else {
            tx.commit().await?;
            return Ok(Applied::AlreadyPaid);
        };
        let late: bool = updated.get(0);
        insert_event(
            &tx,
            &paid.order_no,
            if late { "paid_late" } else { "paid" },
            Some(status.as_str()),
            Some("paid"),
            Some(paid.amount_fen),
            source,
            serde_json::json!({"transaction_id": paid.transaction_id}),
        )
        .await?;
        if let Some(hook) = self.settings.hook(&purpose) {
            let statement = tx.prepare_cached(hook.on_paid).await?;
            tx.execute(&statement, &[&paid.order_no, &hook.param]).await?;
        }
        let refund_no = if late && self.policy.current().refund_late_payments {
            let refund_no = new_order_no();
            let refund = NewRefund {
                order_no: &paid.order_no,
                amount_fen: paid.amount_fen,
                reason: "订单已关闭后到账，自动退款 (late payment)",
                requested_by: "late_payment_policy",
                refund_no: None,
            };
            let lease = (3 * self.settings.call_budget()).as_secs_f64();
            queue_refund(&tx, &refund_no, &refund, lease).await?;
            Some(refund_no)
        } else {
            None
        };
        publish_change(&tx, &paid.order_no, "paid", &purpose).await?;
        tx.commit().await?;
        Ok(Applied::Credited { late, refund_no })
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

    /// Closes an expired pending order at the provider and here. If the provider says it
    /// was paid after all, the payment is applied instead.
    pub async fn close_expired(&self, order_no: &str, channel: Channel) -> Result<(), EngineError> {
        // A channel switched off since the order was made: close it here only.
        let closed = match self.providers.get(channel) {
            Ok(provider) => provider.close(order_no).await,
            Err(_) => Ok(()),
        };
        if let Err(e) = closed {
            // Paid meanwhile, or the provider is unreachable: look before closing.
            tracing::info!(%order_no, error = %e, "provider close failed; querying the order");
            match self.query(channel, order_no).await? {
                TradeState::Paid(paid) => {
                    self.apply_payment(channel, &paid, None, "reconcile").await?;
                    return Ok(());
                }
                TradeState::Pending => return Err(e.into()),
                TradeState::Closed => {}
            }
        }
        let mut client = self.store.client().await?;
        let tx = client.transaction().await?;
        let closed = tx
            .query_opt(
                "UPDATE payments SET status = 'closed', closed_at = now(), updated_at = now()
                  WHERE order_no = $1 AND status = 'pending' RETURNING purpose",
                &[&order_no],
            )
            .await?;
        if let Some(row) = closed {
            let purpose: String = row.get(0);
            insert_event(
                &tx,
                order_no,
                "closed",
                Some("pending"),
                Some("closed"),
                None,
                "reconcile",
                serde_json::json!({}),
            )
            .await?;
            publish_change(&tx, order_no, "closed", &purpose).await?;
            self.metrics.closed.fetch_add(1, Ordering::Relaxed);
        }
        tx.commit().await?;
        // This instance sees its own write at once; others hear it from the event bus.
        self.status.changed(order_no).await;
        Ok(())
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
