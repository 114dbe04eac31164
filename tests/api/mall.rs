//! The mall's catalog: the category tree (admin, 409 while used), products with SKUs for
//! merchants and second-hand listings for anyone, search (Chinese, one and two characters,
//! through the GIN index), filters and sorts, answers cached yet fresh on every instance
//! within a second, favorites and the cart. Helpers for the other mall tests live here too.

use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use zhifu::account::Role;

use crate::admin::{call, sign_in};
use crate::helpers::{Answer, TestApp, eventually, spawn_app, spawn_app_on};

/// Creates a category (as `admin`) and returns its id.
pub async fn category(app: &TestApp, admin: &str, name: &str, parent: Option<i64>) -> i64 {
    let answer = call(
        app,
        admin,
        Method::POST,
        "/api/admin/mall/categories",
        Some(json!({"name": name, "parent_id": parent})),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    answer.json()["id"].as_i64().unwrap()
}

/// Creates a product as `seller` and returns its detail.
pub async fn product(app: &TestApp, seller: &str, body: Value) -> Value {
    let answer = call(app, seller, Method::POST, "/api/mall/products", Some(body)).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    answer.json()
}

/// A product of one SKU at `price` with `stock` in `category`.
pub async fn simple_product(app: &TestApp, seller: &str, category: i64, name: &str, price: &str, stock: i64) -> Value {
    product(
        app,
        seller,
        json!({"category_id": category, "name": name, "description": "", "skus": [{"specs": {}, "price": price, "stock": stock}]}),
    )
    .await
}

/// `n` users signed in without going through password hashing (for tests of many buyers):
/// `(user id, session token)`.
pub async fn many_users(app: &TestApp, prefix: &str, n: usize) -> Vec<(i64, String)> {
    let (client, conn) = app.db.connect(tokio_postgres::NoTls).await.unwrap();
    let conn = tokio::spawn(conn);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let id: i64 = client
            .query_one(
                "INSERT INTO users (wechat_openid, display_name) VALUES ($1, $2) RETURNING id",
                &[&format!("{prefix}-{i}"), &format!("{prefix}{i}")],
            )
            .await
            .unwrap()
            .get(0);
        let (token, hash) = zhifu::account::new_token().unwrap();
        client
            .execute(
                "INSERT INTO sessions (token_sha256, user_id, expires_at, method) VALUES ($1, $2, now() + interval '1 day', 'test')",
                &[&hash.as_slice(), &id],
            )
            .await
            .unwrap();
        out.push((id, token));
    }
    drop(client);
    let _ = conn.await;
    out
}

