//! Crowdfunding projects: create with the contract's rules (bad input changes nothing),
//! drafts private to their owner and reviewers, submit, review with a reason (the owner
//! notified, audited, 409 unless in review), edits refused once live, the public list
//! (filters, sorts, search, paging) and detail served from the cache and fresh on another
//! instance within a second, follows and updates that notify followers.

use std::io::Cursor;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zhifu::account::Role;

use crate::admin::{call, sign_in};
use crate::helpers::{TestApp, eventually, spawn_app, spawn_app_on};

/// An RFC 3339 time `secs` from now.
pub fn in_secs(secs: i64) -> String {
    (OffsetDateTime::now_utc() + time::Duration::seconds(secs))
        .format(&Rfc3339)
        .unwrap()
}

/// A valid project body: two goals, a limited reward that ships and an unlimited one.
pub fn project_body(title: &str) -> Value {
    json!({
        "title": title,
        "summary": "给山区学校建一个图书角",
        "story": "第一段\n第二段",
        "deadline": in_secs(3 * 86_400),
        "goals": [
            {"amount": "1000.00", "title": "一百本书", "description": "第一期"},
            {"amount": "3000.00", "title": "三百本书", "description": "第二期"}
        ],
        "rewards": [
            {"title": "明信片", "description": "手写感谢", "min_amount": "20.00", "quantity": 5, "ships": true},
            {"title": "电子感谢信", "min_amount": "1.00"}
        ],
    })
}

/// Creates a project as `owner` (201 asserted); its JSON.
pub async fn create(app: &TestApp, owner: &str, body: Value) -> Value {
    let answer = call(app, owner, Method::POST, "/api/projects", Some(body)).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    answer.json()
}

/// Creates, submits and approves a project; its id.
pub async fn live_project(app: &TestApp, owner: &str, reviewer: &str, mut body: Value) -> i64 {
    body["submit"] = json!(true);
    let id = create(app, owner, body).await["id"].as_i64().unwrap();
    let review = call(
        app,
        reviewer,
        Method::POST,
        &format!("/api/admin/projects/{id}/review"),
        Some(json!({"decision": "approve"})),
    )
    .await;
    assert_eq!(review.status, StatusCode::OK, "{}", review.text());
    assert_eq!(review.json()["status"], "live");
    id
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.count(sql).await
}

