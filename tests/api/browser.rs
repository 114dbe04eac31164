//! The pay page in a real headless Chromium: its long-poll parks, the sandbox pays, and the
//! page's `#payment-status` turns `paid` in place (the DOM is dumped from the same page load).
//! And the home page showing hostile donor names as text. Needs Debian's `chromium`;
//! `.ci/run` installs it. Elsewhere these tests say they were skipped.

use std::process::Command;
use std::time::Duration;

use crate::helpers::{eventually, scratch_dir, spawn_app};

fn chromium() -> Option<&'static str> {
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .into_iter()
    .find(|path| std::path::Path::new(path).exists())
}

/// Loads `url` in headless Chromium and returns the DOM after the page's scripts ran.
/// Virtual time stops while a request is in flight, so the dump waits for answers.
fn dump_dom(browser: &str, url: String, profile: std::path::PathBuf) -> std::io::Result<std::process::Output> {
    Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=20000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .output()
}

/// Chromium, or `None` outside CI when it is not installed (the caller skips).
fn browser_or_skip() -> Option<&'static str> {
    let found = chromium();
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is required in CI (apt-get install chromium)"
        );
        eprintln!("SKIPPED: chromium is not installed (apt-get install chromium)");
    }
    found
}

#[tokio::test]
async fn the_home_page_shows_a_hostile_donor_name_as_text() {
    let Some(browser) = browser_or_skip() else { return };
    let app = spawn_app().await;
    let order = app
        .post_json(
            "/api/donations",
            serde_json::json!({"amount": "9.99", "channel": "alipay", "category_id": 1,
                               "donor_name": "<img src=x onerror=alert(1)>", "message": "<script>alert(2)</script>"}),
        )
        .await
        .json();
    app.sandbox_pay(order["order_no"].as_str().unwrap()).await;
    let url = app.url("/");
    let profile = scratch_dir("chromium-home");
    let output = tokio::task::spawn_blocking({
        let profile = profile.clone();
        move || dump_dom(browser, url, profile)
    })
    .await
    .unwrap()
    .expect("chromium ran");
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(
        dom.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "the name is not shown as text: {dom}"
    );
    assert!(
        dom.contains("&lt;script&gt;alert(2)&lt;/script&gt;"),
        "the message is not shown as text"
    );
    assert!(!dom.contains("<img src=\"x\""), "the name became an element");
    assert!(dom.contains("9.99"), "the ranking or recent list did not load");
    let _ = std::fs::remove_dir_all(profile);
}

#[tokio::test]
async fn the_pay_page_turns_paid_in_a_real_browser_without_a_reload() {
    let Some(browser) = browser_or_skip() else { return };
    let app = spawn_app().await;
    let order = app.donate("12.34", "wechat").await;
    let no = order["order_no"].as_str().unwrap().to_string();
    let url = app.url(&format!("/pay/{no}"));
    let profile = scratch_dir("chromium");
    let run = {
        let profile = profile.clone();
        tokio::task::spawn_blocking(move || dump_dom(browser, url, profile))
    };
    let parked = eventually(Duration::from_secs(30), || async {
        app.state.engine.status.waiting_orders() == 1
    })
    .await;
    assert!(parked, "the page's long-poll never reached the server");
    let paid = app.sandbox_pay(&no).await;
    assert_eq!(paid.status, http::StatusCode::OK, "{}", paid.text());

    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("chromium finished within 60 s")
        .unwrap()
        .expect("chromium ran");
    let dom = String::from_utf8_lossy(&output.stdout);
    let status = dom
        .split("id=\"payment-status\"")
        .nth(1)
        .or_else(|| dom.split("<p id=\"payment-status\"").nth(1))
        .and_then(|rest| rest.split('>').next())
        .unwrap_or_else(|| panic!("no #payment-status in the dumped page: {dom}"));
    assert!(
        status.contains("data-status=\"paid\""),
        "status element after payment: {status}"
    );
    assert!(dom.contains("data-state=\"paid\""), "the paid view is not shown");
    let _ = std::fs::remove_dir_all(profile);
}
