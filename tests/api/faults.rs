//! Faults survived: the binary killed with SIGKILL in the middle of a callback storm,
//! PostgreSQL stopped under load and started again, the providers' gateways hanging or down,
//! and one of two instances on one database killed mid-traffic. Everything on loopback,
//! bounded in count and time; the figures are printed (`--nocapture`) for RELIABILITY.md.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tokio_postgres::NoTls;
use zhifu::pay::reconcile;
use zhifu::store::embedded::EmbeddedCluster;

use crate::helpers::{eventually, free_port, fresh_database, scratch_dir};
use crate::realmode::{FakeProviders, Gate, spawn_real_mode_app_with};

/// An HTTP client that reports a refused or cut connection as `Err` instead of failing.
#[derive(Clone)]
pub struct Http(Client<HttpConnector, Full<Bytes>>);

impl Http {
    pub fn new() -> Http {
        Http(Client::builder(TokioExecutor::new()).build_http())
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), String> {
        let mut request = Request::builder()
            .method(method)
            .uri(url)
            .body(Full::new(body))
            .unwrap();
        request.headers_mut().extend(headers.clone());
        let answer = tokio::time::timeout(Duration::from_secs(20), self.0.request(request))
            .await
            .map_err(|_| "no answer within 20 s".to_string())?
            .map_err(|e| e.to_string())?;
        let status = answer.status();
        let body = answer
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    }

    pub async fn get(&self, url: &str) -> Result<(StatusCode, Bytes), String> {
        self.send(Method::GET, url, &HeaderMap::new(), Bytes::new()).await
    }

    async fn create(
        &self,
        base: &str,
        amount: &str,
        channel: &str,
        donor: &str,
    ) -> Result<(StatusCode, Bytes), String> {
        let body = json!({"amount": amount, "channel": channel, "category_id": 1, "donor_name": donor,
                          "anonymous": donor.is_empty()});
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "application/json".parse().unwrap());
        self.send(
            Method::POST,
            &format!("{base}/api/donations"),
            &headers,
            Bytes::from(body.to_string()),
        )
        .await
    }
}

fn json_of(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(body)))
}

/// The zhifu binary in real mode over a database given by URL, logging to a file.
pub struct Zhifu {
    child: Child,
    pub base: String,
}

impl Zhifu {
    pub fn start(port: u16, database_url: &str, providers: &FakeProviders, log: &Path) -> Zhifu {
        Self::start_with(port, database_url, providers, log, &[])
    }

    /// [`start`](Self::start) with more `ZHIFU__…` variables (later ones win).
    pub fn start_with(
        port: u16,
        database_url: &str,
        providers: &FakeProviders,
        log: &Path,
        extra: &[(&str, &str)],
    ) -> Zhifu {
        let log_file = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_zhifu"));
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("ZHIFU") || k == "RUST_LOG") {
            cmd.env_remove(key);
        }
        cmd.arg("--config")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/config.yaml"))
            .envs(providers.env())
            .env("ZHIFU__DATABASE__URL", database_url)
            .env("ZHIFU__BACKUP__EVERY_HOURS", "0")
            .env("ZHIFU__DATABASE__POOL_SIZE", "4")
            .env("ZHIFU__SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("ZHIFU__SERVER__PUBLIC_URL", format!("http://127.0.0.1:{port}"))
            .env("ZHIFU__SERVER__SHUTDOWN_GRACE_SECS", "2")
            .env("ZHIFU__LOG__ACCESS", "false")
            // Callbacks are the only way to "paid" here: no reconcile pass during the test.
            .env("ZHIFU__PAYMENTS__RECONCILE_INTERVAL_SECS", "3600")
            .env("ZHIFU__LIMITS__CREATE_PER_MINUTE", "0")
            .env("ZHIFU__LIMITS__STATUS_PER_MINUTE", "0")
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file);
        Zhifu {
            child: cmd.spawn().expect("the binary starts"),
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    pub async fn wait_ready(&mut self, http: &Http) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("zhifu exited early: {status}");
            }
            if matches!(
                http.get(&format!("{}/readyz", self.base)).await,
                Ok((StatusCode::OK, _))
            ) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("zhifu not ready after 30 s");
    }

    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM; true when it exited cleanly within 10 s.
    pub fn terminate(&mut self) -> bool {
        // SAFETY: kill(2) on our own, not yet reaped child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Zhifu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lines of the log that report a panic.
pub fn panics_in(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("panicked"))
        .map(str::to_string)
        .collect()
}

async fn query_i64(db: &tokio_postgres::Config, sql: &str) -> i64 {
    let (client, conn) = db.connect(NoTls).await.expect("connect");
    let conn = tokio::spawn(conn);
    let n: i64 = client.query_one(sql, &[]).await.expect(sql).get(0);
    drop(client);
    let _ = conn.await;
    n
}

