//! `Front`: a small per-thread memo in front of a shared cache, for the few answers every
//! request asks for. A hit in a `moka` cache hashes the key with SipHash, walks a concurrent
//! map and records the read for eviction in a queue every worker thread writes to; a hit
//! here is a short scan of the worker's own slots, under a lock no other thread takes while
//! the worker runs, and the body it answers is the worker's own copy, so that counting its
//! references touches no memory another core writes.
//!
//! A front never answers what its cache no longer holds: every change to the cache (an
//! insert, an invalidation) is followed by [`Front::changed`], which retires every slot; a
//! slot remembers the change number it was filled under, and a fill that began before a
//! change is refused. A slot also lives at most [`HOT_FOR`] (or until the instant its filler
//! gives, if sooner), so that the cache's own expiry is late by that much at most.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

/// The longest a slot answers without asking its cache again.
pub const HOT_FOR: Duration = Duration::from_secs(1);
/// Slots per thread: the hot answers are few.
const SLOTS: usize = 8;
/// Shards: worker threads beyond this many share them (still correct, a little slower).
const SHARDS: usize = 16;

/// One remembered answer.
struct Slot<K> {
    key: K,
    body: Bytes,
    change: u64,
    until: Instant,
}

/// A shard on a cache line of its own, so that two workers never write the same line.
#[repr(align(128))]
struct Shard<K> {
    slots: Mutex<Vec<Slot<K>>>,
}

/// Per-thread memos of a cache's hottest answers by key.
pub struct Front<K> {
    shards: Box<[Shard<K>]>,
    /// Change numbers: every change to the cache behind takes the next one.
    changes: AtomicU64,
}

impl<K> std::fmt::Debug for Front<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Front")
            .field("changes", &self.changes.load(Ordering::Relaxed))
            .finish()
    }
}

impl<K> Default for Front<K> {
    fn default() -> Front<K> {
        Front {
            shards: (0..SHARDS)
                .map(|_| Shard {
                    slots: Mutex::new(Vec::new()),
                })
                .collect(),
            changes: AtomicU64::new(0),
        }
    }
}

/// This thread's shard index, given out in turn on first use.
fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    INDEX.with(|index| *index)
}

impl<K: Eq> Front<K> {
    /// The answer for `key` from this thread's slots, or else from `load` (the cache behind,
    /// which must not wait), kept for the next reads until `now` + [`HOT_FOR`] or the
    /// instant `load` gives, whichever comes first.
    pub fn get_or<Q>(
        &self,
        key: &Q,
        now: Instant,
        load: impl FnOnce() -> Option<(Bytes, Option<Instant>)>,
    ) -> Option<Bytes>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + ToOwned<Owned = K> + ?Sized,
    {
        // Read before the cache: a change after this makes the fill below stale.
        let change = self.changes.load(Ordering::Acquire);
        let shard = &self.shards[shard_index()];
        {
            let slots = shard.slots.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(slot) = slots.iter().find(|s| s.key.borrow() == key)
                && slot.change == change
                && now < slot.until
            {
                return Some(slot.body.clone());
            }
        }
        let (body, expires) = load()?;
        let until = expires.map_or(now + HOT_FOR, |at| at.min(now + HOT_FOR));
        let own = Bytes::copy_from_slice(&body);
        let mut slots = shard.slots.lock().unwrap_or_else(|e| e.into_inner());
        if self.changes.load(Ordering::Acquire) == change {
            let slot = Slot {
                key: key.to_owned(),
                body: own,
                change,
                until,
            };
            match slots.iter().position(|s| s.key.borrow() == key) {
                Some(i) => slots[i] = slot,
                None if slots.len() < SLOTS => slots.push(slot),
                // The oldest fill goes: slots are pushed in fill order.
                None => {
                    slots.remove(0);
                    slots.push(slot);
                }
            }
        }
        Some(body)
    }

    /// The cache behind changed: every slot is retired. Call after the change is made.
    pub fn changed(&self) {
        self.changes.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_hit_skips_the_cache_until_a_change_or_its_time() {
        let front = Front::<String>::default();
        let loads = Cell::new(0);
        let load = |body: &'static str| {
            loads.set(loads.get() + 1);
            Some((Bytes::from_static(body.as_bytes()), None))
        };
        let now = Instant::now();
        assert_eq!(front.get_or("a", now, || load("one")).unwrap(), "one");
        assert_eq!(front.get_or("a", now, || load("two")).unwrap(), "one", "remembered");
        assert_eq!(loads.get(), 1);
        front.changed();
        assert_eq!(
            front.get_or("a", now, || load("three")).unwrap(),
            "three",
            "a change retires it"
        );
        assert_eq!(
            front.get_or("a", now + HOT_FOR, || load("four")).unwrap(),
            "four",
            "and so does time"
        );
        assert_eq!(front.get_or("a", now, || None), Some(Bytes::from_static(b"four")));
        assert_eq!(front.get_or("b", now, || None), None, "a miss behind is a miss");
    }

    #[test]
    fn a_fill_that_began_before_a_change_is_not_kept() {
        let front = Front::<String>::default();
        let now = Instant::now();
        let answer = front.get_or("a", now, || {
            // The cache changed while this value was being read from it.
            front.changed();
            Some((Bytes::from_static(b"old"), None))
        });
        assert_eq!(answer.unwrap(), "old", "answered");
        assert_eq!(
            front
                .get_or("a", now, || Some((Bytes::from_static(b"new"), None)))
                .unwrap(),
            "new"
        );
    }

    #[test]
    fn a_slot_ends_when_its_answer_does_and_the_oldest_makes_room() {
        let front = Front::<u32>::default();
        let now = Instant::now();
        let soon = now + Duration::from_millis(10);
        front.get_or(&0, now, || Some((Bytes::from_static(b"x"), Some(soon))));
        assert_eq!(
            front
                .get_or(&0, soon, || Some((Bytes::from_static(b"y"), None)))
                .unwrap(),
            "y"
        );
        for key in 1..=SLOTS as u32 {
            front.get_or(&key, now, || Some((Bytes::from_static(b"k"), None)));
        }
        // Key 0 was the oldest fill: it made room for the last one.
        assert_eq!(front.get_or(&0, now, || None), None);
        assert_eq!(front.get_or(&(SLOTS as u32), now, || None).unwrap(), "k");
    }
}
