//! The mall's pages over HTTP: each renders for whom it is meant (and sends a browser without
//! a session to sign in), shows the data people wrote as text, and reads what the API reads.
//! `mall_in_use` makes the shop the browser tests and screenshots look at.

use std::io::Cursor;

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use zhifu::account::Role;

use crate::admin::{call, sign_in};
use crate::helpers::{Answer, TestApp, spawn_app};
use crate::mall::{category, product};
use crate::mall_coupons::{claim, coupon};

/// Uploads a `width` × `height` picture in `rgb` shades as `token`; returns its image id.
pub async fn picture(app: &TestApp, token: &str, rgb: [u8; 3]) -> String {
    let image = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(480, 480, |x, y| {
        let shade = ((x + y) / 8) as u8;
        image::Rgb([rgb[0].saturating_sub(shade), rgb[1].saturating_sub(shade / 2), rgb[2]])
    }));
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    let bearer = format!("Bearer {token}");
    let answer = app
        .request(
            Method::POST,
            "/api/images",
            &[("authorization", &bearer), ("content-type", "image/jpeg")],
            Bytes::from(out.into_inner()),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    answer.json()["id"].as_str().unwrap().to_string()
}

/// A shop in use: categories, a merchant with a dress in two colours and sizes and a mug, a
/// student selling a bicycle, a buyer with an address, a claimed coupon and a cart.
pub struct MallSite {
    pub admin: String,
    pub merchant: String,
    pub buyer: String,
    pub seller: String,
    pub dress: Value,
    pub mug: Value,
    pub bike: Value,
    pub copy_id: i64,
    pub address_id: i64,
}

pub async fn mall_in_use(app: &TestApp, ascii: bool) -> MallSite {
    let text = |zh: &'static str, en: &'static str| if ascii { en } else { zh };
    let admin = sign_in(app, "admin1", Role::Admin).await;
    let merchant = sign_in(app, "shop1", Role::Merchant).await;
    let buyer = sign_in(app, "buyer1", Role::User).await;
    let seller = sign_in(app, "student1", Role::User).await;
    let clothes = category(app, &admin, text("服装", "Clothes"), None).await;
    let dresses = category(app, &admin, text("连衣裙", "Dresses"), Some(clothes)).await;
    let home = category(app, &admin, text("家居", "Home"), None).await;
    let bikes = category(app, &admin, text("二手交易", "Used goods"), None).await;
    let red = picture(app, &merchant, [220, 60, 60]).await;
    let blue = picture(app, &merchant, [60, 90, 220]).await;
    let dress = product(
        app,
        &merchant,
        json!({"category_id": dresses, "name": text("碎花连衣裙 夏季新款", "Floral summer dress"),
               "description": text("纯棉面料，透气舒适。\n机洗冷水。", "Cotton, breathes well.\nMachine wash cold."),
               "images": [red, blue],
               "skus": [
                   {"specs": {text("颜色", "color"): text("红", "red"), text("尺码", "size"): "M"}, "price": "129.00", "stock": 5},
                   {"specs": {text("颜色", "color"): text("红", "red"), text("尺码", "size"): "L"}, "price": "129.00", "stock": 0},
                   {"specs": {text("颜色", "color"): text("蓝", "blue"), text("尺码", "size"): "M"}, "price": "119.00", "stock": 8}]}),
    )
    .await;
    let mug_picture = picture(app, &merchant, [240, 200, 90]).await;
    let mug = product(
        app,
        &merchant,
        json!({"category_id": home, "name": text("搪瓷杯 <b>复古</b>", "Enamel mug <b>retro</b>"), "images": [mug_picture],
               "skus": [{"price": "19.90", "stock": 30}]}),
    )
    .await;
    let bike = product(
        app,
        &seller,
        json!({"category_id": bikes, "name": text("九成新自行车", "Used bicycle, like new"), "second_hand": true,
               "skus": [{"price": "180.00", "stock": 1}]}),
    )
    .await;
    let coupon_id = coupon(app, &admin, json!({"name": text("满100减10", "10 off 100")})).await["id"]
        .as_i64()
        .unwrap();
    coupon(app, &admin, json!({"name": text("九折", "10 percent off"), "kind": "percent_off", "value": null, "percent": 10, "threshold": "0"})).await;
    let copy_id = claim(app, &buyer, coupon_id).await.json()["id"].as_i64().unwrap();
    let address = call(
        app,
        &buyer,
        Method::POST,
        "/api/me/addresses",
        Some(json!({"name": text("张三", "Zhang San"), "phone": "13800138000", "region": text("上海市 浦东新区", "Shanghai"),
                    "detail": text("世纪大道 100 号", "100 Century Avenue")})),
    )
    .await;
    assert_eq!(address.status, StatusCode::CREATED, "{}", address.text());
    let address_id = address.json()["id"].as_i64().unwrap();
    let sku = dress["skus"][0]["id"].as_i64().unwrap();
    let put = call(
        app,
        &buyer,
        Method::PUT,
        &format!("/api/mall/cart/items/{sku}"),
        Some(json!({"quantity": 1})),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK);
    let sku = mug["skus"][0]["id"].as_i64().unwrap();
    call(
        app,
        &buyer,
        Method::PUT,
        &format!("/api/mall/cart/items/{sku}"),
        Some(json!({"quantity": 2})),
    )
    .await;
    call(
        app,
        &buyer,
        Method::PUT,
        &format!("/api/mall/favorites/{}", dress["id"]),
        None,
    )
    .await;
    MallSite {
        admin,
        merchant,
        buyer,
        seller,
        dress,
        mug,
        bike,
        copy_id,
        address_id,
    }
}

