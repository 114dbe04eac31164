//! Backups an operator can trust: `zhifu backup` (pg_dump, custom format, with the PostgreSQL
//! binaries the embedded cluster uses), `zhifu restore` (pg_restore in one transaction into an
//! empty database, or over one with `--force`; never under a running server; never a dump of a
//! newer migration level), and the scheduled backups of `backup.*`. Images live in the
//! database, so a dump holds everything zhifu stores.
//!
//! Every serving instance holds `store::events::SERVING_LOCK` shared on its event-bus connection; a restore
//! takes it exclusively, so the two never overlap, whether the database is embedded or not.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::config::Config;
use crate::store::embedded::{self, EmbeddedCluster, Options};
use crate::store::events::SERVING_LOCK as SERVER_LOCK;
use crate::store::{EMBEDDED_DBNAME, Store, migrate};

/// Advisory lock key that lets one instance at a time run a scheduled backup.
const SCHEDULE_LOCK: i64 = 0x7a68_6966_755f_626b; // "zhifu_bk"

/// The database a command works on, with the cluster started for it when none ran.
struct Target {
    pg: tokio_postgres::Config,
    /// The folder of `pg_dump` / `pg_restore`.
    bin: PathBuf,
    /// A cluster this command started (stopped when the command ends).
    started: Option<EmbeddedCluster>,
    /// An embedded cluster that a running server owns.
    served: bool,
    /// `database.tls_ca_file` for libpq, when the URL asks for TLS.
    ca_file: Option<PathBuf>,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(cluster) = &self.started {
            cluster.stop(Duration::from_secs(10));
        }
    }
}

/// Opens the configured database for a one-off command: `database.url`, the embedded cluster
/// a running server runs, or the embedded cluster started (and created) for the command.
async fn target(config: &Config) -> anyhow::Result<Target> {
    let db = &config.settings.database;
    let bin_dir = (!db.embedded.bin_dir.as_os_str().is_empty()).then_some(db.embedded.bin_dir.as_path());
    if !db.url.is_empty() {
        let pg: tokio_postgres::Config = db
            .url
            .expose()
            .parse()
            .map_err(|_| anyhow::anyhow!("database.url is not a PostgreSQL connection string"))?;
        return Ok(Target {
            pg,
            bin: client_bin_dir(bin_dir)?,
            started: None,
            served: false,
            ca_file: (!db.tls_ca_file.as_os_str().is_empty()).then(|| db.tls_ca_file.clone()),
        });
    }
    let bin = tools_dir(config)?;
    if let Some(pg) = embedded::running_cluster(&config.data_dir, EMBEDDED_DBNAME) {
        return Ok(Target {
            pg,
            bin,
            started: None,
            served: true,
            ca_file: None,
        });
    }
    let options = Options {
        data_dir: config.data_dir.clone(),
        bin_dir: bin_dir.map(Path::to_path_buf),
        ephemeral: false,
    };
    let cluster = tokio::task::spawn_blocking(move || EmbeddedCluster::start(&options)).await??;
    crate::store::ensure_database(&cluster.pg_config("postgres"), EMBEDDED_DBNAME).await?;
    Ok(Target {
        pg: cluster.pg_config(EMBEDDED_DBNAME),
        bin,
        started: Some(cluster),
        served: false,
        ca_file: None,
    })
}

/// The database a running server's `store` uses (scheduled backups).
fn served_target(config: &Config, store: &Store) -> anyhow::Result<Target> {
    let db = &config.settings.database;
    Ok(Target {
        pg: store.pg_config.clone(),
        bin: tools_dir(config)?,
        started: None,
        served: true,
        ca_file: (!db.tls_ca_file.as_os_str().is_empty()).then(|| db.tls_ca_file.clone()),
    })
}

/// Where `pg_dump` and `pg_restore` are: beside the embedded cluster's server binaries, or
/// for `database.url` as [`client_bin_dir`] finds them.
fn tools_dir(config: &Config) -> anyhow::Result<PathBuf> {
    let db = &config.settings.database;
    let bin_dir = (!db.embedded.bin_dir.as_os_str().is_empty()).then_some(db.embedded.bin_dir.as_path());
    if !db.url.is_empty() {
        return client_bin_dir(bin_dir);
    }
    // Beside `postgres` itself (links followed: a linked `postgres` may stand alone).
    let server = embedded::find_binaries(bin_dir)?;
    let beside = std::fs::canonicalize(server.join("postgres"))
        .ok()
        .and_then(|real| real.parent().map(Path::to_path_buf))
        .into_iter()
        .chain([server])
        .find(|dir| dir.join("pg_dump").is_file() && dir.join("pg_restore").is_file());
    match beside {
        Some(dir) => Ok(dir),
        None => client_bin_dir(None),
    }
}

