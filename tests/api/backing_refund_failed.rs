//! A backing's refund the provider refuses for good: nothing of the backing or its project
//! moved when the refund was asked, so nothing moves back — the backing stays counted, the
//! money stays, `raised` and `backers` stay exact beside a refund of the same settlement that
//! went through — while the project's cached detail turns the refund from pending to failed
//! on its own (no TTL wait), the audit log says so and the backer is told. A refund asked
//! again later goes through and the numbers follow it.

use std::time::Duration;

use http::StatusCode;
use serde_json::{Value, json};
use zhifu::account::Role;
use zhifu::crowdfunding::settlement;
use zhifu::pay::sandbox::{Api, Fault};

use crate::admin::sign_in;
use crate::backings::back_and_pay;
use crate::helpers::{TestApp, eventually, spawn_app_with};
use crate::settlement::{by_hand, end_now, project};

async fn text(app: &TestApp, sql: &str) -> String {
    let (client, conn) = app.db.connect(tokio_postgres::NoTls).await.unwrap();
    let conn = tokio::spawn(conn);
    let value: String = client.query_one(sql, &[]).await.unwrap().get(0);
    drop(client);
    let _ = conn.await;
    value
}

/// The public detail as served: from the module's cache when it holds it.
async fn served(app: &TestApp, id: i64) -> Value {
    let answer = app.get(&format!("/api/projects/{id}")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    answer.json()
}

/// `(raised_fen, backers, refunds_pending, refunds_failed)` of the served detail.
async fn numbers(app: &TestApp, id: i64) -> (Value, Value, Value, Value) {
    let p = served(app, id).await;
    let s = &p["settlement"];
    (
        p["raised_fen"].clone(),
        p["backers"].clone(),
        s["refunds_pending"].clone(),
        s["refunds_failed"].clone(),
    )
}

#[tokio::test]
async fn a_settlement_refund_refused_for_good_leaves_the_backing_counted_and_tells_the_backer() {
    let app = spawn_app_with(by_hand).await;
    let owner = sign_in(&app, "owner", Role::User).await;
    let admin = sign_in(&app, "admin", Role::Admin).await;
    let (first, second) = (
        sign_in(&app, "backer_a", Role::User).await,
        sign_in(&app, "backer_b", Role::User).await,
    );
    let id = project(&app, &owner, &admin, &["100.00"], "refund").await;
    let a = back_and_pay(&app, &first, id, json!({"amount": "30.00", "channel": "wechat"})).await;
    let b = back_and_pay(&app, &second, id, json!({"amount": "20.00", "channel": "alipay"})).await;
    let wechat = app.state.sandbox.clone().unwrap().wechat;

    // Below its goal at the deadline: both are refunded in full. A's first attempt meets a
    // provider error (still processing); B's goes through.
    end_now(&app, id).await;
    wechat.faults().push_on(Api::Refund, Fault::ServerError);
    let pass = settlement::pass(&app.state).await.unwrap();
    assert_eq!((pass.settled, pass.refunds_sent), (1, 2));
    let refund_a = text(
        &app,
        &format!("SELECT refund_no FROM refunds WHERE order_no = '{a}' AND status = 'processing'"),
    )
    .await;
    let expected = (json!(3000), json!(1), json!(1), json!(0));
    assert!(
        eventually(Duration::from_secs(5), || async { numbers(&app, id).await == expected }).await,
        "B's refund lowered the progress; A's is pending: {:?}",
        numbers(&app, id).await
    );
    // That detail is now what the cache holds.

    // The reconcile job's look at A's refund: the provider refuses it for good, its books
    // have none.
    wechat.faults().push_on(
        Api::Refund,
        Fault::Reject {
            code: "NOT_ENOUGH".into(),
            message: "余额不足".into(),
        },
    );
    app.state.engine.check_refund(&refund_a).await.unwrap();
    let failed = format!("SELECT count(*) FROM refunds WHERE refund_no = '{refund_a}' AND status = 'failed'");
    assert_eq!(app.count(&failed).await, 1);
    assert_eq!(wechat.refunded_fen(&a), 0, "no money moved");
    let expected = (json!(3000), json!(1), json!(0), json!(1));
    assert!(
        eventually(Duration::from_secs(5), || async { numbers(&app, id).await == expected }).await,
        "the cached detail shows the refund failed, with A still counted: {:?}",
        numbers(&app, id).await
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM backings b JOIN payments p USING (order_no)
              WHERE b.order_no = '{a}' AND b.counted AND p.status = 'paid' AND p.refunded_fen = 0"
        ))
        .await,
        1,
        "A is still a counted, paid backing"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT net_fen FROM project_backers pb JOIN users u ON u.id = pb.user_id
              WHERE pb.project_id = {id} AND u.username = 'backer_a'"
        ))
        .await,
        3000
    );
    assert_eq!(
        app.count(&format!("SELECT raised_fen FROM projects WHERE id = {id}"))
            .await,
        3000,
        "the stored progress is what the detail showed"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM admin_audit WHERE action = 'backing.refund_failed'
                AND target = 'backing:{a}' AND actor = 'system' AND actor_id IS NULL
                AND after -> 'refund' ->> 'status' = 'failed' AND (after ->> 'counted')::boolean"
        ))
        .await,
        1,
        "audited"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM notifications n JOIN users u ON u.id = n.recipient_id
              WHERE u.username = 'backer_a' AND n.kind = 'refund'
                AND n.dedupe_key = 'refund_failed:{refund_a}' AND n.text LIKE '%未能完成%'"
        ))
        .await,
        1,
        "the backer is told"
    );
    assert_eq!(
        app.count(
            "SELECT count(*) FROM notifications n JOIN users u ON u.id = n.recipient_id
              WHERE u.username = 'backer_b' AND n.dedupe_key LIKE 'refund_failed:%'"
        )
        .await,
        0,
        "only A's backer"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM purpose_outbox WHERE order_no = '{a}' AND done_at IS NULL"
        ))
        .await,
        0,
        "the hook ran in the refund's transaction"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM refunds WHERE order_no = '{b}' AND status = 'succeeded'"
        ))
        .await,
        1
    );

    // An operator asks again: what is left is refundable, this one goes through, and the
    // progress follows it to 0.
    app.state
        .engine
        .request_refund(&a, 3000, "众筹未成功，全额退款 (again)", "admin:admin")
        .await
        .unwrap();
    let expected = (json!(0), json!(0), json!(0), json!(1));
    assert!(
        eventually(Duration::from_secs(10), || async {
            zhifu::pay::reconcile::pass(&app.state.engine).await.unwrap();
            numbers(&app, id).await == expected
        })
        .await,
        "refunded on the second request: {:?}",
        numbers(&app, id).await
    );
    assert_eq!(wechat.refunded_fen(&a), 3000);
    app.shutdown().await;
}
