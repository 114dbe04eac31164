//! Backing projects through the payment engine (purpose `backing`): bad backings refused with
//! nothing written, a reward of five units held by exactly five of sixty concurrent backings
//! and given back once when the unpaid ones close, a paid backing counted in the progress, a
//! payment one second after the deadline (or after its order closed) refunded in full and
//! never counted, and the Idempotency-Key on the create.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use zhifu::account::Role;
use zhifu::pay::close::CloseKind;
use zhifu::pay::provider::Channel;

use crate::admin::{call, sign_in};
use crate::crowdfunding::{live_project, project_body};
use crate::helpers::{TestApp, eventually, spawn_app};

/// Backs project `id` as `token`; the answer.
pub async fn back(app: &TestApp, token: &str, id: i64, body: Value) -> crate::helpers::Answer {
    call(
        app,
        token,
        Method::POST,
        &format!("/api/projects/{id}/backings"),
        Some(body),
    )
    .await
}

/// Backs and pays through the sandbox (asserted); the order number.
pub async fn back_and_pay(app: &TestApp, token: &str, id: i64, body: Value) -> String {
    let answer = back(app, token, id, body).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    let no = answer.json()["payment"]["order_no"].as_str().unwrap().to_string();
    assert_eq!(app.sandbox_pay(&no).await.status, StatusCode::OK);
    let paid = eventually(Duration::from_secs(5), || async {
        app.count(&format!(
            "SELECT count(*) FROM backings WHERE order_no = '{no}' AND counted"
        ))
        .await
            == 1
    })
    .await;
    assert!(paid, "the backing counts once paid");
    no
}

