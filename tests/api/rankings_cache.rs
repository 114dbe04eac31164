//! The rankings cache under load: dropped only by what changes a total, one computation per
//! key at a time, weighed by bytes, a bounded key space, and rate limited like the other
//! public reads. The database checkout counter proves what was served from memory.

use http::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, eventually, spawn_app, spawn_app_with};

/// Database connections taken while `read` ran.
async fn reads_during<F: Future>(app: &TestApp, read: F) -> (u64, F::Output) {
    let before = app.state.store.checkouts();
    let out = read.await;
    (app.state.store.checkouts() - before, out)
}

#[tokio::test]
async fn only_a_paid_or_refunded_donation_drops_the_rankings_not_a_closed_order() {
    let app = spawn_app().await;
    let paid = app.donate("9.00", "wechat").await["order_no"]
        .as_str()
        .unwrap()
        .to_string();
    app.sandbox_pay(&paid).await;
    let closing = app.donate("1.00", "wechat").await["order_no"]
        .as_str()
        .unwrap()
        .to_string();
    app.get("/api/rankings?range=week").await;
    let (reads, _) = reads_during(&app, app.get("/api/rankings?range=week")).await;
    assert_eq!(reads, 0, "a cached ranking");

    // An order closing changes no total: the event must not drop the answers.
    let event =
        |status: &str, no: &str| json!({"kind": "payment", "order_no": no, "status": status, "purpose": "donation"});
    let generation = app.state.rankings.generation();
    zhifu::app::apply_event(&app.state, &event("closed", &closing)).await;
    assert_eq!(
        app.state.rankings.generation(),
        generation,
        "a closed order dropped the rankings"
    );
    let (reads, _) = reads_during(&app, app.get("/api/rankings?range=week")).await;
    assert_eq!(reads, 0);
    for status in ["paid", "refunded"] {
        zhifu::app::apply_event(&app.state, &event(status, &paid)).await;
        let (reads, _) = reads_during(&app, app.get("/api/rankings?range=week")).await;
        assert_eq!(reads, 1, "{status} must drop the rankings");
    }

    // End to end: a real close through the reconcile job leaves the cache alone.
    app.get("/api/rankings?range=week").await;
    app.sql(&format!(
        "UPDATE payments SET expires_at = now() - interval '1 s', next_check_at = now() WHERE order_no = '{closing}'"
    ))
    .await;
    let generation = app.state.rankings.generation();
    zhifu::pay::reconcile::pass(&app.state.engine).await.unwrap();
    assert_eq!(
        app.get(&format!("/api/payments/{closing}")).await.json()["status"],
        "closed"
    );
    // The close's event reaches this instance's router too; a payment after it proves it
    // was routed (events arrive in order) and changed nothing before the payment's.
    let later = app.donate("2.00", "alipay").await["order_no"]
        .as_str()
        .unwrap()
        .to_string();
    app.sandbox_pay(&later).await;
    let routed = eventually(std::time::Duration::from_secs(5), || async {
        app.state.rankings.generation() > generation
    })
    .await;
    assert!(routed);
    assert_eq!(
        app.state.rankings.generation(),
        generation + 1,
        "only the payment dropped the rankings, not the close before it"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn twenty_concurrent_misses_of_one_ranking_compute_it_once() {
    let app = spawn_app().await;
    let no = app.donate("5.00", "alipay").await["order_no"]
        .as_str()
        .unwrap()
        .to_string();
    let generation = app.state.rankings.generation();
    app.sandbox_pay(&no).await;
    // The payment's event drops the rankings when it reaches this instance's router, which
    // may be after the callback's answer: measure after it, not across it.
    let routed = eventually(std::time::Duration::from_secs(5), || async {
        app.state.rankings.generation() > generation
    })
    .await;
    assert!(routed);
    let reads = (0..20).map(|_| app.get("/api/rankings?range=month&size=50"));
    let (checkouts, answers) = reads_during(&app, futures_util::future::join_all(reads)).await;
    assert!(
        answers
            .iter()
            .all(|a| a.status == StatusCode::OK && a.body == answers[0].body)
    );
    assert_eq!(checkouts, 1, "one computation for twenty askers");
    app.shutdown().await;
}

#[tokio::test]
async fn deep_pages_are_computed_not_cached_and_entries_are_weighed_in_bytes() {
    let app = spawn_app().await;
    let deep = "/api/rankings?page=6&size=10";
    app.get(deep).await;
    let (reads, _) = reads_during(&app, app.get(deep)).await;
    assert_eq!(reads, 1, "page 6 is not kept");
    let shallow = "/api/rankings?page=5&size=10";
    app.get(shallow).await;
    let (reads, _) = reads_during(&app, app.get(shallow)).await;
    assert_eq!(reads, 0, "page 5 is kept");

    let mut bytes = 0;
    for path in [
        "/api/rankings?page=5&size=10",
        "/api/rankings?range=day",
        "/api/donations/recent",
    ] {
        bytes += app.get(path).await.body.len() as u64;
    }
    let weighed = app.state.rankings.cached_bytes();
    assert!(
        weighed >= bytes && weighed <= bytes + 3 * 200,
        "three answers of {bytes} bytes weigh {weighed}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn rankings_reads_are_rate_limited_like_status_reads() {
    let app = spawn_app_with(|s| {
        s.limits.status_per_minute = 60;
        s.limits.status_burst = 3;
    })
    .await;
    for _ in 0..3 {
        assert_eq!(app.get("/api/rankings").await.status, StatusCode::OK);
    }
    let limited = app.get("/api/rankings?page=99").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.header("retry-after").is_some());
    assert_eq!(app.get("/api/stats").await.status, StatusCode::TOO_MANY_REQUESTS);
    app.shutdown().await;
}

#[tokio::test]
async fn a_rename_rewrites_no_ranking_rows_and_shows_in_the_rankings_at_once() {
    use http::Method;
    use zhifu::account::Role;
    let app = spawn_app().await;
    let token = crate::admin::sign_in(&app, "renamer", Role::User).await;
    let bearer = format!("Bearer {token}");
    let created = app
        .request(
            Method::POST,
            "/api/donations",
            &[("content-type", "application/json"), ("authorization", bearer.as_str())],
            bytes::Bytes::from(r#"{"amount":"3.00","channel":"wechat","category_id":1}"#),
        )
        .await;
    let no = created.json()["order_no"].as_str().unwrap().to_string();
    app.sandbox_pay(&no).await;
    assert_eq!(app.get("/api/rankings").await.json()["items"][0]["donor"], "renamer");
    let renamed = crate::admin::call(
        &app,
        &token,
        Method::PATCH,
        "/api/me",
        Some(json!({"display_name": "新名字"})),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::OK);
    assert_eq!(app.get("/api/rankings").await.json()["items"][0]["donor"], "新名字");
    assert_eq!(
        app.count("SELECT count(*) FROM donation_totals WHERE donor = 'renamer'")
            .await,
        1,
        "the account module rewrote the rankings' rows"
    );
    app.shutdown().await;
}
