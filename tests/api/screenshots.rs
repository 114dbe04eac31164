//! Every page in both languages, at phone size (390 × 844) and on a desktop (1280 × 800), in
//! one headless Chromium: a screenshot of each goes to `target/screenshots/` (for people to
//! look at), and what can be checked in the browser is: no page is wider than the phone,
//! the QR code sits in the middle of its card, the back link is a button, the WeChat button
//! is as wide as the one above it, admin tables turn into cards on the phone, a wrong
//! password comes back as the sign-in page in its language, charts have bars with tooltips
//! or, on a fresh install, a sentence.

use std::path::PathBuf;
use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::json;
use zhifu::account::Role;

use crate::admin::{call, sign_in};
use crate::devtools::{DevTools, chromium_or_skip};
use crate::helpers::{TestApp, eventually, scratch_dir, spawn_app};

/// Where the screenshots go: `<target>/screenshots`, beside the test binary's `debug/`.
pub fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let target = exe
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "target"))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target")));
    target.join("screenshots")
}

async fn pay(app: &TestApp, amount: &str, channel: &str, category: i64, name: &str, token: Option<&str>) -> String {
    let body = json!({"amount": amount, "channel": channel, "category_id": category,
                      "donor_name": name, "message": format!("{name} 的留言")});
    let answer = match token {
        Some(token) => call(app, token, Method::POST, "/api/donations", Some(body)).await,
        None => app.post_json("/api/donations", body).await,
    };
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    let no = answer.json()["order_no"].as_str().unwrap().to_string();
    app.sandbox_pay(&no).await;
    let paid = eventually(Duration::from_secs(10), || async {
        app.get(&format!("/api/payments/{no}")).await.json()["status"] == "paid"
    })
    .await;
    assert!(paid, "{no} was not paid");
    no
}

/// What a site in use has: causes, donations over three weeks on both channels, a refund,
/// an order pending for an hour, a signed-in donor and an admin.
struct Site {
    admin: String,
    user: String,
    pending: String,
    paid: String,
    refunded: String,
    /// A post with images and comments.
    post: i64,
    user_id: i64,
}

async fn site_in_use(app: &TestApp) -> Site {
    let admin = sign_in(app, "admin1", Role::Admin).await;
    let user = sign_in(app, "donor1", Role::User).await;
    for name in ["助学计划", "灾区重建 · 2024 年夏季洪水"] {
        let created = call(
            app,
            &admin,
            Method::POST,
            "/api/admin/categories",
            Some(json!({"name": name})),
        )
        .await;
        assert_eq!(created.status, StatusCode::CREATED);
    }
    let mut paid = String::new();
    for (i, (amount, channel, category)) in [
        ("50.00", "wechat", 1),
        ("200.00", "alipay", 2),
        ("18.88", "wechat", 3),
        ("1000.00", "alipay", 1),
        ("66.00", "wechat", 2),
        ("5.00", "alipay", 3),
        ("300.00", "wechat", 1),
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("捐赠者{i}");
        let no = pay(app, amount, channel, category, &name, None).await;
        let days = (i as i64) * 3;
        app.sql(&format!(
            "UPDATE payments SET paid_at = paid_at - interval '{days} days', created_at = created_at - interval '{days} days'
              WHERE order_no = '{no}';
             UPDATE donation_totals SET day = day - {days} WHERE donor_key = 'n:{name}';"
        ))
        .await;
        paid = no;
    }
    let refunded = pay(app, "88.00", "alipay", 2, "<b>退款的人</b>", Some(&user)).await;
    let refund = call(
        app,
        &admin,
        Method::POST,
        &format!("/api/admin/payments/{refunded}/refund"),
        Some(json!({"amount": "20.00", "reason": "捐错了分类"})),
    )
    .await;
    assert_eq!(refund.status, StatusCode::CREATED, "{}", refund.text());
    let pending = app.donate("12.00", "wechat").await["order_no"]
        .as_str()
        .unwrap()
        .to_string();
    app.sql(&format!(
        "UPDATE payments SET created_at = now() - interval '1 hour' WHERE order_no = '{pending}'"
    ))
    .await;
    app.state.rankings.invalidate();
    let (post, user_id) = community_in_use(app, &admin, &user).await;
    Site {
        admin,
        user,
        pending,
        paid,
        refunded,
        post,
        user_id,
    }
}

