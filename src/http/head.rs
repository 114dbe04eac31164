//! What every request reads from its headers, found in one pass over them: a lookup by name
//! hashes the name and probes the map, and four of them cost more than walking the few
//! headers most requests carry.

use http::HeaderMap;
use http::header::{self, HeaderValue};

use super::X_REQUEST_ID;
use super::client_ip::{X_FORWARDED_FOR, X_REAL_IP};

/// The headers every request's handling looks at.
#[derive(Debug, Default)]
pub struct Head<'a> {
    /// The declared body length: 0 when absent or not a number (then the body is read with
    /// a limit).
    pub content_length: u64,
    /// The `X-Request-Id` the client sent.
    pub request_id: Option<&'a HeaderValue>,
    /// Whether `X-Forwarded-For` or `X-Real-IP` came (only then can the client's address
    /// differ from the peer's).
    pub forwarded: bool,
}

impl Head<'_> {
    /// Reads `headers` once.
    pub fn read(headers: &HeaderMap) -> Head<'_> {
        let mut head = Head::default();
        let mut length = None;
        for (name, value) in headers {
            if name == header::CONTENT_LENGTH {
                // The first, as a lookup gives.
                length.get_or_insert(value);
            } else if name == X_REQUEST_ID {
                head.request_id.get_or_insert(value);
            } else if name == X_FORWARDED_FOR || name == X_REAL_IP {
                head.forwarded = true;
            }
        }
        head.content_length = length.and_then(|v| v.to_str().ok()?.parse().ok()).unwrap_or(0);
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pass_finds_what_lookups_would() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("example.com"));
        assert_eq!(Head::read(&headers).content_length, 0);
        assert!(!Head::read(&headers).forwarded);
        assert_eq!(Head::read(&headers).request_id, None);
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("1234"));
        headers.append(X_REQUEST_ID, HeaderValue::from_static("first"));
        headers.append(X_REQUEST_ID, HeaderValue::from_static("second"));
        let head = Head::read(&headers);
        assert_eq!(head.content_length, 1234);
        assert_eq!(head.request_id, headers.get(X_REQUEST_ID), "the first, as `get` gives");
        for name in [X_FORWARDED_FOR, X_REAL_IP] {
            let mut forwarded = headers.clone();
            forwarded.insert(name, HeaderValue::from_static("198.51.100.7"));
            assert!(Head::read(&forwarded).forwarded);
        }
        headers.append(header::CONTENT_LENGTH, HeaderValue::from_static("99"));
        assert_eq!(Head::read(&headers).content_length, 1234, "the first, as `get` gives");
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("many"));
        assert_eq!(Head::read(&headers).content_length, 0);
    }
}
