//! The admin pages, signed in with the session cookie: each renders the data it is about,
//! escapes what donors and providers wrote, and runs no inline script.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;
use zhifu::account::Role;

use crate::admin::{call, sign_in};
use crate::helpers::{TestApp, eventually, spawn_app};

async fn page(app: &TestApp, cookie: &str, path: &str) -> String {
    let answer = app
        .request(Method::GET, path, &[("cookie", cookie)], Bytes::new())
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.text());
    assert_eq!(
        answer.header("content-type"),
        Some("text/html; charset=utf-8"),
        "{path}"
    );
    assert!(answer.header("content-security-policy").is_some(), "{path}: no CSP");
    let html = answer.text();
    assert!(!html.contains("<script>"), "{path}: inline script");
    assert!(
        html.contains("/static/admin.js?v="),
        "{path}: the form script is not linked"
    );
    html
}

#[tokio::test]
async fn every_admin_page_renders_its_data_for_a_signed_in_admin() {
    let app = spawn_app().await;
    let admin = sign_in(&app, "admin1", Role::Admin).await;
    let cookie = format!("zhifu_session={admin}");
    let created = call(
        &app,
        &admin,
        Method::POST,
        "/api/admin/categories",
        Some(json!({"name": "<b>助学</b>"})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    call(
        &app,
        &admin,
        Method::PATCH,
        "/api/admin/settings",
        Some(json!({"min_amount": "0.50"})),
    )
    .await;
    let order = app
        .post_json(
            "/api/donations",
            json!({"amount": "12.00", "channel": "wechat", "category_id": 1, "donor_name": "<i>赵六</i>"}),
        )
        .await
        .json();
    let no = order["order_no"].as_str().unwrap().to_string();
    app.sandbox_pay(&no).await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            app.get(&format!("/api/payments/{no}")).await.json()["status"] == "paid"
        })
        .await
    );
    let pending = app.donate("3.00", "alipay").await["order_no"]
        .as_str()
        .unwrap()
        .to_string();
    app.sql(&format!(
        "UPDATE payments SET created_at = now() - interval '1 hour' WHERE order_no = '{pending}'"
    ))
    .await;

    let dashboard = page(&app, &cookie, "/admin").await;
    assert!(dashboard.contains("id=\"stat-pending\">1<"), "{dashboard}");

    let categories = page(&app, &cookie, "/admin/categories").await;
    assert!(categories.contains("&#60;b&#62;助学&#60;/b&#62;"), "{categories}");
    assert!(!categories.contains("<b>助学"), "unescaped category name");
    assert!(categories.contains("data-api=\"/api/admin/categories/1\""));

    let settings = page(&app, &cookie, "/admin/settings").await;
    assert!(settings.contains("id=\"effective-min\">0.50<"), "{settings}");

    let payments = page(&app, &cookie, "/admin/payments?status=paid").await;
    assert!(
        payments.contains(&format!("href=\"/admin/payments/{no}\"")),
        "{payments}"
    );
    assert!(!payments.contains(&pending), "the filter was not applied");
    assert!(payments.contains("&#60;i&#62;赵六&#60;/i&#62;"));
    assert!(
        payments.contains("href=\"/api/admin/payments.csv?status=paid\""),
        "{payments}"
    );
    let bad = app
        .request(
            Method::GET,
            "/admin/payments?status=lost",
            &[("cookie", &cookie)],
            Bytes::new(),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    let detail = page(&app, &cookie, &format!("/admin/payments/{no}")).await;
    assert!(detail.contains("data-status=\"paid\""), "{detail}");
    assert!(detail.contains("id=\"refundable\">12.00<"), "{detail}");
    assert!(detail.contains(&format!("data-api=\"/api/admin/payments/{no}/refund\"")));
    let missing = app
        .request(
            Method::GET,
            "/admin/payments/NO_SUCH_ORDER",
            &[("cookie", &cookie)],
            Bytes::new(),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    app.sql(
        "INSERT INTO callback_inbox (channel, kind, subject_id, accepted, outcome, body)
         VALUES ('alipay', 'other', 'forged-1', false, 'refused', convert_to('<script>alert(1)</script>', 'UTF8'))",
    )
    .await;
    let callbacks = page(&app, &cookie, "/admin/callbacks").await;
    assert!(callbacks.contains(&format!(">{no}</a>")), "{callbacks}");
    assert!(
        callbacks.contains("<pre class=\"raw\">&#60;script&#62;alert(1)&#60;/script&#62;</pre>"),
        "{callbacks}"
    );
    let refused = page(&app, &cookie, "/admin/callbacks?accepted=false").await;
    assert!(refused.contains("alert(1)"), "{refused}");
    assert!(
        !refused.contains(&format!(">{no}</a>")),
        "the accepted filter was not applied"
    );

    let reconcile = page(&app, &cookie, "/admin/reconcile?pending_minutes=30").await;
    assert!(reconcile.contains(&pending), "{reconcile}");

    let audit = page(&app, &cookie, "/admin/audit").await;
    assert!(
        audit.contains("category.create") && audit.contains("settings.update"),
        "{audit}"
    );
    assert!(audit.contains("admin1"));

    let unknown = app
        .request(Method::GET, "/admin/nothing", &[("cookie", &cookie)], Bytes::new())
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let script = app.get("/static/admin.js").await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(script.text().contains("data-api") || script.text().contains("dataset.api"));
    app.shutdown().await;
}
