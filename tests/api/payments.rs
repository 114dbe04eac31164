//! Status, long-poll, QR, pay page and the sandbox flow: a donation turns paid through the
//! providers' real signed callbacks, seen at once by pollers on this and other instances.

use std::time::{Duration, Instant};

use http::StatusCode;

use crate::helpers::{eventually, spawn_app, spawn_app_on};

#[tokio::test]
async fn the_status_json_follows_the_contract_and_unknown_orders_are_404() {
    let app = spawn_app().await;
    let order = app.donate("12.34", "wechat").await;
    let no = order["order_no"].as_str().unwrap();
    let status = app.get(&format!("/api/payments/{no}")).await;
    assert_eq!(status.status, StatusCode::OK);
    assert_eq!(status.header("cache-control"), Some("no-store"));
    let json = status.json();
    assert_eq!(json["order_no"], no);
    assert_eq!(json["status"], "pending");
    assert_eq!(json["amount"], "12.34");
    assert_eq!(json["amount_fen"], 1234);
    assert_eq!(json["channel"], "wechat");
    assert!(json["paid_at"].is_null());
    assert_eq!(json["expires_at"], order["expires_at"]);

    let missing = app.get("/api/payments/0000000000000000000000000000dead").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error_code(), "not_found");
    for bad in ["?wait=0", "?wait=31", "?wait=abc", "?wait=-1"] {
        let answer = app.get(&format!("/api/payments/{no}{bad}")).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(answer.error_code(), "invalid_wait");
    }
}

#[tokio::test]
async fn cached_status_reads_touch_no_database() {
    let app = spawn_app().await;
    let order = app.donate("1", "alipay").await;
    let no = order["order_no"].as_str().unwrap();
    let before = app.state.store.checkouts();
    for _ in 0..50 {
        assert_eq!(app.get(&format!("/api/payments/{no}")).await.status, StatusCode::OK);
    }
    assert_eq!(
        app.state.store.checkouts(),
        before,
        "a cached status read took a database connection"
    );
}

#[tokio::test]
async fn sandbox_pay_sends_the_real_callback_and_the_order_turns_paid_with_an_audit_trail() {
    for channel in ["wechat", "alipay"] {
        let app = spawn_app().await;
        let order = app.donate("88.80", channel).await;
        let no = order["order_no"].as_str().unwrap();
        let paid = app.sandbox_pay(no).await;
        assert_eq!(paid.status, StatusCode::OK, "{channel}: {}", paid.text());
        assert_eq!(paid.json()["status"], "paid", "{channel}");

        let status = app.get(&format!("/api/payments/{no}")).await.json();
        assert_eq!(status["status"], "paid");
        assert!(status["paid_at"].as_str().unwrap().ends_with("+08:00"), "{status}");
        assert!(status.get("late").is_none());
        let row = app
            .count(&format!(
                "SELECT count(*) FROM payments WHERE order_no = '{no}' AND status = 'paid'
                    AND transaction_id IS NOT NULL AND paid_at IS NOT NULL AND NOT late"
            ))
            .await;
        assert_eq!(row, 1, "{channel}");
        let events = app
            .count(&format!(
                "SELECT count(*) FROM payment_events WHERE order_no = '{no}' AND kind = 'paid' AND source = 'callback'"
            ))
            .await;
        assert_eq!(events, 1, "{channel}");
        let inbox = app
            .count(&format!(
                "SELECT count(*) FROM callback_inbox WHERE order_no = '{no}' AND accepted AND channel = '{channel}'"
            ))
            .await;
        assert_eq!(inbox, 1, "{channel}");

        // Paying again (the emulator refuses, or re-delivers the same callback) changes nothing.
        let again = app.sandbox_pay(no).await;
        assert!(matches!(again.status.as_u16(), 200 | 409), "{}", again.text());
        let events = app
            .count(&format!(
                "SELECT count(*) FROM payment_events WHERE order_no = '{no}' AND kind LIKE 'paid%'"
            ))
            .await;
        assert_eq!(events, 1);
    }
}

#[tokio::test]
async fn a_long_poll_wakes_within_100_ms_of_the_callback_being_answered() {
    let app = spawn_app().await;
    let order = app.donate("5", "wechat").await;
    let no = order["order_no"].as_str().unwrap().to_string();
    let url = format!("/api/payments/{no}?wait=20");
    let poll = {
        let app_url = app.url(&url);
        tokio::spawn(async move {
            let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Full<bytes::Bytes>>();
            let response = client.get(app_url.parse().unwrap()).await.unwrap();
            let answered = Instant::now();
            let body = http_body_util::BodyExt::collect(response.into_body())
                .await
                .unwrap()
                .to_bytes();
            (answered, serde_json::from_slice::<serde_json::Value>(&body).unwrap())
        })
    };
    assert!(
        eventually(Duration::from_secs(5), || async {
            app.state.engine.status.waiting_orders() == 1
        })
        .await,
        "the poll never parked"
    );
    let paid = app.sandbox_pay(&no).await;
    let acknowledged = Instant::now();
    assert_eq!(paid.status, StatusCode::OK);
    let (answered, json) = poll.await.unwrap();
    assert_eq!(json["status"], "paid");
    let lag = answered.saturating_duration_since(acknowledged);
    assert!(
        lag < Duration::from_millis(100),
        "the long-poll answered {lag:?} after the callback"
    );
}

