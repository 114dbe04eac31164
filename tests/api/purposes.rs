//! Purposes on the pay engine, driven through the probe (`zhifu::probe`): every hook runs
//! exactly once under twenty concurrent duplicate callbacks, a close racing a payment (both
//! orders and at once, 60 times) releases once and refunds the late payment, `on_paid`
//! answering `Refund` ends in one provider refund, and a failing hook leaves the payment paid
//! while its step waits in the outbox, listed for operators, until a retry applies it once.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use zhifu::account::Role;
use zhifu::pay::close::CloseKind;
use zhifu::pay::provider::{Channel, RefundState};
use zhifu::pay::reconcile;
use zhifu::probe::{self, Script};

use crate::admin::{call, sign_in};
use crate::helpers::{TestApp, eventually, spawn_app};

/// The probe's row of an order: how often each hook ran, and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeRow {
    pub paid: i32,
    pub closed: i32,
    pub refunded: i32,
    pub refunded_fen: i64,
    pub status: String,
    pub late: bool,
}

/// An app in the sandbox with the probe's tables (1000 units in stock).
pub async fn probe_app() -> TestApp {
    let app = spawn_app().await;
    app.sql(probe::SCHEMA).await;
    app
}

pub async fn probe_row(app: &TestApp, order_no: &str) -> ProbeRow {
    let (client, conn) = app.db.connect(tokio_postgres::NoTls).await.unwrap();
    let conn = tokio::spawn(conn);
    let row = client
        .query_one(
            "SELECT paid, closed, refunded, refunded_fen, status, late FROM probe_purchases WHERE order_no = $1",
            &[&order_no],
        )
        .await
        .expect("a probe row");
    drop(client);
    let _ = conn.await;
    ProbeRow {
        paid: row.get(0),
        closed: row.get(1),
        refunded: row.get(2),
        refunded_fen: row.get(3),
        status: row.get(4),
        late: row.get(5),
    }
}

/// Units left in the probe's stock.
pub async fn available(app: &TestApp) -> i64 {
    app.count("SELECT available::bigint FROM probe_stock WHERE id = 1")
        .await
}

pub async fn status_of(app: &TestApp, order_no: &str) -> serde_json::Value {
    app.get(&format!("/api/payments/{order_no}")).await.json()
}

pub async fn events(app: &TestApp, order_no: &str, kind: &str) -> i64 {
    app.count(&format!(
        "SELECT count(*) FROM payment_events WHERE order_no = '{order_no}' AND kind = '{kind}'"
    ))
    .await
}

pub async fn buy(app: &TestApp, channel: Channel, units: i32, script: &Script) -> String {
    probe::buy(&app.state.engine, channel, units, 500, script, None)
        .await
        .expect("the probe purchase is created")
        .order_no
}

