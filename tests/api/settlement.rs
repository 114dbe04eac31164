//! Settlement at the deadline through the engine: a succeeded project keeps its highest goal
//! reached and refunds the surplus pro rata to the fen (a backing an admin refunded in part
//! before the deadline weighs what it has left), a failed one refunds everything, `raised`
//! ends at the settled amount (or 0), the providers' books agree, and two instances past the
//! deadline at the same moment settle once and send each refund once.

use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use zhifu::account::Role;
use zhifu::crowdfunding::settlement;

use crate::admin::{call, sign_in};
use crate::backings::back_and_pay;
use crate::crowdfunding::{live_project, project_body};
use crate::helpers::{TestApp, eventually, spawn_app_on, spawn_app_with};
use crate::realmode::{FakeProviders, spawn_real_mode_app_with};

/// Settings for these tests: no grace after the deadline, the job driven by hand.
pub fn by_hand(settings: &mut zhifu::config::Settings) {
    settings.crowdfunding.settle_grace_secs = 0;
    settings.crowdfunding.settle_interval_secs = 3600;
}

/// A live project with goals of `goals` yuan, no rewards, `surplus` policy.
pub async fn project(app: &TestApp, owner: &str, admin: &str, goals: &[&str], surplus: &str) -> i64 {
    let mut body = project_body("图书角");
    body["goals"] = goals
        .iter()
        .enumerate()
        .map(|(n, amount)| json!({"amount": amount, "title": format!("目标 {}", n + 1)}))
        .collect();
    body["rewards"] = json!([]);
    body["surplus"] = json!(surplus);
    live_project(app, owner, admin, body).await
}

async fn detail(app: &TestApp, id: i64) -> Value {
    app.state.crowdfunding.cache.changed(id);
    let answer = app.get(&format!("/api/projects/{id}")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    answer.json()
}

pub async fn end_now(app: &TestApp, id: i64) {
    app.sql(&format!(
        "UPDATE projects SET deadline = now() - interval '1 second' WHERE id = {id}"
    ))
    .await;
}

/// What the providers refunded on `order_no`, and how many refunds they booked.
fn at_provider(app: &TestApp, order_no: &str) -> (i64, usize) {
    let sandbox = app.state.sandbox.clone().unwrap();
    let wechat = (
        sandbox.wechat.refunded_fen(order_no),
        sandbox.wechat.refund_count(order_no),
    );
    let alipay = (
        sandbox.alipay.refunded_fen(order_no).unwrap_or(0),
        sandbox.alipay.refund_count(order_no),
    );
    (wechat.0 + alipay.0, wechat.1 + alipay.1)
}

/// Until the settlement's refunds are all settled, the reconcile job run by hand meanwhile
/// (it checks refunds whose provider answered "processing").
async fn refunds_done(app: &TestApp, id: i64) -> bool {
    eventually(Duration::from_secs(10), || async {
        zhifu::pay::reconcile::pass(&app.state.engine).await.unwrap();
        let s = &detail(app, id).await["settlement"];
        s["refunds_pending"] == 0
    })
    .await
}

#[tokio::test]
async fn a_succeeded_project_keeps_its_highest_goal_and_refunds_the_surplus_pro_rata_to_the_fen() {
    let app = spawn_app_with(by_hand).await;
    let owner = sign_in(&app, "owner", Role::User).await;
    let admin = sign_in(&app, "admin", Role::Admin).await;
    let id = project(&app, &owner, &admin, &["100.00", "250.00", "400.00"], "refund").await;
    let mut orders = Vec::new();
    for (n, (amount, channel)) in [("150.00", "wechat"), ("100.00", "alipay"), ("60.01", "wechat")]
        .into_iter()
        .enumerate()
    {
        let token = sign_in(&app, &format!("backer{n}"), Role::User).await;
        let no = back_and_pay(&app, &token, id, json!({"amount": amount, "channel": channel})).await;
        orders.push(no);
    }
    // An admin refunds 10.00 of the second backing before the deadline.
    app.state
        .engine
        .request_refund(&orders[1], 1000, "partial refund", "admin:admin")
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            detail(&app, id).await["raised_fen"] == 30_001
        })
        .await,
        "150.00 + 90.00 + 60.01"
    );
    end_now(&app, id).await;
    let pass = settlement::pass(&app.state).await.unwrap();
    assert_eq!(pass.settled, 1);
    assert_eq!(pass.refunds_sent, 3);
    assert!(refunds_done(&app, id).await);
    // Surplus 50.01 over 150.00 / 90.00 / 60.01 of 300.01: 25.0041…, 15.0025, 10.0033… → the
    // floors leave one fen, which goes to the largest remainder (the first).
    let expected = [(&orders[0], 2501), (&orders[1], 1000 + 1500), (&orders[2], 1000)];
    for (no, fen) in expected {
        let (refunded, _) = at_provider(&app, no);
        assert_eq!(refunded, fen, "{no}");
        let stored = app
            .count(&format!("SELECT refunded_fen FROM payments WHERE order_no = '{no}'"))
            .await;
        assert_eq!(stored, fen, "{no}: the provider's books and ours agree");
    }
    let p = detail(&app, id).await;
    assert_eq!(p["status"], "succeeded");
    assert_eq!(p["raised_fen"], 25_000, "raised ends at the settled amount");
    assert_eq!(p["current_goal"], 1);
    let s = &p["settlement"];
    assert_eq!(s["settled_fen"], 25_000);
    assert_eq!(s["refunded_fen"], 5001);
    assert_eq!(
        (s["refunds_pending"].clone(), s["refunds_failed"].clone()),
        (json!(0), json!(0))
    );
    // Every backer and the owner heard of the result; each backer of their refund.
    for n in 0..3 {
        let kinds = app
            .count(&format!(
                "SELECT count(DISTINCT kind) FROM notifications n JOIN users u ON u.id = n.recipient_id
                  WHERE u.username = 'backer{n}' AND kind IN ('project_result', 'refund')"
            ))
            .await;
        assert_eq!(kinds, 2, "backer{n}");
    }
    let owner_heard = call(&app, &owner, Method::GET, "/api/me/notifications", None)
        .await
        .json();
    assert!(
        owner_heard["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "project_result")
    );
    // Settled once: another pass changes nothing.
    let again = settlement::pass(&app.state).await.unwrap();
    assert_eq!((again.settled, again.refunds_sent), (0, 0));
    assert_eq!(app.count("SELECT count(*) FROM refunds").await, 4);
}

