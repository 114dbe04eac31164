//! What the money paths cost in statements and round trips to PostgreSQL, counted by a proxy
//! on the database's Unix socket. A statement is each `Sync` or simple `Query` the client
//! sends; a round trip is each time the client sends while every statement it sent before
//! has been answered (`ReadyForQuery`), so statements sent together without waiting (a
//! pipeline) are one round trip. A donation create, with the engine writing the payment,
//! its event and the donation, is one statement; a donation's payment callback is its
//! transaction's statements, the purpose's savepoint included; a mall checkout is 9
//! statements in 5 round trips (10 with a coupon) whatever its lines, a backing 7 in 5.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio_postgres::config::Host;
use zhifu::account::Role;

use crate::admin::{call, sign_in};
use crate::helpers::{TestApp, fresh_database, scratch_dir, spawn_app_on};

/// What the proxy counted, over every connection.
#[derive(Debug, Default)]
struct Counts {
    statements: AtomicU64,
    round_trips: AtomicU64,
}

impl Counts {
    fn now(&self) -> (u64, u64) {
        (
            self.statements.load(Ordering::SeqCst),
            self.round_trips.load(Ordering::SeqCst),
        )
    }
}

/// Forwards the client's messages to `server`, counting statements and round trips;
/// `waiting` is how many of the connection's statements (and its startup) await their
/// `ReadyForQuery`.
async fn client_to_server(
    mut client: tokio::net::unix::OwnedReadHalf,
    mut server: tokio::net::unix::OwnedWriteHalf,
    counts: Arc<Counts>,
    waiting: Arc<AtomicI64>,
) -> std::io::Result<()> {
    // Untyped first: the startup message (after an SSL or GSS request, if any).
    loop {
        let mut len = [0u8; 4];
        client.read_exact(&mut len).await?;
        let mut body = vec![0u8; (u32::from_be_bytes(len) as usize).saturating_sub(4)];
        client.read_exact(&mut body).await?;
        server.write_all(&len).await?;
        server.write_all(&body).await?;
        let code = body.get(..4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
        if !matches!(code, Some(80_877_103 | 80_877_104)) {
            waiting.fetch_add(1, Ordering::SeqCst);
            break;
        }
    }
    // A round trip starts at the first message the client sends with nothing awaiting an
    // answer; the messages up to its `Sync` (or its `Query`) belong to it.
    let mut open = false;
    let mut buffer = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        // What the client wrote at once is read at once, so a pipeline is judged as sent.
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buffer.extend_from_slice(&chunk[..n]);
        let mut at = 0;
        while buffer.len() - at >= 5 {
            let kind = buffer[at];
            let len = u32::from_be_bytes([buffer[at + 1], buffer[at + 2], buffer[at + 3], buffer[at + 4]]) as usize;
            if buffer.len() - at < 1 + len {
                break;
            }
            if kind != b'X' && !open && waiting.load(Ordering::SeqCst) == 0 {
                counts.round_trips.fetch_add(1, Ordering::SeqCst);
            }
            open = true;
            if matches!(kind, b'S' | b'Q') {
                counts.statements.fetch_add(1, Ordering::SeqCst);
                waiting.fetch_add(1, Ordering::SeqCst);
                open = false;
            }
            at += 1 + len;
        }
        server.write_all(&buffer[..at]).await?;
        buffer.drain(..at);
    }
}

/// Forwards the server's messages to the client, counting down `waiting` at each
/// `ReadyForQuery` before the client can see it.
async fn server_to_client(
    mut server: tokio::net::unix::OwnedReadHalf,
    mut client: tokio::net::unix::OwnedWriteHalf,
    waiting: Arc<AtomicI64>,
) -> std::io::Result<()> {
    let mut first = [0u8; 1];
    server.read_exact(&mut first).await?;
    // A refused SSL or GSS request is answered with a lone `N`.
    while first[0] == b'N' {
        client.write_all(&first).await?;
        server.read_exact(&mut first).await?;
    }
    loop {
        let mut len = [0u8; 4];
        server.read_exact(&mut len).await?;
        let mut body = vec![0u8; (u32::from_be_bytes(len) as usize).saturating_sub(4)];
        server.read_exact(&mut body).await?;
        if first[0] == b'Z' {
            waiting.fetch_sub(1, Ordering::SeqCst);
        }
        client.write_all(&first).await?;
        client.write_all(&len).await?;
        client.write_all(&body).await?;
        server.read_exact(&mut first).await?;
    }
}

