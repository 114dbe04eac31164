//! Creating purchases through the engine (`begin` → reserve → `submit`) and cancelling them,
//! driven through the probe: a module error writes nothing, a provider failure holds
//! nothing, a create that dies before the provider answers is closed by the reconcile job (or
//! completed by its idempotent retry), and a buyer's cancel closes at the provider within its
//! rules — WeChat not sooner than 5 minutes after creation — with a payment racing it
//! refunded in full; a module's own refund commits or vanishes with its rows.

use std::time::Duration;

use http::StatusCode;
use zhifu::pay::close::Cancelled;
use zhifu::pay::engine::EngineError;
use zhifu::pay::provider::Channel;
use zhifu::pay::reconcile;
use zhifu::pay::refunds::NewRefund;
use zhifu::pay::sandbox::{Api, Fault};
use zhifu::probe::{self, Script};

use crate::helpers::eventually;
use crate::purposes::{available, buy, events, probe_app, probe_row, status_of};

#[tokio::test]
async fn a_module_error_before_submit_writes_nothing() {
    let app = probe_app().await;
    app.sql("UPDATE probe_stock SET available = 1").await;
    let refused = probe::buy(&app.state.engine, Channel::Wechat, 2, 500, &Script::default(), None).await;
    assert_eq!(refused.unwrap_err().code(), "sold_out");
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM payment_events").await, 0);
    assert_eq!(available(&app).await, 1);
    let wechat = app.state.sandbox.clone().unwrap().wechat;
    assert_eq!(wechat.order_count(), 0, "no provider order");
}

