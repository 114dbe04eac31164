//! The status board: an in-memory snapshot per order (filled by one query on first read, or
//! seeded at creation), its JSON pre-serialized, dropped when an event says the order changed;
//! and the long-poll waiters, parked per order and woken by those events on every instance.
//!
//! A snapshot never goes back: every change is numbered, and a fill that read the database
//! before a change of its order arrived is read again rather than cached. After the event
//! bus reconnects (notifications may have been lost), the orders with parked polls are read
//! in one batched query, and only those that changed are woken — never a stampede of
//! one read per parked poll.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

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

/// Read from the database: an unknown value is an error, never silently `pending`.
impl<'a> tokio_postgres::types::FromSql<'a> for Status {
    fn from_sql(
        ty: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let text = <&str as tokio_postgres::types::FromSql>::from_sql(ty, raw)?;
        Status::parse(text).ok_or_else(|| format!("unknown payment status {text:?}").into())
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        <&str as tokio_postgres::types::FromSql>::accepts(ty)
    }
}

/// One order as the status endpoint, the pay page and the QR code need it.
#[derive(Debug)]
pub struct Snapshot {
    pub order_no: String,
    /// What it is for (`payments.purpose`): the pay page asks that purpose where it leads.
    pub purpose: String,
    pub status: Status,
    pub channel: Channel,
    pub amount_fen: i64,
    pub description: String,
    /// What the QR code encodes; empty while a purchase's provider order is being made.
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
        purpose: String,
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
            purpose,
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
    cache: moka::sync::Cache<String, Arc<Snapshot>>,
    /// Orders someone waits on; the `Notify` lives as long as a waiter holds it.
    /// A std mutex: held for a map operation only, never across an await.
    waiters: Mutex<HashMap<String, Weak<Notify>>>,
    /// The numbered changes fills are checked against. A std mutex: held for a map
    /// operation and a cache insert or invalidation, never across an await.
    changes: Mutex<Changes>,
    /// For tests: fills wait here between their read and their caching.
    #[cfg(feature = "sandbox")]
    fill_hold: Mutex<Option<Arc<FillHold>>>,
}

/// Every change gets the next number; a fill may cache what it read only if no change of
/// its order (and no resync) got a number after the fill began.
#[derive(Debug, Default)]
struct Changes {
    last: u64,
    /// The last change of each recently changed order, and when; older than
    /// [`FILL_HORIZON`] entries are forgotten.
    recent: HashMap<String, (u64, Instant)>,
    /// The number of the last resync: everything may have changed then.
    resync: u64,
    /// `recent` is pruned when it reaches this size (then set to twice what is left, at
    /// least 4096), so pruning costs O(1) per change on average.
    prune_at: usize,
}

/// A fill older than this is never cached (its order's changes may have been forgotten).
const FILL_HORIZON: Duration = Duration::from_secs(10);
/// Reads of a fill that keeps losing the race before it answers uncached.
const FILL_TRIES: usize = 3;
/// Parked orders read per query after a resync.
const RESYNC_CHUNK: usize = 1000;

/// Where a fill began.
#[derive(Debug, Clone, Copy)]
struct FillStart {
    number: u64,
    at: Instant,
}

/// For tests: holds every snapshot fill after it read the database and before it is
/// cached, until released, so a test can commit a change in between.
#[cfg(feature = "sandbox")]
#[derive(Debug, Default)]
pub struct FillHold {
    reached: Notify,
    released: tokio::sync::watch::Sender<bool>,
}

#[cfg(feature = "sandbox")]
impl FillHold {
    /// Resolves once a fill has read the database (and now waits).
    pub async fn reached(&self) {
        self.reached.notified().await;
    }

    /// Lets every held fill go on, and every later one pass.
    pub fn release(&self) {
        self.released.send_replace(true);
    }

