//! Backups: `zhifu backup` while the server runs (payments, refunds, accounts and images), `zhifu restore` into a new cluster brings
//! back every row (same fingerprints, same totals); a restore refuses a non-empty database
//! without `--force`, a database a server is running on, and a dump of a newer migration level.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tokio_postgres::NoTls;

use crate::helpers::{database_url, eventually, fresh_database, own_cluster, psql, scratch_dir, spawn_app_on};

/// Every table's row count and a digest of its rows, plus every sequence's position.
async fn fingerprint(db: &tokio_postgres::Config) -> Vec<(String, i64, String)> {
    let (client, conn) = db.connect(NoTls).await.expect("connect");
    let conn = tokio::spawn(conn);
    let tables: Vec<String> = client
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = Vec::new();
    for table in tables {
        let row = client
            .query_one(
                &format!(
                    "SELECT count(*), COALESCE(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM \"{table}\" t"
                ),
                &[],
            )
            .await
            .unwrap();
        out.push((table, row.get(0), row.get(1)));
    }
    for row in client
        .query(
            "SELECT sequencename::text, COALESCE(last_value, 0) FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
    {
        out.push((format!("sequence {}", row.get::<_, String>(0)), row.get(1), String::new()));
    }
    drop(client);
    let _ = conn.await;
    out
}

/// Runs the binary with a config file of its own and `database.url` pointing at `db`.
fn zhifu(db: &tokio_postgres::Config, dir: &Path, args: &[&str]) -> (bool, String) {
    let config = dir.join("config.yaml");
    std::fs::write(&config, "log:\n  level: warn\n").unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_zhifu"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("ZHIFU")) {
        command.env_remove(key);
    }
    let output = command
        .arg("--config")
        .arg(&config)
        .args(args)
        .env("ZHIFU__DATABASE__URL", database_url(db))
        .output()
        .expect("the binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn a_backup_taken_while_serving_restores_into_a_new_cluster_with_every_row_and_total() {
    // Arrange: payments, a partial refund, a closed order, a signed-in user.
    let db = fresh_database().await;
    let app = spawn_app_on(db.clone(), |_| {}).await;
    let mut paid = Vec::new();
    for (amount, channel) in [("12.34", "wechat"), ("50.00", "alipay"), ("0.01", "wechat")] {
        let no = app.donate(amount, channel).await["order_no"]
            .as_str()
            .unwrap()
            .to_string();
        let answer = app.sandbox_pay(&no).await;
        assert_eq!(answer.json()["status"], "paid", "{}", answer.text());
        paid.push(no);
    }
    app.donate("3.00", "alipay").await;
    let uploader = crate::admin::sign_in(&app, "uploader", zhifu::account::Role::User).await;
    let png = crate::media::encoded(&crate::media::photo(40, 30), image::ImageFormat::Png);
    let uploaded = crate::media::upload_raw(&app, &uploader, "image/png", png).await;
    assert_eq!(uploaded.status, http::StatusCode::CREATED, "{}", uploaded.text());
    let image_url = uploaded.json()["url"].as_str().unwrap().to_string();
    let image_bytes = app.get(&image_url).await.body;
    app.state
        .engine
        .request_refund(&paid[1], 1_000, "backup test", "test")
        .await
        .unwrap();
    let no = paid[1].clone();
    assert!(
        eventually(Duration::from_secs(10), || async {
            app.get(&format!("/api/payments/{no}")).await.json()["refunded_fen"] == 1_000
        })
        .await,
        "the refund settles"
    );
    let before = fingerprint(&db).await;
    let totals = "SELECT (sum(amount_fen) * 1000 + sum(refunded_fen))::bigint FROM payments WHERE status <> 'pending'";
    let total_before = app.count(totals).await;

    // Act: back up while the server runs, then restore into a new, empty cluster.
    let dir = scratch_dir("backup");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("drill.dump");
    let (ok, said) = zhifu(&db, &dir, &["backup", "--to", file.to_str().unwrap()]);
    assert!(ok, "backup: {said}");
    assert!(said.contains("backup written"), "{said}");
    assert!(!dir.join("drill.dump.partial").exists(), "no partial file is left");
    app.shutdown().await;
    let (cluster, _) = own_cluster(scratch_dir("restore-pg")).await;
    let target = cluster.pg_config("zhifu");
    let (ok, said) = zhifu(&target, &dir, &["restore", file.to_str().unwrap()]);
    assert!(ok, "restore: {said}");

    // Assert: every table, row and sequence is back.
    assert_eq!(fingerprint(&target).await, before);
    let restored = spawn_app_on(target.clone(), |_| {}).await;
    assert_eq!(restored.count(totals).await, total_before);
    let status = restored.get(&format!("/api/payments/{}", paid[1])).await.json();
    assert_eq!(status["refunded_fen"], 1_000);
    assert_eq!(restored.get(&image_url).await.body, image_bytes, "the image is back");

    // A restore never runs under a serving instance, nor over data without --force.
    let (ok, said) = zhifu(&target, &dir, &["restore", "--force", file.to_str().unwrap()]);
    assert!(!ok && said.contains("server is running"), "{said}");
    restored.shutdown().await;
    let (ok, said) = zhifu(&target, &dir, &["restore", file.to_str().unwrap()]);
    assert!(!ok && said.contains("--force"), "{said}");
    let (ok, said) = zhifu(&target, &dir, &["restore", "--force", file.to_str().unwrap()]);
    assert!(ok, "restore --force: {said}");
    assert_eq!(fingerprint(&target).await, before);
    cluster.stop(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_dump_of_a_newer_migration_level_is_refused_with_what_to_do() {
    let db = fresh_database().await;
    psql(
        &db,
        "INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, '9999_future', 'x')",
    )
    .await;
    let dir = scratch_dir("backup-newer");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("newer.dump");
    let (ok, said) = zhifu(&db, &dir, &["backup", "--to", file.to_str().unwrap()]);
    assert!(ok, "{said}");
    let target = fresh_database().await;
    let before = fingerprint(&target).await;
    let (ok, said) = zhifu(&target, &dir, &["restore", "--force", file.to_str().unwrap()]);
    assert!(!ok, "{said}");
    assert!(said.contains("migration level 9999"), "{said}");
    assert!(said.contains("upgrade zhifu"), "{said}");
    assert_eq!(fingerprint(&target).await, before, "nothing was touched");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn two_instances_due_for_a_scheduled_backup_write_one_and_both_report_it() {
    let db = fresh_database().await;
    let dir = scratch_dir("scheduled-backups");
    let settings = |s: &mut zhifu::config::Settings| {
        s.backup.dir = dir.clone();
        s.backup.every_hours = 24;
        s.backup.keep = 3;
    };
    let a = spawn_app_on(db.clone(), settings).await;
    let b = spawn_app_on(db.clone(), settings).await;
    let written = eventually(Duration::from_secs(30), || async {
        a.count("SELECT count(*) FROM backup_runs WHERE finished_at IS NOT NULL")
            .await
            == 1
    })
    .await;
    assert!(written, "a scheduled backup is written at start");
    let (client, conn) = db.connect(NoTls).await.unwrap();
    let conn = tokio::spawn(conn);
    let error: Option<String> = client
        .query_one("SELECT error FROM backup_runs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(error, None, "the scheduled backup succeeds");
    drop(client);
    let _ = conn.await;
    let dumps: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(dumps.len(), 1, "one instance backed up: {dumps:?}");
    assert!(
        dumps[0].starts_with("zhifu-") && dumps[0].ends_with(".dump"),
        "{dumps:?}"
    );
    assert_eq!(a.count("SELECT count(*) FROM backup_runs").await, 1, "no second claim");
    // The instance that did not write it reports it too, once its minute comes round; the one
    // that wrote it reports it at once.
    let reported = |app: &crate::helpers::TestApp| {
        let metrics = app.state.last_backup.unix_seconds();
        metrics > 0
    };
    assert!(reported(&a) || reported(&b), "the writer reports the backup");
    let metrics = if reported(&a) {
        a.get("/metrics").await
    } else {
        b.get("/metrics").await
    };
    let line = metrics
        .text()
        .lines()
        .find(|l| l.starts_with("zhifu_last_backup_timestamp_seconds "))
        .map(str::to_string)
        .expect("the metric is exported");
    let at: i64 = line.split(' ').nth(1).unwrap().parse().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((now - 60..=now + 1).contains(&at), "{line}");
    a.shutdown().await;
    b.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
