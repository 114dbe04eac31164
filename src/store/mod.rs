//! The store: a deadpool-postgres pool over either `database.url` or the embedded private
//! cluster, the migration runner, the LISTEN/NOTIFY event bus and the audit log every module
//! writes to. No business logic here.

pub mod audit;
pub mod embedded;
pub mod events;
pub mod flights;
pub mod fresh;
pub mod hot;
pub mod migrate;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use std::path::Path;

use anyhow::Context;
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::Config;
use embedded::{EmbeddedCluster, Options};

/// The database name the embedded cluster serves the application from.
pub const EMBEDDED_DBNAME: &str = "zhifu";

/// Why a database operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No connection could be had in time: the database is down or overloaded.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database answered with an error.
    #[error("database error: {0}")]
    Db(#[from] tokio_postgres::Error),
}

impl StoreError {
    /// True when retrying later may succeed (connection lost, pool timeout, the server
    /// shutting down or starting up).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Db(e) => e.is_closed() || e.code().is_none_or(|code| unavailable_sqlstate(code.code())),
        }
    }
}

/// SQLSTATE classes 08 (connection exception) and 57 (operator intervention: `57P01`
/// admin_shutdown is what a stopping server answers a query in flight, `57P03` one starting).
/// Query cancellation (`57014`) is the query's own failure, not the server's.
fn unavailable_sqlstate(code: &str) -> bool {
    code.starts_with("08") || (code.starts_with("57") && code != "57014")
}

impl From<PoolError> for StoreError {
    fn from(e: PoolError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

/// A rustls connector trusting the public roots and the certificates in `ca_file`.
fn tls_connector(ca_file: Option<&Path>) -> anyhow::Result<MakeRustlsConnect> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let fix = || {
            format!(
                "database.tls_ca_file: cannot read PEM certificates from {}",
                path.display()
            )
        };
        let mut added = 0;
        for cert in CertificateDer::pem_file_iter(path).with_context(fix)? {
            roots.add(cert.with_context(fix)?).with_context(fix)?;
            added += 1;
        }
        anyhow::ensure!(
            added > 0,
            "database.tls_ca_file: {} holds no certificate",
            path.display()
        );
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .context("TLS for the database")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// How long a request waits on the database before it answers 503. A database that stops
/// answering without closing its connections (a frozen server, a network partition) would
/// otherwise hold requests forever: neither the pool's timeouts nor a server-side
/// `statement_timeout` reach a query already sent.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(4);

/// `work` (database work) bounded by [`ANSWER_WITHIN`]: `Unavailable` when it takes longer.
/// Dropping the work mid-transaction rolls it back, so nothing half-done is committed.
pub async fn bounded<T, E: From<StoreError>>(work: impl Future<Output = Result<T, E>>) -> Result<T, E> {
    tokio::time::timeout(ANSWER_WITHIN, work)
        .await
        .unwrap_or_else(|_| Err(StoreError::Unavailable("the database did not answer in time".into()).into()))
}

/// The pool, the settings its connections use, and the embedded cluster when there is one.
#[derive(Clone)]
pub struct Store {
    pub pool: Pool,
    /// Settings for dedicated connections (the event listener).
    pub pg_config: tokio_postgres::Config,
    /// TLS for connections, when `sslmode=require` asks for it.
    pub tls: Option<MakeRustlsConnect>,
    /// Kept alive here so the cluster outlives every user of the pool.
    cluster: Option<Arc<EmbeddedCluster>>,
    /// Connections handed out by [`Store::client`]: every database use goes through it, so
    /// an unchanged count proves a request was served from memory.
    checkouts: Arc<AtomicU64>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("status", &self.pool.status()).finish()
    }
}

impl Store {
    /// Opens the configured database: `database.url`, or the embedded cluster (started, and
    /// created on first start) with its `zhifu` database.
    pub async fn open(config: &Config) -> anyhow::Result<Store> {
        let db = &config.settings.database;
        let timeout = Duration::from_secs(db.connect_timeout_secs);
        if !db.url.is_empty() {
            let pg_config: tokio_postgres::Config = db
                .url
                .expose()
                .parse()
                .map_err(|_| anyhow::anyhow!("database.url is not a PostgreSQL connection string"))?;
            let ca_file = (!db.tls_ca_file.as_os_str().is_empty()).then_some(db.tls_ca_file.as_path());
            return Store::connect_with(pg_config, db.pool_size, timeout, None, ca_file);
        }
        let options = Options {
            data_dir: config.data_dir.clone(),
            bin_dir: (!db.embedded.bin_dir.as_os_str().is_empty()).then(|| db.embedded.bin_dir.clone()),
            ephemeral: false,
        };
        let cluster = tokio::task::spawn_blocking(move || EmbeddedCluster::start(&options)).await??;
        ensure_database(&cluster.pg_config("postgres"), EMBEDDED_DBNAME).await?;
        let pg_config = cluster.pg_config(EMBEDDED_DBNAME);
        Store::connect(pg_config, db.pool_size, timeout, Some(Arc::new(cluster)))
    }