    async fn pass(&self) {
        self.reached.notify_one();
        let mut released = self.released.subscribe();
        let _ = released.wait_for(|go| *go).await;
    }
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
            cache: moka::sync::Cache::builder()
                .max_capacity(200_000)
                // A safety net only: events keep entries fresh.
                .time_to_live(Duration::from_secs(60))
                .build(),
            waiters: Mutex::new(HashMap::new()),
            changes: Mutex::new(Changes::default()),
            #[cfg(feature = "sandbox")]
            fill_hold: Mutex::new(None),
        }
    }
}

const SELECT_SNAPSHOT: &str =
    "SELECT status, channel, amount_fen, description, COALESCE(code_url, ''), expires_at, paid_at, late, refunded_fen, order_no,
            purpose
     FROM payments WHERE order_no = $1";

const SELECT_SNAPSHOTS: &str =
    "SELECT status, channel, amount_fen, description, COALESCE(code_url, ''), expires_at, paid_at, late, refunded_fen, order_no,
            purpose
     FROM payments WHERE order_no = ANY($1)";

impl StatusBoard {
    /// The order's snapshot: from memory, else one query. `Ok(None)` for an unknown order.
    pub async fn get(&self, store: &Store, order_no: &str) -> Result<Option<Arc<Snapshot>>, StoreError> {
        if let Some(hit) = self.cache.get(order_no) {
            return Ok(Some(hit));
        }
        // Boxed: a parked long-poll holds this future; the miss path must not set its size.
        Box::pin(self.fill(store, order_no)).await
    }

    /// The order's snapshot when it is in memory, without a future.
    pub fn cached(&self, order_no: &str) -> Option<Arc<Snapshot>> {
        self.cache.get(order_no)
    }

    /// For tests: holds every fill from now on between its read and its caching (see
    /// [`FillHold`]).
    #[cfg(feature = "sandbox")]
    pub fn hold_fills(&self) -> Arc<FillHold> {
        let hold = Arc::new(FillHold::default());
        if let Ok(mut slot) = self.fill_hold.lock() {
            *slot = Some(Arc::clone(&hold));
        }
        hold
    }

    /// Waits at the test hold, if one is set.
    async fn hold_point(&self) {
        #[cfg(feature = "sandbox")]
        {
            let hold = self.fill_hold.lock().ok().and_then(|slot| slot.clone());
            if let Some(hold) = hold {
                hold.pass().await;
            }
        }
    }

    /// Reads the order and caches it unless it changed meanwhile; then it reads again (the
    /// change is committed by the time its event arrives), a few times at most.
    async fn fill(&self, store: &Store, order_no: &str) -> Result<Option<Arc<Snapshot>>, StoreError> {
        let mut last = None;
        for _ in 0..FILL_TRIES {
            let start = self.fill_start();
            let Some(snapshot) = load(store, order_no).await? else {
                return Ok(None);
            };
            self.hold_point().await;
            if self.cache_unless_changed(start, &snapshot) {
                return Ok(Some(snapshot));
            }
            last = Some(snapshot);
        }
        Ok(last)
    }

    fn fill_start(&self) -> FillStart {
        let number = self.changes.lock().map_or(u64::MAX, |c| c.last);
        FillStart {
            number,
            at: Instant::now(),
        }
    }

    /// Caches `snapshot` if nothing about its order changed since `start`; false otherwise.
    fn cache_unless_changed(&self, start: FillStart, snapshot: &Arc<Snapshot>) -> bool {
        let Ok(changes) = self.changes.lock() else {
            return false;
        };
        let changed_since = changes.resync > start.number
            || changes
                .recent
                .get(&snapshot.order_no)
                .is_some_and(|(number, _)| *number > start.number);
        if changed_since || start.at.elapsed() > FILL_HORIZON {
            return false;
        }
        // Under the lock: a change cannot slip in between the check and the insert.
        self.cache.insert(snapshot.order_no.clone(), Arc::clone(snapshot));
        true
    }