/// A forum in use: a second board, posts (one pinned, one anonymous, one with images), a
/// thread of comments, likes, a report; returns the post with comments and the user's id.
async fn community_in_use(app: &TestApp, admin: &str, user: &str) -> (i64, i64) {
    let user_id = app.count("SELECT id FROM users WHERE username = 'donor1'").await;
    let board = call(
        app,
        admin,
        Method::POST,
        "/api/admin/boards",
        Some(json!({"name": "二手交易", "description": "闲置物品转让"})),
    )
    .await;
    assert_eq!(board.status, StatusCode::CREATED, "{}", board.text());
    let mut images = Vec::new();
    for shade in [40u8, 120, 200] {
        let picture = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(480, 320, |x, y| {
            image::Rgb([shade, (x / 2) as u8, (y / 2) as u8])
        }));
        let mut png = std::io::Cursor::new(Vec::new());
        picture.write_to(&mut png, image::ImageFormat::Png).unwrap();
        let answer = app
            .request(
                Method::POST,
                "/api/images",
                &[
                    ("authorization", &format!("Bearer {user}")),
                    ("content-type", "image/png"),
                ],
                bytes::Bytes::from(png.into_inner()),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
        images.push(answer.json()["id"].as_str().unwrap().to_string());
    }
    let publish = |token: &str, body: serde_json::Value| {
        let token = token.to_string();
        async move {
            let answer = call(app, &token, Method::POST, "/api/community/posts", Some(body)).await;
            assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
            answer.json()["id"].as_i64().unwrap()
        }
    };
    let pinned = publish(
        admin,
        json!({"board_id": 1, "title": "社区公约：友善发言，禁止广告",
        "content": "欢迎来到社区！请友善交流，不发广告，不泄露他人隐私。违规内容会被隐藏。"}),
    )
    .await;
    call(
        app,
        admin,
        Method::PATCH,
        &format!("/api/admin/community/posts/{pinned}"),
        Some(json!({"pinned": true})),
    )
    .await;
    let post = publish(
        user,
        json!({"board_id": 1, "title": "周末去山里徒步，有人一起吗？",
        "content": "计划周六早上八点出发，路线大约十二公里，中途有补给点。\n天气预报说是晴天，记得带水和防晒。",
        "images": images}),
    )
    .await;
    publish(
        admin,
        json!({"board_id": 1, "title": "想说一件不方便署名的事",
        "content": "最近压力很大，不知道和谁说。", "anonymous": true}),
    )
    .await;
    publish(
        user,
        json!({"board_id": 2, "title": "出一辆九成新的自行车",
        "content": "骑了半年，带车锁和车灯，价格可议。"}),
    )
    .await;
    let first = call(
        app,
        admin,
        Method::POST,
        &format!("/api/community/posts/{post}/comments"),
        Some(json!({"content": "算我一个！需要带午饭吗？"})),
    )
    .await
    .json()["id"]
        .as_i64()
        .unwrap();
    call(
        app,
        user,
        Method::POST,
        &format!("/api/community/posts/{post}/comments"),
        Some(json!({"content": "要的，山上没有饭店。", "parent_id": first})),
    )
    .await;
    call(
        app,
        admin,
        Method::PUT,
        &format!("/api/community/posts/{post}/like"),
        None,
    )
    .await;
    call(
        app,
        user,
        Method::POST,
        "/api/community/reports",
        Some(json!({"target": "comment", "id": first, "reason": "测试举报"})),
    )
    .await;
    (post, user_id)
}

/// A page to visit: a file name, the address, the session to carry.
struct Visit {
    name: &'static str,
    url: String,
    session: Option<String>,
}

/// Script checks run on every page: the page is no wider than the screen, and it has the
/// layout (sections, the language switch) in the language asked for.
/// (A phone's layout viewport grows to fit a page that is too wide, so the width to keep to is
/// the screen's, given as `WIDTH`.)
const LAYOUT_CHECK: &str = "(() => {
  const problems = [];
  const wide = Math.max(document.documentElement.scrollWidth, document.body.scrollWidth);
  if (wide > WIDTH + 1) problems.push('wider than the screen: ' + wide + ' > ' + WIDTH);
  if (!document.querySelector('header.site nav.sections a')) problems.push('no sections in the header');
  if (!document.getElementById('lang-switch')) problems.push('no language switch');
  return problems.join('; ');
})()";

