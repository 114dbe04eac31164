//! Notifications: written by `notify::notify` in the caller's transaction (never for one's own
//! action, once per dedupe key), listed newest first, marked read, and counted by a
//! long-poll that a notification made on another instance wakes within a second — and whose
//! parked future is no larger than a parked payment poll's.

use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use serde_json::json;
use zhifu::account::Role;
use zhifu::notify::{self, Actor, Kind, Notice, Target, TargetId};

use crate::admin::{call, sign_in};
use crate::helpers::{TestApp, spawn_app, spawn_app_on};

async fn user_id(app: &TestApp, username: &str) -> i64 {
    app.count(&format!("SELECT id FROM users WHERE username = '{username}'"))
        .await
}

/// Writes a notification the way a module does: in a transaction of its own, committed.
async fn notify_in_tx(app: &TestApp, notice: Notice<'_>) -> bool {
    let mut client = app.state.store.client().await.unwrap();
    let tx = client.transaction().await.unwrap();
    let written = notify::notify(&tx, &notice).await.unwrap();
    tx.commit().await.unwrap();
    written
}

fn like(recipient: i64, actor: i64, post: i64, key: &str) -> Notice<'_> {
    Notice {
        recipient_id: recipient,
        kind: Kind::Like,
        actor: Actor::User(actor),
        target: Target {
            kind: "post",
            id: TargetId::Id(post),
        },
        text: "赞了你的帖子",
        dedupe_key: Some(key),
    }
}

