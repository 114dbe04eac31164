//! Housekeeping: raw callback bodies past `payments.callback_retention_days` are emptied while
//! their rows stay (the duplicate check and the audit trail still work); finished purpose
//! steps past the same period go, waiting ones never; expired idempotency keys go.

use crate::helpers::spawn_app;

#[tokio::test]
async fn callback_bodies_past_retention_are_emptied_and_their_rows_stay() {
    let app = spawn_app().await;
    app.sql(
        "INSERT INTO callback_inbox (channel, kind, subject_id, order_no, accepted, outcome, headers, body, received_at)
         VALUES ('wechat', 'payment', 'T-old', NULL, true, 'applied', '{\"wechatpay-serial\":\"x\"}', 'old body', now() - interval '181 days'),
                ('alipay', 'payment', 'T-new', NULL, true, 'applied', '{}', 'new body', now() - interval '179 days');
         INSERT INTO idempotency_keys (scope, key, fingerprint, resource_id, status, body, locked_until, expires_at)
         VALUES ('s', 'gone', sha256('a'), 'r1', 201, '{}', now(), now() - interval '1 second'),
                ('s', 'kept', sha256('b'), 'r2', 201, '{}', now(), now() + interval '1 hour')",
    )
    .await;
    let purged = zhifu::pay::retention::run_once(&app.state.store, 180).await.unwrap();
    assert_eq!((purged.callback_bodies, purged.idempotency_keys), (1, 1));
    assert_eq!(
        app.count(
            "SELECT count(*) FROM callback_inbox WHERE subject_id = 'T-old' AND body = '' AND headers = '{}'
                AND body_purged_at IS NOT NULL"
        )
        .await,
        1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM callback_inbox WHERE subject_id = 'T-new' AND body = 'new body'")
            .await,
        1
    );
    assert_eq!(app.count("SELECT count(*) FROM idempotency_keys").await, 1);
    let again = zhifu::pay::retention::run_once(&app.state.store, 180).await.unwrap();
    assert_eq!(again, Default::default(), "nothing twice");
    app.shutdown().await;
}

#[tokio::test]
async fn finished_purpose_steps_past_retention_are_deleted_and_waiting_ones_never() {
    let app = spawn_app().await;
    let mut orders = Vec::new();
    for _ in 0..3 {
        orders.push(
            app.donate("1.00", "wechat").await["order_no"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let [old_done, new_done, old_waiting] = [&orders[0], &orders[1], &orders[2]];
    app.sql(&format!(
        "INSERT INTO purpose_outbox (order_no, purpose, step, next_attempt_at, created_at, done_at)
         VALUES ('{old_done}', 'donation', 'paid', now(), now() - interval '200 days', now() - interval '181 days'),
                ('{new_done}', 'donation', 'paid', now(), now() - interval '200 days', now() - interval '179 days'),
                ('{old_waiting}', 'donation', 'paid', now() + interval '1 day', now() - interval '200 days', NULL)"
    ))
    .await;
    let purged = zhifu::pay::retention::run_once(&app.state.store, 180).await.unwrap();
    assert_eq!(purged.outbox_steps, 1);
    let left = |no: &str| format!("SELECT count(*) FROM purpose_outbox WHERE order_no = '{no}'");
    assert_eq!(app.count(&left(old_done)).await, 0, "finished past retention: deleted");
    assert_eq!(app.count(&left(new_done)).await, 1, "finished within retention: kept");
    assert_eq!(
        app.count(&left(old_waiting)).await,
        1,
        "still waiting: kept however old"
    );
    let again = zhifu::pay::retention::run_once(&app.state.store, 180).await.unwrap();
    assert_eq!(again.outbox_steps, 0, "nothing twice");
    app.shutdown().await;
}
