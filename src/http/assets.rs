//! Files of `static/`, embedded in the binary with gzip and brotli variants and ETags made at
//! build time. Served with `304 Not Modified` on a matching `If-None-Match`; a URL carrying the
//! file's version (`?v=…`, see [`url`]) is cached for a year, a bare one is revalidated.
//!
//! Each file's answers are prepared once per thread, the first time the thread serves it: the
//! whole header map of every encoding and caching rule, and of the 304. An answer copies one
//! (see `respond`), after one pass over the request's headers.

use std::cell::RefCell;

use bytes::Bytes;
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderValue};
use rust_embed_for_web::{EmbedableFile, EmbeddedFile, RustEmbed};

use super::respond::{self, Response};

#[derive(RustEmbed)]
#[folder = "static/"]
struct Static;

const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
const REVALIDATE: HeaderValue = HeaderValue::from_static("public, no-cache");

/// The versioned URL of a static file, for pages: `/static/app.css?v=<16 hex digits>`,
/// the digits derived from the file's content hash.
pub fn url(name: &str) -> String {
    match Static::get(name) {
        Some(file) => {
            let version = file.hash().bytes().fold(0xcbf29ce484222325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
            });
            format!("/static/{name}?v={version:016x}")
        }
        None => format!("/static/{name}"),
    }
}

/// One file's answers: for each encoding in the order preferred (brotli, gzip, identity; `None`
/// when the file has no such variant) and each caching rule (revalidated, versioned) the body
/// and the headers; the 304's headers by rule.
struct Prepared {
    name: &'static str,
    ok: [Option<(Bytes, [HeaderMap; 2])>; 3],
    not_modified: [HeaderMap; 2],
}

impl Prepared {
    fn new(file: &EmbeddedFile) -> Self {
        let etag = HeaderValue::from_static(file.etag());
        let mime = HeaderValue::from_static(file.mime_type().unwrap_or("application/octet-stream"));
        let vary = HeaderValue::from_static("Accept-Encoding");
        let rules = |more: &[(header::HeaderName, HeaderValue)]| {
            [REVALIDATE, IMMUTABLE].map(|cache| {
                let mut headers = vec![
                    (header::ETAG, etag.clone()),
                    (header::CACHE_CONTROL, cache),
                    (header::VARY, vary.clone()),
                ];
                headers.extend_from_slice(more);
                respond::head(&headers)
            })
        };
        let variant = |data: Option<&'static [u8]>, coding: Option<&'static str>| {
            data.map(|data| {
                let mut more = vec![(header::CONTENT_TYPE, mime.clone())];
                if let Some(coding) = coding {
                    more.push((header::CONTENT_ENCODING, HeaderValue::from_static(coding)));
                }
                (Bytes::from_static(data), rules(&more))
            })
        };
        Prepared {
            name: file.name(),
            ok: [
                variant(file.data_br(), Some("br")),
                variant(file.data_gzip(), Some("gzip")),
                variant(Some(file.data()), None),
            ],
            not_modified: rules(&[]),
        }
    }
}

thread_local! {
    /// The files this thread has served, prepared.
    static PREPARED: RefCell<Vec<Prepared>> = const { RefCell::new(Vec::new()) };
}

/// What a request asks of a file, from one pass over its headers.
#[derive(Debug, PartialEq)]
struct Asked {
    /// An `If-None-Match` lists the file's ETag (or `*`).
    not_modified: bool,
    brotli: bool,
    gzip: bool,
}

fn asked(headers: &HeaderMap, etag: &str) -> Asked {
    let mut asked = Asked {
        not_modified: false,
        brotli: false,
        gzip: false,
    };
    for (name, value) in headers {
        // Only the two headers asked of are read as text.
        if name != header::IF_NONE_MATCH && name != header::ACCEPT_ENCODING {
            continue;
        }
        let Ok(value) = value.to_str() else { continue };
        if name == header::IF_NONE_MATCH {
            asked.not_modified |= value.split(',').any(|tag| {
                let tag = tag.trim();
                tag == "*" || tag.trim_start_matches("W/") == etag
            });
        } else if name == header::ACCEPT_ENCODING {
            asked.brotli |= lists(value, "br");
            asked.gzip |= lists(value, "gzip");
        }
    }
    asked
}

