//! Long-polls of pages left behind give their connection back: in one headless Chromium, a
//! signed-in user walks through seven pages that each keep a request parked on the server
//! (the header's unread-count poll, and on pay pages of pending orders the status poll too),
//! then one more page loads at once. Chromium opens at most six connections to one server;
//! polls of earlier pages still open (in the back-forward cache, or restarted after their
//! abort) would keep that page waiting for one of them to end. Skipped without Chromium.

use std::time::Duration;

use zhifu::account::Role;

use crate::admin::sign_in;
use crate::devtools::{DevTools, chromium_or_skip};
use crate::helpers::{scratch_dir, spawn_app};

/// Far below the polls' 25 seconds: a page that waits for a parked poll to end misses it.
const LOAD: Duration = Duration::from_secs(15);

#[tokio::test]
async fn seven_long_polling_pages_left_behind_do_not_block_the_next_page() {
    let Some(browser) = chromium_or_skip() else { return };
    let app = spawn_app().await;
    let token = sign_in(&app, "walker", Role::User).await;
    let mut pending = Vec::new();
    for _ in 0..4 {
        pending.push(
            app.donate("1.00", "wechat").await["order_no"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let origin = app.url("");
    let origin = origin.trim_end_matches('/').to_string();
    let mut pages: Vec<String> = ["/me", "/notifications", "/projects"]
        .iter()
        .map(|p| format!("{origin}{p}"))
        .collect();
    pages.extend(pending.iter().map(|no| format!("{origin}/pay/{no}")));
    let last = format!("{origin}/mall");
    let profile = scratch_dir("chromium-parked-polls");
    let dir = profile.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut tools = DevTools::start(browser, &dir);
        let page = tools.open_page();
        tools.set_cookies(&origin, &[("zhifu_session", &token)]);
        for url in &pages {
            if !tools.load_within(&page, url, LOAD) {
                return Err(format!("{url} did not load"));
            }
            // The page's polls are in flight before it is left: the unread badge's starts at
            // load, a pay page's status poll too (its order is pending).
            let polling = "!!document.getElementById('unread-count') && (!document.getElementById('pay') || document.getElementById('pay').dataset.state === 'pending')";
            if tools.eval(&page, polling) != serde_json::json!(true) {
                return Err(format!("{url} does not long-poll"));
            }
        }
        let loaded = tools.load_within(&page, &last, LOAD);
        Ok((loaded, tools.eval(&page, "document.title")))
    })
    .await
    .expect("the browser session ran");
    let _ = std::fs::remove_dir_all(&profile);
    let (loaded, title) = outcome.expect("the seven pages loaded");
    assert!(loaded, "the eighth page waited behind the polls of pages left behind");
    assert!(title.as_str().is_some_and(|t| !t.is_empty()), "{title}");
    app.shutdown().await;
}
