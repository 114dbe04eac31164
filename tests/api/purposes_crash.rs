//! A SIGKILL between a payment and its purpose's effects: the binary (real mode, the provider
//! emulators on their own ports) is killed while one order's `on_paid` waits inside the
//! payment's transaction, one order's failed step waits in the outbox, and one order's
//! purpose refund is at the provider with its answer not back. After the restart every
//! effect is applied exactly once: paid once, each hook once, one provider refund.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::NoTls;
use zhifu::pay::provider::Channel;
use zhifu::pay::sandbox::{Api, Fault};
use zhifu::probe::{self, Script};

use crate::faults::{Http, Zhifu, panics_in};
use crate::helpers::{database_url, eventually, free_port, fresh_database, psql, scratch_dir, spawn_app_on};
use crate::realmode::FakeProviders;

async fn one_i64(db: &tokio_postgres::Config, sql: &str) -> i64 {
    let (client, conn) = db.connect(NoTls).await.expect("connect");
    let conn = tokio::spawn(conn);
    let n: i64 = client.query_one(sql, &[]).await.expect(sql).get(0);
    drop(client);
    let _ = conn.await;
    n
}

/// `paid, closed, refunded` of the probe row of `order_no`, and its payment's status.
async fn effects(db: &tokio_postgres::Config, order_no: &str) -> (i32, i32, i32, String) {
    let (client, conn) = db.connect(NoTls).await.expect("connect");
    let conn = tokio::spawn(conn);
    let row = client
        .query_one(
            "SELECT b.paid, b.closed, b.refunded, p.status FROM probe_purchases b JOIN payments p USING (order_no)
              WHERE order_no = $1",
            &[&order_no],
        )
        .await
        .unwrap();
    drop(client);
    let _ = conn.await;
    (row.get(0), row.get(1), row.get(2), row.get(3))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_between_a_payment_and_its_purpose_effects_applies_each_effect_exactly_once() {
    let wall = Instant::now();
    let providers = Arc::new(FakeProviders::start().await);
    let db = fresh_database().await;
    psql(&db, probe::SCHEMA).await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let dir = scratch_dir(&format!("purpose-kill-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("zhifu.log");
    let http = Http::new();
    let mut server = Zhifu::start(port, &database_url(&db), &providers, &log);
    server.wait_ready(&http).await;
    // The module's side: an instance in this process makes the purchases (their notify URLs
    // name the binary, which takes the callbacks).
    let shop = spawn_app_on(db.clone(), |s| {
        providers.apply(s);
        s.server.public_url = base.clone();
    })
    .await;
    let engine = &shop.state.engine;
    let buy = |channel, script: Script| async move {
        probe::buy(engine, channel, 1, 700, &script, None)
            .await
            .expect("purchase created")
            .order_no
    };

    // 1. A step that failed: the payment is committed, the step waits in the outbox.
    let failing = buy(
        Channel::Alipay,
        Script {
            fail: vec!["paid".into()],
            ..Script::default()
        },
    )
    .await;
    providers.alipay.pay(&failing).await.expect("acknowledged");
    assert_eq!(effects(&db, &failing).await, (0, 0, 0, "paid".into()));

    // 2. A purpose refund at the provider whose answer never comes back before the kill.
    let refused = buy(
        Channel::Wechat,
        Script {
            refuse: true,
            ..Script::default()
        },
    )
    .await;
    let lost_answer = Fault::AfterApplying(Box::new(Fault::Delay(Duration::from_secs(60))));
    providers.wechat.faults().push_on(Api::Refund, lost_answer);
    let paying = {
        let (providers, no) = (Arc::clone(&providers), refused.clone());
        tokio::spawn(async move { providers.wechat.pay(&no).await })
    };
    let booked = eventually(Duration::from_secs(10), || async {
        providers.wechat.refund_count(&refused) == 1
    })
    .await;
    assert!(booked, "the refund reached the provider");

    // 3. `on_paid` waiting inside the payment's transaction (on a lock this test holds).
    let hold = 7_421_i64;
    let held = buy(
        Channel::Wechat,
        Script {
            hold: Some(hold),
            ..Script::default()
        },
    )
    .await;
    let (locker, locker_conn) = db.connect(NoTls).await.unwrap();
    let locker_conn = tokio::spawn(locker_conn);
    locker.execute("SELECT pg_advisory_lock($1)", &[&hold]).await.unwrap();
    let waiting = {
        let (providers, no) = (Arc::clone(&providers), held.clone());
        tokio::spawn(async move { providers.wechat.pay(&no).await })
    };
    let held_locks = format!(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 0 AND objid = {hold} AND NOT granted"
    );
    let blocked = eventually(Duration::from_secs(10), || async {
        one_i64(&db, &held_locks).await == 1
    })
    .await;
    assert!(blocked, "on_paid waits in the payment's transaction");

    server.kill9();
    let killed = wall.elapsed();
    assert!(waiting.await.unwrap().is_err(), "never acknowledged");
    assert!(paying.await.unwrap().is_err(), "never acknowledged");
    locker.execute("SELECT pg_advisory_unlock($1)", &[&hold]).await.unwrap();
    drop(locker);
    let _ = locker_conn.await;

    // What the kill left: nothing half-done.
    let pending = eventually(Duration::from_secs(10), || async {
        one_i64(
            &db,
            &format!("SELECT count(*) FROM payments WHERE order_no = '{held}' AND status = 'pending'"),
        )
        .await
            == 1
            && one_i64(&db, &held_locks.replace(" AND NOT granted", "")).await == 0
    })
    .await;
    assert!(pending, "the held payment rolled back with its process");
    assert_eq!(effects(&db, &held).await, (0, 0, 0, "pending".into()));
    assert_eq!(
        effects(&db, &refused).await,
        (1, 0, 0, "paid".into()),
        "on_paid committed with the payment"
    );
    assert_eq!(effects(&db, &failing).await, (0, 0, 0, "paid".into()));

    // The restart, its reconcile job running every second; the failing step fixed.
    psql(
        &db,
        &format!("UPDATE probe_purchases SET fail = '{{}}' WHERE order_no = '{failing}'"),
    )
    .await;
    let mut server = Zhifu::start_with(
        port,
        &database_url(&db),
        &providers,
        &log,
        &[("ZHIFU__PAYMENTS__RECONCILE_INTERVAL_SECS", "1")],
    );
    server.wait_ready(&http).await;
    let restarted = wall.elapsed();
    psql(
        &db,
        &format!(
            "UPDATE purpose_outbox SET next_attempt_at = now();
             UPDATE refunds SET next_check_at = now() WHERE order_no = '{refused}'"
        ),
    )
    .await;
    // The provider delivers the held payment's notification again.
    let redelivered = eventually(Duration::from_secs(10), || async {
        providers.wechat.pay(&held).await.is_ok()
    })
    .await;
    assert!(redelivered);

    let settled = eventually(Duration::from_secs(30), || async {
        effects(&db, &held).await == (1, 0, 0, "paid".into())
            && effects(&db, &failing).await == (1, 0, 0, "paid".into())
            && effects(&db, &refused).await == (1, 0, 1, "refunded".into())
    })
    .await;
    assert!(
        settled,
        "held {:?}, failing {:?}, refused {:?}",
        effects(&db, &held).await,
        effects(&db, &failing).await,
        effects(&db, &refused).await
    );
    let settled_at = wall.elapsed();

    // Exactly once everywhere: one payment event each, one refund, nothing left waiting.
    for no in [&held, &failing, &refused] {
        let paid = one_i64(
            &db,
            &format!("SELECT count(*) FROM payment_events WHERE order_no = '{no}' AND kind IN ('paid', 'paid_late')"),
        )
        .await;
        assert_eq!(paid, 1, "{no}");
    }
    assert_eq!(providers.wechat.refund_count(&refused), 1, "one provider refund");
    assert_eq!(providers.wechat.refunded_fen(&refused), 700);
    assert_eq!(one_i64(&db, "SELECT count(*) FROM refunds").await, 1);
    assert_eq!(
        one_i64(&db, "SELECT count(*) FROM purpose_outbox WHERE done_at IS NULL").await,
        0
    );
    assert_eq!(
        one_i64(&db, "SELECT COALESCE(sum(purpose_backlog), 0)::bigint FROM payments").await,
        0
    );
    assert_eq!(panics_in(&log), Vec::<String>::new());
    assert!(server.terminate(), "the restarted server stops cleanly");
    shop.shutdown().await;
    eprintln!(
        "purpose kill -9: killed at {killed:.1?}, ready again {restarted:.1?}, every effect once by {settled_at:.1?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
