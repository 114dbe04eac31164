//! Coupons: admins create them (terms checked), users claim copies; 300 concurrent claims of
//! a coupon with `total` 100 make exactly 100 copies, and one user's concurrent claims never
//! pass `per_user`; sold out and expired are 409s that take nothing.

use http::{Method, StatusCode};
use serde_json::{Value, json};
use zhifu::account::Role;

use crate::admin::{call, sign_in};
use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::mall::many_users;

/// Creates a coupon as `admin` with `terms` over the defaults (amount_off ¥10 from ¥100, open
/// for a month) and returns it.
pub async fn coupon(app: &TestApp, admin: &str, terms: Value) -> Value {
    let mut body = json!({"name": "满100减10", "kind": "amount_off", "value": "10.00", "threshold": "100.00",
                          "valid_from": "2020-01-01T00:00:00+08:00", "valid_to": "2099-01-01T00:00:00+08:00",
                          "total": 100, "per_user": 1});
    for (k, v) in terms.as_object().unwrap() {
        body[k] = v.clone();
    }
    let answer = call(app, admin, Method::POST, "/api/admin/coupons", Some(body)).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    answer.json()
}

/// Claims coupon `id` as `token`; returns the answer.
pub async fn claim(app: &TestApp, token: &str, id: i64) -> crate::helpers::Answer {
    call(app, token, Method::POST, &format!("/api/mall/coupons/{id}/claim"), None).await
}

#[tokio::test]
async fn admins_create_coupons_whose_terms_are_checked() {
    let app = spawn_app().await;
    let admin = sign_in(&app, "admin1", Role::Admin).await;
    let user = sign_in(&app, "student1", Role::User).await;
    let made = coupon(
        &app,
        &admin,
        json!({"kind": "percent_off", "value": null, "percent": 15}),
    )
    .await;
    assert_eq!(
        (made["kind"].as_str(), made["percent"].as_i64()),
        (Some("percent_off"), Some(15))
    );
    assert_eq!(
        (made["threshold"].as_str(), made["threshold_fen"].as_i64()),
        (Some("100.00"), Some(10000))
    );
    assert_eq!(
        (made["remaining"].as_i64(), made["claimed"].as_i64()),
        (Some(100), Some(0))
    );
    let base = json!({"name": "x", "kind": "amount_off", "value": "1", "valid_from": "2020-01-01T00:00:00Z",
                      "valid_to": "2099-01-01T00:00:00Z", "total": 10, "per_user": 1});
    for (change, code) in [
        (json!({"kind": "free"}), "invalid_kind"),
        (
            json!({"kind": "percent_off", "value": null, "percent": 100}),
            "invalid_percent",
        ),
        (json!({"value": "0"}), "invalid_value"),
        (json!({"threshold": "abc"}), "invalid_threshold"),
        (json!({"valid_to": "2019-01-01T00:00:00Z"}), "invalid_window"),
        (json!({"total": 0}), "invalid_total"),
        (json!({"per_user": 11}), "invalid_per_user"),
    ] {
        let mut body = base.clone();
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let answer = call(&app, &admin, Method::POST, "/api/admin/coupons", Some(body)).await;
        assert_eq!(
            (answer.status, answer.error_code()),
            (StatusCode::UNPROCESSABLE_ENTITY, code.to_string())
        );
    }
    assert_eq!(
        call(&app, &user, Method::POST, "/api/admin/coupons", Some(base))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.count("SELECT count(*) FROM mall_coupons").await, 1);
    let listed = call(&app, &admin, Method::GET, "/api/admin/coupons", None).await.json();
    assert_eq!(
        (listed["total"].as_i64(), listed["items"][0]["used"].as_i64()),
        (Some(1), Some(0))
    );
    app.shutdown().await;
}

