//! The refund form in a real headless Chromium, driven over the DevTools protocol on a pipe:
//! the session cookie is set, the payment's admin page loads, the form is filled and sent,
//! `static/admin.js` posts it to the API as JSON with the cookie, and the reloaded page
//! shows the refund. Skipped (saying so) where Chromium is not installed, as in browser.rs.

use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::json;
use zhifu::account::Role;

use crate::admin::{call, sign_in};
use crate::devtools::{DevTools, chromium};
use crate::helpers::{eventually, scratch_dir, spawn_app};

#[tokio::test]
async fn the_refund_form_refunds_through_the_api_in_a_real_browser() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is required in CI (apt-get install chromium)"
        );
        eprintln!("SKIPPED: chromium is not installed (apt-get install chromium)");
        return;
    };
    let app = spawn_app().await;
    let admin = sign_in(&app, "admin1", Role::Admin).await;
    let no = app.donate("20.00", "wechat").await["order_no"]
        .as_str()
        .unwrap()
        .to_string();
    app.sandbox_pay(&no).await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            app.get(&format!("/api/payments/{no}")).await.json()["status"] == "paid"
        })
        .await
    );

    let origin = app.url("");
    let page = app.url(&format!("/admin/payments/{no}"));
    let profile = scratch_dir("chromium-admin");
    let token = admin.clone();
    let dir = profile.clone();
    let shown = tokio::task::spawn_blocking(move || {
        let mut tools = DevTools::start(browser, &dir);
        tools.send(
            None,
            "Storage.setCookies",
            json!({"cookies": [{"name": "zhifu_session", "value": token, "url": origin,
                                "httpOnly": true, "sameSite": "Strict"}]}),
        );
        let session = tools.open_page();
        tools.send(Some(&session), "Page.navigate", json!({"url": page}));
        let loaded = tools.wait_for(
            &session,
            "document.readyState === 'complete' && !!document.getElementById('refund-form')",
            Duration::from_secs(20),
        );
        assert!(loaded, "the admin page with its refund form did not load");
        tools.eval(
            &session,
            "window.confirm = () => true;
             document.getElementById('refund-amount').value = '5.00';
             document.getElementById('refund-reason').value = '浏览器退款';
             document.getElementById('refund-form').requestSubmit();
             true",
        );
        // The script reloads the page on success; the new page lists the refund.
        tools.wait_for(
            &session,
            "document.readyState === 'complete' && !!document.querySelector('#refunds tbody tr')",
            Duration::from_secs(20),
        );
        tools.eval(&session, "document.querySelector('#refunds tbody')?.textContent ?? ''")
    })
    .await
    .expect("the browser session ran");
    let _ = std::fs::remove_dir_all(&profile);

    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM refunds WHERE order_no = '{no}' AND amount_fen = 500 AND reason = '浏览器退款'"
        ))
        .await,
        1,
        "the form did not queue the refund (page showed {shown})"
    );
    let listed = shown.as_str().unwrap_or("");
    assert!(
        listed.contains("浏览器退款") && listed.contains("5.00"),
        "the page after the refund: {shown}"
    );
    let settled = eventually(Duration::from_secs(5), || async {
        let detail = call(&app, &admin, Method::GET, &format!("/api/admin/payments/{no}"), None).await;
        assert_eq!(detail.status, StatusCode::OK);
        detail.json()["payment"]["refunded"] == "5.00"
    })
    .await;
    assert!(settled, "the refund sent from the page never settled");
    app.shutdown().await;
}
