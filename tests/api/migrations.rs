//! The migration runner: idempotent, safe when instances start together, refuses drift.

use tokio_postgres::NoTls;
use zhifu::store::migrate::{self, MIGRATIONS, MigrateError};

use crate::helpers::{cluster, psql};

async fn empty_database(name: &str) -> tokio_postgres::Config {
    let admin = cluster().cluster.pg_config("postgres");
    let name = format!("{name}_{}", std::process::id());
    psql(&admin, &format!("DROP DATABASE IF EXISTS {name}")).await;
    psql(&admin, &format!("CREATE DATABASE {name}")).await;
    cluster().cluster.pg_config(&name)
}

async fn connect(config: &tokio_postgres::Config) -> tokio_postgres::Client {
    let (client, conn) = config.connect(NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

#[tokio::test]
async fn instances_migrating_at_once_apply_each_migration_exactly_once() {
    let db = empty_database("mig_race").await;
    let runs = (0..4).map(|_| {
        let db = db.clone();
        tokio::spawn(async move {
            let mut client = connect(&db).await;
            migrate::run(&mut client).await.map(|applied| applied.len())
        })
    });
    let mut total_applied = 0;
    for run in runs {
        total_applied += run.await.unwrap().expect("every instance migrates without error");
    }
    assert_eq!(
        total_applied,
        MIGRATIONS.len(),
        "each migration applied by exactly one instance"
    );

    let client = connect(&db).await;
    let rows: i64 = client
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, MIGRATIONS.len() as i64);
    let seeded: i64 = client
        .query_one("SELECT count(*) FROM categories WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(seeded, 1);
}

#[tokio::test]
async fn an_applied_migration_that_changed_is_refused() {
    let db = empty_database("mig_drift").await;
    let mut client = connect(&db).await;
    migrate::run(&mut client).await.unwrap();
    client
        .execute(
            "UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1",
            &[],
        )
        .await
        .unwrap();
    let err = migrate::run(&mut client).await.unwrap_err();
    assert!(matches!(err, MigrateError::Drift { .. }), "{err}");
    assert!(err.to_string().contains("0001_init"));
}

#[tokio::test]
async fn a_database_from_a_newer_binary_is_refused() {
    let db = empty_database("mig_newer").await;
    let mut client = connect(&db).await;
    migrate::run(&mut client).await.unwrap();
    client
        .execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, '9999_future', 'x')",
            &[],
        )
        .await
        .unwrap();
    let err = migrate::run(&mut client).await.unwrap_err();
    assert!(matches!(err, MigrateError::Newer { version: 9999, .. }), "{err}");
}