/// A proxy of the socket `target` at a folder of its own; returns the folder (same port).
async fn proxy(target: PathBuf, port: u16, counts: Arc<Counts>) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = scratch_dir(&format!("pgproxy-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let listener = UnixListener::bind(dir.join(format!(".s.PGSQL.{port}"))).unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = UnixStream::connect(&target).await else {
                continue;
            };
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            let waiting = Arc::new(AtomicI64::new(0));
            tokio::spawn(client_to_server(
                client_read,
                server_write,
                Arc::clone(&counts),
                Arc::clone(&waiting),
            ));
            tokio::spawn(server_to_client(server_read, client_write, waiting));
        }
    });
    dir
}

fn socket_of(db: &tokio_postgres::Config) -> (PathBuf, u16) {
    let Host::Unix(dir) = &db.get_hosts()[0] else {
        panic!("the test cluster listens on a Unix socket");
    };
    let port = db.get_ports()[0];
    (Path::new(dir).join(format!(".s.PGSQL.{port}")), port)
}

/// An app whose one pooled connection goes through a counting proxy (so its statement cache
/// is warm after the first of each), the counts and the proxy's folder.
async fn counted_app() -> (TestApp, Arc<Counts>, PathBuf) {
    let db = fresh_database().await;
    let (socket, port) = socket_of(&db);
    let counts = Arc::new(Counts::default());
    let dir = proxy(socket, port, Arc::clone(&counts)).await;
    let mut proxied = tokio_postgres::Config::new();
    proxied
        .host_path(&dir)
        .port(port)
        .user(db.get_user().unwrap())
        .dbname(db.get_dbname().unwrap());
    let app = spawn_app_on(proxied, |s| s.database.pool_size = 1).await;
    (app, counts, dir)
}

/// The statements and round trips `work` cost, the same in each of `rounds` (asserted).
async fn cost<F, Fut>(counts: &Counts, rounds: usize, mut work: F) -> (u64, u64)
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut seen = Vec::new();
    for round in 0..rounds {
        let (statements, trips) = counts.now();
        work(round).await;
        let (s, t) = counts.now();
        seen.push((s - statements, t - trips));
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "the same every time: {seen:?}");
    seen[0]
}