/// Paid payments, and the money and donations the ranking totals hold, which must agree.
async fn totals_agree(db: &tokio_postgres::Config) -> (i64, i64, i64, i64) {
    let paid = query_i64(db, "SELECT count(*) FROM payments WHERE status = 'paid'").await;
    let paid_fen = query_i64(
        db,
        "SELECT COALESCE(sum(amount_fen), 0)::bigint FROM payments WHERE status = 'paid'",
    )
    .await;
    let totals_count = query_i64(db, "SELECT COALESCE(sum(count), 0)::bigint FROM donation_totals").await;
    let totals_fen = query_i64(db, "SELECT COALESCE(sum(amount_fen), 0)::bigint FROM donation_totals").await;
    (paid, paid_fen, totals_count, totals_fen)
}

/// Orders whose payment was applied more than once (events or accepted callbacks).
async fn doubled(db: &tokio_postgres::Config) -> i64 {
    let events = query_i64(
        db,
        "SELECT count(*) FROM (SELECT order_no FROM payment_events WHERE kind IN ('paid', 'paid_late') \
         GROUP BY order_no HAVING count(*) > 1) d",
    )
    .await;
    let inbox = query_i64(
        db,
        "SELECT count(*) FROM (SELECT order_no FROM callback_inbox WHERE accepted AND kind = 'payment' \
         GROUP BY order_no HAVING count(*) > 1) d",
    )
    .await;
    events + inbox
}

/// Pays `order_no` at its provider, which sends the signed notification once to the order's
/// notify_url; true when that attempt was acknowledged. Paying again re-sends it.
async fn provider_pays(providers: &FakeProviders, channel: &str, order_no: &str) -> bool {
    match channel {
        "wechat" => providers.wechat.pay(order_no).await.is_ok(),
        _ => providers.alipay.pay(order_no).await.is_ok(),
    }
}

/// What the storm's fake provider did.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    retried: AtomicU64,
    acknowledged: AtomicU64,
    replays_acknowledged: AtomicU64,
    /// Orders whose first delivery was acknowledged.
    acked: Mutex<HashSet<String>>,
    /// Told by the delivery that makes a third of the orders acknowledged.
    third: tokio::sync::Notify,
}

/// Re-sends until acknowledged, as the providers do (quicker than their schedule).
async fn deliver_until_acknowledged(providers: &FakeProviders, channel: &str, no: &str, tally: &Tally) -> bool {
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut attempt = 0u64;
    loop {
        tally.sent.fetch_add(1, Ordering::Relaxed);
        if attempt > 0 {
            tally.retried.fetch_add(1, Ordering::Relaxed);
        }
        if provider_pays(providers, channel, no).await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(150 + (attempt * 37) % 150)).await;
    }
}