fn check_page(tools: &mut DevTools, session: &str, visit: &Visit, lang: &str, phone: bool) {
    let where_ = format!("{} ({lang}, {})", visit.name, if phone { "phone" } else { "desktop" });
    let width = if phone { "390" } else { "1280" };
    let problems = tools.eval(session, &LAYOUT_CHECK.replace("WIDTH", width));
    assert_eq!(problems, json!(""), "{where_}");
    let html_lang = tools.eval(session, "document.documentElement.lang");
    assert_eq!(html_lang, json!(if lang == "zh" { "zh-CN" } else { "en" }), "{where_}");
    let expectations: &[&str] = match visit.name {
        // The QR code and its caption are centred in the card.
        "pay-pending" => &[
            "(() => { const card = document.getElementById('pay').getBoundingClientRect();
            const qr = document.querySelector('#qr img').getBoundingClientRect();
            return Math.abs((qr.left + qr.right) / 2 - (card.left + card.right) / 2) <= 1.5; })()",
        ],
        // The way back is a button, not a bare link.
        "pay-paid" => &[
            "(() => { const a = [...document.querySelectorAll('.back-home')].find(e => e.offsetParent);
            const s = a && getComputedStyle(a);
            return !!s && s.display !== 'inline' && parseFloat(s.paddingTop) > 4 && s.borderRadius !== '0px'; })()",
        ],
        // Both sign-in buttons are the card's full width.
        "login" => &[
            "(() => { const a = document.getElementById('wechat-login').getBoundingClientRect();
            const b = document.getElementById('login-submit').getBoundingClientRect();
            return a.width > 100 && Math.abs(a.width - b.width) <= 1; })()",
        ],
        "home" => &[
            "document.querySelectorAll('#chart svg rect title').length > 3",
            "document.querySelectorAll('#ranking li.rank-item').length > 3",
        ],
        "home-fresh" => &["!!document.querySelector('#chart .chart-empty') && !document.querySelector('#chart svg')"],
        "admin" => &[
            "document.querySelectorAll('#chart-per-day rect title').length > 3",
            "document.querySelectorAll('#chart-per-status rect title').length === 4",
            "document.querySelector('.subnav a[aria-current=page]').getAttribute('href') === '/admin'",
            "document.querySelector('nav.sections a[aria-current=page]').dataset.section === 'admin'",
            "!!document.getElementById('sign-out')",
        ],
        "admin-fresh" => &["document.querySelectorAll('.chart-empty').length === 3"],
        "me-admin" => &["!!document.getElementById('admin-link')"],
        "projects" => &["document.querySelectorAll('#projects progress.bar').length === 1"],
        "project" => &[
            "document.querySelectorAll('#goals .goal[data-reached=true]').length === 1",
            "!!document.getElementById('back-form')",
        ],
        "community" => &[
            "document.querySelectorAll('#posts .post-item').length === 4",
            "document.querySelector('#posts .post-item .tag') !== null",
            "document.querySelector('nav.sections a[aria-current=page]').dataset.section === 'community'",
            "!document.getElementById('unread-count').hidden",
        ],
        "community-search" => &["document.querySelectorAll('#posts .post-item').length === 1"],
        "community-post" => &[
            "document.querySelectorAll('.gallery img').length === 3",
            "document.querySelectorAll('#comment-list .comment').length === 2",
            "document.querySelector('#comment-list .comment.reply') !== null",
        ],
        "notifications" => &["document.querySelectorAll('#notifications .notice').length >= 2"],
        _ => &[],
    };
    for expression in expectations {
        assert_eq!(tools.eval(session, expression), json!(true), "{where_}: {expression}");
    }
    if phone && visit.name.starts_with("admin-") && visit.name != "admin-fresh" {
        let stacked = tools.eval(
            session,
            "(() => { const row = document.querySelector('table.table tbody tr');
                      return !row || getComputedStyle(row).display === 'block'; })()",
        );
        assert_eq!(
            stacked,
            json!(true),
            "{where_}: the table's rows are not cards on a phone"
        );
    }
}

