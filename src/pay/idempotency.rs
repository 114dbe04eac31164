//! Idempotency keys with Stripe's semantics, for every create that costs money or makes a
//! provider order (donations, the admin refund, and the purchases of the modules to come):
//! the same key with the same request answers what the first request answered — also while
//! it is still running, even on another instance — and the same key with another request is
//! refused. Keys live 24 hours, scoped per route and per caller.
//!
//! The first request of a key gets a `resource_id` chosen up front, which becomes its order
//! or refund number: if that request dies half-way, the one that takes the key over after its
//! lock expires makes the *same* provider order or refund (both providers deduplicate by our
//! number), never a second one. Protocol-free: the HTTP side is `http::idempotent`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use aws_lc_rs::digest;
use bytes::Bytes;
use tokio::sync::Notify;

use crate::store::{Store, StoreError};

/// The header, as Stripe names it.
pub const HEADER: &str = "idempotency-key";
/// Longest key accepted, bytes.
pub const MAX_KEY_LEN: usize = 255;
/// How long a key and its answer are kept.
pub const KEEP: Duration = Duration::from_secs(24 * 60 * 60);

/// Why a key was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an Idempotency-Key is 1 to 255 printable ASCII characters")]
pub struct BadKey;

/// `raw` as a key: 1..=255 bytes of printable ASCII (space to `~`).
pub fn check_key(raw: &[u8]) -> Result<&str, BadKey> {
    let printable = raw.iter().all(|b| (0x20..=0x7e).contains(b));
    if raw.is_empty() || raw.len() > MAX_KEY_LEN || !printable {
        return Err(BadKey);
    }
    std::str::from_utf8(raw).map_err(|_| BadKey)
}

/// SHA-256 over every part of a request that must match for a replay (method, path, body
/// kind, body), each length-prefixed so no two requests collide by concatenation.
pub fn fingerprint(parts: &[&[u8]]) -> [u8; 32] {
    let mut context = digest::Context::new(&digest::SHA256);
    for part in parts {
        context.update(&(part.len() as u64).to_be_bytes());
        context.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(context.finish().as_ref());
    out
}

/// The first request's answer, as replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub status: u16,
    pub content_type: Option<String>,
    pub location: Option<String>,
    pub body: Bytes,
}

/// What to do with a request that carries a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// This request runs, as `resource_id` (the order or refund number to use); then
    /// [`Keys::complete`] or [`Keys::release`].
    Run { resource_id: String },
    /// The key was answered before: send this again.
    Replay(Stored),
    /// The key was used with another request.
    Reused,
    /// The first request is still running after waiting as long as it may take.
    InProgress,
}

/// One request's key, in its scope.
#[derive(Debug, Clone, Copy)]
pub struct Key<'a> {
    /// Route and caller, e.g. `POST /api/donations|u:42`.
    pub scope: &'a str,
    pub key: &'a str,
    pub fingerprint: &'a [u8; 32],
}

/// The keys, with in-process wake-ups for requests waiting on one running here.
#[derive(Debug, Default)]
pub struct Keys {
    /// `scope \0 key` → woken when that key's first request completes or gives up.
    /// A std mutex: held for a map operation only.
    waiters: Mutex<HashMap<String, Weak<Notify>>>,
}

const CLAIM: &str = "INSERT INTO idempotency_keys (scope, key, fingerprint, resource_id, locked_until, expires_at)
     VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5), now() + make_interval(secs => $6))
     ON CONFLICT (scope, key) DO NOTHING RETURNING resource_id";

const LOOK: &str = "SELECT fingerprint, resource_id, status, content_type, location, body,
            locked_until < now(), expires_at < now()
       FROM idempotency_keys WHERE scope = $1 AND key = $2";

const TAKE_OVER: &str = "UPDATE idempotency_keys SET locked_until = now() + make_interval(secs => $3)
      WHERE scope = $1 AND key = $2 AND status IS NULL AND locked_until < now() RETURNING resource_id";

const COMPLETE: &str = "UPDATE idempotency_keys SET status = $3, content_type = $4, location = $5, body = $6,
            locked_until = now()
      WHERE scope = $1 AND key = $2 AND status IS NULL";

const RELEASE: &str = "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND status IS NULL";

const DROP_EXPIRED: &str = "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND expires_at < now()";

pub(crate) const PURGE: &str = "DELETE FROM idempotency_keys WHERE ctid IN
     (SELECT ctid FROM idempotency_keys WHERE expires_at < now() LIMIT $1)";

impl Keys {
    /// Claims `key` for this request, or says what to answer instead. `lock` is how long
    /// the request may run before another may take the key over; a request that finds the
    /// key running waits up to `lock` for its answer.
    pub async fn begin(&self, store: &Store, key: Key<'_>, lock: Duration) -> Result<Begin, StoreError> {
        let deadline = tokio::time::Instant::now() + lock;
        let mut pause = Duration::from_millis(20);
        loop {
            let notify = self.waiter(key);
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(begin) = crate::store::bounded(self.try_begin(store, key, lock)).await? {
                return Ok(begin);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(Begin::InProgress);
            }
            // Woken at once by a first request running here; polling finds one elsewhere.
            let _ = tokio::time::timeout(pause, notified).await;
            pause = (pause * 2).min(Duration::from_millis(400));
        }
    }