/// The ids of the products a list answer holds, in order.
pub fn ids(answer: &Answer) -> Vec<i64> {
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    answer.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn admins_keep_a_category_tree_that_refuses_cycles_and_deleting_what_is_used() {
    let app = spawn_app().await;
    let admin = sign_in(&app, "admin1", Role::Admin).await;
    let merchant = sign_in(&app, "shop1", Role::Merchant).await;
    let clothes = category(&app, &admin, "服装", None).await;
    let women = category(&app, &admin, "女装", Some(clothes)).await;
    let dresses = category(&app, &admin, "连衣裙", Some(women)).await;
    let digital = category(&app, &admin, "数码", None).await;

    let tree = app.get("/api/mall/categories").await.json();
    assert_eq!(tree["items"][0]["name"], "服装");
    assert_eq!(tree["items"][0]["children"][0]["children"][0]["id"], dresses);
    assert_eq!(tree["items"][1]["id"], digital);

    // Only admins.
    let denied = call(
        &app,
        &merchant,
        Method::POST,
        "/api/admin/mall/categories",
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let anonymous = app.post_json("/api/admin/mall/categories", json!({"name": "x"})).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

    // Sibling names are unique; a move under one's own descendant is refused.
    let twice = call(
        &app,
        &admin,
        Method::POST,
        "/api/admin/mall/categories",
        Some(json!({"name": "女装", "parent_id": clothes})),
    )
    .await;
    assert_eq!(
        (twice.status, twice.error_code().as_str()),
        (StatusCode::CONFLICT, "category_name_taken")
    );
    let cycle = call(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/admin/mall/categories/{clothes}"),
        Some(json!({"parent_id": dresses})),
    )
    .await;
    assert_eq!(
        (cycle.status, cycle.error_code().as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_parent")
    );
    let unknown = call(
        &app,
        &admin,
        Method::POST,
        "/api/admin/mall/categories",
        Some(json!({"name": "y", "parent_id": 999})),
    )
    .await;
    assert_eq!(unknown.error_code(), "invalid_parent");

    // Rename and move to the top: shown at once.
    let moved = call(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/admin/mall/categories/{dresses}"),
        Some(json!({"name": "裙装", "parent_id": null, "sort_order": -1})),
    )
    .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text());
    let tree = app.get("/api/mall/categories").await.json();
    assert_eq!(tree["items"][0]["name"], "裙装", "sorted first at the top: {tree}");

    // In use → 409; with children → 409; unused → gone.
    simple_product(&app, &merchant, digital, "耳机", "99.00", 3).await;
    let used = call(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/admin/mall/categories/{digital}"),
        None,
    )
    .await;
    assert_eq!(
        (used.status, used.error_code().as_str()),
        (StatusCode::CONFLICT, "category_in_use")
    );
    let parent = call(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/admin/mall/categories/{clothes}"),
        None,
    )
    .await;
    assert_eq!(
        (parent.status, parent.error_code().as_str()),
        (StatusCode::CONFLICT, "category_has_children")
    );
    let gone = call(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/admin/mall/categories/{women}"),
        None,
    )
    .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.text());
    assert_eq!(app.count("SELECT count(*) FROM mall_categories").await, 3);
    assert_eq!(
        app.count("SELECT count(*) FROM admin_audit WHERE action LIKE 'mall_category.%'")
            .await,
        6,
        "every change audited"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn merchants_sell_goods_and_anyone_sells_one_second_hand_item() {
    let app = spawn_app().await;
    let admin = sign_in(&app, "admin1", Role::Admin).await;
    let merchant = sign_in(&app, "shop1", Role::Merchant).await;
    let user = sign_in(&app, "student1", Role::User).await;
    let other = sign_in(&app, "student2", Role::User).await;
    let cat = category(&app, &admin, "服装", None).await;

    let dress = product(
        &app,
        &merchant,
        json!({"category_id": cat, "name": "  碎花连衣裙  ", "description": "纯棉，夏季款", "skus": [
            {"specs": {"颜色": "红", "尺码": "M"}, "price": "129.00", "stock": 5},
            {"specs": {"颜色": "蓝", "尺码": "M"}, "price": "119.50", "stock": 0}]}),
    )
    .await;
    assert_eq!(dress["name"], "碎花连衣裙", "trimmed");
    assert_eq!(dress["price"], "119.50", "the lowest SKU price");
    assert_eq!(dress["price_fen"], 11950);
    assert_eq!(dress["stock"], 5);
    assert_eq!(dress["merchant"]["display_name"], "shop1");
    assert_eq!(dress["favorited"], false);
    let skus = dress["skus"].as_array().unwrap();
    assert_eq!(skus.len(), 2);
    assert_eq!(skus[0]["specs"], json!({"颜色": "红", "尺码": "M"}));
    assert_eq!(
        (skus[0]["price"].as_str(), skus[0]["stock"].as_i64()),
        (Some("129.00"), Some(5))
    );
    let id = dress["id"].as_i64().unwrap();
    let fetched = app.get(&format!("/api/mall/products/{id}")).await;
    assert_eq!(fetched.json()["skus"], dress["skus"]);

    // A plain user sells only second-hand: one SKU, stock 1.
    let body = json!({"category_id": cat, "name": "旧自行车", "skus": [{"specs": {}, "price": "80", "stock": 1}]});
    let refused = call(&app, &user, Method::POST, "/api/mall/products", Some(body.clone())).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let mut second = body.clone();
    second["second_hand"] = json!(true);
    let bike = product(&app, &user, second.clone()).await;
    assert_eq!(
        (bike["second_hand"].as_bool(), bike["stock"].as_i64()),
        (Some(true), Some(1))
    );
    second["skus"][0]["stock"] = json!(2);
    let two = call(&app, &user, Method::POST, "/api/mall/products", Some(second)).await;
    assert_eq!(two.error_code(), "invalid_second_hand");

    // Bad input is a 422 naming the rule, and writes nothing.
    let before = app.count("SELECT count(*) FROM mall_products").await;
    for (body, code) in [
        (
            json!({"category_id": 999, "name": "x", "skus": [{"price": "1", "stock": 1}]}),
            "invalid_category",
        ),
        (
            json!({"category_id": cat, "name": "", "skus": [{"price": "1", "stock": 1}]}),
            "invalid_name",
        ),
        (json!({"category_id": cat, "name": "x", "skus": []}), "invalid_skus"),
        (
            json!({"category_id": cat, "name": "x", "skus": [{"price": "0.001", "stock": 1}]}),
            "invalid_price",
        ),
        (
            json!({"category_id": cat, "name": "x", "images": ["nope"], "skus": [{"price": "1", "stock": 1}]}),
            "invalid_image",
        ),
        (
            json!({"category_id": cat, "name": "x", "images": ["ab".repeat(32)], "skus": [{"price": "1", "stock": 1}]}),
            "unknown_image",
        ),
    ] {
        let answer = call(&app, &merchant, Method::POST, "/api/mall/products", Some(body)).await;
        assert_eq!(
            (answer.status, answer.error_code()),
            (StatusCode::UNPROCESSABLE_ENTITY, code.to_string())
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM mall_products").await, before);

    // Someone else's product: 403; its seller edits it, SKUs matched by specs keep their ids.
    let path = format!("/api/mall/products/{id}");
    let theirs = call(&app, &other, Method::PATCH, &path, Some(json!({"name": "mine now"}))).await;
    assert_eq!(theirs.status, StatusCode::FORBIDDEN);
    let red = skus[0]["id"].as_i64().unwrap();
    let edited = call(
        &app,
        &merchant,
        Method::PATCH,
        &path,
        Some(json!({"skus": [
        {"specs": {"颜色": "红", "尺码": "M"}, "price": "99.00", "stock": 7},
        {"specs": {"颜色": "绿", "尺码": "L"}, "price": "109.00", "stock": 2}]})),
    )
    .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.text());
    let edited = edited.json();
    assert_eq!(edited["skus"][0]["id"], red, "same specs, same SKU");
    assert_eq!(edited["skus"][0]["price"], "99.00");
    assert_eq!(edited["skus"].as_array().unwrap().len(), 2, "the blue one is off sale");
    assert_eq!(edited["price"], "99.00");
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM mall_skus WHERE product_id = {id} AND NOT active"
        ))
        .await,
        1
    );

    // Unlisted: gone for others, still there for its seller and admins.
    let hidden = call(&app, &merchant, Method::PATCH, &path, Some(json!({"listed": false}))).await;
    assert_eq!(hidden.status, StatusCode::OK);
    assert_eq!(app.get(&path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        call(&app, &other, Method::GET, &path, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, &merchant, Method::GET, &path, None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, &admin, Method::GET, &path, None).await.status,
        StatusCode::OK
    );
    assert!(!ids(&app.get("/api/mall/products").await).contains(&id));
    let own = call(&app, &merchant, Method::GET, "/api/merchant/products", None)
        .await
        .json();
    assert_eq!(own["total"], 1);
    assert_eq!(own["items"][0]["listed"], false);
    app.shutdown().await;
}

#[tokio::test]
async fn search_finds_chinese_words_of_any_length_and_filters_and_sorts_the_rest() {
    let app = spawn_app().await;
    let admin = sign_in(&app, "admin1", Role::Admin).await;
    let merchant = sign_in(&app, "shop1", Role::Merchant).await;
    let user = sign_in(&app, "student1", Role::User).await;
    let clothes = category(&app, &admin, "服装", None).await;
    let dresses = category(&app, &admin, "裙子", Some(clothes)).await;
    let books = category(&app, &admin, "图书", None).await;
    let dress = simple_product(&app, &merchant, dresses, "红色碎花连衣裙", "129.00", 5).await["id"]
        .as_i64()
        .unwrap();
    let shirt = product(
        &app,
        &merchant,
        json!({"category_id": clothes, "name": "纯棉T恤", "description": "适合夏天穿的 Cotton Tee", "skus": [{"price": "39.90", "stock": 9}]}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let book = simple_product(&app, &merchant, books, "红楼梦", "45.00", 2).await["id"]
        .as_i64()
        .unwrap();
    let used = product(
        &app,
        &user,
        json!({"category_id": books, "name": "二手教材 高等数学", "second_hand": true, "skus": [{"price": "10", "stock": 1}]}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    app.sql(&format!(
        "UPDATE mall_products SET sales = 50 WHERE id = {shirt}; UPDATE mall_products SET sales = 7 WHERE id = {book}"
    ))
    .await;
    app.state.mall.changed_all();

    let search = |q: &str| {
        let path = format!("/api/mall/products?q={}", urlencode(q));
        let app = &app;
        async move { ids(&app.get(&path).await) }
    };
    assert_eq!(search("连衣裙").await, [dress]);
    assert_eq!(search("红").await, [book, dress], "one character, newest first");
    assert_eq!(search("红楼").await, [book], "two characters");
    assert_eq!(search("夏天").await, [shirt], "the description counts");
    assert_eq!(search("cotton").await, [shirt], "case folded");
    assert_eq!(
        search("ＣＯＴＴＯＮ tee").await,
        [shirt],
        "full width folded, every word needed"
    );
    assert_eq!(search("t恤").await, [shirt]);
    assert!(search("红色裙").await.is_empty(), "pairs must be next to each other");
    assert!(search("蓝").await.is_empty());
    assert_eq!(search("数学").await, [used]);

    // Filters: a category includes its descendants; second-hand or not.
    assert_eq!(
        ids(&app.get(&format!("/api/mall/products?category_id={clothes}")).await),
        [shirt, dress]
    );
    assert_eq!(
        ids(&app.get(&format!("/api/mall/products?category_id={dresses}")).await),
        [dress]
    );
    assert_eq!(ids(&app.get("/api/mall/products?second_hand=true").await), [used]);
    assert_eq!(
        ids(&app
            .get(&format!("/api/mall/products?second_hand=false&category_id={books}"))
            .await),
        [book]
    );
    assert!(ids(&app.get("/api/mall/products?category_id=9999").await).is_empty());
    // Sorts.
    assert_eq!(
        ids(&app.get("/api/mall/products?sort=price_asc").await),
        [used, shirt, book, dress]
    );
    assert_eq!(
        ids(&app.get("/api/mall/products?sort=price_desc").await),
        [dress, book, shirt, used]
    );
    assert_eq!(ids(&app.get("/api/mall/products?sort=sales").await)[..2], [shirt, book]);
    // Paging.
    let page = app.get("/api/mall/products?size=3&page=2").await.json();
    assert_eq!(
        (
            page["total"].as_i64(),
            page["page"].as_i64(),
            page["items"].as_array().unwrap().len()
        ),
        (Some(4), Some(2), 1)
    );
    assert_eq!(page["items"][0]["id"], dress);
    for (bad, code) in [
        ("sort=cheapest", "invalid_sort"),
        ("second_hand=1", "invalid_second_hand"),
        ("size=0", "invalid_size"),
        ("category_id=x", "invalid_category"),
    ] {
        let answer = app.get(&format!("/api/mall/products?{bad}")).await;
        assert_eq!(
            (answer.status, answer.error_code()),
            (StatusCode::UNPROCESSABLE_ENTITY, code.to_string()),
            "{bad}"
        );
    }
    let long = app
        .get(&format!("/api/mall/products?q={}", urlencode(&"字".repeat(51))))
        .await;
    assert_eq!(long.error_code(), "invalid_q");
    app.shutdown().await;
}

fn urlencode(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

#[tokio::test]
async fn a_search_of_one_or_two_characters_uses_the_gin_index() {
    let app = spawn_app().await;
    let admin = sign_in(&app, "admin1", Role::Admin).await;
    let merchant = sign_in(&app, "shop1", Role::Merchant).await;
    let cat = category(&app, &admin, "杂货", None).await;
    simple_product(&app, &merchant, cat, "搪瓷杯", "19.00", 5).await;
    // 20 000 more products with generated Chinese names.
    app.sql(&format!(
        "INSERT INTO mall_products (merchant_id, category_id, name, min_price_fen, search_text)
         SELECT u.id, {cat}, n, 100, n
           FROM (SELECT id FROM users WHERE username = 'shop1') u,
                (SELECT string_agg(chr(19968 + ((g * 7919 + k * 104729) % 20000)), '') AS n
                   FROM generate_series(1, 20000) g, generate_series(1, 6) k GROUP BY g) names;
         ANALYZE mall_products;"
    ))
    .await;
    for q in [
        "%E6%90%AA",
        "%E6%90%AA%E7%93%B7",
        "%E6%90%AA%E7%93%B7%E6%9D%AF&sort=sales",
        "%E6%90%AA&second_hand=false",
    ] {
        let plan = zhifu::mall::explain_list(&app.state.store, &format!("q={q}"))
            .await
            .unwrap();
        assert!(
            plan.contains("mall_products_grams_idx"),
            "q={q} is not served by the index:\n{plan}"
        );
    }
    assert_eq!(ids(&app.get("/api/mall/products?q=%E6%90%AA%E7%93%B7").await).len(), 1);
    app.shutdown().await;
}

#[tokio::test]
async fn lists_and_details_are_cached_yet_fresh_on_every_instance_within_a_second() {
    let a = spawn_app().await;
    let b = spawn_app_on(a.db.clone(), |_| {}).await;
    let admin = sign_in(&a, "admin1", Role::Admin).await;
    let merchant = sign_in(&a, "shop1", Role::Merchant).await;
    let cat = category(&a, &admin, "文具", None).await;
    let pen = simple_product(&a, &merchant, cat, "钢笔", "30.00", 10).await;
    let id = pen["id"].as_i64().unwrap();
    let detail = format!("/api/mall/products/{id}");
    // B serves both from memory now — once the events of A's writes have reached it (a late
    // one drops what B cached before it, and the next read loads again).
    assert_eq!(b.get(&detail).await.json()["stock"], 10);
    assert_eq!(b.get("/api/mall/products").await.json()["items"][0]["price"], "30.00");
    let settled = eventually(Duration::from_secs(2), || async {
        let before = b.state.store.checkouts();
        b.get(&detail).await;
        b.get("/api/mall/products").await;
        b.state.store.checkouts() == before
    })
    .await;
    assert!(settled, "B's reads never came from memory");
    let checkouts = b.state.store.checkouts();
    for _ in 0..20 {
        b.get(&detail).await;
        b.get("/api/mall/products").await;
    }
    assert_eq!(
        b.state.store.checkouts(),
        checkouts,
        "cached reads touch no database connection"
    );

    // A change on A shows on B within a second.
    let changed = call(
        &a,
        &merchant,
        Method::PATCH,
        &detail,
        Some(json!({"skus": [{"specs": {}, "price": "28.00", "stock": 3}]})),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text());
    let fresh = eventually(Duration::from_secs(1), || async {
        let d = b.get(&detail).await.json();
        let l = b.get("/api/mall/products").await.json();
        d["stock"] == 3 && d["price"] == "28.00" && l["items"][0]["stock"] == 3
    })
    .await;
    assert!(fresh, "B still shows the old stock or price");
    // A new product, too.
    simple_product(&a, &merchant, cat, "墨水", "8.00", 50).await;
    assert!(
        eventually(Duration::from_secs(1), || async {
            b.get("/api/mall/products").await.json()["total"] == 2
        })
        .await
    );
    // And the tree.
    category(&a, &admin, "画材", None).await;
    assert!(
        eventually(Duration::from_secs(1), || async {
            b.get("/api/mall/categories").await.json()["items"]
                .as_array()
                .unwrap()
                .len()
                == 2
        })
        .await
    );
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test]
async fn favorites_are_idempotent_and_show_on_the_detail_of_whoever_favorited() {
    let app = spawn_app().await;
    let admin = sign_in(&app, "admin1", Role::Admin).await;
    let merchant = sign_in(&app, "shop1", Role::Merchant).await;
    let user = sign_in(&app, "student1", Role::User).await;
    let cat = category(&app, &admin, "文具", None).await;
    let id = simple_product(&app, &merchant, cat, "钢笔", "30.00", 10).await["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/mall/favorites/{id}");
    for _ in 0..2 {
        let put = call(&app, &user, Method::PUT, &path, None).await;
        assert_eq!(put.json(), json!({"product_id": id, "favorited": true}));
    }
    assert_eq!(app.count("SELECT count(*) FROM mall_favorites").await, 1);
    let detail = format!("/api/mall/products/{id}");
    assert_eq!(
        call(&app, &user, Method::GET, &detail, None).await.json()["favorited"],
        true
    );
    assert_eq!(
        call(&app, &merchant, Method::GET, &detail, None).await.json()["favorited"],
        false
    );
    assert_eq!(app.get(&detail).await.json()["favorited"], false);
    let list = call(&app, &user, Method::GET, "/api/mall/favorites", None).await.json();
    assert_eq!(
        (list["total"].as_i64(), list["items"][0]["id"].as_i64()),
        (Some(1), Some(id))
    );
    for _ in 0..2 {
        let delete = call(&app, &user, Method::DELETE, &path, None).await;
        assert_eq!(delete.json()["favorited"], false);
    }
    assert_eq!(app.count("SELECT count(*) FROM mall_favorites").await, 0);
    assert_eq!(
        call(&app, &user, Method::PUT, "/api/mall/favorites/999", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.request(Method::PUT, &path, &[], bytes::Bytes::new()).await.status,
        StatusCode::UNAUTHORIZED
    );
    app.shutdown().await;
}

#[tokio::test]
async fn the_cart_groups_lines_by_seller_at_current_prices() {
    let app = spawn_app().await;
    let admin = sign_in(&app, "admin1", Role::Admin).await;
    let shop1 = sign_in(&app, "shop1", Role::Merchant).await;
    let shop2 = sign_in(&app, "shop2", Role::Merchant).await;
    let user = sign_in(&app, "student1", Role::User).await;
    let cat = category(&app, &admin, "文具", None).await;
    let pen = simple_product(&app, &shop1, cat, "钢笔", "30.00", 10).await;
    let ink = simple_product(&app, &shop1, cat, "墨水", "8.00", 1).await;
    let pad = simple_product(&app, &shop2, cat, "本子", "5.50", 100).await;
    let sku = |p: &Value| p["skus"][0]["id"].as_i64().unwrap();
    let put = |sku: i64, quantity: i64| {
        let (app, user) = (&app, &user);
        async move {
            call(
                app,
                user,
                Method::PUT,
                &format!("/api/mall/cart/items/{sku}"),
                Some(json!({"quantity": quantity})),
            )
            .await
        }
    };
    assert_eq!(put(sku(&pen), 2).await.status, StatusCode::OK);
    assert_eq!(put(sku(&pad), 4).await.status, StatusCode::OK);
    let cart = put(sku(&ink), 3).await.json();
    assert_eq!(cart["groups"].as_array().unwrap().len(), 2);
    assert_eq!(
        cart["groups"][0]["merchant"]["display_name"], "shop1",
        "the seller added to last first"
    );
    let ink_line = cart["groups"][0]["items"][0].clone();
    assert_eq!(
        (ink_line["available"].as_bool(), ink_line["stock"].as_i64()),
        (Some(false), Some(1)),
        "3 asked, 1 in stock"
    );
    assert_eq!(cart["groups"][0]["total"], "60.00", "unavailable lines are not counted");
    assert_eq!(cart["groups"][1]["total"], "22.00");
    assert_eq!(
        (cart["count"].as_i64(), cart["total"].as_str()),
        (Some(9), Some("82.00"))
    );

    // The seller changes a price: the cart shows the new one.
    let changed = call(
        &app,
        &shop1,
        Method::PATCH,
        &format!("/api/mall/products/{}", pen["id"]),
        Some(json!({"skus": [{"specs": {}, "price": "25.00", "stock": 10}]})),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK);
    let cart = call(&app, &user, Method::GET, "/api/mall/cart", None).await.json();
    assert_eq!(cart["groups"][0]["items"][1]["price"], "25.00");
    assert_eq!(cart["groups"][0]["total"], "50.00");

    // Set, remove, refuse.
    assert_eq!(put(sku(&pad), 0).await.json()["groups"].as_array().unwrap().len(), 1);
    assert_eq!(put(9999, 1).await.status, StatusCode::NOT_FOUND);
    assert_eq!(put(sku(&pen), 1000).await.error_code(), "invalid_quantity");
    let own = call(
        &app,
        &shop1,
        Method::PUT,
        &format!("/api/mall/cart/items/{}", sku(&pen)),
        Some(json!({"quantity": 1})),
    )
    .await;
    assert_eq!(own.error_code(), "own_product");
    assert_eq!(app.get("/api/mall/cart").await.status, StatusCode::UNAUTHORIZED);
    app.shutdown().await;
}
