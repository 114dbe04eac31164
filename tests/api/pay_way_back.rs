//! The pay page leads back to what was paid for: a backing's to its project with Projects
//! the current section, a mall order's to the buyer's order page with Mall current, a
//! donation's home as before, in both languages; a purpose registered by a module (the
//! probe) decides its own, which the core does not know; a donation's page asks the database
//! nothing once its order is in memory. And a mall order's pay page on a phone in headless
//! Chromium, pending and then paid in place (screenshots `pay-mall-*.png`).

use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;
use zhifu::account::Role;
use zhifu::pay::provider::Channel;
use zhifu::probe::{self, Script};

use crate::admin::sign_in;
use crate::backings::back;
use crate::crowdfunding::{live_project, project_body};
use crate::devtools::{DevTools, chromium_or_skip};
use crate::helpers::{TestApp, eventually, scratch_dir, spawn_app};
use crate::mall_browser::open;
use crate::mall_orders::{buyers, checkout, goods, order_no};
use crate::purposes::{buy, probe_app};
use crate::screenshots::screenshot_dir;

/// The pay page of `no` in `lang` (`zh` or `en`).
async fn pay_page(app: &TestApp, no: &str, lang: &str) -> String {
    let page = app
        .request(
            Method::GET,
            &format!("/pay/{no}"),
            &[("accept-language", lang)],
            Bytes::new(),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    page.text()
}

/// The hrefs and labels of the page's back links (one per final view), and the current
/// section of its header.
fn way_back(html: &str) -> (Vec<(String, String)>, String) {
    let links = html
        .split("back-home\" href=\"")
        .skip(1)
        .map(|rest| {
            let (href, rest) = rest.split_once('"').unwrap();
            let label = rest[1..].split_once("</a>").unwrap().0;
            (href.to_string(), label.to_string())
        })
        .collect();
    let current = html
        .split("aria-current=\"page\"")
        .next()
        .and_then(|before| before.rsplit("data-section=\"").next())
        .and_then(|rest| rest.split_once('"'))
        .map(|(section, _)| section.to_string())
        .unwrap_or_default();
    (links, current)
}

fn three(href: &str, paid: &str, closed: &str) -> Vec<(String, String)> {
    [paid, closed, paid]
        .into_iter()
        .map(|label| (href.to_string(), label.to_string()))
        .collect()
}

#[tokio::test]
async fn the_pay_page_leads_back_to_the_project_the_order_or_home() {
    let app = spawn_app().await;
    let donation = app.donate("3.00", "alipay").await["order_no"]
        .as_str()
        .unwrap()
        .to_string();
    let (links, current) = way_back(&pay_page(&app, &donation, "zh").await);
    assert_eq!(
        links,
        three("/", "返回首页", "重新捐赠"),
        "a donation's page is as before"
    );
    assert_eq!(current, "donate");
    let (links, _) = way_back(&pay_page(&app, &donation, "en").await);
    assert_eq!(links, three("/", "Back to the home page", "Donate again"));

    let owner = sign_in(&app, "owner", Role::User).await;
    let admin = sign_in(&app, "admin", Role::Admin).await;
    let backer = sign_in(&app, "backer", Role::User).await;
    let project = live_project(&app, &owner, &admin, project_body("图书角")).await;
    let backed = back(&app, &backer, project, json!({"amount": "5.00", "channel": "wechat"})).await;
    assert_eq!(backed.status, StatusCode::CREATED, "{}", backed.text());
    let backing = backed.json()["payment"]["order_no"].as_str().unwrap().to_string();
    let href = format!("/projects/{project}");
    let html = pay_page(&app, &backing, "zh").await;
    let (links, current) = way_back(&html);
    assert_eq!(links, three(&href, "返回项目", "返回项目"));
    assert_eq!(current, "projects", "Projects is the current section");
    assert!(html.contains("感谢您支持本项目！"));
    let (links, current) = way_back(&pay_page(&app, &backing, "en").await);
    assert_eq!(links, three(&href, "Back to the project", "Back to the project"));
    assert_eq!(current, "projects");

    let (_, _, sku) = goods(&app, "保温杯", "59.00", 5).await;
    let (_, token, address) = buyers(&app, "wb", 1).await.remove(0);
    let order = order_no(&checkout(&app, &token, sku, 1, address, None, "wechat").await);
    let href = format!("/mall/orders/{order}");
    let html = pay_page(&app, &order, "zh").await;
    let (links, current) = way_back(&html);
    assert_eq!(links, three(&href, "查看订单", "查看订单"));
    assert_eq!(current, "mall", "Mall is the current section");
    assert!(html.contains("感谢您的购买！"));
    let (links, current) = way_back(&pay_page(&app, &order, "en").await);
    assert_eq!(links, three(&href, "View your order", "View your order"));
    assert_eq!(current, "mall");
    app.shutdown().await;
}

#[tokio::test]
async fn a_purpose_registered_by_a_module_decides_where_its_pay_page_leads() {
    let app = probe_app().await;
    let no = buy(&app, Channel::Wechat, 1, &Script::default()).await;
    let href = probe::page(&no);
    // Pending (the snapshot the create seeded), then paid (a snapshot read again).
    let (links, current) = way_back(&pay_page(&app, &no, "zh").await);
    assert_eq!(links, three(&href, "查看订单", "查看订单"), "the probe's own page");
    assert_eq!(current, "mall");
    assert_eq!(app.sandbox_pay(&no).await.status, StatusCode::OK);
    let paid = || async { app.get(&format!("/api/payments/{no}")).await.json()["status"] == "paid" };
    assert!(eventually(Duration::from_secs(5), paid).await);
    let html = pay_page(&app, &no, "en").await;
    assert!(html.contains("data-status=\"paid\""), "{html}");
    let (links, current) = way_back(&html);
    assert_eq!(links, three(&href, "View your order", "View your order"));
    assert_eq!(current, "mall");
    app.shutdown().await;
}

#[tokio::test]
async fn a_donations_pay_page_asks_the_database_nothing_once_its_order_is_in_memory() {
    let app = spawn_app().await;
    let no = app.donate("2.00", "wechat").await["order_no"]
        .as_str()
        .unwrap()
        .to_string();
    let before = app.state.store.checkouts();
    for _ in 0..3 {
        let (links, _) = way_back(&pay_page(&app, &no, "zh").await);
        assert_eq!(links, three("/", "返回首页", "重新捐赠"));
    }
    assert_eq!(
        app.state.store.checkouts(),
        before,
        "a pay page render took a connection"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_mall_orders_pay_page_on_a_phone_turns_paid_and_leads_to_the_order() {
    let Some(browser) = chromium_or_skip() else { return };
    let app = spawn_app().await;
    let (_, _, sku) = goods(&app, "保温杯", "59.00", 5).await;
    let (_, token, address) = buyers(&app, "wp", 1).await.remove(0);
    let order = order_no(&checkout(&app, &token, sku, 1, address, None, "wechat").await);
    let origin = app.url("").trim_end_matches('/').to_string();
    let url = format!("{origin}/pay/{order}");
    let shots = screenshot_dir();
    std::fs::create_dir_all(&shots).unwrap();
    let profile = scratch_dir("chromium-pay-mall");
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (paid_tx, paid_rx) = std::sync::mpsc::channel::<()>();
    let dir = profile.clone();
    let browser_side = tokio::task::spawn_blocking(move || {
        let mut tools = DevTools::start(browser, &dir);
        let page = tools.open_page();
        tools.viewport(&page, 390, 844, true);
        open(&mut tools, &page, &origin, &url, "zh", Some(&token));
        let current = tools.eval(
            &page,
            "document.querySelector('nav.sections a[aria-current=page]').dataset.section",
        );
        std::fs::write(shots.join("pay-mall-pending-phone.png"), tools.screenshot(&page)).unwrap();
        let _ = ready_tx.send(());
        paid_rx.recv().expect("paid");
        let turned = tools.wait_for(
            &page,
            "document.getElementById('payment-status').dataset.status === 'paid'",
            std::time::Duration::from_secs(15),
        );
        let link = tools.eval(
            &page,
            "(() => { const a = [...document.querySelectorAll('.back-home')].find(e => e.offsetParent);
                      return a ? a.getAttribute('href') + ' ' + a.textContent.trim() : ''; })()",
        );
        std::fs::write(shots.join("pay-mall-paid-phone.png"), tools.screenshot(&page)).unwrap();
        (current, turned, link)
    });
    ready_rx.await.expect("the page loaded");
    assert_eq!(app.sandbox_pay(&order).await.status, StatusCode::OK);
    paid_tx.send(()).unwrap();
    let (current, turned, link) = browser_side.await.expect("the browser session ran");
    let _ = std::fs::remove_dir_all(&profile);
    assert_eq!(current, json!("mall"));
    assert!(turned, "the page turned paid in place");
    assert_eq!(link, json!(format!("/mall/orders/{order} 查看订单")));
    app.shutdown().await;
}
