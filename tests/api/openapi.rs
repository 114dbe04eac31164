//! The API description as served (`/api/openapi.json`, `/api/docs` in a real browser, at
//! phone size), and the server fixes schemathesis's runs led to, each pinned here.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;
use zhifu::account::Role;

use crate::admin::{call, sign_in};
use crate::devtools::{DevTools, chromium_or_skip};
use crate::helpers::{scratch_dir, spawn_app};

#[tokio::test]
async fn the_document_is_served_from_memory_and_describes_every_route() {
    let app = spawn_app().await;
    let first = app.get("/api/openapi.json").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.header("content-type"), Some("application/json"));
    let doc = first.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert!(operations > 100, "{operations} operations");
    assert_eq!(
        doc["paths"]["/api/donations"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/DonationCreated"
    );
    let second = app.get("/api/openapi.json").await;
    assert_eq!(first.body, second.body, "the same bytes every time");
    let checkouts = app.state.store.checkouts();
    app.get("/api/openapi.json").await;
    assert_eq!(app.state.store.checkouts(), checkouts, "no query serves it");
    app.shutdown().await;
}

#[tokio::test]
async fn bad_input_found_by_the_fuzzer_is_refused_and_writes_nothing() {
    let app = spawn_app().await;
    let admin = sign_in(&app, "admin1", Role::Admin).await;
    let auth = format!("Bearer {admin}");

    // A JSON array is not an object of the fields in order.
    let patch = app
        .request(
            Method::PATCH,
            "/api/me",
            &[("authorization", &auth), ("content-type", "application/json")],
            Bytes::from("[null, null]"),
        )
        .await;
    assert_eq!(patch.status, StatusCode::BAD_REQUEST, "{}", patch.text());
    assert_eq!(patch.error_code(), "malformed_request");

    // The donation form's checkbox: its values, or a 422 (never read as "no").
    let form = |anonymous: &str| format!("amount=1.00&channel=alipay&category_id=1&anonymous={anonymous}");
    let post_form = |body: String| {
        app.request(
            Method::POST,
            "/api/donations",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("idempotency-key", "form-bad"),
            ],
            Bytes::from(body),
        )
    };
    let refused = post_form(form("null")).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.text());
    assert_eq!(refused.error_code(), "invalid_anonymous");
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 0);
    assert_eq!(
        app.count("SELECT count(*) FROM idempotency_keys").await,
        0,
        "a refusal stores no key"
    );
    let ticked = post_form(form("on")).await;
    assert_eq!(
        ticked.status,
        StatusCode::SEE_OTHER,
        "the same key, corrected: {}",
        ticked.text()
    );

    // The sign-in form answers a too-long username with its page, like a wrong password.
    let long = format!("username={}&password=x", "a".repeat(65));
    let page = app
        .request(
            Method::POST,
            "/login",
            &[("content-type", "application/x-www-form-urlencoded")],
            Bytes::from(long),
        )
        .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(
        page.header("content-type").unwrap().starts_with("text/html"),
        "{:?}",
        page.header("content-type")
    );

    // Admin pages: another method without a session is 401, not a redirect to sign in.
    for path in ["/admin", "/admin/payments", "/admin/community"] {
        let answer = app.request(Method::DELETE, path, &[], Bytes::new()).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path}");
        let answer = app
            .request(Method::DELETE, path, &[("authorization", &auth)], Bytes::new())
            .await;
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert_eq!(
            app.get(path).await.status,
            StatusCode::SEE_OTHER,
            "GET still goes to sign in"
        );
    }

    // The sandbox's WeChat sign-in emulator: a known path with another method is 405.
    let wrong = app.get("/sandbox/wxlogin/code").await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    let minted = call(
        &app,
        &admin,
        Method::POST,
        "/sandbox/wxlogin/code",
        Some(json!({"openid": "o-1"})),
    )
    .await;
    assert_eq!(minted.status, StatusCode::OK, "{}", minted.text());
    app.shutdown().await;
}

#[tokio::test]
async fn the_docs_page_renders_every_operation_on_a_phone() {
    let Some(browser) = chromium_or_skip() else { return };
    let app = spawn_app().await;
    let page = app.get("/api/docs").await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(html.contains("/static/apidocs.js"), "its script is a file");
    assert!(!html.contains("<script>"), "no inline script");
    let csp = page.header("content-security-policy").unwrap_or_default().to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");

    let url = app.url("/api/docs");
    let profile = scratch_dir("chromium-apidocs");
    let (count, width, png) = tokio::task::spawn_blocking(move || {
        let mut tools = DevTools::start(browser, &profile);
        let session = tools.open_page();
        tools.viewport(&session, 390, 844, true);
        tools.navigate(&session, &url);
        let ready = tools.wait_for(
            &session,
            "document.getElementById('api-operations').dataset.state === 'ready'",
            Duration::from_secs(15),
        );
        assert!(ready, "the operations were not rendered");
        let count = tools.eval(&session, "document.querySelectorAll('li.api-op').length");
        let width = tools.eval(&session, "document.documentElement.scrollWidth");
        (count, width, tools.screenshot(&session))
    })
    .await
    .unwrap();
    assert!(count.as_u64().unwrap() > 100, "{count} operations shown");
    assert!(width.as_u64().unwrap() <= 390, "wider than the phone: {width}");
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("api-docs-phone.png"), png).unwrap();
    app.shutdown().await;
}
