//! A purchase holds one pooled connection at a time, never two: on a pool of one a purchase
//! commits, calls the provider, stores its QR code, closes on a provider failure and answers
//! a taken order number; no connection is held through the provider call; a purchase dropped
//! before `submit` writes nothing and its connection comes back to the pool out of its
//! transaction; and four times the pool's size in concurrent backings and mall checkouts, at
//! once on a pool of two, are all answered (never a pool timeout) with the units exact.

use std::time::Duration;

use http::StatusCode;
use serde_json::json;
use zhifu::account::Role;
use zhifu::pay::create::{Begun, Order};
use zhifu::pay::provider::Channel;
use zhifu::pay::sandbox::{Api, Fault};
use zhifu::probe::{self, Script};

use crate::admin::sign_in;
use crate::backings::back;
use crate::crowdfunding::{live_project, project_body};
use crate::helpers::{Answer, TestApp, eventually, spawn_app_with};
use crate::mall_orders::{buyers, checkout, goods};
use crate::purposes::available;

/// An app whose database pool has `pool_size` connections, with the probe's tables.
async fn probe_app_with_pool(pool_size: usize) -> TestApp {
    let app = spawn_app_with(|s| s.database.pool_size = pool_size).await;
    app.sql(probe::SCHEMA).await;
    app
}

/// Whether the connection runs outside any transaction: no transaction id assigned, and
/// its transaction began with this very statement.
async fn outside_any_transaction(client: &deadpool_postgres::Client) -> bool {
    let rows = client
        .simple_query("SELECT pg_current_xact_id_if_assigned() IS NULL AND now() = statement_timestamp()")
        .await
        .expect("the connection answers");
    rows.iter().any(|message| match message {
        tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0) == Some("t"),
        _ => false,
    })
}

fn order(order_no: Option<String>) -> Order<'static> {
    Order {
        purpose: probe::NAME,
        channel: Channel::Wechat,
        amount_fen: 2500,
        description: "探针 · probe",
        order_no,
    }
}

#[tokio::test]
async fn on_a_pool_of_one_a_purchase_commits_stores_its_qr_closes_on_failure_and_answers_a_taken_number() {
    let app = probe_app_with_pool(1).await;
    let engine = &app.state.engine;
    let made = probe::buy(engine, Channel::Wechat, 2, 500, &Script::default(), None)
        .await
        .expect("the purchase is made on the pool's only connection");
    assert!(!made.code_url.is_empty());
    let stored = format!(
        "SELECT count(*) FROM payments WHERE order_no = '{}' AND code_url IS NOT NULL",
        made.order_no
    );
    assert_eq!(app.count(&stored).await, 1, "its QR code is stored");

    // The provider fails: the payment is closed and the units released on that one pool.
    let wechat = app.state.sandbox.clone().unwrap().wechat;
    wechat.faults().push_on(Api::Create, Fault::ServerError);
    let failed = probe::buy(engine, Channel::Wechat, 3, 500, &Script::default(), None).await;
    assert_eq!(failed.unwrap_err().status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        app.count("SELECT count(*) FROM payment_events WHERE kind = 'create_failed'")
            .await,
        1,
        "closed at once, not left to the reconcile job"
    );
    assert_eq!(available(&app).await, 998, "only the first purchase holds units");

    // The same number again: the order as it stands, nothing reserved twice.
    let again = probe::buy(
        engine,
        Channel::Wechat,
        2,
        500,
        &Script::default(),
        Some(made.order_no.clone()),
    )
    .await
    .expect("a taken number answers its order");
    assert_eq!((again.order_no, again.code_url), (made.order_no, made.code_url));
    assert_eq!(available(&app).await, 998);
    assert!(outside_any_transaction(&app.state.store.client().await.unwrap()).await);
}

#[tokio::test]
async fn no_connection_is_held_through_the_provider_call() {
    let app = probe_app_with_pool(1).await;
    let wechat = app.state.sandbox.clone().unwrap().wechat;
    // Longer than the pool's wait (2 s in the tests), shorter than the provider timeout.
    wechat
        .faults()
        .push_on(Api::Create, Fault::Delay(Duration::from_secs(3)));
    let engine = app.state.engine.clone();
    let buying =
        tokio::spawn(async move { probe::buy(&engine, Channel::Wechat, 1, 500, &Script::default(), None).await });
    let calling = eventually(Duration::from_secs(5), || async {
        wechat.faults().calls(Api::Create) == 1
    })
    .await;
    assert!(calling, "the provider is being asked");
    let client = app
        .state
        .store
        .client()
        .await
        .expect("the pool's only connection is free while the provider answers");
    assert!(outside_any_transaction(&client).await);
    drop(client);
    let made = buying.await.unwrap().expect("the purchase completes");
    assert!(!made.code_url.is_empty());
}

