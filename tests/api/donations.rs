//! `POST /api/donations`: the contract's answer, one order per request, bad input refused with
//! nothing written, provider failures answered 503 with nothing written.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;
use zhifu::pay::sandbox::Fault;

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn a_json_donation_answers_201_with_the_contract_fields_and_stores_the_order() {
    let app = spawn_app().await;
    let answer = app
        .post_json(
            "/api/donations",
            json!({"amount": "12.34", "channel": "wechat", "category_id": 1,
                   "donor_name": "张三", "message": "加油", "anonymous": false}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    let order = answer.json();
    let no = order["order_no"].as_str().unwrap();
    assert!(
        (6..=32).contains(&no.len()) && no.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
        "{no}"
    );
    assert_eq!(order["status"], "pending");
    assert_eq!(order["amount"], "12.34");
    assert_eq!(order["amount_fen"], 1234);
    assert_eq!(order["channel"], "wechat");
    assert!(
        order["code_url"]
            .as_str()
            .unwrap()
            .starts_with("weixin://wxpay/bizpayurl?pr="),
        "{order}"
    );
    assert_eq!(order["qr_url"], format!("/api/payments/{no}/qr.png"));
    assert_eq!(order["pay_url"], format!("/pay/{no}"));
    let expires = order["expires_at"].as_str().unwrap();
    assert!(expires.ends_with("+08:00"), "{expires}");

    let stored = app
        .count(&format!(
            "SELECT count(*) FROM payments p JOIN donations d USING (order_no)
              WHERE p.order_no = '{no}' AND p.status = 'pending' AND p.amount_fen = 1234 AND p.channel = 'wechat'
                AND d.donor_name = '张三' AND d.message = '加油' AND d.category_id = 1"
        ))
        .await;
    assert_eq!(stored, 1);
    let audited = app
        .count(&format!(
            "SELECT count(*) FROM payment_events WHERE order_no = '{no}' AND kind = 'created'"
        ))
        .await;
    assert_eq!(audited, 1);
}

#[tokio::test]
async fn an_alipay_donation_carries_the_qr_code_alipay_returned() {
    let app = spawn_app().await;
    let order = app.donate("0.01", "alipay").await;
    assert_eq!(order["amount_fen"], 1);
    let code = order["code_url"].as_str().unwrap();
    assert!(code.starts_with("https://"), "{code}");
}

#[tokio::test]
async fn a_form_post_answers_303_to_the_pay_page() {
    let app = spawn_app().await;
    let answer = app
        .request(
            Method::POST,
            "/api/donations",
            &[("content-type", "application/x-www-form-urlencoded")],
            Bytes::from_static(
                b"amount=50&channel=alipay&category_id=1&donor_name=%E6%9D%8E%E5%9B%9B&anonymous=on&submit=x",
            ),
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
    let location = answer.header("location").unwrap();
    assert!(location.starts_with("/pay/"), "{location}");
    let no = &location["/pay/".len()..];
    let anonymous = app
        .count(&format!(
            "SELECT count(*) FROM donations WHERE order_no = '{no}' AND anonymous AND donor_name = '李四'"
        ))
        .await;
    assert_eq!(anonymous, 1);
    assert_eq!(app.get(location).await.status, StatusCode::OK);
}

#[tokio::test]
async fn bad_input_is_refused_with_the_contract_error_and_nothing_is_written() {
    let app = spawn_app().await;
    let json_cases = [
        (
            json!({"amount": "0", "channel": "wechat", "category_id": 1}),
            422,
            "invalid_amount",
        ),
        (
            json!({"amount": "50000.01", "channel": "wechat", "category_id": 1}),
            422,
            "invalid_amount",
        ),
        (
            json!({"amount": "1.234", "channel": "wechat", "category_id": 1}),
            422,
            "invalid_amount",
        ),
        (
            json!({"amount": 12.34, "channel": "wechat", "category_id": 1}),
            422,
            "invalid_amount",
        ),
        (
            json!({"amount": "-1", "channel": "wechat", "category_id": 1}),
            422,
            "invalid_amount",
        ),
        (
            json!({"amount": "1e9", "channel": "wechat", "category_id": 1}),
            422,
            "invalid_amount",
        ),
        (json!({"channel": "wechat", "category_id": 1}), 422, "invalid_amount"),
        (
            json!({"amount": "1", "channel": "paypal", "category_id": 1}),
            422,
            "invalid_channel",
        ),
        (
            json!({"amount": "1", "channel": "wechat", "category_id": 999}),
            422,
            "invalid_category",
        ),
        (
            json!({"amount": "1", "channel": "wechat", "category_id": -1}),
            422,
            "invalid_category",
        ),
        (
            json!({"amount": "1", "channel": "wechat", "category_id": 1, "donor_name": "x".repeat(33)}),
            422,
            "invalid_donor_name",
        ),
        (
            json!({"amount": "1", "channel": "wechat", "category_id": 1, "message": "字".repeat(201)}),
            422,
            "invalid_message",
        ),
        (
            json!({"amount": "1", "channel": "wechat", "category_id": 1, "anonymous": "yes"}),
            422,
            "invalid_anonymous",
        ),
        (
            json!({"amount": "1", "channel": "wechat", "category_id": 1, "admin": true}),
            400,
            "malformed_request",
        ),
        (json!(["amount", "1"]), 400, "malformed_request"),
    ];
    for (body, status, code) in json_cases {
        let answer = app.post_json("/api/donations", body.clone()).await;
        assert_eq!(answer.status.as_u16(), status, "{body}: {}", answer.text());
        assert_eq!(answer.error_code(), code, "{body}");
    }
    let raw_cases: [(&str, &[u8], u16, &str); 4] = [
        ("application/json", b"{\"amount\": \"1\",", 400, "malformed_request"),
        ("application/json", b"{\"amount\": \"\xff\"}", 400, "malformed_request"),
        ("text/plain", b"amount=1", 415, "unsupported_media_type"),
        (
            "application/x-www-form-urlencoded",
            b"amount=1&channel=wechat&category_id=1&donor_name=%FF",
            400,
            "malformed_request",
        ),
    ];
    for (content_type, body, status, code) in raw_cases {
        let answer = app
            .request(
                Method::POST,
                "/api/donations",
                &[("content-type", content_type)],
                Bytes::from_static(body),
            )
            .await;
        assert_eq!(
            answer.status.as_u16(),
            status,
            "{content_type} {body:?}: {}",
            answer.text()
        );
        assert_eq!(answer.error_code(), code);
    }
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM donations").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM payment_events").await, 0);
}

#[tokio::test]
async fn provider_failures_answer_503_and_write_nothing() {
    let app = spawn_app_with(|s| s.payments.request_timeout_secs = 1).await;
    let sandbox = app.state.sandbox.clone().expect("sandbox mode");
    let faults = [
        Fault::Reject {
            code: "PARAM_ERROR".into(),
            message: "bad".into(),
        },
        Fault::ServerError,
        Fault::BadSignature,
        Fault::Delay(Duration::from_secs(3)),
    ];
    for fault in faults {
        sandbox.wechat.faults().push(fault.clone());
        let started = std::time::Instant::now();
        let answer = app
            .post_json(
                "/api/donations",
                json!({"amount": "1", "channel": "wechat", "category_id": 1}),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{fault:?}: {}",
            answer.text()
        );
        assert_eq!(answer.error_code(), "provider_unavailable");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{fault:?} took {:?}",
            started.elapsed()
        );
    }
    sandbox.alipay.faults().push(Fault::Reject {
        code: "ACQ.SYSTEM_ERROR".into(),
        message: "busy".into(),
    });
    let answer = app
        .post_json(
            "/api/donations",
            json!({"amount": "1", "channel": "alipay", "category_id": 1}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 0);

    // And the next one goes through.
    app.donate("1", "wechat").await;
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 1);
}

#[tokio::test]
async fn a_disabled_channel_is_refused_and_not_offered() {
    let app = spawn_app_with(|s| s.payments.alipay.enabled = false).await;
    let answer = app
        .post_json(
            "/api/donations",
            json!({"amount": "1", "channel": "alipay", "category_id": 1}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.error_code(), "channel_disabled");
    let home = app.get("/").await.text();
    assert!(home.contains("value=\"wechat\""));
    assert!(!home.contains("value=\"alipay\""));
}