#[tokio::test]
async fn a_second_instance_on_the_same_database_sees_the_payment_and_wakes_its_pollers() {
    let a = spawn_app().await;
    let b = spawn_app_on(a.db.clone(), |_| {}).await;
    assert!(eventually(Duration::from_secs(5), || async { b.state.events.is_connected() }).await);
    let order = a.donate("9.99", "alipay").await;
    let no = order["order_no"].as_str().unwrap().to_string();
    assert_eq!(b.get(&format!("/api/payments/{no}")).await.json()["status"], "pending");

    let waiting = {
        let url = b.url(&format!("/api/payments/{no}?wait=20"));
        tokio::spawn(async move {
            let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Full<bytes::Bytes>>();
            let response = client.get(url.parse().unwrap()).await.unwrap();
            let body = http_body_util::BodyExt::collect(response.into_body())
                .await
                .unwrap()
                .to_bytes();
            serde_json::from_slice::<serde_json::Value>(&body).unwrap()
        })
    };
    assert!(
        eventually(Duration::from_secs(5), || async {
            b.state.engine.status.waiting_orders() == 1
        })
        .await
    );
    assert_eq!(a.sandbox_pay(&no).await.status, StatusCode::OK);
    let woken = tokio::time::timeout(Duration::from_secs(1), waiting)
        .await
        .expect("instance B's poller woke within 1 s")
        .unwrap();
    assert_eq!(woken["status"], "paid");
    assert_eq!(b.get(&format!("/api/payments/{no}")).await.json()["status"], "paid");
}

#[tokio::test]
async fn shutdown_answers_parked_polls() {
    let app = spawn_app().await;
    let order = app.donate("1", "wechat").await;
    let no = order["order_no"].as_str().unwrap().to_string();
    let url = app.url(&format!("/api/payments/{no}?wait=30"));
    let poll = tokio::spawn(async move {
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http::<http_body_util::Full<bytes::Bytes>>();
        let response = client.get(url.parse().unwrap()).await.unwrap();
        response.status()
    });
    assert!(
        eventually(Duration::from_secs(5), || async {
            app.state.engine.status.waiting_orders() == 1
        })
        .await
    );
    let started = Instant::now();
    app.shutdown().await;
    let status = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .expect("answered")
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn the_qr_png_decodes_to_the_code_url_and_the_svg_is_served() {
    let app = spawn_app().await;
    let order = app.donate("3", "wechat").await;
    let no = order["order_no"].as_str().unwrap();
    let png = app.get(&format!("/api/payments/{no}/qr.png")).await;
    assert_eq!(png.status, StatusCode::OK);
    assert_eq!(png.header("content-type"), Some("image/png"));
    let image = image::load_from_memory(&png.body).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1);
    let (_, content) = grids[0].decode().unwrap();
    assert_eq!(content, order["code_url"].as_str().unwrap());

    let svg = app.get(&format!("/api/payments/{no}/qr.svg")).await;
    assert_eq!(svg.header("content-type"), Some("image/svg+xml"));
    assert!(svg.text().contains("<svg"));
    assert_eq!(
        app.get("/api/payments/nosuchorder1/qr.png").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_pay_page_carries_the_status_and_the_sandbox_button() {
    let app = spawn_app().await;
    let order = app.donate("66.60", "alipay").await;
    let no = order["order_no"].as_str().unwrap();
    let page = app.get(&format!("/pay/{no}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(html.contains("id=\"payment-status\""), "{html}");
    assert!(html.contains("data-status=\"pending\""));
    assert!(html.contains("66.60"));
    assert!(html.contains(&format!("/api/payments/{no}/qr.png")));
    assert!(html.contains("id=\"simulate-payment\""), "sandbox button missing");
    assert!(html.contains("/static/pay.js?v="));

    app.sandbox_pay(no).await;
    let html = app.get(&format!("/pay/{no}")).await.text();
    assert!(html.contains("data-status=\"paid\""));
    assert_eq!(app.get("/pay/nosuchorder1").await.status, StatusCode::NOT_FOUND);
}
