//! Images (contract: "Registration, profiles and images"): uploads decoded and re-encoded off
//! the async threads (`decode`), stored content-addressed in PostgreSQL so every instance
//! serves every image, served immutable from a byte-bounded cache (`handlers`). Modules name
//! images by id and check them with [`check_ids`] before storing a reference.

pub mod decode;
mod handlers;
mod route;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use deadpool_postgres::GenericClient;
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use http::HeaderValue;
use tokio::sync::Semaphore;

use crate::config;
use crate::error::AppError;
use crate::store::StoreError;

pub use route::{Route, dispatch};

/// Room for multipart framing (boundaries, part headers, other small fields) beyond
/// `media.max_bytes` in an upload's body.
pub const MULTIPART_SLACK: usize = 64 * 1024;

/// True for an image id: 64 lower-case hex digits.
pub fn is_image_id(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The URL of image `id`.
pub fn url(id: &str) -> String {
    format!("/media/{id}")
}

/// The URL of the thumbnail of image `id`.
pub fn thumb_url(id: &str) -> String {
    format!("/media/{id}/thumb")
}

const SELECT_KNOWN: &str = "SELECT id FROM images WHERE id = ANY($1)";

/// Refuses (422) ids that are malformed (`invalid_image`) or name no stored image
/// (`unknown_image`); call it in the transaction that stores the references.
pub async fn check_ids(client: &impl GenericClient, ids: &[String]) -> Result<(), AppError> {
    if let Some(bad) = ids.iter().find(|id| !is_image_id(id)) {
        return Err(AppError::invalid(
            "invalid_image",
            format!("{bad:?} is not an image id (64 lower-case hex digits)"),
        ));
    }
    if ids.is_empty() {
        return Ok(());
    }
    let statement = client.prepare_cached(SELECT_KNOWN).await.map_err(StoreError::from)?;
    let known: Vec<String> = client
        .query(&statement, &[&ids])
        .await
        .map_err(StoreError::from)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    match ids.iter().find(|id| !known.contains(id)) {
        Some(missing) => Err(AppError::invalid(
            "unknown_image",
            format!("image {missing} does not exist; upload it first"),
        )),
        None => Ok(()),
    }
}

/// An image or thumbnail as served.
#[derive(Debug)]
pub struct Blob {
    pub content_type: HeaderValue,
    pub etag: HeaderValue,
    pub bytes: Bytes,
}

type UserLimiter = RateLimiter<i64, DefaultKeyedStateStore<i64>, DefaultClock>;

/// The image service: settings, the per-user upload limit, the decode gate and the cache.
pub struct Media {
    pub settings: config::Media,
    uploads: Option<UserLimiter>,
    clock: DefaultClock,
    /// Decodes at once: each may hold a large pixel buffer, so they are not left to the
    /// blocking pool's hundreds of threads.
    decoding: Arc<Semaphore>,
    /// By (SHA-256, thumbnail?), weighed by bytes.
    cache: moka::future::Cache<([u8; 32], bool), Arc<Blob>>,
}

impl std::fmt::Debug for Media {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Media")
            .field("cached_bytes", &self.cache.weighted_size())
            .finish()
    }
}

impl Media {
    pub fn new(settings: &config::Media) -> Media {
        let uploads = NonZeroU32::new(settings.uploads_per_minute).map(|rate| {
            let burst = NonZeroU32::new(settings.upload_burst.max(1)).unwrap_or(NonZeroU32::MIN);
            RateLimiter::dashmap(Quota::per_minute(rate).allow_burst(burst))
        });
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Media {
            settings: settings.clone(),
            uploads,
            clock: DefaultClock::default(),
            decoding: Arc::new(Semaphore::new(cores)),
            cache: moka::future::Cache::builder()
                .max_capacity(settings.cache_bytes)
                .weigher(|_, blob: &Arc<Blob>| u32::try_from(blob.bytes.len() + 256).unwrap_or(u32::MAX))
                .time_to_idle(Duration::from_secs(24 * 3600))
                .build(),
        }
    }

    /// Spends one upload of `user_id`, or says how long to wait (429).
    pub fn check_rate(&self, user_id: i64) -> Result<(), AppError> {
        let Some(limiter) = &self.uploads else { return Ok(()) };
        limiter.check_key(&user_id).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            AppError::RateLimited {
                retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            }
        })
    }

    /// Forgets users whose upload allowance is full again (call periodically).
    pub fn retain_recent(&self) {
        if let Some(limiter) = &self.uploads {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Decodes and re-encodes `data` on the blocking pool, a few at a time.
    pub async fn process(&self, data: Bytes) -> Result<decode::Processed, AppError> {
        let _permit = Arc::clone(&self.decoding)
            .acquire_owned()
            .await
            .map_err(|e| AppError::Internal(e.into()))?;
        let max_pixels = self.settings.max_pixels;
        let outcome = tokio::task::spawn_blocking(move || decode::process(&data, max_pixels))
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("decoding an image panicked: {e}")))?;
        outcome.map_err(|e| match e {
            decode::DecodeError::TooLarge { .. } => AppError::invalid("image_too_large", e.to_string()),
            decode::DecodeError::NotImage | decode::DecodeError::Corrupt(_) => AppError::UnsupportedImage {
                message: e.to_string().into(),
            },
        })
    }
}

/// The SHA-256 named by a (checked) image id.
fn id_bytes(id: &str) -> Option<[u8; 32]> {
    if !is_image_id(id) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = u8::from_str_radix(&id[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0xf)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_ids_are_64_lower_case_hex_digits() {
        let id = "ab".repeat(32);
        assert!(is_image_id(&id));
        assert_eq!(id_bytes(&id), Some([0xab; 32]));
        assert_eq!(hex(&[0xab; 32]), id);
        assert!(!is_image_id(&"AB".repeat(32)));
        assert!(!is_image_id(&"ab".repeat(31)));
        assert!(!is_image_id(&format!("{}g", "a".repeat(63))));
    }
}
