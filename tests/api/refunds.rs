//! Refunds against providers that answer as they really do: rate limited, busy, done but
//! answered with an error, stuck, closed, changing their mind. A refund is `succeeded` or
//! `failed` only when the provider says so for certain; every transient answer is retried
//! with the same refund number, and the provider's books end with exactly one refund.

use std::time::Duration;

use tokio_postgres::NoTls;
use zhifu::pay::reconcile;
use zhifu::pay::sandbox::{Api, Fault};

use crate::helpers::{TestApp, eventually, spawn_app};

fn reject(code: &str, message: &str) -> Fault {
    Fault::Reject {
        code: code.into(),
        message: message.into(),
    }
}

/// A paid donation of `amount` by `channel`.
async fn paid(app: &TestApp, amount: &str, channel: &str) -> String {
    let no = app.donate(amount, channel).await["order_no"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.sandbox_pay(&no).await.json()["status"], "paid");
    no
}

/// `(status, attempts, failure)` of a refund.
async fn refund_row(app: &TestApp, refund_no: &str) -> (String, i32, Option<String>) {
    let (client, conn) = app.db.connect(NoTls).await.unwrap();
    let conn = tokio::spawn(conn);
    let row = client
        .query_one(
            "SELECT status, attempts, failure FROM refunds WHERE refund_no = $1",
            &[&refund_no],
        )
        .await
        .unwrap();
    drop(client);
    let _ = conn.await;
    (row.get(0), row.get(1), row.get(2))
}

/// Makes every unfinished refund due now and runs one reconcile pass.
async fn reconcile_refunds_now(app: &TestApp) {
    app.sql("UPDATE refunds SET next_check_at = now() WHERE status = 'processing'")
        .await;
    reconcile::pass(&app.state.engine).await.unwrap();
}

async fn refunded_fen(app: &TestApp, no: &str) -> i64 {
    app.count(&format!("SELECT refunded_fen FROM payments WHERE order_no = '{no}'"))
        .await
}

/// What the admin detail would call refundable: the amount less refunds done or under way.
async fn refundable_fen(app: &TestApp, no: &str) -> i64 {
    app.count(&format!(
        "SELECT p.amount_fen - p.refunded_fen - COALESCE((SELECT sum(amount_fen) FROM refunds r
                 WHERE r.order_no = p.order_no AND r.status = 'processing'), 0)::bigint
           FROM payments p WHERE p.order_no = '{no}'"
    ))
    .await
}

#[tokio::test]
async fn a_refund_answered_429_then_system_error_then_success_ends_succeeded_with_one_refund_at_the_provider() {
    let app = spawn_app().await;
    let sandbox = app.state.sandbox.clone().unwrap();
    let engine = &app.state.engine;

    // WeChat: 429 FREQUENCY_LIMITED (not accepted), then SYSTEM_ERROR although the refund
    // was booked (WeChat: "it may have succeeded; retry with the same out_refund_no").
    let wechat_no = paid(&app, "100.00", "wechat").await;
    let faults = sandbox.wechat.faults();
    faults.push_on(Api::Refund, reject("FREQUENCY_LIMITED", "频率限制"));
    faults.push_on(
        Api::Refund,
        Fault::AfterApplying(Box::new(reject("SYSTEM_ERROR", "系统超时"))),
    );
    let refund_no = engine
        .request_refund(&wechat_no, 3000, "retry me", "test")
        .await
        .unwrap();
    let (status, attempts, failure) = refund_row(&app, &refund_no).await;
    assert_eq!(status, "processing", "a 429 is no refusal: {failure:?}");
    assert_eq!(attempts, 1);
    assert!(
        failure.unwrap_or_default().contains("FREQUENCY_LIMITED"),
        "the last answer is kept for operators"
    );

    reconcile_refunds_now(&app).await;
    assert_eq!(
        refund_row(&app, &refund_no).await.0,
        "processing",
        "SYSTEM_ERROR is no refusal either"
    );
    assert_eq!(
        sandbox.wechat.refund_count(&wechat_no),
        1,
        "the second attempt was booked"
    );

    let settled = eventually(Duration::from_secs(10), || async {
        reconcile_refunds_now(&app).await;
        refund_row(&app, &refund_no).await.0 == "succeeded"
    })
    .await;
    assert!(settled, "{:?}", refund_row(&app, &refund_no).await);
    assert_eq!(refunded_fen(&app, &wechat_no).await, 3000);
    assert_eq!(sandbox.wechat.refund_count(&wechat_no), 1, "one refund at the provider");
    assert_eq!(sandbox.wechat.refunded_fen(&wechat_no), 3000);

    // Alipay: ACQ.SYSTEM_ERROR ("retry with the same parameters"), then 20000 isp.unknow-error
    // after the refund went through, then success.
    let alipay_no = paid(&app, "100.00", "alipay").await;
    let faults = sandbox.alipay.faults();
    faults.push_on(Api::Refund, reject("ACQ.SYSTEM_ERROR", "系统错误"));
    faults.push_on(
        Api::Refund,
        Fault::AfterApplying(Box::new(reject("isp.unknow-error", "服务暂不可用"))),
    );
    let refund_no = engine
        .request_refund(&alipay_no, 2500, "retry me", "test")
        .await
        .unwrap();
    assert_eq!(refund_row(&app, &refund_no).await.0, "processing");
    reconcile_refunds_now(&app).await;
    assert_eq!(refund_row(&app, &refund_no).await.0, "processing");
    assert_eq!(sandbox.alipay.refund_count(&alipay_no), 1);
    reconcile_refunds_now(&app).await;
    assert_eq!(refund_row(&app, &refund_no).await.0, "succeeded");
    assert_eq!(refunded_fen(&app, &alipay_no).await, 2500);
    assert_eq!(sandbox.alipay.refund_count(&alipay_no), 1, "one refund at the provider");
    assert_eq!(sandbox.alipay.refunded_fen(&alipay_no), Some(2500));
    app.shutdown().await;
}

