//! Every HTML page carries a Content-Security-Policy that allows no inline script, and hostile
//! donor names, messages and category names never come back as markup.

use http::StatusCode;

use crate::helpers::{TestApp, fresh_database, psql, spawn_app, spawn_app_on};

const HOSTILE_NAME: &str = "<script>alert('name')</script>";
const HOSTILE_MESSAGE: &str = "\"><img src=x onerror=alert(1)>";
const HOSTILE_CATEGORY: &str = "<svg onload=alert(2)>";

/// The directives of a CSP header by name.
fn directive<'a>(csp: &'a str, name: &str) -> Option<&'a str> {
    csp.split(';')
        .map(str::trim)
        .find(|d| d.split_whitespace().next() == Some(name))
}

/// Asserts the page's CSP governs scripts without `unsafe-inline`/`unsafe-eval`, and the page
/// has no inline script or event handler for it to block.
fn assert_strict_csp(path: &str, answer: &crate::helpers::Answer) {
    assert_eq!(answer.status, StatusCode::OK, "{path}");
    assert!(
        answer.header("content-type").unwrap_or("").starts_with("text/html"),
        "{path}"
    );
    let csp = answer
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{path}: no CSP"));
    let scripts = directive(csp, "script-src")
        .or_else(|| directive(csp, "default-src"))
        .unwrap_or_else(|| panic!("{path}: the CSP does not govern scripts: {csp}"));
    for unsafe_source in ["'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:"] {
        assert!(
            !scripts.split_whitespace().any(|s| s == unsafe_source),
            "{path}: {scripts}"
        );
    }
    assert!(
        directive(csp, "object-src").is_some_and(|d| d.contains("'none'")),
        "{csp}"
    );
    assert!(directive(csp, "frame-ancestors").is_some(), "{csp}");
    let html = answer.text();
    for (at, _) in html.match_indices("<script") {
        let tag_end = at + html[at..].find('>').expect("a closed tag");
        assert!(html[at..tag_end].contains(" src="), "{path}: an inline script");
    }
    // Event handler attributes inside tags (escaped text has no raw `<`, so it is skipped).
    for tag in html.split('<').skip(1) {
        let tag = tag.split('>').next().unwrap_or("").to_ascii_lowercase();
        let handler = tag.split_whitespace().skip(1).find(|attr| {
            attr.strip_prefix("on")
                .and_then(|rest| rest.split_once('='))
                .is_some_and(|(name, _)| !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase()))
        });
        assert!(handler.is_none(), "{path}: an event handler in <{tag}>");
        assert!(!tag.contains("javascript:"), "{path}: <{tag}>");
    }
}

async fn hostile_paid_donation(app: &TestApp) -> String {
    let answer = app
        .post_json(
            "/api/donations",
            serde_json::json!({"amount": "6.66", "channel": "wechat", "category_id": 1,
                               "donor_name": HOSTILE_NAME, "message": HOSTILE_MESSAGE}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    let no = answer.json()["order_no"].as_str().unwrap().to_string();
    assert_eq!(app.sandbox_pay(&no).await.status, StatusCode::OK);
    no
}

#[tokio::test]
async fn every_html_page_has_a_csp_without_inline_script() {
    let app = spawn_app().await;
    let no = app.donate("1.00", "alipay").await["order_no"]
        .as_str()
        .unwrap()
        .to_string();
    for path in ["/".to_string(), format!("/pay/{no}")] {
        assert_strict_csp(&path, &app.get(&path).await);
    }
    app.shutdown().await;
}

#[tokio::test]
async fn hostile_names_messages_and_categories_come_back_escaped() {
    let db = fresh_database().await;
    let rename = format!("UPDATE categories SET name = '{HOSTILE_CATEGORY}' WHERE id = 1");
    psql(&db, &rename).await;
    let app = spawn_app_on(db, |_| {}).await;
    let no = hostile_paid_donation(&app).await;

    for path in ["/".to_string(), format!("/pay/{no}")] {
        let page = app.get(&path).await;
        assert_strict_csp(&path, &page);
        let html = page.text();
        // The home page's chart is inline SVG of our own (its bars' tooltips work only
        // inline); a category's name in it is escaped like everywhere else.
        for raw in [
            HOSTILE_NAME,
            HOSTILE_MESSAGE,
            HOSTILE_CATEGORY,
            "<img src=x",
            "<svg onload",
        ] {
            assert!(!html.contains(raw), "{path} holds {raw:?} unescaped");
        }
        assert_eq!(
            html.matches("<svg").count(),
            html.matches("<svg width=\"100%\"").count(),
            "{path}: an <svg> that is not a chart"
        );
        assert!(
            html.contains("&#60;svg onload=alert(2)&#62;"),
            "{path}: the category is not shown escaped"
        );
    }

    // The chart is SVG (a document of its own when opened directly): escaped too.
    let chart = app.get("/api/stats/chart.svg").await;
    assert_eq!(chart.status, StatusCode::OK);
    assert!(!chart.text().contains("<svg onload"), "{}", chart.text());

    // Names reach the home page only as JSON, which a browser does not render as a page…
    let recent = app.get("/api/donations/recent").await;
    assert_eq!(recent.header("content-type"), Some("application/json"));
    assert_eq!(recent.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(recent.json()["items"][0]["donor"], HOSTILE_NAME);
    assert_eq!(recent.json()["items"][0]["message"], HOSTILE_MESSAGE);
    // …and the page scripts put them into the page as text only.
    for script in ["/static/home.js", "/static/pay.js"] {
        let js = app.get(script).await.text();
        assert!(js.contains("textContent") || script.ends_with("pay.js"), "{script}");
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!js.contains(sink), "{script} uses {sink}");
        }
    }
    app.shutdown().await;
}
