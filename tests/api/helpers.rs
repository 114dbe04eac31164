//! `spawn_app()`: the app on port 0 over a fresh database cloned from a migrated template on
//! the test binary's own PostgreSQL cluster; plus a small HTTP client.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::oneshot;
use tokio_postgres::NoTls;
use zhifu::app::{Application, State};
use zhifu::config::{self, Config, Settings};
use zhifu::store::embedded::{EmbeddedCluster, Options};
use zhifu::store::{Store, migrate};

const TEMPLATE_DB: &str = "zhifu_template";

/// The test binary's cluster: started once, killed with the process (parent-death signal).
pub struct TestCluster {
    pub cluster: EmbeddedCluster,
    next_db: AtomicU32,
}

static CLUSTER: OnceLock<TestCluster> = OnceLock::new();

/// A folder under /tmp for this test process: short paths keep the socket path legal, and the
/// `postgres` user can reach /tmp when the tests run as root.
pub fn scratch_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("zhifu-test-{}-{name}", std::process::id()))
}

/// A loopback port free at the moment of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Removes scratch folders left by test processes that no longer run.
fn remove_stale_scratch() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("zhifu-test-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

pub fn cluster() -> &'static TestCluster {
    CLUSTER.get_or_init(|| {
        // A thread of its own: tests call this from inside a runtime, and the template is
        // prepared on a runtime of its own.
        std::thread::spawn(|| {
            remove_stale_scratch();
            let cluster = EmbeddedCluster::start(&Options {
                data_dir: scratch_dir("pg"),
                bin_dir: None,
                ephemeral: true,
            })
            .expect("the test cluster starts (are the PostgreSQL server binaries installed?)");
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                zhifu::store::ensure_database(&cluster.pg_config("postgres"), TEMPLATE_DB)
                    .await
                    .expect("template database");
                let (mut client, conn) = cluster.pg_config(TEMPLATE_DB).connect(NoTls).await.unwrap();
                let conn = tokio::spawn(conn);
                migrate::run(&mut client)
                    .await
                    .expect("migrations apply to the template");
                drop(client);
                let _ = conn.await;
            });
            TestCluster {
                cluster,
                next_db: AtomicU32::new(0),
            }
        })
        .join()
        .expect("starting the test cluster")
    })
}

/// A `database.url` (libpq key-value form) for a database of a test cluster (a Unix socket,
/// no password), for tests that run the binary.
pub fn database_url(db: &tokio_postgres::Config) -> String {
    let host = match &db.get_hosts()[0] {
        tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        tokio_postgres::config::Host::Tcp(name) => name.clone(),
    };
    format!(
        "host={host} port={} user={} dbname={}",
        db.get_ports()[0],
        db.get_user().unwrap_or("postgres"),
        db.get_dbname().unwrap_or("postgres")
    )
}

/// A cluster of the test's own in `data_dir` (for tests that stop or freeze it), with the
/// application's database made; the options start it again.
pub async fn own_cluster(data_dir: PathBuf) -> (EmbeddedCluster, Options) {
    let options = Options {
        data_dir,
        bin_dir: None,
        ephemeral: true,
    };
    let cluster = tokio::task::spawn_blocking({
        let options = options.clone();
        move || EmbeddedCluster::start(&options)
    })
    .await
    .unwrap()
    .expect("cluster starts");
    zhifu::store::ensure_database(&cluster.pg_config("postgres"), "zhifu")
        .await
        .unwrap();
    (cluster, options)
}

/// Connects to `dbname` on the test cluster and runs `sql`.
pub async fn psql(pg_config: &tokio_postgres::Config, sql: &str) {
    let (client, conn) = pg_config.connect(NoTls).await.expect("connect");
    let conn = tokio::spawn(conn);
    client.batch_execute(sql).await.expect("sql runs");
    drop(client);
    let _ = conn.await;
}

/// A fresh database cloned from the migrated template; returns its connection settings.
pub async fn fresh_database() -> tokio_postgres::Config {
    let cluster = cluster();
    let n = cluster.next_db.fetch_add(1, Ordering::Relaxed);
    let name = format!("t{}_{n}", std::process::id());
    psql(
        &cluster.cluster.pg_config("postgres"),
        &format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}"),
    )
    .await;
    cluster.cluster.pg_config(&name)
}