#[tokio::test]
async fn a_refund_the_provider_holds_or_reports_abnormal_stays_processing_until_a_query_says_closed() {
    let app = spawn_app().await;
    let wechat = app.state.sandbox.clone().unwrap().wechat;
    wechat.hold_refunds(true);
    let no = paid(&app, "50.00", "wechat").await;
    let refund_no = app
        .state
        .engine
        .request_refund(&no, 5000, "all of it", "test")
        .await
        .unwrap();
    reconcile_refunds_now(&app).await;
    assert_eq!(refund_row(&app, &refund_no).await.0, "processing");
    assert_eq!(
        refundable_fen(&app, &no).await,
        0,
        "the amount under way is not refundable"
    );

    // ABNORMAL: the payer's card was cancelled; the merchant can still send the money by hand.
    wechat.close_refund(&refund_no, true, false).await.unwrap();
    reconcile_refunds_now(&app).await;
    let (status, _, failure) = refund_row(&app, &refund_no).await;
    assert_eq!(status, "processing", "money may still move while ABNORMAL");
    assert!(failure.unwrap_or_default().contains("ABNORMAL"), "shown to operators");
    assert_eq!(refundable_fen(&app, &no).await, 0);

    // The merchant gives up on it: WeChat closes it, and only its query says so (no notification).
    wechat.close_refund(&refund_no, false, false).await.unwrap();
    reconcile_refunds_now(&app).await;
    let (status, _, failure) = refund_row(&app, &refund_no).await;
    assert_eq!(status, "failed");
    assert!(failure.unwrap_or_default().contains("CLOSED"));
    assert_eq!(
        refundable_fen(&app, &no).await,
        5000,
        "a closed refund gives the amount back"
    );
    assert_eq!(refunded_fen(&app, &no).await, 0);
    app.shutdown().await;
}