/// A page as a browser asks for it, with `token`'s session cookie.
pub async fn page(app: &TestApp, path: &str, token: Option<&str>) -> Answer {
    let cookie = token.map(|t| format!("zhifu_session={t}")).unwrap_or_default();
    let mut headers = vec![("accept", "text/html")];
    if token.is_some() {
        headers.push(("cookie", cookie.as_str()));
    }
    app.request(Method::GET, path, &headers, Bytes::new()).await
}

#[tokio::test]
async fn every_mall_page_renders_for_whom_it_is_meant() {
    let app = spawn_app().await;
    let site = mall_in_use(&app, false).await;
    let dress = site.dress["id"].as_i64().unwrap();
    let dress_sku = site.dress["skus"][0]["id"].as_i64().unwrap();
    let merchant_id = site.dress["merchant"]["id"].as_i64().unwrap();
    let checkout_link = format!("/mall/checkout?merchant={merchant_id}");
    let pages: Vec<(String, Option<&str>, Vec<&str>)> = vec![
        (
            "/mall".into(),
            None,
            vec![
                "id=\"products\"",
                "碎花连衣裙",
                "九成新自行车",
                "data-section=\"mall\" aria-current=\"page\"",
            ],
        ),
        (
            "/mall?q=%E8%BF%9E%E8%A1%A3%E8%A3%99".into(),
            None,
            vec!["碎花连衣裙", "共 1 条"],
        ),
        (
            "/mall?q=%E4%B8%8D%E5%AD%98%E5%9C%A8".into(),
            None,
            vec!["id=\"no-products\""],
        ),
        ("/mall?second_hand=true".into(), None, vec!["九成新自行车"]),
        (
            format!("/mall/products/{dress}"),
            None,
            vec!["id=\"sku-form\"", "data-skus=", "颜色", "纯棉面料", "¥119.00 – 129.00"],
        ),
        (
            format!("/mall/products/{dress}"),
            Some(&site.buyer),
            vec!["data-favorited=\"true\"", "data-signed-in=\"true\""],
        ),
        (
            format!("/mall/products/{dress}"),
            Some(&site.merchant),
            vec!["id=\"edit-product\""],
        ),
        (
            "/mall/cart".into(),
            Some(&site.buyer),
            vec!["id=\"cart\"", "碎花连衣裙", &checkout_link],
        ),
        (
            format!("/mall/checkout?merchant={merchant_id}"),
            Some(&site.buyer),
            vec!["id=\"checkout-form\"", "张三", "满100减10", "¥168.80"],
        ),
        (
            format!("/mall/checkout?sku={dress_sku}&quantity=2"),
            Some(&site.buyer),
            vec!["¥258.00", "data-items=\"[{&#34;"],
        ),
        (
            "/mall/checkout".into(),
            Some(&site.buyer),
            vec!["id=\"nothing-to-checkout\""],
        ),
        (
            "/mall/orders".into(),
            Some(&site.buyer),
            vec!["id=\"no-orders\"", "id=\"status-chips\""],
        ),
        (
            "/mall/coupons".into(),
            Some(&site.buyer),
            vec!["id=\"offers\"", "id=\"my-coupons\"", "减 ¥10.00", "满 ¥100.00 可用"],
        ),
        ("/mall/coupons".into(), None, vec!["id=\"offers\"", "/login?next="]),
        ("/mall/favorites".into(), Some(&site.buyer), vec!["碎花连衣裙"]),
        (
            "/merchant".into(),
            Some(&site.merchant),
            vec!["id=\"own-products\"", "id=\"new-product\"", "id=\"nothing-to-ship\""],
        ),
        (
            "/merchant".into(),
            Some(&site.seller),
            vec!["九成新自行车", "id=\"sell-second-hand\""],
        ),
        (
            "/merchant/products/new".into(),
            Some(&site.merchant),
            vec!["id=\"product-form\"", "data-method=\"POST\""],
        ),
        (
            format!("/merchant/products/{dress}"),
            Some(&site.merchant),
            vec!["data-method=\"PATCH\"", "value=\"129.00\""],
        ),
        (
            "/admin/mall".into(),
            Some(&site.admin),
            vec![
                "id=\"chart-sales-per-day\"",
                "id=\"chart-orders-by-status\"",
                "aria-current=\"page\">商城概览",
            ],
        ),
        (
            "/admin/mall/categories".into(),
            Some(&site.admin),
            vec!["id=\"mall-categories\"", "连衣裙"],
        ),
        (
            "/admin/mall/coupons".into(),
            Some(&site.admin),
            vec!["id=\"admin-coupons\"", "满100减10", "id=\"new-coupon\""],
        ),
    ];
    for (path, token, expected) in &pages {
        let answer = page(&app, path, *token).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.text());
        let html = answer.text();
        for want in expected {
            assert!(html.contains(want), "{path} lacks {want:?}");
        }
        assert!(!html.contains("<b>复古</b>"), "{path}: a product name became markup");
    }
    let mug = page(&app, &format!("/mall/products/{}", site.mug["id"]), None)
        .await
        .text();
    assert!(
        mug.contains("搪瓷杯 &lt;b&gt;复古&lt;/b&gt;") || mug.contains("搪瓷杯 &#60;b&#62;"),
        "escaped as text"
    );

    // Without a session: to sign in, and back.
    for path in [
        "/mall/cart",
        "/mall/checkout?merchant=1",
        "/mall/orders",
        "/mall/favorites",
        "/merchant",
        "/admin/mall",
    ] {
        let answer = page(&app, path, None).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{path}");
        assert!(
            answer.header("location").unwrap().starts_with("/login?next=%2F"),
            "{path}"
        );
    }
    // Not an admin; someone else's product form; an unknown product.
    assert_eq!(
        page(&app, "/admin/mall", Some(&site.buyer)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        page(&app, &format!("/merchant/products/{dress}"), Some(&site.seller))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        page(&app, "/mall/products/999999", None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        page(&app, "/mall?sort=cheap", None).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let _ = (site.copy_id, site.address_id, &site.bike);
    app.shutdown().await;
}