/// Signs in with a wrong password through the form: the browser stays on /login and the
/// page says so in its language.
fn wrong_password(tools: &mut DevTools, session: &str, origin: &str, lang: &str) {
    tools.navigate(session, &format!("{origin}/login"));
    tools.eval(
        session,
        "document.getElementById('username').value = 'admin1';
         document.getElementById('password').value = 'not the password';
         document.getElementById('login-form').submit(); true",
    );
    let back = tools.wait_for(
        session,
        "location.pathname === '/login' && document.readyState === 'complete' && !!document.getElementById('login-error')",
        Duration::from_secs(20),
    );
    assert!(back, "{lang}: the browser did not come back to the sign-in page");
    let message = tools.eval(session, "document.getElementById('login-error').textContent");
    let expected = if lang == "zh" {
        "用户名或密码不正确。"
    } else {
        "Wrong username or password."
    };
    assert_eq!(message, json!(expected));
    assert_eq!(
        tools.eval(session, "document.getElementById('username').value"),
        json!("admin1")
    );
}

fn save(dir: &std::path::Path, name: &str, lang: &str, viewport: &str, png: &[u8]) {
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    std::fs::write(dir.join(format!("{name}-{lang}-{viewport}.png")), png).expect("screenshot written");
}

#[tokio::test]
async fn every_page_in_both_languages_on_a_phone_and_a_desktop() {
    let Some(browser) = chromium_or_skip() else { return };
    if std::env::var_os("CI").is_some() {
        let fonts = std::process::Command::new("fc-list").arg(":lang=zh").output();
        assert!(
            fonts.is_ok_and(|out| !out.stdout.is_empty()),
            "no CJK font: the Chinese screenshots would show boxes (apt-get install fonts-noto-cjk)"
        );
    }
    let app = spawn_app().await;
    let fresh = spawn_app().await;
    let site = site_in_use(&app).await;
    let fresh_admin = sign_in(&fresh, "admin1", Role::Admin).await;
    let project = crate::crowdfunding::live_project(
        &app,
        &site.user,
        &site.admin,
        crate::crowdfunding::project_body("山区学校图书角 · 第一期"),
    )
    .await;
    app.sql(&format!(
        "UPDATE projects SET raised_fen = 150000, backers = 12 WHERE id = {project}"
    ))
    .await;
    app.state.crowdfunding.cache.changed_all();
    let mut waiting = crate::crowdfunding::project_body("乡村净水计划");
    waiting["submit"] = json!(true);
    crate::crowdfunding::create(&app, &site.user, waiting).await;

    let at = |app: &TestApp, path: &str| app.url(path);
    let visits = vec![
        Visit {
            name: "home",
            url: at(&app, "/"),
            session: None,
        },
        Visit {
            name: "home-fresh",
            url: at(&fresh, "/"),
            session: None,
        },
        Visit {
            name: "pay-pending",
            url: at(&app, &format!("/pay/{}", site.pending)),
            session: None,
        },
        Visit {
            name: "pay-paid",
            url: at(&app, &format!("/pay/{}", site.paid)),
            session: None,
        },
        Visit {
            name: "login",
            url: at(&app, "/login"),
            session: None,
        },
        Visit {
            name: "not-found",
            url: at(&app, "/no-such-page"),
            session: None,
        },
        Visit {
            name: "me",
            url: at(&app, "/me"),
            session: Some(site.user.clone()),
        },
        Visit {
            name: "me-admin",
            url: at(&app, "/me"),
            session: Some(site.admin.clone()),
        },
        Visit {
            name: "admin",
            url: at(&app, "/admin"),
            session: Some(site.admin.clone()),
        },
        Visit {
            name: "admin-fresh",
            url: at(&fresh, "/admin"),
            session: Some(fresh_admin.clone()),
        },
        Visit {
            name: "admin-payments",
            url: at(&app, "/admin/payments"),
            session: Some(site.admin.clone()),
        },
        Visit {
            name: "admin-payment",
            url: at(&app, &format!("/admin/payments/{}", site.refunded)),
            session: Some(site.admin.clone()),
        },
        Visit {
            name: "admin-reconcile",
            url: at(&app, "/admin/reconcile"),
            session: Some(site.admin.clone()),
        },
        Visit {
            name: "admin-categories",
            url: at(&app, "/admin/categories"),
            session: Some(site.admin.clone()),
        },
        Visit {
            name: "admin-settings",
            url: at(&app, "/admin/settings"),
            session: Some(site.admin.clone()),
        },
        Visit {
            name: "admin-callbacks",
            url: at(&app, "/admin/callbacks"),
            session: Some(site.admin.clone()),
        },
        Visit {
            name: "admin-users",
            url: at(&app, "/admin/users"),
            session: Some(site.admin.clone()),
        },
        Visit {
            name: "projects",
            url: at(&app, "/projects"),
            session: None,
        },
        Visit {
            name: "project",
            url: at(&app, &format!("/projects/{project}")),
            session: Some(site.admin.clone()),
        },
        Visit {
            name: "projects-mine",
            url: at(&app, "/projects/mine"),
            session: Some(site.user.clone()),
        },
        Visit {
            name: "project-new",
            url: at(&app, "/projects/new"),
            session: Some(site.user.clone()),
        },
        Visit {
            name: "admin-projects",
            url: at(&app, "/admin/projects"),
            session: Some(site.admin.clone()),
        },
        Visit {
            name: "admin-audit",
            url: at(&app, "/admin/audit"),
            session: Some(site.admin.clone()),
        },
        Visit {
            name: "community",
            url: at(&app, "/community"),
            session: Some(site.user.clone()),
        },
        Visit {
            name: "community-fresh",
            url: at(&fresh, "/community"),
            session: None,
        },
        Visit {
            name: "community-search",
            url: at(&app, "/community?q=%E5%BE%92%E6%AD%A5"),
            session: None,
        },
        Visit {
            name: "community-post",
            url: at(&app, &format!("/community/posts/{}", site.post)),
            session: Some(site.user.clone()),
        },
        Visit {
            name: "community-compose",
            url: at(&app, "/community/new"),
            session: Some(site.user.clone()),
        },
        Visit {
            name: "community-user",
            url: at(&app, &format!("/users/{}", site.user_id)),
            session: Some(site.admin.clone()),
        },
        Visit {
            name: "notifications",
            url: at(&app, "/me/notifications"),
            session: Some(site.user.clone()),
        },
        Visit {
            name: "admin-community",
            url: at(&app, "/admin/community"),
            session: Some(site.admin.clone()),
        },
    ];
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).expect("the screenshot folder");
    let profile = scratch_dir("chromium-shots");
    let origins = (app.url(""), fresh.url(""));
    let shots = tokio::task::spawn_blocking({
        let dir = dir.clone();
        let profile = profile.clone();
        move || {
            let mut tools = DevTools::start(browser, &profile);
            let session = tools.open_page();
            let mut taken = 0;
            for lang in ["zh", "en"] {
                for visit in &visits {
                    let origin = if visit.url.starts_with(&origins.1) {
                        &origins.1
                    } else {
                        &origins.0
                    };
                    let mut cookies = vec![("zhifu_lang", lang)];
                    if let Some(token) = &visit.session {
                        cookies.push(("zhifu_session", token.as_str()));
                    }
                    tools.set_cookies(origin, &cookies);
                    tools.viewport(&session, 390, 844, true);
                    tools.navigate(&session, &visit.url);
                    if visit.name == "home" {
                        // home.js fills the ranking from the API.
                        tools.wait_for(
                            &session,
                            "!!document.querySelector('#ranking li.rank-item')",
                            Duration::from_secs(10),
                        );
                    }
                    check_page(&mut tools, &session, visit, lang, true);
                    save(&dir, visit.name, lang, "phone", &tools.screenshot(&session));
                    tools.viewport(&session, 1280, 800, false);
                    check_page(&mut tools, &session, visit, lang, false);
                    save(&dir, visit.name, lang, "desktop", &tools.screenshot(&session));
                    taken += 2;
                }
                tools.set_cookies(&origins.0, &[("zhifu_lang", lang)]);
                tools.viewport(&session, 390, 844, true);
                wrong_password(&mut tools, &session, &origins.0, lang);
                save(&dir, "login-error", lang, "phone", &tools.screenshot(&session));
                taken += 1;
            }
            taken
        }
    })
    .await
    .expect("the browser session ran");
    let _ = std::fs::remove_dir_all(&profile);
    eprintln!("{shots} screenshots in {}", dir.display());
    let files = std::fs::read_dir(&dir).unwrap().count();
    assert!(files >= shots, "{files} files for {shots} screenshots");
    app.shutdown().await;
    fresh.shutdown().await;
}