#[tokio::test]
async fn notifications_are_listed_newest_first_and_marked_read() {
    let app = spawn_app().await;
    let alice = sign_in(&app, "alice", Role::User).await;
    let _bob = sign_in(&app, "bob", Role::User).await;
    let (a, b) = (user_id(&app, "alice").await, user_id(&app, "bob").await);

    assert!(notify_in_tx(&app, like(a, b, 7, "like:post:7:bob")).await);
    assert!(
        !notify_in_tx(&app, like(a, b, 7, "like:post:7:bob")).await,
        "a like given again"
    );
    assert!(
        !notify_in_tx(&app, like(a, a, 8, "like:post:8:alice")).await,
        "one's own action"
    );
    let order = Notice {
        recipient_id: a,
        kind: Kind::OrderShipped,
        actor: Actor::System,
        target: Target {
            kind: "order",
            id: TargetId::Key("0193a4b2c3d47e8f9a0b1c2d3e4f5a6b"),
        },
        text: "你的订单已发货",
        dedupe_key: None,
    };
    assert!(notify_in_tx(&app, order).await);
    let anonymous = Notice {
        actor: Actor::Anonymous(b),
        kind: Kind::Comment,
        dedupe_key: None,
        ..like(a, b, 9, "")
    };
    assert!(notify_in_tx(&app, anonymous).await);

    let list = call(&app, &alice, Method::GET, "/api/me/notifications", None).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text());
    let list = list.json();
    assert_eq!(list["total"], 3);
    assert_eq!((list["page"].as_i64(), list["size"].as_i64()), (Some(1), Some(20)));
    let items = list["items"].as_array().unwrap();
    assert_eq!(items[0]["kind"], "comment");
    assert_eq!(items[0]["actor"], serde_json::Value::Null, "anonymous stays anonymous");
    assert_eq!(
        items[1]["target"],
        json!({"type": "order", "id": "0193a4b2c3d47e8f9a0b1c2d3e4f5a6b"})
    );
    assert_eq!(items[1]["actor"], serde_json::Value::Null);
    assert_eq!(items[2]["actor"], json!({"id": b, "display_name": "bob"}));
    assert_eq!(items[2]["target"], json!({"type": "post", "id": 7}));
    assert_eq!(items[2]["read"], false);

    let count = call(&app, &alice, Method::GET, "/api/me/notifications/unread-count", None).await;
    assert_eq!(count.json(), json!({"unread": 3}));
    let oldest = items[2]["id"].as_i64().unwrap();
    let read = call(
        &app,
        &alice,
        Method::POST,
        "/api/me/notifications/read",
        Some(json!({"ids": [oldest]})),
    )
    .await;
    assert_eq!(read.status, StatusCode::NO_CONTENT);
    let count = call(&app, &alice, Method::GET, "/api/me/notifications/unread-count", None).await;
    assert_eq!(count.json(), json!({"unread": 2}), "read-your-writes on this instance");
    let unread = call(&app, &alice, Method::GET, "/api/me/notifications?unread=true", None).await;
    assert_eq!(unread.json()["total"], 2);

    // Bob cannot mark Alice's notifications read.
    let bob = crate::admin::login(&app, "bob").await;
    let theirs = call(
        &app,
        &bob,
        Method::POST,
        "/api/me/notifications/read",
        Some(json!({"all": true})),
    )
    .await;
    assert_eq!(theirs.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM notifications WHERE recipient_id = {a} AND read_at IS NULL"
        ))
        .await,
        2
    );
    let all = call(
        &app,
        &alice,
        Method::POST,
        "/api/me/notifications/read",
        Some(json!({"all": true})),
    )
    .await;
    assert_eq!(all.status, StatusCode::NO_CONTENT);
    let count = call(&app, &alice, Method::GET, "/api/me/notifications/unread-count", None).await;
    assert_eq!(count.json(), json!({"unread": 0}));

    for bad in [
        json!({}),
        json!({"ids": []}),
        json!({"all": false}),
        json!({"ids": [1], "all": true}),
    ] {
        let answer = call(&app, &alice, Method::POST, "/api/me/notifications/read", Some(bad)).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    for bad in ["?unread=maybe", "?page=0", "?size=101"] {
        let answer = call(&app, &alice, Method::GET, &format!("/api/me/notifications{bad}"), None).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    for bad in ["?wait=0", "?wait=31", "?wait=5&since=-1"] {
        let path = format!("/api/me/notifications/unread-count{bad}");
        let answer = call(&app, &alice, Method::GET, &path, None).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    let nobody = app.get("/api/me/notifications/unread-count").await;
    assert_eq!(nobody.status, StatusCode::UNAUTHORIZED);
    app.shutdown().await;
}

#[tokio::test]
async fn a_notification_made_on_one_instance_wakes_a_poll_on_another_within_a_second() {
    let a = spawn_app().await;
    let b = spawn_app_on(a.db.clone(), |_| {}).await;
    let alice = sign_in(&a, "alice", Role::User).await;
    let _bob = sign_in(&a, "bob", Role::User).await;
    let (alice_id, bob_id) = (user_id(&a, "alice").await, user_id(&a, "bob").await);

    // Warm B's count, then park a poll there.
    let first = call(&b, &alice, Method::GET, "/api/me/notifications/unread-count", None).await;
    assert_eq!(first.json(), json!({"unread": 0}));
    let poll = {
        let alice = alice.clone();
        let b_url = b.url("/api/me/notifications/unread-count?wait=20&since=0");
        tokio::spawn(async move {
            let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Full<bytes::Bytes>>();
            let request = http::Request::get(b_url)
                .header("authorization", format!("Bearer {alice}"))
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap();
            let response = client.request(request).await.unwrap();
            let answered = Instant::now();
            let body = http_body_util::BodyExt::collect(response.into_body())
                .await
                .unwrap()
                .to_bytes();
            (answered, body)
        })
    };
    let parked = crate::helpers::eventually(Duration::from_secs(5), || async {
        b.state.notices.waiting_users() == 1
    })
    .await;
    assert!(parked, "the poll parked on B");

    let made = Instant::now();
    assert!(notify_in_tx(&a, like(alice_id, bob_id, 1, "like:post:1:bob")).await);
    let (answered, body) = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .unwrap()
        .unwrap();
    let lag = answered.duration_since(made);
    assert_eq!(&body[..], br#"{"unread":1}"#);
    assert!(lag < Duration::from_secs(1), "woken after {lag:?}");
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test]
async fn a_poll_whose_count_already_differs_answers_at_once_and_shutdown_answers_parked_ones() {
    let app = spawn_app().await;
    let alice = sign_in(&app, "alice", Role::User).await;
    let started = Instant::now();
    let differs = call(
        &app,
        &alice,
        Method::GET,
        "/api/me/notifications/unread-count?wait=20&since=4",
        None,
    )
    .await;
    assert_eq!(differs.json(), json!({"unread": 0}));
    assert!(started.elapsed() < Duration::from_secs(5));

    let parked = {
        let url = app.url("/api/me/notifications/unread-count?wait=30");
        let alice = alice.clone();
        tokio::spawn(async move {
            let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Full<bytes::Bytes>>();
            let request = http::Request::get(url)
                .header("authorization", format!("Bearer {alice}"))
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap();
            client.request(request).await.map(|r| r.status())
        })
    };
    assert!(
        crate::helpers::eventually(Duration::from_secs(5), || async {
            app.state.notices.waiting_users() == 1
        })
        .await
    );
    app.shutdown().await;
    let status = tokio::time::timeout(Duration::from_secs(5), parked)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.unwrap(), StatusCode::OK);
}

#[tokio::test]
async fn a_parked_notification_poll_is_no_larger_than_a_parked_payment_poll() {
    let app = spawn_app().await;
    let state = &app.state;
    let (parts, ()) = http::Request::get("/api/me/notifications/unread-count?wait=30&since=0")
        .body(())
        .unwrap()
        .into_parts();
    let notification = zhifu::notify::unread_count(state, &parts);
    let payment = zhifu::payments::status(
        &state.engine,
        "0193a4b2c3d47e8f9a0b1c2d3e4f5a6b",
        Some("wait=30"),
        &state.shutdown,
    );
    let (notification_size, payment_size) = (size_of_val(&notification), size_of_val(&payment));
    eprintln!("parked futures: notification poll {notification_size} B, payment poll {payment_size} B");
    assert!(
        notification_size <= payment_size,
        "a parked notification poll takes {notification_size} B, a payment poll {payment_size} B"
    );
    drop((notification, payment));
    app.shutdown().await;
}

#[tokio::test]
async fn an_event_bus_reconnect_wakes_only_the_polls_whose_count_moved_from_one_read() {
    let app = spawn_app().await;
    let mut tokens = Vec::new();
    for i in 0..8 {
        tokens.push(sign_in(&app, &format!("reader{i}"), Role::User).await);
    }
    let app_ref = &app;
    let polls = tokens.iter().map(|token| async move {
        call(
            app_ref,
            token,
            Method::GET,
            "/api/me/notifications/unread-count?wait=6&since=0",
            None,
        )
        .await
    });
    let parked_and_resynced = async {
        let parked = crate::helpers::eventually(Duration::from_secs(5), || async {
            app.state.notices.waiting_users() == 8
        })
        .await;
        assert!(parked, "the polls never parked");
        // Two readers got a notification while this instance's listener was away: written
        // without the event, as if its notification were lost.
        app.sql(
            "INSERT INTO notifications (recipient_id, kind, target_type, target_id, text)
             SELECT id, 'follow', 'user', id, 'x' FROM users WHERE username IN ('reader0', 'reader1')",
        )
        .await;
        let before = app.state.store.checkouts();
        app.sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        )
        .await;
        let woken = crate::helpers::eventually(Duration::from_secs(5), || async {
            app.state.notices.waiting_users() == 6
        })
        .await;
        assert!(woken, "the two readers' polls were not woken");
        let reads = app.state.store.checkouts() - before;
        assert!(
            reads <= 5,
            "{reads} database reads after the reconnect (one per parked poll is a stampede)"
        );
    };
    let (answers, ()) = tokio::join!(futures_util::future::join_all(polls), parked_and_resynced);
    let moved: Vec<_> = answers.iter().filter(|a| a.json() == json!({"unread": 1})).collect();
    assert_eq!(moved.len(), 2, "exactly the two readers' polls answered a new count");
    app.shutdown().await;
}