    /// One look: `None` while the key's first request is still running.
    async fn try_begin(&self, store: &Store, key: Key<'_>, lock: Duration) -> Result<Option<Begin>, StoreError> {
        let client = store.client().await?;
        let claim = client.prepare_cached(CLAIM).await?;
        let resource_id = uuid::Uuid::now_v7().simple().to_string();
        let params = (lock.as_secs_f64(), KEEP.as_secs_f64());
        let claimed = client
            .query_opt(
                &claim,
                &[
                    &key.scope,
                    &key.key,
                    &key.fingerprint.as_slice(),
                    &resource_id,
                    &params.0,
                    &params.1,
                ],
            )
            .await?;
        if claimed.is_some() {
            return Ok(Some(Begin::Run { resource_id }));
        }
        let look = client.prepare_cached(LOOK).await?;
        let Some(row) = client.query_opt(&look, &[&key.scope, &key.key]).await? else {
            return Ok(None); // released meanwhile: claim it on the next round
        };
        let (abandoned, expired): (bool, bool) = (row.get(6), row.get(7));
        if expired {
            client.execute(DROP_EXPIRED, &[&key.scope, &key.key]).await?;
            return Ok(None);
        }
        if row.get::<_, &[u8]>(0) != key.fingerprint.as_slice() {
            return Ok(Some(Begin::Reused));
        }
        if let Some(status) = row.get::<_, Option<i16>>(2) {
            return Ok(Some(Begin::Replay(Stored {
                status: u16::try_from(status).unwrap_or(500),
                content_type: row.get(3),
                location: row.get(4),
                body: Bytes::from(row.get::<_, Vec<u8>>(5)),
            })));
        }
        if abandoned {
            let taken = client.query_opt(TAKE_OVER, &[&key.scope, &key.key, &params.0]).await?;
            if let Some(taken) = taken {
                tracing::warn!(
                    scope = key.scope,
                    "an idempotent request was abandoned half-way; taking its key over"
                );
                return Ok(Some(Begin::Run {
                    resource_id: taken.get(0),
                }));
            }
        }
        Ok(None)
    }

    /// Stores the answer of the request that ran `key`, and wakes those waiting on it.
    pub async fn complete(&self, store: &Store, key: Key<'_>, answer: &Stored) -> Result<(), StoreError> {
        crate::store::bounded(self.store_answer(store, key, answer)).await?;
        self.wake(key);
        Ok(())
    }

    async fn store_answer(&self, store: &Store, key: Key<'_>, answer: &Stored) -> Result<(), StoreError> {
        let client = store.client().await?;
        let statement = client.prepare_cached(COMPLETE).await?;
        let status = i16::try_from(answer.status).unwrap_or(500);
        client
            .execute(
                &statement,
                &[
                    &key.scope,
                    &key.key,
                    &status,
                    &answer.content_type,
                    &answer.location,
                    &answer.body.as_ref(),
                ],
            )
            .await?;
        Ok(())
    }

    /// Gives the key up (the request failed in a way a retry may fix: nothing was made),
    /// so the next request with it runs afresh.
    pub async fn release(&self, store: &Store, key: Key<'_>) -> Result<(), StoreError> {
        let released = crate::store::bounded(async {
            let client = store.client().await?;
            client.execute(RELEASE, &[&key.scope, &key.key]).await?;
            Ok::<(), StoreError>(())
        })
        .await;
        self.wake(key);
        released
    }

    fn waiter(&self, key: Key<'_>) -> Arc<Notify> {
        let name = format!("{}\0{}", key.scope, key.key);
        let Ok(mut waiters) = self.waiters.lock() else {
            return Arc::new(Notify::new());
        };
        if let Some(existing) = waiters.get(&name).and_then(Weak::upgrade) {
            return existing;
        }
        if waiters.len() > 1024 && waiters.len().is_power_of_two() {
            waiters.retain(|_, w| w.strong_count() > 0);
        }
        let notify = Arc::new(Notify::new());
        waiters.insert(name, Arc::downgrade(&notify));
        notify
    }

    fn wake(&self, key: Key<'_>) {
        let name = format!("{}\0{}", key.scope, key.key);
        let notify = self.waiters.lock().ok().and_then(|w| w.get(&name)?.upgrade());
        if let Some(notify) = notify {
            notify.notify_waiters();
        }
    }
}

/// Deletes up to `limit` keys older than [`KEEP`]; returns how many.
pub async fn purge(store: &Store, limit: i64) -> Result<u64, StoreError> {
    let client = store.client().await?;
    Ok(client.execute(PURGE, &[&limit]).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_1_to_255_printable_ascii() {
        assert_eq!(check_key(b"a"), Ok("a"));
        assert_eq!(check_key(b"order 42 / try #1 ~"), Ok("order 42 / try #1 ~"));
        assert!(check_key(&[b'k'; 255]).is_ok());
        for bad in [
            &b""[..],
            &[b'k'; 256][..],
            b"tab\there",
            b"new\nline",
            "中文".as_bytes(),
            b"\x7f",
        ] {
            assert_eq!(check_key(bad), Err(BadKey), "{bad:?}");
        }
    }

    #[test]
    fn fingerprints_tell_requests_apart_even_when_their_bytes_concatenate_alike() {
        let a = fingerprint(&[b"POST", b"/api/donations", b"{\"amount\":\"1\"}"]);
        assert_eq!(a, fingerprint(&[b"POST", b"/api/donations", b"{\"amount\":\"1\"}"]));
        assert_ne!(a, fingerprint(&[b"POST", b"/api/donations", b"{\"amount\":\"2\"}"]));
        assert_ne!(fingerprint(&[b"ab", b"c"]), fingerprint(&[b"a", b"bc"]));
    }
}
