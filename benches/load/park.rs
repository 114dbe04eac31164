//! `POST /bench/park?server=URL&pid=PID&n=N&path=P[&orders=K][&token=T]`: memory per parked
//! long-poll. Opens N connections to the server, each sending `GET P` (with `Authorization:
//! Bearer T` when given; `{order}` in P replaced by K orders created first, in turn), and
//! reads the server's RSS before and while they are all parked. Every distinct request is
//! answered once without its query first, so that what the server keeps in memory anyway (an
//! order's snapshot, a session, an unread count) is in the "before" figure. Answers
//! `n rss_before_kb rss_parked_kb answered_early failed`: a poll answered before the RSS was
//! read did not park, and one that could not connect or write did not either.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, Method};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::{Conn, create_orders, host_of, param, rss_kb};

pub async fn park(query: &str) -> Result<String, String> {
    let server: String = param(query, "server", None)?;
    let pid: u32 = param(query, "pid", None)?;
    let n: usize = param(query, "n", Some(10_000))?;
    let path: String = param(query, "path", None)?;
    let token: Option<String> = param(query, "token", None).ok();
    let addr = host_of(&server);
    let orders = if path.contains("{order}") {
        create_orders(&server, param(query, "orders", Some(1000))?, 32).await?
    } else {
        vec![String::new()]
    };
    let paths: Vec<String> = orders.iter().map(|no| path.replace("{order}", no)).collect();
    warm(&addr, &paths, token.as_deref()).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = rss_kb(pid)?;

    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let (release, released) = watch::channel(false);
    let sent = Arc::new(AtomicUsize::new(0));
    let early = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n",
            paths[i % paths.len()]
        );
        let task = hold(
            addr.clone(),
            request,
            Arc::clone(&sent),
            Arc::clone(&early),
            released.clone(),
        );
        tasks.push(tokio::spawn(task));
        if i % 32 == 0 {
            // Let connects make progress instead of queueing them all at once.
            tokio::task::yield_now().await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while sent.load(Ordering::Relaxed) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Every request written: give the server a moment to read and park them all.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let rss_parked = rss_kb(pid)?;
    let answered_early = early.load(Ordering::Relaxed);
    let _ = release.send(true);
    let mut failed = 0;
    for task in tasks {
        failed += usize::from(!matches!(task.await, Ok(Ok(()))));
    }
    Ok(format!("{n} {rss_before} {rss_parked} {answered_early} {failed}\n"))
}

/// Each path once, without its query, on one keep-alive connection.
async fn warm(addr: &str, paths: &[String], token: Option<&str>) -> Result<(), String> {
    let mut conn = Conn::open(addr).await?;
    let mut headers = HeaderMap::new();
    if let Some(token) = token {
        let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| e.to_string())?;
        headers.insert(http::header::AUTHORIZATION, value);
    }
    for path in paths {
        let plain = path.split('?').next().unwrap_or(path);
        conn.send(Method::GET, plain, &headers, Default::default()).await?;
    }
    Ok(())
}

/// One parked request: connects, writes it, and holds the connection until released, noting
/// whether anything was answered before.
async fn hold(
    addr: String,
    request: String,
    sent: Arc<AtomicUsize>,
    early: Arc<AtomicUsize>,
    mut released: watch::Receiver<bool>,
) -> Result<(), String> {
    let mut stream = TcpStream::connect(&addr).await.map_err(|e| e.to_string())?;
    stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    sent.fetch_add(1, Ordering::Relaxed);
    let mut chunk = [0u8; 256];
    tokio::select! {
        _ = stream.read(&mut chunk) => {}
        _ = released.wait_for(|r| *r) => return Ok(()),
    }
    if !*released.borrow() {
        early.fetch_add(1, Ordering::Relaxed);
    }
    let _ = released.wait_for(|r| *r).await;
    Ok(())
}