#[tokio::test]
async fn a_purchase_dropped_before_submit_writes_nothing_and_its_connection_comes_back_clean() {
    let app = probe_app_with_pool(1).await;
    let engine = &app.state.engine;
    let store = &app.state.store;
    let reserve = "UPDATE probe_stock SET available = available - 5 WHERE id = 1";

    // Dropped after the module wrote (a module error, a client gone).
    let client = store.client().await.unwrap();
    let id = deadpool_postgres::Object::id(&client);
    let Begun::New(purchase) = engine.begin(client, order(None)).await.unwrap() else {
        panic!("a new number begins a new purchase");
    };
    let order_no = purchase.order_no().to_string();
    purchase.tx().execute(reserve, &[]).await.unwrap();
    drop(purchase);
    let client = store.client().await.expect("the connection comes back");
    assert_eq!(
        deadpool_postgres::Object::id(&client),
        id,
        "the same connection, rolled back and reused"
    );
    assert!(outside_any_transaction(&client).await, "never reused mid-transaction");
    let payment = format!("SELECT count(*) FROM payments WHERE order_no = '{order_no}'");
    assert_eq!(app.count(&payment).await, 0);
    assert_eq!(available(&app).await, 1000);

    // Dropped after a statement failed (the transaction is aborted).
    let Begun::New(purchase) = engine.begin(client, order(None)).await.unwrap() else {
        panic!("a new purchase");
    };
    purchase.tx().execute(reserve, &[]).await.unwrap();
    assert!(purchase.tx().execute("SELECT 1 / 0", &[]).await.is_err());
    drop(purchase);
    let client = store.client().await.expect("the connection comes back");
    assert!(outside_any_transaction(&client).await);

    // Rolled back on purpose: the same connection, at once, outside the transaction.
    let Begun::New(purchase) = engine.begin(client, order(None)).await.unwrap() else {
        panic!("a new purchase");
    };
    purchase.tx().execute(reserve, &[]).await.unwrap();
    let client = purchase.roll_back().await.unwrap();
    assert!(outside_any_transaction(&client).await);
    drop(client);
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM payment_events").await, 0);
    assert_eq!(available(&app).await, 1000);
    assert_eq!(app.state.sandbox.clone().unwrap().wechat.order_count(), 0);
}

/// Asserts every answer is `201` or the sold-out `409` named `sold_out`; the created ones.
fn created_or_sold_out(answers: &[Answer], sold_out: &str) -> usize {
    let mut created = 0;
    for answer in answers {
        match answer.status {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => assert_eq!(answer.error_code(), sold_out, "{}", answer.text()),
            other => panic!("{other}: {}", answer.text()),
        }
    }
    created
}

#[tokio::test]
async fn four_times_the_pool_in_backings_and_checkouts_at_once_are_all_answered_and_nothing_is_oversold() {
    const POOL: usize = 2;
    let app = spawn_app_with(|s| s.database.pool_size = POOL).await;
    let owner = sign_in(&app, "owner", Role::User).await;
    let admin = sign_in(&app, "admin", Role::Admin).await;
    // The project's first reward: five units that ship.
    let project = live_project(&app, &owner, &admin, project_body("图书角")).await;
    let postcard = app
        .count(&format!(
            "SELECT id FROM project_rewards WHERE project_id = {project} AND position = 0"
        ))
        .await;
    let (_, _, sku) = goods(&app, "限量马克杯", "5.00", 5).await;
    let backers = buyers(&app, "backer", 4 * POOL).await;
    let shoppers = buyers(&app, "shopper", 4 * POOL).await;

    let backings = backers.iter().enumerate().map(|(i, (_, token, address))| {
        let channel = if i % 2 == 0 { "wechat" } else { "alipay" };
        let body = json!({"amount": "20.00", "channel": channel, "reward_id": postcard, "address_id": address});
        let app = &app;
        async move { back(app, token, project, body).await }
    });
    let checkouts = shoppers.iter().enumerate().map(|(i, (_, token, address))| {
        let channel = if i % 2 == 0 { "alipay" } else { "wechat" };
        checkout(&app, token, sku, 1, *address, None, channel)
    });
    let (backed, bought) = tokio::join!(
        futures_util::future::join_all(backings),
        futures_util::future::join_all(checkouts)
    );
    assert_eq!(created_or_sold_out(&backed, "reward_sold_out"), 5, "exactly the units");
    assert_eq!(created_or_sold_out(&bought, "out_of_stock"), 5, "exactly the stock");

    let units = format!("SELECT reserved::bigint FROM project_rewards WHERE id = {postcard}");
    assert_eq!(app.count(&units).await, 5);
    assert_eq!(app.count("SELECT count(*) FROM backings").await, 5);
    assert_eq!(
        app.count(&format!("SELECT stock FROM mall_skus WHERE id = {sku}"))
            .await,
        0
    );
    assert_eq!(
        app.count("SELECT coalesce(sum(quantity), 0) FROM mall_order_items")
            .await,
        5
    );
    assert_eq!(
        app.count("SELECT count(*) FROM payments WHERE status = 'pending' AND code_url IS NOT NULL")
            .await,
        10,
        "every purchase made has its QR code"
    );
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 10, "nothing else");
}
