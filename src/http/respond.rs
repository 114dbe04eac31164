//! Building responses: JSON, HTML with the security headers, plain text, and the contract's
//! JSON error. Bodies are whole `Bytes` (`Full`), so a pre-serialized body costs no copy.
//!
//! Every response starts from a header map made once per thread and copied: copying it costs
//! two allocations, where inserting each header would hash its name and probe the map. The
//! first header is `X-Request-Id`'s place, which the request's finish fills in
//! ([`set_request_id`]); `X-Content-Type-Options: nosniff` comes with every response.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{HeaderName, StatusCode};
use http_body_util::Full;

use crate::error::AppError;

/// What every handler answers.
pub type Response = http::Response<Full<Bytes>>;

const JSON: HeaderValue = HeaderValue::from_static("application/json");
const HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");
const CSP: HeaderValue = HeaderValue::from_static(
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
);

/// `X-Request-Id`, as a constant: looking a header up by `&str` parses the name every time.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// What `X-Request-Id` holds until the request's finish sets it.
const NO_ID: HeaderValue = HeaderValue::from_static("-");
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");

thread_local! {
    /// The headers every response starts with.
    static BASE: HeaderMap = head(&[]);
    /// And a JSON answer's.
    static JSON_BASE: HeaderMap = head(&[(header::CONTENT_TYPE, JSON), (header::CACHE_CONTROL, NO_STORE)]);
}

/// The request id's place, `nosniff`, then `more`: a header map to copy into every answer of
/// one kind (see [`response`]).
pub(super) fn head(more: &[(HeaderName, HeaderValue)]) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(4 + more.len());
    headers.insert(X_REQUEST_ID, NO_ID);
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
    for (name, value) in more {
        headers.insert(name, value.clone());
    }
    headers
}

/// A response with `headers` (a copy of a map [`head`] made, so the request id has its place).
pub(super) fn response(status: StatusCode, headers: HeaderMap, body: Bytes) -> Response {
    let mut response = http::Response::new(Full::new(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// Sets `X-Request-Id` to `id`: in its place when the response was made here (no hashing,
/// no probing), else inserted.
pub fn set_request_id(response: &mut Response, id: HeaderValue) {
    let headers = response.headers_mut();
    match headers.iter_mut().next() {
        Some((name, value)) if *name == X_REQUEST_ID => *value = id,
        _ => {
            headers.insert(X_REQUEST_ID, id);
        }
    }
}

/// A response with `status`, `content_type` and `body`.
pub fn with_body(status: StatusCode, content_type: HeaderValue, body: impl Into<Bytes>) -> Response {
    let mut response = response(status, BASE.with(HeaderMap::clone), body.into());
    response.headers_mut().insert(header::CONTENT_TYPE, content_type);
    response
}

/// A JSON response; API answers are never cached by browsers or proxies.
pub fn json(status: StatusCode, body: impl Into<Bytes>) -> Response {
    response(status, JSON_BASE.with(HeaderMap::clone), body.into())
}

/// An HTML page with the Content-Security-Policy and framing rules.
pub fn html(status: StatusCode, body: impl Into<Bytes>) -> Response {
    let mut response = with_body(status, HTML, body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, CSP);
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::CACHE_CONTROL, NO_CACHE);
    response
}

/// A `303 See Other` to `location`.
pub fn see_other(location: &str) -> Response {
    let mut response = with_body(
        StatusCode::SEE_OTHER,
        HeaderValue::from_static("text/plain; charset=utf-8"),
        Bytes::new(),
    );
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The contract's JSON error for `err`, with `Allow` on a 405 and `Retry-After` on a 429.
pub fn error(err: &AppError, request_id: &str) -> Response {
    let mut response = json(err.status(), err.to_json(request_id));
    match err {
        AppError::MethodNotAllowed { allow } => {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        AppError::Unauthorized => {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        AppError::RateLimited { retry_after_secs } | AppError::Locked { retry_after_secs } => {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        AppError::KeyInUse => {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        _ => {}
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_carry_nosniff_and_take_their_request_id_in_place() {
        for mut response in [
            json(StatusCode::OK, "{}"),
            html(StatusCode::OK, "<p>"),
            see_other("/x"),
            error(&AppError::NotFound, "id-1"),
        ] {
            assert_eq!(response.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            set_request_id(&mut response, HeaderValue::from_static("0a1b-7"));
            assert_eq!(response.headers().get_all(X_REQUEST_ID).iter().count(), 1);
            assert_eq!(response.headers()[X_REQUEST_ID], "0a1b-7");
        }
        let json = json(StatusCode::OK, "{}");
        assert_eq!(json.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(json.headers()[header::CACHE_CONTROL], "no-store");
        // A response made elsewhere gets the header inserted.
        let mut other = http::Response::new(Full::new(Bytes::new()));
        other.headers_mut().insert(header::CONTENT_TYPE, JSON);
        set_request_id(&mut other, HeaderValue::from_static("9"));
        assert_eq!(other.headers()[X_REQUEST_ID], "9");
        assert_eq!(other.headers().len(), 2);
    }
}
