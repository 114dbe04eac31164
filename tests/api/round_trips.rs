//! What the money paths cost in statements sent to PostgreSQL, counted by a proxy on the
//! database's Unix socket (each `Sync` or simple `Query` the client sends is one statement
//! it waits for): a donation create, with the engine writing the payment, its event and the
//! donation, is still one statement; a donation's payment callback is its transaction's
//! statements, the purpose's savepoint included.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio_postgres::config::Host;

use crate::helpers::{fresh_database, scratch_dir, spawn_app_on};

/// Forwards the client's messages to `server`, counting the statements among them.
async fn client_to_server(
    mut client: tokio::net::unix::OwnedReadHalf,
    mut server: tokio::net::unix::OwnedWriteHalf,
    statements: Arc<AtomicU64>,
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
            break;
        }
    }
    loop {
        let mut head = [0u8; 5];
        client.read_exact(&mut head).await?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; len.saturating_sub(4)];
        client.read_exact(&mut body).await?;
        if matches!(head[0], b'S' | b'Q') {
            statements.fetch_add(1, Ordering::SeqCst);
        }
        server.write_all(&head).await?;
        server.write_all(&body).await?;
    }
}

/// A proxy of the socket `target` at a folder of its own; returns the folder (same port).
async fn proxy(target: PathBuf, port: u16, statements: Arc<AtomicU64>) -> PathBuf {
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
            let (client_read, mut client_write) = client.into_split();
            let (mut server_read, server_write) = server.into_split();
            tokio::spawn(client_to_server(client_read, server_write, Arc::clone(&statements)));
            tokio::spawn(async move { tokio::io::copy(&mut server_read, &mut client_write).await });
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

#[tokio::test]
async fn a_donation_create_is_one_statement_and_its_callback_one_transaction() {
    let db = fresh_database().await;
    let (socket, port) = socket_of(&db);
    let statements = Arc::new(AtomicU64::new(0));
    let dir = proxy(socket, port, Arc::clone(&statements)).await;
    let mut proxied = tokio_postgres::Config::new();
    proxied
        .host_path(&dir)
        .port(port)
        .user(db.get_user().unwrap())
        .dbname(db.get_dbname().unwrap());
    // One pooled connection, so its statement cache is warm after the first of each.
    let app = spawn_app_on(proxied, |s| s.database.pool_size = 1).await;
    let count = || statements.load(Ordering::SeqCst);

    app.donate("1.00", "wechat").await;
    const CREATES: u64 = 5;
    let before = count();
    for _ in 0..CREATES {
        app.donate("2.00", "wechat").await;
    }
    let per_create = (count() - before) as f64 / CREATES as f64;

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
        let before = count();
        let answer = app
            .request(Method::POST, "/notify/wechat", &headers, Bytes::from(body))
            .await;
        assert!(answer.status.is_success());
        if round == 1 {
            per_callback.push(count() - before);
        }
    }
    eprintln!(
        "statements: {per_create} per donation create, {} per payment callback",
        per_callback[0]
    );
    assert_eq!(per_create, 1.0, "payment + event + donation in one statement");
    // BEGIN, inbox, lock, update, event, savepoint, the donation totals, NOTIFY, COMMIT.
    assert_eq!(per_callback[0], 9);
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
