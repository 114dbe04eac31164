//! A mall refund the provider refuses for good: the order goes back to where the buyer's
//! request found it (with a `refund_failed` step in its timeline and a notice to the buyer),
//! the money and the stock stay, and the refund can be asked for and approved again — that
//! second refund goes through and ends the order `refunded` with its stock back.

use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::json;
use zhifu::account::Role;
use zhifu::pay::sandbox::{Api, Fault};

use crate::admin::{call, sign_in};
use crate::helpers::{TestApp, eventually, spawn_app};
use crate::mall_orders::{buyers, checkout, goods, order_no};

async fn one(app: &TestApp, sql: &str) -> String {
    let (client, conn) = app.db.connect(tokio_postgres::NoTls).await.unwrap();
    let conn = tokio::spawn(conn);
    let value: String = client.query_one(sql, &[]).await.unwrap().get(0);
    drop(client);
    let _ = conn.await;
    value
}

async fn ask_refund(app: &TestApp, token: &str, no: &str) {
    let asked = call(
        app,
        token,
        Method::POST,
        &format!("/api/mall/orders/{no}/refund-request"),
        Some(json!({"reason": "不想要了"})),
    )
    .await;
    assert_eq!(asked.json()["status"], "refunding", "{}", asked.text());
}

async fn approve(app: &TestApp, token: &str, no: &str) -> serde_json::Value {
    let approved = call(
        app,
        token,
        Method::POST,
        &format!("/api/merchant/orders/{no}/refund"),
        Some(json!({"approve": true})),
    )
    .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.text());
    approved.json()
}

#[tokio::test]
async fn a_refund_refused_for_good_puts_the_order_back_and_a_second_approval_refunds_it() {
    let app = spawn_app().await;
    let (_, _merchant, sku) = goods(&app, "台灯", "80.00", 10).await;
    let admin = sign_in(&app, "admin2", Role::Admin).await;
    let (buyer_id, token, address) = buyers(&app, "rff", 1).await.remove(0);
    let wechat = app.state.sandbox.clone().unwrap().wechat;
    let no = order_no(&checkout(&app, &token, sku, 2, address, None, "wechat").await);
    assert_eq!(app.sandbox_pay(&no).await.status, StatusCode::OK);
    let status = format!("SELECT status FROM mall_orders WHERE order_no = '{no}'");
    assert!(eventually(Duration::from_secs(5), || async { one(&app, &status).await == "paid" }).await);
    ask_refund(&app, &token, &no).await;

    // The provider refuses the refund with a final code and its books hold none: failed.
    wechat.faults().push_on(
        Api::Refund,
        Fault::Reject {
            code: "NOT_ENOUGH".into(),
            message: "余额不足".into(),
        },
    );
    let answered = approve(&app, &admin, &no).await;
    assert_eq!(answered["status"], "paid", "the order is back where it was: {answered}");
    assert_eq!(one(&app, &status).await, "paid");
    let failed = format!("SELECT count(*) FROM refunds WHERE order_no = '{no}' AND status = 'failed'");
    assert_eq!(app.count(&failed).await, 1);
    assert_eq!(wechat.refunded_fen(&no), 0, "no money moved");
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM mall_order_events WHERE order_no = '{no}' AND kind = 'refund_failed'
                AND from_status = 'refunding' AND to_status = 'paid'"
        ))
        .await,
        1,
        "the timeline says the refund failed"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM mall_orders WHERE order_no = '{no}' AND refund_no IS NULL"
        ))
        .await,
        1,
        "the failed refund's number is no longer the order's"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM notifications WHERE recipient_id = {buyer_id} AND kind = 'refund'
                AND dedupe_key LIKE 'refund_failed:%' AND text LIKE '%未能完成%'"
        ))
        .await,
        1,
        "the buyer is told"
    );
    assert_eq!(
        app.count(&format!("SELECT stock FROM mall_skus WHERE id = {sku}"))
            .await,
        8,
        "the goods are still sold"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM purpose_outbox WHERE order_no = '{no}' AND done_at IS NULL"
        ))
        .await,
        0,
        "the hook ran in the refund's transaction"
    );

    // Asked and approved again: a new refund number, and this time the money goes back.
    ask_refund(&app, &token, &no).await;
    approve(&app, &admin, &no).await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            one(&app, &status).await == "refunded"
        })
        .await,
        "the second refund went through"
    );
    assert_eq!(wechat.refunded_fen(&no), 16000);
    assert_eq!(app.count(&failed).await, 1, "exactly one failed refund");
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM refunds WHERE order_no = '{no}' AND status = 'succeeded'"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count(&format!("SELECT stock FROM mall_skus WHERE id = {sku}"))
            .await,
        10,
        "nothing shipped: the stock is back"
    );
    app.shutdown().await;
}
