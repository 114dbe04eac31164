//! Unread counts and their long-poll waiters, per user. A count is read once from the
//! database and kept until an event says the user's notifications changed (`Fresh`); waiters
//! park on a `Notify` per user and are woken by those events, on every instance.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use crate::store::fresh::Fresh;
use crate::store::{Store, StoreError};

/// Unread counts and waiters.
pub struct Board {
    counts: Fresh<i64>,
    /// Users someone waits on; the `Notify` lives as long as a waiter holds it.
    /// A std mutex: held for a map operation only, never across an await.
    waiters: Mutex<HashMap<i64, Weak<Notify>>>,
}

impl std::fmt::Debug for Board {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Board").field("counts", &self.counts).finish()
    }
}

impl Default for Board {
    fn default() -> Self {
        Board {
            counts: Fresh::new(200_000, Duration::from_secs(300)),
            waiters: Mutex::new(HashMap::new()),
        }
    }
}

const COUNT_UNREAD: &str = "SELECT count(*) FROM notifications WHERE recipient_id = $1 AND read_at IS NULL";

/// The unread counts of several users at once (zero included).
const COUNT_UNREAD_OF: &str = "SELECT u, count(n.id) FROM unnest($1::bigint[]) u
    LEFT JOIN notifications n ON n.recipient_id = u AND n.read_at IS NULL GROUP BY u";

impl Board {
    /// `user_id`'s unread count: from memory, else one query.
    pub async fn unread(&self, store: &Store, user_id: i64) -> Result<i64, StoreError> {
        if let Some(n) = self.counts.get(user_id) {
            return Ok(n);
        }
        // Boxed: a parked long-poll holds this future; the miss path must not set its size.
        Box::pin(self.fill(store, user_id)).await
    }

    async fn fill(&self, store: &Store, user_id: i64) -> Result<i64, StoreError> {
        let began = self.counts.begin();
        let client = store.client().await?;
        let statement = client.prepare_cached(COUNT_UNREAD).await?;
        let n: i64 = client.query_one(&statement, &[&user_id]).await?.get(0);
        self.counts.keep(user_id, n, began);
        Ok(n)
    }

    /// `user_id`'s notifications changed: forget the count, wake the waiters.
    pub fn changed(&self, user_id: i64) {
        self.counts.changed(user_id);
        self.wake(user_id);
    }

    /// Anything may have changed (the event listener reconnected): forget every count, then
    /// read the counts of the users with parked polls in one query and wake only those whose
    /// count moved — not every parked poll into a stampede of reads. If that read fails, all
    /// are woken (each re-reads on its own).
    pub async fn resync(&self, store: &Store) {
        let parked: Vec<(i64, Option<i64>)> = self
            .waiters
            .lock()
            .map(|w| {
                w.iter()
                    .filter(|(_, n)| n.strong_count() > 0)
                    .map(|(user, _)| (*user, self.counts.get(*user)))
                    .collect()
            })
            .unwrap_or_default();
        self.counts.changed_all();
        if parked.is_empty() {
            return;
        }
        let began = self.counts.begin();
        let users: Vec<i64> = parked.iter().map(|(user, _)| *user).collect();
        let now = async {
            let client = store.client().await?;
            let statement = client.prepare_cached(COUNT_UNREAD_OF).await?;
            Ok::<_, StoreError>(client.query(&statement, &[&users]).await?)
        };
        match now.await {
            Ok(rows) => {
                for row in rows {
                    let (user, n): (i64, i64) = (row.get(0), row.get(1));
                    self.counts.keep(user, n, began);
                    let before = parked.iter().find(|(u, _)| *u == user).and_then(|(_, n)| *n);
                    if before != Some(n) {
                        self.wake(user);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot re-read the parked unread counts; waking their polls");
                for user in users {
                    self.wake(user);
                }
            }
        }
    }

    fn wake(&self, user_id: i64) {
        let notify = self.waiters.lock().ok().and_then(|mut w| w.remove(&user_id)?.upgrade());
        if let Some(notify) = notify {
            notify.notify_waiters();
        }
    }

    /// The `Notify` that `changed(user_id)` will wake; hold it while waiting.
    pub fn waiter(&self, user_id: i64) -> Arc<Notify> {
        let Ok(mut waiters) = self.waiters.lock() else {
            return Arc::new(Notify::new());
        };
        if let Some(existing) = waiters.get(&user_id).and_then(Weak::upgrade) {
            return existing;
        }
        if waiters.len() > 1024 && waiters.len().is_power_of_two() {
            waiters.retain(|_, w| w.strong_count() > 0);
        }
        let notify = Arc::new(Notify::new());
        waiters.insert(user_id, Arc::downgrade(&notify));
        notify
    }

    /// Users with at least one parked waiter (for metrics).
    pub fn waiting_users(&self) -> usize {
        self.waiters
            .lock()
            .map(|w| w.values().filter(|n| n.strong_count() > 0).count())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_wakes_the_users_waiters_only() {
        let board = Board::default();
        let alice = board.waiter(1);
        let bob = board.waiter(2);
        let alice_woken = alice.notified();
        let bob_woken = bob.notified();
        tokio::pin!(alice_woken, bob_woken);
        alice_woken.as_mut().enable();
        bob_woken.as_mut().enable();
        board.changed(1);
        let waker = futures_util::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(alice_woken.as_mut().poll(&mut cx).is_ready());
        assert!(bob_woken.as_mut().poll(&mut cx).is_pending());
        assert_eq!(board.waiting_users(), 1, "bob still waits; alice's entry was taken");
    }
}
