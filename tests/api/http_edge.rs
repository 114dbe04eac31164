//! The HTTP edge: routing errors, size limits, slow clients, request ids, shutdown.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn an_unknown_path_answers_404_in_the_contract_error_shape() {
    let app = spawn_app().await;
    let answer = app.get("/no/such/thing").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.error_code(), "not_found");
}

#[tokio::test]
async fn a_wrong_method_answers_405_with_allow() {
    let app = spawn_app().await;
    let answer = app
        .request(Method::POST, "/api/categories", &[], Bytes::from_static(b"{}"))
        .await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer.header("allow"), Some("GET, HEAD"));
    assert_eq!(answer.error_code(), "method_not_allowed");
}

#[tokio::test]
async fn a_body_over_the_limit_answers_413_without_being_read() {
    let app = spawn_app_with(|s| s.server.max_body_bytes = 4096).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    // Announce 10 MB and send none of it: the answer must not wait for the body.
    stream
        .write_all(b"POST /api/categories HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw))
        .await
        .expect("answered and closed within 5 s")
        .unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("\"code\":\"payload_too_large\""), "{text}");
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let app = spawn_app_with(|s| s.server.header_read_timeout_secs = 1).await;
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        .await
        .unwrap();

    // Others are still served meanwhile.
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);

    let mut buf = [0u8; 1024];
    let cut = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match slow.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue, // hyper may answer 408 before closing
            }
        }
    })
    .await;
    assert!(cut.is_ok(), "the slow connection was still open after 5 s");
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_a_sane_incoming_one_is_kept() {
    let app = spawn_app().await;
    let generated = app.get("/healthz").await;
    let id = generated.header("x-request-id").expect("request id").to_string();
    assert!(!id.is_empty());
    assert_ne!(app.get("/healthz").await.header("x-request-id"), Some(id.as_str()));

    let kept = app
        .request(
            Method::GET,
            "/healthz",
            &[("x-request-id", "nginx-abc123")],
            Bytes::new(),
        )
        .await;
    assert_eq!(kept.header("x-request-id"), Some("nginx-abc123"));
    let replaced = app
        .request(
            Method::GET,
            "/healthz",
            &[("x-request-id", "bad id <script>")],
            Bytes::new(),
        )
        .await;
    assert_ne!(replaced.header("x-request-id"), Some("bad id <script>"));
}

#[tokio::test]
async fn shutdown_closes_idle_keep_alive_connections_and_stops_accepting() {
    let app = spawn_app().await;
    let addr = app.addr;
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));

    app.shutdown().await;

    let closed = tokio::time::timeout(Duration::from_secs(2), idle.read(&mut buf)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "idle connection left open");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}

#[tokio::test]
async fn a_body_that_never_finishes_is_answered_408() {
    let app = spawn_app_with(|s| s.server.body_read_timeout_secs = 1).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"POST /api/donations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"amount\":")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("answered within 5 s")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"code\":\"body_timeout\""), "{text}");
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 0);
}

#[tokio::test]
async fn past_the_connection_cap_a_client_waits_until_a_connection_closes() {
    let app = spawn_app_with(|s| s.server.max_connections = 1).await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    let mut first = TcpStream::connect(app.addr).await.unwrap();
    first.write_all(request).await.unwrap();
    let mut buf = [0u8; 1024];
    assert!(first.read(&mut buf).await.unwrap() > 0);

    let mut second = TcpStream::connect(app.addr).await.unwrap(); // queued in the backlog
    second.write_all(request).await.unwrap();
    let waiting = tokio::time::timeout(Duration::from_millis(500), second.read(&mut buf)).await;
    assert!(
        waiting.is_err(),
        "the second connection was served while the first was open"
    );

    drop(first);
    let n = tokio::time::timeout(Duration::from_secs(5), second.read(&mut buf))
        .await
        .expect("served once the first closed")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}
