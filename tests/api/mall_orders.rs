//! Mall orders through the payment engine: checkout takes stock and holds a coupon in the
//! purchase's transaction, never overselling (200 buyers on two instances for 10 units); an
//! unpaid order's stock and coupon come back once when it expires or is cancelled, also when
//! a payment races the close (that payment is refunded in full); paid consumes the coupon,
//! raises sales and tells the merchant; refunds approved before shipping return the stock,
//! after shipping only the money; a checkout with an Idempotency-Key is made once.

use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use zhifu::account::Role;
use zhifu::pay::close::CloseKind;
use zhifu::pay::provider::Channel;
use zhifu::pay::reconcile;

use crate::admin::{call, sign_in};
use crate::helpers::{Answer, TestApp, eventually, spawn_app, spawn_app_on};
use crate::mall::{category, many_users, simple_product};
use crate::mall_coupons::{claim, coupon};

/// A merchant's one-SKU product in a fresh category: `(admin token, merchant token, sku id)`.
pub async fn goods(app: &TestApp, name: &str, price: &str, stock: i64) -> (String, String, i64) {
    let admin = sign_in(app, "admin1", Role::Admin).await;
    let merchant = sign_in(app, "shop1", Role::Merchant).await;
    let cat = category(app, &admin, "日用", None).await;
    let product = simple_product(app, &merchant, cat, name, price, stock).await;
    (admin, merchant, product["skus"][0]["id"].as_i64().unwrap())
}

/// `n` signed-in buyers with an address each: `(user id, token, address id)`.
pub async fn buyers(app: &TestApp, prefix: &str, n: usize) -> Vec<(i64, String, i64)> {
    let users = many_users(app, prefix, n).await;
    let mut out = Vec::with_capacity(n);
    for (id, token) in users {
        let address = app
            .count(&format!(
                "INSERT INTO addresses (user_id, name, phone, region, detail, is_default)
                 VALUES ({id}, '买家', '13800138000', '上海市', '世纪大道 1 号', true) RETURNING id"
            ))
            .await;
        out.push((id, token, address));
    }
    out
}

/// `POST /api/mall/orders` of `quantity` of `sku` as `token`.
pub async fn checkout(
    app: &TestApp,
    token: &str,
    sku: i64,
    quantity: i64,
    address: i64,
    coupon_id: Option<i64>,
    channel: &str,
) -> Answer {
    let body = json!({"items": [{"sku_id": sku, "quantity": quantity}], "address_id": address,
                      "coupon_id": coupon_id, "channel": channel});
    call(app, token, Method::POST, "/api/mall/orders", Some(body)).await
}

/// The order number of a `201` checkout answer.
pub fn order_no(answer: &Answer) -> String {
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    answer.json()["order"]["order_no"].as_str().unwrap().to_string()
}

async fn stock(app: &TestApp, sku: i64) -> i64 {
    app.count(&format!("SELECT stock FROM mall_skus WHERE id = {sku}"))
        .await
}

async fn order_status(app: &TestApp, no: &str) -> String {
    let (client, conn) = app.db.connect(tokio_postgres::NoTls).await.unwrap();
    let conn = tokio::spawn(conn);
    let status: String = client
        .query_one("SELECT status FROM mall_orders WHERE order_no = $1", &[&no])
        .await
        .unwrap()
        .get(0);
    drop(client);
    let _ = conn.await;
    status
}

async fn events(app: &TestApp, no: &str, kind: &str) -> i64 {
    app.count(&format!(
        "SELECT count(*) FROM mall_order_events WHERE order_no = '{no}' AND kind = '{kind}'"
    ))
    .await
}

/// Makes every unpaid mall order due to expire now and runs reconcile passes until `n` are
/// cancelled.
async fn expire_all(app: &TestApp, n: i64) {
    app.sql(
        "UPDATE payments SET expires_at = now() - interval '1 second', next_check_at = now()
          WHERE purpose = 'mall_order' AND status = 'pending'",
    )
    .await;
    let done = eventually(Duration::from_secs(20), || async {
        reconcile::pass(&app.state.engine).await.expect("a reconcile pass");
        app.count("SELECT count(*) FROM mall_orders WHERE status = 'cancelled'")
            .await
            == n
    })
    .await;
    assert!(done, "the unpaid orders did not expire");
}

