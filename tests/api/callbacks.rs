//! Provider callbacks as the providers send them: duplicates credit once, every bad callback
//! the contract names leaves the order unpaid, late payments are kept (or refunded), refunds
//! add up, and the reconcile job finds what callbacks missed.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde_json::json;
use time::OffsetDateTime;
use zhifu::pay::engine::EngineError;
use zhifu::pay::reconcile;

use crate::helpers::{Answer, TestApp, eventually, spawn_app, spawn_app_with};

async fn post_wechat(app: &TestApp, headers: &HeaderMap, body: Vec<u8>) -> Answer {
    let pairs: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    app.request(Method::POST, "/notify/wechat", &refs, Bytes::from(body))
        .await
}

async fn post_alipay(app: &TestApp, body: Vec<u8>) -> Answer {
    app.request(
        Method::POST,
        "/notify/alipay",
        &[("content-type", "application/x-www-form-urlencoded; charset=utf-8")],
        Bytes::from(body),
    )
    .await
}

fn order_no(order: &serde_json::Value) -> String {
    order["order_no"].as_str().unwrap().to_string()
}

async fn paid_events(app: &TestApp, no: &str) -> i64 {
    app.count(&format!(
        "SELECT count(*) FROM payment_events WHERE order_no = '{no}' AND kind IN ('paid', 'paid_late')"
    ))
    .await
}

/// A WeChat TRANSACTION.SUCCESS body for `plaintext`, signed now by the emulator's platform key.
fn wechat_notification(app: &TestApp, plaintext: serde_json::Value, timestamp: i64) -> (HeaderMap, Vec<u8>) {
    let wechat = &app.state.sandbox.as_ref().unwrap().wechat;
    let body = json!({
        "id": format!("EV-{}", timestamp),
        "create_time": "2026-11-21T22:00:00+08:00",
        "event_type": "TRANSACTION.SUCCESS",
        "resource_type": "encrypt-resource",
        "summary": "支付成功",
        "resource": wechat.encrypt_resource("transaction", plaintext.to_string().as_bytes()),
    })
    .to_string()
    .into_bytes();
    let headers = wechat.sign_notification(&body, timestamp, "n0nce5tr1ng");
    (headers, body)
}

fn wechat_transaction(app: &TestApp, no: &str, total: i64, mchid: &str) -> serde_json::Value {
    let wechat = &app.state.sandbox.as_ref().unwrap().wechat;
    json!({
        "appid": wechat.appid(), "mchid": mchid, "out_trade_no": no,
        "transaction_id": "4200000000000000000000000001", "trade_type": "NATIVE",
        "trade_state": "SUCCESS", "trade_state_desc": "支付成功", "bank_type": "OTHERS",
        "attach": "", "success_time": "2026-11-21T22:01:02+08:00",
        "payer": {"openid": "o-test"},
        "amount": {"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"}
    })
}

#[tokio::test]
async fn twenty_concurrent_duplicate_wechat_callbacks_credit_once() {
    let app = spawn_app().await;
    let no = order_no(&app.donate("20.00", "wechat").await);
    let wechat = app.state.sandbox.clone().unwrap().wechat;
    wechat.mark_paid(&no, false).unwrap();
    let (headers, body) = wechat.payment_notification(&no).unwrap();
    let sends = (0..20).map(|_| post_wechat(&app, &headers, body.clone()));
    for answer in futures_util::future::join_all(sends).await {
        assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text());
    }
    assert_eq!(paid_events(&app, &no).await, 1);
    assert_eq!(app.count("SELECT count(*) FROM callback_inbox WHERE accepted").await, 1);
    assert_eq!(app.get(&format!("/api/payments/{no}")).await.json()["status"], "paid");
}

