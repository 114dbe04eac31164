//! A checkout's reservation is one statement in the purchase's transaction: what it refuses
//! (out of stock before a wrong address, a wrong address with stock and coupon free) is
//! named as before and changes nothing — no payment, no order, the stock, the coupon copy and
//! the cart as they were — and what it makes is the order its detail shows, line for line.

use http::{Method, StatusCode};
use serde_json::json;

use crate::admin::call;
use crate::helpers::{TestApp, spawn_app};
use crate::mall::{category, simple_product};
use crate::mall_coupons::{claim, coupon};
use crate::mall_orders::{buyers, goods, order_no};

/// What a refused checkout must leave as it was.
async fn state_of(app: &TestApp, skus: &[i64], copy: i64) -> (i64, i64, Vec<i64>, i64, i64) {
    let mut stocks = Vec::new();
    for sku in skus {
        stocks.push(
            app.count(&format!("SELECT stock FROM mall_skus WHERE id = {sku}"))
                .await,
        );
    }
    (
        app.count("SELECT count(*) FROM payments").await,
        app.count("SELECT count(*) FROM mall_orders").await,
        stocks,
        app.count(&format!(
            "SELECT count(*) FROM mall_user_coupons WHERE id = {copy} AND status = 'unused'"
        ))
        .await,
        app.count("SELECT count(*) FROM mall_cart_items").await,
    )
}

#[tokio::test]
async fn a_refused_reservation_names_the_first_refusal_and_changes_nothing_and_a_made_one_is_its_detail() {
    let app = spawn_app().await;
    let (admin, merchant, mug) = goods(&app, "马克杯", "60.00", 5).await;
    let cat = category(&app, &admin, "杯具", None).await;
    let bowl = simple_product(&app, &merchant, cat, "碗", "30.00", 1).await["skus"][0]["id"]
        .as_i64()
        .unwrap();
    let mut people = buyers(&app, "ck", 2).await;
    let (_, _, others_address) = people.pop().unwrap();
    let (_, token, address) = people.pop().unwrap();
    let offer = coupon(&app, &admin, json!({"name": "满100减10"})).await["id"]
        .as_i64()
        .unwrap();
    let copy = claim(&app, &token, offer).await.json()["id"].as_i64().unwrap();
    for sku in [mug, bowl] {
        let put = call(
            &app,
            &token,
            Method::PUT,
            &format!("/api/mall/cart/items/{sku}"),
            Some(json!({"quantity": 1})),
        )
        .await;
        assert!(put.status.is_success(), "{}", put.text());
    }
    let before = state_of(&app, &[mug, bowl], copy).await;
    let order = |bowls: i64, address: i64| {
        let body = json!({"items": [{"sku_id": bowl, "quantity": bowls}, {"sku_id": mug, "quantity": 2}],
                          "address_id": address, "coupon_id": copy, "channel": "wechat", "remark": "轻放"});
        call(&app, &token, Method::POST, "/api/mall/orders", Some(body))
    };

    // Out of stock is named before the address someone else owns.
    let short = order(3, others_address).await;
    assert_eq!(short.status, StatusCode::CONFLICT, "{}", short.text());
    assert_eq!(short.error_code(), "out_of_stock");
    assert!(
        short
            .text()
            .contains(&format!("SKU {bowl} — 碗 — is out of stock: 1 left, 3 asked")),
        "{}",
        short.text()
    );
    assert_eq!(state_of(&app, &[mug, bowl], copy).await, before);

    // Stock and coupon free, the address not the buyer's: refused, nothing taken or held.
    let stranger = order(1, others_address).await;
    assert_eq!(stranger.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", stranger.text());
    assert_eq!(stranger.error_code(), "invalid_address");
    assert_eq!(state_of(&app, &[mug, bowl], copy).await, before);

    // Made: both lines, the stock taken, the copy held, the cart emptied, the answer's order
    // the order's detail.
    let made = order(1, address).await;
    let no = order_no(&made);
    let (payments, orders, _, _, _) = before;
    assert_eq!(
        state_of(&app, &[mug, bowl], copy).await,
        (payments + 1, orders + 1, vec![3, 0], 0, 0)
    );
    let answer = made.json();
    let order = &answer["order"];
    assert_eq!(order["total_fen"], 15_000);
    assert_eq!(order["discount_fen"], 1_000);
    assert_eq!(order["payable_fen"], 14_000);
    assert_eq!(order["coupon_id"], copy);
    assert_eq!(order["remark"], "轻放");
    assert_eq!(
        order["address"],
        json!({"name": "买家", "phone": "13800138000", "region": "上海市", "detail": "世纪大道 1 号"})
    );
    let lines: Vec<(i64, i64)> = order["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["sku_id"].as_i64().unwrap(), i["quantity"].as_i64().unwrap()))
        .collect();
    assert_eq!(lines, [(mug, 2), (bowl, 1)], "sorted by SKU id");
    assert_eq!(answer["payment"]["amount_fen"], 14_000);
    let detail = call(&app, &token, Method::GET, &format!("/api/mall/orders/{no}"), None).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert_eq!(
        serde_json::to_string(order).unwrap(),
        serde_json::to_string(&detail.json()).unwrap()
    );
    let copy_order = app
        .count(&format!(
            "SELECT count(*) FROM mall_user_coupons WHERE id = {copy} AND status = 'held' AND order_no = '{no}'"
        ))
        .await;
    assert_eq!(copy_order, 1);
    app.shutdown().await;
}

#[tokio::test]
async fn a_checkout_retried_after_its_first_attempt_died_answers_the_order_made_and_takes_nothing_more() {
    let app = spawn_app().await;
    let (_, _, sku) = goods(&app, "马克杯", "60.00", 5).await;
    let (_, token, address) = buyers(&app, "retry", 1).await.remove(0);
    let body = json!({"items": [{"sku_id": sku, "quantity": 2}], "address_id": address, "channel": "alipay"});
    let send = || {
        let bearer = format!("Bearer {token}");
        let body = bytes::Bytes::from(body.to_string());
        let app = &app;
        async move {
            let headers = [
                ("authorization", bearer.as_str()),
                ("content-type", "application/json"),
                ("idempotency-key", "checkout-crashed"),
            ];
            app.request(Method::POST, "/api/mall/orders", &headers, body).await
        }
    };
    let first = send().await;
    let no = order_no(&first);
    // It died after its commit, before its answer was kept: the retry runs again under the
    // same order number, whose payment exists, so its reservation is rolled back.
    app.sql(
        "UPDATE idempotency_keys SET status = NULL, body = NULL, locked_until = now() - interval '1 s'
          WHERE key = 'checkout-crashed'",
    )
    .await;
    let again = send().await;
    assert_eq!(order_no(&again), no);
    assert_eq!(again.json()["payment"]["order_no"], no.as_str());
    assert_eq!(
        app.count(&format!("SELECT stock FROM mall_skus WHERE id = {sku}"))
            .await,
        3
    );
    assert_eq!(app.count("SELECT count(*) FROM mall_orders").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM mall_order_events").await, 1);
    app.shutdown().await;
}
