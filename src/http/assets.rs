//! Files of `static/`, embedded in the binary with gzip and brotli variants and ETags made at
//! build time. Served with `304 Not Modified` on a matching `If-None-Match`; a URL carrying the
//! file's version (`?v=…`, see [`url`]) is cached for a year, a bare one is revalidated.

use http::StatusCode;
use http::header::{self, HeaderMap, HeaderValue};
use rust_embed_for_web::{EmbedableFile, RustEmbed};

use super::respond::{Response, with_body};

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

/// Answers `GET /static/{name}`; `versioned` when the URL carried `?v=`.
pub fn serve(name: &str, headers: &HeaderMap, versioned: bool) -> Option<Response> {
    let file = Static::get(name)?;
    let etag = HeaderValue::from_static(file.etag());
    let cache = if versioned { IMMUTABLE } else { REVALIDATE };
    let not_modified = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == file.etag()
        });
    let mime = file.mime_type().map_or(
        HeaderValue::from_static("application/octet-stream"),
        HeaderValue::from_static,
    );
    let mut response = if not_modified {
        let mut r = with_body(StatusCode::NOT_MODIFIED, mime, bytes::Bytes::new());
        r.headers_mut().remove(header::CONTENT_TYPE);
        r
    } else {
        let (data, encoding) = match (file.data_br(), file.data_gzip()) {
            (Some(br), _) if accepts(headers, "br") => (Some(br), Some("br")),
            (_, Some(gz)) if accepts(headers, "gzip") => (Some(gz), Some("gzip")),
            _ => (None, None),
        };
        let mut r = with_body(
            StatusCode::OK,
            mime,
            bytes::Bytes::from_static(data.unwrap_or_else(|| file.data())),
        );
        if let Some(encoding) = encoding {
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
        }
        r
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, etag);
    h.insert(header::CACHE_CONTROL, cache);
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    Some(response)
}

/// True when `Accept-Encoding` lists `coding` without `q=0`.
fn accepts(headers: &HeaderMap, coding: &str) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
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
        assert!(accepts(&accept("gzip, deflate, br"), "br"));
        assert!(accepts(&accept("GZIP"), "gzip"));
        assert!(!accepts(&accept("br;q=0, gzip;q=0.5"), "br"));
        assert!(accepts(&accept("br;q=0, gzip;q=0.5"), "gzip"));
        assert!(!accepts(&accept("identity"), "gzip"));
        assert!(!accepts(&HeaderMap::new(), "br"));
    }

    #[test]
    fn the_stylesheet_is_embedded_with_a_versioned_url() {
        let u = url("app.css");
        let version = u.strip_prefix("/static/app.css?v=").expect("versioned");
        assert_eq!(version.len(), 16);
        assert!(version.bytes().all(|b| b.is_ascii_hexdigit()), "{u}");
    }
}
