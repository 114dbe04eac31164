//! Registration with email verification through the sandbox outbox, public profiles, the
//! follow graph (exact counters under concurrency, one notification per follower) and the
//! address book (one default, someone else's address 404).

use http::{Method, StatusCode};
use serde_json::{Value, json};
use zhifu::account::Role;

use crate::admin::{call, sign_in};
use crate::helpers::{Answer, TestApp, spawn_app, spawn_app_on};

pub fn registration(username: &str, email: &str) -> Value {
    json!({"username": username, "password": crate::admin::PASSWORD, "email": email, "display_name": "新用户"})
}

/// The path and query of the verification link in `text`.
pub fn link_path(text: &str) -> String {
    let start = text.find("/auth/verify-email?token=").expect("a verification link");
    text[start..].split_whitespace().next().unwrap().to_string()
}

async fn register(app: &TestApp, username: &str, email: &str) -> Answer {
    app.post_json("/api/auth/register", registration(username, email)).await
}

#[tokio::test]
async fn registration_mails_a_single_use_link_that_verifies_the_email() {
    let app = spawn_app().await;
    let answer = register(&app, "newbie", "Newbie@Example.com").await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    let user = answer.json()["user"].clone();
    assert_eq!(user["username"], "newbie");
    assert_eq!(user["email"], "Newbie@Example.com");
    assert_eq!(user["email_verified"], false);

    // It can sign in at once.
    let token = crate::admin::login(&app, "newbie").await;
    let me = call(&app, &token, Method::GET, "/api/me", None).await.json();
    assert_eq!(me["email_verified"], false);

    let outbox = app.get("/sandbox/mail").await;
    assert_eq!(outbox.status, StatusCode::OK);
    let items = outbox.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["to"], "Newbie@Example.com");
    assert!(items[0]["sent_at"].is_string());
    let link = link_path(items[0]["text"].as_str().unwrap());

    let page = app.get(&link).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains(r#"data-result="verified""#), "{}", page.text());
    let me = call(&app, &token, Method::GET, "/api/me", None).await.json();
    assert_eq!(me["email_verified"], true);

    let again = app.get(&link).await;
    assert_eq!(again.status, StatusCode::GONE);
    assert!(again.text().contains(r#"data-result="used""#));
    let forged = app
        .get("/auth/verify-email?token=zf_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .await;
    assert_eq!(forged.status, StatusCode::NOT_FOUND);
    assert!(
        app.get("/auth/verify-email?token=%3Cscript%3E")
            .await
            .text()
            .contains(r#"data-result="invalid""#)
    );
    let resend = call(&app, &token, Method::POST, "/api/me/email/verify", None).await;
    assert_eq!(resend.status, StatusCode::CONFLICT, "nothing left to verify");
    app.shutdown().await;
}

#[tokio::test]
async fn an_expired_link_does_not_verify_and_a_new_one_can_be_sent() {
    let app = spawn_app().await;
    assert_eq!(
        register(&app, "late", "late@example.com").await.status,
        StatusCode::CREATED
    );
    let first = link_path(
        app.get("/sandbox/mail").await.json()["items"][0]["text"]
            .as_str()
            .unwrap(),
    );
    app.sql("UPDATE email_verifications SET expires_at = now() - interval '1 second'")
        .await;
    let expired = app.get(&first).await;
    assert_eq!(expired.status, StatusCode::GONE);
    assert!(expired.text().contains(r#"data-result="expired""#));
    assert_eq!(
        app.count("SELECT count(*) FROM users WHERE email_verified_at IS NOT NULL")
            .await,
        0
    );

    let token = crate::admin::login(&app, "late").await;
    let resend = call(&app, &token, Method::POST, "/api/me/email/verify", None).await;
    assert_eq!(resend.status, StatusCode::ACCEPTED, "{}", resend.text());
    let second = link_path(
        app.get("/sandbox/mail").await.json()["items"][0]["text"]
            .as_str()
            .unwrap(),
    );
    assert_ne!(first, second);
    assert_eq!(app.get(&second).await.status, StatusCode::OK);
    assert_eq!(
        app.count("SELECT count(*) FROM users WHERE email_verified_at IS NOT NULL")
            .await,
        1
    );
    app.shutdown().await;
}

#[tokio::test]
async fn taken_usernames_and_emails_are_409_and_bad_fields_422() {
    let app = spawn_app().await;
    assert_eq!(
        register(&app, "first", "same@example.com").await.status,
        StatusCode::CREATED
    );
    let name = register(&app, "FIRST", "other@example.com").await;
    assert_eq!(name.status, StatusCode::CONFLICT);
    assert_eq!(name.error_code(), "username_taken");
    let email = register(&app, "second", "SAME@example.com").await;
    assert_eq!(email.status, StatusCode::CONFLICT);
    assert_eq!(email.error_code(), "email_taken");
    for (body, code) in [
        (registration("x", "a@example.com"), "invalid_username"),
        (registration("okname", "not-an-address"), "invalid_email"),
        (registration("okname", "a b@example.com"), "invalid_email"),
        (
            json!({"username": "okname", "password": "short", "email": "a@example.com", "display_name": "n"}),
            "weak_password",
        ),
        (
            json!({"username": "okname", "password": "correct horse battery", "email": "a@example.com", "display_name": " "}),
            "invalid_display_name",
        ),
    ] {
        let answer = app.post_json("/api/auth/register", body).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", answer.text());
        assert_eq!(answer.error_code(), code);
    }
    assert_eq!(app.count("SELECT count(*) FROM users").await, 1, "nothing half-made");
    assert_eq!(app.count("SELECT count(*) FROM mail_outbox").await, 1);
    app.shutdown().await;
}

#[tokio::test]
async fn the_sandbox_mail_outbox_is_only_served_in_sandbox_mode() {
    let app = crate::helpers::spawn_app_with(|s| {
        s.payments.sandbox = false;
        s.payments.wechat.enabled = false;
        s.payments.alipay.enabled = false;
    })
    .await;
    assert_eq!(app.get("/sandbox/mail").await.status, StatusCode::NOT_FOUND);
    app.shutdown().await;
}

#[tokio::test]
async fn a_profile_shows_public_fields_only_and_follows_move_its_counters() {
    let app = spawn_app().await;
    let alice = sign_in(&app, "alice", Role::User).await;
    let bob = sign_in(&app, "bob", Role::User).await;
    let a = app.count("SELECT id FROM users WHERE username = 'alice'").await;
    let b = app.count("SELECT id FROM users WHERE username = 'bob'").await;
    app.sql(&format!(
        "UPDATE users SET email = 'alice@example.com', wechat_openid = 'o-secret' WHERE id = {a}"
    ))
    .await;
    let patch = call(
        &app,
        &alice,
        Method::PATCH,
        "/api/me",
        Some(json!({"bio": "  写代码的  "})),
    )
    .await;
    assert_eq!(patch.status, StatusCode::OK, "{}", patch.text());

    let profile = app.get(&format!("/api/users/{a}")).await;
    assert_eq!(profile.status, StatusCode::OK);
    assert_eq!(
        profile.json(),
        json!({"id": a, "display_name": "alice", "avatar_url": null, "bio": "写代码的",
               "followers": 0, "following": 0, "posts": 0, "followed_by_me": false})
    );
    for secret in ["alice@example.com", "o-secret", "username", "email", "wechat"] {
        assert!(!profile.text().contains(secret), "{secret} shown: {}", profile.text());
    }

    let followed = call(&app, &bob, Method::PUT, &format!("/api/users/{a}/follow"), None).await;
    assert_eq!(followed.status, StatusCode::OK, "{}", followed.text());
    assert_eq!(followed.json()["followers"], 1);
    assert_eq!(followed.json()["followed_by_me"], true);
    let again = call(&app, &bob, Method::PUT, &format!("/api/users/{a}/follow"), None).await;
    assert_eq!(again.json()["followers"], 1, "idempotent");
    let seen_by_bob = call(&app, &bob, Method::GET, &format!("/api/users/{a}"), None)
        .await
        .json();
    assert_eq!(seen_by_bob["followed_by_me"], true);
    assert_eq!(app.get(&format!("/api/users/{b}")).await.json()["following"], 1);

    let followers = app.get(&format!("/api/users/{a}/followers")).await.json();
    assert_eq!(
        followers,
        json!({"items": [{"id": b, "display_name": "bob", "avatar_url": null}], "page": 1, "size": 20, "total": 1})
    );
    let following = app.get(&format!("/api/users/{b}/following?size=5")).await.json();
    assert_eq!(following["items"][0]["id"], a);

    // Unfollow and follow again: still one notification from bob.
    let gone = call(&app, &bob, Method::DELETE, &format!("/api/users/{a}/follow"), None).await;
    assert_eq!(gone.json()["followers"], 0);
    call(&app, &bob, Method::PUT, &format!("/api/users/{a}/follow"), None).await;
    let notices = call(&app, &alice, Method::GET, "/api/me/notifications", None)
        .await
        .json();
    assert_eq!(notices["total"], 1);
    assert_eq!(notices["items"][0]["kind"], "follow");
    assert_eq!(notices["items"][0]["actor"], json!({"id": b, "display_name": "bob"}));
    assert_eq!(notices["items"][0]["target"], json!({"type": "user", "id": b}));

    let selfish = call(&app, &alice, Method::PUT, &format!("/api/users/{a}/follow"), None).await;
    assert_eq!(selfish.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(selfish.error_code(), "cannot_follow_self");
    assert_eq!(app.get("/api/users/999999").await.status, StatusCode::NOT_FOUND);
    let nobody = call(&app, &alice, Method::PUT, "/api/users/999999/follow", None).await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.request(Method::PUT, &format!("/api/users/{a}/follow"), &[], bytes::Bytes::new())
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let long_bio = call(
        &app,
        &alice,
        Method::PATCH,
        "/api/me",
        Some(json!({"bio": "长".repeat(201)})),
    )
    .await;
    assert_eq!(long_bio.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(long_bio.error_code(), "invalid_bio");
    app.shutdown().await;
}

#[tokio::test]
async fn follow_counts_stay_exact_under_concurrent_follows_and_unfollows_on_two_instances() {
    let a = spawn_app().await;
    let b = spawn_app_on(a.db.clone(), |_| {}).await;
    let star_token = sign_in(&a, "star", Role::User).await;
    let star = a.count("SELECT id FROM users WHERE username = 'star'").await;
    let mut fans = Vec::new();
    for i in 0..12 {
        fans.push(sign_in(&a, &format!("fan{i}"), Role::User).await);
    }
    // Every fan follows, unfollows and follows again at once; fans 0..4 end unfollowed; the
    // star follows them all back meanwhile (both users' rows move in each transaction).
    let mut tasks = Vec::new();
    for (i, token) in fans.iter().enumerate() {
        let app = if i % 2 == 0 { &a } else { &b };
        let path = format!("/api/users/{star}/follow");
        tasks.push(async move {
            for method in [Method::PUT, Method::DELETE, Method::PUT, Method::PUT] {
                let answer = call(app, token, method, &path, None).await;
                assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
            }
            if i < 4 {
                let answer = call(app, token, Method::DELETE, &path, None).await;
                assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
            }
        });
    }
    let fan_ids: Vec<i64> = {
        let mut ids = Vec::new();
        for i in 0..12 {
            ids.push(
                a.count(&format!("SELECT id FROM users WHERE username = 'fan{i}'"))
                    .await,
            );
        }
        ids
    };
    let back = async {
        for id in &fan_ids {
            let answer = call(&b, &star_token, Method::PUT, &format!("/api/users/{id}/follow"), None).await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        }
    };
    tokio::join!(futures_util::future::join_all(tasks), back);

    let rows = a
        .count(&format!("SELECT count(*) FROM follows WHERE followee_id = {star}"))
        .await;
    assert_eq!(rows, 8);
    let counted = a
        .count(&format!("SELECT followers_count FROM users WHERE id = {star}"))
        .await;
    assert_eq!(counted, rows, "the counter matches the rows");
    assert_eq!(
        a.count(&format!("SELECT following_count FROM users WHERE id = {star}"))
            .await,
        12
    );
    let drift = a
        .count(
            "SELECT count(*) FROM users u WHERE u.followers_count <> (SELECT count(*) FROM follows WHERE followee_id = u.id)
                OR u.following_count <> (SELECT count(*) FROM follows WHERE follower_id = u.id)",
        )
        .await;
    assert_eq!(drift, 0);
    let profile_on_b = b.get(&format!("/api/users/{star}")).await.json();
    assert_eq!(profile_on_b["followers"], 8, "fresh on the other instance too");
    assert_eq!(
        a.count(&format!(
            "SELECT count(*) FROM notifications WHERE recipient_id = {star} AND kind = 'follow'"
        ))
        .await,
        12,
        "one per follower"
    );
    b.shutdown().await;
    a.shutdown().await;
}

async fn add(app: &TestApp, token: &str, name: &str, is_default: Option<bool>) -> Answer {
    let mut body =
        json!({"name": name, "phone": "138 0013 8000", "region": "上海市 浦东新区", "detail": "世纪大道 1 号"});
    if let Some(d) = is_default {
        body["is_default"] = d.into();
    }
    call(app, token, Method::POST, "/api/me/addresses", Some(body)).await
}

#[tokio::test]
async fn the_address_book_keeps_exactly_one_default() {
    let app = spawn_app().await;
    let alice = sign_in(&app, "alice", Role::User).await;
    let bob = sign_in(&app, "bob", Role::User).await;

    let first = add(&app, &alice, "张三", Some(false)).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    let first = first.json();
    assert_eq!(first["is_default"], true, "the first address is the default");
    let second = add(&app, &alice, "李四", None).await.json();
    assert_eq!(second["is_default"], false);
    let third = add(&app, &alice, "王五", Some(true)).await.json();
    assert_eq!(third["is_default"], true);

    let list = call(&app, &alice, Method::GET, "/api/me/addresses", None).await.json();
    assert_eq!(list["total"], 3);
    assert_eq!(list["items"][0]["id"], third["id"], "the default first");
    let defaults = |list: &Value| {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["is_default"] == true)
            .count()
    };
    assert_eq!(defaults(&list), 1);

    let path = |a: &Value| format!("/api/me/addresses/{}", a["id"]);
    let promoted = call(
        &app,
        &alice,
        Method::PATCH,
        &path(&second),
        Some(json!({"is_default": true, "detail": "新地址"})),
    )
    .await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.text());
    assert_eq!(promoted.json()["detail"], "新地址");
    let undefault = call(
        &app,
        &alice,
        Method::PATCH,
        &path(&second),
        Some(json!({"is_default": false})),
    )
    .await;
    assert_eq!(undefault.error_code(), "default_required");

    // Deleting the default promotes another.
    let deleted = call(&app, &alice, Method::DELETE, &path(&second), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let list = call(&app, &alice, Method::GET, "/api/me/addresses", None).await.json();
    assert_eq!(list["total"], 2);
    assert_eq!(defaults(&list), 1);

    // Someone else's address is not found, whatever the method.
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        let body = (method == Method::PATCH).then(|| json!({"name": "x"}));
        let answer = call(&app, &bob, method.clone(), &path(&first), body).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{method}");
    }
    assert_eq!(
        call(&app, &bob, Method::GET, "/api/me/addresses", None).await.json()["total"],
        0
    );

    for (body, code) in [
        (
            json!({"name": "", "phone": "13800138000", "region": "r", "detail": "d"}),
            "invalid_name",
        ),
        (
            json!({"name": "n", "phone": "call me", "region": "r", "detail": "d"}),
            "invalid_phone",
        ),
        (
            json!({"name": "n", "phone": "13800138000", "region": "r"}),
            "missing_field",
        ),
        (
            json!({"name": "n", "phone": "13800138000", "region": "r", "detail": "长".repeat(201)}),
            "invalid_detail",
        ),
    ] {
        let answer = call(&app, &bob, Method::POST, "/api/me/addresses", Some(body)).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(answer.error_code(), code);
    }

    // What an order copies.
    let client = app.state.store.client().await.unwrap();
    let alice_id = app.count("SELECT id FROM users WHERE username = 'alice'").await;
    let bob_id = app.count("SELECT id FROM users WHERE username = 'bob'").await;
    let id = first["id"].as_i64().unwrap();
    let copied = zhifu::account::addresses::for_order(&client, alice_id, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((copied.name.as_str(), copied.phone.as_str()), ("张三", "138 0013 8000"));
    assert!(
        zhifu::account::addresses::for_order(&client, bob_id, id)
            .await
            .unwrap()
            .is_none()
    );
    app.shutdown().await;
}

#[tokio::test]
async fn concurrent_address_changes_leave_exactly_one_default() {
    let app = spawn_app().await;
    let alice = sign_in(&app, "alice", Role::User).await;
    let names: Vec<String> = (0..8).map(|i| format!("地址{i}")).collect();
    let adds = names.iter().map(|name| add(&app, &alice, name, Some(true)));
    let created = futures_util::future::join_all(adds).await;
    assert!(created.iter().all(|a| a.status == StatusCode::CREATED));
    let paths: Vec<String> = created
        .iter()
        .take(4)
        .map(|a| format!("/api/me/addresses/{}", a.json()["id"]))
        .collect();
    let deletes = paths.iter().map(|path| call(&app, &alice, Method::DELETE, path, None));
    futures_util::future::join_all(deletes).await;
    assert_eq!(app.count("SELECT count(*) FROM addresses").await, 4);
    assert_eq!(app.count("SELECT count(*) FROM addresses WHERE is_default").await, 1);
    app.shutdown().await;
}

#[tokio::test]
async fn the_verification_page_reads_on_a_phone() {
    let Some(browser) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        assert!(std::env::var_os("CI").is_none(), "chromium is required in CI");
        eprintln!("SKIPPED: chromium is not installed");
        return;
    };
    let app = spawn_app().await;
    assert_eq!(
        register(&app, "phone", "phone@example.com").await.status,
        StatusCode::CREATED
    );
    let link = link_path(
        app.get("/sandbox/mail").await.json()["items"][0]["text"]
            .as_str()
            .unwrap(),
    );
    let dir = crate::helpers::scratch_dir("verify-shot");
    std::fs::create_dir_all(&dir).unwrap();
    let shot = dir.join("verify-email-390x844.png");
    let url = app.url(&link);
    let output = tokio::task::spawn_blocking({
        let shot = shot.clone();
        let profile = dir.join("profile");
        move || {
            std::process::Command::new(browser)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--hide-scrollbars",
                ])
                .args([
                    "--no-first-run",
                    "--disable-background-networking",
                    "--window-size=390,844",
                ])
                .arg(format!("--user-data-dir={}", profile.display()))
                .arg(format!("--screenshot={}", shot.display()))
                .arg(url)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let image = image::open(&shot).unwrap();
    assert_eq!((image.width(), image.height()), (390, 844));
    eprintln!("screenshot: {}", shot.display());
    // The browser opened the link: the address is verified.
    assert_eq!(
        app.count("SELECT count(*) FROM users WHERE email_verified_at IS NOT NULL")
            .await,
        1
    );
    app.shutdown().await;
}
