//! `GET /api/categories`: from the database, cached, refreshed by events from any instance.

use std::time::Duration;

use http::StatusCode;

use crate::helpers::{eventually, spawn_app, spawn_app_on};

#[tokio::test]
async fn a_fresh_database_lists_the_seeded_category_1() {
    let app = spawn_app().await;
    let answer = app.get("/api/categories").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let json = answer.json();
    let items = json["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], 1);
    assert!(items[0]["name"].as_str().is_some_and(|n| !n.is_empty()));
    assert!(items[0]["description"].is_string());
}

#[tokio::test]
async fn categories_are_ordered_and_disabled_ones_are_hidden() {
    let app = spawn_app().await;
    app.sql(
        "INSERT INTO categories (name, sort_order) VALUES ('second', 2), ('first', -1);
         INSERT INTO categories (name, enabled) VALUES ('hidden', false);",
    )
    .await;
    let json = app.get("/api/categories").await.json();
    let names: Vec<_> = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 3);
    assert_eq!(names[0], "first");
    assert_eq!(names[2], "second");
    assert!(!names.iter().any(|n| n == "hidden"));
}

#[tokio::test]
async fn a_change_announced_on_one_instance_refreshes_the_other() {
    let a = spawn_app().await;
    let b = spawn_app_on(a.db.clone(), |_| {}).await;
    assert_eq!(
        b.get("/api/categories").await.json()["items"].as_array().unwrap().len(),
        1
    );
    let connected = eventually(Duration::from_secs(5), || async { b.state.events.is_connected() }).await;
    assert!(connected);

    // Written "through" instance A's database connection and announced the way admin writes are.
    a.sql("BEGIN; INSERT INTO categories (name) VALUES ('灾害救助'); SELECT pg_notify('zhifu_events', '{\"kind\":\"categories\"}'); COMMIT;")
        .await;

    let fresh = eventually(Duration::from_secs(1), || async {
        b.get("/api/categories").await.text().contains("灾害救助")
    })
    .await;
    assert!(fresh, "instance B still served the old categories 1 s after the change");
}