#[tokio::test]
async fn a_project_below_its_first_goal_fails_and_every_backing_is_refunded_in_full() {
    let app = spawn_app_with(by_hand).await;
    let owner = sign_in(&app, "owner", Role::User).await;
    let admin = sign_in(&app, "admin", Role::Admin).await;
    let backer = sign_in(&app, "backer", Role::User).await;
    let id = project(&app, &owner, &admin, &["1000.00"], "keep").await;
    let a = back_and_pay(&app, &backer, id, json!({"amount": "20.00", "channel": "wechat"})).await;
    let b = back_and_pay(&app, &backer, id, json!({"amount": "30.50", "channel": "alipay"})).await;
    assert_eq!(detail(&app, id).await["backers"], 1, "one person");
    end_now(&app, id).await;
    assert_eq!(settlement::pass(&app.state).await.unwrap().settled, 1);
    assert!(refunds_done(&app, id).await);
    assert_eq!(at_provider(&app, &a), (2000, 1));
    assert_eq!(at_provider(&app, &b), (3050, 1));
    let p = detail(&app, id).await;
    assert_eq!(p["status"], "failed");
    assert_eq!((p["raised_fen"].clone(), p["backers"].clone()), (json!(0), json!(0)));
    assert_eq!(p["settlement"]["refunded_fen"], 5050);
    assert_eq!(p["current_goal"], Value::Null);
}

