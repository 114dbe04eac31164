//! Accounts: password sign-in with lockout and rate limit, WeChat sign-in (mini program and
//! web OAuth) through the sandbox emulator, sessions revoked by logout and password change,
//! the profile, "my donations", and donations and rankings by the signed-in user.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use zhifu::account::Role;
use zhifu::account::users::create_password_user;

use crate::helpers::{Answer, TestApp, spawn_app, spawn_app_with};

const PASSWORD: &str = "correct horse battery";

/// Creates a password account and signs it in; returns the token.
pub async fn signed_in(app: &TestApp, username: &str, role: Role) -> String {
    create_password_user(&app.state.store, username, PASSWORD, role, "test")
        .await
        .expect("account created");
    login(app, username, PASSWORD).await.json()["token"]
        .as_str()
        .expect("token")
        .to_string()
}

async fn login(app: &TestApp, username: &str, password: &str) -> Answer {
    app.post_json(
        "/api/auth/login",
        serde_json::json!({"username": username, "password": password}),
    )
    .await
}

async fn with_token(app: &TestApp, method: Method, path: &str, token: &str, body: Option<serde_json::Value>) -> Answer {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("authorization", auth.as_str())];
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    let body = body.map_or(Bytes::new(), |b| Bytes::from(b.to_string()));
    app.request(method, path, &headers, body).await
}

#[tokio::test]
async fn password_sign_in_gives_a_token_whose_hash_alone_is_stored() {
    let app = spawn_app().await;
    create_password_user(&app.state.store, "alice", PASSWORD, Role::User, "test")
        .await
        .unwrap();
    let answer = login(&app, "alice", PASSWORD).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let json = answer.json();
    let token = json["token"].as_str().unwrap();
    assert_eq!(json["user"]["username"], "alice");
    assert_eq!(json["user"]["role"], "user");
    let cookie = answer.header("set-cookie").expect("cookie for pages");
    assert!(cookie.starts_with(&format!("zhifu_session={token}")), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    // The session's key is the token's SHA-256 (sessions has no other column a token could
    // be in), and the password is stored only as an Argon2id hash.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM sessions WHERE token_sha256 = sha256('{token}'::bytea)"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM users WHERE password_hash NOT LIKE '$argon2id$%' OR password_hash LIKE '%{PASSWORD}%'"
        ))
        .await,
        0
    );
    let me = with_token(&app, Method::GET, "/api/me", token, None).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["username"], "alice");
    // The cookie works for reads too.
    let by_cookie = app
        .request(
            Method::GET,
            "/api/me",
            &[("cookie", &format!("zhifu_session={token}"))],
            Bytes::new(),
        )
        .await;
    assert_eq!(by_cookie.status, StatusCode::OK);
    app.shutdown().await;
}

#[tokio::test]
async fn wrong_passwords_and_unknown_users_get_the_same_answer_then_the_account_locks() {
    let app = spawn_app_with(|s| {
        s.accounts.lockout_after = 3;
        s.accounts.lockout_secs = 600;
    })
    .await;
    create_password_user(&app.state.store, "bob", PASSWORD, Role::User, "test")
        .await
        .unwrap();
    let unknown = login(&app, "nobody", PASSWORD).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.error_code(), "invalid_credentials");
    for _ in 0..3 {
        let wrong = login(&app, "bob", "wrong password!").await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        assert_eq!(wrong.json(), unknown.json(), "no hint whether the user exists");
    }
    // Locked now: even the right password is refused, with a wait.
    let locked = login(&app, "bob", PASSWORD).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(locked.error_code(), "account_locked");
    let wait: u64 = locked.header("retry-after").unwrap().parse().unwrap();
    assert!((500..=600).contains(&wait), "{wait}");
    assert_eq!(app.count("SELECT count(*) FROM sessions").await, 0);
    // Once the lock has passed, the right password works and resets the counter.
    app.sql("UPDATE users SET locked_until = now() - interval '1 second'")
        .await;
    assert_eq!(login(&app, "bob", PASSWORD).await.status, StatusCode::OK);
    assert_eq!(
        app.count("SELECT failed_logins::bigint FROM users WHERE username = 'bob'")
            .await,
        0
    );
    app.shutdown().await;
}