async fn upload(app: &TestApp, token: &str) -> String {
    let image = DynamicImage::ImageRgb8(RgbImage::from_fn(64, 48, |x, y| Rgb([x as u8 * 3, y as u8 * 5, 90])));
    let mut png = Cursor::new(Vec::new());
    image.write_to(&mut png, ImageFormat::Png).unwrap();
    let bearer = format!("Bearer {token}");
    let answer = app
        .request(
            Method::POST,
            "/api/images",
            &[("authorization", &bearer), ("content-type", "image/png")],
            Bytes::from(png.into_inner()),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    answer.json()["id"].as_str().unwrap().to_string()
}

/// What spoils a good project body.
type Spoil = Box<dyn Fn(&mut Value)>;

#[tokio::test]
async fn bad_projects_are_refused_by_rule_and_write_nothing() {
    let app = spawn_app().await;
    let owner = sign_in(&app, "owner", Role::User).await;
    let cases: Vec<(&str, Spoil)> = vec![
        ("invalid_goals", Box::new(|b| b["goals"] = json!([]))),
        (
            "invalid_goals",
            Box::new(|b| b["goals"][1]["amount"] = json!("1000.00")),
        ),
        (
            "invalid_goals",
            Box::new(|b| {
                b["goals"] = json!(
                    (1..=6)
                        .map(|i| json!({"amount": format!("{i}00"), "title": "g"}))
                        .collect::<Vec<_>>()
                )
            }),
        ),
        (
            "invalid_reward",
            Box::new(|b| b["rewards"][0]["min_amount"] = json!("0.00")),
        ),
        (
            "invalid_rewards",
            Box::new(|b| {
                b["rewards"] = json!(
                    (0..21)
                        .map(|_| json!({"title": "r", "min_amount": "1"}))
                        .collect::<Vec<_>>()
                )
            }),
        ),
        ("invalid_deadline", Box::new(|b| b["deadline"] = json!(in_secs(3_600)))),
        (
            "invalid_deadline",
            Box::new(|b| b["deadline"] = json!(in_secs(91 * 86_400))),
        ),
        ("invalid_title", Box::new(|b| b["title"] = json!("   "))),
        ("unknown_image", Box::new(|b| b["cover_image"] = json!("ab".repeat(32)))),
        (
            "invalid_image",
            Box::new(|b| b["goals"][0]["images"] = json!(["../etc/passwd"])),
        ),
        ("invalid_surplus", Box::new(|b| b["surplus"] = json!("donate"))),
    ];
    for (code, change) in cases {
        let mut body = project_body("坏项目");
        change(&mut body);
        let answer = call(&app, &owner, Method::POST, "/api/projects", Some(body)).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{code}: {}",
            answer.text()
        );
        assert_eq!(answer.error_code(), code);
    }
    let mut unknown_field = project_body("x");
    unknown_field["evil"] = json!(1);
    let answer = call(&app, &owner, Method::POST, "/api/projects", Some(unknown_field)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let anonymous = app.post_json("/api/projects", project_body("x")).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(count(&app, "SELECT count(*) FROM projects").await, 0);
    assert_eq!(count(&app, "SELECT count(*) FROM project_goals").await, 0);
}

#[tokio::test]
async fn a_project_goes_from_draft_through_review_to_live_and_is_then_public() {
    let app = spawn_app().await;
    let owner = sign_in(&app, "owner", Role::User).await;
    let stranger = sign_in(&app, "stranger", Role::User).await;
    let reviewer = sign_in(&app, "reviewer", Role::Reviewer).await;
    let cover = upload(&app, &owner).await;
    let mut body = project_body("  山区图书角  ");
    body["cover_image"] = json!(cover);
    body["goals"][0]["images"] = json!([cover]);
    let draft = create(&app, &owner, body).await;
    let id = draft["id"].as_i64().unwrap();
    assert_eq!(draft["status"], "draft");
    assert_eq!(draft["title"], "山区图书角");
    assert_eq!(draft["goals"][1]["amount_fen"], 300_000);
    assert_eq!(draft["goals"][0]["images"][0]["url"], format!("/media/{cover}"));
    assert_eq!(draft["rewards"][0]["remaining"], 5);
    assert_eq!(draft["rewards"][1]["remaining"], Value::Null);
    assert_eq!(draft["current_goal"], Value::Null);

    // A draft exists only for its owner and reviewers.
    let path = format!("/api/projects/{id}");
    assert_eq!(app.get(&path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        call(&app, &stranger, Method::GET, &path, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, &reviewer, Method::GET, &path, None).await.status,
        StatusCode::OK
    );
    let patch = call(&app, &stranger, Method::PATCH, &path, Some(json!({"title": "抢走"}))).await;
    assert_eq!(patch.status, StatusCode::NOT_FOUND);

    // Not in review yet: 409.
    let review_path = format!("/api/admin/projects/{id}/review");
    let early = call(
        &app,
        &reviewer,
        Method::POST,
        &review_path,
        Some(json!({"decision": "approve"})),
    )
    .await;
    assert_eq!(early.status, StatusCode::CONFLICT);
    assert_eq!(early.error_code(), "project_not_pending");

    let submitted = call(
        &app,
        &owner,
        Method::PATCH,
        &path,
        Some(json!({"submit": true, "summary": "新的简介"})),
    )
    .await;
    assert_eq!(submitted.status, StatusCode::OK, "{}", submitted.text());
    assert_eq!(submitted.json()["status"], "pending_review");
    assert_eq!(submitted.json()["summary"], "新的简介");
    assert_eq!(submitted.json()["goals"].as_array().unwrap().len(), 2, "goals kept");
    let queue = call(&app, &reviewer, Method::GET, "/api/admin/projects", None)
        .await
        .json();
    assert_eq!(queue["total"], 1);
    let revision = queue["items"][0]["revision"].as_i64().unwrap();
    assert_eq!(
        call(&app, &stranger, Method::GET, "/api/admin/projects", None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // Reject needs a reason; a stale revision is refused.
    let no_reason = call(
        &app,
        &reviewer,
        Method::POST,
        &review_path,
        Some(json!({"decision": "reject"})),
    )
    .await;
    assert_eq!(no_reason.error_code(), "invalid_reason");
    let stale = call(
        &app,
        &reviewer,
        Method::POST,
        &review_path,
        Some(json!({"decision": "approve", "revision": revision - 1})),
    )
    .await;
    assert_eq!(stale.error_code(), "project_changed");
    let rejected = call(
        &app,
        &reviewer,
        Method::POST,
        &review_path,
        Some(json!({"decision": "reject", "reason": "请补充学校的证明材料"})),
    )
    .await;
    assert_eq!(rejected.json()["status"], "rejected");
    assert_eq!(rejected.json()["review_reason"], "请补充学校的证明材料");
    let notes = call(&app, &owner, Method::GET, "/api/me/notifications", None)
        .await
        .json();
    assert_eq!(notes["items"][0]["kind"], "project_review");
    assert!(
        notes["items"][0]["text"]
            .as_str()
            .unwrap()
            .contains("请补充学校的证明材料")
    );

    // Edited and resubmitted, then approved.
    let again = call(
        &app,
        &owner,
        Method::PATCH,
        &path,
        Some(json!({"story": "附上证明", "submit": true})),
    )
    .await;
    assert_eq!(again.json()["status"], "pending_review");
    let approved = call(
        &app,
        &reviewer,
        Method::POST,
        &review_path,
        Some(json!({"decision": "approve"})),
    )
    .await;
    assert_eq!(approved.json()["status"], "live");
    let twice = call(
        &app,
        &reviewer,
        Method::POST,
        &review_path,
        Some(json!({"decision": "reject", "reason": "x"})),
    )
    .await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert_eq!(
        count(&app, "SELECT count(*) FROM admin_audit WHERE action = 'project.review'").await,
        2
    );

    // Public now, and no longer editable.
    let public = app.get(&path).await;
    assert_eq!(public.status, StatusCode::OK);
    assert_eq!(public.json()["story"], "附上证明");
    assert!(
        public.json().get("review_reason").is_none(),
        "the public view has no review notes"
    );
    let late_edit = call(&app, &owner, Method::PATCH, &path, Some(json!({"title": "改"}))).await;
    assert_eq!(late_edit.status, StatusCode::CONFLICT);
    assert_eq!(late_edit.error_code(), "project_not_editable");
    let list = app.get("/api/projects").await.json();
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["id"], id);
    assert_eq!(list["items"][0]["cover_url"], format!("/media/{cover}"));
    let mine = call(&app, &owner, Method::GET, "/api/me/projects", None).await.json();
    assert_eq!(mine["items"][0]["status"], "live");
}

#[tokio::test]
async fn the_list_filters_sorts_searches_and_pages() {
    let app = spawn_app().await;
    let owner = sign_in(&app, "owner", Role::User).await;
    let reviewer = sign_in(&app, "reviewer", Role::Reviewer).await;
    let mut ids = Vec::new();
    for (i, title) in ["甲 图书", "乙 净水", "丙 100%_书"].iter().enumerate() {
        let mut body = project_body(title);
        body["deadline"] = json!(in_secs((5 - i as i64) * 86_400));
        ids.push(live_project(&app, &owner, &reviewer, body).await);
    }
    // Progress as the payment hooks would leave it.
    app.sql(&format!(
        "UPDATE projects SET raised_fen = 200000, backers = 1 WHERE id = {};
         UPDATE projects SET raised_fen = 50000, backers = 7 WHERE id = {};",
        ids[0], ids[1]
    ))
    .await;
    app.state.crowdfunding.cache.changed_all();
    let order = |list: &Value| -> Vec<i64> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(
        order(&app.get("/api/projects").await.json()),
        [ids[2], ids[1], ids[0]],
        "newest"
    );
    assert_eq!(
        order(&app.get("/api/projects?sort=ending").await.json()),
        [ids[2], ids[1], ids[0]]
    );
    assert_eq!(
        order(&app.get("/api/projects?sort=most_funded").await.json())[0],
        ids[0]
    );
    assert_eq!(
        order(&app.get("/api/projects?sort=most_backed").await.json())[0],
        ids[1]
    );
    let first = app.get("/api/projects?sort=most_funded").await.json();
    assert_eq!(first["items"][0]["goals"][0]["reached"], true);
    assert_eq!(first["items"][0]["current_goal"], 0);
    assert_eq!(
        order(&app.get("/api/projects?q=%E5%87%80%E6%B0%B4").await.json()),
        [ids[1]],
        "净水"
    );
    assert_eq!(
        order(&app.get("/api/projects?q=100%25_").await.json()),
        [ids[2]],
        "wildcards are literal"
    );
    assert_eq!(order(&app.get("/api/projects?q=0%25_").await.json()), [ids[2]]);
    let paged = app.get("/api/projects?size=2&page=2").await.json();
    assert_eq!((paged["total"].as_i64(), order(&paged)), (Some(3), vec![ids[0]]));
    assert_eq!(app.get("/api/projects?status=succeeded").await.json()["total"], 0);
    for (bad, code) in [
        ("status=draft", "invalid_status"),
        ("sort=cheapest", "invalid_sort"),
        ("size=101", "invalid_size"),
        ("page=0", "invalid_page"),
    ] {
        let answer = app.get(&format!("/api/projects?{bad}")).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(answer.error_code(), code);
    }
}

#[tokio::test]
async fn a_change_on_one_instance_shows_on_another_within_a_second() {
    let a = spawn_app().await;
    let b = spawn_app_on(a.db.clone(), |_| {}).await;
    let owner = sign_in(&a, "owner", Role::User).await;
    let reviewer = sign_in(&a, "reviewer", Role::Reviewer).await;
    let fan = sign_in(&a, "fan", Role::User).await;
    let id = live_project(&a, &owner, &reviewer, project_body("两台实例")).await;
    let path = format!("/api/projects/{id}");
    // B caches the detail and the list.
    assert_eq!(b.get(&path).await.json()["followers"], 0);
    assert_eq!(b.get("/api/projects").await.json()["total"], 1);
    assert!(
        b.state
            .crowdfunding
            .cache
            .detail(id, std::time::Instant::now())
            .is_some(),
        "cached on B"
    );
    let followed = call(&a, &fan, Method::PUT, &format!("{path}/follow"), None).await;
    assert_eq!(followed.json(), json!({"following": true, "followers": 1}));
    let again = call(&a, &fan, Method::PUT, &format!("{path}/follow"), None).await;
    assert_eq!(again.json(), json!({"following": true, "followers": 1}), "idempotent");
    let fresh = eventually(Duration::from_secs(1), || async {
        b.get(&path).await.json()["followers"] == 1
    })
    .await;
    assert!(fresh, "B still answers the old detail after a second");
    // A second project approved on A appears in B's cached list.
    live_project(&a, &owner, &reviewer, project_body("第二个")).await;
    let listed = eventually(Duration::from_secs(1), || async {
        b.get("/api/projects").await.json()["total"] == 2
    })
    .await;
    assert!(listed, "B's list did not change within a second");
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test]
async fn updates_notify_followers_and_only_the_owner_posts_them() {
    let app = spawn_app().await;
    let owner = sign_in(&app, "owner", Role::User).await;
    let reviewer = sign_in(&app, "reviewer", Role::Reviewer).await;
    let fan = sign_in(&app, "fan", Role::User).await;
    let id = live_project(&app, &owner, &reviewer, project_body("有动态的项目")).await;
    call(&app, &fan, Method::PUT, &format!("/api/projects/{id}/follow"), None).await;
    call(&app, &owner, Method::PUT, &format!("/api/projects/{id}/follow"), None).await;
    let path = format!("/api/projects/{id}/updates");
    let by_fan = call(&app, &fan, Method::POST, &path, Some(json!({"body": "冒充"}))).await;
    assert_eq!(by_fan.status, StatusCode::FORBIDDEN);
    let empty = call(&app, &owner, Method::POST, &path, Some(json!({"body": "  "}))).await;
    assert_eq!(empty.error_code(), "invalid_body");
    let posted = call(
        &app,
        &owner,
        Method::POST,
        &path,
        Some(json!({"title": "第一批书到了", "body": "<b>谢谢</b>大家"})),
    )
    .await;
    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text());
    let list = app.get(&path).await.json();
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["body"], "<b>谢谢</b>大家");
    let notes = call(&app, &fan, Method::GET, "/api/me/notifications", None)
        .await
        .json();
    assert_eq!(notes["items"][0]["kind"], "project_update");
    assert_eq!(notes["items"][0]["target"], json!({"type": "project", "id": id}));
    let own = call(&app, &owner, Method::GET, "/api/me/notifications?unread=true", None)
        .await
        .json();
    assert!(
        own["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["kind"] != "project_update"),
        "nobody is notified of their own update"
    );
    let unfollow = call(&app, &fan, Method::DELETE, &format!("/api/projects/{id}/follow"), None).await;
    assert_eq!(unfollow.json(), json!({"following": false, "followers": 1}));
    assert_eq!(app.get(&format!("/api/projects/{id}/backers")).await.json()["total"], 0);
}

async fn page(app: &TestApp, path: &str, token: Option<&str>) -> crate::helpers::Answer {
    let cookie = token.map(|t| format!("zhifu_session={t}")).unwrap_or_default();
    app.request(
        Method::GET,
        path,
        &[("cookie", &cookie), ("accept", "text/html")],
        Bytes::new(),
    )
    .await
}

#[tokio::test]
async fn the_pages_show_projects_as_text_and_keep_private_ones_private() {
    let app = spawn_app().await;
    let owner = sign_in(&app, "owner", Role::User).await;
    let reviewer = sign_in(&app, "reviewer", Role::Reviewer).await;
    let stranger = sign_in(&app, "stranger", Role::User).await;
    let mut body = project_body("<script>alert(1)</script>");
    body["goals"][0]["title"] = json!("<img src=x onerror=alert(2)>");
    let id = live_project(&app, &owner, &reviewer, body.clone()).await;
    let draft = create(&app, &owner, project_body("草稿")).await["id"].as_i64().unwrap();

    let list = page(&app, "/projects", None).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        list.text().contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "the title is text"
    );
    assert!(!list.text().contains("<script>alert(1)"));
    assert!(
        list.text().contains("<progress class=\"bar\""),
        "a progress bar per project"
    );
    let detail = page(&app, &format!("/projects/{id}"), None).await;
    assert_eq!(detail.status, StatusCode::OK);
    let html = detail.text();
    assert!(html.contains("&#60;img src=x onerror=alert(2)&#62;"));
    assert!(html.contains("data-reached=\"false\""), "goals carry their mark");
    assert!(
        html.contains("id=\"sign-in-to-back\""),
        "a visitor is asked to sign in to back"
    );
    let signed = page(&app, &format!("/projects/{id}"), Some(&stranger)).await.text();
    assert!(
        signed.contains("id=\"back-form\""),
        "a signed-in visitor gets the back form"
    );
    assert!(
        signed.contains("id=\"no-address\""),
        "a reward that ships needs an address first"
    );

    assert_eq!(
        page(&app, &format!("/projects/{draft}"), None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        page(&app, &format!("/projects/{draft}"), Some(&stranger)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        page(&app, &format!("/projects/{draft}"), Some(&owner)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        page(&app, &format!("/projects/{draft}/edit"), Some(&stranger))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        page(&app, &format!("/projects/{id}/edit"), Some(&owner)).await.status,
        StatusCode::CONFLICT
    );
    let mine = page(&app, "/projects/mine", None).await;
    assert_eq!(mine.status, StatusCode::SEE_OTHER);
    assert_eq!(mine.header("location"), Some("/login?next=%2Fprojects%2Fmine"));
    let dashboard = page(&app, "/projects/mine", Some(&owner)).await.text();
    assert!(
        dashboard.contains(&format!("/projects/{draft}/edit")),
        "a draft can be edited from the dashboard"
    );
    assert_eq!(
        page(&app, "/admin/projects", Some(&stranger)).await.status,
        StatusCode::FORBIDDEN
    );
    let queue = page(&app, "/admin/projects", Some(&reviewer)).await;
    assert_eq!(queue.status, StatusCode::OK);
}