#[tokio::test]
async fn twenty_concurrent_duplicate_alipay_callbacks_credit_once() {
    let app = spawn_app().await;
    let no = order_no(&app.donate("7.50", "alipay").await);
    let alipay = app.state.sandbox.clone().unwrap().alipay;
    let body = alipay.sign_form(&[
        ("notify_time", "2026-11-21 22:01:03"),
        ("notify_type", "trade_status_sync"),
        ("notify_id", "ntf-1"),
        ("app_id", alipay.app_id()),
        ("charset", "utf-8"),
        ("version", "1.0"),
        ("trade_no", "2026112122001400000000000001"),
        ("out_trade_no", &no),
        ("seller_id", alipay.seller_id()),
        ("trade_status", "TRADE_SUCCESS"),
        ("total_amount", "7.50"),
        ("receipt_amount", "7.50"),
        ("gmt_create", "2026-11-21 22:00:00"),
        ("gmt_payment", "2026-11-21 22:01:02"),
    ]);
    let sends = (0..20).map(|_| post_alipay(&app, body.clone()));
    for answer in futures_util::future::join_all(sends).await {
        assert_eq!(answer.text(), "success");
    }
    assert_eq!(paid_events(&app, &no).await, 1);
    assert_eq!(app.count("SELECT count(*) FROM callback_inbox WHERE accepted").await, 1);
    let paid_at = app
        .count(&format!(
            "SELECT count(*) FROM payments WHERE order_no = '{no}' AND paid_at = '2026-11-21 22:01:02+08'"
        ))
        .await;
    assert_eq!(paid_at, 1, "paid_at is Alipay's gmt_payment");
}

#[tokio::test]
async fn forged_stale_mismatching_or_unknown_wechat_callbacks_never_mark_anything_paid() {
    let app = spawn_app().await;
    let no = order_no(&app.donate("10.00", "wechat").await);
    let wechat = app.state.sandbox.clone().unwrap().wechat;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let mchid = wechat.mchid().to_string();

    // Tampered after signing.
    wechat.mark_paid(&no, false).unwrap();
    let (headers, body) = wechat.payment_notification(&no).unwrap();
    let tampered = String::from_utf8(body.clone())
        .unwrap()
        .replace("支付成功", "支付失败")
        .into_bytes();
    let answer = post_wechat(&app, &headers, tampered).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.json()["code"], "FAIL");

    // WeChat's deliberate probe signature.
    let mut probe = headers.clone();
    probe.insert(
        "wechatpay-signature",
        "WECHATPAY/SIGNTEST/c2lnbmF0dXJl".parse().unwrap(),
    );
    assert_eq!(
        post_wechat(&app, &probe, body.clone()).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Replayed too late, correctly signed.
    let (stale_headers, stale_body) = wechat_notification(&app, wechat_transaction(&app, &no, 1000, &mchid), now - 301);
    assert_eq!(
        post_wechat(&app, &stale_headers, stale_body).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Another merchant's payment, correctly signed and encrypted.
    let (h, b) = wechat_notification(&app, wechat_transaction(&app, &no, 1000, "1900000999"), now);
    assert_eq!(post_wechat(&app, &h, b).await.status, StatusCode::UNAUTHORIZED);

    // The wrong amount.
    let (h, b) = wechat_notification(&app, wechat_transaction(&app, &no, 1, &mchid), now);
    let answer = post_wechat(&app, &h, b).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json()["code"], "FAIL");

    // An order that does not exist.
    let (h, b) = wechat_notification(
        &app,
        wechat_transaction(&app, "0000000000000000000000000000beef", 1000, &mchid),
        now,
    );
    assert_eq!(post_wechat(&app, &h, b).await.status, StatusCode::NOT_FOUND);

    assert_eq!(paid_events(&app, &no).await, 0);
    assert_eq!(
        app.get(&format!("/api/payments/{no}")).await.json()["status"],
        "pending"
    );
    assert_eq!(app.count("SELECT count(*) FROM callback_inbox WHERE accepted").await, 0);
    let refused = app
        .count("SELECT count(*) FROM callback_inbox WHERE NOT accepted")
        .await;
    assert_eq!(refused, 2, "verified but refused callbacks are kept for ops");

    // The genuine callback still goes through afterwards.
    assert_eq!(post_wechat(&app, &headers, body).await.status, StatusCode::NO_CONTENT);
    assert_eq!(paid_events(&app, &no).await, 1);
}

