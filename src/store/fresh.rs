//! `Fresh`: a cache by user id that events keep fresh. An entry is read once from the
//! database and kept until an event says it changed; a value whose read began before such an
//! event is answered but not kept, so the cache never holds a value older than the last event
//! (a plain invalidate would let a slow read put back what it read before the change).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::ops::compute::Op;

#[derive(Debug, Clone)]
enum Slot<V> {
    Fresh(V),
    /// Invalidated by change number `.0`: reads that began before it must not be kept.
    Stale(u64),
}

/// Values by id, invalidated by change events.
pub struct Fresh<V: Clone + Send + Sync + 'static> {
    cache: moka::sync::Cache<i64, Slot<V>>,
    /// Change numbers: every invalidation takes the next one.
    changes: AtomicU64,
    /// The change number of the last "everything changed" (the event bus reconnected).
    changed_all_at: AtomicU64,
}

impl<V: Clone + Send + Sync + 'static> std::fmt::Debug for Fresh<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fresh")
            .field("entries", &self.cache.entry_count())
            .finish()
    }
}

impl<V: Clone + Send + Sync + 'static> Fresh<V> {
    /// At most `capacity` entries; `ttl` is a safety net only (events keep entries fresh).
    pub fn new(capacity: u64, ttl: Duration) -> Fresh<V> {
        Fresh {
            cache: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            changes: AtomicU64::new(0),
            changed_all_at: AtomicU64::new(0),
        }
    }

    /// The cached value of `id`, if fresh.
    pub fn get(&self, id: i64) -> Option<V> {
        match self.cache.get(&id) {
            Some(Slot::Fresh(value)) => Some(value),
            _ => None,
        }
    }

    /// Call before reading a value from the database; pass the answer to [`Fresh::keep`].
    pub fn begin(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// Caches `value`, read by a query that began at `began`, unless `id` (or everything)
    /// changed since: then the value may predate the change.
    pub fn keep(&self, id: i64, value: V, began: u64) {
        if self.changed_all_at.load(Ordering::Acquire) > began {
            return;
        }
        self.cache
            .entry(id)
            .and_compute_with(|entry| match entry.map(|e| e.into_value()) {
                Some(Slot::Stale(at)) if at > began => Op::Nop,
                _ => Op::Put(Slot::Fresh(value)),
            });
    }

    /// `id` changed: forget its value.
    pub fn changed(&self, id: i64) {
        let at = self.changes.fetch_add(1, Ordering::AcqRel) + 1;
        self.cache.insert(id, Slot::Stale(at));
    }

    /// Everything may have changed: forget all.
    pub fn changed_all(&self) {
        let at = self.changes.fetch_add(1, Ordering::AcqRel) + 1;
        self.changed_all_at.store(at, Ordering::Release);
        self.cache.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_read_across_a_change_is_not_kept() {
        let fresh = Fresh::<i64>::new(100, Duration::from_secs(60));
        let began = fresh.begin();
        fresh.changed(7);
        fresh.keep(7, 3, began);
        assert_eq!(fresh.get(7), None, "read before the change");
        fresh.keep(8, 4, began);
        assert_eq!(fresh.get(8), Some(4), "another id is unaffected");
        let began = fresh.begin();
        fresh.keep(7, 5, began);
        assert_eq!(fresh.get(7), Some(5), "read after the change");
        fresh.changed_all();
        assert_eq!(fresh.get(7), None);
        fresh.keep(9, 1, began);
        assert_eq!(fresh.get(9), None, "read before everything changed");
    }
}