#[tokio::test]
async fn a_final_refusal_is_checked_by_query_before_the_refund_is_failed() {
    let app = spawn_app().await;
    let sandbox = app.state.sandbox.clone().unwrap();
    sandbox.wechat.hold_refunds(true);
    let no = paid(&app, "20.00", "wechat").await;
    // NOT_ENOUGH is final ("the refund application failed")... but WeChat booked it anyway:
    // its refund query finds the refund, so it is not failed.
    sandbox.wechat.faults().push_on(
        Api::Refund,
        Fault::AfterApplying(Box::new(reject("NOT_ENOUGH", "余额不足"))),
    );
    let refund_no = app.state.engine.request_refund(&no, 1000, "r", "test").await.unwrap();
    assert_eq!(refund_row(&app, &refund_no).await.0, "processing");
    sandbox.wechat.complete_refund(&refund_no).await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            refund_row(&app, &refund_no).await.0 == "succeeded"
        })
        .await
    );

    // A plain NOT_ENOUGH with nothing booked: the query finds nothing, so it failed.
    sandbox
        .wechat
        .faults()
        .push_on(Api::Refund, reject("NOT_ENOUGH", "余额不足"));
    let refused = app.state.engine.request_refund(&no, 1000, "r2", "test").await.unwrap();
    let (status, _, failure) = refund_row(&app, &refused).await;
    assert_eq!(status, "failed");
    assert!(failure.unwrap_or_default().contains("NOT_ENOUGH"));
    assert_eq!(sandbox.wechat.refund_count(&no), 1);
    app.shutdown().await;
}

#[tokio::test]
async fn a_failed_refund_followed_by_a_verified_success_notification_ends_succeeded_and_closes_the_reopened_amount() {
    let app = spawn_app().await;
    let wechat = app.state.sandbox.clone().unwrap().wechat;
    wechat.hold_refunds(true);
    let no = paid(&app, "100.00", "wechat").await;
    // WeChat books the refund but answers a final code, and its refund query lags behind
    // (not found): that is "failed" as far as anyone can tell...
    let faults = wechat.faults();
    faults.push_on(
        Api::Refund,
        Fault::AfterApplying(Box::new(reject("USER_ACCOUNT_ABNORMAL", "退款请求失败"))),
    );
    faults.push_on(Api::RefundQuery, reject("RESOURCE_NOT_EXISTS", "退款单不存在"));
    let refund_no = app.state.engine.request_refund(&no, 3000, "r", "test").await.unwrap();
    assert_eq!(refund_row(&app, &refund_no).await.0, "failed");
    assert_eq!(
        refundable_fen(&app, &no).await,
        10000,
        "a failed refund reopens the amount"
    );

    // ...until WeChat's verified REFUND.SUCCESS says the money went back after all.
    wechat.complete_refund(&refund_no).await.unwrap();
    let (status, _, _) = refund_row(&app, &refund_no).await;
    assert_eq!(status, "succeeded");
    assert_eq!(refunded_fen(&app, &no).await, 3000);
    assert_eq!(
        refundable_fen(&app, &no).await,
        7000,
        "the reopened amount is closed again"
    );
    let status = app.get(&format!("/api/payments/{no}")).await.json();
    assert_eq!(status["status"], "refunded");
    assert_eq!(status["refunded_fen"], 3000);
    let ranked = app.get("/api/rankings").await.json();
    assert_eq!(ranked["items"][0]["amount_fen"], 7000, "the rankings subtract it too");
    let events = app
        .count(&format!(
            "SELECT count(*) FROM payment_events WHERE order_no = '{no}' AND kind = 'refund_succeeded'
                AND detail->>'was' = 'failed'"
        ))
        .await;
    assert_eq!(events, 1, "the turnaround is audited");
    app.shutdown().await;
}

#[tokio::test]
async fn a_refund_being_submitted_is_not_claimed_by_the_reconcile_job() {
    let app = spawn_app().await;
    let wechat = app.state.sandbox.clone().unwrap().wechat;
    let no = paid(&app, "10.00", "wechat").await;
    wechat
        .faults()
        .push_on(Api::Refund, Fault::Delay(Duration::from_millis(1500)));
    let engine = std::sync::Arc::clone(&app.state.engine);
    let submitting = {
        let no = no.clone();
        tokio::spawn(async move { engine.request_refund(&no, 1000, "slow", "test").await })
    };
    let queued = eventually(Duration::from_secs(5), || async {
        app.count(&format!("SELECT count(*) FROM refunds WHERE order_no = '{no}'"))
            .await
            == 1
    })
    .await;
    assert!(queued);
    let report = reconcile::pass(&app.state.engine).await.unwrap();
    assert_eq!(report.refunds_checked, 0, "the refund being submitted is left alone");
    submitting.await.unwrap().unwrap();
    assert_eq!(wechat.faults().calls(Api::Refund), 1, "submitted once");
    app.shutdown().await;
}
