//! `Idempotency-Key` on the creates that cost money: a double click, a retried request or
//! twenty copies at once make one provider order or one refund, and get the first answer.

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;
use zhifu::account::Role;
use zhifu::pay::sandbox::{Api, Fault};

use crate::admin::sign_in;
use crate::helpers::{Answer, TestApp, spawn_app};

const DONATION: &str = r#"{"amount":"8.88","channel":"wechat","category_id":1,"donor_name":"幂等"}"#;

async fn donate_with_key(app: &TestApp, key: &str, body: &str) -> Answer {
    app.request(
        Method::POST,
        "/api/donations",
        &[("content-type", "application/json"), ("idempotency-key", key)],
        Bytes::from(body.to_string()),
    )
    .await
}

#[tokio::test]
async fn the_same_key_sent_20_times_concurrently_makes_one_provider_order_and_one_answer() {
    let app = spawn_app().await;
    let wechat = app.state.sandbox.clone().unwrap().wechat;
    let copies = (0..20).map(|_| donate_with_key(&app, "double-click-7f3a", DONATION));
    let answers = futures_util::future::join_all(copies).await;
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
        assert_eq!(answer.body, answers[0].body, "every copy gets the first answer");
    }
    let replayed = answers
        .iter()
        .filter(|a| a.header("idempotent-replayed") == Some("true"))
        .count();
    assert_eq!(replayed, 19);
    assert_eq!(wechat.order_count(), 1, "one order at the provider");
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 1);

    // Later retries too, and the order is the one the provider has.
    let again = donate_with_key(&app, "double-click-7f3a", DONATION).await;
    assert_eq!(again.body, answers[0].body);
    assert_eq!(wechat.order_count(), 1);
    app.shutdown().await;
}

#[tokio::test]
async fn a_key_reused_with_another_body_is_refused_and_malformed_keys_are_named() {
    let app = spawn_app().await;
    let first = donate_with_key(&app, "k1", DONATION).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let other = DONATION.replace("8.88", "9.99");
    let reused = donate_with_key(&app, "k1", &other).await;
    assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reused.error_code(), "idempotency_key_reused");
    let too_long = "k".repeat(256);
    for bad in [too_long.as_str(), "tab\there"] {
        let answer = donate_with_key(&app, bad, DONATION).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}");
        assert_eq!(answer.error_code(), "invalid_idempotency_key");
    }
    let empty = app
        .request(
            Method::POST,
            "/api/donations",
            &[("content-type", "application/json"), ("idempotency-key", "")],
            Bytes::from(DONATION),
        )
        .await;
    assert_eq!(empty.error_code(), "invalid_idempotency_key");
    assert!(donate_with_key(&app, &"k".repeat(255), DONATION).await.status == StatusCode::CREATED);
    assert_eq!(
        app.count("SELECT count(*) FROM payments").await,
        2,
        "k1 and the 255-byte key"
    );

    // Keys are per caller: the same key from a signed-in donor is another key.
    let token = sign_in(&app, "donor1", Role::User).await;
    let bearer = format!("Bearer {token}");
    let signed = app
        .request(
            Method::POST,
            "/api/donations",
            &[
                ("content-type", "application/json"),
                ("idempotency-key", "k1"),
                ("authorization", bearer.as_str()),
            ],
            Bytes::from(other.clone()),
        )
        .await;
    assert_eq!(signed.status, StatusCode::CREATED, "{}", signed.text());
    assert_ne!(signed.json()["order_no"], first.json()["order_no"]);
    app.shutdown().await;
}

#[tokio::test]
async fn client_errors_store_nothing_and_provider_failures_release_the_key() {
    let app = spawn_app().await;
    let wechat = app.state.sandbox.clone().unwrap().wechat;
    let bad = r#"{"amount":"0","channel":"wechat","category_id":1}"#;
    for _ in 0..2 {
        let answer = donate_with_key(&app, "bad-amount", bad).await;
        assert_eq!(answer.error_code(), "invalid_amount");
        assert_eq!(answer.header("idempotent-replayed"), None);
    }
    assert_eq!(
        app.count("SELECT count(*) FROM idempotency_keys").await,
        0,
        "a refused request writes no row"
    );
    // The corrected request may use the same key.
    let fixed = donate_with_key(&app, "bad-amount", DONATION).await;
    assert_eq!(fixed.status, StatusCode::CREATED, "{}", fixed.text());
    wechat.faults().push_on(Api::Create, Fault::ServerError);
    let failed = donate_with_key(&app, "flaky", DONATION).await;
    assert_eq!(failed.status, StatusCode::SERVICE_UNAVAILABLE);
    let retried = donate_with_key(&app, "flaky", DONATION).await;
    assert_eq!(
        retried.status,
        StatusCode::CREATED,
        "a 503 is not remembered: {}",
        retried.text()
    );
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 2);

    // A form post replays its 303 to the same pay page.
    let form = "amount=3.00&channel=alipay&category_id=1";
    let post = || {
        app.request(
            Method::POST,
            "/api/donations",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("idempotency-key", "form-1"),
            ],
            Bytes::from(form),
        )
    };
    let (a, b) = (post().await, post().await);
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(b.status, StatusCode::SEE_OTHER);
    assert_eq!(a.header("location"), b.header("location"));
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 3);
    app.shutdown().await;
}

