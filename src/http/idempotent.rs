//! `Idempotency-Key` at the HTTP edge: wraps a create handler so a request carrying the
//! header is answered once per key (see `pay::idempotency`). The handler gets the key's
//! `resource_id` to use as its order or refund number; its successful answer is stored and
//! replayed byte for byte with `Idempotent-Replayed: true`. A refused request (4xx: a bad
//! field, a payment not refundable) or a failed one (5xx) stores nothing: the key is
//! released, so bad input writes no row and a corrected retry may use the same key (as
//! Stripe does for requests that fail validation).

use http::request::Parts;
use http::{HeaderValue, StatusCode, header};
use http_body_util::BodyExt;

use super::respond::{self, Response};
use crate::error::AppError;
use crate::pay::idempotency::{self, Begin, Key, Keys, Stored};
use crate::store::Store;

/// Runs `work` under the request's `Idempotency-Key`, if it has one; `caller` names who
/// asks (`u:<id>` signed in, else `ip:<address>`), so keys never cross callers or routes.
/// `lock`: the longest `work` may take before another request may take its key over.
pub async fn run<F, Fut>(
    keys: &Keys,
    store: &Store,
    parts: &Parts,
    body: &[u8],
    caller: &str,
    lock: std::time::Duration,
    work: F,
) -> Result<Response, AppError>
where
    F: FnOnce(Option<String>) -> Fut,
    Fut: Future<Output = Result<Response, AppError>>,
{
    let Some(raw) = parts.headers.get(idempotency::HEADER) else {
        return work(None).await;
    };
    let key = idempotency::check_key(raw.as_bytes())
        .map_err(|e| AppError::invalid("invalid_idempotency_key", e.to_string()))?;
    let scope = format!("{} {}|{caller}", parts.method, parts.uri.path());
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .map_or(&b""[..], HeaderValue::as_bytes);
    let fingerprint = idempotency::fingerprint(&[
        parts.method.as_str().as_bytes(),
        parts.uri.path().as_bytes(),
        content_type,
        body,
    ]);
    let key = Key {
        scope: &scope,
        key,
        fingerprint: &fingerprint,
    };
    let resource_id = match keys.begin(store, key, lock).await? {
        Begin::Run { resource_id } => resource_id,
        Begin::Replay(stored) => return Ok(replay(stored)),
        Begin::Reused => {
            return Err(AppError::invalid(
                "idempotency_key_reused",
                "this Idempotency-Key was used with another request; use a new key for a new request",
            ));
        }
        Begin::InProgress => return Err(AppError::KeyInUse),
    };
    let outcome = work(Some(resource_id)).await;
    let status = match &outcome {
        Ok(response) => response.status(),
        Err(e) => e.status(),
    };
    if status.is_client_error() || status.is_server_error() {
        if let Err(e) = keys.release(store, key).await {
            tracing::warn!(error = %e, "cannot release an idempotency key; it frees itself when its lock ends");
        }
        return outcome;
    }
    let response = outcome.unwrap_or_else(|e| respond::error(&e, ""));
    let (head, body) = response.into_parts();
    let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    let text = |name: header::HeaderName| head.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let stored = Stored {
        status: status.as_u16(),
        content_type: text(header::CONTENT_TYPE),
        location: text(header::LOCATION),
        body: body.clone(),
    };
    if let Err(e) = keys.complete(store, key, &stored).await {
        // Done but not remembered: once the lock ends, a retry takes the key over with the
        // same resource id and finds the order or refund already made.
        tracing::warn!(error = %e, "cannot store an idempotent answer");
    }
    Ok(Response::from_parts(head, http_body_util::Full::new(body)))
}

/// A stored answer sent again.
fn replay(stored: Stored) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = stored
        .content_type
        .as_deref()
        .and_then(|t| HeaderValue::from_str(t).ok())
        .unwrap_or(HeaderValue::from_static("application/json"));
    let mut response = respond::with_body(status, content_type, stored.body);
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(location) = stored.location.as_deref().and_then(|l| HeaderValue::from_str(l).ok()) {
        headers.insert(header::LOCATION, location);
    }
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}