/// Settings for tests: port 0, quiet, small pool.
pub fn test_settings() -> Settings {
    let mut settings = Settings::default();
    settings.server.listen = "127.0.0.1:0".into();
    settings.server.shutdown_grace_secs = 2;
    settings.database.pool_size = 4;
    settings.log.access = false;
    settings.payments.sandbox = true;
    settings.payments.request_timeout_secs = 5;
    // Tests drive the reconcile job themselves (`reconcile::pass`).
    settings.payments.reconcile_interval_secs = 3600;
    // And crowdfunding's settlement job (`crowdfunding::settlement::pass`).
    settings.crowdfunding.settle_interval_secs = 3600;
    // Tests share 127.0.0.1; the limit tests turn limits on themselves.
    settings.limits.create_per_minute = 0;
    settings.limits.status_per_minute = 0;
    settings.limits.login_per_minute = 0;
    // Likewise the community's posting limits.
    settings.community.min_interval_secs = 0;
    settings.community.posts_per_hour = 0;
    settings.community.comments_per_hour = 0;
    settings
}

pub fn test_config(settings: Settings) -> Config {
    config::validate(settings, None, &std::env::temp_dir()).expect("test settings are valid")
}

/// A running app.
pub struct TestApp {
    pub addr: SocketAddr,
    pub state: Arc<State>,
    pub db: tokio_postgres::Config,
    client: Client<HttpConnector, Full<Bytes>>,
    stop: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<()>>,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the contract's error shape and returns its code.
    pub fn error_code(&self) -> String {
        let json = self.json();
        assert!(json["error"]["message"].is_string(), "error without message: {json}");
        json["error"]["code"].as_str().expect("error code").to_string()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(customize: impl FnOnce(&mut Settings)) -> TestApp {
    let db = fresh_database().await;
    spawn_app_on(db, customize).await
}

/// The app over an existing database (two instances can share one).
pub async fn spawn_app_on(db: tokio_postgres::Config, customize: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings();
    customize(&mut settings);
    let config = test_config(settings);
    let store = Store::connect(
        db.clone(),
        config.settings.database.pool_size,
        Duration::from_secs(2),
        None,
    )
    .expect("pool");
    let app = Application::build(config, store).await.expect("app builds");
    let addr = app.local_addr();
    let state = Arc::clone(app.state());
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        state,
        db,
        client: Client::builder(TokioExecutor::new()).build_http(),
        stop: Some(stop),
        served: Some(served),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.request(Method::GET, path, &[], Bytes::new()).await
    }

    pub async fn request(&self, method: Method, path: &str, headers: &[(&str, &str)], body: Bytes) -> Answer {
        let mut builder = Request::builder().method(method).uri(self.url(path));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let response = tokio::time::timeout(
            Duration::from_secs(20),
            self.client.request(builder.body(Full::new(body)).unwrap()),
        )
        .await
        .expect("answer within 20 s")
        .expect("request succeeds");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// Runs `sql` on the app's database.
    pub async fn sql(&self, sql: &str) {
        psql(&self.db, sql).await;
    }

    /// The single `bigint` / `count(*)` that `sql` selects.
    pub async fn count(&self, sql: &str) -> i64 {
        let (client, conn) = self.db.connect(NoTls).await.expect("connect");
        let conn = tokio::spawn(conn);
        let n: i64 = client.query_one(sql, &[]).await.expect("query runs").get(0);
        drop(client);
        let _ = conn.await;
        n
    }

    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> Answer {
        self.request(
            Method::POST,
            path,
            &[("content-type", "application/json")],
            Bytes::from(body.to_string()),
        )
        .await
    }

    /// Creates a donation of `amount` by `channel` and returns its answer JSON (201 asserted).
    pub async fn donate(&self, amount: &str, channel: &str) -> serde_json::Value {
        let answer = self
            .post_json(
                "/api/donations",
                serde_json::json!({"amount": amount, "channel": channel, "category_id": 1, "donor_name": "测试"}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
        answer.json()
    }

    /// Pays `order_no` through the sandbox: the emulator sends the signed callback.
    pub async fn sandbox_pay(&self, order_no: &str) -> Answer {
        self.post_json(&format!("/sandbox/pay/{order_no}"), serde_json::json!({}))
            .await
    }

    /// Starts graceful shutdown and waits until the server returned.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            tokio::time::timeout(Duration::from_secs(10), served)
                .await
                .expect("the server stops within 10 s")
                .expect("the server task does not panic");
        }
    }
}

/// Polls `check` every 20 ms until it returns true or `limit` passes; returns the last result.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