#[tokio::test]
async fn two_hundred_buyers_on_two_instances_share_ten_units_and_get_them_back_when_unpaid_orders_expire() {
    let a = spawn_app().await;
    let b = spawn_app_on(a.db.clone(), |_| {}).await;
    let (_, _, sku) = goods(&a, "限量马克杯", "5.00", 10).await;
    let people = buyers(&a, "rush", 200).await;
    let answers = futures_util::future::join_all(people.iter().enumerate().map(|(i, (_, token, address))| {
        let app = if i % 2 == 0 { &a } else { &b };
        let channel = if i % 3 == 0 { "alipay" } else { "wechat" };
        checkout(app, token, sku, 1, *address, None, channel)
    }))
    .await;
    let made: Vec<String> = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .map(order_no)
        .collect();
    let refused: Vec<&Answer> = answers.iter().filter(|a| a.status == StatusCode::CONFLICT).collect();
    assert_eq!(made.len(), 10, "exactly the stock is sold");
    assert_eq!(refused.len(), 190, "every other buyer is told it is sold out");
    for answer in &refused {
        assert_eq!(answer.error_code(), "out_of_stock");
        let message = answer.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(
            message.contains(&format!("SKU {sku}")) && message.contains("限量马克杯"),
            "{message}"
        );
    }
    assert_eq!(stock(&a, sku).await, 0);
    assert_eq!(a.count("SELECT count(*) FROM mall_orders").await, 10);
    assert_eq!(
        a.count("SELECT count(*) FROM payments WHERE purpose = 'mall_order'")
            .await,
        10
    );
    assert_eq!(
        a.count("SELECT coalesce(sum(quantity), 0) FROM mall_order_items").await,
        10
    );
    // Both instances show the stock gone within a second.
    let detail = format!("/api/mall/products/{}", sku_product(&a, sku).await);
    for app in [&a, &b] {
        assert!(
            eventually(Duration::from_secs(1), || async {
                app.get(&detail).await.json()["stock"] == 0
            })
            .await,
            "an instance still shows stock"
        );
    }

    // Nobody pays: every order expires, and the ten units come back, once.
    expire_all(&a, 10).await;
    assert_eq!(stock(&a, sku).await, 10);
    for no in &made {
        assert_eq!(events(&a, no, "cancelled").await, 1);
    }
    reconcile::pass(&b.state.engine).await.unwrap();
    for no in &made {
        let channel = if a
            .count(&format!(
                "SELECT count(*) FROM payments WHERE order_no = '{no}' AND channel = 'alipay'"
            ))
            .await
            == 1
        {
            Channel::Alipay
        } else {
            Channel::Wechat
        };
        a.state
            .engine
            .close_order(no, channel, CloseKind::Expired)
            .await
            .unwrap();
    }
    assert_eq!(stock(&a, sku).await, 10, "closing again returns nothing more");
    assert!(
        eventually(Duration::from_secs(1), || async {
            b.get(&detail).await.json()["stock"] == 10
        })
        .await,
        "the other instance shows the stock back"
    );
    b.shutdown().await;
    a.shutdown().await;
}

async fn sku_product(app: &TestApp, sku: i64) -> i64 {
    app.count(&format!("SELECT product_id FROM mall_skus WHERE id = {sku}"))
        .await
}