#[tokio::test]
async fn two_instances_past_the_deadline_at_the_same_moment_settle_once_and_refund_once() {
    // Both instances talk to the same providers, as in production.
    let providers = FakeProviders::start().await;
    let first = spawn_real_mode_app_with(&providers, by_hand).await;
    let second = spawn_app_on(first.db.clone(), |s| {
        providers.apply(s);
        by_hand(s);
    })
    .await;
    let owner = sign_in(&first, "owner", Role::User).await;
    let admin = sign_in(&first, "admin", Role::Admin).await;
    let id = project(&first, &owner, &admin, &["50.00", "80.00"], "refund").await;
    let mut orders = Vec::new();
    for n in 0..6 {
        let token = sign_in(&first, &format!("backer{n}"), Role::User).await;
        let channel = if n % 2 == 0 { "wechat" } else { "alipay" };
        let amount = format!("{}.{:02}", 10 + n * 3, n * 7);
        let answer = crate::backings::back(&first, &token, id, json!({"amount": amount, "channel": channel})).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
        let no = answer.json()["payment"]["order_no"].as_str().unwrap().to_string();
        match channel {
            "wechat" => providers.wechat.force_pay(&no).await.unwrap(),
            _ => providers.alipay.force_pay(&no).await.unwrap(),
        }
        orders.push(no);
    }
    let counted = eventually(Duration::from_secs(5), || async {
        first.count("SELECT count(*) FROM backings WHERE counted").await == 6
    })
    .await;
    assert!(counted);
    end_now(&first, id).await;
    let run = |app: &TestApp| {
        let state = std::sync::Arc::clone(&app.state);
        async move {
            let mut sum = settlement::Pass::default();
            for _ in 0..3 {
                let p = settlement::pass(&state).await.unwrap();
                sum.settled += p.settled;
                sum.refunds_sent += p.refunds_sent;
            }
            sum
        }
    };
    let (a, b) = tokio::join!(run(&first), run(&second));
    assert_eq!(a.settled + b.settled, 1, "one settlement: {a:?} {b:?}");
    let planned = first.count("SELECT count(*) FROM settlement_refunds").await;
    assert_eq!(
        i64::from(a.refunds_sent + b.refunds_sent),
        planned,
        "each refund handed over once"
    );
    assert!(refunds_done(&first, id).await);
    // 10.00 + 13.07 + 16.14 + 19.21 + 22.28 + 25.35 = 106.05: 26.05 of surplus over 80.00.
    let mut total = 0;
    for no in &orders {
        let wechat = (providers.wechat.refunded_fen(no), providers.wechat.refund_count(no));
        let alipay = (
            providers.alipay.refunded_fen(no).unwrap_or(0),
            providers.alipay.refund_count(no),
        );
        assert_eq!(wechat.1 + alipay.1, 1, "{no}: one refund at the provider");
        total += wechat.0 + alipay.0;
    }
    assert_eq!(total, 2605);
    assert_eq!(detail(&second, id).await["raised_fen"], 8000);
    second.shutdown().await;
}

