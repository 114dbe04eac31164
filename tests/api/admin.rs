//! The admin API: categories, payment settings (live on every instance), payment search,
//! CSV export and refunds, the callback inbox, the reconcile report, accounts and the audit
//! log. Shared sign-in helpers for the other admin test modules live here too.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use zhifu::account::Role;
use zhifu::account::users::create_password_user;

use crate::helpers::{Answer, TestApp, eventually, spawn_app, spawn_app_on, spawn_app_with};

pub const PASSWORD: &str = "a long password for tests";

/// Creates `username` with `role` and signs in over HTTP; returns the session token.
pub async fn sign_in(app: &TestApp, username: &str, role: Role) -> String {
    create_password_user(&app.state.store, username, PASSWORD, role, "test")
        .await
        .expect("account created");
    login(app, username).await
}

/// Signs an existing account in over HTTP; returns the session token.
pub async fn login(app: &TestApp, username: &str) -> String {
    let answer = app
        .post_json("/api/auth/login", json!({"username": username, "password": PASSWORD}))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    answer.json()["token"].as_str().expect("token").to_string()
}

/// `method path` with the bearer `token` and, when given, a JSON body.
pub async fn call(app: &TestApp, token: &str, method: Method, path: &str, body: Option<Value>) -> Answer {
    let bearer = format!("Bearer {token}");
    let mut headers = vec![("authorization", bearer.as_str())];
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    app.request(method, path, &headers, body).await
}

async fn get(app: &TestApp, token: &str, path: &str) -> Answer {
    call(app, token, Method::GET, path, None).await
}

/// The audit rows of `action`, oldest first, as (actor, target, before, after).
async fn audit_rows(app: &TestApp, action: &str) -> Vec<(String, String, Value, Value)> {
    let (client, conn) = app.db.connect(tokio_postgres::NoTls).await.unwrap();
    let conn = tokio::spawn(conn);
    let rows = client
        .query(
            "SELECT actor, target, COALESCE(before, 'null'), COALESCE(after, 'null') FROM admin_audit
              WHERE action = $1 ORDER BY id",
            &[&action],
        )
        .await
        .unwrap();
    drop(client);
    let _ = conn.await;
    rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect()
}