#[tokio::test]
async fn an_expiry_raced_by_a_payment_either_keeps_the_sale_or_refunds_it_in_full_and_everything_adds_up() {
    const ROUNDS: usize = 100;
    let app = spawn_app().await;
    let (admin, _, sku) = goods(&app, "帆布袋", "5.00", 1000).await;
    let sandbox = app.state.sandbox.clone().unwrap();
    let (_, token, address) = buyers(&app, "racer", 1).await.remove(0);
    let offer = coupon(
        &app,
        &admin,
        json!({"name": "立减1元", "value": "1.00", "threshold": "0", "total": ROUNDS, "per_user": ROUNDS}),
    )
    .await;
    let mut copies = Vec::new();
    for _ in 0..ROUNDS / 2 {
        copies.push(
            claim(&app, &token, offer["id"].as_i64().unwrap()).await.json()["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let mut orders = Vec::new();
    for round in 0..ROUNDS {
        let channel = if round % 2 == 0 {
            Channel::Wechat
        } else {
            Channel::Alipay
        };
        let copy = copies.get(round / 2).copied().filter(|_| round % 2 == 0);
        let made = checkout(&app, &token, sku, 2, address, copy, channel.as_str()).await;
        let no = order_no(&made);
        let pay = async {
            match channel {
                Channel::Wechat => sandbox.wechat.force_pay(&no).await,
                Channel::Alipay => sandbox.alipay.force_pay(&no).await,
            }
        };
        let close = app.state.engine.close_order(&no, channel, CloseKind::Expired);
        match round % 3 {
            0 => {
                close.await.unwrap();
                pay.await.unwrap();
            }
            1 => {
                pay.await.unwrap();
                close.await.unwrap();
            }
            _ => {
                let (closed, paid) = tokio::join!(close, pay);
                closed.unwrap();
                paid.unwrap();
            }
        }
        orders.push((no, copy));
    }

    let mut kept = 0;
    for (no, copy) in &orders {
        let amount = if copy.is_some() { 900 } else { 1000 };
        let settled = eventually(Duration::from_secs(10), || async {
            let status = app.get(&format!("/api/payments/{no}")).await.json();
            status["status"] == "paid" || status["refunded_fen"] == amount
        })
        .await;
        assert!(settled, "{no} never settled");
        let status = order_status(&app, no).await;
        let refunds = app
            .count(&format!(
                "SELECT count(*) FROM refunds WHERE order_no = '{no}' AND amount_fen = {amount}"
            ))
            .await;
        match status.as_str() {
            "paid" => {
                kept += 1;
                assert_eq!(refunds, 0);
                assert_eq!(events(&app, no, "cancelled").await, 0);
            }
            "cancelled" => {
                assert_eq!(refunds, 1, "{no}: refunded in full, once");
                assert_eq!(events(&app, no, "cancelled").await, 1, "{no}: released once");
                assert_eq!(events(&app, no, "paid").await, 0);
            }
            other => panic!("{no} is {other}"),
        }
        if let Some(copy) = copy {
            let copy_status = app
                .count(&format!(
                    "SELECT CASE status WHEN 'used' THEN 2 WHEN 'unused' THEN 0 ELSE 1 END::bigint FROM mall_user_coupons WHERE id = {copy}"
                ))
                .await;
            assert_eq!(
                copy_status,
                if status == "paid" { 2 } else { 0 },
                "{no}: the coupon follows the order"
            );
        }
    }
    assert!(kept > 0 && kept < ROUNDS as i64, "both outcomes happened ({kept} kept)");
    // Stock, sales, coupons and payments add up.
    assert_eq!(stock(&app, sku).await, 1000 - 2 * kept);
    assert_eq!(
        app.count(&format!("SELECT sales FROM mall_skus WHERE id = {sku}"))
            .await,
        2 * kept
    );
    assert_eq!(
        app.count("SELECT count(*) FROM mall_user_coupons WHERE status = 'held'")
            .await,
        0
    );
    assert_eq!(
        app.count("SELECT count(*) FROM mall_user_coupons WHERE status = 'used'")
            .await,
        app.count("SELECT count(*) FROM mall_orders WHERE status = 'paid' AND coupon_id IS NOT NULL")
            .await
    );
    assert_eq!(
        app.count("SELECT coalesce(sum(amount_fen - refunded_fen), 0)::bigint FROM payments WHERE purpose = 'mall_order' AND status IN ('paid', 'refunded')").await,
        app.count("SELECT coalesce(sum(payable_fen), 0)::bigint FROM mall_orders WHERE status = 'paid'").await,
        "the money kept is what the paid orders cost"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_coupon_copy_is_held_by_one_order_returned_when_it_is_cancelled_and_used_once_paid() {
    let app = spawn_app().await;
    let (admin, _, sku) = goods(&app, "保温杯", "60.00", 100).await;
    let mut people = buyers(&app, "cp", 2).await;
    let (_, other, other_address) = people.pop().unwrap();
    let (_, token, address) = people.pop().unwrap();
    let offer = coupon(&app, &admin, json!({"name": "满100减10"})).await;
    let copy = claim(&app, &token, offer["id"].as_i64().unwrap()).await.json()["id"]
        .as_i64()
        .unwrap();
    let payments_before = app.count("SELECT count(*) FROM payments").await;

    // Below the threshold, someone else's copy, an unknown copy: refused, nothing written.
    for (who, qty, addr, code) in [
        (&token, 1, address, "coupon_not_applicable"),
        (&other, 2, other_address, "coupon_not_applicable"),
    ] {
        let refused = checkout(&app, who, sku, qty, addr, Some(copy), "alipay").await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.text());
        assert_eq!(refused.error_code(), code);
    }
    assert_eq!(app.count("SELECT count(*) FROM payments").await, payments_before);
    assert_eq!(stock(&app, sku).await, 100);

    // Two concurrent orders with the same copy: one holds it.
    let (first, second) = tokio::join!(
        checkout(&app, &token, sku, 2, address, Some(copy), "alipay"),
        checkout(&app, &token, sku, 2, address, Some(copy), "alipay"),
    );
    let (won, lost) = if first.status == StatusCode::CREATED {
        (first, second)
    } else {
        (second, first)
    };
    let no = order_no(&won);
    assert_eq!(lost.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", lost.text());
    assert_eq!(lost.error_code(), "coupon_not_applicable");
    let order = &won.json()["order"];
    assert_eq!(
        (
            order["total"].as_str(),
            order["discount"].as_str(),
            order["payable"].as_str()
        ),
        (Some("120.00"), Some("10.00"), Some("110.00"))
    );
    assert_eq!(won.json()["payment"]["amount_fen"], 11000);
    assert_eq!(stock(&app, sku).await, 98, "only the winner took stock");
    let mine = call(&app, &token, Method::GET, "/api/me/coupons", None).await.json();
    assert_eq!(mine["items"][0]["status"], "held");

    // Cancelled (Alipay closes at once): the copy and the stock come back.
    let cancelled = call(
        &app,
        &token,
        Method::POST,
        &format!("/api/mall/orders/{no}/cancel"),
        None,
    )
    .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text());
    assert_eq!(cancelled.json()["status"], "cancelled");
    assert_eq!(stock(&app, sku).await, 100);
    let mine = call(&app, &token, Method::GET, "/api/me/coupons", None).await.json();
    assert_eq!(mine["items"][0]["status"], "unused");
    let again = call(
        &app,
        &token,
        Method::POST,
        &format!("/api/mall/orders/{no}/cancel"),
        None,
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.error_code(), "invalid_state");

    // Used by the next order, consumed when it is paid; then it cannot be used again.
    let next = order_no(&checkout(&app, &token, sku, 2, address, Some(copy), "wechat").await);
    assert_eq!(app.sandbox_pay(&next).await.status, StatusCode::OK);
    assert!(
        eventually(Duration::from_secs(5), || async {
            order_status(&app, &next).await == "paid"
        })
        .await
    );
    let mine = call(&app, &token, Method::GET, "/api/me/coupons", None).await.json();
    assert_eq!(mine["items"][0]["status"], "used");
    let reused = checkout(&app, &token, sku, 2, address, Some(copy), "wechat").await;
    assert_eq!(reused.error_code(), "coupon_not_applicable");
    app.shutdown().await;
}

#[tokio::test]
async fn an_order_is_paid_shipped_and_confirmed_with_its_timeline_and_notices_and_made_once_per_key() {
    let app = spawn_app().await;
    let (admin, merchant, sku) = goods(&app, "台灯", "45.50", 3).await;
    let (buyer_id, token, address) = buyers(&app, "story", 1).await.remove(0);
    let merchant_id = app.count("SELECT id FROM users WHERE username = 'shop1'").await;
    // In the cart first: the order takes the line out.
    call(
        &app,
        &token,
        Method::PUT,
        &format!("/api/mall/cart/items/{sku}"),
        Some(json!({"quantity": 2})),
    )
    .await;

    // Out of stock names the SKU and changes nothing.
    let too_many = checkout(&app, &token, sku, 4, address, None, "wechat").await;
    assert_eq!(too_many.status, StatusCode::CONFLICT);
    assert_eq!(too_many.error_code(), "out_of_stock");
    assert!(too_many.text().contains(&format!("SKU {sku}")), "{}", too_many.text());
    assert_eq!(stock(&app, sku).await, 3);

    // An Idempotency-Key: the same answer, one order, also concurrently.
    let body = json!({"items": [{"sku_id": sku, "quantity": 2}], "address_id": address, "channel": "wechat",
                      "remark": "  请周末送  "});
    let send = |body: Value| {
        let bearer = format!("Bearer {token}");
        let app = &app;
        async move {
            let headers = [
                ("authorization", bearer.as_str()),
                ("content-type", "application/json"),
                ("idempotency-key", "order-key-1"),
            ];
            app.request(Method::POST, "/api/mall/orders", &headers, body.to_string().into())
                .await
        }
    };
    let (one, two) = tokio::join!(send(body.clone()), send(body.clone()));
    let three = send(body.clone()).await;
    let no = order_no(&three);
    for answer in [&one, &two] {
        if answer.status == StatusCode::CREATED {
            assert_eq!(answer.body, three.body);
        } else {
            assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.text());
        }
    }
    assert_eq!(app.count("SELECT count(*) FROM mall_orders").await, 1);
    assert_eq!(stock(&app, sku).await, 1);
    let other =
        send(json!({"items": [{"sku_id": sku, "quantity": 1}], "address_id": address, "channel": "wechat"})).await;
    assert_eq!(other.error_code(), "idempotency_key_reused");
    let order = three.json();
    assert_eq!(order["order"]["status"], "pending_payment");
    assert_eq!(order["order"]["payable"], "91.00");
    assert_eq!(order["order"]["remark"], "请周末送");
    assert_eq!(order["order"]["items"][0]["name"], "台灯");
    assert_eq!(order["order"]["address"]["name"], "买家");
    assert_eq!(order["payment"]["pay_url"], format!("/pay/{no}"));
    assert!(order["payment"]["code_url"].as_str().is_some_and(|c| !c.is_empty()));
    let cart = call(&app, &token, Method::GET, "/api/mall/cart", None).await.json();
    assert_eq!(cart["groups"].as_array().map_or(0, Vec::len), 0, "{cart}");

    // A later price change does not touch the order.
    app.sql(&format!("UPDATE mall_skus SET price_fen = 9900 WHERE id = {sku}"))
        .await;
    assert_eq!(app.sandbox_pay(&no).await.status, StatusCode::OK);
    assert!(
        eventually(Duration::from_secs(5), || async {
            order_status(&app, &no).await == "paid"
        })
        .await
    );
    let detail = call(&app, &token, Method::GET, &format!("/api/mall/orders/{no}"), None)
        .await
        .json();
    assert_eq!(detail["items"][0]["price"], "45.50");
    assert_eq!(detail["payment_status"], "paid");
    assert_eq!(
        app.count(&format!("SELECT sales FROM mall_skus WHERE id = {sku}"))
            .await,
        2
    );
    assert_eq!(
        app.count(&format!(
            "SELECT sales FROM mall_products WHERE id = {}",
            sku_product(&app, sku).await
        ))
        .await,
        2
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM notifications WHERE recipient_id = {merchant_id} AND kind = 'order_paid'"
        ))
        .await,
        1
    );
    // The admin dashboard charts the sale.
    let dashboard = crate::mall_pages::page(&app, "/admin/mall", Some(&admin)).await.text();
    assert!(
        dashboard.contains("<svg") && !dashboard.contains("chart-empty"),
        "{dashboard}"
    );
    assert!(dashboard.contains("91.00"), "the day's sales");
    // The callback again changes nothing.
    assert_eq!(app.sandbox_pay(&no).await.status, StatusCode::OK);
    assert_eq!(
        app.count(&format!("SELECT sales FROM mall_skus WHERE id = {sku}"))
            .await,
        2
    );

    // The buyer cannot cancel a paid order; the merchant ships, the buyer confirms.
    let late_cancel = call(
        &app,
        &token,
        Method::POST,
        &format!("/api/mall/orders/{no}/cancel"),
        None,
    )
    .await;
    assert_eq!(late_cancel.error_code(), "invalid_state");
    let shipped = call(
        &app,
        &merchant,
        Method::POST,
        &format!("/api/merchant/orders/{no}/ship"),
        Some(json!({"carrier": "顺丰", "tracking_no": "SF1234567890"})),
    )
    .await;
    assert_eq!(shipped.json()["status"], "shipped", "{}", shipped.text());
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM notifications WHERE recipient_id = {buyer_id} AND kind = 'order_shipped'"
        ))
        .await,
        1
    );
    let done = call(
        &app,
        &token,
        Method::POST,
        &format!("/api/mall/orders/{no}/confirm"),
        None,
    )
    .await;
    assert_eq!(done.json()["status"], "completed");
    let kinds: Vec<String> = done.json()["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["created", "paid", "shipped", "completed"]);
    app.shutdown().await;
}