#[tokio::test]
async fn a_provider_failure_at_create_closes_the_payment_and_holds_nothing() {
    let app = probe_app().await;
    let wechat = app.state.sandbox.clone().unwrap().wechat;
    for fault in [
        Fault::Reject {
            code: "PARAM_ERROR".into(),
            message: "参数错误".into(),
        },
        Fault::ServerError,
    ] {
        wechat.faults().push_on(Api::Create, fault);
        let failed = probe::buy(&app.state.engine, Channel::Wechat, 3, 500, &Script::default(), None).await;
        assert_eq!(failed.unwrap_err().status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    let failed = app
        .count("SELECT count(*) FROM payments WHERE status = 'closed' AND code_url IS NULL")
        .await;
    assert_eq!(failed, 2, "written, then closed: only the audit stays");
    assert_eq!(
        app.count("SELECT count(*) FROM payment_events WHERE kind = 'create_failed'")
            .await,
        2
    );
    assert_eq!(
        app.count("SELECT count(*) FROM probe_purchases WHERE status = 'released' AND closed = 1")
            .await,
        2,
        "on_closed released each reservation once"
    );
    assert_eq!(available(&app).await, 1000);
}

#[tokio::test]
async fn a_create_that_dies_before_the_provider_answers_is_closed_by_reconcile_once() {
    let app = probe_app().await;
    let engine = &app.state.engine;
    let wechat = app.state.sandbox.clone().unwrap().wechat;
    // The provider never answers; the request is dropped (as if its process died) after the
    // commit, mid-call.
    wechat
        .faults()
        .push_on(Api::Create, Fault::Delay(Duration::from_secs(60)));
    let dropped = tokio::time::timeout(
        Duration::from_secs(2),
        probe::buy(engine, Channel::Wechat, 5, 500, &Script::default(), None),
    )
    .await;
    assert!(dropped.is_err(), "the create was still waiting on the provider");
    let (client, conn) = app.db.connect(tokio_postgres::NoTls).await.unwrap();
    let conn = tokio::spawn(conn);
    let no: String = client
        .query_one("SELECT order_no FROM payments WHERE code_url IS NULL", &[])
        .await
        .unwrap()
        .get(0);
    drop(client);
    let _ = conn.await;
    assert_eq!(available(&app).await, 995, "held by the committed reservation");

    // Meanwhile the order is pending with no QR code, and its pages cope.
    assert_eq!(status_of(&app, &no).await["status"], "pending");
    let qr = app.get(&format!("/api/payments/{no}/qr.png")).await;
    assert_eq!(
        (qr.status, qr.error_code()),
        (StatusCode::CONFLICT, "qr_not_ready".into())
    );
    let page = app.get(&format!("/pay/{no}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains(r#"id="qr-preparing""#));

    // The reconcile job leaves it alone during the create's lease, then closes it.
    assert_eq!(reconcile::pass(engine).await.unwrap().queried, 0);
    app.sql(&format!(
        "UPDATE payments SET next_check_at = now() WHERE order_no = '{no}'"
    ))
    .await;
    let report = reconcile::pass(engine).await.unwrap();
    assert_eq!(report.closed, 1, "{report:?}");
    assert_eq!(status_of(&app, &no).await["status"], "closed");
    assert_eq!(events(&app, &no, "create_abandoned").await, 1);
    let row = probe_row(&app, &no).await;
    assert_eq!((row.closed, row.status.as_str()), (1, "released"));
    assert_eq!(available(&app).await, 1000);
    assert_eq!(reconcile::pass(engine).await.unwrap().closed, 0, "closed once");
}

#[tokio::test]
async fn an_idempotent_retry_answers_the_purchase_made_before_and_completes_a_missing_qr() {
    let app = probe_app().await;
    let engine = &app.state.engine;
    let wechat = app.state.sandbox.clone().unwrap().wechat;
    let key_no = "0123456789abcdef0123456789abcdef".to_string();
    let first = probe::buy(
        engine,
        Channel::Wechat,
        2,
        500,
        &Script::default(),
        Some(key_no.clone()),
    )
    .await
    .unwrap();
    let again = probe::buy(
        engine,
        Channel::Wechat,
        2,
        500,
        &Script::default(),
        Some(key_no.clone()),
    )
    .await
    .unwrap();
    assert_eq!(first, again, "the same order, as it stands");
    assert_eq!(available(&app).await, 998, "reserved once");
    assert_eq!(wechat.order_count(), 1);

    // A first attempt that died mid provider call: its retry makes the provider order under
    // the same number and answers it with its QR code.
    let other = "fedcba9876543210fedcba9876543210".to_string();
    wechat
        .faults()
        .push_on(Api::Create, Fault::Delay(Duration::from_secs(60)));
    let dropped = tokio::time::timeout(
        Duration::from_secs(2),
        probe::buy(engine, Channel::Wechat, 1, 500, &Script::default(), Some(other.clone())),
    )
    .await;
    assert!(dropped.is_err());
    let retried = probe::buy(engine, Channel::Wechat, 1, 500, &Script::default(), Some(other.clone()))
        .await
        .unwrap();
    assert_eq!(retried.order_no, other);
    assert!(retried.code_url.starts_with("weixin://"), "{retried:?}");
    assert_eq!(available(&app).await, 997, "reserved once");
    let qr = app.get(&format!("/api/payments/{other}/qr.png")).await;
    assert_eq!(qr.status, StatusCode::OK);
    assert_eq!(app.sandbox_pay(&other).await.status, StatusCode::OK);
    assert_eq!(probe_row(&app, &other).await.paid, 1);
}

#[tokio::test]
async fn an_alipay_cancel_closes_at_once_and_a_later_payment_is_refunded_in_full() {
    let app = probe_app().await;
    let engine = &app.state.engine;
    let no = buy(&app, Channel::Alipay, 2, &Script::default()).await;
    assert_eq!(engine.cancel(&no).await.unwrap(), Cancelled::Closed);
    assert_eq!(events(&app, &no, "cancelled").await, 1);
    let row = probe_row(&app, &no).await;
    assert_eq!((row.closed, row.status.as_str()), (1, "released"));
    assert_eq!(available(&app).await, 1000);
    assert_eq!(engine.cancel(&no).await.unwrap(), Cancelled::AlreadyClosed);

    // The buyer scans the old QR code anyway and pays.
    let alipay = app.state.sandbox.clone().unwrap().alipay;
    alipay.force_pay(&no).await.unwrap();
    let refunded = eventually(Duration::from_secs(5), || async {
        status_of(&app, &no).await["refunded_fen"] == 1000
    })
    .await;
    assert!(refunded, "{}", status_of(&app, &no).await);
    let audited = app
        .count(&format!(
            "SELECT count(*) FROM refunds WHERE order_no = '{no}' AND requested_by = 'order_cancelled'"
        ))
        .await;
    assert_eq!(audited, 1);
    assert_eq!(alipay.refunded_fen(&no), Some(1000));
    let row = probe_row(&app, &no).await;
    assert_eq!((row.closed, row.paid, row.refunded), (1, 1, 1));
}

#[tokio::test]
async fn a_wechat_cancel_waits_for_the_five_minutes_and_a_payment_racing_it_is_refunded() {
    let app = probe_app().await;
    let engine = &app.state.engine;
    let wechat = app.state.sandbox.clone().unwrap().wechat;
    let closes = || wechat.faults().calls(Api::Close);

    // Within five minutes of its creation: pending-cancelled, WeChat not asked to close.
    let no = buy(&app, Channel::Wechat, 2, &Script::default()).await;
    let Cancelled::Closing { at } = engine.cancel(&no).await.unwrap() else {
        panic!("closed sooner than WeChat allows");
    };
    let wait = at - time::OffsetDateTime::now_utc();
    assert!(
        wait > time::Duration::minutes(4) && wait <= time::Duration::minutes(5),
        "{wait}"
    );
    assert_eq!(closes(), 0);
    assert_eq!(reconcile::pass(engine).await.unwrap().closed, 0);
    assert_eq!(status_of(&app, &no).await["status"], "pending");
    assert_eq!(events(&app, &no, "cancel_requested").await, 1);

    // A payment lands meanwhile: kept nowhere, refunded in full, once; nothing was released.
    assert_eq!(app.sandbox_pay(&no).await.status, StatusCode::OK);
    let refunded = eventually(Duration::from_secs(5), || async {
        status_of(&app, &no).await["refunded_fen"] == 1000
    })
    .await;
    assert!(refunded, "{}", status_of(&app, &no).await);
    assert_eq!(wechat.refund_count(&no), 1);
    let row = probe_row(&app, &no).await;
    assert_eq!((row.paid, row.closed, row.refunded), (1, 0, 1), "{row:?}");
    assert_eq!(row.status, "released", "on_paid saw the cancel and released the units");
    assert_eq!(engine.cancel(&no).await.unwrap(), Cancelled::Paid { refunding: true });

    // Cancelled, then the five minutes pass: the reconcile job closes it, once.
    let later = buy(&app, Channel::Wechat, 3, &Script::default()).await;
    assert!(matches!(
        engine.cancel(&later).await.unwrap(),
        Cancelled::Closing { .. }
    ));
    app.sql(&format!(
        "UPDATE payments SET created_at = created_at - interval '6 minutes', next_check_at = now() \
         WHERE order_no = '{later}'"
    ))
    .await;
    let report = reconcile::pass(engine).await.unwrap();
    assert_eq!(report.closed, 1, "{report:?}");
    assert_eq!(closes(), 1, "closed at WeChat first");
    assert_eq!(events(&app, &later, "cancelled").await, 1);
    assert_eq!(probe_row(&app, &later).await.closed, 1);

    // Cancelled after the five minutes: closed at once.
    let old = buy(&app, Channel::Wechat, 1, &Script::default()).await;
    app.sql(&format!(
        "UPDATE payments SET created_at = created_at - interval '6 minutes' WHERE order_no = '{old}'"
    ))
    .await;
    assert_eq!(engine.cancel(&old).await.unwrap(), Cancelled::Closed);
    assert_eq!(closes(), 2);
    assert_eq!(probe_row(&app, &old).await.closed, 1);
    assert_eq!(available(&app).await, 1000);
    let paid = engine.cancel(&no).await.unwrap();
    assert_eq!(paid, Cancelled::Paid { refunding: true });
}

#[tokio::test]
async fn a_module_refund_queued_in_its_own_transaction_commits_or_vanishes_with_its_rows() {
    let app = probe_app().await;
    let engine = &app.state.engine;
    let no = buy(&app, Channel::Wechat, 2, &Script::default()).await;
    assert_eq!(app.sandbox_pay(&no).await.status, StatusCode::OK);
    let refund = |amount_fen| NewRefund {
        order_no: &no,
        amount_fen,
        reason: "探针：售后 (after-sales)",
        requested_by: "purpose:probe",
        refund_no: None,
    };
    let mark = "UPDATE probe_purchases SET status = 'cancelled' WHERE order_no = $1";
    let mut client = engine.store.client().await.unwrap();

    // Rolled back with the module's rows: nothing queued, nothing sent.
    let tx = client.transaction().await.unwrap();
    engine.queue_refund_in(&tx, refund(1000)).await.unwrap();
    tx.execute(mark, &[&no]).await.unwrap();
    drop(tx);
    let refunds = format!("SELECT count(*) FROM refunds WHERE order_no = '{no}'");
    assert_eq!(app.count(&refunds).await, 0);

    // More than was paid: refused, in the module's transaction too.
    let tx = client.transaction().await.unwrap();
    let over = engine.queue_refund_in(&tx, refund(1001)).await;
    assert!(matches!(over, Err(EngineError::RefundRefused(_))), "{over:?}");
    drop(tx);

    // Committed with them: queued and audited once, sent after the commit, on_refunded once.
    let tx = client.transaction().await.unwrap();
    let refund_no = engine.queue_refund_in(&tx, refund(1000)).await.unwrap();
    tx.execute(mark, &[&no]).await.unwrap();
    tx.commit().await.unwrap();
    drop(client);
    assert_eq!(app.count(&refunds).await, 1);
    assert_eq!(events(&app, &no, "refund_requested").await, 1);
    engine.submit_refund(&refund_no).await.unwrap();
    let settled = eventually(Duration::from_secs(5), || async {
        status_of(&app, &no).await["refunded_fen"] == 1000
    })
    .await;
    assert!(settled, "{}", status_of(&app, &no).await);
    let row = probe_row(&app, &no).await;
    assert_eq!(
        (row.status.as_str(), row.refunded, row.refunded_fen),
        ("cancelled", 1, 1000)
    );
    assert_eq!(app.state.sandbox.clone().unwrap().wechat.refund_count(&no), 1);
}
