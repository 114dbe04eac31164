//! Who may use the admin area: every API route answers 401 without a session and 403 to a
//! signed-in account without the admin role, changing nothing; every page sends an
//! anonymous browser to sign in and answers 403 to the wrong role.

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;
use zhifu::account::Role;

use crate::admin::{call, sign_in};
use crate::helpers::{TestApp, spawn_app};

/// Every admin API route with a plausible body.
fn api_routes() -> Vec<(Method, &'static str, Option<serde_json::Value>)> {
    vec![
        (Method::GET, "/api/admin/categories", None),
        (Method::POST, "/api/admin/categories", Some(json!({"name": "偷偷加的"}))),
        (Method::POST, "/api/admin/categories/reorder", Some(json!({"ids": [1]}))),
        (
            Method::PATCH,
            "/api/admin/categories/1",
            Some(json!({"enabled": false})),
        ),
        (Method::DELETE, "/api/admin/categories/1", None),
        (Method::GET, "/api/admin/settings", None),
        (
            Method::PATCH,
            "/api/admin/settings",
            Some(json!({"wechat_enabled": false})),
        ),
        (Method::GET, "/api/admin/payments", None),
        (Method::GET, "/api/admin/payments.csv", None),
        (Method::GET, "/api/admin/payments/ORDER_1", None),
        (
            Method::POST,
            "/api/admin/payments/ORDER_1/refund",
            Some(json!({"amount": "1.00", "reason": "x"})),
        ),
        (Method::GET, "/api/admin/callbacks", None),
        (Method::GET, "/api/admin/reconcile", None),
        (Method::GET, "/api/admin/audit", None),
        (Method::GET, "/api/admin/users", None),
        (Method::PATCH, "/api/admin/users/1", Some(json!({"role": "admin"}))),
        (Method::GET, "/api/admin/no-such-route", None),
    ]
}

const PAGES: [&str; 8] = [
    "/admin",
    "/admin/categories",
    "/admin/settings",
    "/admin/payments",
    "/admin/payments/ORDER_1",
    "/admin/callbacks",
    "/admin/reconcile",
    "/admin/audit",
];

async fn anonymous(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<&serde_json::Value>,
) -> crate::helpers::Answer {
    let headers: &[(&str, &str)] = if body.is_some() {
        &[("content-type", "application/json")]
    } else {
        &[]
    };
    let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    app.request(method, path, headers, body).await
}

/// What the routes above could have changed.
async fn fingerprint(app: &TestApp) -> (i64, i64, i64, i64) {
    (
        app.count("SELECT count(*) FROM categories WHERE enabled").await,
        app.count("SELECT count(*) FROM payment_settings WHERE wechat_enabled IS NULL")
            .await,
        app.count("SELECT count(*) FROM admin_audit").await,
        app.count("SELECT count(*) FROM users WHERE role = 'admin'").await,
    )
}

#[tokio::test]
async fn every_admin_route_refuses_anonymous_and_non_admin_callers_and_changes_nothing() {
    let app = spawn_app().await;
    let user = sign_in(&app, "someone", Role::User).await;
    let reviewer = sign_in(&app, "reviewer1", Role::Reviewer).await;
    let before = fingerprint(&app).await;

    for (method, path, body) in api_routes() {
        let answer = anonymous(&app, method.clone(), path, body.as_ref()).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "anonymous {method} {path}");
        assert_eq!(answer.error_code(), "unauthorized", "{method} {path}");
        assert_eq!(answer.header("www-authenticate"), Some("Bearer"));

        let broken = app
            .request(
                method.clone(),
                path,
                &[("authorization", "Bearer zf_not-a-real-token")],
                Bytes::new(),
            )
            .await;
        assert_eq!(broken.status, StatusCode::UNAUTHORIZED, "bad token {method} {path}");

        for (who, token) in [("user", &user), ("reviewer", &reviewer)] {
            let answer = call(&app, token, method.clone(), path, body.clone()).await;
            assert_eq!(
                answer.status,
                StatusCode::FORBIDDEN,
                "{who} {method} {path}: {}",
                answer.text()
            );
            assert_eq!(answer.error_code(), "forbidden");
        }
    }
    assert_eq!(fingerprint(&app).await, before, "a refused request changed something");

    for page in PAGES {
        let answer = app.get(page).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "anonymous {page}");
        let next: String = form_urlencoded::byte_serialize(page.as_bytes()).collect();
        assert_eq!(
            answer.header("location"),
            Some(format!("/login?next={next}").as_str()),
            "{page}"
        );

        let cookie = format!("zhifu_session={user}");
        let answer = app
            .request(Method::GET, page, &[("cookie", &cookie)], Bytes::new())
            .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "user {page}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn an_admin_cookie_is_not_believed_on_a_change_sent_from_another_site() {
    let app = spawn_app().await;
    let admin = sign_in(&app, "admin1", Role::Admin).await;
    let cookie = format!("zhifu_session={admin}");
    let body = Bytes::from(json!({"name": "跨站"}).to_string());
    let cross = app
        .request(
            Method::POST,
            "/api/admin/categories",
            &[
                ("cookie", &cookie),
                ("content-type", "application/json"),
                ("sec-fetch-site", "cross-site"),
            ],
            body.clone(),
        )
        .await;
    assert_eq!(cross.status, StatusCode::UNAUTHORIZED);
    let same = app
        .request(
            Method::POST,
            "/api/admin/categories",
            &[
                ("cookie", &cookie),
                ("content-type", "application/json"),
                ("sec-fetch-site", "same-origin"),
            ],
            body,
        )
        .await;
    assert_eq!(same.status, StatusCode::CREATED, "{}", same.text());
    assert_eq!(
        app.count("SELECT count(*) FROM categories WHERE name = '跨站'").await,
        1
    );
    app.shutdown().await;
}