    /// Seeds the cache with an order just created here, unless it changed already (a
    /// payment can land between the order's INSERT and this call).
    pub async fn put(&self, snapshot: Snapshot) {
        if let Ok(changes) = self.changes.lock()
            && !changes.recent.contains_key(&snapshot.order_no)
        {
            self.cache.insert(snapshot.order_no.clone(), Arc::new(snapshot));
        }
    }

    /// The order changed: number the change, drop its snapshot and wake its waiters.
    pub async fn changed(&self, order_no: &str) {
        if let Ok(mut changes) = self.changes.lock() {
            changes.last += 1;
            let number = changes.last;
            if changes.recent.len() >= changes.prune_at.max(4096) {
                changes.recent.retain(|_, (_, at)| at.elapsed() < FILL_HORIZON);
                changes.prune_at = 2 * changes.recent.len();
            }
            changes.recent.insert(order_no.to_string(), (number, Instant::now()));
            self.cache.invalidate(order_no);
        } else {
            self.cache.invalidate(order_no);
        }
        let notify = self.waiters.lock().ok().and_then(|mut w| w.remove(order_no)?.upgrade());
        if let Some(notify) = notify {
            notify.notify_waiters();
        }
    }

    /// Anything may have changed (the event listener reconnected; notifications sent
    /// meanwhile are lost): drops every snapshot, then reads the orders someone waits on in
    /// batches and wakes only the waiters of those that are no longer pending. If the
    /// database does not answer, the waiters stay parked until their own deadline.
    pub async fn resync(&self, store: &Store) {
        if let Ok(mut changes) = self.changes.lock() {
            changes.last += 1;
            changes.resync = changes.last;
            changes.recent.clear();
            self.cache.invalidate_all();
        }
        let waited: Vec<String> = self
            .waiters
            .lock()
            .map(|w| {
                w.iter()
                    .filter(|(_, n)| n.strong_count() > 0)
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        for chunk in waited.chunks(RESYNC_CHUNK) {
            let start = self.fill_start();
            let snapshots = match load_many(store, chunk).await {
                Ok(snapshots) => snapshots,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot re-read the parked orders after a resync; their polls answer at their deadline");
                    return;
                }
            };
            for snapshot in snapshots {
                self.cache_unless_changed(start, &snapshot);
                if snapshot.status != Status::Pending {
                    self.wake(&snapshot.order_no);
                }
            }
        }
    }

    fn wake(&self, order_no: &str) {
        let notify = self.waiters.lock().ok().and_then(|mut w| w.remove(order_no)?.upgrade());
        if let Some(notify) = notify {
            notify.notify_waiters();
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

/// The order's snapshot; `None` for an unknown order.
async fn load(store: &Store, order_no: &str) -> Result<Option<Arc<Snapshot>>, StoreError> {
    let client = store.client().await?;
    let statement = client.prepare_cached(SELECT_SNAPSHOT).await?;
    let Some(row) = client.query_opt(&statement, &[&order_no]).await? else {
        return Ok(None);
    };
    Ok(Some(snapshot_from(&row)?))
}

/// The snapshots of `order_nos` (unknown ones left out), in one query.
async fn load_many(store: &Store, order_nos: &[String]) -> Result<Vec<Arc<Snapshot>>, StoreError> {
    let client = store.client().await?;
    let statement = client.prepare_cached(SELECT_SNAPSHOTS).await?;
    let rows = client.query(&statement, &[&order_nos]).await?;
    rows.iter().map(snapshot_from).collect()
}

/// A snapshot from a row of [`SELECT_SNAPSHOT`]; an unknown status or channel is an error.
fn snapshot_from(row: &tokio_postgres::Row) -> Result<Arc<Snapshot>, StoreError> {
    Ok(Arc::new(Snapshot::new(
        row.try_get(9)?,
        row.try_get(10)?,
        row.try_get(0)?,
        row.try_get(1)?,
        row.try_get(2)?,
        row.try_get(3)?,
        row.try_get(4)?,
        row.try_get(5)?,
        row.try_get(6)?,
        row.try_get(7)?,
        row.try_get(8)?,
    )))
}
