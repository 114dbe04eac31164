//! The pay page in a real headless Chromium: its long-poll parks, the sandbox pays, and the
//! page's `#payment-status` turns `paid` in place (the DOM is dumped from the same page load).
//! Needs Debian's `chromium`; `.ci/run` installs it. Elsewhere the test says it was skipped.

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

#[tokio::test]
async fn the_pay_page_turns_paid_in_a_real_browser_without_a_reload() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is required in CI (apt-get install chromium)"
        );
        eprintln!("SKIPPED: chromium is not installed (apt-get install chromium)");
        return;
    };
    let app = spawn_app().await;
    let order = app.donate("12.34", "wechat").await;
    let no = order["order_no"].as_str().unwrap().to_string();
    let url = app.url(&format!("/pay/{no}"));
    let profile = scratch_dir("chromium");
    let run = {
        let profile = profile.clone();
        tokio::task::spawn_blocking(move || {
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
                    // Virtual time stops while a request is in flight, so the dump waits for
                    // the long-poll's answer and the script that handles it.
                    "--virtual-time-budget=20000",
                    "--dump-dom",
                ])
                .arg(format!("--user-data-dir={}", profile.display()))
                .arg(url)
                .output()
        })
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
