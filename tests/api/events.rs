//! The LISTEN/NOTIFY event bus.

use std::time::Duration;

use zhifu::store::events::{self, Event};

use crate::helpers::{eventually, spawn_app};

#[tokio::test]
async fn a_published_event_reaches_subscribers_only_after_commit() {
    let app = spawn_app().await;
    let mut rx = app.state.events.subscribe();
    assert!(eventually(Duration::from_secs(5), || async { app.state.events.is_connected() }).await);

    let mut client = app.state.store.client().await.unwrap();
    let tx = client.transaction().await.unwrap();
    events::publish(&tx, r#"{"kind":"test","n":1}"#).await.unwrap();
    // Not committed yet: nothing may arrive.
    let early = tokio::time::timeout(Duration::from_millis(200), async {
        loop {
            if let Ok(Event::Message(m)) = rx.recv().await {
                return m;
            }
        }
    })
    .await;
    assert!(early.is_err(), "an event arrived before commit: {early:?}");
    tx.commit().await.unwrap();

    let got = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            if let Ok(Event::Message(m)) = rx.recv().await {
                return m;
            }
        }
    })
    .await
    .expect("the event arrives within 2 s of commit");
    assert_eq!(&*got, r#"{"kind":"test","n":1}"#);
}
