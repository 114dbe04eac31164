//! The status board: an in-memory snapshot per order (filled by one query on first read, or
//! seeded at creation), its JSON pre-serialized, dropped when an event says the order changed;
//! and the long-poll waiters, parked per order and woken by those events on every instance.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use time::OffsetDateTime;
use tokio::sync::Notify;

use super::money::format_yuan;
use super::provider::Channel;
use super::rfc3339;
use crate::store::{Store, StoreError};

/// Where a payment stands (the contract's `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Paid,
    Closed,
    Refunded,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Paid => "paid",
            Status::Closed => "closed",
            Status::Refunded => "refunded",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        match text {
            "pending" => Some(Status::Pending),
            "paid" => Some(Status::Paid),
            "closed" => Some(Status::Closed),
            "refunded" => Some(Status::Refunded),
            _ => None,
        }
    }
}

/// One order as the status endpoint, the pay page and the QR code need it.
#[derive(Debug)]
pub struct Snapshot {
    pub order_no: String,
    pub status: Status,
    pub channel: Channel,
    pub amount_fen: i64,
    pub description: String,
    /// What the QR code encodes.
    pub code_url: String,
    pub expires_at: OffsetDateTime,
    pub paid_at: Option<OffsetDateTime>,
    pub late: bool,
    pub refunded_fen: i64,
    /// The contract's payment status JSON, ready to send.
    pub json: Bytes,
}

impl Snapshot {
    /// Builds the snapshot and its JSON.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        order_no: String,
        status: Status,
        channel: Channel,
        amount_fen: i64,
        description: String,
        code_url: String,
        expires_at: OffsetDateTime,
        paid_at: Option<OffsetDateTime>,
        late: bool,
        refunded_fen: i64,
    ) -> Snapshot {
        let mut json = serde_json::json!({
            "order_no": order_no,
            "status": status.as_str(),
            "amount": format_yuan(amount_fen),
            "amount_fen": amount_fen,
            "channel": channel.as_str(),
            "paid_at": paid_at.map(rfc3339),
            "expires_at": rfc3339(expires_at),
        });
        if late {
            json["late"] = true.into();
        }
        if refunded_fen > 0 {
            json["refunded_fen"] = refunded_fen.into();
            json["refunded"] = format_yuan(refunded_fen).into();
        }
        Snapshot {
            json: Bytes::from(json.to_string()),
            order_no,
            status,
            channel,
            amount_fen,
            description,
            code_url,
            expires_at,
            paid_at,
            late,
            refunded_fen,
        }
    }
}

/// Snapshots and waiters.
pub struct StatusBoard {
    cache: moka::future::Cache<String, Arc<Snapshot>>,
    /// Orders someone waits on; the `Notify` lives as long as a waiter holds it.
    /// A std mutex: held for a map operation only, never across an await.
    waiters: Mutex<HashMap<String, Weak<Notify>>>,
}

impl std::fmt::Debug for StatusBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusBoard")
            .field("cached", &self.cache.entry_count())
            .finish()
    }
}

impl Default for StatusBoard {
    fn default() -> Self {
        StatusBoard {
            cache: moka::future::Cache::builder()
                .max_capacity(200_000)
                // A safety net only: events keep entries fresh.
                .time_to_live(Duration::from_secs(60))
                .build(),
            waiters: Mutex::new(HashMap::new()),
        }
    }
}

const SELECT_SNAPSHOT: &str =
    "SELECT status, channel, amount_fen, description, code_url, expires_at, paid_at, late, refunded_fen
     FROM payments WHERE order_no = $1";

/// Why a snapshot could not be read.
#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error("no such order")]
    Unknown,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl StatusBoard {
    /// The order's snapshot: from memory, else one query. `Ok(None)` for an unknown order.
    pub async fn get(&self, store: &Store, order_no: &str) -> Result<Option<Arc<Snapshot>>, StoreError> {
        if let Some(hit) = self.cache.get(order_no).await {
            return Ok(Some(hit));
        }
        // Boxed: a parked long-poll holds this future; the miss path must not set its size.
        Box::pin(self.fill(store, order_no)).await
    }

    async fn fill(&self, store: &Store, order_no: &str) -> Result<Option<Arc<Snapshot>>, StoreError> {
        let loaded = self
            .cache
            .try_get_with(order_no.to_string(), load(store, order_no))
            .await;
        match loaded {
            Ok(snapshot) => Ok(Some(snapshot)),
            Err(e) => match &*e {
                LoadError::Unknown => Ok(None),
                LoadError::Store(s) if s.is_unavailable() => Err(StoreError::Unavailable(s.to_string())),
                LoadError::Store(s) => Err(StoreError::Unavailable(format!("reading the order failed: {s}"))),
            },
        }
    }

    /// Seeds the cache with an order just created here.
    pub async fn put(&self, snapshot: Snapshot) {
        self.cache.insert(snapshot.order_no.clone(), Arc::new(snapshot)).await;
    }

    /// The order changed: drop its snapshot and wake its waiters.
    pub async fn changed(&self, order_no: &str) {
        self.cache.invalidate(order_no).await;
        let notify = self.waiters.lock().ok().and_then(|mut w| w.remove(order_no)?.upgrade());
        if let Some(notify) = notify {
            notify.notify_waiters();
        }
    }

    /// Anything may have changed (the event listener reconnected): drop all, wake all.
    pub fn changed_all(&self) {
        self.cache.invalidate_all();
        let all: Vec<_> = self.waiters.lock().map(|mut w| w.drain().collect()).unwrap_or_default();
        for (_, notify) in all {
            if let Some(notify) = notify.upgrade() {
                notify.notify_waiters();
            }
        }
    }

    /// The `Notify` that `changed(order_no)` will wake; hold it while waiting.
    pub fn waiter(&self, order_no: &str) -> Arc<Notify> {
        let Ok(mut waiters) = self.waiters.lock() else {
            return Arc::new(Notify::new());
        };
        if let Some(existing) = waiters.get(order_no).and_then(Weak::upgrade) {
            return existing;
        }
        if waiters.len() > 1024 && waiters.len().is_power_of_two() {
            waiters.retain(|_, w| w.strong_count() > 0);
        }
        let notify = Arc::new(Notify::new());
        waiters.insert(order_no.to_string(), Arc::downgrade(&notify));
        notify
    }

    /// Orders with at least one parked waiter (for metrics).
    pub fn waiting_orders(&self) -> usize {
        self.waiters
            .lock()
            .map(|w| w.values().filter(|n| n.strong_count() > 0).count())
            .unwrap_or(0)
    }
}

async fn load(store: &Store, order_no: &str) -> Result<Arc<Snapshot>, LoadError> {
    let client = store.client().await?;
    let statement = client.prepare_cached(SELECT_SNAPSHOT).await.map_err(StoreError::from)?;
    let row = client
        .query_opt(&statement, &[&order_no])
        .await
        .map_err(StoreError::from)?
        .ok_or(LoadError::Unknown)?;
    let status: &str = row.get(0);
    let channel: &str = row.get(1);
    Ok(Arc::new(Snapshot::new(
        order_no.to_string(),
        Status::parse(status).unwrap_or(Status::Pending),
        Channel::parse(channel).unwrap_or(Channel::Wechat),
        row.get(2),
        row.get(3),
        row.get(4),
        row.get(5),
        row.get(6),
        row.get(7),
        row.get(8),
    )))
}
