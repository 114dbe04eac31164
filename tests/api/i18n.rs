//! Every page in both languages: Chinese by default, English when the browser prefers it or
//! the visitor picked it; no page shows an unfilled `{hole}`, an English page shows no
//! Chinese but the data (here all ASCII) and the switch's 中文, a Chinese page shows no
//! message of the English catalog. The JSON API stays English whatever the language.

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;
use zhifu::account::Role;
use zhifu::ui::Lang;
use zhifu::ui::i18n::entries;

use crate::admin::{PASSWORD, call, sign_in};
use crate::helpers::{Answer, TestApp, eventually, spawn_app};

fn has_cjk(c: char) -> bool {
    ('\u{2E80}'..='\u{9FFF}').contains(&c)
        || ('\u{3000}'..='\u{303F}').contains(&c)
        || ('\u{FF00}'..='\u{FFEF}').contains(&c)
}

/// What a page shows: its text and the attributes people read (titles, labels, hints),
/// not URLs, ids or classes.
fn shown(html: &str) -> String {
    const READ: &[&str] = &[
        "title",
        "alt",
        "placeholder",
        "aria-label",
        "data-confirm",
        "data-empty",
        "data-anonymous",
    ];
    // Raw data (provider bodies, JSON, order numbers) is shown as it is, in <pre> or <code>.
    let mut html = html.to_string();
    for element in ["pre", "code"] {
        while let Some(start) = html.find(&format!("<{element}")) {
            let end = html[start..]
                .find(&format!("</{element}>"))
                .map_or(html.len(), |e| start + e + element.len() + 3);
            html.replace_range(start..end, " ");
        }
    }
    let mut out = String::new();
    let mut rest = html.as_str();
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        out.push(' ');
        let Some(close) = rest[open..].find('>') else { break };
        let tag = &rest[open + 1..open + close];
        for (at, _) in tag.match_indices("=\"") {
            let name = tag[..at].rsplit(' ').next().unwrap_or("");
            let value = tag[at + 2..].split('"').next().unwrap_or("");
            if READ.contains(&name) || name.starts_with("data-label") {
                out.push_str(value);
                out.push(' ');
            }
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

/// Checks one page in `lang` (see the file's comment).
fn check(path: &str, lang: Lang, answer: &Answer, english_only: &[String]) {
    let page = answer.text();
    let html = shown(&page);
    assert_eq!(answer.header("content-language"), Some(lang.tag()), "{path}");
    assert!(
        answer.header("vary").is_some_and(|v| v.contains("Accept-Language")),
        "{path}: the answer must vary with the language"
    );
    assert!(
        page.contains(&format!("<html lang=\"{}\">", lang.tag())),
        "{path}: <html lang>"
    );
    for (at, _) in html.match_indices('{') {
        let rest = &html[at + 1..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        assert!(
            name.is_empty() || !rest[name.len()..].starts_with('}'),
            "{path} ({lang:?}): an unfilled {{{name}}}"
        );
    }
    match lang {
        Lang::En => {
            let text = html.replace("中文", "");
            let found: String = text.chars().filter(|c| has_cjk(*c)).take(20).collect();
            assert!(found.is_empty(), "{path}: Chinese on an English page: {found:?}");
        }
        Lang::Zh => {
            for message in english_only {
                assert!(
                    !html.contains(message.as_str()),
                    "{path}: the English {message:?} on a Chinese page"
                );
            }
        }
    }
}

/// English messages long enough to be told apart that no Chinese message contains.
fn english_only() -> Vec<String> {
    let zh: Vec<String> = entries(Lang::Zh.catalog()).into_iter().map(|(_, v)| v).collect();
    entries(Lang::En.catalog())
        .into_iter()
        .map(|(_, v)| v)
        .filter(|v| v.chars().count() >= 6 && !v.contains('{') && !zh.iter().any(|z| z.contains(v.as_str())))
        .collect()
}

async fn get_in(app: &TestApp, path: &str, lang: Lang, session: Option<&str>) -> Answer {
    let mut cookie = format!("zhifu_lang={}", lang.code());
    if let Some(token) = session {
        cookie.push_str(&format!("; zhifu_session={token}"));
    }
    app.request(
        Method::GET,
        path,
        &[("cookie", &cookie), ("accept", "text/html")],
        Bytes::new(),
    )
    .await
}

#[tokio::test]
async fn every_page_renders_in_both_languages_with_nothing_untranslated() {
    let app = spawn_app().await;
    // All data in ASCII, so that any Chinese on an English page comes from a template.
    app.sql("UPDATE categories SET name = 'General', description = 'Everyday work' WHERE id = 1")
        .await;
    app.state.catalog.invalidate();
    let admin = sign_in(&app, "admin1", Role::Admin).await;
    let user = sign_in(&app, "donor1", Role::User).await;
    let body =
        json!({"amount": "30.00", "channel": "alipay", "category_id": 1, "donor_name": "Lin", "message": "hello"});
    let paid = call(&app, &user, Method::POST, "/api/donations", Some(body))
        .await
        .json()["order_no"]
        .as_str()
        .unwrap()
        .to_string();
    app.sandbox_pay(&paid).await;
    assert!(
        eventually(std::time::Duration::from_secs(5), || async {
            app.get(&format!("/api/payments/{paid}")).await.json()["status"] == "paid"
        })
        .await
    );
    let refund = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/admin/payments/{paid}/refund"),
        Some(json!({"amount": "1.00", "reason": "test"})),
    )
    .await;
    assert_eq!(refund.status, StatusCode::CREATED, "{}", refund.text());
    let pending = app
        .post_json(
            "/api/donations",
            json!({"amount": "5.00", "channel": "wechat", "category_id": 1, "donor_name": "Wu"}),
        )
        .await
        .json()["order_no"]
        .as_str()
        .unwrap()
        .to_string();
    app.state.rankings.invalidate();
    // A live project and a draft, in ASCII.
    let mut project = crate::crowdfunding::project_body("Library corner");
    project["summary"] = json!("Books for a village school");
    project["story"] = json!("Line one\nLine two");
    project["goals"] =
        json!([{"amount": "100.00", "title": "First shelf"}, {"amount": "300.00", "title": "Second shelf"}]);
    project["rewards"] = json!([{"title": "Postcard", "min_amount": "20.00", "quantity": 5, "ships": true}]);
    let live = crate::crowdfunding::live_project(&app, &user, &admin, project.clone()).await;
    let draft = crate::crowdfunding::create(&app, &user, project).await["id"]
        .as_i64()
        .unwrap();
    // The community, in ASCII too: a board, a post with a comment, an anonymous post.
    app.sql("UPDATE boards SET name = 'General', description = 'Anything' WHERE id = 1")
        .await;
    app.state.community.boards_changed();
    let user_id = app.count("SELECT id FROM users WHERE username = 'donor1'").await;
    let post = call(
        &app,
        &user,
        Method::POST,
        "/api/community/posts",
        Some(json!({"board_id": 1, "title": "Hello", "content": "First post"})),
    )
    .await;
    assert_eq!(post.status, StatusCode::CREATED, "{}", post.text());
    let post_id = post.json()["id"].as_i64().unwrap();
    let anonymous = call(
        &app,
        &admin,
        Method::POST,
        "/api/community/posts",
        Some(json!({"board_id": 1, "title": "Secret", "content": "Quiet", "anonymous": true})),
    )
    .await;
    assert_eq!(anonymous.status, StatusCode::CREATED, "{}", anonymous.text());
    let comment = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/community/posts/{post_id}/comments"),
        Some(json!({"content": "Nice"})),
    )
    .await;
    assert_eq!(comment.status, StatusCode::CREATED, "{}", comment.text());
    let report = call(
        &app,
        &user,
        Method::POST,
        "/api/community/reports",
        Some(json!({"target": "comment", "id": comment.json()["id"], "reason": "Rude"})),
    )
    .await;
    assert_eq!(report.status, StatusCode::CREATED, "{}", report.text());

    let english_only = english_only();
    assert!(english_only.len() > 100, "{english_only:?}");
    let pages: Vec<(String, Option<&str>)> = vec![
        ("/".into(), None),
        (format!("/pay/{pending}"), None),
        (format!("/pay/{paid}"), None),
        ("/login".into(), None),
        ("/no-such-page".into(), None),
        ("/pay/NO_SUCH_ORDER".into(), None),
        ("/me".into(), Some(user.as_str())),
        ("/me".into(), Some(admin.as_str())),
        ("/admin".into(), Some(admin.as_str())),
        ("/admin/payments".into(), Some(admin.as_str())),
        (
            "/admin/payments?status=paid&channel=alipay".into(),
            Some(admin.as_str()),
        ),
        (format!("/admin/payments/{paid}"), Some(admin.as_str())),
        ("/admin/reconcile?pending_minutes=1".into(), Some(admin.as_str())),
        ("/admin/categories".into(), Some(admin.as_str())),
        ("/admin/settings".into(), Some(admin.as_str())),
        ("/admin/callbacks".into(), Some(admin.as_str())),
        ("/admin/users".into(), Some(admin.as_str())),
        ("/admin/audit".into(), Some(admin.as_str())),
        ("/admin/payments?status=lost".into(), Some(admin.as_str())),
        ("/admin".into(), Some(user.as_str())),
        ("/auth/verify-email?token=not-a-token".into(), None),
        ("/projects".into(), None),
        ("/projects?status=failed".into(), None),
        (format!("/projects/{live}"), None),
        (format!("/projects/{live}"), Some(user.as_str())),
        ("/projects/mine".into(), Some(user.as_str())),
        ("/projects/new".into(), Some(user.as_str())),
        (format!("/projects/{draft}/edit"), Some(user.as_str())),
        ("/admin/projects".into(), Some(admin.as_str())),
        ("/community".into(), None),
        ("/community?sort=new".into(), Some(user.as_str())),
        ("/community?sort=top&range=day".into(), None),
        ("/community?sort=feed".into(), Some(user.as_str())),
        ("/community?q=Hello".into(), None),
        ("/community?q=nothing".into(), None),
        (format!("/community/posts/{post_id}"), None),
        (format!("/community/posts/{post_id}"), Some(user.as_str())),
        (format!("/community/posts/{post_id}"), Some(admin.as_str())),
        ("/community/new".into(), Some(user.as_str())),
        (format!("/users/{user_id}"), None),
        (format!("/users/{user_id}"), Some(admin.as_str())),
        ("/me/notifications".into(), Some(user.as_str())),
        ("/admin/community".into(), Some(admin.as_str())),
        ("/admin/community?status=all".into(), Some(admin.as_str())),
        ("/community/posts/999999".into(), None),
    ];
    for lang in Lang::ALL {
        for (path, session) in &pages {
            let answer = get_in(&app, path, lang, *session).await;
            let expected = match path.as_str() {
                "/no-such-page"
                | "/pay/NO_SUCH_ORDER"
                | "/auth/verify-email?token=not-a-token"
                | "/community/posts/999999" => StatusCode::NOT_FOUND,
                "/admin/payments?status=lost" => StatusCode::UNPROCESSABLE_ENTITY,
                "/admin" if *session == Some(user.as_str()) => StatusCode::FORBIDDEN,
                _ => StatusCode::OK,
            };
            assert_eq!(answer.status, expected, "{path} ({lang:?}): {}", answer.text());
            assert!(
                answer.header("content-type").unwrap().starts_with("text/html"),
                "{path}"
            );
            check(path, lang, &answer, &english_only);
        }
        // A wrong password: the sign-in page again, in the same language.
        let form = format!("username=admin1&password=wrong+{}&next=%2Fadmin", PASSWORD.len());
        let cookie = format!("zhifu_lang={}", lang.code());
        let wrong = app
            .request(
                Method::POST,
                "/login",
                &[
                    ("cookie", &cookie),
                    ("content-type", "application/x-www-form-urlencoded"),
                ],
                Bytes::from(form),
            )
            .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        check("POST /login", lang, &wrong, &english_only);
        let message = match lang {
            Lang::Zh => "用户名或密码不正确。",
            Lang::En => "Wrong username or password.",
        };
        assert!(wrong.text().contains(message), "{}", wrong.text());
        assert!(wrong.text().contains("value=\"admin1\""), "the username is kept");
        assert!(
            wrong.text().contains("name=\"next\" value=\"/admin\""),
            "and where to go next"
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn the_language_follows_the_browser_then_the_visitors_pick() {
    let app = spawn_app().await;
    let page = |headers: Vec<(&'static str, &'static str)>| {
        let app = &app;
        async move { app.request(Method::GET, "/login", &headers, Bytes::new()).await }
    };
    assert_eq!(page(vec![]).await.header("content-language"), Some("zh-CN"));
    let english = page(vec![("accept-language", "en-US,en;q=0.9,zh;q=0.5")]).await;
    assert_eq!(english.header("content-language"), Some("en"));
    assert!(english.text().contains("Sign in"));
    let picked = page(vec![("accept-language", "en-US"), ("cookie", "zhifu_lang=zh")]).await;
    assert_eq!(picked.header("content-language"), Some("zh-CN"), "the pick wins");

    // The switch keeps the pick for a year and goes back to the page it was on.
    let switch = app.get("/lang/en?next=%2Fme%3Fpage%3D2").await;
    assert_eq!(switch.status, StatusCode::SEE_OTHER);
    assert_eq!(switch.header("location"), Some("/me?page=2"));
    let cookie = switch.header("set-cookie").unwrap();
    assert!(
        cookie.starts_with("zhifu_lang=en;") && cookie.contains("Max-Age=31536000"),
        "{cookie}"
    );
    let away = app.get("/lang/en?next=https%3A%2F%2Fevil.example%2F").await;
    assert_eq!(away.header("location"), Some("/"), "never to another site");
    assert_eq!(app.get("/lang/fr").await.status, StatusCode::NOT_FOUND);

    // The JSON API keeps its codes and English messages.
    let error = app
        .request(
            Method::GET,
            "/api/payments/NO_SUCH_ORDER",
            &[("accept-language", "zh-CN"), ("cookie", "zhifu_lang=zh")],
            Bytes::new(),
        )
        .await;
    assert_eq!(error.status, StatusCode::NOT_FOUND);
    assert_eq!(error.json()["error"]["message"], "not found");
    app.shutdown().await;
}

#[tokio::test]
async fn every_mall_page_renders_in_both_languages_with_nothing_untranslated() {
    let app = spawn_app().await;
    // All data in ASCII, so that any Chinese on an English page comes from a template.
    let site = crate::mall_pages::mall_in_use(&app, true).await;
    let dress = site.dress["id"].as_i64().unwrap();
    let sku = site.dress["skus"][0]["id"].as_i64().unwrap();
    let merchant = site.dress["merchant"]["id"].as_i64().unwrap();
    let english_only = english_only();
    let pages: Vec<(String, &str)> = vec![
        ("/mall".into(), site.buyer.as_str()),
        ("/mall?q=dress&sort=price_asc".into(), site.buyer.as_str()),
        ("/mall?q=nothing+like+it".into(), site.buyer.as_str()),
        (format!("/mall/products/{dress}"), site.buyer.as_str()),
        ("/mall/cart".into(), site.buyer.as_str()),
        (format!("/mall/checkout?merchant={merchant}"), site.buyer.as_str()),
        (format!("/mall/checkout?sku={sku}&quantity=1"), site.buyer.as_str()),
        ("/mall/checkout".into(), site.buyer.as_str()),
        ("/mall/orders".into(), site.buyer.as_str()),
        ("/mall/coupons".into(), site.buyer.as_str()),
        ("/mall/favorites".into(), site.buyer.as_str()),
        ("/merchant".into(), site.merchant.as_str()),
        ("/merchant".into(), site.seller.as_str()),
        ("/merchant/products/new".into(), site.merchant.as_str()),
        ("/merchant/products/new".into(), site.seller.as_str()),
        (format!("/merchant/products/{dress}"), site.merchant.as_str()),
        ("/admin/mall".into(), site.admin.as_str()),
        ("/admin/mall/categories".into(), site.admin.as_str()),
        ("/admin/mall/coupons".into(), site.admin.as_str()),
    ];
    for lang in Lang::ALL {
        for (path, session) in &pages {
            let answer = get_in(&app, path, lang, Some(session)).await;
            assert_eq!(answer.status, StatusCode::OK, "{path} ({lang:?}): {}", answer.text());
            check(path, lang, &answer, &english_only);
        }
        let missing = get_in(&app, "/mall/products/999999", lang, None).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        check("/mall/products/999999", lang, &missing, &english_only);
    }
    app.shutdown().await;
}

/// The text of the footer's line (`#site-footer`) of `html`.
fn footer_line(html: &str) -> &str {
    let start = html.find("id=\"site-footer\">").expect("a footer line") + "id=\"site-footer\">".len();
    let end = html[start..].find("</p>").expect("its end") + start;
    &html[start..end]
}

#[tokio::test]
async fn each_section_has_a_footer_that_fits_it_and_only_donation_pages_speak_of_donations() {
    let app = spawn_app().await;
    let merchant = sign_in(&app, "footer_shop", Role::Merchant).await;
    let admin = sign_in(&app, "footer_admin", Role::Admin).await;
    for lang in Lang::ALL {
        let site = &lang.catalog().site;
        for (path, session, footer) in [
            ("/", None, site.footer),
            ("/mall", None, site.footer_mall),
            ("/mall/cart", Some(merchant.as_str()), site.footer_mall),
            ("/merchant", Some(merchant.as_str()), site.footer_mall),
            ("/projects", None, site.footer_projects),
            ("/community", None, site.footer_community),
            ("/me", Some(merchant.as_str()), site.footer_site),
            ("/login", None, site.footer_site),
            ("/admin", Some(admin.as_str()), site.footer_site),
        ] {
            let page = get_in(&app, path, lang, session).await;
            assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.text());
            let html = page.text();
            assert_eq!(footer_line(&html), footer, "{path} in {}", lang.code());
            if path != "/" {
                assert!(
                    !html.contains(site.footer),
                    "{path} in {} speaks of donations",
                    lang.code()
                );
            }
        }
    }
    let zh = &Lang::Zh.catalog().site;
    assert!(!zh.footer_mall.contains("捐赠") && !Lang::En.catalog().site.footer_mall.contains("donation"));
    app.shutdown().await;
}