/// A paid order of 2 units, its refund asked for (after shipping when `ship`), approved.
async fn refunded_order(app: &TestApp, merchant: &str, token: &str, sku: i64, address: i64, ship: bool) -> String {
    let no = order_no(&checkout(app, token, sku, 2, address, None, "wechat").await);
    assert_eq!(app.sandbox_pay(&no).await.status, StatusCode::OK);
    assert!(
        eventually(Duration::from_secs(5), || async {
            order_status(app, &no).await == "paid"
        })
        .await
    );
    if ship {
        let shipped = call(
            app,
            merchant,
            Method::POST,
            &format!("/api/merchant/orders/{no}/ship"),
            Some(json!({"carrier": "EMS", "tracking_no": "EMS-0001"})),
        )
        .await;
        assert_eq!(shipped.status, StatusCode::OK, "{}", shipped.text());
    }
    let asked = call(
        app,
        token,
        Method::POST,
        &format!("/api/mall/orders/{no}/refund-request"),
        Some(json!({"reason": "尺寸不合适"})),
    )
    .await;
    assert_eq!(asked.json()["status"], "refunding", "{}", asked.text());
    let approved = call(
        app,
        merchant,
        Method::POST,
        &format!("/api/merchant/orders/{no}/refund"),
        Some(json!({"approve": true})),
    )
    .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.text());
    assert!(
        eventually(Duration::from_secs(5), || async {
            order_status(app, &no).await == "refunded"
        })
        .await,
        "the refund went through"
    );
    no
}

