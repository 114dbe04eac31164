//! The whole operator story, end to end: the first admin comes from the real binary's
//! command line, signs in over HTTP, adds a category, switches a channel off (refused at
//! once here and within a second on a second instance), finds a paid donation, refunds half
//! of it, and the ranking drops by that half.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::admin::{PASSWORD, call, login};
use crate::helpers::{TestApp, eventually, fresh_database, spawn_app_on};

/// `zhifu admin create --username NAME --password-stdin` against `db`; returns stdout.
fn create_admin_with_the_binary(db: &tokio_postgres::Config, username: &str) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zhifu"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("ZHIFU")) {
        cmd.env_remove(key);
    }
    let mut child = cmd
        .arg("--config")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/config.yaml"))
        .args(["admin", "create", "--username", username, "--password-stdin"])
        .env("ZHIFU__DATABASE__URL", crate::helpers::database_url(db))
        .env("ZHIFU__BACKUP__EVERY_HOURS", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    writeln!(child.stdin.take().expect("stdin"), "{PASSWORD}").expect("password written");
    let output = child.wait_with_output().expect("the binary finishes");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "zhifu admin create failed: {}\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The ranking's amount for `donor` in fen (0 when absent).
async fn ranked_fen(app: &TestApp, donor: &str) -> i64 {
    let ranking = app.get("/api/rankings?range=all&size=100").await.json();
    ranking["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["donor"] == donor)
        .map_or(0, |item| item["amount_fen"].as_i64().unwrap())
}

#[tokio::test]
async fn an_operator_creates_the_first_admin_signs_in_and_runs_the_payments() {
    let db = fresh_database().await;

    // The first admin, from the command line (no default password anywhere).
    let db_for_cli = db.clone();
    let printed = tokio::task::spawn_blocking(move || create_admin_with_the_binary(&db_for_cli, "ops"))
        .await
        .unwrap();
    assert!(printed.contains("created admin account \"ops\""), "{printed}");

    let a = spawn_app_on(db.clone(), |_| {}).await;
    let b = spawn_app_on(db, |_| {}).await;
    let token = login(&a, "ops").await;
    let me = call(&a, &token, Method::GET, "/api/me", None).await.json();
    assert_eq!(me["role"], "admin", "{me}");

    // Adds a category: donors see it on both instances.
    let category = call(
        &a,
        &token,
        Method::POST,
        "/api/admin/categories",
        Some(json!({"name": "灾害救助"})),
    )
    .await;
    assert_eq!(category.status, StatusCode::CREATED, "{}", category.text());
    let on_b = eventually(Duration::from_secs(1), || async {
        b.get("/api/categories").await.text().contains("灾害救助")
    })
    .await;
    assert!(on_b, "the second instance does not list the new category");

    // Switches Alipay off: refused at once here, within a second on the other instance.
    let off = call(
        &a,
        &token,
        Method::PATCH,
        "/api/admin/settings",
        Some(json!({"alipay_enabled": false})),
    )
    .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.text());
    let alipay = json!({"amount": "1.00", "channel": "alipay", "category_id": 1});
    let here = a.post_json("/api/donations", alipay.clone()).await;
    assert_eq!(here.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(here.error_code(), "channel_disabled");
    let there = eventually(Duration::from_secs(1), || async {
        b.post_json("/api/donations", alipay.clone()).await.status == StatusCode::UNPROCESSABLE_ENTITY
    })
    .await;
    assert!(there, "the second instance still takes Alipay orders");

    // A donor pays 88.00 by WeChat. (Each instance runs its own sandbox provider, so the
    // order is paid and refunded through the same instance.)
    let before = ranked_fen(&a, "测试").await;
    let order = a.donate("88.00", "wechat").await;
    let no = order["order_no"].as_str().unwrap().to_string();
    let paid = a.sandbox_pay(&no).await;
    assert!(paid.status.is_success(), "{}", paid.text());
    assert!(
        eventually(Duration::from_secs(2), || async {
            ranked_fen(&a, "测试").await == before + 8800
        })
        .await
    );

    // Finds it in the payment search.
    let found = call(
        &a,
        &token,
        Method::GET,
        "/api/admin/payments?status=paid&channel=wechat",
        None,
    )
    .await
    .json();
    let item: &Value = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["order_no"] == no.as_str())
        .unwrap_or_else(|| panic!("the paid donation is not in the search: {found}"));
    assert_eq!(item["amount"], "88.00");

    // Refunds half; the ranking drops by that half on both instances.
    let refund = call(
        &a,
        &token,
        Method::POST,
        &format!("/api/admin/payments/{no}/refund"),
        Some(json!({"amount": "44.00", "reason": "捐赠人要求退一半"})),
    )
    .await;
    assert_eq!(refund.status, StatusCode::CREATED, "{}", refund.text());
    assert_ne!(refund.json()["refund"]["status"], "failed", "{}", refund.text());
    for app in [&a, &b] {
        let dropped = eventually(Duration::from_secs(5), || async {
            ranked_fen(app, "测试").await == before + 4400
        })
        .await;
        assert!(
            dropped,
            "ranking shows {} fen, expected {}",
            ranked_fen(app, "测试").await,
            before + 4400
        );
    }
    let detail = call(&a, &token, Method::GET, &format!("/api/admin/payments/{no}"), None)
        .await
        .json();
    assert_eq!(detail["payment"]["refunded"], "44.00");
    assert_eq!(detail["refunds"][0]["status"], "succeeded");

    // Each step is in the audit log under the admin's name.
    let log = call(&a, &token, Method::GET, "/api/admin/audit", None).await.json();
    let actions: Vec<(&str, &str)> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| (row["actor"].as_str().unwrap(), row["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            ("ops", "payment.refund"),
            ("ops", "settings.update"),
            ("ops", "category.create"),
            ("cli", "user.create")
        ]
    );
    b.shutdown().await;
    a.shutdown().await;
}
