//! Housekeeping: raw callback bodies past `payments.callback_retention_days` are emptied while
//! their rows stay (the duplicate check and the audit trail still work); expired idempotency
//! keys go.

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