/// Where `pg_dump` and `pg_restore` are for an external database: `bin_dir`, else `PATH`,
/// else the server binaries' folder.
fn client_bin_dir(bin_dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = bin_dir {
        return Ok(dir.to_path_buf());
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|dir| dir.join("pg_dump").is_file() && dir.join("pg_restore").is_file());
    match on_path {
        Some(dir) => Ok(dir),
        None => embedded::find_binaries(None).context(
            "pg_dump and pg_restore were not found (fix: apt-get install postgresql-client, or set database.embedded.bin_dir)",
        ),
    }
}

impl Target {
    /// `tool` (pg_dump, pg_restore) with the connection in libpq's environment variables: a
    /// password never appears in the process list.
    fn command(&self, tool: &str) -> Command {
        let mut command = Command::new(self.bin.join(tool));
        command.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        match self.pg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Unix(path)) => command.env("PGHOST", path),
            Some(tokio_postgres::config::Host::Tcp(name)) => command.env("PGHOST", name),
            None => &mut command,
        };
        if let Some(port) = self.pg.get_ports().first() {
            command.env("PGPORT", port.to_string());
        }
        if let Some(user) = self.pg.get_user() {
            command.env("PGUSER", user);
        }
        if let Some(password) = self.pg.get_password() {
            command.env("PGPASSWORD", String::from_utf8_lossy(password).into_owned());
        }
        if let Some(dbname) = self.pg.get_dbname() {
            command.env("PGDATABASE", dbname);
        }
        match (self.pg.get_ssl_mode(), &self.ca_file) {
            (tokio_postgres::config::SslMode::Require, Some(ca)) => {
                command.env("PGSSLMODE", "verify-full").env("PGSSLROOTCERT", ca);
            }
            (tokio_postgres::config::SslMode::Require, None) => {
                command.env("PGSSLMODE", "require");
            }
            _ => {
                command.env("PGSSLMODE", "prefer");
            }
        }
        command.env("PGAPPNAME", "zhifu-backup").env("PGCONNECT_TIMEOUT", "10");
        command
    }

    /// A one-connection pool on the target (TLS as the server would connect).
    fn pool(&self) -> anyhow::Result<Store> {
        Store::connect_with(
            self.pg.clone(),
            1,
            Duration::from_secs(10),
            None,
            self.ca_file.as_deref(),
        )
    }
}