/// Answers `GET /static/{name}`; `versioned` when the URL carried `?v=`.
pub fn serve(name: &str, headers: &HeaderMap, versioned: bool) -> Option<Response> {
    let file = Static::get(name)?;
    let asked = asked(headers, file.etag());
    let rule = usize::from(versioned);
    PREPARED.with_borrow_mut(|prepared| {
        let at = match prepared.iter().position(|p| p.name == file.name()) {
            Some(at) => at,
            None => {
                prepared.push(Prepared::new(&file));
                prepared.len() - 1
            }
        };
        let file = &prepared[at];
        if asked.not_modified {
            return Some(respond::response(
                StatusCode::NOT_MODIFIED,
                file.not_modified[rule].clone(),
                Bytes::new(),
            ));
        }
        let (body, headers) = (file.ok.iter().zip([asked.brotli, asked.gzip, true]))
            .find_map(|(variant, wanted)| variant.as_ref().filter(|_| wanted))?;
        Some(respond::response(StatusCode::OK, headers[rule].clone(), body.clone()))
    })
}

/// True when the `Accept-Encoding` value lists `coding` without `q=0`.
fn lists(value: &str, coding: &str) -> bool {
    value.split(',').any(|item| {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim();
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
        });
        name.eq_ignore_ascii_case(coding) && !refused
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(v));
        h
    }

    #[test]
    fn encodings_are_negotiated_with_q_zero_refusing() {
        assert!(lists("gzip, deflate, br", "br"));
        assert!(lists("GZIP", "gzip"));
        assert!(!lists("br;q=0, gzip;q=0.5", "br"));
        assert!(lists("br;q=0, gzip;q=0.5", "gzip"));
        assert!(!lists("identity", "gzip"));
        let mut two = accept("br;q=0");
        two.append(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        two.append(header::IF_NONE_MATCH, HeaderValue::from_static("\"a\", W/\"b\""));
        assert_eq!(
            asked(&two, "\"b\""),
            Asked {
                not_modified: true,
                brotli: false,
                gzip: true
            }
        );
        assert_eq!(
            asked(&HeaderMap::new(), "\"b\""),
            Asked {
                not_modified: false,
                brotli: false,
                gzip: false
            }
        );
    }

    #[test]
    fn prepared_answers_carry_each_header_once_with_the_request_id_first() {
        let file = Static::get("app.css").expect("embedded");
        for (headers, versioned, status, encoding) in [
            (HeaderMap::new(), false, StatusCode::OK, None),
            (accept("gzip, br"), true, StatusCode::OK, Some("br")),
            (accept("gzip"), false, StatusCode::OK, Some("gzip")),
            (
                HeaderMap::from_iter([(header::IF_NONE_MATCH, HeaderValue::from_static(file.etag()))]),
                true,
                StatusCode::NOT_MODIFIED,
                None,
            ),
        ] {
            // Twice: the first prepares, the second copies.
            for _ in 0..2 {
                let answer = serve("app.css", &headers, versioned).expect("served");
                assert_eq!(answer.status(), status);
                let h = answer.headers();
                assert_eq!(h.iter().next().map(|(name, _)| name), Some(&respond::X_REQUEST_ID));
                assert_eq!(h.len(), h.keys_len(), "a header twice: {h:?}");
                assert_eq!(h[header::ETAG], file.etag());
                assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
                assert_eq!(h[header::VARY], "Accept-Encoding");
                let cache = if versioned { IMMUTABLE } else { REVALIDATE };
                assert_eq!(h[header::CACHE_CONTROL], cache);
                assert_eq!(h.get(header::CONTENT_ENCODING).map(|v| v.to_str().unwrap()), encoding);
                assert_eq!(h.contains_key(header::CONTENT_TYPE), status == StatusCode::OK);
                if status == StatusCode::OK && encoding.is_none() {
                    assert_eq!(h[header::CONTENT_TYPE], "text/css");
                }
            }
        }
        assert!(serve("nope.css", &HeaderMap::new(), false).is_none());
        // Eight answers, one preparation: the thread's list does not grow per request.
        PREPARED.with_borrow(|prepared| assert_eq!(prepared.iter().filter(|p| p.name == "app.css").count(), 1));
    }

    #[test]
    fn the_stylesheet_is_embedded_with_a_versioned_url() {
        let u = url("app.css");
        let version = u.strip_prefix("/static/app.css?v=").expect("versioned");
        assert_eq!(version.len(), 16);
        assert!(version.bytes().all(|b| b.is_ascii_hexdigit()), "{u}");
    }
}
