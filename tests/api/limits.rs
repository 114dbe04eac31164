//! Per-client-IP rate limits: 429 with Retry-After and nothing written; the client address
//! from X-Forwarded-For only when the peer is a trusted proxy.

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, spawn_app_with};

async fn create_as(app: &TestApp, forwarded_for: Option<&str>) -> crate::helpers::Answer {
    let body = json!({"amount": "1", "channel": "wechat", "category_id": 1}).to_string();
    let mut headers = vec![("content-type", "application/json")];
    if let Some(ip) = forwarded_for {
        headers.push(("x-forwarded-for", ip));
    }
    app.request(Method::POST, "/api/donations", &headers, Bytes::from(body))
        .await
}

#[tokio::test]
async fn creating_past_the_limit_answers_429_with_retry_after_and_writes_nothing() {
    let app = spawn_app_with(|s| {
        s.limits.create_per_minute = 6;
        s.limits.create_burst = 2;
    })
    .await;
    assert_eq!(create_as(&app, None).await.status, StatusCode::CREATED);
    assert_eq!(create_as(&app, None).await.status, StatusCode::CREATED);
    let limited = create_as(&app, None).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.error_code(), "rate_limited");
    let retry: u64 = limited.header("retry-after").expect("Retry-After").parse().unwrap();
    assert!((1..=10).contains(&retry), "{retry}");
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 2);

    // Behind the trusted proxy (127.0.0.1), each forwarded client has its own allowance.
    assert_eq!(create_as(&app, Some("198.51.100.7")).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_forwarded_for_header_from_an_untrusted_peer_does_not_reset_the_limit() {
    let app = spawn_app_with(|s| {
        s.server.trusted_proxies = vec![];
        s.limits.create_per_minute = 6;
        s.limits.create_burst = 1;
    })
    .await;
    assert_eq!(create_as(&app, None).await.status, StatusCode::CREATED);
    let spoofed = create_as(&app, Some("203.0.113.99")).await;
    assert_eq!(
        spoofed.status,
        StatusCode::TOO_MANY_REQUESTS,
        "a spoofed X-Forwarded-For dodged the limit"
    );
}

#[tokio::test]
async fn status_polls_are_limited_per_client() {
    let app = spawn_app_with(|s| {
        s.limits.status_per_minute = 60;
        s.limits.status_burst = 3;
    })
    .await;
    let order = app.donate("1", "alipay").await;
    let path = format!("/api/payments/{}", order["order_no"].as_str().unwrap());
    for _ in 0..3 {
        assert_eq!(app.get(&path).await.status, StatusCode::OK);
    }
    let limited = app.get(&path).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.header("retry-after").is_some());
}
