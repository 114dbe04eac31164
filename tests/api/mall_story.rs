//! The whole buyer story in a real headless Chromium at phone size: search → product → the
//! SKU picker → cart → checkout (address, coupon, payable) → the pay page → the sandbox's
//! payment → my orders shows it paid; the merchant ships it from `/merchant`; the buyer
//! confirms receipt. Screenshots of each step in `target/screenshots/mall-story-*`.

use std::time::Duration;

use serde_json::json;

use crate::devtools::{DevTools, chromium_or_skip};
use crate::helpers::{scratch_dir, spawn_app};
use crate::mall_browser::{open, screenshot_dir};
use crate::mall_pages::mall_in_use;

const WAIT: Duration = Duration::from_secs(10);

/// Clicks the first element `selector` matches; true when there was one.
fn click(tools: &mut DevTools, page: &str, selector: &str) -> bool {
    let js = format!(
        "(() => {{ const el = document.querySelector({}); if (!el) return false; el.click(); return true; }})()",
        json!(selector)
    );
    tools.eval(page, &js) == json!(true)
}

fn shot(tools: &mut DevTools, page: &str, name: &str) {
    let png = tools.screenshot(page);
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    std::fs::write(screenshot_dir().join(format!("mall-story-{name}.png")), png).expect("screenshot written");
}