#[tokio::test]
async fn every_hook_runs_exactly_once_under_twenty_concurrent_duplicate_callbacks() {
    let app = probe_app().await;
    let engine = &app.state.engine;
    let no = buy(&app, Channel::Wechat, 2, &Script::default()).await;
    assert_eq!(available(&app).await, 998, "two units reserved at create");

    // Twenty copies of the signed notification at once.
    let wechat = app.state.sandbox.clone().unwrap().wechat;
    wechat.mark_paid(&no, false).unwrap();
    let (headers, body) = wechat.payment_notification(&no).unwrap();
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    let copies = (0..20).map(|_| {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let body = Bytes::from(body.clone());
        let app = &app;
        async move { app.request(Method::POST, "/notify/wechat", &headers, body).await.status }
    });
    let answers = futures_util::future::join_all(copies).await;
    assert!(answers.iter().all(|s| s.is_success()), "{answers:?}");
    assert_eq!(status_of(&app, &no).await["status"], "paid");
    assert_eq!(events(&app, &no, "paid").await, 1);
    assert_eq!(probe_row(&app, &no).await.paid, 1, "on_paid ran once");

    // A refund, then twenty concurrent copies of its success.
    let refund_no = engine.request_refund(&no, 400, "partial", "test").await.unwrap();
    let settled = eventually(Duration::from_secs(5), || async {
        status_of(&app, &no).await["refunded_fen"] == 400
    })
    .await;
    assert!(settled, "{}", status_of(&app, &no).await);
    let success = RefundState::Succeeded {
        refund_id: "again".into(),
    };
    let copies = (0..20).map(|_| engine.apply_refund_state(Channel::Wechat, &no, &refund_no, &success, None, "test"));
    for applied in futures_util::future::join_all(copies).await {
        applied.unwrap();
    }
    let row = probe_row(&app, &no).await;
    assert_eq!((row.refunded, row.refunded_fen), (1, 400), "on_refunded ran once");

    // Twenty closes of another order at once.
    let other = buy(&app, Channel::Alipay, 3, &Script::default()).await;
    assert_eq!(available(&app).await, 995);
    let closes = (0..20).map(|_| engine.close_order(&other, Channel::Alipay, CloseKind::Expired));
    for closed in futures_util::future::join_all(closes).await {
        closed.unwrap();
    }
    assert_eq!(status_of(&app, &other).await["status"], "closed");
    assert_eq!(events(&app, &other, "closed").await, 1);
    let row = probe_row(&app, &other).await;
    assert_eq!((row.closed, row.status.as_str()), (1, "released"), "on_closed ran once");
    assert_eq!(available(&app).await, 998, "its three units are back, once");
}

/// How the payment and the close of one order meet.
#[derive(Debug, Clone, Copy)]
enum Race {
    CloseFirst,
    PayFirst,
    AtOnce,
}

#[tokio::test]
async fn a_close_racing_a_payment_releases_once_and_refunds_a_payment_that_lands_after_it() {
    const ROUNDS: usize = 60;
    let app = probe_app().await;
    let engine = &app.state.engine;
    let sandbox = app.state.sandbox.clone().unwrap();
    let mut orders = Vec::new();
    for round in 0..ROUNDS {
        let channel = if round % 2 == 0 {
            Channel::Wechat
        } else {
            Channel::Alipay
        };
        let race = [Race::CloseFirst, Race::PayFirst, Race::AtOnce][round % 3];
        let no = buy(&app, channel, 1, &Script::default()).await;
        // The provider takes the payment even if the close got there first (it raced it).
        let pay = async {
            match channel {
                Channel::Wechat => sandbox.wechat.force_pay(&no).await,
                Channel::Alipay => sandbox.alipay.force_pay(&no).await,
            }
        };
        let close = engine.close_order(&no, channel, CloseKind::Expired);
        match race {
            Race::CloseFirst => {
                close.await.unwrap();
                pay.await.unwrap();
            }
            Race::PayFirst => {
                pay.await.unwrap();
                close.await.unwrap();
            }
            Race::AtOnce => {
                let (closed, paid) = tokio::join!(close, pay);
                closed.unwrap();
                paid.unwrap();
            }
        }
        orders.push((no, channel, race));
    }

    let mut kept = 0;
    for (no, channel, race) in &orders {
        let settled = eventually(Duration::from_secs(5), || async {
            let status = status_of(&app, no).await;
            status["status"] == "paid" || status["refunded_fen"] == 500
        })
        .await;
        let status = status_of(&app, no).await;
        assert!(settled, "{race:?} {channel:?}: {status}");
        let row = probe_row(&app, no).await;
        let refunds = app
            .count(&format!("SELECT count(*) FROM refunds WHERE order_no = '{no}'"))
            .await;
        assert_eq!(events(&app, no, "paid").await + events(&app, no, "paid_late").await, 1);
        if status["late"] == true {
            // Closed first: released once, then the late payment refunded in full, once.
            assert_eq!((row.closed, row.paid, row.late), (1, 1, true), "{race:?}: {row:?}");
            assert_eq!(row.status, "released");
            assert_eq!(refunds, 1, "{race:?}: one refund");
            let at_provider = match channel {
                Channel::Wechat => sandbox.wechat.refunded_fen(no),
                Channel::Alipay => sandbox.alipay.refunded_fen(no).unwrap_or(0),
            };
            assert_eq!(at_provider, 500, "{race:?}: the money went back");
        } else {
            // Paid first: kept, never released.
            assert_eq!(
                (row.closed, row.paid, row.status.as_str()),
                (0, 1, "paid"),
                "{race:?}: {row:?}"
            );
            assert_eq!(refunds, 0);
            kept += 1;
        }
        assert!(matches!(race, Race::AtOnce) || (status["late"] == true) == matches!(race, Race::CloseFirst));
    }
    // Every unit is either sold (kept) or back in stock, exactly.
    assert_eq!(available(&app).await, 1000 - kept);
}

