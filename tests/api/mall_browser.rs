//! The mall in a real headless Chromium: every mall page in both languages at phone size
//! (390 × 844) and on a desktop, no wider than the screen, screenshots in
//! `target/screenshots/mall-*`; the product page's SKU picker shows the price and stock of
//! the chosen specs; and the whole buyer story (in `mall_story.rs`).

use std::path::PathBuf;

use serde_json::json;

use crate::devtools::{DevTools, chromium_or_skip};
use crate::helpers::{scratch_dir, spawn_app};
use crate::mall_pages::mall_in_use;

/// `<target>/screenshots`, beside the test binary's `debug/`.
pub fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let target = exe
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "target"))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target")));
    target.join("screenshots")
}

/// Problems of the page's layout: wider than the screen, no header.
const LAYOUT_CHECK: &str = "(() => {
  const problems = [];
  const wide = Math.max(document.documentElement.scrollWidth, document.body.scrollWidth);
  if (wide > WIDTH + 1) problems.push('wider than the screen: ' + wide + ' > ' + WIDTH);
  if (!document.querySelector('header.site nav.sections a')) problems.push('no sections in the header');
  return problems.join('; ');
})()";

/// Opens `url` as `session` (a token or none) in `lang` and waits for it to load.
pub fn open(tools: &mut DevTools, page: &str, origin: &str, url: &str, lang: &str, token: Option<&str>) {
    let mut cookies = vec![("zhifu_lang", lang)];
    if let Some(token) = token {
        cookies.push(("zhifu_session", token));
    }
    tools.set_cookies(origin, &cookies);
    tools.navigate(page, url);
}

fn save(dir: &std::path::Path, name: &str, png: &[u8]) {
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("screenshot written");
}

#[tokio::test]
async fn the_mall_pages_in_both_languages_on_a_phone_and_a_desktop() {
    let Some(browser) = chromium_or_skip() else { return };
    let app = spawn_app().await;
    let site = mall_in_use(&app, false).await;
    let dress = site.dress["id"].as_i64().unwrap();
    let merchant = site.dress["merchant"]["id"].as_i64().unwrap();
    let visits: Vec<(&str, String, Option<String>)> = vec![
        ("mall", "/mall".into(), None),
        ("mall-search", "/mall?q=%E8%A3%99".into(), None),
        (
            "mall-product",
            format!("/mall/products/{dress}"),
            Some(site.buyer.clone()),
        ),
        ("mall-cart", "/mall/cart".into(), Some(site.buyer.clone())),
        (
            "mall-checkout",
            format!("/mall/checkout?merchant={merchant}"),
            Some(site.buyer.clone()),
        ),
        ("mall-orders", "/mall/orders".into(), Some(site.buyer.clone())),
        ("mall-coupons", "/mall/coupons".into(), Some(site.buyer.clone())),
        ("mall-favorites", "/mall/favorites".into(), Some(site.buyer.clone())),
        ("merchant", "/merchant".into(), Some(site.merchant.clone())),
        (
            "merchant-product-form",
            format!("/merchant/products/{dress}"),
            Some(site.merchant.clone()),
        ),
        ("admin-mall", "/admin/mall".into(), Some(site.admin.clone())),
        (
            "admin-mall-categories",
            "/admin/mall/categories".into(),
            Some(site.admin.clone()),
        ),
        (
            "admin-mall-coupons",
            "/admin/mall/coupons".into(),
            Some(site.admin.clone()),
        ),
    ];
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).expect("the screenshot folder");
    let profile = scratch_dir("chromium-mall-shots");
    let origin = app.url("");
    let taken = tokio::task::spawn_blocking({
        let profile = profile.clone();
        let dir = dir.clone();
        move || {
            let mut tools = DevTools::start(browser, &profile);
            let page = tools.open_page();
            let mut taken = 0;
            for lang in ["zh", "en"] {
                for (name, path, token) in &visits {
                    for (viewport, width, height, mobile) in [("phone", 390, 844, true), ("desktop", 1280, 800, false)]
                    {
                        tools.viewport(&page, width, height, mobile);
                        open(
                            &mut tools,
                            &page,
                            &origin,
                            &format!("{origin}{path}"),
                            lang,
                            token.as_deref(),
                        );
                        let problems = tools.eval(&page, &LAYOUT_CHECK.replace("WIDTH", &width.to_string()));
                        assert_eq!(problems, json!(""), "{name} ({lang}, {viewport})");
                        if *name == "admin-mall" {
                            let empty = tools.eval(&page, "document.querySelectorAll('.chart-empty').length");
                            assert_eq!(empty, json!(3), "no sales yet: each chart is a sentence");
                        }
                        save(&dir, &format!("{name}-{lang}-{viewport}"), &tools.screenshot(&page));
                        taken += 1;
                    }
                }
            }
            taken
        }
    })
    .await
    .expect("the browser session ran");
    let _ = std::fs::remove_dir_all(&profile);
    eprintln!("{taken} mall screenshots in {}", dir.display());
    app.shutdown().await;
}

#[tokio::test]
async fn the_sku_picker_shows_the_price_and_stock_of_the_chosen_specs() {
    let Some(browser) = chromium_or_skip() else { return };
    let app = spawn_app().await;
    let site = mall_in_use(&app, false).await;
    let dress = site.dress["id"].as_i64().unwrap();
    let blue = site.dress["skus"][2]["id"].as_i64().unwrap();
    let profile = scratch_dir("chromium-mall-picker");
    let (origin, url, token) = (
        app.url(""),
        app.url(&format!("/mall/products/{dress}")),
        site.buyer.clone(),
    );
    let seen = tokio::task::spawn_blocking({
        let profile = profile.clone();
        move || {
            let mut tools = DevTools::start(browser, &profile);
            let page = tools.open_page();
            open(&mut tools, &page, &origin, &url, "zh", Some(&token));
            let before = tools.eval(&page, "document.getElementById('sku-price').textContent");
            let click = |tools: &mut DevTools, value: &str| {
                tools.eval(
                    &page,
                    &format!("(() => {{ const i = [...document.querySelectorAll('#sku-form input[type=radio]')].find(i => i.value === '{value}'); i.click(); return true; }})()"),
                );
            };
            click(&mut tools, "蓝");
            click(&mut tools, "M");
            let blue = tools.eval(
                &page,
                "[document.getElementById('sku-price').textContent, document.getElementById('sku-stock').textContent, document.getElementById('sku-id').value]",
            );
            click(&mut tools, "红");
            click(&mut tools, "L");
            let sold_out = tools.eval(&page, "document.getElementById('sku-stock').textContent");
            (before, blue, sold_out)
        }
    })
    .await
    .expect("the browser session ran");
    let _ = std::fs::remove_dir_all(&profile);
    assert_eq!(seen.0, json!("¥119.00 – 129.00"), "before a pick: the range");
    assert_eq!(seen.1, json!(["¥119.00", "库存 8 件", blue.to_string()]));
    assert_eq!(seen.2, json!("已售罄"));
    app.shutdown().await;
}
