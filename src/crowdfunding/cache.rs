//! The public project answers, serialized once into `Bytes` and kept in memory: the detail
//! of each public project and the first pages of the lists without a search. A change of a
//! project on any instance (its `project` event) drops its detail and every list; a fill
//! that read before a change is not kept (generations, as the rankings do), and a short TTL
//! is the safety net. A hit does no I/O and no serialization.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::model::Status;
use crate::store::flights::Flights;
use crate::store::hot::Front;

/// Which list: every parameter of a `GET /api/projects` that is cached (no `q`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListKey {
    pub status: Status,
    pub sort: Sort,
    pub page: u32,
    pub size: u32,
}

/// The list orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sort {
    Newest,
    Ending,
    MostFunded,
    MostBacked,
}

impl Sort {
    pub fn parse(text: &str) -> Option<Sort> {
        Some(match text {
            "newest" => Sort::Newest,
            "ending" => Sort::Ending,
            "most_funded" => Sort::MostFunded,
            "most_backed" => Sort::MostBacked,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Newest => "newest",
            Sort::Ending => "ending",
            Sort::MostFunded => "most_funded",
            Sort::MostBacked => "most_backed",
        }
    }
}

/// List pages beyond this one are computed for each request.
pub const MAX_CACHED_PAGE: u32 = 5;
/// The longest an answer is kept without an event confirming it.
const SAFETY_TTL: Duration = Duration::from_secs(30);
/// Bytes of answers kept at most.
const MAX_CACHED_BYTES: u64 = 32 * 1024 * 1024;

fn weigh(body: &Bytes) -> u32 {
    u32::try_from(body.len() + 96).unwrap_or(u32::MAX)
}

/// The cached answers.
pub struct Cache {
    details: moka::sync::Cache<i64, Bytes>,
    lists: moka::sync::Cache<ListKey, Bytes>,
    /// Bumped by every change; a fill that began before a bump is not kept. Checked and
    /// bumped under `caching`, so neither slips between the other's two steps.
    generation: AtomicU64,
    /// A std mutex: never held across an await.
    caching: Mutex<()>,
    /// One load per list page at a time (see [`Cache::list_flight`]).
    list_flights: Flights<ListKey>,
    /// Each worker's copies of the answers it serves most.
    detail_front: Front<i64>,
    list_front: Front<ListKey>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("crowdfunding::Cache")
    }
}

impl Default for Cache {
    fn default() -> Self {
        let details = moka::sync::Cache::builder()
            .max_capacity(MAX_CACHED_BYTES)
            .weigher(|_: &i64, body: &Bytes| weigh(body))
            .time_to_live(SAFETY_TTL)
            .build();
        let lists = moka::sync::Cache::builder()
            .max_capacity(MAX_CACHED_BYTES / 4)
            .weigher(|_: &ListKey, body: &Bytes| weigh(body))
            .time_to_live(SAFETY_TTL)
            .build();
        Cache {
            details,
            lists,
            generation: AtomicU64::new(0),
            caching: Mutex::new(()),
            list_flights: Flights::default(),
            detail_front: Front::default(),
            list_front: Front::default(),
        }
    }
}

impl Cache {
    /// The cached detail of public project `id`, as of `now`.
    pub fn detail(&self, id: i64, now: Instant) -> Option<Bytes> {
        self.detail_front
            .get_or(&id, now, || self.details.get(&id).map(|body| (body, None)))
    }

    /// A cached list page, as of `now`.
    pub fn list(&self, key: &ListKey, now: Instant) -> Option<Bytes> {
        self.list_front
            .get_or(key, now, || self.lists.get(key).map(|body| (body, None)))
    }

    /// The generation a fill starts from.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Keeps a detail read at `generation`, unless something changed since.
    pub fn keep_detail(&self, generation: u64, id: i64, body: Bytes) {
        let _caching = self.caching.lock();
        if self.generation.load(Ordering::SeqCst) == generation {
            self.details.insert(id, body);
            self.detail_front.changed();
        }
    }

    /// The lock that makes concurrent misses of list page `key` wait for one load; `None`
    /// for a page that is not cached (waiting would gain nothing).
    pub fn list_flight(&self, key: &ListKey) -> Option<std::sync::Arc<tokio::sync::Mutex<()>>> {
        (key.page <= MAX_CACHED_PAGE).then(|| self.list_flights.of(key))
    }

    /// Keeps a list page read at `generation`, unless something changed since.
    pub fn keep_list(&self, generation: u64, key: ListKey, body: Bytes) {
        if key.page > MAX_CACHED_PAGE {
            return;
        }
        let _caching = self.caching.lock();
        if self.generation.load(Ordering::SeqCst) == generation {
            self.lists.insert(key, body);
            self.list_front.changed();
        }
    }

    /// Project `id` changed: its detail and every list go.
    pub fn changed(&self, id: i64) {
        let _caching = self.caching.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.details.invalidate(&id);
        self.lists.invalidate_all();
        self.detail_front.changed();
        self.list_front.changed();
    }

    /// Anything may have changed (the event bus reconnected).
    pub fn changed_all(&self) {
        let _caching = self.caching.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.details.invalidate_all();
        self.lists.invalidate_all();
        self.detail_front.changed();
        self.list_front.changed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fill_that_raced_a_change_is_not_kept() {
        let cache = Cache::default();
        let before = cache.generation();
        cache.changed(7);
        cache.keep_detail(before, 7, Bytes::from_static(b"old"));
        assert!(cache.detail(7, Instant::now()).is_none());
        let now = cache.generation();
        cache.keep_detail(now, 7, Bytes::from_static(b"new"));
        assert_eq!(cache.detail(7, Instant::now()).unwrap(), "new");
        cache.changed(8);
        assert_eq!(
            cache.detail(7, Instant::now()).unwrap(),
            "new",
            "another project's change keeps it"
        );
        let key = ListKey {
            status: Status::Live,
            sort: Sort::Newest,
            page: 1,
            size: 20,
        };
        cache.keep_list(cache.generation(), key, Bytes::from_static(b"[]"));
        assert!(cache.list(&key, Instant::now()).is_some());
        cache.changed(8);
        assert!(
            cache.list(&key, Instant::now()).is_none(),
            "every list goes with any change"
        );
        let deep = ListKey { page: 6, ..key };
        cache.keep_list(cache.generation(), deep, Bytes::from_static(b"[]"));
        assert!(cache.list(&deep, Instant::now()).is_none(), "deep pages are not kept");
    }
}