#[tokio::test]
async fn on_paid_answering_refund_ends_refunded_with_one_provider_refund() {
    for channel in [Channel::Wechat, Channel::Alipay] {
        let app = probe_app().await;
        let refuse = Script {
            refuse: true,
            ..Script::default()
        };
        let no = buy(&app, channel, 4, &refuse).await;
        assert_eq!(app.sandbox_pay(&no).await.status, StatusCode::OK);
        let refunded = eventually(Duration::from_secs(5), || async {
            status_of(&app, &no).await["refunded_fen"] == 2000
        })
        .await;
        let status = status_of(&app, &no).await;
        assert!(refunded, "{channel:?}: {status}");
        assert_eq!(status["status"], "refunded");
        let sandbox = app.state.sandbox.clone().unwrap();
        match channel {
            Channel::Wechat => assert_eq!(sandbox.wechat.refund_count(&no), 1),
            Channel::Alipay => assert_eq!(sandbox.alipay.refunded_fen(&no), Some(2000)),
        }
        let audited = app
            .count(&format!(
                "SELECT count(*) FROM refunds WHERE order_no = '{no}' AND status = 'succeeded' \
                 AND requested_by = 'purpose:probe' AND amount_fen = 2000"
            ))
            .await;
        assert_eq!(audited, 1, "{channel:?}: one audited full refund");
        assert_eq!(events(&app, &no, "refund_requested").await, 1);
        let row = probe_row(&app, &no).await;
        assert_eq!((row.paid, row.refunded, row.refunded_fen), (1, 1, 2000), "{row:?}");
    }
}

/// The reconcile report's purpose steps, as the admin API lists them.
async fn listed_steps(app: &TestApp, token: &str) -> Vec<serde_json::Value> {
    let report = call(app, token, Method::GET, "/api/admin/reconcile", None).await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.text());
    report.json()["purpose_steps"].as_array().unwrap().clone()
}

/// Makes every waiting step due and runs one reconcile pass.
async fn retry_now(app: &TestApp) -> reconcile::PassReport {
    app.sql("UPDATE purpose_outbox SET next_attempt_at = now() WHERE done_at IS NULL")
        .await;
    reconcile::pass(&app.state.engine).await.expect("reconcile pass")
}

