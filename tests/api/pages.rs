//! The home page and static files: escaping, security headers, ETag → 304, compression.

use bytes::Bytes;
use http::{Method, StatusCode};

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_home_page_lists_categories_with_names_escaped() {
    let app = spawn_app().await;
    app.sql("INSERT INTO categories (name, description) VALUES ('<script>alert(1)</script>', 'a & b')")
        .await;
    let page = app.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let html = page.text();
    assert!(html.contains("通用捐赠"), "{html}");
    assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "{html}");
    assert!(!html.contains("<script>alert(1)"), "unescaped name in {html}");
    assert!(html.contains("a &#38; b"));
}

#[tokio::test]
async fn html_carries_the_security_headers() {
    let app = spawn_app().await;
    let page = app.get("/").await;
    let csp = page.header("content-security-policy").expect("CSP");
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
}

#[tokio::test]
async fn the_page_links_only_to_its_own_host() {
    let app = spawn_app().await;
    let html = app.get("/").await.text();
    for attr in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
        assert!(!html.contains(attr), "page loads something from another host: {attr}");
    }
}

#[tokio::test]
async fn a_static_file_answers_304_to_its_etag() {
    let app = spawn_app().await;
    let first = app.get("/static/app.css").await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(first.header("content-type").unwrap().starts_with("text/css"));
    assert!(first.text().contains(".category"));
    let etag = first.header("etag").expect("etag").to_string();
    assert_eq!(first.header("cache-control"), Some("public, no-cache"));

    let again = app
        .request(
            Method::GET,
            "/static/app.css",
            &[("if-none-match", &etag)],
            Bytes::new(),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));

    let stale = app
        .request(
            Method::GET,
            "/static/app.css",
            &[("if-none-match", "\"other\"")],
            Bytes::new(),
        )
        .await;
    assert_eq!(stale.status, StatusCode::OK);
}

#[tokio::test]
async fn static_files_come_precompressed_and_versioned_urls_are_immutable() {
    let app = spawn_app().await;
    let plain = app.get("/static/app.css").await;
    let br = app
        .request(
            Method::GET,
            "/static/app.css",
            &[("accept-encoding", "gzip, br")],
            Bytes::new(),
        )
        .await;
    assert_eq!(br.header("content-encoding"), Some("br"));
    assert!(br.body.len() < plain.body.len());
    assert_eq!(br.header("vary"), Some("Accept-Encoding"));
    let gz = app
        .request(
            Method::GET,
            "/static/app.css",
            &[("accept-encoding", "gzip")],
            Bytes::new(),
        )
        .await;
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(&gz.body[..2], &[0x1f, 0x8b], "gzip magic");

    let html = app.get("/").await.text();
    let start = html.find("/static/app.css?v=").expect("versioned stylesheet link");
    let end = start + html[start..].find('"').unwrap();
    let versioned = app.get(&html[start..end]).await;
    assert_eq!(versioned.status, StatusCode::OK);
    assert_eq!(
        versioned.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
}

#[tokio::test]
async fn unknown_or_hidden_static_names_are_404() {
    let app = spawn_app().await;
    assert_eq!(app.get("/static/nope.css").await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/static/..%2FCargo.toml").await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/static/.hidden").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_home_page_has_each_section_once_and_all_of_them_in_the_body() {
    let app = spawn_app().await;
    let html = app.get("/").await.text();
    for id in ["donate-form", "categories", "ranking", "recent", "chart"] {
        assert_eq!(html.matches(&format!("id=\"{id}\"")).count(), 1, "#{id}");
    }
    let body = html.find("<body>").expect("a body");
    assert!(
        html.find("<section").expect("sections") > body,
        "a section sits in the head"
    );
}