#[tokio::test]
async fn three_hundred_concurrent_claims_of_a_coupon_of_one_hundred_make_one_hundred() {
    let app = spawn_app_with(|s| s.database.pool_size = 16).await;
    let admin = sign_in(&app, "admin1", Role::Admin).await;
    let id = coupon(&app, &admin, json!({"total": 100, "per_user": 1})).await["id"]
        .as_i64()
        .unwrap();
    let users = many_users(&app, "claimer", 300).await;
    let claims = users.iter().map(|(_, token)| claim(&app, token, id));
    let answers = futures_util::future::join_all(claims).await;
    let won = answers.iter().filter(|a| a.status == StatusCode::CREATED).count();
    let sold_out = answers
        .iter()
        .filter(|a| a.status == StatusCode::CONFLICT && a.error_code() == "coupon_sold_out")
        .count();
    assert_eq!((won, sold_out), (100, 200), "every claim is either a copy or sold out");
    assert_eq!(app.count("SELECT count(*) FROM mall_user_coupons").await, 100);
    assert_eq!(
        app.count(&format!("SELECT claimed::bigint FROM mall_coupons WHERE id = {id}"))
            .await,
        100
    );
    assert_eq!(
        app.count("SELECT count(DISTINCT user_id) FROM mall_user_coupons").await,
        100,
        "one copy each"
    );
    let offer = app.get("/api/mall/coupons").await.json();
    assert_eq!(offer["items"][0]["remaining"], 0);
    app.shutdown().await;
}

#[tokio::test]
async fn one_users_concurrent_claims_never_pass_per_user() {
    let app = spawn_app_with(|s| s.database.pool_size = 16).await;
    let admin = sign_in(&app, "admin1", Role::Admin).await;
    let id = coupon(&app, &admin, json!({"total": 50, "per_user": 3})).await["id"]
        .as_i64()
        .unwrap();
    let users = many_users(&app, "greedy", 2).await;
    let app_ref = &app;
    let claims = users
        .iter()
        .flat_map(|(_, token)| (0..20).map(move |_| claim(app_ref, token, id)));
    let answers = futures_util::future::join_all(claims).await;
    for answer in &answers {
        assert!(
            answer.status == StatusCode::CREATED
                || (answer.status == StatusCode::CONFLICT && answer.error_code() == "coupon_limit_reached"),
            "{} {}",
            answer.status,
            answer.text()
        );
    }
    for (user, token) in &users {
        assert_eq!(
            app.count(&format!(
                "SELECT count(*) FROM mall_user_coupons WHERE user_id = {user}"
            ))
            .await,
            3,
            "per_user copies, no more"
        );
        let mine = call(&app, token, Method::GET, "/api/me/coupons", None).await.json();
        assert_eq!(mine["total"], 3);
        assert_eq!(mine["items"][0]["status"], "unused");
        assert_eq!(mine["items"][0]["coupon"]["id"], id);
    }
    assert_eq!(
        app.count(&format!("SELECT claimed::bigint FROM mall_coupons WHERE id = {id}"))
            .await,
        6,
        "refused claims took nothing"
    );
    let offers = call(&app, &users[0].1, Method::GET, "/api/mall/coupons", None)
        .await
        .json();
    assert_eq!(offers["items"][0]["claimed_by_me"], 3);
    app.shutdown().await;
}

#[tokio::test]
async fn a_sold_out_or_expired_coupon_cannot_be_claimed_and_an_unused_copy_expires() {
    let app = spawn_app().await;
    let admin = sign_in(&app, "admin1", Role::Admin).await;
    let user = sign_in(&app, "student1", Role::User).await;
    let one = coupon(&app, &admin, json!({"total": 1})).await["id"].as_i64().unwrap();
    assert_eq!(claim(&app, &user, one).await.status, StatusCode::CREATED);
    let again = claim(&app, &user, one).await;
    assert_eq!(
        (again.status, again.error_code().as_str()),
        (StatusCode::CONFLICT, "coupon_sold_out")
    );
    let later = coupon(&app, &admin, json!({"name": "限时"})).await["id"]
        .as_i64()
        .unwrap();
    let copy = claim(&app, &user, later).await.json();
    assert_eq!(
        (copy["status"].as_str(), copy["coupon"]["name"].as_str()),
        (Some("unused"), Some("限时"))
    );
    app.sql(&format!("UPDATE mall_coupons SET valid_from = now() - interval '2 days', valid_to = now() - interval '1 day' WHERE id = {later}"))
        .await;
    let expired = claim(&app, &user, later).await;
    assert_eq!(
        (expired.status, expired.error_code().as_str()),
        (StatusCode::CONFLICT, "coupon_expired")
    );
    let mine = call(&app, &user, Method::GET, "/api/me/coupons", None).await.json();
    assert_eq!(
        mine["items"][0]["status"], "expired",
        "an unused copy past valid_to reads expired"
    );
    assert_eq!(claim(&app, &user, 9999).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.post_json(&format!("/api/mall/coupons/{one}/claim"), json!({}))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let offers = app.get("/api/mall/coupons").await.json();
    assert_eq!(offers["total"], 1, "an expired coupon is no longer offered");
    app.shutdown().await;
}