#[tokio::test]
async fn an_approved_refund_returns_the_money_and_the_stock_only_when_nothing_shipped() {
    let app = spawn_app().await;
    let (_, merchant, sku) = goods(&app, "运动鞋", "200.00", 10).await;
    let (buyer_id, token, address) = buyers(&app, "rf", 1).await.remove(0);
    let wechat = app.state.sandbox.clone().unwrap().wechat;

    let before_shipping = refunded_order(&app, &merchant, &token, sku, address, false).await;
    assert_eq!(wechat.refunded_fen(&before_shipping), 40000);
    assert_eq!(stock(&app, sku).await, 10, "unshipped: the stock is back");
    assert_eq!(
        app.count(&format!("SELECT sales FROM mall_skus WHERE id = {sku}"))
            .await,
        0
    );

    let after_shipping = refunded_order(&app, &merchant, &token, sku, address, true).await;
    assert_eq!(wechat.refunded_fen(&after_shipping), 40000);
    assert_eq!(
        stock(&app, sku).await,
        8,
        "shipped: the goods are out, the stock stays taken"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM notifications WHERE recipient_id = {buyer_id} AND kind = 'refund'"
        ))
        .await,
        2
    );
    // Approving again refunds nothing more.
    let again = call(
        &app,
        &merchant,
        Method::POST,
        &format!("/api/merchant/orders/{after_shipping}/refund"),
        Some(json!({"approve": true})),
    )
    .await;
    assert_eq!(again.error_code(), "invalid_state");
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM refunds WHERE order_no = '{after_shipping}'"
        ))
        .await,
        1
    );

    // A refused request puts the order back where it was.
    let no = order_no(&checkout(&app, &token, sku, 1, address, None, "alipay").await);
    assert_eq!(app.sandbox_pay(&no).await.status, StatusCode::OK);
    assert!(
        eventually(Duration::from_secs(5), || async {
            order_status(&app, &no).await == "paid"
        })
        .await
    );
    call(
        &app,
        &token,
        Method::POST,
        &format!("/api/mall/orders/{no}/refund-request"),
        Some(json!({"reason": "不想要了"})),
    )
    .await;
    let refused = call(
        &app,
        &merchant,
        Method::POST,
        &format!("/api/merchant/orders/{no}/refund"),
        Some(json!({"approve": false, "reason": "已按约定发货"})),
    )
    .await;
    assert_eq!(refused.json()["status"], "paid", "{}", refused.text());
    assert_eq!(
        app.count(&format!("SELECT count(*) FROM refunds WHERE order_no = '{no}'"))
            .await,
        0
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_payment_landing_on_an_order_the_buyer_just_cancelled_is_refunded_in_full_and_the_stock_comes_back_once() {
    let app = spawn_app().await;
    let (_, _, sku) = goods(&app, "雨伞", "30.00", 5).await;
    let (_, token, address) = buyers(&app, "cx", 1).await.remove(0);
    let sandbox = app.state.sandbox.clone().unwrap();

    // WeChat: an order may not be closed in its first 5 minutes, so the cancel waits; the
    // payment that lands meanwhile is refunded and the order cancelled.
    let no = order_no(&checkout(&app, &token, sku, 2, address, None, "wechat").await);
    let cancel = call(
        &app,
        &token,
        Method::POST,
        &format!("/api/mall/orders/{no}/cancel"),
        None,
    )
    .await;
    assert_eq!(cancel.status, StatusCode::OK, "{}", cancel.text());
    assert_eq!(cancel.json()["status"], "pending_payment");
    assert_eq!(cancel.json()["cancel_reason"], "buyer");
    let again = call(
        &app,
        &token,
        Method::POST,
        &format!("/api/mall/orders/{no}/cancel"),
        None,
    )
    .await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "asking again while the close waits: {}",
        again.text()
    );
    assert_eq!(events(&app, &no, "cancel_requested").await, 1);
    assert_eq!(stock(&app, sku).await, 3, "held until the provider's order is closed");
    let listed = crate::mall_pages::page(&app, "/mall/orders", Some(&token)).await.text();
    assert!(
        listed.contains("class=\"refund-asked cancelling\"") && !listed.contains("pay-link"),
        "{listed}"
    );
    sandbox.wechat.force_pay(&no).await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            sandbox.wechat.refunded_fen(&no) == 6000
        })
        .await,
        "refunded in full"
    );
    assert_eq!(order_status(&app, &no).await, "cancelled");
    assert_eq!(stock(&app, sku).await, 5);
    assert_eq!(events(&app, &no, "cancelled").await, 1);
    assert_eq!(events(&app, &no, "paid").await, 0);
    // The close the cancel scheduled finds a paid payment: nothing comes back twice.
    app.sql(&format!(
        "UPDATE payments SET next_check_at = now() WHERE order_no = '{no}'"
    ))
    .await;
    reconcile::pass(&app.state.engine).await.unwrap();
    assert_eq!(stock(&app, sku).await, 5);
    assert_eq!(
        app.count(&format!("SELECT count(*) FROM refunds WHERE order_no = '{no}'"))
            .await,
        1
    );

    // Alipay closes at once; a payment that still lands is late and refunded.
    let no = order_no(&checkout(&app, &token, sku, 1, address, None, "alipay").await);
    let cancel = call(
        &app,
        &token,
        Method::POST,
        &format!("/api/mall/orders/{no}/cancel"),
        None,
    )
    .await;
    assert_eq!(cancel.json()["status"], "cancelled", "{}", cancel.text());
    assert_eq!(stock(&app, sku).await, 5);
    sandbox.alipay.force_pay(&no).await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            sandbox.alipay.refunded_fen(&no) == Some(3000)
        })
        .await,
        "the late payment is refunded in full"
    );
    assert_eq!(stock(&app, sku).await, 5, "and the stock is not taken again");
    assert_eq!(events(&app, &no, "payment_refused").await, 1);
    let status = app.get(&format!("/api/payments/{no}")).await.json();
    assert_eq!(status["status"], "refunded", "{status}");
    app.shutdown().await;
}