#[tokio::test]
async fn sign_in_attempts_are_rate_limited_per_client() {
    let app = spawn_app_with(|s| {
        s.limits.login_per_minute = 2;
        s.limits.login_burst = 2;
    })
    .await;
    for _ in 0..2 {
        assert_eq!(
            login(&app, "nobody", "whatever pass").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let limited = login(&app, "nobody", "whatever pass").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.error_code(), "rate_limited");
    assert!(limited.header("retry-after").is_some());
    let wechat = app
        .post_json("/api/auth/wechat", serde_json::json!({"code": "abc"}))
        .await;
    assert_eq!(
        wechat.status,
        StatusCode::TOO_MANY_REQUESTS,
        "WeChat sign-in shares the limit"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn logout_and_password_change_end_sessions_everywhere() {
    let app = spawn_app().await;
    let first = signed_in(&app, "carol", Role::User).await;
    let second = login(&app, "carol", PASSWORD).await.json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    // Both sessions work (and are now cached).
    for token in [&first, &second] {
        assert_eq!(
            with_token(&app, Method::GET, "/api/me", token, None).await.status,
            StatusCode::OK
        );
    }
    let out = with_token(&app, Method::POST, "/api/auth/logout", &first, None).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(
        with_token(&app, Method::GET, "/api/me", &first, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        with_token(&app, Method::GET, "/api/me", &second, None).await.status,
        StatusCode::OK
    );

    let wrong = with_token(
        &app,
        Method::POST,
        "/api/me/password",
        &second,
        Some(serde_json::json!({"current_password": "not it at all", "new_password": "a new long password"})),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let weak = with_token(
        &app,
        Method::POST,
        "/api/me/password",
        &second,
        Some(serde_json::json!({"current_password": PASSWORD, "new_password": "short"})),
    )
    .await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(weak.error_code(), "weak_password");
    let changed = with_token(
        &app,
        Method::POST,
        "/api/me/password",
        &second,
        Some(serde_json::json!({"current_password": PASSWORD, "new_password": "a new long password"})),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text());
    let third = changed.json()["token"].as_str().unwrap().to_string();
    assert_eq!(
        with_token(&app, Method::GET, "/api/me", &second, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        with_token(&app, Method::GET, "/api/me", &third, None).await.status,
        StatusCode::OK
    );
    assert_eq!(login(&app, "carol", PASSWORD).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(login(&app, "carol", "a new long password").await.status, StatusCode::OK);
    app.shutdown().await;
}

#[tokio::test]
async fn a_revoked_session_is_refused_on_another_instance_within_a_second() {
    let db = crate::helpers::fresh_database().await;
    let a = crate::helpers::spawn_app_on(db.clone(), |_| {}).await;
    let b = crate::helpers::spawn_app_on(db, |_| {}).await;
    let token = signed_in(&a, "dave", Role::User).await;
    assert_eq!(
        with_token(&b, Method::GET, "/api/me", &token, None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        with_token(&a, Method::POST, "/api/auth/logout", &token, None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let refused = crate::helpers::eventually(Duration::from_secs(1), || async {
        with_token(&b, Method::GET, "/api/me", &token, None).await.status == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(refused, "B still believed the cached session after logout on A");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn user_routes_answer_401_without_a_valid_session() {
    let app = spawn_app().await;
    let routes = [
        (Method::GET, "/api/me"),
        (Method::PATCH, "/api/me"),
        (Method::POST, "/api/me/password"),
        (Method::GET, "/api/me/donations"),
        (Method::GET, "/api/me/donations/0123456789abcdef"),
        (Method::POST, "/api/auth/logout"),
    ];
    for (method, path) in routes {
        for headers in [
            vec![],
            vec![("authorization", "Bearer zf_not-a-real-token")],
            vec![("authorization", "Bearer zf_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")],
            vec![("cookie", "zhifu_session=garbage")],
        ] {
            let answer = app
                .request(
                    method.clone(),
                    path,
                    &[headers.as_slice(), &[("content-type", "application/json")]].concat(),
                    Bytes::from("{}"),
                )
                .await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{method} {path} {headers:?}");
            assert_eq!(answer.error_code(), "unauthorized");
            assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
        }
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_cookie_on_a_cross_site_post_is_refused() {
    let app = spawn_app().await;
    let token = signed_in(&app, "erin", Role::User).await;
    let cookie = format!("zhifu_session={token}");
    let cross = app
        .request(
            Method::POST,
            "/api/auth/logout",
            &[("cookie", cookie.as_str()), ("origin", "https://evil.example")],
            Bytes::new(),
        )
        .await;
    assert_eq!(cross.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.count("SELECT count(*) FROM sessions WHERE revoked_at IS NULL")
            .await,
        1
    );
    let host = app.addr.to_string();
    let origin = format!("http://{host}");
    let same = app
        .request(
            Method::POST,
            "/api/auth/logout",
            &[
                ("cookie", cookie.as_str()),
                ("origin", origin.as_str()),
                ("host", host.as_str()),
            ],
            Bytes::new(),
        )
        .await;
    assert_eq!(same.status, StatusCode::NO_CONTENT);
    app.shutdown().await;
}

/// What `wx.login()` gives a mini program, from the sandbox emulator.
async fn mini_program_code(app: &TestApp, openid: &str, unionid: Option<&str>) -> String {
    let minted = app
        .post_json(
            "/sandbox/wxlogin/code",
            serde_json::json!({"openid": openid, "unionid": unionid}),
        )
        .await;
    assert_eq!(minted.status, StatusCode::OK, "{}", minted.text());
    minted.json()["code"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn wechat_mini_program_sign_in_registers_once_and_codes_are_single_use() {
    let app = spawn_app().await;
    let code = mini_program_code(&app, "o-mini-1", Some("union-1")).await;
    let first = app
        .post_json("/api/auth/wechat", serde_json::json!({"code": code}))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    let user = first.json()["user"].clone();
    assert_eq!(user["role"], "user");
    assert!(user["display_name"].as_str().unwrap().starts_with("微信用户"));
    let again = app
        .post_json("/api/auth/wechat", serde_json::json!({"code": code}))
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(again.error_code(), "invalid_code");
    // The same person again (same unionid, via the web app's openid): the same account.
    let web_code = app
        .post_json(
            "/sandbox/wxlogin/code",
            serde_json::json!({"openid": "o-web-9", "unionid": "union-1", "web": true}),
        )
        .await
        .json()["code"]
        .as_str()
        .unwrap()
        .to_string();
    let web = app
        .post_json("/api/auth/wechat", serde_json::json!({"code": web_code, "flow": "web"}))
        .await;
    assert_eq!(web.status, StatusCode::OK, "{}", web.text());
    assert_eq!(web.json()["user"]["id"], user["id"]);
    assert_eq!(app.count("SELECT count(*) FROM users").await, 1);
    let bad = app
        .post_json("/api/auth/wechat", serde_json::json!({"code": "x'; DROP"}))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    app.shutdown().await;
}

#[tokio::test]
async fn wechat_web_sign_in_goes_through_the_authorize_page_and_checks_state() {
    let app = spawn_app().await;
    let start = app.get("/auth/wechat?next=/api/me").await;
    assert_eq!(start.status, StatusCode::SEE_OTHER);
    let location = start.header("location").unwrap().to_string();
    assert!(
        location.starts_with("/sandbox/wxlogin/connect/qrconnect?appid=wx"),
        "{location}"
    );
    assert!(location.contains("scope=snsapi_login") && location.ends_with("#wechat_redirect"));
    let state_cookie = start
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let state = location
        .split("state=")
        .nth(1)
        .unwrap()
        .split(['&', '#'])
        .next()
        .unwrap()
        .to_string();
    // The approval page, then "approve": back to our callback with a code.
    let page = app.get(location.trim_end_matches("#wechat_redirect")).await;
    assert_eq!(page.status, StatusCode::OK);
    let form = format!("openid=o-web-42&redirect_uri=%2Fauth%2Fwechat%2Fcallback&state={state}");
    let approved = app
        .request(
            Method::POST,
            "/sandbox/wxlogin/connect/approve",
            &[("content-type", "application/x-www-form-urlencoded")],
            Bytes::from(form),
        )
        .await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER);
    let callback = approved.header("location").unwrap().to_string();
    // Without the state cookie (a forged link), the code is not used.
    let forged = app.get(&callback).await;
    assert_eq!(forged.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(forged.error_code(), "invalid_state");
    let back = app
        .request(
            Method::GET,
            &callback,
            &[("cookie", state_cookie.as_str())],
            Bytes::new(),
        )
        .await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.text());
    assert!(back.text().contains("url=/api/me"), "continues to next");
    let session = back
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("zhifu_session="))
        .expect("session cookie");
    let token = session.trim_start_matches("zhifu_session=").split(';').next().unwrap();
    let me = with_token(&app, Method::GET, "/api/me", token, None).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["wechat"], true);
    app.shutdown().await;
}

#[tokio::test]
async fn donations_carry_the_signed_in_user_who_sees_only_their_own() {
    let app = spawn_app().await;
    let frank = signed_in(&app, "frank", Role::User).await;
    let grace = signed_in(&app, "grace", Role::User).await;
    let mut franks = Vec::new();
    for (amount, name) in [("3.00", "F one"), ("4.00", "F two")] {
        let answer = with_token(
            &app,
            Method::POST,
            "/api/donations",
            &frank,
            Some(serde_json::json!({"amount": amount, "channel": "wechat", "category_id": 1, "donor_name": name})),
        )
        .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
        let no = answer.json()["order_no"].as_str().unwrap().to_string();
        assert_eq!(app.sandbox_pay(&no).await.status, StatusCode::OK);
        franks.push(no);
    }
    let unsigned = app.donate("5.00", "alipay").await;
    let mine = with_token(&app, Method::GET, "/api/me/donations?size=1", &frank, None).await;
    assert_eq!(mine.status, StatusCode::OK);
    let json = mine.json();
    assert_eq!(json["total"], 2);
    assert_eq!(json["items"].as_array().unwrap().len(), 1, "size=1");
    assert_eq!(json["items"][0]["order_no"], franks[1], "newest first");
    let page2 = with_token(&app, Method::GET, "/api/me/donations?size=1&page=2", &frank, None).await;
    assert_eq!(page2.json()["items"][0]["order_no"], franks[0]);
    let bad = with_token(&app, Method::GET, "/api/me/donations?size=0", &frank, None).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Someone else's record, and one with no user, are not found.
    let path = format!("/api/me/donations/{}", franks[0]);
    assert_eq!(
        with_token(&app, Method::GET, &path, &frank, None).await.json()["status"],
        "paid"
    );
    assert_eq!(
        with_token(&app, Method::GET, &path, &grace, None).await.status,
        StatusCode::NOT_FOUND
    );
    let other = format!("/api/me/donations/{}", unsigned["order_no"].as_str().unwrap());
    assert_eq!(
        with_token(&app, Method::GET, &other, &frank, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        with_token(&app, Method::GET, "/api/me/donations", &grace, None)
            .await
            .json()["total"],
        0
    );

    // Rankings group the two donations under the user, by display name; a rename follows.
    let ranking = app.get("/api/rankings").await.json();
    let items = ranking["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{ranking}");
    assert_eq!(items[0]["donor"], "frank");
    assert_eq!(items[0]["amount_fen"], 700);
    assert_eq!(items[0]["count"], 2);
    let renamed = with_token(
        &app,
        Method::PATCH,
        "/api/me",
        &frank,
        Some(serde_json::json!({"display_name": "  弗兰克  "})),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text());
    assert_eq!(renamed.json()["display_name"], "弗兰克");
    assert_eq!(app.get("/api/rankings").await.json()["items"][0]["donor"], "弗兰克");
    let recent = app.get("/api/donations/recent").await.json();
    assert_eq!(recent["items"][0]["donor"], "弗兰克");
    let bad_name = with_token(
        &app,
        Method::PATCH,
        "/api/me",
        &frank,
        Some(serde_json::json!({"display_name": ""})),
    )
    .await;
    assert_eq!(bad_name.status, StatusCode::UNPROCESSABLE_ENTITY);
    let unknown = with_token(
        &app,
        Method::PATCH,
        "/api/me",
        &frank,
        Some(serde_json::json!({"role": "admin"})),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "unknown fields are refused");
    assert_eq!(app.count("SELECT count(*) FROM users WHERE role = 'admin'").await, 0);
    app.shutdown().await;
}

#[tokio::test]
async fn the_sign_in_page_works_without_javascript() {
    let app = spawn_app().await;
    create_password_user(&app.state.store, "henry", PASSWORD, Role::User, "test")
        .await
        .unwrap();
    let page = app.get("/login?next=/api/me").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("name=\"next\" value=\"/api/me\""));
    assert!(page.header("content-security-policy").is_some());
    let form =
        |password: &str, next: &str| format!("username=henry&password={}&next={next}", password.replace(' ', "+"));
    let wrong = app
        .request(
            Method::POST,
            "/api/auth/login",
            &[("content-type", "application/x-www-form-urlencoded")],
            Bytes::from(form("nope nope nope", "%2Fapi%2Fme")),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.text().contains("login-error"));
    let ok = app
        .request(
            Method::POST,
            "/api/auth/login",
            &[("content-type", "application/x-www-form-urlencoded")],
            Bytes::from(form(PASSWORD, "https%3A%2F%2Fevil.example%2F")),
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.header("location"), Some("/"), "never to another site");
    assert!(ok.header("set-cookie").unwrap().starts_with("zhifu_session=zf_"));
    app.shutdown().await;
}

#[tokio::test]
async fn the_me_page_shows_the_users_donations_and_signs_out() {
    let app = spawn_app().await;
    let anonymous = app.get("/me").await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert_eq!(anonymous.header("location"), Some("/login?next=/me"));
    let token = signed_in(&app, "ivy", Role::User).await;
    let cookie = format!("zhifu_session={token}");
    let created = with_token(
        &app,
        Method::POST,
        "/api/donations",
        &token,
        Some(serde_json::json!({"amount": "6.60", "channel": "alipay", "category_id": 1, "message": "<script>x</script>"})),
    )
    .await;
    let no = created.json()["order_no"].as_str().unwrap().to_string();
    let page = app
        .request(Method::GET, "/me", &[("cookie", cookie.as_str())], Bytes::new())
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(html.contains(&format!("data-order-no=\"{no}\"")), "{html}");
    assert!(html.contains("¥6.60") && html.contains("data-status=\"pending\""));
    assert!(
        (html.contains("&lt;script&gt;") || html.contains("&#60;script&#62;")) && !html.contains("<script>x"),
        "escaped"
    );
    assert!(page.header("content-security-policy").is_some());
    let out = app
        .request(
            Method::POST,
            "/api/auth/logout",
            &[
                ("cookie", cookie.as_str()),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            Bytes::new(),
        )
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.header("location"), Some("/"));
    let after = app
        .request(Method::GET, "/me", &[("cookie", cookie.as_str())], Bytes::new())
        .await;
    assert_eq!(after.status, StatusCode::SEE_OTHER, "the session ended");
    app.shutdown().await;
}

#[tokio::test]
async fn ended_sessions_are_purged_and_live_ones_kept() {
    let app = spawn_app().await;
    let token = signed_in(&app, "jack", Role::User).await;
    let _second = login(&app, "jack", PASSWORD).await;
    let _third = login(&app, "jack", PASSWORD).await;
    app.sql(
        "UPDATE sessions SET expires_at = now() - interval '2 days'
          WHERE token_sha256 = (SELECT token_sha256 FROM sessions ORDER BY created_at DESC LIMIT 1)",
    )
    .await;
    app.sql(
        "UPDATE sessions SET revoked_at = now() - interval '3 days'
          WHERE token_sha256 = (SELECT token_sha256 FROM sessions WHERE revoked_at IS NULL AND expires_at > now()
                                 ORDER BY created_at DESC LIMIT 1)",
    )
    .await;
    let purged = zhifu::account::users::purge_sessions(&app.state.store).await.unwrap();
    assert_eq!(purged, 2);
    assert_eq!(app.count("SELECT count(*) FROM sessions").await, 1);
    assert_eq!(
        with_token(&app, Method::GET, "/api/me", &token, None).await.status,
        StatusCode::OK
    );
    app.shutdown().await;
}