#[tokio::test]
async fn a_buyer_finds_picks_pays_and_confirms_while_the_merchant_ships_in_a_real_browser() {
    let Some(browser) = chromium_or_skip() else { return };
    let app = spawn_app().await;
    let site = mall_in_use(&app, false).await;
    std::fs::create_dir_all(screenshot_dir()).expect("the screenshot folder");
    let profile = scratch_dir("chromium-mall-story");
    let phone_profile = scratch_dir("chromium-mall-story-phone");
    let origin = app.url("");
    let (buyer, merchant) = (site.buyer.clone(), site.merchant.clone());
    let order_no = tokio::task::spawn_blocking({
        let profile = profile.clone();
        let phone_profile = phone_profile.clone();
        move || {
            let mut tools = DevTools::start(browser, &profile);
            let page = tools.open_page();
            tools.viewport(&page, 390, 844, true);
            // Search, then the product.
            open(&mut tools, &page, &origin, &format!("{origin}/mall?q=%E7%A2%8E%E8%8A%B1"), "zh", Some(&buyer));
            assert_eq!(tools.eval(&page, "document.querySelectorAll('.product-card').length"), json!(1));
            shot(&mut tools, &page, "1-search");
            assert!(click(&mut tools, &page, ".product-card a.product-link"));
            assert!(tools.wait_for(&page, "!!document.getElementById('sku-form')", WAIT), "the product page");
            // The blue M, into the cart.
            let pick = |tools: &mut DevTools, value: &str| {
                tools.eval(
                    &page,
                    &format!("(() => {{ const i = [...document.querySelectorAll('#sku-form input[type=radio]')].find(i => i.value === '{value}'); i.click(); return true; }})()"),
                );
            };
            pick(&mut tools, "蓝");
            pick(&mut tools, "M");
            assert_eq!(tools.eval(&page, "document.getElementById('sku-price').textContent"), json!("¥119.00"));
            assert!(click(&mut tools, &page, "#add-to-cart"));
            assert!(tools.wait_for(&page, "!document.getElementById('view-cart').hidden", WAIT), "added to the cart");
            shot(&mut tools, &page, "2-product");
            // The cart: the red M and two mugs were there already.
            assert!(click(&mut tools, &page, "#view-cart"));
            assert!(tools.wait_for(&page, "document.querySelectorAll('#cart .line').length === 3", WAIT), "the cart");
            shot(&mut tools, &page, "3-cart");
            assert!(click(&mut tools, &page, ".checkout-link"));
            assert!(tools.wait_for(&page, "!!document.getElementById('checkout-form')", WAIT), "checkout");
            // The coupon (10 off from 100) changes what is paid: 129 + 119 + 2 × 19.90 − 10.
            tools.eval(&page, "(() => { const s = document.getElementById('coupon'); s.selectedIndex = 1; s.dispatchEvent(new Event('change')); return true; })()");
            assert_eq!(tools.eval(&page, "document.getElementById('payable').textContent"), json!("¥277.80"));
            assert_eq!(tools.eval(&page, "!!document.querySelector('input[name=address_id]:checked')"), json!(true));
            shot(&mut tools, &page, "4-checkout");
            assert!(click(&mut tools, &page, "#place-order"));
            assert!(tools.wait_for(&page, "location.pathname.startsWith('/pay/')", WAIT), "the pay page");
            let order_no = tools.eval(&page, "document.getElementById('pay').dataset.orderNo");
            assert_eq!(tools.eval(&page, "document.querySelector('.pay-amount').textContent.trim()"), json!("¥277.80"));
            shot(&mut tools, &page, "5-pay");
            // The payer's phone (another browser) presses the sandbox's pay button; the
            // buyer's page turns paid in place.
            let mut phone = DevTools::start(browser, &phone_profile);
            let phone_page = phone.open_page();
            phone.viewport(&phone_page, 390, 844, true);
            open(&mut phone, &phone_page, &origin, &format!("{origin}/pay/{}", order_no.as_str().unwrap()), "zh", None);
            assert!(click(&mut phone, &phone_page, "#simulate-payment"));
            let paid = tools.wait_for(&page, "document.getElementById('payment-status').dataset.status === 'paid'", WAIT);
            assert!(paid, "the pay page turns paid: {}", tools.eval(&page, "document.body.innerText"));
            shot(&mut tools, &page, "6-paid");
            tools.navigate(&page, &format!("{origin}/mall/orders"));
            assert!(tools.wait_for(&page, "document.querySelector('.order[data-status=paid]') !== null", WAIT), "my orders: paid");
            shot(&mut tools, &page, "7-orders");

            // The merchant ships it.
            open(&mut tools, &page, &origin, &format!("{origin}/merchant"), "zh", Some(&merchant));
            assert!(tools.wait_for(&page, "!!document.querySelector('.ship-form')", WAIT), "an order to ship");
            tools.eval(&page, "(() => { const f = document.querySelector('.ship-form'); f.querySelector('input[name=carrier]').value = '顺丰速运'; f.querySelector('input[name=tracking_no]').value = 'SF1234567890'; return true; })()");
            shot(&mut tools, &page, "8-merchant");
            assert!(click(&mut tools, &page, ".ship-form button[type=submit]"));
            assert!(tools.wait_for(&page, "!document.querySelector('.ship-form')", WAIT), "shipped: nothing left to ship");

            // The buyer confirms receipt.
            open(&mut tools, &page, &origin, &format!("{origin}/mall/orders"), "zh", Some(&buyer));
            assert!(tools.wait_for(&page, "document.querySelector('.order[data-status=shipped]') !== null", WAIT), "shipped");
            tools.eval(&page, "window.confirm = () => true");
            assert!(click(&mut tools, &page, ".confirm-order"));
            assert!(tools.wait_for(&page, "document.querySelector('.order[data-status=completed]') !== null", WAIT), "completed");
            shot(&mut tools, &page, "9-completed");
            order_no
        }
    })
    .await
    .expect("the browser session ran");
    let _ = std::fs::remove_dir_all(&profile);
    let _ = std::fs::remove_dir_all(&phone_profile);
    let no = order_no.as_str().expect("an order number").to_string();
    let kinds = app
        .count(&format!(
            "SELECT count(*) FROM mall_order_events WHERE order_no = '{no}' AND kind IN ('created', 'paid', 'shipped', 'completed')"
        ))
        .await;
    assert_eq!(kinds, 4, "the timeline holds every step");
    assert_eq!(
        app.count(&format!("SELECT payable_fen FROM mall_orders WHERE order_no = '{no}'"))
            .await,
        27780
    );
    app.shutdown().await;
}
