//! Building responses: JSON, HTML with the security headers, plain text, and the contract's
//! JSON error. Bodies are whole `Bytes` (`Full`), so a pre-serialized body costs no copy.

use bytes::Bytes;
use http::StatusCode;
use http::header::{self, HeaderValue};
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

/// A response with `status`, `content_type` and `body`.
pub fn with_body(status: StatusCode, content_type: HeaderValue, body: impl Into<Bytes>) -> Response {
    let mut response = http::Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, content_type);
    response
}

/// A JSON response; API answers are never cached by browsers or proxies.
pub fn json(status: StatusCode, body: impl Into<Bytes>) -> Response {
    let mut response = with_body(status, JSON, body);
    response.headers_mut().insert(header::CACHE_CONTROL, NO_STORE);
    response
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
