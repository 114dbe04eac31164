//! `Versioned`: answers cached under the version of what they were read from. A change (an
//! event from any instance, or this instance's own commit) moves the version on, so every
//! answer read before it is out of reach at once, and an answer whose read began before the
//! change is kept under the old version, where no later request looks. Concurrent misses of
//! one key share one load.

use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Values by key, dropped all at once by [`Versioned::bump`].
pub struct Versioned<K, V>
where
    K: Hash + Eq + Send + Sync + Clone + 'static,
    V: Clone + Send + Sync + 'static,
{
    cache: moka::future::Cache<(u64, K), V>,
    version: AtomicU64,
}

impl<K, V> std::fmt::Debug for Versioned<K, V>
where
    K: Hash + Eq + Send + Sync + Clone + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Versioned")
            .field("version", &self.version.load(Ordering::Relaxed))
            .field("entries", &self.cache.entry_count())
            .finish()
    }
}

impl<K, V> Versioned<K, V>
where
    K: Hash + Eq + Send + Sync + Clone + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// At most `capacity` entries; `ttl` is a safety net (events keep entries fresh).
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        Versioned {
            cache: moka::future::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            version: AtomicU64::new(0),
        }
    }

    /// The cached value of `key`, without loading.
    pub async fn get(&self, key: &K) -> Option<V> {
        let version = self.version.load(Ordering::Acquire);
        self.cache.get(&(version, key.clone())).await
    }

    /// The value of `key`: cached, or loaded by `load` (once for all concurrent askers).
    pub async fn get_or_load<E, F>(&self, key: K, load: F) -> Result<V, Arc<E>>
    where
        E: Send + Sync + 'static,
        F: Future<Output = Result<V, E>>,
    {
        let version = self.version.load(Ordering::Acquire);
        self.cache.try_get_with((version, key), load).await
    }

    /// Everything changed: later requests load afresh.
    pub fn bump(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
        self.cache.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bump_puts_every_earlier_answer_out_of_reach() {
        let cache: Versioned<u32, u32> = Versioned::new(100, Duration::from_secs(60));
        let v = cache.get_or_load(1, async { Ok::<_, ()>(10) }).await.unwrap();
        assert_eq!(v, 10);
        let again = cache.get_or_load(1, async { Ok::<_, ()>(11) }).await.unwrap();
        assert_eq!(again, 10, "cached");
        // A load that began before the change finishes after it: kept out of reach.
        let (started, finish) = (tokio::sync::Notify::new(), tokio::sync::Notify::new());
        let slow = cache.get_or_load(2, async {
            started.notify_one();
            finish.notified().await;
            Ok::<_, ()>(20)
        });
        let bump = async {
            started.notified().await;
            cache.bump();
            finish.notify_one();
        };
        let (old, ()) = tokio::join!(slow, bump);
        assert_eq!(old.unwrap(), 20, "the reader that began before gets its answer");
        assert_eq!(cache.get(&2).await, None, "but it is not cached for later readers");
        assert_eq!(cache.get(&1).await, None);
        let fresh = cache.get_or_load(1, async { Ok::<_, ()>(12) }).await.unwrap();
        assert_eq!(fresh, 12);
    }
}