#[tokio::test]
async fn a_donation_create_is_one_statement_and_its_callback_one_transaction() {
    let (app, counts, dir) = counted_app().await;

    app.donate("1.00", "wechat").await;
    let (per_create, create_trips) = cost(&counts, 5, |_| async {
        app.donate("2.00", "wechat").await;
    })
    .await;

    let wechat = app.state.sandbox.clone().unwrap().wechat;
    let mut per_callback = Vec::new();
    for round in 0..2 {
        let no = app.donate("3.00", "wechat").await["order_no"]
            .as_str()
            .unwrap()
            .to_string();
        wechat.mark_paid(&no, false).unwrap();
        let (headers, body) = wechat.payment_notification(&no).unwrap();
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let before = counts.now();
        let answer = app
            .request(Method::POST, "/notify/wechat", &headers, Bytes::from(body))
            .await;
        assert!(answer.status.is_success());
        if round == 1 {
            let after = counts.now();
            per_callback.push((after.0 - before.0, after.1 - before.1));
        }
    }
    eprintln!(
        "donation create: {per_create} statements in {create_trips} round trips; payment callback: {:?}",
        per_callback[0]
    );
    assert_eq!(
        (per_create, create_trips),
        (1, 1),
        "payment + event + donation in one statement"
    );
    // BEGIN, inbox, lock, update, event, savepoint, the donation totals, NOTIFY, COMMIT.
    assert_eq!(per_callback[0], (9, 9));
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Statements and round trips of one request, as `(statements, round trips)`.
type Cost = (u64, u64);

#[tokio::test]
async fn a_mall_checkout_and_a_backing_cost_a_few_round_trips_whatever_their_lines() {
    let (app, counts, dir) = counted_app().await;
    let (admin, merchant, first) = crate::mall_orders::goods(&app, "马克杯", "60.00", 1000).await;
    let cat = crate::mall::category(&app, &admin, "杯具", None).await;
    let mut skus = vec![first];
    for name in ["碗", "碟"] {
        let product = crate::mall::simple_product(&app, &merchant, cat, name, "3.00", 1000).await;
        skus.push(product["skus"][0]["id"].as_i64().unwrap());
    }
    let (_, token, address) = crate::mall_orders::buyers(&app, "rt", 1).await.remove(0);
    let offer = crate::mall_coupons::coupon(&app, &admin, json!({"per_user": 10})).await;
    let offer = offer["id"].as_i64().unwrap();
    let mut copies = Vec::new();
    for _ in 0..4 {
        let copy = crate::mall_coupons::claim(&app, &token, offer).await.json()["id"]
            .as_i64()
            .unwrap();
        copies.push(copy);
    }
    let checkout = |items: &[(i64, i64)], coupon: Option<i64>| {
        let items: Vec<_> = items
            .iter()
            .map(|(sku, n)| json!({"sku_id": sku, "quantity": n}))
            .collect();
        let body = json!({"items": items, "address_id": address, "coupon_id": coupon, "channel": "wechat"});
        let token = token.clone();
        let app = &app;
        async move {
            let answer = call(app, &token, Method::POST, "/api/mall/orders", Some(body)).await;
            assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
        }
    };
    let one = [(skus[0], 1)];
    let three = [(skus[0], 1), (skus[1], 2), (skus[2], 3)];
    checkout(&one, None).await;
    checkout(&three, None).await;
    let one_line: Cost = cost(&counts, 3, |_| checkout(&one, None)).await;
    let three_lines: Cost = cost(&counts, 3, |_| checkout(&three, None)).await;
    checkout(&[(skus[0], 2)], Some(copies[0])).await;
    let couponed: Cost = cost(&counts, 3, |round| checkout(&[(skus[0], 2)], Some(copies[round + 1]))).await;

    let owner = sign_in(&app, "owner", Role::User).await;
    let mut body = crate::crowdfunding::project_body("图书角");
    body["rewards"][0]["quantity"] = json!(100);
    let project = crate::crowdfunding::live_project(&app, &owner, &admin, body).await;
    let reward = app
        .count(&format!(
            "SELECT id FROM project_rewards WHERE project_id = {project} AND position = 0"
        ))
        .await;
    let back = |body: serde_json::Value| {
        let token = token.clone();
        let app = &app;
        async move {
            let answer = crate::backings::back(app, &token, project, body).await;
            assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
        }
    };
    let plain = json!({"amount": "5.00", "channel": "wechat"});
    let shipped = json!({"amount": "20.00", "channel": "wechat", "reward_id": reward, "address_id": address});
    back(plain.clone()).await;
    back(shipped.clone()).await;
    let backing: Cost = cost(&counts, 3, |_| back(plain.clone())).await;
    let with_reward: Cost = cost(&counts, 3, |_| back(shipped.clone())).await;

    eprintln!(
        "(statements, round trips) per mall checkout: one line {one_line:?}, three lines {three_lines:?}, \
         with a coupon {couponed:?}; per backing: {backing:?}, with a reward that ships {with_reward:?}"
    );
    // Before: 16 statements in 16 round trips (18 with a coupon), whatever the lines.
    // The quote (its coupon read pipelined), BEGIN + payment + the reservation, COMMIT, the
    // QR code, the answer's three reads (pipelined).
    assert_eq!(one_line, (9, 5));
    assert_eq!(three_lines, one_line, "an order's lines cost no statement of their own");
    assert_eq!(couponed, (10, 5));
    // Before: 8 in 8, and 12 in 12 for a reward that ships. The project (with the reward and
    // the address in the same read), BEGIN + payment + the backing's rows, COMMIT, the QR
    // code, the answer.
    assert_eq!(backing, (7, 5));
    assert_eq!(with_reward, (7, 5));
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
