//! Closing unpaid orders — expired, cancelled by the buyer ([`Engine::cancel`]), or never
//! made at the provider — at the provider first (within its rules), then here: the
//! conditional UPDATE pending → closed with its event, its purpose's `on_closed` (the same
//! transaction, so exactly once) and its NOTIFY. A payment that lands afterwards is late:
//! `on_paid` sees `late` and its purpose's late-payment policy applies; one that lands on an
//! order the buyer cancelled is refunded in full.

use std::sync::atomic::Ordering;
use std::time::Duration;

use time::OffsetDateTime;

use super::engine::{Engine, EngineError, insert_event, publish_change};
use super::outbox::{Ran, Step, run_step};
use super::provider::{Channel, TradeState};
use super::purpose::PaymentRef;
use super::status::Status;

/// WeChat Pay refuses to close an order sooner than this after it was made ("订单生成后不能
/// 马上调用关单接口，最短调用时间间隔为 5 分钟", the close-order API's documentation).
pub const WECHAT_CLOSE_AFTER: Duration = Duration::from_secs(300);

/// Why an order closes unpaid; each is its own `payment_events.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseKind {
    /// Past `expires_at` (`closed`).
    Expired,
    /// The buyer cancelled it (`cancelled`).
    Cancelled,
    /// The provider did not make its order (`create_failed`).
    CreateFailed,
    /// Its create died between the commit and the provider's answer (`create_abandoned`).
    Abandoned,
}

impl CloseKind {
    fn event(self) -> &'static str {
        match self {
            CloseKind::Expired => "closed",
            CloseKind::Cancelled => "cancelled",
            CloseKind::CreateFailed => "create_failed",
            CloseKind::Abandoned => "create_abandoned",
        }
    }
}

/// The earliest the provider lets an order made at `created_at` be closed.
pub fn close_allowed_at(channel: Channel, created_at: OffsetDateTime) -> OffsetDateTime {
    match channel {
        Channel::Wechat => created_at + WECHAT_CLOSE_AFTER,
        // Alipay closes a scanned trade at once, and answers ACQ.TRADE_NOT_EXIST (close here)
        // for a QR never scanned.
        Channel::Alipay => created_at,
    }
}

/// What a buyer's cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// Closed at the provider and here now; `on_closed` ran.
    Closed,
    /// It had closed before (expired, or an earlier cancel).
    AlreadyClosed,
    /// Pending-cancelled: the provider's rules (WeChat: 5 minutes after creation) or its
    /// answer put the close off; the reconcile job closes it from `at` on, with `on_closed`.
    /// A payment that lands meanwhile is refunded in full.
    Closing { at: OffsetDateTime },
    /// Paid: before the cancel (`refunding: false`, nothing changed: a refund of a paid
    /// order is the module's after-sales call), or by a payment that raced a cancel
    /// (`refunding: true`: refunded in full, automatically).
    Paid { refunding: bool },
}

/// Where `mark_cancel` found the order.
enum Marked {
    Pending {
        channel: Channel,
        close_at: OffsetDateTime,
    },
    Closed,
    /// Paid; `cancelled`: the cancel had been asked before (so it is being refunded).
    Paid {
        cancelled: bool,
    },
}

const CLOSE: &str = "UPDATE payments SET status = 'closed', closed_at = now(), updated_at = now()
      WHERE order_no = $1 AND status = 'pending'
  RETURNING purpose, channel, amount_fen, purpose_backlog, cancel_requested_at IS NOT NULL";

const LOCK_FOR_CANCEL: &str = "SELECT status, channel, created_at, cancel_requested_at IS NOT NULL
       FROM payments WHERE order_no = $1 FOR UPDATE";

const MARK_CANCEL: &str = "UPDATE payments SET cancel_requested_at = now(), next_check_at = $2, updated_at = now()
      WHERE order_no = $1";

impl Engine {
    /// Closes a pending order here (not at the provider): the conditional UPDATE, its event,
    /// its purpose's `on_closed` and the NOTIFY, in one transaction. False when the order was
    /// no longer pending.
    pub(super) async fn close_here(
        &self,
        order_no: &str,
        kind: CloseKind,
        source: &str,
        detail: serde_json::Value,
    ) -> Result<bool, EngineError> {
        let closed = crate::store::bounded(self.close_tx(order_no, kind, source, detail)).await?;
        if closed {
            self.metrics.closed.fetch_add(1, Ordering::Relaxed);
        }
        // This instance sees its own write at once; others hear it from the event bus.
        self.status.changed(order_no).await;
        Ok(closed)
    }