/// One of `token`'s addresses (created); its id.
pub async fn address(app: &TestApp, token: &str) -> i64 {
    let answer = call(
        app,
        token,
        Method::POST,
        "/api/me/addresses",
        Some(json!({"name": "张三", "phone": "13800138000", "region": "云南省 昆明市", "detail": "学府路 1 号"})),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    answer.json()["id"].as_i64().unwrap()
}

/// The reward at `position` of project `id`: (id, reserved, taken).
async fn reward(app: &TestApp, id: i64, position: i16) -> (i64, i64, i64) {
    let client = app.state.store.client().await.unwrap();
    let row = client
        .query_one(
            "SELECT id, reserved::bigint, taken::bigint FROM project_rewards WHERE project_id = $1 AND position = $2",
            &[&id, &position],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

async fn project(app: &TestApp, id: i64) -> Value {
    let answer = app.get(&format!("/api/projects/{id}")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    answer.json()
}

#[tokio::test]
async fn bad_backings_are_refused_by_rule_and_write_nothing() {
    let app = spawn_app().await;
    let owner = sign_in(&app, "owner", Role::User).await;
    let admin = sign_in(&app, "admin", Role::Admin).await;
    let backer = sign_in(&app, "backer", Role::User).await;
    let other = sign_in(&app, "other", Role::User).await;
    let id = live_project(&app, &owner, &admin, project_body("图书角")).await;
    let (postcard, ..) = reward(&app, id, 0).await;
    let foreign_address = address(&app, &other).await;
    let draft = crate::crowdfunding::create(&app, &owner, project_body("草稿")).await["id"]
        .as_i64()
        .unwrap();
    let anonymous = app
        .post_json(
            &format!("/api/projects/{id}/backings"),
            json!({"amount": "5.00", "channel": "wechat"}),
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let cases: Vec<(i64, Value, StatusCode, &str)> = vec![
        (
            id,
            json!({"channel": "wechat"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_amount",
        ),
        (
            id,
            json!({"amount": "5", "channel": "paypal"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_channel",
        ),
        (
            id,
            json!({"amount": "5", "channel": "wechat", "reward_id": 999_999}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_reward",
        ),
        (
            id,
            json!({"amount": "19.99", "channel": "wechat", "reward_id": postcard}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount_below_reward",
        ),
        (
            id,
            json!({"amount": "20.00", "channel": "wechat", "reward_id": postcard}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "address_required",
        ),
        (
            id,
            json!({"amount": "20.00", "channel": "wechat", "reward_id": postcard, "address_id": foreign_address}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_address",
        ),
        (
            id,
            json!({"amount": "5", "channel": "wechat", "message": "x".repeat(201)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_message",
        ),
        (
            draft,
            json!({"amount": "5", "channel": "wechat"}),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            999_999,
            json!({"amount": "5", "channel": "wechat"}),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (project_id, body, status, code) in cases {
        let answer = back(&app, &backer, project_id, body.clone()).await;
        assert_eq!(answer.status, status, "{body}: {}", answer.text());
        assert_eq!(answer.error_code(), code, "{body}");
    }
    // Past the deadline: 409, as after the end.
    app.sql(&format!(
        "UPDATE projects SET deadline = now() - interval '1 second' WHERE id = {id}"
    ))
    .await;
    let late = back(&app, &backer, id, json!({"amount": "5", "channel": "wechat"})).await;
    assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.text());
    assert_eq!(late.error_code(), "project_not_live");
    assert_eq!(app.count("SELECT count(*) FROM backings").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 0);
    assert_eq!(reward(&app, id, 0).await.1, 0, "nothing reserved");
}

#[tokio::test]
async fn sixty_concurrent_backings_for_five_units_hold_exactly_five_and_closing_gives_them_back_once() {
    let app = spawn_app().await;
    let owner = sign_in(&app, "owner", Role::User).await;
    let admin = sign_in(&app, "admin", Role::Admin).await;
    let mut backers = Vec::new();
    for n in 0..6 {
        let token = sign_in(&app, &format!("backer{n}"), Role::User).await;
        let address = address(&app, &token).await;
        backers.push((token, address));
    }
    let id = live_project(&app, &owner, &admin, project_body("图书角")).await;
    let (postcard, ..) = reward(&app, id, 0).await;
    let attempts = (0..60).map(|n| {
        let (token, address) = &backers[n % backers.len()];
        let channel = if n % 2 == 0 { "wechat" } else { "alipay" };
        let body = json!({"amount": "20.00", "channel": channel, "reward_id": postcard, "address_id": address});
        let app = &app;
        async move { back(app, token, id, body).await }
    });
    let answers = futures_util::future::join_all(attempts).await;
    let mut held = Vec::new();
    for answer in &answers {
        match answer.status {
            StatusCode::CREATED => held.push(answer.json()["payment"].clone()),
            StatusCode::CONFLICT => assert_eq!(answer.error_code(), "reward_sold_out", "{}", answer.text()),
            other => panic!("{other}: {}", answer.text()),
        }
    }
    assert_eq!(held.len(), 5, "exactly the quantity");
    assert_eq!(reward(&app, id, 0).await, (postcard, 5, 0));
    assert_eq!(
        app.count("SELECT count(*) FROM backings").await,
        5,
        "a refused backing writes nothing"
    );
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 5);
    app.state.crowdfunding.cache.changed_all();
    assert_eq!(project(&app, id).await["rewards"][0]["remaining"], 0);

    // One is paid; the other four expire, closed twice each (and racing each other).
    let paid = held[0]["order_no"].as_str().unwrap().to_string();
    assert_eq!(app.sandbox_pay(&paid).await.status, StatusCode::OK);
    assert!(
        eventually(Duration::from_secs(5), || async {
            reward(&app, id, 0).await == (postcard, 4, 1)
        })
        .await,
        "paid: the unit is taken"
    );
    let engine = &app.state.engine;
    let closes = held[1..].iter().flat_map(|payment| {
        let no = payment["order_no"].as_str().unwrap().to_string();
        let channel = Channel::parse(payment["channel"].as_str().unwrap()).unwrap();
        [0, 1].map(move |_| {
            let no = no.clone();
            async move { engine.close_order(&no, channel, CloseKind::Expired).await }
        })
    });
    for closed in futures_util::future::join_all(closes).await {
        closed.unwrap();
    }
    assert_eq!(reward(&app, id, 0).await, (postcard, 0, 1), "each released once");
    assert_eq!(
        app.count("SELECT count(*) FROM backings WHERE unit = 'released'").await,
        4
    );
    let shown = eventually(Duration::from_secs(2), || async {
        project(&app, id).await["rewards"][0]["remaining"] == 4
    })
    .await;
    assert!(shown, "the detail shows the units back");

    // They can be backed again, up to the quantity and no further.
    for (token, address) in backers.iter().take(4) {
        let again = back(
            &app,
            token,
            id,
            json!({"amount": "25.00", "channel": "wechat", "reward_id": postcard, "address_id": address}),
        )
        .await;
        assert_eq!(again.status, StatusCode::CREATED, "{}", again.text());
    }
    let (token, address) = &backers[5];
    let sold_out = back(
        &app,
        token,
        id,
        json!({"amount": "25.00", "channel": "wechat", "reward_id": postcard, "address_id": address}),
    )
    .await;
    assert_eq!(sold_out.error_code(), "reward_sold_out");
    assert_eq!(reward(&app, id, 0).await, (postcard, 4, 1));
}

#[tokio::test]
async fn a_paid_backing_counts_in_the_progress_the_backers_and_my_backings() {
    let app = spawn_app().await;
    let owner = sign_in(&app, "owner", Role::User).await;
    let admin = sign_in(&app, "admin", Role::Admin).await;
    let backer = sign_in(&app, "backer", Role::User).await;
    let home = address(&app, &backer).await;
    let id = live_project(&app, &owner, &admin, project_body("图书角")).await;
    let (postcard, ..) = reward(&app, id, 0).await;
    let created = back(
        &app,
        &backer,
        id,
        json!({"amount": "1200.00", "channel": "alipay", "reward_id": postcard, "address_id": home,
               "message": "加油", "anonymous": true}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let body = created.json();
    assert_eq!(body["backing"]["amount_fen"], 120_000);
    assert_eq!(body["backing"]["shipping"], "pending");
    assert_eq!(body["payment"]["status"], "pending");
    assert!(body["payment"]["code_url"].as_str().is_some_and(|c| !c.is_empty()));
    let no = body["payment"]["order_no"].as_str().unwrap().to_string();
    assert_eq!(app.sandbox_pay(&no).await.status, StatusCode::OK);
    let counted = eventually(Duration::from_secs(3), || async {
        let p = project(&app, id).await;
        p["raised_fen"] == 120_000 && p["backers"] == 1
    })
    .await;
    assert!(counted, "{}", project(&app, id).await);
    let p = project(&app, id).await;
    assert_eq!(p["goals"][0]["reached"], true);
    assert_eq!(p["goals"][1]["reached"], false);
    assert_eq!(p["current_goal"], 0);
    assert_eq!(p["rewards"][0]["remaining"], 4);
    let backers = app.get(&format!("/api/projects/{id}/backers")).await.json();
    assert_eq!(backers["items"][0]["donor"], "匿名");
    assert_eq!(backers["items"][0]["amount"], "1200.00");
    let mine = call(&app, &backer, Method::GET, "/api/me/backings", None).await.json();
    assert_eq!(mine["items"][0]["order_no"], no.as_str());
    assert_eq!(mine["items"][0]["status"], "paid");
    assert_eq!(mine["items"][0]["counted"], true);
    // A form post goes to the pay page.
    let bearer = format!("Bearer {backer}");
    let form = app
        .request(
            Method::POST,
            &format!("/api/projects/{id}/backings"),
            &[
                ("authorization", &bearer),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            Bytes::from_static(b"amount=8.00&channel=wechat&reward_id=&message="),
        )
        .await;
    assert_eq!(form.status, StatusCode::SEE_OTHER, "{}", form.text());
    assert!(form.header("location").is_some_and(|l| l.starts_with("/pay/")));
}

#[tokio::test]
async fn a_backing_paid_one_second_after_the_deadline_is_refunded_in_full_and_never_counted() {
    let app = spawn_app().await;
    let owner = sign_in(&app, "owner", Role::User).await;
    let admin = sign_in(&app, "admin", Role::Admin).await;
    let backer = sign_in(&app, "backer", Role::User).await;
    let home = address(&app, &backer).await;
    let id = live_project(&app, &owner, &admin, project_body("图书角")).await;
    let (postcard, ..) = reward(&app, id, 0).await;
    for channel in ["wechat", "alipay"] {
        let created = back(
            &app,
            &backer,
            id,
            json!({"amount": "30.00", "channel": channel, "reward_id": postcard, "address_id": home}),
        )
        .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
        let no = created.json()["payment"]["order_no"].as_str().unwrap().to_string();
        app.sql(&format!(
            "UPDATE projects SET deadline = now() - interval '1 second' WHERE id = {id}"
        ))
        .await;
        assert_eq!(app.sandbox_pay(&no).await.status, StatusCode::OK);
        let refunded = eventually(Duration::from_secs(5), || async {
            app.count(&format!(
                "SELECT count(*) FROM payments WHERE order_no = '{no}' AND status = 'refunded' AND refunded_fen = 3000"
            ))
            .await
                == 1
        })
        .await;
        assert!(refunded, "refunded in full");
        assert_eq!(
            app.count(&format!("SELECT count(*) FROM refunds WHERE order_no = '{no}'"))
                .await,
            1
        );
        assert_eq!(
            app.count(&format!(
                "SELECT count(*) FROM backings WHERE order_no = '{no}' AND NOT counted AND unit = 'released'"
            ))
            .await,
            1,
            "never counted, its unit back"
        );
        let sandbox = app.state.sandbox.clone().unwrap();
        let at_provider = match channel {
            "wechat" => sandbox.wechat.refunded_fen(&no),
            _ => sandbox.alipay.refunded_fen(&no).unwrap_or(0),
        };
        assert_eq!(at_provider, 3000, "the provider's books agree");
        app.sql(&format!(
            "UPDATE projects SET deadline = now() + interval '1 day' WHERE id = {id}"
        ))
        .await;
    }
    app.state.crowdfunding.cache.changed_all();
    let p = project(&app, id).await;
    assert_eq!((p["raised_fen"].clone(), p["backers"].clone()), (json!(0), json!(0)));
    assert_eq!(reward(&app, id, 0).await, (postcard, 0, 0));
}

#[tokio::test]
async fn a_payment_landing_after_its_order_closed_is_refunded_and_its_unit_stays_free() {
    let app = spawn_app().await;
    let owner = sign_in(&app, "owner", Role::User).await;
    let admin = sign_in(&app, "admin", Role::Admin).await;
    let backer = sign_in(&app, "backer", Role::User).await;
    let home = address(&app, &backer).await;
    let id = live_project(&app, &owner, &admin, project_body("图书角")).await;
    let (postcard, ..) = reward(&app, id, 0).await;
    let created = back(
        &app,
        &backer,
        id,
        json!({"amount": "20.00", "channel": "alipay", "reward_id": postcard, "address_id": home}),
    )
    .await;
    let no = created.json()["payment"]["order_no"].as_str().unwrap().to_string();
    let engine = &app.state.engine;
    engine
        .close_order(&no, Channel::Alipay, CloseKind::Expired)
        .await
        .unwrap();
    assert_eq!(reward(&app, id, 0).await, (postcard, 0, 0));
    let sandbox = app.state.sandbox.clone().unwrap();
    sandbox.alipay.force_pay(&no).await.unwrap();
    let refunded = eventually(Duration::from_secs(5), || async {
        sandbox.alipay.refunded_fen(&no) == Some(2000)
    })
    .await;
    assert!(refunded, "the late payment went back in full");
    assert_eq!(
        reward(&app, id, 0).await,
        (postcard, 0, 0),
        "released once, never taken"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM backings WHERE order_no = '{no}' AND counted"
        ))
        .await,
        0
    );
}

#[tokio::test]
async fn an_idempotency_key_makes_one_backing_and_replays_its_answer() {
    let app = spawn_app().await;
    let owner = sign_in(&app, "owner", Role::User).await;
    let admin = sign_in(&app, "admin", Role::Admin).await;
    let backer = sign_in(&app, "backer", Role::User).await;
    let home = address(&app, &backer).await;
    let id = live_project(&app, &owner, &admin, project_body("图书角")).await;
    let (postcard, ..) = reward(&app, id, 0).await;
    let bearer = format!("Bearer {backer}");
    let body = json!({"amount": "20.00", "channel": "wechat", "reward_id": postcard, "address_id": home});
    let send = |body: Value| {
        let (app, bearer) = (&app, &bearer);
        async move {
            app.request(
                Method::POST,
                &format!("/api/projects/{id}/backings"),
                &[
                    ("authorization", bearer),
                    ("content-type", "application/json"),
                    ("idempotency-key", "back-once-0001"),
                ],
                Bytes::from(body.to_string()),
            )
            .await
        }
    };
    let first = send(body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    let again = futures_util::future::join_all((0..5).map(|_| send(body.clone()))).await;
    for answer in &again {
        match answer.status {
            StatusCode::CREATED => {
                assert_eq!(answer.header("idempotent-replayed"), Some("true"));
                assert_eq!(answer.text(), first.text());
            }
            other => panic!("{other}: {}", answer.text()),
        }
    }
    let other_body = send(json!({"amount": "21.00", "channel": "wechat"})).await;
    assert_eq!(other_body.error_code(), "idempotency_key_reused");
    assert_eq!(app.count("SELECT count(*) FROM backings").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 1);
    assert_eq!(reward(&app, id, 0).await, (postcard, 1, 0), "one unit held");
}
