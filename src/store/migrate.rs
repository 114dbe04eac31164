//! Schema migrations: plain SQL files compiled into the binary, applied in order, each in its
//! own transaction under an advisory lock (several instances may start at once), recorded in
//! `schema_migrations` with a checksum so an edited, already-applied file is refused.

use tokio_postgres::Client;

/// `(version, name, sql)`, in order. Append only: never edit a file that has shipped.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "0001_init", include_str!("migrations/0001_init.sql")),
    (2, "0002_payments", include_str!("migrations/0002_payments.sql")),
    (3, "0003_rankings", include_str!("migrations/0003_rankings.sql")),
    (4, "0004_accounts", include_str!("migrations/0004_accounts.sql")),
    (5, "0005_money_path", include_str!("migrations/0005_money_path.sql")),
    (
        6,
        "0006_admin_indexes",
        include_str!("migrations/0006_admin_indexes.sql"),
    ),
    (7, "0007_media", include_str!("migrations/0007_media.sql")),
    (8, "0008_people", include_str!("migrations/0008_people.sql")),
    (
        9,
        "0009_notifications",
        include_str!("migrations/0009_notifications.sql"),
    ),
    (11, "0011_backups", include_str!("migrations/0011_backups.sql")),
    (12, "0012_purposes", include_str!("migrations/0012_purposes.sql")),
    (
        13,
        "0013_crowdfunding",
        include_str!("migrations/0013_crowdfunding.sql"),
    ),
    (
        16,
        "0016_mall_catalog",
        include_str!("migrations/0016_mall_catalog.sql"),
    ),
    (17, "0017_mall_orders", include_str!("migrations/0017_mall_orders.sql")),
    (19, "0019_community", include_str!("migrations/0019_community.sql")),
    (
        20,
        "0020_purpose_outbox",
        include_str!("migrations/0020_purpose_outbox.sql"),
    ),
];

/// Key of the advisory lock that serializes migrations across instances.
const LOCK_KEY: i64 = 0x7a68_6966_755f_6d67; // "zhifu_mg"

/// Why migrating failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(
        "migration {name} was changed after it was applied (checksum {applied} in the database, {ours} in this binary); restore the file and add a new migration instead"
    )]
    Drift {
        name: String,
        applied: String,
        ours: String,
    },
    #[error(
        "the database has migration {version} ({name}), newer than this binary knows; run the newer zhifu or restore a backup"
    )]
    Newer { version: i32, name: String },
    #[error("migration failed: {0}")]
    Db(#[from] tokio_postgres::Error),
}

fn checksum(sql: &str) -> String {
    let hash = sql.bytes().fold(0xcbf29ce484222325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    format!("{hash:016x}")
}

/// Applies every pending migration; returns the names applied now.
pub async fn run(client: &mut Client) -> Result<Vec<&'static str>, MigrateError> {
    let mut applied_now = Vec::new();
    for &(version, name, sql) in MIGRATIONS {
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY]).await?;
        // `IF NOT EXISTS` would otherwise send a NOTICE (logged) on every start.
        tx.batch_execute("SET LOCAL client_min_messages = warning").await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
        if let Some(row) = tx
            .query_opt(
                "SELECT version, name FROM schema_migrations ORDER BY version DESC LIMIT 1",
                &[],
            )
            .await?
        {
            let newest: i32 = row.get(0);
            let known = MIGRATIONS.last().map_or(0, |m| m.0);
            if newest > known {
                return Err(MigrateError::Newer {
                    version: newest,
                    name: row.get(1),
                });
            }
        }
        let ours = checksum(sql);
        let existing = tx
            .query_opt("SELECT checksum FROM schema_migrations WHERE version = $1", &[&version])
            .await?;
        match existing {
            Some(row) => {
                let applied: String = row.get(0);
                if applied != ours {
                    return Err(MigrateError::Drift {
                        name: name.to_string(),
                        applied,
                        ours,
                    });
                }
            }
            None => {
                tx.batch_execute(sql).await?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    &[&version, &name, &ours],
                )
                .await?;
                applied_now.push(name);
            }
        }
        tx.commit().await?;
    }
    Ok(applied_now)
}
