//! The pay page of a purchase whose provider order is still being made, in a real headless
//! Chromium on a phone-size screen: it says the QR code is being prepared (no broken image),
//! and turns into the QR code by itself once the provider's answer is stored. Screenshots of
//! both go to `target/screenshots/pay-qr-*.png`. Skipped (saying so) without Chromium.

use std::time::Duration;

use serde_json::json;
use zhifu::pay::provider::Channel;
use zhifu::pay::sandbox::{Api, Fault};
use zhifu::probe::{self, Script};

use crate::devtools::{DevTools, chromium_or_skip};
use crate::helpers::scratch_dir;
use crate::purposes::probe_app;
use crate::screenshots::screenshot_dir;

#[tokio::test]
async fn a_pay_page_waiting_for_its_qr_code_shows_it_once_ready() {
    let Some(browser) = chromium_or_skip() else { return };
    let app = probe_app().await;
    let engine = &app.state.engine;
    let wechat = app.state.sandbox.clone().unwrap().wechat;
    // The create's provider call hangs and the request is dropped: committed, no QR code.
    wechat
        .faults()
        .push_on(Api::Create, Fault::Delay(Duration::from_secs(60)));
    let order_no = "00112233445566778899aabbccddeeff".to_string();
    let dropped = tokio::time::timeout(
        Duration::from_secs(2),
        probe::buy(
            engine,
            Channel::Wechat,
            1,
            500,
            &Script::default(),
            Some(order_no.clone()),
        ),
    )
    .await;
    assert!(dropped.is_err());

    let page = app.url(&format!("/pay/{order_no}"));
    let profile = scratch_dir("chromium-qr-preparing");
    let shots = screenshot_dir();
    std::fs::create_dir_all(&shots).unwrap();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let dir = profile.clone();
    let browser_side = tokio::task::spawn_blocking(move || {
        let mut tools = DevTools::start(browser, &dir);
        let session = tools.open_page();
        tools.viewport(&session, 390, 844, true);
        tools.navigate(&session, &page);
        let preparing = tools.eval(
            &session,
            "!!document.getElementById('qr-preparing') && !document.querySelector('#qr img')",
        );
        std::fs::write(shots.join("pay-qr-preparing-phone.png"), tools.screenshot(&session)).unwrap();
        let _ = ready_tx.send(());
        go_rx.recv().expect("the QR code was made");
        let shown = tools.wait_for(
            &session,
            "(() => { const i = document.querySelector('#qr img'); return !!i && i.complete && i.naturalWidth > 0; })()",
            Duration::from_secs(15),
        );
        std::fs::write(shots.join("pay-qr-ready-phone.png"), tools.screenshot(&session)).unwrap();
        (preparing, shown)
    });
    ready_rx.await.expect("the page loaded");
    // The idempotent retry makes the provider order under the same number and stores it.
    let made = probe::buy(
        engine,
        Channel::Wechat,
        1,
        500,
        &Script::default(),
        Some(order_no.clone()),
    )
    .await
    .unwrap();
    assert!(made.code_url.starts_with("weixin://"));
    go_tx.send(()).unwrap();
    let (preparing, shown) = browser_side.await.expect("the browser session ran");
    let _ = std::fs::remove_dir_all(&profile);
    assert_eq!(preparing, json!(true), "the page says the QR code is being prepared");
    assert!(shown, "the page never showed the QR code once it was ready");
    app.shutdown().await;
}