/// Runs `command`, failing with its own error output when it fails.
fn run(mut command: Command, what: &str) -> anyhow::Result<Vec<u8>> {
    let output = command
        .output()
        .with_context(|| format!("cannot run {what} (is PostgreSQL's client installed?)"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        bail!("{what} failed ({}): {}", output.status, stderr.trim());
    }
    Ok(output.stdout)
}

/// The file name of a backup taken `at`: `zhifu-20261206T023000Z.dump`.
pub fn file_name(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "zhifu-{:04}{:02}{:02}T{:02}{:02}{:02}Z.dump",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// What a backup wrote.
#[derive(Debug, Clone)]
pub struct Written {
    pub file: PathBuf,
    pub bytes: u64,
    pub took: Duration,
}

/// `zhifu backup [--to FILE]`: dumps the database (custom format) to `to`, else a new file
/// named by the time in `backup.dir` (else the working directory). Works while a server runs.
/// The dump is written beside its final name and renamed once complete, so a file with the
/// final name is always a whole dump.
pub async fn backup(config: &Config, to: Option<PathBuf>) -> anyhow::Result<Written> {
    let written = dump_to(config, to).await?;
    // Recorded so that every instance's metric sees it; the dump is good either way.
    if let Err(e) = record(config, &written).await {
        tracing::warn!(
            error = format!("{e:#}"),
            "the backup is written but could not be recorded in the database"
        );
    }
    Ok(written)
}

async fn record(config: &Config, written: &Written) -> anyhow::Result<()> {
    let target = target(config).await?;
    let pool = target.pool()?;
    let bytes = i64::try_from(written.bytes).unwrap_or(i64::MAX);
    pool.client()
        .await?
        .execute(
            "INSERT INTO backup_runs (file, started_at, finished_at, bytes)
             VALUES ($1, now() - make_interval(secs => $2), now(), $3)",
            &[&written.file.display().to_string(), &written.took.as_secs_f64(), &bytes],
        )
        .await?;
    Ok(())
}

/// The dump of [`backup`], unrecorded.
async fn dump_to(config: &Config, to: Option<PathBuf>) -> anyhow::Result<Written> {
    let target = target(config).await?;
    let file = match to {
        Some(file) => file,
        None => config
            .backup_dir
            .clone()
            .unwrap_or_default()
            .join(file_name(OffsetDateTime::now_utc())),
    };
    tokio::task::spawn_blocking(move || dump(&target, &file)).await?
}

fn dump(target: &Target, file: &Path) -> anyhow::Result<Written> {
    let started = Instant::now();
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let partial = file.with_extension("dump.partial");
    let mut command = target.command("pg_dump");
    command.arg("--format=custom").arg("--file").arg(&partial);
    if let Err(e) = run(command, "pg_dump") {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot sync {}", partial.display()))?;
    std::fs::rename(&partial, file).with_context(|| format!("cannot rename the dump to {}", file.display()))?;
    let bytes = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    Ok(Written {
        file: file.to_path_buf(),
        bytes,
        took: started.elapsed(),
    })
}

/// The migration level recorded in a dump's `schema_migrations` (read without restoring).
pub fn dump_level(config: &Config, file: &Path) -> anyhow::Result<i32> {
    let mut command = Command::new(tools_dir(config)?.join("pg_restore"));
    command
        .args(["--data-only", "--table=schema_migrations", "--file=-"])
        .arg(file);
    let sql = run(command, "pg_restore (reading the dump's migration level)")?;
    level_of(&String::from_utf8_lossy(&sql)).with_context(|| {
        format!(
            "{} holds no zhifu migration table; is it a zhifu backup (made by zhifu backup)?",
            file.display()
        )
    })
}

/// The highest version in the `COPY … schema_migrations` block of a plain SQL dump.
fn level_of(sql: &str) -> Option<i32> {
    let mut lines = sql
        .lines()
        .skip_while(|line| !line.starts_with("COPY ") || !line.contains("schema_migrations"));
    lines.next()?;
    lines
        .take_while(|line| *line != "\\.")
        .filter_map(|line| line.split('\t').next()?.parse::<i32>().ok())
        .max()
}

/// The migration level this binary brings.
pub fn binary_level() -> i32 {
    migrate::MIGRATIONS.last().map_or(0, |m| m.0)
}

/// What a restore put back.
#[derive(Debug, Clone)]
pub struct Restored {
    /// Tables in the database afterwards.
    pub tables: i64,
    /// The dump's migration level, and this binary's (pending ones apply at the next start).
    pub level: i32,
    pub binary_level: i32,
    pub took: Duration,
}

/// `zhifu restore FILE [--force]`: refuses a dump of a newer migration level than this
/// binary's, a database a server is running on, and a database that holds tables unless
/// `force`; then restores the dump in one transaction (all or nothing).
pub async fn restore(config: &Config, file: &Path, force: bool) -> anyhow::Result<Restored> {
    let started = Instant::now();
    anyhow::ensure!(file.is_file(), "{} is not a file", file.display());
    let level = {
        let (config, file) = (config.clone(), file.to_path_buf());
        tokio::task::spawn_blocking(move || dump_level(&config, &file)).await??
    };
    let ours = binary_level();
    if level > ours {
        bail!(
            "this dump is at migration level {level}, newer than this zhifu (level {ours}); \
             restore it with the zhifu version that made it, or upgrade zhifu first"
        );
    }
    let target = target(config).await?;
    if target.served {
        bail!(
            "a zhifu server is running on the embedded database in {}; stop it first (e.g. systemctl stop zhifu), then restore",
            config.data_dir.display()
        );
    }
    // Session-level: the lock lasts as long as this connection, i.e. the whole restore.
    let pool = target.pool()?;
    let client = pool.client().await?;
    let locked: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&SERVER_LOCK])
        .await?
        .get(0);
    if !locked {
        bail!("a zhifu server is running on this database; stop every instance first, then restore");
    }
    let tables = count_tables(&client).await?;
    if tables > 0 {
        if !force {
            bail!(
                "the database already holds {tables} tables; restore into an empty database, \
                 or pass --force to replace everything in it"
            );
        }
        client
            .batch_execute("BEGIN; DROP SCHEMA public CASCADE; CREATE SCHEMA public; COMMIT;")
            .await
            .context("cannot empty the database for --force")?;
    }
    let mut command = target.command("pg_restore");
    command
        .args([
            "--single-transaction",
            "--exit-on-error",
            "--no-owner",
            "--no-privileges",
            "--dbname",
        ])
        .arg(target.pg.get_dbname().unwrap_or(EMBEDDED_DBNAME))
        .arg(file);
    let outcome = tokio::task::spawn_blocking(move || run(command, "pg_restore")).await?;
    // The lock goes with the connection; keep it until pg_restore is done.
    let tables = count_tables(&client).await;
    drop(client);
    drop(pool);
    outcome?;
    Ok(Restored {
        tables: tables?,
        level,
        binary_level: ours,
        took: started.elapsed(),
    })
}

async fn count_tables(client: &deadpool_postgres::Client) -> anyhow::Result<i64> {
    Ok(client
        .query_one("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", &[])
        .await?
        .get(0))
}

/// `zhifu backup [--to FILE]` from the command line: what it did, in a sentence.
pub fn run_backup(config: Config, to: Option<PathBuf>) -> anyhow::Result<String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let written = runtime.block_on(backup(&config, to))?;
    Ok(format!(
        "backup written: {} ({} in {:.1} s); restore it with: zhifu restore {}",
        written.file.display(),
        human_bytes(written.bytes),
        written.took.as_secs_f64(),
        written.file.display()
    ))
}

