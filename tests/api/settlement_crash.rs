//! A SIGKILL in the middle of a settlement of 100 backings: the binary (real mode, the
//! provider emulators on their own ports, slowed down) is killed while it hands the planned
//! refunds to the engine, with one refund booked at the provider whose answer never came
//! back. After the restart every refund is sent exactly once — the providers' own books hold
//! one refund per backing, of the planned amount — and the project was settled once.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio_postgres::NoTls;
use zhifu::account::Role;
use zhifu::pay::sandbox::{Api, Fault};

use crate::admin::sign_in;
use crate::crowdfunding::{live_project, project_body};
use crate::faults::{Http, Zhifu};
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

const BACKINGS: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_during_a_settlement_of_100_backings_sends_every_refund_exactly_once() {
    let providers = Arc::new(FakeProviders::start().await);
    let db = fresh_database().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let dir = scratch_dir(&format!("settle-kill-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("zhifu.log");
    let http = Http::new();
    let settle_env = [
        ("ZHIFU__CROWDFUNDING__SETTLE_INTERVAL_SECS", "1"),
        ("ZHIFU__CROWDFUNDING__SETTLE_GRACE_SECS", "0"),
    ];
    let mut server = Zhifu::start_with(port, &database_url(&db), &providers, &log, &settle_env);
    server.wait_ready(&http).await;
    // The backers' side: an instance in this process makes the backings (their notify URLs
    // name the binary, which takes the callbacks); its own settlement job stays idle.
    let shop = spawn_app_on(db.clone(), |s| {
        providers.apply(s);
        s.server.public_url = base.clone();
        s.crowdfunding.settle_interval_secs = 3600;
        s.database.pool_size = 8;
    })
    .await;
    let owner = sign_in(&shop, "owner", Role::User).await;
    let admin = sign_in(&shop, "admin", Role::Admin).await;
    let mut body = project_body("百人众筹");
    body["goals"] = json!([{"amount": "100.00", "title": "第一个目标"}, {"amount": "400.00", "title": "第二个目标"}]);
    body["rewards"] = json!([]);
    let id = live_project(&shop, &owner, &admin, body).await;
    let mut backers = Vec::new();
    for n in 0..10 {
        backers.push(sign_in(&shop, &format!("backer{n}"), Role::User).await);
    }
    let mut orders = Vec::new();
    for chunk in (0..BACKINGS).collect::<Vec<_>>().chunks(10) {
        let made = futures_util::future::join_all(chunk.iter().map(|&n| {
            let (shop, token) = (&shop, &backers[n % backers.len()]);
            let channel = if n % 2 == 0 { "wechat" } else { "alipay" };
            let amount = format!("{}.{:02}", 5 + n % 9, n % 97);
            async move {
                let answer =
                    crate::backings::back(shop, token, id, json!({"amount": amount, "channel": channel})).await;
                assert_eq!(answer.status, http::StatusCode::CREATED, "{}", answer.text());
                (
                    answer.json()["payment"]["order_no"].as_str().unwrap().to_string(),
                    channel,
                )
            }
        }))
        .await;
        for (no, channel) in made {
            match channel {
                "wechat" => providers.wechat.pay(&no).await.expect("acknowledged"),
                _ => providers.alipay.pay(&no).await.expect("acknowledged"),
            }
            orders.push(no);
        }
    }
    let counted = eventually(Duration::from_secs(20), || async {
        one_i64(&db, "SELECT count(*) FROM backings WHERE counted").await == BACKINGS as i64
    })
    .await;
    assert!(counted, "every backing paid and counted");
    let raised = one_i64(&db, &format!("SELECT raised_fen FROM projects WHERE id = {id}")).await;
    assert!(raised > 40_000, "{raised}: past the second goal, with a surplus");

    // Slow providers, then the deadline passes: the binary settles and starts sending.
    providers.wechat.faults().set_latency(Duration::from_millis(60));
    providers.alipay.faults().set_latency(Duration::from_millis(60));
    psql(
        &db,
        &format!("UPDATE projects SET deadline = now() - interval '1 second' WHERE id = {id}"),
    )
    .await;
    let queued = "SELECT count(*) FROM settlement_refunds WHERE queued_at IS NOT NULL";
    let sending = eventually(Duration::from_secs(30), || async { one_i64(&db, queued).await >= 20 }).await;
    assert!(sending, "the settlement started sending");
    // The next WeChat refund is booked, and its answer never comes back.
    let calls = providers.wechat.faults().calls(Api::Refund);
    let lost_answer = Fault::AfterApplying(Box::new(Fault::Delay(Duration::from_secs(60))));
    providers.wechat.faults().push_on(Api::Refund, lost_answer);
    let booked = eventually(Duration::from_secs(20), || async {
        providers.wechat.faults().calls(Api::Refund) > calls
    })
    .await;
    assert!(booked, "a refund with a lost answer reached the provider");
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill9();

    let ended_at = "SELECT count(*) FROM projects WHERE status = 'succeeded' AND settled_fen = 40000";
    assert_eq!(one_i64(&db, ended_at).await, 1, "settled before the kill");
    let sent_before = one_i64(&db, queued).await;
    assert!(
        sent_before < BACKINGS as i64,
        "killed mid-way: {sent_before} handed over"
    );
    let ended = "SELECT extract(epoch FROM ended_at)::bigint FROM projects";
    let ended_first = one_i64(&db, ended).await;

    // The restart, its reconcile job every second; the providers fast again.
    providers.wechat.faults().set_latency(Duration::ZERO);
    providers.alipay.faults().set_latency(Duration::ZERO);
    let mut server = Zhifu::start_with(
        port,
        &database_url(&db),
        &providers,
        &log,
        &[
            settle_env[0],
            settle_env[1],
            ("ZHIFU__PAYMENTS__RECONCILE_INTERVAL_SECS", "1"),
        ],
    );
    server.wait_ready(&http).await;
    // The leases of the interrupted sends are over at once (they would be in a minute).
    psql(
        &db,
        "UPDATE projects SET settle_lease = NULL; UPDATE refunds SET next_check_at = now() WHERE status <> 'succeeded'",
    )
    .await;
    let done = eventually(Duration::from_secs(60), || async {
        one_i64(&db, "SELECT count(*) FROM refunds WHERE status = 'succeeded'").await == BACKINGS as i64
            && one_i64(&db, "SELECT count(*) FROM projects WHERE settle_state = 'done'").await == 1
    })
    .await;
    let states = one_i64(&db, "SELECT count(*) FROM refunds WHERE status <> 'succeeded'").await;
    assert!(done, "every refund settled ({states} not yet)");

    // Exactly once: one refund per backing in our books and in the providers', of the
    // planned amount; the surplus exactly; the project settled once.
    assert_eq!(one_i64(&db, "SELECT count(*) FROM refunds").await, BACKINGS as i64);
    assert_eq!(
        one_i64(&db, "SELECT count(*) FROM settlement_refunds").await,
        BACKINGS as i64
    );
    let client = shop.state.store.client().await.unwrap();
    let plan = client
        .query("SELECT order_no, amount_fen FROM settlement_refunds", &[])
        .await
        .unwrap();
    let mut total = 0;
    for row in &plan {
        let (no, fen): (String, i64) = (row.get(0), row.get(1));
        let (count, refunded) = if providers.wechat.refund_count(&no) > 0 {
            (providers.wechat.refund_count(&no), providers.wechat.refunded_fen(&no))
        } else {
            (
                providers.alipay.refund_count(&no),
                providers.alipay.refunded_fen(&no).unwrap_or(0),
            )
        };
        assert_eq!((count, refunded), (1, fen), "{no}: once, the planned amount");
        total += fen;
    }
    assert_eq!(total, raised - 40_000, "the surplus exactly");
    assert_eq!(
        one_i64(&db, &format!("SELECT raised_fen FROM projects WHERE id = {id}")).await,
        40_000
    );
    assert_eq!(one_i64(&db, ended).await, ended_first, "settled once");
    assert_eq!(
        one_i64(&db, "SELECT count(*) FROM notifications WHERE kind = 'project_result'").await,
        11,
        "the owner and ten backers, once each"
    );
    drop(client);
    server.kill9();
    shop.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