    /// For one-off commands (`zhifu admin …`): the embedded cluster a running server already
    /// runs when there is one (two processes cannot run one cluster), else [`Store::open`].
    pub async fn open_beside_server(config: &Config) -> anyhow::Result<Store> {
        let db = &config.settings.database;
        if db.url.is_empty()
            && let Some(pg_config) = embedded::running_cluster(&config.data_dir, EMBEDDED_DBNAME)
        {
            let timeout = Duration::from_secs(db.connect_timeout_secs);
            return Store::connect(pg_config, 2, timeout, None);
        }
        Store::open(config).await
    }

    /// A pool over `pg_config` (no connection is made until first use).
    pub fn connect(
        pg_config: tokio_postgres::Config,
        pool_size: usize,
        timeout: Duration,
        cluster: Option<Arc<EmbeddedCluster>>,
    ) -> anyhow::Result<Store> {
        Store::connect_with(pg_config, pool_size, timeout, cluster, None)
    }

    /// [`Store::connect`], trusting the CA certificates in `ca_file` too when the settings
    /// say `sslmode=require`. With `require` the server's certificate is verified (public
    /// roots and `ca_file`) and its name checked; `prefer` and `disable` connect without
    /// TLS, as before.
    pub fn connect_with(
        mut pg_config: tokio_postgres::Config,
        pool_size: usize,
        timeout: Duration,
        cluster: Option<Arc<EmbeddedCluster>>,
        ca_file: Option<&Path>,
    ) -> anyhow::Result<Store> {
        pg_config.connect_timeout(timeout);
        if pg_config.get_application_name().is_none() {
            pg_config.application_name("zhifu");
        }
        let tls = match pg_config.get_ssl_mode() {
            SslMode::Require => Some(tls_connector(ca_file)?),
            _ => None,
        };
        let manager_config = || ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match &tls {
            Some(tls) => Manager::from_config(pg_config.clone(), tls.clone(), manager_config()),
            None => Manager::from_config(pg_config.clone(), NoTls, manager_config()),
        };
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(Duration::from_secs(1)))
            .runtime(Runtime::Tokio1)
            .build()?;
        Ok(Store {
            pool,
            pg_config,
            tls,
            cluster,
            checkouts: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The embedded cluster, when the store runs one.
    pub fn cluster(&self) -> Option<&Arc<EmbeddedCluster>> {
        self.cluster.as_ref()
    }

    /// A connection from the pool, or `Unavailable` within the configured timeout.
    pub async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.checkouts.fetch_add(1, Ordering::Relaxed);
        Ok(self.pool.get().await?)
    }

    /// A connection for a background job (reconcile, purges, mail, backups…): the same pool,
    /// but not counted in [`Store::checkouts`], which tells what requests did.
    pub async fn job_client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        Ok(self.pool.get().await?)
    }

    /// How many times a request took a connection from the pool since start (background
    /// jobs use [`Store::job_client`] and are not counted).
    pub fn checkouts(&self) -> u64 {
        self.checkouts.load(Ordering::Relaxed)
    }

    /// Round trip to the database (`/readyz`), bounded by `timeout`.
    pub async fn ping(&self, timeout: Duration) -> Result<(), StoreError> {
        let check = async {
            let client = self.client().await?;
            client.simple_query("SELECT 1").await?;
            Ok(())
        };
        tokio::time::timeout(timeout, check)
            .await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("no answer in time".into())))
    }
}

/// Creates `dbname` through `admin` (a connection to another database) unless it exists.
pub async fn ensure_database(admin: &tokio_postgres::Config, dbname: &str) -> anyhow::Result<()> {
    let (client, connection) = admin.connect(NoTls).await?;
    let conn = tokio::spawn(connection);
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&dbname])
        .await?
        .is_some();
    if !exists {
        let sql = format!("CREATE DATABASE \"{}\"", dbname.replace('"', "\"\""));
        if let Err(e) = client.batch_execute(&sql).await {
            // Another instance may have created it between our check and now.
            if e.code() != Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) {
                return Err(e.into());
            }
        }
    }
    drop(client);
    let _ = conn.await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::unavailable_sqlstate;

    #[test]
    fn a_stopping_or_unreachable_server_is_unavailable_and_a_bad_query_is_not() {
        for code in ["57P01", "57P02", "57P03", "08006", "08001"] {
            assert!(unavailable_sqlstate(code), "{code}");
        }
        for code in ["23505", "40001", "42P01", "57014"] {
            assert!(!unavailable_sqlstate(code), "{code}");
        }
    }
}