    async fn close_tx(
        &self,
        order_no: &str,
        kind: CloseKind,
        source: &str,
        detail: serde_json::Value,
    ) -> Result<bool, EngineError> {
        let mut client = self.store.client().await?;
        let tx = client.transaction().await?;
        let Some(row) = tx.query_opt(&tx.prepare_cached(CLOSE).await?, &[&order_no]).await? else {
            tx.commit().await?;
            return Ok(false);
        };
        let purpose: String = row.get(0);
        insert_event(
            &tx,
            order_no,
            kind.event(),
            Some("pending"),
            Some("closed"),
            None,
            source,
            detail,
        )
        .await?;
        let payment = PaymentRef {
            order_no: order_no.to_string(),
            channel: row.try_get(1)?,
            amount_fen: row.get(2),
            late: false,
            cancelled: row.get(4),
            refunded_fen: 0,
        };
        let backlog: i32 = row.get(3);
        let ran = run_step(&tx, &self.settings.purposes, &purpose, &payment, Step::Closed, backlog).await?;
        if ran == Ran::Deferred {
            self.metrics.purpose_steps_deferred.fetch_add(1, Ordering::Relaxed);
        }
        publish_change(&tx, order_no, "closed", &purpose).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Closes a pending order at the provider, then here. If the provider says it was paid
    /// after all, the payment is applied instead. An order whose create was abandoned
    /// (nobody ever had its QR code) closes here even when the provider close fails, as long
    /// as the provider does not say it was paid.
    pub async fn close_order(&self, order_no: &str, channel: Channel, kind: CloseKind) -> Result<(), EngineError> {
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
                TradeState::Pending if kind != CloseKind::Abandoned => return Err(e.into()),
                TradeState::Pending | TradeState::Closed => {}
            }
        }
        self.close_here(order_no, kind, "reconcile", serde_json::json!({}))
            .await?;
        Ok(())
    }

    /// The buyer cancels an unpaid order: marked cancelled (a payment landing from now on is
    /// refunded in full), then closed at the provider as soon as its rules allow — now, or by
    /// the reconcile job once allowed (WeChat: 5 minutes after creation) — and here, with the
    /// purpose's `on_closed`, exactly once. Repeating a cancel is harmless.
    pub async fn cancel(&self, order_no: &str) -> Result<Cancelled, EngineError> {
        let (channel, close_at) = match crate::store::bounded(self.mark_cancel(order_no)).await? {
            Marked::Paid { cancelled } => return Ok(Cancelled::Paid { refunding: cancelled }),
            Marked::Closed => return Ok(Cancelled::AlreadyClosed),
            Marked::Pending { channel, close_at } => (channel, close_at),
        };
        if OffsetDateTime::now_utc() < close_at {
            return Ok(Cancelled::Closing { at: close_at });
        }
        if let Err(e) = self.close_order(order_no, channel, CloseKind::Cancelled).await {
            tracing::info!(%order_no, error = %e, "cancel: the close is left to the reconcile job");
            return Ok(Cancelled::Closing { at: close_at });
        }
        let now = crate::store::bounded(self.status.get(&self.store, order_no))
            .await?
            .ok_or(EngineError::UnknownOrder)?;
        Ok(match now.status {
            Status::Closed => Cancelled::Closed,
            Status::Paid | Status::Refunded => Cancelled::Paid { refunding: true },
            Status::Pending => Cancelled::Closing { at: close_at },
        })
    }

    /// Marks a pending order cancelled (once, audited) and schedules its close.
    async fn mark_cancel(&self, order_no: &str) -> Result<Marked, EngineError> {
        let mut client = self.store.client().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(&tx.prepare_cached(LOCK_FOR_CANCEL).await?, &[&order_no])
            .await?
            .ok_or(EngineError::UnknownOrder)?;
        let status: Status = row.try_get(0)?;
        let channel: Channel = row.try_get(1)?;
        let marked = match status {
            Status::Paid | Status::Refunded => Marked::Paid { cancelled: row.get(3) },
            Status::Closed => Marked::Closed,
            Status::Pending => {
                let close_at = close_allowed_at(channel, row.get(2));
                if !row.get::<_, bool>(3) {
                    tx.execute(&tx.prepare_cached(MARK_CANCEL).await?, &[&order_no, &close_at])
                        .await?;
                    let detail = serde_json::json!({ "close_at": super::rfc3339(close_at) });
                    insert_event(
                        &tx,
                        order_no,
                        "cancel_requested",
                        Some("pending"),
                        None,
                        None,
                        "api",
                        detail,
                    )
                    .await?;
                }
                Marked::Pending { channel, close_at }
            }
        };
        tx.commit().await?;
        Ok(marked)
    }
}
