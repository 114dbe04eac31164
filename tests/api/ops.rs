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