#[tokio::test]
async fn forged_or_mismatching_alipay_callbacks_never_mark_anything_paid() {
    let app = spawn_app().await;
    let no = order_no(&app.donate("10.00", "alipay").await);
    let alipay = app.state.sandbox.clone().unwrap().alipay;
    let form = |app_id: &str, order: &str, amount: &str| {
        alipay.sign_form(&[
            ("notify_type", "trade_status_sync"),
            ("notify_id", "ntf-x"),
            ("notify_time", "2026-11-21 22:01:03"),
            ("app_id", app_id),
            ("trade_no", "2026112122001400000000000009"),
            ("out_trade_no", order),
            ("seller_id", alipay.seller_id()),
            ("trade_status", "TRADE_SUCCESS"),
            ("total_amount", amount),
            ("gmt_payment", "2026-11-21 22:01:02"),
        ])
    };
    let genuine = form(alipay.app_id(), &no, "10.00");
    let tampered = String::from_utf8(genuine.clone())
        .unwrap()
        .replace("total_amount=10.00", "total_amount=0.01")
        .into_bytes();
    assert_ne!(tampered, genuine);
    assert_eq!(post_alipay(&app, tampered).await.text(), "fail");
    assert_eq!(
        post_alipay(&app, form("2021000000009999", &no, "10.00")).await.text(),
        "fail"
    );
    assert_eq!(
        post_alipay(&app, form(alipay.app_id(), &no, "9.99")).await.text(),
        "fail"
    );
    assert_eq!(
        post_alipay(&app, form(alipay.app_id(), "0000000000000000000000000000beef", "10.00"))
            .await
            .text(),
        "fail"
    );
    assert_eq!(post_alipay(&app, b"not=a&signed=form".to_vec()).await.text(), "fail");
    assert_eq!(paid_events(&app, &no).await, 0);
    assert_eq!(
        app.get(&format!("/api/payments/{no}")).await.json()["status"],
        "pending"
    );

    assert_eq!(post_alipay(&app, genuine).await.text(), "success");
    assert_eq!(paid_events(&app, &no).await, 1);
}

/// Makes the order due and expired, then runs one reconcile pass.
async fn expire(app: &TestApp, no: &str) {
    app.sql(&format!(
        "UPDATE payments SET expires_at = now() - interval '1 second', next_check_at = now() WHERE order_no = '{no}'"
    ))
    .await;
    reconcile::pass(&app.state.engine).await.expect("reconcile pass");
}

#[tokio::test]
async fn a_payment_after_the_order_closed_is_kept_as_paid_and_late() {
    let app = spawn_app().await;
    let no = order_no(&app.donate("15.00", "wechat").await);
    expire(&app, &no).await;
    assert_eq!(app.get(&format!("/api/payments/{no}")).await.json()["status"], "closed");
    let closed_event = app
        .count(&format!(
            "SELECT count(*) FROM payment_events WHERE order_no = '{no}' AND kind = 'closed'"
        ))
        .await;
    assert_eq!(closed_event, 1);

    // The payment raced the close at the provider and its callback arrives now.
    let wechat = app.state.sandbox.clone().unwrap().wechat;
    wechat.force_pay(&no).await.expect("delivered");
    let status = app.get(&format!("/api/payments/{no}")).await.json();
    assert_eq!(status["status"], "paid");
    assert_eq!(status["late"], true);
    let late = app
        .count(&format!(
            "SELECT count(*) FROM payment_events WHERE order_no = '{no}' AND kind = 'paid_late'"
        ))
        .await;
    assert_eq!(late, 1);
}

#[tokio::test]
async fn with_late_payment_refund_a_late_payment_is_refunded_automatically() {
    let app = spawn_app_with(|s| s.payments.late_payment = "refund".into()).await;
    let no = order_no(&app.donate("15.00", "alipay").await);
    expire(&app, &no).await;
    let alipay = app.state.sandbox.clone().unwrap().alipay;
    alipay.force_pay(&no).await.expect("delivered");
    let refunded = eventually(Duration::from_secs(5), || async {
        app.get(&format!("/api/payments/{no}")).await.json()["status"] == "refunded"
    })
    .await;
    assert!(refunded, "{}", app.get(&format!("/api/payments/{no}")).await.text());
    let status = app.get(&format!("/api/payments/{no}")).await.json();
    assert_eq!(status["refunded_fen"], 1500);
    assert_eq!(
        alipay.refunded_fen(&no),
        Some(1500),
        "the money went back at the provider"
    );
    let audit = app
        .count(&format!(
            "SELECT count(*) FROM refunds WHERE order_no = '{no}' AND status = 'succeeded' AND requested_by = 'late_payment_policy'"
        ))
        .await;
    assert_eq!(audit, 1);
}

