//! Reading requests: the body within `server.max_body_bytes` and `server.body_read_timeout_secs`
//! (413 / 408 otherwise), JSON or form by content type (415 otherwise), and query parameters.

use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http::header::CONTENT_TYPE;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// The whole body, at most `limit` bytes, received within `timeout`.
pub async fn body(body: Incoming, limit: usize, timeout: Duration) -> Result<Bytes, AppError> {
    let read = Limited::new(body, limit).collect();
    match tokio::time::timeout(timeout, read).await {
        Err(_) => Err(AppError::BodyTimeout),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            Err(AppError::TooLarge { limit })
        }
        Ok(Err(_)) => Err(AppError::Malformed("the request body could not be read".into())),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// How a body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Form,
}

/// The body's kind from `Content-Type`, if it is one of `accepted`.
pub fn body_kind(headers: &HeaderMap, accepted: &[BodyKind]) -> Result<BodyKind, AppError> {
    let media = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let kind = match media.as_str() {
        "application/json" => Some(BodyKind::Json),
        "application/x-www-form-urlencoded" => Some(BodyKind::Form),
        _ => None,
    };
    kind.filter(|k| accepted.contains(k))
        .ok_or(AppError::UnsupportedMediaType {
            expected: if accepted.contains(&BodyKind::Form) {
                "application/json or application/x-www-form-urlencoded"
            } else {
                "application/json"
            },
        })
}

/// Parses a JSON body into `T` (unknown fields are refused where `T` says so).
/// The body must be a JSON object: serde would also fill a struct from an array of its
/// fields in order (`[null, null]`), which no client means.
pub fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(AppError::Malformed("the body must be a JSON object".into()));
    }
    serde_json::from_slice(body).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Data => format!("invalid JSON field: {e}"),
            _ => "the body is not valid JSON".to_string(),
        };
        AppError::Malformed(what.into())
    })
}

/// `key=value` pairs of a form body or a query string, percent-decoded. Invalid UTF-8 is an error.
pub fn pairs(text: &[u8]) -> Result<Vec<(String, String)>, AppError> {
    if std::str::from_utf8(text).is_err() {
        return Err(AppError::Malformed("the form is not valid UTF-8".into()));
    }
    let pairs: Vec<(String, String)> = form_urlencoded::parse(text)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if pairs
        .iter()
        .any(|(k, v)| k.contains('\u{fffd}') || v.contains('\u{fffd}'))
    {
        return Err(AppError::Malformed("the form is not valid UTF-8 once decoded".into()));
    }
    Ok(pairs)
}

/// The value of `name` in a query string (the first one), if present.
pub fn query_param(query: Option<&str>, name: &str) -> Result<Option<String>, AppError> {
    let Some(query) = query else { return Ok(None) };
    if query.bytes().all(|b| b.is_ascii() && b != b'%' && b != b'+') {
        // Plain ASCII with nothing encoded: every pair decodes to itself and none to U+FFFD,
        // so [`pairs`] would accept the whole query; find the one pair as it stands (the
        // first, as `pairs` does: empty pieces skipped, no `=` meaning an empty value).
        for pair in query.as_bytes().split(|b| *b == b'&') {
            if let Some(rest) = pair.strip_prefix(name.as_bytes()).filter(|_| !pair.is_empty()) {
                match rest {
                    [] => return Ok(Some(String::new())),
                    [b'=', value @ ..] => return Ok(Some(String::from_utf8_lossy(value).into_owned())),
                    _ => {}
                }
            }
        }
        return Ok(None);
    }
    Ok(pairs(query.as_bytes())?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v))
}

/// A whole-number query parameter in `1..=max`, `default` when absent; else a 422 `code`.
pub fn number_param(
    query: Option<&str>,
    name: &str,
    default: u32,
    max: u32,
    code: &'static str,
) -> Result<u32, AppError> {
    match query_param(query, name)? {
        None => Ok(default),
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| AppError::invalid(code, format!("{name} must be a whole number from 1 to {max}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_are_matched_without_parameters_or_case() {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, "Application/JSON; charset=utf-8".parse().unwrap());
        assert_eq!(body_kind(&h, &[BodyKind::Json]).unwrap(), BodyKind::Json);
        h.insert(CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(matches!(
            body_kind(&h, &[BodyKind::Json, BodyKind::Form]),
            Err(AppError::UnsupportedMediaType { .. })
        ));
        assert!(body_kind(&HeaderMap::new(), &[BodyKind::Json]).is_err());
    }

    #[test]
    fn forms_decode_and_refuse_broken_utf8() {
        let p = pairs(b"amount=12.34&donor_name=%E5%BC%A0%E4%B8%89&x=a+b").unwrap();
        assert_eq!(p[1], ("donor_name".into(), "张三".into()));
        assert_eq!(p[2].1, "a b");
        assert!(pairs(b"donor_name=%FF%FE").is_err());
        // One badly encoded pair refuses the whole query, whichever pair is asked for.
        assert!(query_param(Some("sort=hot&x=%FF"), "sort").is_err());
        assert_eq!(
            query_param(Some("q=a+b&sort=hot"), "q").unwrap().as_deref(),
            Some("a b")
        );
        assert_eq!(
            query_param(Some("q=%E4%B8%AD&sort=hot"), "q").unwrap().as_deref(),
            Some("中")
        );
        assert_eq!(
            query_param(Some("sort=hot&sort=new"), "sort").unwrap().as_deref(),
            Some("hot")
        );
        assert_eq!(query_param(Some("sort=hot"), "range").unwrap(), None);
        // The plain path answers as the decoding one does.
        for (query, name) in [
            ("&&a=1&b", "b"),
            ("a=1=2", "a"),
            ("a&a=2", "a"),
            ("=x&a=", "a"),
            ("", "a"),
        ] {
            let decoded = pairs(query.as_bytes())
                .unwrap()
                .into_iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v);
            assert_eq!(query_param(Some(query), name).unwrap(), decoded, "{query}");
        }
        assert!(pairs(b"\xff=1").is_err());
        assert_eq!(query_param(Some("wait=5&wait=9"), "wait").unwrap(), Some("5".into()));
        assert_eq!(query_param(None, "wait").unwrap(), None);
        assert_eq!(
            query_param(Some("a=1&range=%77eek"), "range").unwrap(),
            Some("week".into())
        );
        assert!(query_param(Some("range=%FF"), "range").is_err());
    }
}