#[tokio::test]
async fn a_failing_hook_leaves_the_payment_paid_and_its_step_is_retried_from_the_outbox_once() {
    let app = probe_app().await;
    let token = sign_in(&app, "ops", Role::Admin).await;
    let failing = Script {
        fail: vec!["paid".into(), "refunded".into()],
        ..Script::default()
    };
    let no = buy(&app, Channel::Wechat, 2, &failing).await;
    assert_eq!(app.sandbox_pay(&no).await.status, StatusCode::OK);

    // The money stands; the module's step waits, and operators see it.
    assert_eq!(status_of(&app, &no).await["status"], "paid");
    assert_eq!(
        probe_row(&app, &no).await.paid,
        0,
        "the failed step's writes were rolled back"
    );
    let steps = listed_steps(&app, &token).await;
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert_eq!(
        (steps[0]["order_no"].as_str(), steps[0]["step"].as_str()),
        (Some(no.as_str()), Some("paid"))
    );
    assert!(
        steps[0]["last_error"].as_str().unwrap().contains("told to fail"),
        "{steps:?}"
    );
    let page = call(&app, &token, Method::GET, "/admin", None).await.text();
    assert!(
        page.contains(r#"<strong id="stat-purpose-steps">1</strong>"#),
        "the dashboard counts it"
    );

    // A refund meanwhile: its step queues behind the waiting one, never before it.
    app.state
        .engine
        .request_refund(&no, 300, "partial", "test")
        .await
        .unwrap();
    let settled = eventually(Duration::from_secs(5), || async {
        status_of(&app, &no).await["refunded_fen"] == 300
    })
    .await;
    assert!(settled);
    assert_eq!(listed_steps(&app, &token).await.len(), 2);
    assert_eq!(probe_row(&app, &no).await.refunded, 0);

    // Retried while still failing: nothing applied, tried again later.
    let report = retry_now(&app).await;
    assert_eq!(
        (report.purpose_steps, report.purpose_steps_failed),
        (0, 1),
        "{report:?}"
    );
    let attempts = app
        .count(&format!(
            "SELECT attempts::bigint FROM purpose_outbox WHERE order_no = '{no}' AND step = 'paid'"
        ))
        .await;
    assert_eq!(attempts, 2);

    // Fixed: both steps apply, in order, once.
    app.sql(&format!(
        "UPDATE probe_purchases SET fail = '{{}}' WHERE order_no = '{no}'"
    ))
    .await;
    let report = retry_now(&app).await;
    assert_eq!(report.purpose_steps, 2, "{report:?}");
    let row = probe_row(&app, &no).await;
    assert_eq!((row.paid, row.refunded, row.refunded_fen), (1, 1, 300), "{row:?}");
    assert_eq!(retry_now(&app).await.purpose_steps, 0);
    assert_eq!(probe_row(&app, &no).await.paid, 1, "applied once");
    assert!(listed_steps(&app, &token).await.is_empty());
    let backlog = app
        .count(&format!(
            "SELECT purpose_backlog::bigint FROM payments WHERE order_no = '{no}'"
        ))
        .await;
    assert_eq!(backlog, 0);
    assert_eq!(
        status_of(&app, &no).await["status"],
        "refunded",
        "the money was never touched"
    );
}

#[tokio::test]
async fn a_refund_verdict_given_on_a_retry_is_queued_and_made_once() {
    let app = probe_app().await;
    let script = Script {
        refuse: true,
        fail: vec!["paid".into()],
        ..Script::default()
    };
    let no = buy(&app, Channel::Alipay, 1, &script).await;
    assert_eq!(app.sandbox_pay(&no).await.status, StatusCode::OK);
    assert_eq!(status_of(&app, &no).await["status"], "paid");
    let refunds = format!("SELECT count(*) FROM refunds WHERE order_no = '{no}'");
    assert_eq!(app.count(&refunds).await, 0, "no verdict yet");

    app.sql(&format!(
        "UPDATE probe_purchases SET fail = '{{}}' WHERE order_no = '{no}'"
    ))
    .await;
    assert_eq!(retry_now(&app).await.purpose_steps, 1);
    let refunded = eventually(Duration::from_secs(5), || async {
        status_of(&app, &no).await["refunded_fen"] == 500
    })
    .await;
    assert!(refunded, "{}", status_of(&app, &no).await);
    assert_eq!(app.count(&refunds).await, 1);
    let alipay = app.state.sandbox.clone().unwrap().alipay;
    assert_eq!(alipay.refunded_fen(&no), Some(500));
    let row = probe_row(&app, &no).await;
    assert_eq!((row.paid, row.refunded), (1, 1));
}