#[tokio::test]
async fn a_request_retried_after_its_first_attempt_died_makes_the_same_provider_order() {
    let app = spawn_app().await;
    let wechat = app.state.sandbox.clone().unwrap().wechat;
    // The first attempt claimed the key as order 0199…01 and died before answering; its lock
    // has run out.
    let fingerprint = {
        let parts = [
            &b"POST"[..],
            b"/api/donations",
            b"application/json",
            DONATION.as_bytes(),
        ];
        zhifu::pay::idempotency::fingerprint(&parts)
    };
    let hex: String = fingerprint.iter().map(|b| format!("{b:02x}")).collect();
    let scope = "POST /api/donations|ip:127.0.0.1";
    app.sql(&format!(
        "INSERT INTO idempotency_keys (scope, key, fingerprint, resource_id, locked_until, expires_at)
         VALUES ('{scope}', 'crashed', '\\x{hex}', '0199aaaabbbbccccddddeeeeffff0001', now() - interval '1 s', now() + interval '1 day')"
    ))
    .await;
    let retried = donate_with_key(&app, "crashed", DONATION).await;
    assert_eq!(retried.status, StatusCode::CREATED, "{}", retried.text());
    assert_eq!(retried.json()["order_no"], "0199aaaabbbbccccddddeeeeffff0001");
    assert_eq!(wechat.order_count(), 1);

    // Had it died after storing the order, the retry answers that order: no provider call.
    app.sql(
        "UPDATE idempotency_keys SET status = NULL, body = NULL, locked_until = now() - interval '1 s'
          WHERE key = 'crashed'",
    )
    .await;
    let creates = wechat.faults().calls(Api::Create);
    let again = donate_with_key(&app, "crashed", DONATION).await;
    assert_eq!(again.json()["order_no"], "0199aaaabbbbccccddddeeeeffff0001");
    assert_eq!(wechat.faults().calls(Api::Create), creates);
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 1);
    app.shutdown().await;
}

#[tokio::test]
async fn the_admin_refund_with_one_key_refunds_once_however_often_it_is_sent() {
    let app = spawn_app().await;
    let alipay = app.state.sandbox.clone().unwrap().alipay;
    let no = app.donate("60.00", "alipay").await["order_no"]
        .as_str()
        .unwrap()
        .to_string();
    app.sandbox_pay(&no).await;
    let token = sign_in(&app, "ops1", Role::Admin).await;
    let bearer = format!("Bearer {token}");
    let path = format!("/api/admin/payments/{no}/refund");
    let send = |body: serde_json::Value| {
        let (path, bearer) = (path.clone(), bearer.clone());
        let app = &app;
        async move {
            app.request(
                Method::POST,
                &path,
                &[
                    ("authorization", bearer.as_str()),
                    ("content-type", "application/json"),
                    ("idempotency-key", "refund-once"),
                ],
                Bytes::from(body.to_string()),
            )
            .await
        }
    };
    let body = json!({"amount": "20.00", "reason": "重复点击"});
    let answers = futures_util::future::join_all((0..10).map(|_| send(body.clone()))).await;
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
        assert_eq!(answer.body, answers[0].body);
    }
    assert_eq!(app.count("SELECT count(*) FROM refunds").await, 1);
    assert_eq!(alipay.refund_count(&no), 1, "one refund at the provider");
    assert_eq!(
        app.count("SELECT count(*) FROM admin_audit WHERE action = 'payment.refund'")
            .await,
        1
    );
    let reused = send(json!({"amount": "30.00", "reason": "重复点击"})).await;
    assert_eq!(reused.error_code(), "idempotency_key_reused");
    app.shutdown().await;
}

#[tokio::test]
async fn keys_older_than_a_day_are_purged_and_then_free() {
    let app = spawn_app().await;
    assert_eq!(donate_with_key(&app, "old", DONATION).await.status, StatusCode::CREATED);
    app.sql(
        "UPDATE idempotency_keys SET created_at = now() - interval '25 hours', expires_at = now() - interval '1 hour'",
    )
    .await;
    let purged = zhifu::pay::idempotency::purge(&app.state.store, 1000).await.unwrap();
    assert_eq!(purged, 1);
    let other = DONATION.replace("8.88", "1.23");
    assert_eq!(
        donate_with_key(&app, "old", &other).await.status,
        StatusCode::CREATED,
        "a purged key is a new key"
    );
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 2);
    app.shutdown().await;
}
