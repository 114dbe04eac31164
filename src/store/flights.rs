//! One load per key at a time: concurrent misses of a cached answer wait for the first one's
//! load instead of each running its own query (a stampede when a hot entry expires under
//! load). The locks are kept weakly: a key's lock lives as long as someone holds or waits for
//! it.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, Weak};

/// The in-flight locks, by key.
pub struct Flights<K> {
    locks: Mutex<HashMap<K, Weak<tokio::sync::Mutex<()>>>>,
}

impl<K> Default for Flights<K> {
    fn default() -> Self {
        Flights {
            locks: Mutex::new(HashMap::new()),
        }
    }
}

impl<K> std::fmt::Debug for Flights<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Flights")
    }
}

impl<K: Hash + Eq + Clone> Flights<K> {
    /// The lock of `key`: hold it across "look in the cache again, load, keep".
    pub fn of(&self, key: &K) -> Arc<tokio::sync::Mutex<()>> {
        let Ok(mut locks) = self.locks.lock() else {
            return Arc::new(tokio::sync::Mutex::new(()));
        };
        if let Some(existing) = locks.get(key).and_then(Weak::upgrade) {
            return existing;
        }
        if locks.len() > 256 && locks.len().is_power_of_two() {
            locks.retain(|_, f| f.strong_count() > 0);
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        locks.insert(key.clone(), Arc::downgrade(&lock));
        lock
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_key_one_lock_while_it_is_held_and_a_fresh_one_after() {
        let flights = Flights::default();
        let first = flights.of(&1);
        assert!(Arc::ptr_eq(&first, &flights.of(&1)));
        assert!(!Arc::ptr_eq(&first, &flights.of(&2)));
        let held = first.lock().await;
        assert!(flights.of(&1).try_lock().is_err(), "the second asker waits");
        drop(held);
        drop(first);
        let again = flights.of(&1);
        assert!(again.try_lock().is_ok());
    }
}