async fn public_category_names(app: &TestApp) -> Vec<String> {
    app.get("/api/categories").await.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn categories_are_created_renamed_reordered_disabled_and_deleted_only_when_unused() {
    let app = spawn_app().await;
    let admin = sign_in(&app, "admin1", Role::Admin).await;

    // Create: shown to donors at once, placed last.
    let created = call(
        &app,
        &admin,
        Method::POST,
        "/api/admin/categories",
        Some(json!({"name": " 助学 ", "description": "读书"})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let id = created.json()["id"].as_i64().unwrap();
    assert_eq!(created.json()["name"], "助学");
    assert_eq!(public_category_names(&app).await, ["通用捐赠", "助学"]);

    // Refused: a duplicate (any case), an empty name, a long description, a stray field.
    let duplicate = call(
        &app,
        &admin,
        Method::POST,
        "/api/admin/categories",
        Some(json!({"name": "助学"})),
    )
    .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    assert_eq!(duplicate.error_code(), "category_name_taken");
    let empty = call(
        &app,
        &admin,
        Method::POST,
        "/api/admin/categories",
        Some(json!({"name": "  "})),
    )
    .await;
    assert_eq!(
        (empty.status, empty.error_code().as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_name")
    );
    let long = call(
        &app,
        &admin,
        Method::POST,
        "/api/admin/categories",
        Some(json!({"name": "x", "description": "d".repeat(1001)})),
    )
    .await;
    assert_eq!(long.error_code(), "invalid_description");
    let stray = call(
        &app,
        &admin,
        Method::POST,
        "/api/admin/categories",
        Some(json!({"name": "y", "colour": "red"})),
    )
    .await;
    assert_eq!(stray.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.count("SELECT count(*) FROM categories").await,
        2,
        "refused changes wrote nothing"
    );

    // Rename and disable: donors no longer see it; operators still do.
    let path = format!("/api/admin/categories/{id}");
    let renamed = call(
        &app,
        &admin,
        Method::PATCH,
        &path,
        Some(json!({"name": "助学金", "enabled": false})),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text());
    assert_eq!(renamed.json()["enabled"], false);
    assert_eq!(public_category_names(&app).await, ["通用捐赠"]);
    let listed = get(&app, &admin, "/api/admin/categories").await.json();
    assert_eq!(listed["items"][1]["name"], "助学金");
    assert_eq!(listed["items"][1]["enabled"], false);
    let clash = call(&app, &admin, Method::PATCH, &path, Some(json!({"name": "通用捐赠"}))).await;
    assert_eq!(clash.status, StatusCode::CONFLICT);

    // Reorder (every id exactly once), then enable: the new one comes first.
    let partial = call(
        &app,
        &admin,
        Method::POST,
        "/api/admin/categories/reorder",
        Some(json!({"ids": [id]})),
    )
    .await;
    assert_eq!(partial.error_code(), "invalid_ids");
    let twice = call(
        &app,
        &admin,
        Method::POST,
        "/api/admin/categories/reorder",
        Some(json!({"ids": [id, 1, id]})),
    )
    .await;
    assert_eq!(twice.error_code(), "invalid_ids");
    let reordered = call(
        &app,
        &admin,
        Method::POST,
        "/api/admin/categories/reorder",
        Some(json!({"ids": [id, 1]})),
    )
    .await;
    assert_eq!(reordered.status, StatusCode::OK, "{}", reordered.text());
    call(&app, &admin, Method::PATCH, &path, Some(json!({"enabled": true}))).await;
    assert_eq!(public_category_names(&app).await, ["助学金", "通用捐赠"]);

    let same = call(&app, &admin, Method::PATCH, &path, Some(json!({"name": "助学金"}))).await;
    assert_eq!(
        same.status,
        StatusCode::OK,
        "a change to the same value is fine (and not audited)"
    );

    // Delete: never one a donation refers to; an unused one goes.
    app.donate("1.00", "wechat").await;
    let used = call(&app, &admin, Method::DELETE, "/api/admin/categories/1", None).await;
    assert_eq!(used.status, StatusCode::CONFLICT, "{}", used.text());
    assert_eq!(
        get(&app, &admin, "/api/admin/categories").await.json()["items"][1]["referenced"],
        true
    );
    let deleted = call(&app, &admin, Method::DELETE, &path, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(public_category_names(&app).await, ["通用捐赠"]);
    assert_eq!(
        call(&app, &admin, Method::DELETE, &path, None).await.status,
        StatusCode::NOT_FOUND
    );

    // Unknown path and wrong method.
    assert_eq!(
        get(&app, &admin, "/api/admin/nothing").await.status,
        StatusCode::NOT_FOUND
    );
    let put = call(&app, &admin, Method::PUT, "/api/admin/categories", Some(json!({}))).await;
    assert_eq!(put.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(put.header("allow"), Some("GET, HEAD, POST"));

    // Every change audited with who, before and after.
    let creates = audit_rows(&app, "category.create").await;
    assert_eq!(creates.len(), 1);
    assert_eq!(creates[0].0, "admin1");
    assert_eq!(creates[0].1, format!("category:{id}"));
    assert_eq!(creates[0].2, Value::Null);
    assert_eq!(creates[0].3["name"], "助学");
    let updates = audit_rows(&app, "category.update").await;
    assert_eq!(updates.len(), 2);
    assert_eq!(updates[0].2["name"], "助学");
    assert_eq!(updates[0].3["name"], "助学金");
    assert_eq!(audit_rows(&app, "category.reorder").await[0].3["ids"], json!([id, 1]));
    let deletes = audit_rows(&app, "category.delete").await;
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0].2["name"], "助学金");
    app.shutdown().await;
}

#[tokio::test]
async fn payment_settings_are_validated_audited_and_applied_before_the_answer() {
    let app = spawn_app_with(|s| s.payments.alipay.enabled = false).await;
    let admin = sign_in(&app, "admin1", Role::Admin).await;

    let shown = get(&app, &admin, "/api/admin/settings").await.json();
    assert_eq!(shown["configured"]["wechat_enabled"], true);
    assert_eq!(shown["configured"]["alipay_enabled"], false);
    assert_eq!(shown["overrides"]["min_amount"], Value::Null);
    assert_eq!(shown["effective"]["min_amount"], "0.01");

    for (change, code) in [
        (json!({"alipay_enabled": true}), "channel_not_configured"),
        (
            json!({"min_amount": "100.00", "max_amount": "50.00"}),
            "invalid_amount_range",
        ),
        (json!({"order_ttl_secs": 10}), "invalid_order_ttl"),
        (json!({"late_payment": "lose"}), "invalid_late_payment"),
        (json!({"min_amount": "-1"}), "invalid_amount"),
    ] {
        let answer = call(&app, &admin, Method::PATCH, "/api/admin/settings", Some(change.clone())).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{change}");
        assert_eq!(answer.error_code(), code, "{change}");
    }
    assert!(
        audit_rows(&app, "settings.update").await.is_empty(),
        "refused changes are not written"
    );

    // A minimum of 5.00: a 1.00 donation is refused at once, on this instance.
    let raised = call(
        &app,
        &admin,
        Method::PATCH,
        "/api/admin/settings",
        Some(json!({"min_amount": "5.00", "late_payment": "refund"})),
    )
    .await;
    assert_eq!(raised.status, StatusCode::OK, "{}", raised.text());
    assert_eq!(raised.json()["effective"]["min_amount_fen"], 500);
    assert_eq!(raised.json()["effective"]["late_payment"], "refund");
    let small = app
        .post_json(
            "/api/donations",
            json!({"amount": "1.00", "channel": "wechat", "category_id": 1}),
        )
        .await;
    assert_eq!(small.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", small.text());

    // null clears the override; absent keys stay.
    let cleared = call(
        &app,
        &admin,
        Method::PATCH,
        "/api/admin/settings",
        Some(json!({"min_amount": null})),
    )
    .await;
    assert_eq!(cleared.json()["overrides"]["min_amount"], Value::Null);
    assert_eq!(cleared.json()["overrides"]["late_payment"], "refund");
    app.donate("1.00", "wechat").await;

    let rows = audit_rows(&app, "settings.update").await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].2["min_amount"], Value::Null);
    assert_eq!(rows[0].3["min_amount"], "5.00");
    assert_eq!(rows[1].2["min_amount"], "5.00");
    assert_eq!(rows[1].3["min_amount"], Value::Null);
    app.shutdown().await;
}

#[tokio::test]
async fn switching_a_channel_off_on_one_instance_refuses_it_on_another_within_a_second() {
    let a = spawn_app().await;
    let b = spawn_app_on(a.db.clone(), |_| {}).await;
    let admin = sign_in(&a, "admin1", Role::Admin).await;
    // B has the home page cached with both channels.
    assert!(b.get("/").await.text().contains("value=\"wechat\""));

    let off = call(
        &a,
        &admin,
        Method::PATCH,
        "/api/admin/settings",
        Some(json!({"wechat_enabled": false})),
    )
    .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.text());
    assert_eq!(off.json()["effective"]["wechat_enabled"], false);
    // At once on A, within a second on B.
    let on_a = create_donation(&a, "wechat").await;
    assert_eq!(on_a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(on_a.error_code(), "channel_disabled");
    let refused_on_b = eventually(Duration::from_secs(1), || async {
        create_donation(&b, "wechat").await.status == StatusCode::UNPROCESSABLE_ENTITY
    })
    .await;
    assert!(refused_on_b, "B still creates WeChat orders a second later");
    assert_eq!(create_donation(&b, "wechat").await.error_code(), "channel_disabled");
    assert_eq!(
        create_donation(&b, "alipay").await.status,
        StatusCode::CREATED,
        "the other channel still works"
    );
    let home = b.get("/").await.text();
    assert!(!home.contains("value=\"wechat\""), "B's home page still offers WeChat");
    assert!(home.contains("value=\"alipay\""));

    // Back on.
    call(
        &a,
        &admin,
        Method::PATCH,
        "/api/admin/settings",
        Some(json!({"wechat_enabled": null})),
    )
    .await;
    assert!(
        eventually(Duration::from_secs(1), || async {
            create_donation(&b, "wechat").await.status == StatusCode::CREATED
        })
        .await
    );
    b.shutdown().await;
    a.shutdown().await;
}

async fn create_donation(app: &TestApp, channel: &str) -> Answer {
    app.post_json(
        "/api/donations",
        json!({"amount": "3.00", "channel": channel, "category_id": 1}),
    )
    .await
}

/// Creates and pays a donation of `amount` by `channel` with `donor`; returns its order number.
async fn paid(app: &TestApp, amount: &str, channel: &str, donor: &str) -> String {
    let created = app
        .post_json(
            "/api/donations",
            json!({"amount": amount, "channel": channel, "category_id": 1, "donor_name": donor}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let no = created.json()["order_no"].as_str().unwrap().to_string();
    let pay = app.sandbox_pay(&no).await;
    assert!(pay.status.is_success(), "{}", pay.text());
    let settled = eventually(Duration::from_secs(5), || async {
        app.get(&format!("/api/payments/{no}")).await.json()["status"] == "paid"
    })
    .await;
    assert!(settled, "{no} not paid");
    no
}

#[tokio::test]
async fn payments_are_searched_exported_and_refunded_within_what_is_left() {
    let app = spawn_app().await;
    let admin = sign_in(&app, "admin1", Role::Admin).await;
    let first = paid(&app, "10.00", "wechat", "=HYPERLINK(\"x\")").await;
    let second = paid(&app, "20.00", "alipay", "李四").await;
    let pending = app.donate("5.00", "wechat").await["order_no"]
        .as_str()
        .unwrap()
        .to_string();

    // Filters.
    let total = |query: &'static str| {
        let path = format!("/api/admin/payments{query}");
        let app = &app;
        let admin = &admin;
        async move {
            let answer = get(app, admin, &path).await;
            assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.text());
            answer.json()["total"].as_i64().unwrap()
        }
    };
    assert_eq!(total("").await, 3);
    assert_eq!(total("?status=paid").await, 2);
    assert_eq!(total("?status=pending&channel=wechat").await, 1);
    assert_eq!(total("?channel=alipay").await, 1);
    assert_eq!(total("?from=2000-01-01&to=2000-01-31").await, 0);
    assert_eq!(total("?from=2000-01-01").await, 3);
    assert_eq!(total("?from=2000-01-01T00:00:00Z&to=2999-01-01").await, 3);
    let by_no = get(&app, &admin, &format!("/api/admin/payments?order_no={first}"))
        .await
        .json();
    assert_eq!(by_no["total"], 1);
    let item = &by_no["items"][0];
    assert_eq!(item["amount"], "10.00");
    assert_eq!(item["amount_fen"], 1000);
    assert_eq!(item["status"], "paid");
    assert!(item["paid_at"].as_str().unwrap().ends_with("+08:00"));
    assert_eq!(item["donation"]["donor_name"], "=HYPERLINK(\"x\")");
    let paged = get(&app, &admin, "/api/admin/payments?size=2&page=2").await.json();
    assert_eq!(paged["items"].as_array().unwrap().len(), 1);
    for bad in [
        "status=lost",
        "channel=cash",
        "from=yesterday",
        "to=2026-13-01",
        "size=0",
        "order_no=%27",
    ] {
        let answer = get(&app, &admin, &format!("/api/admin/payments?{bad}")).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            answer.text()
        );
    }

    // CSV: a header row, a line per payment, formulas defused.
    let csv = get(&app, &admin, "/api/admin/payments.csv?status=paid").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    let text = csv.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("order_no,purpose,channel,status,amount"), "{text}");
    assert!(text.contains(&second) && text.contains("李四") && text.contains("20.00"));
    assert!(
        text.contains(",\"'=HYPERLINK(\"\"x\"\")\","),
        "formula not defused: {text}"
    );
    assert!(!text.contains(&pending));

    // Detail.
    let detail = get(&app, &admin, &format!("/api/admin/payments/{first}")).await.json();
    assert_eq!(detail["payment"]["order_no"], first.as_str());
    assert_eq!(detail["refundable"], "10.00");
    assert!(
        detail["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "paid" || e["to_status"] == "paid"),
        "{detail}"
    );
    assert_eq!(detail["refunds"], json!([]));
    assert_eq!(
        get(&app, &admin, "/api/admin/payments/NO_SUCH_ORDER").await.status,
        StatusCode::NOT_FOUND
    );

    // Refunds: within what is left, with a reason, only of paid payments.
    let refund_path = format!("/api/admin/payments/{first}/refund");
    let refund = |amount: &str, reason: &str| {
        call(
            &app,
            &admin,
            Method::POST,
            &refund_path,
            Some(json!({"amount": amount, "reason": reason})),
        )
    };
    for (amount, reason, code) in [
        ("abc", "r", "invalid_amount"),
        ("0", "r", "invalid_amount"),
        ("1.00", " ", "invalid_reason"),
    ] {
        assert_eq!(refund(amount, reason).await.error_code(), code);
    }
    let done = refund("6.00", "捐错了").await;
    assert_eq!(done.status, StatusCode::CREATED, "{}", done.text());
    let body = done.json();
    assert_eq!(body["refund"]["amount_fen"], 600);
    assert_eq!(body["refund"]["reason"], "捐错了");
    assert_eq!(body["refund"]["requested_by"], "admin:admin1");
    assert!(
        ["processing", "succeeded"].contains(&body["refund"]["status"].as_str().unwrap()),
        "{body}"
    );
    let over = refund("5.00", "too much").await;
    assert_eq!(over.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(over.error_code(), "refund_exceeds_remaining");
    assert!(
        over.json()["error"]["message"].as_str().unwrap().contains("4.00"),
        "{}",
        over.text()
    );
    let unpaid = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/admin/payments/{pending}/refund"),
        Some(json!({"amount": "1.00", "reason": "x"})),
    )
    .await;
    assert_eq!(unpaid.status, StatusCode::CONFLICT);
    let unknown = call(
        &app,
        &admin,
        Method::POST,
        "/api/admin/payments/NO_SUCH_ORDER/refund",
        Some(json!({"amount": "1.00", "reason": "x"})),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let settled = eventually(Duration::from_secs(5), || async {
        app.get(&format!("/api/payments/{first}")).await.json()["refunded_fen"] == 600
    })
    .await;
    assert!(settled, "the refund never settled");
    assert_eq!(
        app.count("SELECT count(*) FROM refunds").await,
        1,
        "refused refunds queued nothing"
    );

    let rows = audit_rows(&app, "payment.refund").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, "admin1");
    assert_eq!(rows[0].1, format!("payment:{first}"));
    assert_eq!(rows[0].2["refunded_fen"], 0);
    assert_eq!(rows[0].3["refund"]["amount_fen"], 600);
    app.shutdown().await;
}

#[tokio::test]
async fn the_inbox_the_reconcile_report_and_the_audit_log_show_what_happened() {
    let app = spawn_app().await;
    let admin = sign_in(&app, "admin1", Role::Admin).await;
    let no = paid(&app, "8.00", "wechat", "王五").await;
    let old = app.donate("2.00", "alipay").await["order_no"]
        .as_str()
        .unwrap()
        .to_string();
    app.sql(&format!(
        "UPDATE payments SET created_at = now() - interval '20 minutes' WHERE order_no = '{old}'"
    ))
    .await;
    app.sql(&format!("UPDATE payments SET late = true WHERE order_no = '{no}'"))
        .await;
    app.sql(&format!(
        "INSERT INTO refunds (refund_no, order_no, amount_fen, requested_by, status, failure)
         VALUES ('RF_TEST_1', '{no}', 100, 'test', 'failed', 'ACCOUNT_FROZEN: <b>frozen</b>')"
    ))
    .await;

    // Callbacks: the stored raw body comes back as text.
    let inbox = get(&app, &admin, &format!("/api/admin/callbacks?order_no={no}"))
        .await
        .json();
    assert!(inbox["total"].as_i64().unwrap() >= 1, "{inbox}");
    let callback = &inbox["items"][0];
    assert_eq!(callback["order_no"], no.as_str());
    assert_eq!(callback["accepted"], true);
    assert!(!callback["body"].as_str().unwrap().is_empty());
    assert_eq!(
        get(&app, &admin, "/api/admin/callbacks?accepted=true&order_no=nope")
            .await
            .json()["total"],
        0
    );
    assert_eq!(
        get(&app, &admin, "/api/admin/callbacks?accepted=maybe")
            .await
            .error_code(),
        "invalid_accepted"
    );

    // Reconcile: pending past N minutes, late payments, refunds not finished.
    let report = get(&app, &admin, "/api/admin/reconcile?pending_minutes=15")
        .await
        .json();
    let orders = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|o| o["order_no"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(orders(&report["pending"]), vec![old.clone()]);
    assert_eq!(orders(&report["late"]), vec![no.clone()]);
    assert_eq!(report["refunds"][0]["refund_no"], "RF_TEST_1");
    let later = get(&app, &admin, "/api/admin/reconcile?pending_minutes=30")
        .await
        .json();
    assert_eq!(later["pending"], json!([]));
    assert_eq!(
        get(&app, &admin, "/api/admin/reconcile?pending_minutes=0").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // Audit log: newest first, with the account creation from sign_in.
    call(
        &app,
        &admin,
        Method::POST,
        "/api/admin/categories",
        Some(json!({"name": "新"})),
    )
    .await;
    let log = get(&app, &admin, "/api/admin/audit?size=1").await.json();
    assert_eq!(log["total"], 2);
    assert_eq!(log["items"][0]["action"], "category.create");
    assert_eq!(log["items"][0]["actor"], "admin1");
    assert_eq!(log["items"][0]["ip"], "127.0.0.1");
    let second = get(&app, &admin, "/api/admin/audit?size=1&page=2").await.json();
    assert_eq!(second["items"][0]["action"], "user.create");
    app.shutdown().await;
}

#[tokio::test]
async fn a_role_change_or_disabling_ends_the_accounts_sessions_but_never_your_own() {
    let app = spawn_app().await;
    let admin = sign_in(&app, "admin1", Role::Admin).await;
    let bob = sign_in(&app, "bob", Role::User).await;
    let users = get(&app, &admin, "/api/admin/users").await.json();
    assert_eq!(users["total"], 2);
    let bob_id = users["items"][1]["id"].as_i64().unwrap();
    let admin_id = users["items"][0]["id"].as_i64().unwrap();
    assert_eq!(users["items"][1]["username"], "bob");
    assert!(users["items"][1].get("password_hash").is_none());
    assert_eq!(app.get_with_token("/api/me", &bob).await.status, StatusCode::OK);

    let path = format!("/api/admin/users/{bob_id}");
    let promoted = call(&app, &admin, Method::PATCH, &path, Some(json!({"role": "reviewer"}))).await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.text());
    assert_eq!(promoted.json()["role"], "reviewer");
    assert_eq!(
        app.get_with_token("/api/me", &bob).await.status,
        StatusCode::UNAUTHORIZED,
        "old session still works"
    );
    let bob = login(&app, "bob").await;
    assert_eq!(app.get_with_token("/api/me", &bob).await.json()["role"], "reviewer");

    let bad = call(&app, &admin, Method::PATCH, &path, Some(json!({"role": "owner"}))).await;
    assert_eq!(bad.error_code(), "invalid_role");
    let disabled = call(&app, &admin, Method::PATCH, &path, Some(json!({"disabled": true}))).await;
    assert_eq!(disabled.json()["disabled"], true);
    assert_eq!(
        app.get_with_token("/api/me", &bob).await.status,
        StatusCode::UNAUTHORIZED
    );
    let again = app
        .post_json("/api/auth/login", json!({"username": "bob", "password": PASSWORD}))
        .await;
    assert_eq!(again.status, StatusCode::FORBIDDEN);

    let own = format!("/api/admin/users/{admin_id}");
    for change in [json!({"role": "user"}), json!({"disabled": true})] {
        let answer = call(&app, &admin, Method::PATCH, &own, Some(change)).await;
        assert_eq!(answer.error_code(), "own_account");
    }
    assert_eq!(
        get(&app, &admin, "/api/admin/users").await.json()["items"][0]["role"],
        "admin"
    );
    assert_eq!(
        call(
            &app,
            &admin,
            Method::PATCH,
            "/api/admin/users/999999",
            Some(json!({"disabled": true}))
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );

    let rows = audit_rows(&app, "user.update").await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].2["role"], "user");
    assert_eq!(rows[0].3["role"], "reviewer");
    assert_eq!(rows[1].3["disabled"], true);
    app.shutdown().await;
}

/// `get` with a bearer token, on any app.
trait WithToken {
    async fn get_with_token(&self, path: &str, token: &str) -> Answer;
}

impl WithToken for TestApp {
    async fn get_with_token(&self, path: &str, token: &str) -> Answer {
        get(self, token, path).await
    }
}