#[tokio::test]
async fn rewards_ship_once_the_project_succeeded_and_are_delivered_by_the_backer_or_in_time() {
    let app = spawn_app_with(by_hand).await;
    let owner = sign_in(&app, "owner", Role::User).await;
    let admin = sign_in(&app, "admin", Role::Admin).await;
    let stranger = sign_in(&app, "stranger", Role::User).await;
    let id = live_project(&app, &owner, &admin, project_body("图书角")).await;
    let postcard = app
        .count(&format!(
            "SELECT id FROM project_rewards WHERE project_id = {id} AND position = 0"
        ))
        .await;
    let mut orders = Vec::new();
    for (n, amount) in ["600.00", "500.00", "40.00"].into_iter().enumerate() {
        let token = sign_in(&app, &format!("backer{n}"), Role::User).await;
        let home = crate::backings::address(&app, &token).await;
        let no = back_and_pay(
            &app,
            &token,
            id,
            json!({"amount": amount, "channel": "wechat", "reward_id": postcard, "address_id": home}),
        )
        .await;
        orders.push((token, no));
    }
    let ship = |token: &str, no: &str| {
        let (app, token, path) = (
            &app,
            token.to_string(),
            format!("/api/projects/{id}/backings/{no}/ship"),
        );
        async move {
            call(
                app,
                &token,
                Method::POST,
                &path,
                Some(json!({"carrier": "顺丰", "tracking_no": "SF1234567890"})),
            )
            .await
        }
    };
    let deliver = |token: &str, no: &str| {
        let (app, token, path) = (
            &app,
            token.to_string(),
            format!("/api/projects/{id}/backings/{no}/deliver"),
        );
        async move { call(app, &token, Method::POST, &path, None).await }
    };
    let (a, b, c) = (&orders[0], &orders[1], &orders[2]);
    assert_eq!(ship(&owner, &a.1).await.error_code(), "project_not_succeeded");
    // The owner's list: what to ship, with the addresses.
    let to_ship = call(
        &app,
        &owner,
        Method::GET,
        &format!("/api/projects/{id}/backings?shipping=pending"),
        None,
    )
    .await
    .json();
    assert_eq!(to_ship["items"].as_array().unwrap().len(), 3);
    assert_eq!(to_ship["items"][0]["address"]["region"], "云南省 昆明市");
    let hidden = call(
        &app,
        &stranger,
        Method::GET,
        &format!("/api/projects/{id}/backings"),
        None,
    )
    .await;
    assert_eq!(hidden.status, StatusCode::FORBIDDEN);

    end_now(&app, id).await;
    assert_eq!(settlement::pass(&app.state).await.unwrap().settled, 1);
    assert_eq!(ship(&stranger, &a.1).await.status, StatusCode::FORBIDDEN);
    assert_eq!(deliver(&a.0, &a.1).await.error_code(), "not_shipped");
    let shipped = ship(&owner, &a.1).await;
    assert_eq!(shipped.status, StatusCode::OK, "{}", shipped.text());
    assert_eq!(shipped.json()["shipping"], "shipped");
    let heard = call(&app, &a.0, Method::GET, "/api/me/notifications", None)
        .await
        .json();
    assert!(
        heard["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "order_shipped")
    );
    // The backer confirms; someone else's backing is not theirs to confirm.
    assert_eq!(deliver(&b.0, &a.1).await.status, StatusCode::NOT_FOUND);
    let delivered = deliver(&a.0, &a.1).await;
    assert_eq!(delivered.json()["delivered_by"], "backer", "{}", delivered.text());
    assert_eq!(ship(&owner, &a.1).await.error_code(), "already_delivered");
    // The owner may confirm only once auto_deliver_days passed; the job does it then.
    assert_eq!(ship(&owner, &b.1).await.status, StatusCode::OK);
    assert_eq!(deliver(&owner, &b.1).await.error_code(), "too_early");
    assert_eq!(ship(&admin, &c.1).await.status, StatusCode::OK);
    app.sql("UPDATE backings SET shipped_at = now() - interval '16 days' WHERE shipping = 'shipped'")
        .await;
    assert_eq!(deliver(&owner, &b.1).await.json()["delivered_by"], "owner");
    settlement::pass(&app.state).await.unwrap();
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM backings WHERE order_no = '{}' AND delivered_by = 'auto'",
            c.1
        ))
        .await,
        1
    );

    // The report: every backing with its goal progress and its settlement refund.
    let report = call(
        &app,
        &owner,
        Method::GET,
        &format!("/api/projects/{id}/report.csv"),
        None,
    )
    .await;
    assert_eq!(report.status, StatusCode::OK);
    assert!(report.header("content-type").is_some_and(|t| t.starts_with("text/csv")));
    let text = report.text();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("order_no,created_at,paid_at,backer"),
        "{}",
        lines[0]
    );
    assert_eq!(lines.len(), 4, "{text}");
    let header: Vec<&str> = lines[0].split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let first: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(first[column("order_no")], a.1);
    assert_eq!(first[column("raised_after")], "600.00");
    assert_eq!(first[column("next_goal")], "1000.00");
    assert_eq!(first[column("next_goal_percent")], "60");
    let second: Vec<&str> = lines[2].split(',').collect();
    assert_eq!(second[column("raised_after")], "1100.00");
    assert_eq!(second[column("goal_reached")], "1");
    assert_eq!(second[column("shipping")], "delivered");
    // 1140.00 raised, 1000.00 kept: 140.00 back pro rata — 73.68|42, 61.40|35, 4.91|23: the
    // fen left over goes to the largest remainder, the first.
    assert_eq!(first[column("settlement_refund")], "73.69");
    assert_eq!(second[column("settlement_refund")], "61.40");
    let stranger_report = call(
        &app,
        &stranger,
        Method::GET,
        &format!("/api/projects/{id}/report.csv"),
        None,
    )
    .await;
    assert_eq!(stranger_report.status, StatusCode::FORBIDDEN);
}