/// `zhifu restore FILE [--force]` from the command line: what it did, in a sentence.
pub fn run_restore(config: Config, file: PathBuf, force: bool) -> anyhow::Result<String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let restored = runtime.block_on(restore(&config, &file, force))?;
    let pending = if restored.level < restored.binary_level {
        format!(
            "; migrations {}..={} apply when the server starts (or run zhifu migrate)",
            restored.level + 1,
            restored.binary_level
        )
    } else {
        String::new()
    };
    Ok(format!(
        "restored {} ({} tables, migration level {}) in {:.1} s{pending}",
        file.display(),
        restored.tables,
        restored.level,
        restored.took.as_secs_f64()
    ))
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / f64::from(1u32 << 30)),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}

/// The time of the last completed backup, for `/metrics` (0 = none yet). Every instance reads
/// it from the database, so each reports the same.
#[derive(Debug, Default)]
pub struct LastBackup(AtomicI64);

impl LastBackup {
    /// Unix seconds of the last completed backup, 0 when none.
    pub fn unix_seconds(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Scheduled backups: every minute, refreshes [`LastBackup`] and, when the last backup is
/// `backup.every_hours` old, one instance (the one that wins the claim) dumps to `backup.dir`
/// and keeps the newest `backup.keep` files there.
pub async fn schedule(config: Arc<Config>, store: Store, last: Arc<LastBackup>, mut shutdown: watch::Receiver<bool>) {
    let every_hours = i32::try_from(config.settings.backup.every_hours).unwrap_or(i32::MAX);
    loop {
        match tick(&config, &store, &last, every_hours).await {
            Ok(Some(written)) => tracing::info!(
                file = %written.file.display(),
                bytes = written.bytes,
                ms = written.took.as_millis() as u64,
                "scheduled backup written"
            ),
            Ok(None) => {}
            Err(e) => tracing::warn!(
                error = format!("{e:#}"),
                "scheduled backup failed; retrying in a minute"
            ),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

/// One minute's work of [`schedule`].
async fn tick(config: &Config, store: &Store, last: &LastBackup, every_hours: i32) -> anyhow::Result<Option<Written>> {
    const LAST: &str = "SELECT COALESCE(extract(epoch FROM max(finished_at))::bigint, 0)
                          FROM backup_runs WHERE error IS NULL AND finished_at IS NOT NULL";
    // Claims the run when none completed within the interval and none is under way (a run
    // that never finished stops counting as under way after an hour). Runs after the lock
    // is taken, in a statement of its own: its snapshot then sees the last claimer's commit.
    const CLAIM: &str = "INSERT INTO backup_runs (file)
        SELECT $1 WHERE NOT EXISTS (
            SELECT 1 FROM backup_runs
             WHERE (finished_at IS NOT NULL AND error IS NULL AND started_at > now() - make_interval(hours => $2::int))
                OR (finished_at IS NULL AND started_at > now() - interval '1 hour'))
        RETURNING id";
    const FINISH: &str = "UPDATE backup_runs SET finished_at = now(), bytes = $2, error = $3 WHERE id = $1";
    let mut client = store.job_client().await?;
    last.0
        .store(client.query_one(LAST, &[]).await?.get(0), Ordering::Relaxed);
    let Some(dir) = config.backup_dir.clone() else {
        return Ok(None);
    };
    if every_hours == 0 {
        return Ok(None);
    }
    let file = dir.join(file_name(OffsetDateTime::now_utc()));
    let tx = client.transaction().await?;
    let locked: bool = tx
        .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&SCHEDULE_LOCK])
        .await?
        .get(0);
    if !locked {
        return Ok(None);
    }
    let claimed = tx
        .query_opt(CLAIM, &[&file.display().to_string(), &every_hours])
        .await?;
    tx.commit().await?;
    let Some(row) = claimed else { return Ok(None) };
    let id: i64 = row.get(0);
    drop(client);
    let target = served_target(config, store)?;
    let outcome = tokio::task::spawn_blocking(move || dump(&target, &file)).await?;
    let client = store.job_client().await?;
    match &outcome {
        Ok(written) => {
            let bytes = i64::try_from(written.bytes).unwrap_or(i64::MAX);
            client.execute(FINISH, &[&id, &bytes, &None::<String>]).await?;
            last.0
                .store(client.query_one(LAST, &[]).await?.get(0), Ordering::Relaxed);
            prune(&dir, config.settings.backup.keep)?;
        }
        Err(e) => {
            client.execute(FINISH, &[&id, &0i64, &Some(format!("{e:#}"))]).await?;
        }
    }
    outcome.map(Some)
}

/// Keeps the newest `keep` backups (`zhifu-*.dump`) in `dir`, removing older ones.
fn prune(dir: &Path, keep: u32) -> anyhow::Result<()> {
    let mut dumps: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("zhifu-") && n.ends_with(".dump"))
        })
        .collect();
    // The names sort by time.
    dumps.sort();
    let excess = dumps.len().saturating_sub(keep.max(1) as usize);
    for old in &dumps[..excess] {
        std::fs::remove_file(old).with_context(|| format!("cannot remove the old backup {}", old.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_files_are_named_by_utc_time_and_sort_by_it() {
        let at = OffsetDateTime::from_unix_timestamp(1_796_500_800).unwrap();
        assert_eq!(file_name(at), "zhifu-20261205T200000Z.dump");
        assert!(file_name(at) < file_name(at + Duration::from_secs(1)));
    }

    #[test]
    fn the_level_is_read_from_the_migrations_copy_block() {
        let sql = "SET x;\nCOPY public.schema_migrations (version, name, checksum, applied_at) FROM stdin;\n\
                   1\t0001_init\tab\t2026-01-01\n12\t0012_x\tcd\t2026-01-02\n3\t0003\tef\t2026\n\\.\n\nCOPY other FROM stdin;\n99\n\\.\n";
        assert_eq!(level_of(sql), Some(12));
        assert_eq!(level_of("COPY other FROM stdin;\n5\n\\.\n"), None);
    }

    #[test]
    fn pruning_keeps_the_newest_dumps_and_nothing_else_is_touched() {
        let dir = std::env::temp_dir().join(format!("zhifu-prune-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in [
            "zhifu-20260101T000000Z.dump",
            "zhifu-20260102T000000Z.dump",
            "zhifu-20260103T000000Z.dump",
            "notes.txt",
        ] {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        prune(&dir, 2).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "notes.txt",
                "zhifu-20260102T000000Z.dump",
                "zhifu-20260103T000000Z.dump"
            ]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