#[tokio::test]
async fn partial_refunds_add_up_exactly_and_can_never_exceed_the_payment() {
    for channel in ["wechat", "alipay"] {
        let app = spawn_app().await;
        let no = order_no(&app.donate("100.00", channel).await);
        app.sandbox_pay(&no).await;
        let engine = &app.state.engine;

        engine.request_refund(&no, 3000, "partial", "test").await.unwrap();
        let settled = eventually(Duration::from_secs(5), || async {
            app.get(&format!("/api/payments/{no}")).await.json()["refunded_fen"] == 3000
        })
        .await;
        assert!(settled, "{channel}: the first refund never settled");
        let status = app.get(&format!("/api/payments/{no}")).await.json();
        assert_eq!(status["status"], "refunded");
        assert_eq!(status["refunded"], "30.00");

        // Two refunds racing for the remaining 70.00: only one fits.
        let (a, b) = tokio::join!(
            engine.request_refund(&no, 6000, "race a", "test"),
            engine.request_refund(&no, 6000, "race b", "test"),
        );
        assert!(
            a.is_ok() != b.is_ok(),
            "{channel}: exactly one of two 60.00 refunds fits in 70.00"
        );
        let over = engine.request_refund(&no, 1001, "too much", "test").await.unwrap_err();
        assert!(matches!(over, EngineError::RefundRefused(_)), "{over}");
        engine.request_refund(&no, 1000, "the rest", "test").await.unwrap();
        let all = eventually(Duration::from_secs(5), || async {
            app.get(&format!("/api/payments/{no}")).await.json()["refunded_fen"] == 10000
        })
        .await;
        assert!(all, "{channel}: refunds did not add up to the payment");
        let sum = app
            .count(&format!(
                "SELECT COALESCE(sum(amount_fen), 0)::bigint FROM refunds WHERE order_no = '{no}' AND status = 'succeeded'"
            ))
            .await;
        assert_eq!(sum, 10000);
        let none_left = engine.request_refund(&no, 1, "nothing left", "test").await.unwrap_err();
        assert!(matches!(none_left, EngineError::RefundRefused(_)));
    }
}

#[tokio::test]
async fn an_unpaid_order_cannot_be_refunded() {
    let app = spawn_app().await;
    let no = order_no(&app.donate("1.00", "wechat").await);
    let err = app
        .state
        .engine
        .request_refund(&no, 100, "x", "test")
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::RefundRefused(_)), "{err}");
    let err = app
        .state
        .engine
        .request_refund("nosuchorder1", 100, "x", "test")
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::UnknownOrder), "{err}");
}

#[tokio::test]
async fn a_trade_success_after_a_partial_refund_credits_nothing() {
    let app = spawn_app().await;
    let no = order_no(&app.donate("50.00", "alipay").await);
    app.sandbox_pay(&no).await;
    app.state
        .engine
        .request_refund(&no, 2000, "partial", "test")
        .await
        .unwrap();
    assert_eq!(
        app.get(&format!("/api/payments/{no}")).await.json()["refunded_fen"],
        2000
    );
    let alipay = app.state.sandbox.clone().unwrap().alipay;
    let after_refund = alipay.refund_notification(&no).unwrap();
    assert_eq!(post_alipay(&app, after_refund).await.text(), "success");
    let status = app.get(&format!("/api/payments/{no}")).await.json();
    assert_eq!(status["refunded_fen"], 2000);
    assert_eq!(status["status"], "refunded");
    assert_eq!(paid_events(&app, &no).await, 1);
}

#[tokio::test]
async fn the_reconcile_job_finds_a_payment_whose_callback_never_came() {
    let app = spawn_app().await;
    let no = order_no(&app.donate("33.00", "wechat").await);
    let wechat = app.state.sandbox.clone().unwrap().wechat;
    wechat.mark_paid(&no, false).unwrap();
    app.sql(&format!(
        "UPDATE payments SET next_check_at = now() WHERE order_no = '{no}'"
    ))
    .await;
    let report = reconcile::pass(&app.state.engine).await.unwrap();
    assert_eq!((report.queried, report.paid), (1, 1));
    assert_eq!(app.get(&format!("/api/payments/{no}")).await.json()["status"], "paid");
    let source = app
        .count(&format!(
            "SELECT count(*) FROM payment_events WHERE order_no = '{no}' AND kind = 'paid' AND source = 'reconcile'"
        ))
        .await;
    assert_eq!(source, 1);

    // The callback turning up later changes nothing.
    let (headers, body) = wechat.payment_notification(&no).unwrap();
    assert_eq!(post_wechat(&app, &headers, body).await.status, StatusCode::NO_CONTENT);
    assert_eq!(paid_events(&app, &no).await, 1);
}

#[tokio::test]
async fn an_expired_alipay_qr_that_was_never_paid_is_closed_here() {
    let app = spawn_app().await;
    let scanned = order_no(&app.donate("2.00", "alipay").await);
    let never_scanned = order_no(&app.donate("3.00", "alipay").await);
    app.state.sandbox.clone().unwrap().alipay.scan(&scanned).unwrap();
    expire(&app, &scanned).await;
    expire(&app, &never_scanned).await;
    for no in [scanned, never_scanned] {
        assert_eq!(
            app.get(&format!("/api/payments/{no}")).await.json()["status"],
            "closed",
            "{no}"
        );
    }
}