const DONORS: [&str; 6] = ["张三", "李四", "王五", "赵六", "钱七", "孙八"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_in_the_middle_of_a_callback_storm_loses_and_doubles_nothing() {
    let wall = Instant::now();
    const ORDERS: usize = 90;
    let providers = Arc::new(FakeProviders::start().await);
    let db = fresh_database().await;
    let url = crate::helpers::database_url(&db);
    let port = free_port();
    let dir = scratch_dir(&format!("storm-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("zhifu.log");
    let http = Http::new();
    let mut server = Zhifu::start(port, &url, &providers, &log);
    server.wait_ready(&http).await;
    let first_ready = wall.elapsed();

    // Donations from six named donors and some anonymous ones, both channels.
    let mut orders = Vec::new();
    for i in 0..ORDERS {
        let channel = if i % 2 == 0 { "wechat" } else { "alipay" };
        let donor = if i % 7 == 3 { "" } else { DONORS[i % DONORS.len()] };
        let amount = format!("{}.{:02}", 1 + i % 13, (i * 37) % 100);
        let (status, body) = http.create(&server.base, &amount, channel, donor).await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
        orders.push((json_of(&body)["order_no"].as_str().unwrap().to_string(), channel));
    }

    // The storm: every order paid at once, each notification re-sent until acknowledged, and
    // once more after that (providers do repeat acknowledged notifications).
    let storm_started = wall.elapsed();
    let tally = Arc::new(Tally::default());
    let mut storm = Vec::new();
    for (no, channel) in orders.clone() {
        let (providers, tally) = (Arc::clone(&providers), Arc::clone(&tally));
        storm.push(tokio::spawn(async move {
            if !deliver_until_acknowledged(&providers, channel, &no, &tally).await {
                return false;
            }
            tally.acked.lock().unwrap().insert(no.clone());
            if tally.acknowledged.fetch_add(1, Ordering::Relaxed) + 1 == (ORDERS / 3) as u64 {
                tally.third.notify_one();
            }
            let replayed = deliver_until_acknowledged(&providers, channel, &no, &tally).await;
            tally
                .replays_acknowledged
                .fetch_add(u64::from(replayed), Ordering::Relaxed);
            replayed
        }));
    }

    // SIGKILL the moment a third is acknowledged, with the rest in flight.
    let third = tokio::time::timeout(Duration::from_secs(20), tally.third.notified()).await;
    assert!(third.is_ok(), "a third of the storm was never acknowledged");
    server.kill9();
    let killed = wall.elapsed();
    let acked_before_kill = tally.acked.lock().unwrap().clone();
    let sent_before_kill = tally.sent.load(Ordering::Relaxed);

    // What the dead process acknowledged is in the database, and the totals match it.
    let mut lost: Vec<String> = Vec::new();
    for no in &acked_before_kill {
        let paid = query_i64(
            &db,
            &format!("SELECT count(*) FROM payments WHERE order_no = '{no}' AND status = 'paid'"),
        )
        .await;
        if paid != 1 {
            lost.push(no.clone());
        }
    }
    assert_eq!(
        lost,
        Vec::<String>::new(),
        "acknowledged before the kill, not paid after it"
    );
    let (paid_at_kill, paid_fen, totals_count, totals_fen) = totals_agree(&db).await;
    assert_eq!(
        (totals_count, totals_fen),
        (paid_at_kill, paid_fen),
        "totals at the kill"
    );
    assert!(
        (paid_at_kill as usize) < ORDERS,
        "the kill came after the storm: {paid_at_kill} of {ORDERS} already paid"
    );

    // The providers keep retrying into the void for a moment; then the restart.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut server = Zhifu::start(port, &url, &providers, &log);
    server.wait_ready(&http).await;
    let restarted = wall.elapsed();
    let delivered = tokio::time::timeout(Duration::from_secs(60), futures_util::future::join_all(storm))
        .await
        .expect("the storm ends within 60 s");
    let storm_over = wall.elapsed();
    assert!(
        delivered.into_iter().all(|d| d.unwrap()),
        "a notification was never acknowledged"
    );

    // Every order paid exactly once; nothing acknowledged was lost.
    let acked = tally.acked.lock().unwrap().clone();
    assert_eq!(acked.len(), ORDERS);
    let paid = query_i64(&db, "SELECT count(*) FROM payments WHERE status = 'paid'").await;
    let lost = ORDERS as i64 - paid;
    let doubled = doubled(&db).await;
    assert_eq!(lost, 0, "acknowledged but not paid");
    assert_eq!(doubled, 0, "paid more than once");
    let events = query_i64(
        &db,
        "SELECT count(*) FROM payment_events WHERE kind IN ('paid', 'paid_late')",
    )
    .await;
    assert_eq!(events, ORDERS as i64);
    let (paid, paid_fen, totals_count, totals_fen) = totals_agree(&db).await;
    assert_eq!(
        (totals_count, totals_fen),
        (paid, paid_fen),
        "donation_totals vs payments"
    );

    // The ranking the restarted server serves equals one computed from the payments table.
    let (status, body) = http
        .get(&format!("{}/api/rankings?range=all&size=100", server.base))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    let ranking = json_of(&body);
    let mut served: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut served_anonymous: Vec<i64> = Vec::new();
    for item in ranking["items"].as_array().unwrap() {
        let (fen, count) = (item["amount_fen"].as_i64().unwrap(), item["count"].as_i64().unwrap());
        match item["donor"].as_str().unwrap() {
            "匿名" => served_anonymous.push(fen),
            donor => assert!(
                served.insert(donor.to_string(), (fen, count)).is_none(),
                "{donor} twice"
            ),
        }
    }
    let (client, conn) = db.connect(NoTls).await.unwrap();
    let conn = tokio::spawn(conn);
    let mut expected: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut expected_anonymous: Vec<i64> = Vec::new();
    let rows = client
        .query(
            "SELECT d.donor_name, d.anonymous, p.amount_fen FROM payments p JOIN donations d USING (order_no) \
             WHERE p.status = 'paid'",
            &[],
        )
        .await
        .unwrap();
    for row in rows {
        let (name, anonymous, fen): (String, bool, i64) = (row.get(0), row.get(1), row.get(2));
        if anonymous || name.trim().is_empty() {
            expected_anonymous.push(fen);
        } else {
            let entry = expected.entry(name.trim().to_string()).or_default();
            *entry = (entry.0 + fen, entry.1 + 1);
        }
    }
    drop(client);
    let _ = conn.await;
    served_anonymous.sort_unstable();
    expected_anonymous.sort_unstable();
    assert_eq!(served, expected, "named donors' ranking rows");
    assert_eq!(served_anonymous, expected_anonymous, "anonymous ranking rows");
    assert_eq!(
        ranking["total"].as_i64().unwrap() as usize,
        expected.len() + expected_anonymous.len()
    );

    assert_eq!(panics_in(&log), Vec::<String>::new());
    assert!(server.terminate(), "the restarted server stops cleanly on SIGTERM");
    eprintln!(
        "callback storm: {ORDERS} orders; callbacks sent {}, retried {}, acknowledged {} (+{} repeats \
         acknowledged); killed with {} acknowledged, {} paid in the database and {} sent; lost {lost}, \
         doubled {doubled}; phases: ready {first_ready:.1?}, storm {storm_started:.1?}, kill {killed:.1?}, \
         ready again {restarted:.1?}, storm over {storm_over:.1?}; {:.1} s",
        tally.sent.load(Ordering::Relaxed),
        tally.retried.load(Ordering::Relaxed),
        tally.acknowledged.load(Ordering::Relaxed),
        tally.replays_acknowledged.load(Ordering::Relaxed),
        acked_before_kill.len(),
        paid_at_kill,
        sent_before_kill,
        wall.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// One request's outcome under load: which, the status (or the connection error), the error code.
type Outcome = (&'static str, Result<StatusCode, String>, String);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_postgres_stopped_under_load_the_server_answers_503_and_recovers_without_a_restart() {
    let wall = Instant::now();
    let port = free_port();
    let dir = scratch_dir(&format!("pg-down-{port}"));
    let (cluster, options) = crate::helpers::own_cluster(dir.join("pg")).await;
    let db = cluster.pg_config("zhifu");
    let providers = Arc::new(FakeProviders::start().await);
    let log = dir.join("zhifu.log");
    let http = Http::new();
    let mut server = Zhifu::start(port, &crate::helpers::database_url(&db), &providers, &log);
    server.wait_ready(&http).await;
    let base = server.base.clone();

    // Orders that will be paid while the database is down.
    let mut unpaid = Vec::new();
    for channel in ["wechat", "alipay", "wechat", "alipay"] {
        let (status, body) = http.create(&base, "8.88", channel, "停电").await.unwrap();
        assert_eq!(status, StatusCode::CREATED);
        unpaid.push((json_of(&body)["order_no"].as_str().unwrap().to_string(), channel));
    }

    // Load: four clients creating donations and reading a status, until told to stop.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let created: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut load = Vec::new();
    for (no, channel) in &unpaid {
        let (http, base, stop) = (http.clone(), base.clone(), Arc::clone(&stop));
        let (outcomes, created) = (Arc::clone(&outcomes), Arc::clone(&created));
        let status_url = format!("{base}/api/payments/{no}");
        let channel = *channel;
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let answer = http.create(&base, "1.00", channel, "负载").await;
                let code = match &answer {
                    Ok((StatusCode::CREATED, body)) => {
                        created
                            .lock()
                            .unwrap()
                            .push(json_of(body)["order_no"].as_str().unwrap().to_string());
                        String::new()
                    }
                    Ok((_, body)) => json_of(body)["error"]["code"].as_str().unwrap_or("?").to_string(),
                    Err(_) => String::new(),
                };
                outcomes.lock().unwrap().push(("create", answer.map(|a| a.0), code));
                let answer = http.get(&status_url).await;
                outcomes
                    .lock()
                    .unwrap()
                    .push(("status", answer.map(|a| a.0), String::new()));
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;

    // Creates caught mid-query by the shutdown: a lock holds their INSERTs until PostgreSQL
    // terminates every session ("terminating connection due to administrator command").
    let (locker, locker_conn) = db.connect(NoTls).await.unwrap();
    let locker_conn = tokio::spawn(locker_conn);
    locker
        .batch_execute("BEGIN; LOCK TABLE payments IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let in_flight: Vec<_> = (0..3)
        .map(|_| {
            let (http, base) = (http.clone(), base.clone());
            tokio::spawn(async move { http.create(&base, "4.00", "alipay", "半途").await })
        })
        .collect();
    // Stop only once all three wait on the lock (their provider calls may be slow on a busy
    // machine; a create reaching the database after it is back would rightly succeed).
    let waiting_since = Instant::now();
    loop {
        let waiting: i64 = locker
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                  WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO payments%'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if waiting >= 3 {
            break;
        }
        assert!(
            waiting_since.elapsed() < Duration::from_secs(20),
            "the three creates never reached their INSERT ({waiting} waiting)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // PostgreSQL goes away.
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.stop(Duration::from_secs(5));
        cluster
    })
    .await
    .unwrap();
    let down = Instant::now();
    drop(locker);
    let _ = locker_conn.await;
    // Each answer tells the truth: 503 in the contract's shape, or — when PostgreSQL let the
    // INSERT through as the lock holder was terminated and committed it before its own
    // backend stopped — 201, and then the order must be stored (checked with the others below).
    let mut caught = 0;
    for create in in_flight {
        let (status, body) = create.await.unwrap().expect("an answer, not a cut connection");
        match status {
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(json_of(&body)["error"]["code"], "service_unavailable");
                caught += 1;
            }
            StatusCode::CREATED => created
                .lock()
                .unwrap()
                .push(json_of(&body)["order_no"].as_str().unwrap().to_string()),
            other => panic!("{other}: {}", String::from_utf8_lossy(&body)),
        }
    }
    eprintln!("creates caught mid-query by the shutdown: {caught} of 3 answered 503, the rest committed first");
    let readyz = format!("{base}/readyz");
    let not_ready = eventually(Duration::from_secs(3), || async {
        matches!(http.get(&readyz).await, Ok((StatusCode::SERVICE_UNAVAILABLE, _)))
    })
    .await;
    assert!(not_ready, "readyz still 200 3 s after the database went away");
    let to_503 = down.elapsed();
    let (_, body) = http.get(&readyz).await.unwrap();
    assert_eq!(json_of(&body)["error"]["code"], "service_unavailable");

    let asked = Instant::now();
    let (status, body) = http.create(&base, "2.00", "wechat", "停电").await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json_of(&body)["error"]["code"], "service_unavailable");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "create took {:?}",
        asked.elapsed()
    );

    // The providers' notifications get their failure answers, so they will retry.
    for (no, channel) in &unpaid {
        assert!(
            !provider_pays(&providers, channel, no).await,
            "acknowledged with the database down"
        );
        if *channel == "wechat" {
            let (headers, body) = providers.wechat.payment_notification(no).unwrap();
            let (status, answer) = http
                .send(Method::POST, &format!("{base}/notify/wechat"), &headers, body.into())
                .await
                .unwrap();
            assert!(status.is_server_error(), "{status}");
            assert_eq!(json_of(&answer)["code"], "FAIL");
        } else {
            let mut headers = HeaderMap::new();
            headers.insert("content-type", "application/x-www-form-urlencoded".parse().unwrap());
            let body = providers.alipay.payment_notification(no).unwrap();
            let (_, answer) = http
                .send(Method::POST, &format!("{base}/notify/alipay"), &headers, body.into())
                .await
                .unwrap();
            assert_eq!(&answer[..], b"fail");
        }
    }
    let left = Duration::from_millis(1500).saturating_sub(down.elapsed());
    tokio::time::sleep(left).await;

    // PostgreSQL comes back; the same process recovers.
    drop(cluster);
    let restarted = tokio::task::spawn_blocking(move || EmbeddedCluster::start(&options))
        .await
        .unwrap()
        .expect("cluster starts again");
    let up = Instant::now();
    let ready = eventually(Duration::from_secs(10), || async {
        matches!(http.get(&readyz).await, Ok((StatusCode::OK, _)))
    })
    .await;
    assert!(ready, "readyz not 200 within 10 s of the database's return");
    let to_200 = up.elapsed();
    for (no, channel) in &unpaid {
        let acknowledged = eventually(Duration::from_secs(10), || provider_pays(&providers, channel, no)).await;
        assert!(
            acknowledged,
            "{channel} {no}: the retried notification was never acknowledged"
        );
    }
    let creating = eventually(Duration::from_secs(5), || async {
        matches!(
            http.create(&base, "3.00", "alipay", "恢复").await,
            Ok((StatusCode::CREATED, _))
        )
    })
    .await;
    assert!(creating, "creates did not recover");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }

    // Under load: never a cut connection, a 500 or a hang; creates 201 or the contract's 503;
    // status reads from memory throughout; every 201 is in the database.
    let outcomes = outcomes.lock().unwrap().clone();
    let mut creates_503 = 0;
    for (what, answer, code) in &outcomes {
        let status = answer
            .as_ref()
            .unwrap_or_else(|e| panic!("{what}: connection error {e}"));
        match (*what, *status) {
            ("create", StatusCode::CREATED) | ("status", StatusCode::OK) => {}
            ("create", StatusCode::SERVICE_UNAVAILABLE) => {
                assert_eq!(code, "service_unavailable");
                creates_503 += 1;
            }
            other => panic!("unexpected answer under load: {other:?}"),
        }
    }
    assert!(creates_503 > 0, "the load never met the outage");
    let created = created.lock().unwrap().clone();
    let list = created.iter().map(|no| format!("'{no}'")).collect::<Vec<_>>().join(",");
    let stored = query_i64(
        &db,
        &format!("SELECT count(*) FROM payments p JOIN donations d USING (order_no) WHERE order_no IN ({list})"),
    )
    .await;
    assert_eq!(stored, created.len() as i64, "a 201 without its order in the database");
    for (no, _) in &unpaid {
        let paid = query_i64(
            &db,
            &format!("SELECT count(*) FROM payments WHERE order_no = '{no}' AND status = 'paid'"),
        )
        .await;
        assert_eq!(paid, 1, "{no}");
    }
    assert_eq!(doubled(&db).await, 0);
    let (paid, paid_fen, totals_count, totals_fen) = totals_agree(&db).await;
    assert_eq!((totals_count, totals_fen), (paid, paid_fen));
    assert_eq!(panics_in(&log), Vec::<String>::new());
    assert!(
        server.terminate(),
        "the server stops cleanly on SIGTERM after the outage"
    );
    eprintln!(
        "postgres stopped under load: {} requests ({} creates answered 503 during the outage, {} created); \
         readyz 503 after {:?}, 200 again {:?} after the restart; {:.1} s",
        outcomes.len(),
        creates_503,
        created.len(),
        to_503,
        to_200,
        wall.elapsed().as_secs_f64()
    );
    drop(server);
    tokio::task::spawn_blocking(move || drop(restarted)).await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_provider_gateway_hanging_or_down_creates_fail_in_time_hold_no_connection_and_reconcile_catches_up() {
    let wall = Instant::now();
    let gate = Arc::new(Gate::default());
    let providers = FakeProviders::start_gated(Arc::clone(&gate)).await;
    // Nothing listens here: our callback endpoint is unreachable for the providers.
    let unreachable = free_port();
    let app = spawn_real_mode_app_with(&providers, |s| {
        s.payments.request_timeout_secs = 1;
        s.database.pool_size = 2;
        s.server.public_url = format!("http://127.0.0.1:{unreachable}");
    })
    .await;
    let timeout = Duration::from_secs(1);
    assert_eq!(app.get("/api/categories").await.status, StatusCode::OK);

    let mut slowest = Vec::new();
    for (mode, name) in [(Gate::HANG, "hanging"), (Gate::DOWN, "down")] {
        gate.set(mode);
        let before = app.count("SELECT count(*) FROM payments").await;
        let started = Instant::now();
        let creates = (0..12).map(|i| {
            let channel = if i % 2 == 0 { "wechat" } else { "alipay" };
            let app = &app;
            async move {
                let answer = app
                    .post_json(
                        "/api/donations",
                        json!({"amount": "5.00", "channel": channel, "category_id": 1}),
                    )
                    .await;
                (answer, started.elapsed())
            }
        });
        // While twelve creates wait on the gateway, no pooled connection is held for them and
        // the database still serves (the pool holds two).
        let meanwhile = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let pool = app.state.store.pool.status();
            let ready = app.get("/readyz").await.status;
            (pool.size - pool.available, pool.waiting, ready)
        };
        let (answers, (in_use, waiting, ready)) = tokio::join!(futures_util::future::join_all(creates), meanwhile);
        let took = answers.iter().map(|(_, took)| *took).max().unwrap_or_default();
        for (answer, _) in &answers {
            assert_eq!(
                answer.status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{name}: {}",
                answer.text()
            );
            assert_eq!(answer.error_code(), "provider_unavailable", "{name}");
        }
        assert!(
            took < timeout + Duration::from_secs(2),
            "{name}: creates took {took:?} with a {timeout:?} provider timeout"
        );
        assert_eq!(
            (in_use, waiting),
            (0, 0),
            "{name}: pooled connections held during provider calls"
        );
        assert_eq!(
            ready,
            StatusCode::OK,
            "{name}: the database did not serve during the outage"
        );
        assert_eq!(app.count("SELECT count(*) FROM payments").await, before, "{name}");
        slowest.push((name, took));
    }

    // Paid while our callback endpoint was unreachable: no notification ever lands.
    gate.set(Gate::OPEN);
    let wechat_no = app.donate("21.00", "wechat").await["order_no"]
        .as_str()
        .unwrap()
        .to_string();
    let alipay_no = app.donate("22.00", "alipay").await["order_no"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(providers.wechat.pay(&wechat_no).await.is_err());
    assert!(providers.alipay.pay(&alipay_no).await.is_err());
    let due = "UPDATE payments SET next_check_at = now() WHERE status = 'pending'";

    // A reconcile pass while the gateway is down changes nothing and breaks nothing.
    gate.set(Gate::DOWN);
    app.sql(due).await;
    let report = reconcile::pass(&app.state.engine)
        .await
        .expect("a pass survives the gateway down");
    assert_eq!((report.queried, report.paid), (2, 0));
    for no in [&wechat_no, &alipay_no] {
        assert_eq!(
            app.get(&format!("/api/payments/{no}")).await.json()["status"],
            "pending"
        );
    }

    // The gateway back: the next pass finds both payments.
    gate.set(Gate::OPEN);
    app.sql(due).await;
    let report = reconcile::pass(&app.state.engine).await.unwrap();
    assert_eq!((report.queried, report.paid), (2, 2));
    for no in [&wechat_no, &alipay_no] {
        assert_eq!(app.get(&format!("/api/payments/{no}")).await.json()["status"], "paid");
        let by_reconcile = app
            .count(&format!(
                "SELECT count(*) FROM payment_events WHERE order_no = '{no}' AND kind = 'paid' AND source = 'reconcile'"
            ))
            .await;
        assert_eq!(by_reconcile, 1, "{no}");
    }
    eprintln!(
        "provider gateway faults: 12 concurrent creates each, slowest answer {slowest:?} with a {timeout:?} \
         timeout; {:.1} s",
        wall.elapsed().as_secs_f64()
    );
    app.shutdown().await;
}

/// Delivers `order_no`'s payment notification to the instance at `base` (paying it at the
/// provider first); true when acknowledged.
async fn notify_instance(http: &Http, providers: &FakeProviders, base: &str, channel: &str, no: &str) -> bool {
    let (path, headers, body) = if channel == "wechat" {
        let _ = providers.wechat.mark_paid(no, false);
        let (headers, body) = providers.wechat.payment_notification(no).unwrap();
        ("wechat", headers, body)
    } else {
        // Pays and tries the order's own notify_url once (which may be the dead instance).
        let _ = providers.alipay.pay(no).await;
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "application/x-www-form-urlencoded".parse().unwrap());
        ("alipay", headers, providers.alipay.payment_notification(no).unwrap())
    };
    match http
        .send(Method::POST, &format!("{base}/notify/{path}"), &headers, body.into())
        .await
    {
        Ok((status, answer)) => status.is_success() && (channel == "wechat" || &answer[..] == b"success"),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_instances_on_one_database_killing_one_mid_traffic_leaves_the_other_serving_and_waking() {
    let wall = Instant::now();
    let providers = Arc::new(FakeProviders::start().await);
    let db = fresh_database().await;
    let url = crate::helpers::database_url(&db);
    let dir = scratch_dir(&format!("two-{}", free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    let http = Http::new();
    let logs: Vec<PathBuf> = ["a", "b", "c"].iter().map(|n| dir.join(format!("{n}.log"))).collect();
    let mut a = Zhifu::start(free_port(), &url, &providers, &logs[0]);
    let mut b = Zhifu::start(free_port(), &url, &providers, &logs[1]);
    a.wait_ready(&http).await;
    b.wait_ready(&http).await;

    // Four orders made on A, four on B.
    let mut orders = Vec::new();
    for (i, base) in [&a.base, &a.base, &a.base, &a.base, &b.base, &b.base, &b.base, &b.base]
        .into_iter()
        .enumerate()
    {
        let channel = if i % 2 == 0 { "wechat" } else { "alipay" };
        let (status, body) = http.create(base, "6.66", channel, "双活").await.unwrap();
        assert_eq!(status, StatusCode::CREATED);
        orders.push((json_of(&body)["order_no"].as_str().unwrap().to_string(), channel));
    }

    // Traffic on both; B's answers are kept to check that none failed.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let b_outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let mut traffic = Vec::new();
    for (k, base) in [a.base.clone(), b.base.clone(), b.base.clone()].into_iter().enumerate() {
        let (http, stop, outcomes) = (http.clone(), Arc::clone(&stop), Arc::clone(&b_outcomes));
        let status_url = format!("{base}/api/payments/{}", orders[k].0);
        traffic.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let created = http.create(&base, "1.00", "wechat", "流量").await.map(|a| a.0);
                let read = http.get(&status_url).await.map(|a| a.0);
                if k > 0 {
                    let mut outcomes = outcomes.lock().unwrap();
                    outcomes.push(("create", created, String::new()));
                    outcomes.push(("status", read, String::new()));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }

    // Long-polls parked on B for every order, and on A for two (they die with it).
    let mut polls = Vec::new();
    for (no, _) in &orders {
        let (http, url) = (http.clone(), format!("{}/api/payments/{no}?wait=25", b.base));
        polls.push(tokio::spawn(async move {
            let answer = http.get(&url).await;
            (Instant::now(), answer)
        }));
    }
    let on_a: Vec<_> = orders[..2]
        .iter()
        .map(|(no, _)| {
            let (http, url) = (http.clone(), format!("{}/api/payments/{no}?wait=25", a.base));
            tokio::spawn(async move { http.get(&url).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(400)).await;

    a.kill9();
    for poll in on_a {
        assert!(
            poll.await.unwrap().is_err(),
            "a long-poll on the killed instance answered"
        );
    }
    // A third instance joins after the kill.
    let mut c = Zhifu::start(free_port(), &url, &providers, &logs[2]);
    c.wait_ready(&http).await;

    // A's orders are notified to C, B's to B; B's parked long-polls must all wake.
    let mut acknowledged = Vec::new();
    for (i, (no, channel)) in orders.iter().enumerate() {
        let base = if i < 4 { &c.base } else { &b.base };
        assert!(
            notify_instance(&http, &providers, base, channel, no).await,
            "{no} not acknowledged"
        );
        acknowledged.push(Instant::now());
    }
    let mut slowest = Duration::ZERO;
    for ((poll, acked), (no, _)) in polls.into_iter().zip(acknowledged).zip(&orders) {
        let (answered, answer) = poll.await.unwrap();
        let (status, body) = answer.unwrap_or_else(|e| panic!("B's long-poll for {no} failed: {e}"));
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json_of(&body)["status"], "paid", "B's long-poll for {no}");
        let late = answered.saturating_duration_since(acked);
        assert!(
            late < Duration::from_secs(1),
            "B's long-poll for {no} woke {late:?} after the ack"
        );
        slowest = slowest.max(late);
    }

    stop.store(true, Ordering::Relaxed);
    for task in traffic {
        task.await.unwrap();
    }
    let b_outcomes = b_outcomes.lock().unwrap().clone();
    for (what, answer, _) in &b_outcomes {
        match (*what, answer) {
            ("create", Ok(StatusCode::CREATED)) | ("status", Ok(StatusCode::OK)) => {}
            other => panic!("B failed a request while A died: {other:?}"),
        }
    }
    assert_eq!(doubled(&db).await, 0);
    let list = orders
        .iter()
        .map(|(no, _)| format!("'{no}'"))
        .collect::<Vec<_>>()
        .join(",");
    let paid = query_i64(
        &db,
        &format!("SELECT count(*) FROM payments WHERE status = 'paid' AND order_no IN ({list})"),
    )
    .await;
    assert_eq!(paid, 8);
    for log in &logs[1..] {
        assert_eq!(panics_in(log), Vec::<String>::new(), "{}", log.display());
    }
    assert!(b.terminate() && c.terminate(), "B and C stop cleanly");
    eprintln!(
        "two instances, one killed: B answered {} requests without a failure; 8 long-polls on B woke at most \
         {slowest:?} after their callback's ack (4 acknowledged by a third instance); {:.1} s",
        b_outcomes.len(),
        wall.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// The postmaster of the cluster in `data_dir` and its children (backends, background workers).
fn postgres_processes(data_dir: &Path) -> Vec<i32> {
    let pid_file = std::fs::read_to_string(data_dir.join("postmaster.pid")).unwrap();
    let postmaster: i32 = pid_file.lines().next().unwrap().trim().parse().unwrap();
    let mut pids = vec![postmaster];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid …: comm may hold spaces, so split after its closing parenthesis.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok());
        if ppid == Some(postmaster) {
            pids.extend(entry.file_name().to_str().and_then(|p| p.parse::<i32>().ok()));
        }
    }
    pids
}

/// `request`'s answer and how long it took, which must be under 5 s.
async fn timed(
    what: &'static str,
    request: impl Future<Output = crate::helpers::Answer>,
) -> (crate::helpers::Answer, (&'static str, Duration)) {
    let started = Instant::now();
    let answer = request.await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(5),
        "{what} took {elapsed:?} with the database frozen"
    );
    (answer, (what, elapsed))
}

/// Sends SIGCONT to the frozen processes when dropped, even when the test fails.
struct Thaw(Vec<i32>);

impl Drop for Thaw {
    fn drop(&mut self) {
        signal_all(&self.0, libc::SIGCONT);
    }
}

fn signal_all(pids: &[i32], signal: i32) {
    for pid in pids {
        // SAFETY: kill(2) on processes of the test's own PostgreSQL cluster.
        unsafe { libc::kill(*pid, signal) };
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_postgres_frozen_requests_that_need_it_answer_503_within_5_s_and_never_hang() {
    let wall = Instant::now();
    let dir = scratch_dir(&format!("pg-frozen-{}", free_port()));
    let (cluster, options) = crate::helpers::own_cluster(dir.join("pg")).await;
    let app = crate::helpers::spawn_app_on(cluster.pg_config("zhifu"), |_| {}).await;
    let known = app.donate("1.00", "wechat").await["order_no"]
        .as_str()
        .unwrap()
        .to_string();
    let unpaid = app.donate("2.00", "wechat").await["order_no"]
        .as_str()
        .unwrap()
        .to_string();
    let wechat = app.state.sandbox.clone().unwrap().wechat;
    wechat.mark_paid(&unpaid, false).unwrap();
    let (headers, body) = wechat.payment_notification(&unpaid).unwrap();
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();

    // Every process of the cluster stopped (SIGSTOP): connections stay open, nothing answers.
    let frozen = Thaw(postgres_processes(&options.data_dir));
    signal_all(&frozen.0, libc::SIGSTOP);
    // All at once, each timed on its own.
    let create_body = json!({"amount": "3.00", "channel": "wechat", "category_id": 1});
    let known_path = format!("/api/payments/{known}");
    let ((ready, a), (create, b), (callback, c), (uncached_status, d), (uncached_ranking, e), (status, f)) = tokio::join!(
        timed("readyz", app.get("/readyz")),
        timed("create", app.post_json("/api/donations", create_body)),
        timed(
            "callback",
            app.request(Method::POST, "/notify/wechat", &headers, Bytes::from(body.clone()))
        ),
        timed(
            "uncached status",
            app.get("/api/payments/0000000000000000000000000000beef")
        ),
        timed("uncached ranking", app.get("/api/rankings?range=day&size=7")),
        timed("cached status", app.get(&known_path)),
    );
    let took = [a, b, c, d, e, f];
    drop(frozen);

    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(create.status, StatusCode::SERVICE_UNAVAILABLE, "{}", create.text());
    assert_eq!(create.error_code(), "service_unavailable");
    assert!(callback.status.is_server_error(), "{}", callback.status);
    assert_eq!(callback.json()["code"], "FAIL");
    assert_eq!(
        status.status,
        StatusCode::OK,
        "a known order's status is served from memory"
    );
    for uncached in [&uncached_status, &uncached_ranking] {
        assert_eq!(uncached.status, StatusCode::SERVICE_UNAVAILABLE, "{}", uncached.text());
        assert_eq!(uncached.error_code(), "service_unavailable");
    }

    // Thawed: the retried callback goes through, exactly once.
    let retried = eventually(Duration::from_secs(10), || async {
        app.request(Method::POST, "/notify/wechat", &headers, Bytes::from(body.clone()))
            .await
            .status
            .is_success()
    })
    .await;
    assert!(retried, "the callback never went through after the thaw");
    assert_eq!(
        app.get(&format!("/api/payments/{unpaid}")).await.json()["status"],
        "paid"
    );
    assert_eq!(doubled(&app.db).await, 0);
    let recovered = eventually(Duration::from_secs(10), || async {
        app.get("/readyz").await.status == StatusCode::OK
    })
    .await;
    assert!(recovered);
    eprintln!(
        "postgres frozen: answered {took:?}; {:.1} s",
        wall.elapsed().as_secs_f64()
    );
    app.shutdown().await;
    tokio::task::spawn_blocking(move || drop(cluster)).await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
