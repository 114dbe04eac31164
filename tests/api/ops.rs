//! `/healthz`, `/readyz` (including a database that goes away and comes back) and `/metrics`.

use std::time::Duration;

use http::StatusCode;
use zhifu::store::embedded::{EmbeddedCluster, Options};

use crate::helpers::{eventually, psql, scratch_dir, spawn_app, spawn_app_on};

#[tokio::test]
async fn healthz_and_readyz_answer_ok_with_the_database_up() {
    let app = spawn_app().await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json()["status"], "ok");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.json()["status"], "ready");
}

#[tokio::test]
async fn readiness_follows_the_database_down_and_back_up_without_a_restart() {
    // A cluster of its own: this test stops it.
    let dir = scratch_dir("readyz");
    let options = Options {
        data_dir: dir.clone(),
        bin_dir: None,
        ephemeral: true,
    };
    let started = tokio::task::spawn_blocking({
        let options = options.clone();
        move || EmbeddedCluster::start(&options)
    });
    let cluster = started.await.unwrap().expect("cluster starts");
    zhifu::store::ensure_database(&cluster.pg_config("postgres"), "zhifu")
        .await
        .unwrap();
    let db = cluster.pg_config("zhifu");
    let app = spawn_app_on(db.clone(), |_| {}).await;
    assert_eq!(app.get("/readyz").await.status, StatusCode::OK);
    assert_eq!(app.get("/api/categories").await.status, StatusCode::OK);

    let cluster = tokio::task::spawn_blocking(move || {
        cluster.stop(Duration::from_secs(5));
        cluster
    })
    .await
    .unwrap();
    let before = tokio::time::Instant::now();
    let down = app.get("/readyz").await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(down.error_code(), "service_unavailable");
    assert!(
        before.elapsed() < Duration::from_secs(3),
        "readyz took {:?}",
        before.elapsed()
    );
    assert_eq!(
        app.get("/healthz").await.status,
        StatusCode::OK,
        "liveness does not depend on the database"
    );

    drop(cluster);
    let restarted = tokio::task::spawn_blocking(move || EmbeddedCluster::start(&options))
        .await
        .unwrap()
        .expect("cluster starts again");
    let back = eventually(Duration::from_secs(10), || async {
        app.get("/readyz").await.status == StatusCode::OK
    })
    .await;
    assert!(back, "readyz not 200 within 10 s of the database's return");

    // The event bus reconnected too: a change announced now reaches the cache.
    let listening = eventually(Duration::from_secs(10), || async { app.state.events.is_connected() }).await;
    assert!(listening, "the event listener did not reconnect");
    psql(
        &db,
        "INSERT INTO categories (name) VALUES ('after restart'); SELECT pg_notify('zhifu_events', '{\"kind\":\"categories\"}')",
    )
    .await;
    let seen = eventually(Duration::from_secs(2), || async {
        app.get("/api/categories").await.text().contains("after restart")
    })
    .await;
    assert!(seen, "the category added after the restart never showed");

    app.shutdown().await;
    tokio::task::spawn_blocking(move || drop(restarted)).await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_and_show_the_pool() {
    let app = spawn_app().await;
    app.get("/healthz").await;
    app.get("/healthz").await;
    app.get("/nope").await;
    let metrics = app.get("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(metrics.header("content-type").unwrap().starts_with("text/plain"));
    let text = metrics.text();
    assert!(
        text.contains("zhifu_http_requests_total{route=\"healthz\",status=\"200\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("zhifu_http_requests_total{route=\"not_found\",status=\"404\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("zhifu_http_request_duration_seconds_bucket{route=\"healthz\",status=\"200\",le=\"+Inf\"} 2\n")
    );
    assert!(text.contains("zhifu_db_pool_max_size 4\n"), "{text}");
    assert!(text.contains("zhifu_build_info{version=\""), "{text}");
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.starts_with("zhifu_"), "metric without the zhifu_ prefix: {line}");
    }
}

/// The value of a gauge without labels in a `/metrics` text.
fn gauge(metrics: &str, name: &str) -> i64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} missing:\n{metrics}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn metrics_show_what_an_operator_alerts_on() {
    let app = spawn_app().await;
    // Wait for the first read, then make one of each problem and read again.
    let read = eventually(Duration::from_secs(10), || async {
        gauge(&app.get("/metrics").await.text(), "zhifu_refunds_failed_7d") == 0
    })
    .await;
    assert!(read, "the figures are read at start");
    let (flagged, overdue) = (app.donate("1.00", "wechat").await, app.donate("2.00", "alipay").await);
    let paid = app.donate("3.00", "wechat").await;
    let (flagged, overdue, paid) = (
        flagged["order_no"].as_str().unwrap().to_string(),
        overdue["order_no"].as_str().unwrap().to_string(),
        paid["order_no"].as_str().unwrap().to_string(),
    );
    app.sandbox_pay(&paid).await;
    app.sql(&format!(
        "UPDATE payments SET reconcile_issue = 'amount differs', reconcile_issue_at = now() WHERE order_no = '{flagged}';
         UPDATE payments SET expires_at = now() - interval '1 hour' WHERE order_no = '{overdue}';
         INSERT INTO refunds (refund_no, order_no, amount_fen, reason, requested_by, status, failure)
              VALUES ('rf-failed-1', '{paid}', 100, 'test', 'test', 'failed', 'NOT_ENOUGH');
         INSERT INTO refunds (refund_no, order_no, amount_fen, reason, requested_by, created_at, next_check_at)
              VALUES ('rf-stuck-1', '{paid}', 100, 'test', 'test', now() - interval '2 hours', now() + interval '1 day');
         INSERT INTO purpose_outbox (order_no, purpose, step, subject, amount_fen, last_error, next_attempt_at, created_at)
              VALUES ('{paid}', 'donation', 'refunded', 'rf-x', 100, 'test', now() + interval '1 day', now() - interval '1 hour');"
    ))
    .await;
    app.state.attention.refresh(&app.state.store).await.unwrap();
    let metrics = app.get("/metrics").await.text();
    for name in [
        "zhifu_payments_flagged",
        "zhifu_payments_overdue",
        "zhifu_refunds_failed_7d",
        "zhifu_refunds_stuck",
        "zhifu_purpose_steps_stuck",
    ] {
        assert_eq!(gauge(&metrics, name), 1, "{name}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn every_metric_the_shipped_alert_rules_use_is_exported() {
    let rules =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/deploy/zhifu-alerts.yml")).unwrap();
    let app = crate::helpers::spawn_app_with(|s| s.log.access = true).await;
    app.get("/healthz").await;
    let metrics = app.get("/metrics").await.text();
    let mut used = 0;
    for expr in rules.lines().filter_map(|l| l.trim().strip_prefix("expr:")) {
        for (start, _) in expr.match_indices("zhifu_") {
            let name: String = expr[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            used += 1;
            assert!(
                metrics.lines().any(|l| l.starts_with(&name)),
                "the alert rules use {name}, which /metrics does not export"
            );
        }
    }
    assert!(used >= 10, "{used} metric uses found in the rules");
    app.shutdown().await;
}
