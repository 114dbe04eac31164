//! A project's page in a real headless Chromium at phone size: after a sandbox payment the
//! open page shows the raised amount and the goal it reached without a reload (its script
//! polls the cached project, as the pay page polls its order); the back form leads a
//! signed-in backer to the pay page of a new backing. Screenshots land in the scratch folder.
//! Skipped (saying so) where Chromium is not installed.

use std::time::Duration;

use serde_json::json;
use zhifu::account::Role;

use crate::admin::sign_in;
use crate::backings::back_and_pay;
use crate::crowdfunding::{live_project, project_body};
use crate::devtools::{DevTools, chromium_or_skip};
use crate::helpers::{eventually, scratch_dir, spawn_app};

#[tokio::test]
async fn the_project_page_shows_a_reached_goal_after_a_payment_without_a_reload() {
    let Some(browser) = chromium_or_skip() else { return };
    let app = spawn_app().await;
    let owner = sign_in(&app, "owner", Role::User).await;
    let admin = sign_in(&app, "admin", Role::Admin).await;
    let backer = sign_in(&app, "backer", Role::User).await;
    let mut body = project_body("山区图书角");
    body["goals"] = json!([
        {"amount": "100.00", "title": "一百本书", "description": "第一期"},
        {"amount": "300.00", "title": "三百本书", "description": "第二期"}
    ]);
    let id = live_project(&app, &owner, &admin, body).await;

    let origin = app.url("");
    let page = app.url(&format!("/projects/{id}"));
    let profile = scratch_dir("chromium-project");
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (paid_tx, paid_rx) = std::sync::mpsc::channel::<()>();
    let (token, dir) = (backer.clone(), profile.clone());
    let browser_side = tokio::task::spawn_blocking(move || {
        let mut tools = DevTools::start(browser, &dir.join("profile"));
        tools.set_cookies(&origin, &[("zhifu_session", &token)]);
        let session = tools.open_page();
        tools.viewport(&session, 390, 844, true);
        tools.navigate(&session, &page);
        let before = tools.eval(
            &session,
            "window.sameDocument = true;
             [document.querySelectorAll('#goals .goal[data-reached=true]').length,
              document.getElementById('raised').textContent]",
        );
        let _ = ready_tx.send(());
        paid_rx.recv().expect("the backing was paid");
        let shown = tools.wait_for(
            &session,
            "window.sameDocument === true
               && document.querySelectorAll('#goals .goal[data-reached=true]').length === 1
               && document.getElementById('raised').textContent === '150.00'",
            Duration::from_secs(10),
        );
        let after = tools.screenshot(&session);
        // The back form: an amount, no reward, on to the pay page.
        tools.eval(
            &session,
            "document.getElementById('amount').value = '8.00';
             document.getElementById('back-form').requestSubmit(); true",
        );
        let to_pay = tools.wait_for(
            &session,
            "location.pathname.startsWith('/pay/') && document.readyState === 'complete'",
            Duration::from_secs(15),
        );
        let pay = tools.screenshot(&session);
        (before, shown, to_pay, after, pay)
    });
    ready_rx.await.expect("the page loaded");
    let payer = sign_in(&app, "payer", Role::User).await;
    back_and_pay(&app, &payer, id, json!({"amount": "150.00", "channel": "wechat"})).await;
    paid_tx.send(()).unwrap();
    let (before, shown, to_pay, after, pay) = browser_side.await.expect("the browser session ran");
    std::fs::write(profile.join("project-after-payment-390.png"), after).unwrap();
    std::fs::write(profile.join("project-pay-390.png"), pay).unwrap();
    eprintln!("screenshots in {}", profile.display());
    assert_eq!(before, json!([0, "0.00"]), "nothing reached at first");
    assert!(shown, "the page did not show the reached goal in place");
    assert!(to_pay, "the back form did not lead to the pay page");
    let made = eventually(Duration::from_secs(5), || async {
        app.count("SELECT count(*) FROM backings b JOIN users u ON u.id = b.user_id WHERE u.username = 'backer' AND b.amount_fen = 800")
            .await
            == 1
    })
    .await;
    assert!(made, "the form made one backing of 8.00");
    app.shutdown().await;
}