#[tokio::test]
async fn reconcile_passes_on_several_instances_share_the_work_without_overlap() {
    let app = spawn_app().await;
    for _ in 0..12 {
        app.donate("1.00", "wechat").await;
    }
    app.sql("UPDATE payments SET next_check_at = now()").await;
    let engine = &app.state.engine;
    let (a, b, c) = tokio::join!(
        reconcile::pass(engine),
        reconcile::pass(engine),
        reconcile::pass(engine)
    );
    let queried = a.unwrap().queried + b.unwrap().queried + c.unwrap().queried;
    assert_eq!(
        queried, 12,
        "every due order queried exactly once across concurrent passes"
    );
    let rescheduled = app
        .count("SELECT count(*) FROM payments WHERE next_check_at > now() AND check_count = 1")
        .await;
    assert_eq!(rescheduled, 12);
}

#[tokio::test]
async fn with_the_database_down_callbacks_get_the_provider_failure_and_succeed_when_retried() {
    use zhifu::store::embedded::EmbeddedCluster;
    // A cluster of its own: this test stops it.
    let (cluster, options) = crate::helpers::own_cluster(crate::helpers::scratch_dir("callbacks-db-down")).await;
    let app = crate::helpers::spawn_app_on(cluster.pg_config("zhifu"), |_| {}).await;
    let wechat_no = order_no(&app.donate("6.00", "wechat").await);
    let alipay_no = order_no(&app.donate("7.00", "alipay").await);
    let sandbox = app.state.sandbox.clone().unwrap();
    sandbox.wechat.mark_paid(&wechat_no, false).unwrap();
    let (headers, body) = sandbox.wechat.payment_notification(&wechat_no).unwrap();
    let alipay_body = sandbox.alipay.sign_form(&[
        ("notify_type", "trade_status_sync"),
        ("notify_id", "ntf-down"),
        ("app_id", sandbox.alipay.app_id()),
        ("trade_no", "2026112122001400000000000077"),
        ("out_trade_no", &alipay_no),
        ("seller_id", sandbox.alipay.seller_id()),
        ("trade_status", "TRADE_SUCCESS"),
        ("total_amount", "7.00"),
        ("gmt_payment", "2026-11-21 22:01:02"),
    ]);

    let cluster = tokio::task::spawn_blocking(move || {
        cluster.stop(Duration::from_secs(5));
        cluster
    })
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let refused = post_wechat(&app, &headers, body.clone()).await;
    assert_eq!(refused.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(refused.json()["code"], "FAIL");
    assert_eq!(post_alipay(&app, alipay_body.clone()).await.text(), "fail");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered within the pool timeout"
    );

    drop(cluster);
    let _restarted = tokio::task::spawn_blocking(move || EmbeddedCluster::start(&options))
        .await
        .unwrap()
        .expect("cluster starts again");
    // The providers retry; now the effect is durable and acknowledged.
    let retried = eventually(Duration::from_secs(10), || async {
        post_wechat(&app, &headers, body.clone()).await.status == StatusCode::NO_CONTENT
    })
    .await;
    assert!(retried);
    assert_eq!(post_alipay(&app, alipay_body).await.text(), "success");
    assert_eq!(paid_events(&app, &wechat_no).await, 1);
    assert_eq!(paid_events(&app, &alipay_no).await, 1);
}

#[tokio::test]
async fn ten_concurrent_refunds_never_exceed_the_payment() {
    for channel in ["wechat", "alipay"] {
        let app = spawn_app().await;
        let no = order_no(&app.donate("100.00", channel).await);
        app.sandbox_pay(&no).await;
        let engine = &app.state.engine;
        let tries = (0..10).map(|i| engine.request_refund(&no, 2000, "race", if i % 2 == 0 { "a" } else { "b" }));
        let accepted = futures_util::future::join_all(tries)
            .await
            .into_iter()
            .filter(Result::is_ok)
            .count();
        assert_eq!(accepted, 5, "{channel}: five 20.00 refunds fit in 100.00");
        let queued = app
            .count(&format!(
                "SELECT COALESCE(sum(amount_fen), 0)::bigint FROM refunds WHERE order_no = '{no}'"
            ))
            .await;
        assert_eq!(queued, 10000, "{channel}");
    }
}
