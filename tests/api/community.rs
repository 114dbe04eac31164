//! The community's API: publishing and reading posts and comments, likes exact under
//! concurrency, notifications (once per like, never to oneself, one per burst of comments),
//! anonymous posts that no endpoint reveals, hidden content, reports and the admin queue,
//! blocked words, rate limits, boards, and freshness across instances.

use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_postgres::NoTls;

use crate::admin::call;
use crate::helpers::{Answer, TestApp, eventually, spawn_app_on, spawn_app_with};

/// An app (the test settings turn the posting limits off).
pub async fn community_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A user named `display` with a session (made in the database: no password hashing).
pub async fn person(app: &TestApp, username: &str, display: &str, role: &str) -> (i64, String) {
    person_with_id(app, None, username, display, role).await
}

/// [`person`] with a chosen id.
pub async fn person_with_id(
    app: &TestApp,
    id: Option<i64>,
    username: &str,
    display: &str,
    role: &str,
) -> (i64, String) {
    let (client, conn) = app.db.connect(NoTls).await.unwrap();
    let conn = tokio::spawn(conn);
    let id: i64 = client
        .query_one(
            "INSERT INTO users (id, username, password_hash, display_name, role)
             VALUES (coalesce($1, nextval(pg_get_serial_sequence('users', 'id'))), $2, 'unused', $3, $4) RETURNING id",
            &[&id, &username, &display, &role],
        )
        .await
        .unwrap()
        .get(0);
    let (token, hash) = zhifu::account::new_token().unwrap();
    client
        .execute(
            "INSERT INTO sessions (token_sha256, user_id, expires_at, method) VALUES ($1, $2, now() + interval '1 day', 'password')",
            &[&hash.as_slice(), &id],
        )
        .await
        .unwrap();
    drop(client);
    let _ = conn.await;
    (id, token)
}

pub async fn publish(app: &TestApp, token: &str, body: Value) -> Value {
    let answer = call(app, token, Method::POST, "/api/community/posts", Some(body)).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    answer.json()
}

pub async fn post(app: &TestApp, token: &str, title: &str, content: &str) -> i64 {
    publish(app, token, json!({"board_id": 1, "title": title, "content": content})).await["id"]
        .as_i64()
        .unwrap()
}

pub async fn comment(app: &TestApp, token: &str, post_id: i64, content: &str, parent: Option<i64>) -> i64 {
    let answer = call(
        app,
        token,
        Method::POST,
        &format!("/api/community/posts/{post_id}/comments"),
        Some(json!({"content": content, "parent_id": parent})),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    answer.json()["id"].as_i64().unwrap()
}

async fn get(app: &TestApp, token: Option<&str>, path: &str) -> Answer {
    match token {
        Some(token) => call(app, token, Method::GET, path, None).await,
        None => app.get(path).await,
    }
}

async fn notifications(app: &TestApp, token: &str) -> Vec<Value> {
    let answer = get(app, Some(token), "/api/me/notifications?size=100").await;
    assert_eq!(answer.status, StatusCode::OK);
    answer.json()["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_post_is_published_read_and_listed_with_its_comments_in_threads() {
    let app = community_app().await;
    let (alice_id, alice) = person(&app, "alice", "爱丽丝", "user").await;
    let (_, bob) = person(&app, "bob", "鲍勃", "user").await;

    let created = publish(
        &app,
        &alice,
        json!({"board_id": 1, "title": "  第一篇  ", "content": "你好，<b>世界</b>\n第二行", "anonymous": false}),
    )
    .await;
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["title"], "第一篇");
    assert_eq!(created["author"], json!({"id": alice_id, "display_name": "爱丽丝"}));
    assert_eq!(created["mine"], true);
    for field in ["likes", "comments"] {
        assert_eq!(created[field], 0);
    }

    let detail = app.get(&format!("/api/community/posts/{id}")).await.json();
    assert_eq!(detail["content"], "你好，<b>世界</b>\n第二行");
    assert_eq!(detail["liked_by_me"], false);
    assert_eq!(detail["mine"], false);
    assert_eq!(detail["pinned"], false);
    assert!(detail["created_at"].as_str().unwrap().ends_with("+08:00"));

    let top = comment(&app, &bob, id, "沙发", None).await;
    let reply = comment(&app, &alice, id, "谢谢", Some(top)).await;
    let second = comment(&app, &bob, id, "第二条", None).await;
    let reply_to_reply = comment(&app, &bob, id, "不客气", Some(reply)).await;
    let list = app.get(&format!("/api/community/posts/{id}/comments")).await.json();
    let ids: Vec<i64> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids,
        [top, reply, reply_to_reply, second],
        "threads together, oldest first"
    );
    assert_eq!(
        list["items"][2]["parent_id"], top,
        "a reply to a reply files under the thread"
    );
    assert_eq!(list["items"][2]["reply_to_id"], reply);
    assert_eq!(list["items"][1]["op"], true);
    assert_eq!(list["total"], 4);
    let detail = app.get(&format!("/api/community/posts/{id}")).await.json();
    assert_eq!(detail["comments"], 4);

    let listed = app.get("/api/community/posts?board_id=1").await.json();
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["items"][0]["comments"], 4);
    assert_eq!(listed["items"][0]["excerpt"], "你好，<b>世界</b>\n第二行");

    // Bad input changes nothing.
    for (body, code) in [
        (json!({"board_id": 1, "title": "", "content": "x"}), "invalid_title"),
        (
            json!({"board_id": 1, "title": "t", "content": "x".repeat(10_001)}),
            "invalid_content",
        ),
        (json!({"board_id": 99, "title": "t", "content": "x"}), "unknown_board"),
        (
            json!({"board_id": 1, "title": "t", "content": "x", "images": ["nope"]}),
            "invalid_image",
        ),
        (
            json!({"board_id": 1, "title": "t", "content": "x", "images": ["a".repeat(64)]}),
            "unknown_image",
        ),
    ] {
        let answer = call(&app, &alice, Method::POST, "/api/community/posts", Some(body)).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", answer.text());
        assert_eq!(answer.error_code(), code);
    }
    let answer = call(
        &app,
        &bob,
        Method::POST,
        &format!("/api/community/posts/{id}/comments"),
        Some(json!({"content": "x", "parent_id": 999})),
    )
    .await;
    assert_eq!(answer.error_code(), "invalid_parent");
    assert_eq!(app.count("SELECT count(*) FROM posts").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM comments").await, 4);
    let anonymous = app
        .post_json(
            "/api/community/posts",
            json!({"board_id": 1, "title": "t", "content": "x"}),
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    for bad in [
        "?sort=best",
        "?range=year",
        "?size=101",
        "?board_id=0",
        "?q=".to_string().as_str(),
    ] {
        let answer = app.get(&format!("/api/community/posts{bad}")).await;
        let expected = if bad == "?q=" {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        assert_eq!(answer.status, expected, "{bad}");
    }
    assert_eq!(app.get("/api/community/posts/999").await.status, StatusCode::NOT_FOUND);

    // Deleting: not someone else's; the author's own is gone, audited, the profile counts it out.
    let profile = app.get(&format!("/api/users/{alice_id}")).await.json();
    assert_eq!(profile["posts"], 1);
    let theirs = call(&app, &bob, Method::DELETE, &format!("/api/community/posts/{id}"), None).await;
    assert_eq!(theirs.status, StatusCode::FORBIDDEN);
    let mine = call(
        &app,
        &alice,
        Method::DELETE,
        &format!("/api/community/posts/{id}"),
        None,
    )
    .await;
    assert_eq!(mine.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/api/community/posts/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get("/api/community/posts").await.json()["total"], 0);
    assert_eq!(app.get(&format!("/api/users/{alice_id}")).await.json()["posts"], 0);
    assert_eq!(
        app.count("SELECT count(*) FROM admin_audit WHERE action = 'community_post_delete'")
            .await,
        1
    );
    app.shutdown().await;
}

#[tokio::test]
async fn concurrent_likes_and_unlikes_keep_the_count_equal_to_the_rows_at_every_moment() {
    let app = community_app().await;
    let (_, author) = person(&app, "author", "作者", "user").await;
    let id = post(&app, &author, "点赞", "点赞测试").await;
    let mut likers = Vec::new();
    for i in 0..50 {
        likers.push(
            person(&app, &format!("liker{i}"), &format!("点赞者{i}"), "user")
                .await
                .1,
        );
    }

    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let db = app.db.clone();
        let url = app.url(&format!("/api/community/posts/{id}"));
        let done = done.clone();
        tokio::spawn(async move {
            let (client, conn) = db.connect(NoTls).await.unwrap();
            tokio::spawn(conn);
            let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Full<bytes::Bytes>>();
            let mut samples = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) || samples < 5 {
                let row = client
                    .query_one(
                        "SELECT s.likes, (SELECT count(*) FROM post_likes l WHERE l.post_id = s.post_id)
                           FROM post_stats s WHERE s.post_id = $1",
                        &[&id],
                    )
                    .await
                    .unwrap();
                let (counter, rows): (i64, i64) = (row.get(0), row.get(1));
                assert_eq!(counter, rows, "sample {samples}: the counter drifted from the rows");
                let answer = http.get(url.parse().unwrap()).await.unwrap();
                let body = http_body_util::BodyExt::collect(answer.into_body())
                    .await
                    .unwrap()
                    .to_bytes();
                let likes = serde_json::from_slice::<Value>(&body).unwrap()["likes"]
                    .as_i64()
                    .unwrap();
                assert!((0..=50).contains(&likes), "a read showed {likes}");
                samples += 1;
            }
            samples
        })
    };

    // 100 requests at once: every user likes; half of them also take it back.
    let mut requests = Vec::new();
    for (i, token) in likers.iter().enumerate() {
        for method in [Method::PUT, if i % 2 == 0 { Method::DELETE } else { Method::PUT }] {
            let url = app.url(&format!("/api/community/posts/{id}/like"));
            let token = token.clone();
            requests.push(tokio::spawn(async move {
                let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build_http::<http_body_util::Full<bytes::Bytes>>();
                let request = http::Request::builder()
                    .method(method)
                    .uri(url)
                    .header("authorization", format!("Bearer {token}"))
                    .body(http_body_util::Full::new(bytes::Bytes::new()))
                    .unwrap();
                http.request(request).await.unwrap().status()
            }));
        }
    }
    assert_eq!(requests.len(), 100);
    for request in requests {
        assert_eq!(request.await.unwrap(), StatusCode::OK);
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let samples = sampler.await.expect("every sample held");
    eprintln!("{samples} samples, each with the counter equal to the rows");

    let rows = app
        .count(&format!("SELECT count(*) FROM post_likes WHERE post_id = {id}"))
        .await;
    let detail = app.get(&format!("/api/community/posts/{id}")).await.json();
    assert_eq!(detail["likes"], rows, "the answer equals the rows at the end");
    let listed = app.get("/api/community/posts?sort=top").await.json();
    assert_eq!(listed["items"][0]["likes"], rows);
    // The first liker's like stands: idempotent PUT, DELETE as often as wanted.
    let again = call(
        &app,
        &likers[1],
        Method::PUT,
        &format!("/api/community/posts/{id}/like"),
        None,
    )
    .await;
    assert_eq!(again.json(), json!({"liked": true, "likes": rows}));
    let mine = call(
        &app,
        &likers[1],
        Method::GET,
        &format!("/api/community/posts/{id}"),
        None,
    )
    .await;
    assert_eq!(mine.json()["liked_by_me"], true);
    app.shutdown().await;
}

#[tokio::test]
async fn notifications_come_once_per_like_never_for_oneself_and_once_per_burst_of_comments() {
    let app = community_app().await;
    let (alice_id, alice) = person(&app, "alice", "爱丽丝", "user").await;
    let (bob_id, bob) = person(&app, "bob", "鲍勃", "user").await;
    let (_, carol) = person(&app, "carol", "卡罗尔", "user").await;
    let id = post(&app, &alice, "通知", "通知测试").await;
    let like = format!("/api/community/posts/{id}/like");

    // Liking one's own post notifies nobody; bob's like, unlike and like again notifies once.
    call(&app, &alice, Method::PUT, &like, None).await;
    for method in [Method::PUT, Method::DELETE, Method::PUT] {
        assert_eq!(call(&app, &bob, method, &like, None).await.status, StatusCode::OK);
    }
    let items = notifications(&app, &alice).await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["kind"], "like");
    assert_eq!(items[0]["actor"], json!({"id": bob_id, "display_name": "鲍勃"}));
    assert_eq!(items[0]["target"], json!({"type": "post", "id": id}));

    // Two comments from bob and one from carol: one unread comment notification for alice.
    let first = comment(&app, &bob, id, "第一条评论", None).await;
    comment(&app, &bob, id, "第二条评论", None).await;
    comment(&app, &carol, id, "卡罗尔的评论", None).await;
    let comments: Vec<Value> = notifications(&app, &alice)
        .await
        .into_iter()
        .filter(|n| n["kind"] == "comment")
        .collect();
    assert_eq!(comments.len(), 1, "a burst makes one unread notification: {comments:?}");
    assert_eq!(comments[0]["text"], "第一条评论");
    // Once read, the next comment notifies again.
    call(
        &app,
        &alice,
        Method::POST,
        "/api/me/notifications/read",
        Some(json!({"all": true})),
    )
    .await;
    comment(&app, &carol, id, "又一条", None).await;
    let unread = get(&app, Some(&alice), "/api/me/notifications?unread=true")
        .await
        .json();
    assert_eq!(unread["total"], 1);
    assert_eq!(unread["items"][0]["kind"], "comment");

    // Alice replies to bob: bob gets a reply; a comment like notifies bob once.
    let reply = comment(&app, &alice, id, "回复鲍勃", Some(first)).await;
    let comment_like = format!("/api/community/comments/{first}/like");
    for method in [Method::PUT, Method::DELETE, Method::PUT] {
        let answer = call(&app, &alice, method, &comment_like, None).await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    let bobs = notifications(&app, &bob).await;
    let kinds: Vec<&str> = bobs.iter().map(|n| n["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["like", "reply"], "{bobs:?}");
    assert_eq!(bobs[1]["target"], json!({"type": "comment", "id": reply}));
    assert_eq!(bobs[1]["actor"]["id"], alice_id);
    let list = app.get(&format!("/api/community/posts/{id}/comments")).await.json();
    assert_eq!(list["items"][0]["likes"], 1);
    // Replying to one's own comment notifies nobody.
    let before = app.count("SELECT count(*) FROM notifications").await;
    comment(&app, &alice, id, "自言自语", Some(reply)).await;
    assert_eq!(app.count("SELECT count(*) FROM notifications").await, before);
    app.shutdown().await;
}

/// Every body of `answers` must be free of `id` (as a number) and `name`.
fn assert_hidden(answers: &[(String, Answer)], id: i64, name: &str) {
    let id_text = id.to_string();
    for (path, answer) in answers {
        assert!(
            answer.status.is_success(),
            "{path}: {} {}",
            answer.status,
            answer.text()
        );
        let text = answer.text();
        assert!(!text.contains(name), "{path} names the anonymous author: {text}");
        assert!(
            !text.contains(&id_text),
            "{path} carries the anonymous author's id: {text}"
        );
    }
}

#[tokio::test]
async fn no_endpoint_reveals_an_anonymous_author_but_admins_see_them() {
    let app = community_app().await;
    // An id no other number in the answers can be mistaken for.
    let (author_id, author) = person_with_id(&app, Some(987_654_321), "ghost", "隐身作者Zeta", "user").await;
    let (_, bob) = person(&app, "bob", "鲍勃", "user").await;
    let (_, carol) = person(&app, "carol", "卡罗尔", "user").await;
    let (_, admin) = person(&app, "admin", "管理员", "admin").await;
    // Bob follows the author: the feed must not carry the anonymous post.
    let follow = call(&app, &bob, Method::PUT, &format!("/api/users/{author_id}/follow"), None).await;
    assert_eq!(follow.status, StatusCode::OK);

    let created = publish(
        &app,
        &author,
        json!({"board_id": 1, "title": "匿名树洞 secret", "content": "说一件不能署名的事：天气很好", "anonymous": true}),
    )
    .await;
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["author"], json!({"display_name": "匿名"}));
    let bob_comment = comment(&app, &bob, id, "鲍勃来了", None).await;
    let carol_comment = comment(&app, &carol, id, "卡罗尔来了", None).await;
    // The author answers bob, likes carol's comment, comments on the thread: all anonymous.
    comment(&app, &author, id, "楼主回复鲍勃", Some(bob_comment)).await;
    comment(&app, &author, id, "楼主补充", None).await;
    let like = call(
        &app,
        &author,
        Method::PUT,
        &format!("/api/community/posts/{id}/comments/{carol_comment}/like"),
        None,
    )
    .await;
    assert_eq!(like.status, StatusCode::OK);
    call(
        &app,
        &bob,
        Method::PUT,
        &format!("/api/community/posts/{id}/like"),
        None,
    )
    .await;
    app.sql("UPDATE post_stats SET views = 0").await;

    let mut answers = Vec::new();
    let paths = [
        format!("/api/community/posts/{id}"),
        format!("/api/community/posts/{id}/comments"),
        "/api/community/posts".to_string(),
        "/api/community/posts?board_id=1".to_string(),
        "/api/community/boards".to_string(),
        "/api/community/posts?sort=hot".to_string(),
        "/api/community/posts?sort=hot&range=day".to_string(),
        "/api/community/posts?sort=top&range=week".to_string(),
        "/api/community/posts?q=%E6%A0%91%E6%B4%9E".to_string(),
        "/api/community/posts?q=secret".to_string(),
        "/api/community/posts?q=%E5%A4%A9%E6%B0%94&sort=hot".to_string(),
        format!("/api/community/posts?author_id={author_id}"),
        "/community".to_string(),
        "/community?sort=hot".to_string(),
        "/community?q=%E6%A0%91%E6%B4%9E".to_string(),
        format!("/community/posts/{id}"),
    ];
    for token in [None, Some(bob.as_str()), Some(carol.as_str())] {
        for path in &paths {
            answers.push((format!("{path} as {token:?}"), get(&app, token, path).await));
        }
    }
    for token in [&bob, &carol] {
        for path in [
            "/api/community/feed",
            "/api/me/notifications",
            "/api/me/notifications?unread=true",
            "/me/notifications",
        ] {
            answers.push((path.to_string(), get(&app, Some(token), path).await));
        }
    }
    let listed = get(&app, None, "/api/community/posts").await.json();
    assert_eq!(listed["total"], 1, "the anonymous post is listed");
    assert_eq!(get(&app, Some(&bob), "/api/community/feed").await.json()["total"], 0);
    assert_eq!(
        get(&app, None, &format!("/api/community/posts?author_id={author_id}"))
            .await
            .json()["total"],
        0
    );
    let bobs = notifications(&app, &bob).await;
    assert!(
        bobs.iter().any(|n| n["kind"] == "reply" && n["actor"].is_null()),
        "{bobs:?}"
    );
    let carols = notifications(&app, &carol).await;
    assert!(
        carols.iter().any(|n| n["kind"] == "like" && n["actor"].is_null()),
        "{carols:?}"
    );
    assert_hidden(&answers, author_id, "隐身作者Zeta");

    // The author's public profile counts no anonymous post (the profile itself names them).
    let profile = app.get(&format!("/api/users/{author_id}")).await.json();
    assert_eq!(profile["posts"], 0);
    assert_eq!(profile["display_name"], "隐身作者Zeta");

    // Admins see who wrote it.
    let seen = call(&app, &admin, Method::GET, &format!("/api/community/posts/{id}"), None)
        .await
        .json();
    assert_eq!(seen["author"], json!({"id": author_id, "display_name": "隐身作者Zeta"}));
    let comments = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/community/posts/{id}/comments"),
        None,
    )
    .await;
    assert!(comments.text().contains("隐身作者Zeta"));
    let by_author = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/community/posts?author_id={author_id}"),
        None,
    )
    .await;
    assert_eq!(by_author.json()["total"], 1);
    app.shutdown().await;
}

#[tokio::test]
async fn hidden_content_is_gone_for_others_and_still_there_for_its_author_and_admins() {
    let app = community_app().await;
    let (alice_id, alice) = person(&app, "alice", "爱丽丝", "user").await;
    let (_, bob) = person(&app, "bob", "鲍勃", "user").await;
    let (_, admin) = person(&app, "admin", "管理员", "admin").await;
    let id = post(&app, &alice, "会被隐藏", "违规内容").await;
    let kept = post(&app, &alice, "正常帖子", "正常内容").await;
    let bobs_comment = comment(&app, &bob, kept, "违规评论", None).await;

    // Reports: once per reporter and target; the queue shows them to admins only.
    let report = call(
        &app,
        &bob,
        Method::POST,
        "/api/community/reports",
        Some(json!({"target": "post", "id": id, "reason": "广告"})),
    )
    .await;
    assert_eq!(report.status, StatusCode::CREATED, "{}", report.text());
    let again = call(
        &app,
        &bob,
        Method::POST,
        "/api/community/reports",
        Some(json!({"target": "post", "id": id, "reason": "广告"})),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json()["id"], report.json()["id"]);
    let report = call(
        &app,
        &alice,
        Method::POST,
        "/api/community/reports",
        Some(json!({"target": "comment", "id": bobs_comment, "reason": "骂人"})),
    )
    .await;
    assert_eq!(report.status, StatusCode::CREATED);
    assert_eq!(
        call(&app, &bob, Method::GET, "/api/admin/reports", None).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.get("/api/admin/reports").await.status, StatusCode::UNAUTHORIZED);
    let queue = call(&app, &admin, Method::GET, "/api/admin/reports", None).await.json();
    assert_eq!(queue["total"], 2);
    assert_eq!(queue["items"][1]["snapshot"], "会被隐藏\n违规内容");
    assert_eq!(queue["items"][1]["author"]["id"], alice_id);

    // Hide the post and the comment.
    for (kind, target) in [("post", id), ("comment", bobs_comment)] {
        let hidden = call(
            &app,
            &admin,
            Method::POST,
            &format!("/api/admin/community/{kind}/{target}/hide"),
            Some(json!({"reason": "违规"})),
        )
        .await;
        assert_eq!(hidden.status, StatusCode::OK, "{}", hidden.text());
        assert_eq!(hidden.json()["hidden"], true);
    }
    let open = call(&app, &admin, Method::GET, "/api/admin/reports?status=open", None)
        .await
        .json();
    assert_eq!(open["total"], 0, "hiding resolves the reports");

    let path = format!("/api/community/posts/{id}");
    assert_eq!(app.get(&path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        call(&app, &bob, Method::GET, &path, None).await.status,
        StatusCode::NOT_FOUND
    );
    let own = call(&app, &alice, Method::GET, &path, None).await;
    assert_eq!(own.status, StatusCode::OK);
    assert_eq!(own.json()["hidden"], true);
    let admins = call(&app, &admin, Method::GET, &path, None).await;
    assert_eq!(admins.json()["hidden"], true);
    let listed = app.get("/api/community/posts").await.json();
    assert_eq!(listed["total"], 1);
    assert_eq!(
        app.get("/api/community/posts?q=%E9%9A%90%E8%97%8F").await.json()["total"],
        0
    );
    assert_eq!(app.get(&format!("/api/users/{alice_id}")).await.json()["posts"], 1);
    let like = call(&app, &bob, Method::PUT, &format!("{path}/like"), None).await;
    assert_eq!(like.status, StatusCode::NOT_FOUND);

    let comments_path = format!("/api/community/posts/{kept}/comments");
    let for_others = app.get(&comments_path).await.json();
    assert_eq!(for_others["total"], 0);
    let for_bob = call(&app, &bob, Method::GET, &comments_path, None).await.json();
    assert_eq!(for_bob["items"][0]["hidden"], true, "its author still sees it");
    let for_admin = call(&app, &admin, Method::GET, &comments_path, None).await.json();
    assert_eq!(for_admin["total"], 1);
    assert_eq!(
        app.get(&format!("/api/community/posts/{kept}")).await.json()["comments"],
        0
    );

    // Unhide brings everything back; doing it twice changes nothing more.
    for _ in 0..2 {
        let shown = call(
            &app,
            &admin,
            Method::POST,
            &format!("/api/admin/community/post/{id}/unhide"),
            None,
        )
        .await;
        assert_eq!(shown.json()["hidden"], false);
    }
    assert_eq!(app.get(&path).await.status, StatusCode::OK);
    assert_eq!(app.get(&format!("/api/users/{alice_id}")).await.json()["posts"], 2);
    assert_eq!(
        app.count(
            "SELECT count(*) FROM admin_audit WHERE action LIKE 'community_%_hide' OR action LIKE 'community_%_unhide'"
        )
        .await,
        3
    );
    // Pinning puts a post first on its board, audited.
    let pin = call(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/admin/community/posts/{kept}"),
        Some(json!({"pinned": true})),
    )
    .await;
    assert_eq!(pin.status, StatusCode::OK);
    let board = app.get("/api/community/posts?board_id=1").await.json();
    assert_eq!(board["items"][0]["id"], kept);
    assert_eq!(board["items"][0]["pinned"], true);
    assert_eq!(
        app.count("SELECT count(*) FROM admin_audit WHERE action = 'community_post_pin'")
            .await,
        1
    );
    // The audit page names these actions and links their targets, in the reader's language.
    let audit = app
        .request(
            Method::GET,
            "/admin/audit",
            &[("cookie", &format!("zhifu_session={admin}; zhifu_lang=en"))],
            bytes::Bytes::new(),
        )
        .await
        .text();
    for label in [
        "Hid a post",
        "Hid a comment",
        "Unhid a post",
        "Pinned or unpinned a post",
    ] {
        assert!(audit.contains(label), "{label} missing: {audit}");
    }
    assert!(audit.contains(&format!("href=\"/community/posts/{id}\"")), "{audit}");
    assert!(audit.contains(&format!("href=\"/community/comments/{bobs_comment}\"")));
    assert!(!audit.contains(">community_post_hide<"), "a raw action code is shown");
    app.shutdown().await;
}

#[tokio::test]
async fn blocked_words_are_refused_through_disguises_without_naming_the_word() {
    let app = spawn_app_with(|s| s.community.blocked_words = vec!["赌博".into(), "casino".into()]).await;
    let (_, alice) = person(&app, "alice", "爱丽丝", "user").await;
    for (title, content) in [
        ("正常标题", "网上赌 博平台"),
        ("赌.博", "正文"),
        ("hi", "best ＣＡＳＩＮＯ in town"),
        ("hi", "c-a-s-i-n-o"),
    ] {
        let answer = call(
            &app,
            &alice,
            Method::POST,
            "/api/community/posts",
            Some(json!({"board_id": 1, "title": title, "content": content})),
        )
        .await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{content}");
        assert_eq!(answer.error_code(), "blocked_content");
        assert!(!answer.text().contains("赌博") && !answer.to_lowercase_text().contains("casino"));
    }
    assert_eq!(app.count("SELECT count(*) FROM posts").await, 0);
    let id = post(&app, &alice, "博物馆", "赌一把？不，去博物馆。occasional 🎰").await;
    let answer = call(
        &app,
        &alice,
        Method::POST,
        &format!("/api/community/posts/{id}/comments"),
        Some(json!({"content": "赌博"})),
    )
    .await;
    assert_eq!(answer.error_code(), "blocked_content");
    app.shutdown().await;
}

trait LowerText {
    fn to_lowercase_text(&self) -> String;
}

impl LowerText for Answer {
    fn to_lowercase_text(&self) -> String {
        self.text().to_lowercase()
    }
}

#[tokio::test]
async fn posting_is_rate_limited_per_user() {
    let app = spawn_app_with(|s| s.community.posts_per_hour = 2).await;
    let (_, alice) = person(&app, "alice", "爱丽丝", "user").await;
    let (_, bob) = person(&app, "bob", "鲍勃", "user").await;
    post(&app, &alice, "一", "一").await;
    post(&app, &alice, "二", "二").await;
    let third = call(
        &app,
        &alice,
        Method::POST,
        "/api/community/posts",
        Some(json!({"board_id": 1, "title": "三", "content": "三"})),
    )
    .await;
    assert_eq!(third.status, StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = third.header("retry-after").unwrap().parse().unwrap();
    assert!((3000..=3601).contains(&wait), "retry after {wait}");
    post(&app, &bob, "鲍勃", "别人不受影响").await;
    assert_eq!(app.count("SELECT count(*) FROM posts").await, 3);
    app.shutdown().await;

    let app = spawn_app_with(|s| s.community.min_interval_secs = 30).await;
    let (_, alice) = person(&app, "alice", "爱丽丝", "user").await;
    let id = post(&app, &alice, "一", "一").await;
    let soon = call(
        &app,
        &alice,
        Method::POST,
        &format!("/api/community/posts/{id}/comments"),
        Some(json!({"content": "太快"})),
    )
    .await;
    assert_eq!(soon.status, StatusCode::TOO_MANY_REQUESTS);
    app.shutdown().await;
}

#[tokio::test]
async fn admins_manage_boards_and_every_change_is_audited() {
    let app = community_app().await;
    let (_, admin) = person(&app, "admin", "管理员", "admin").await;
    let (_, user) = person(&app, "user", "用户", "user").await;
    let boards = app.get("/api/community/boards").await.json();
    assert_eq!(boards["items"][0]["name"], "综合");
    let body = json!({"name": "二手", "description": "闲置转让", "sort_order": 5});
    assert_eq!(
        app.post_json("/api/admin/boards", body.clone()).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&app, &user, Method::POST, "/api/admin/boards", Some(body.clone()))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let created = call(&app, &admin, Method::POST, "/api/admin/boards", Some(body.clone())).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let board = created.json()["id"].as_i64().unwrap();
    let twice = call(&app, &admin, Method::POST, "/api/admin/boards", Some(body)).await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert_eq!(twice.error_code(), "board_name_taken");
    let patched = call(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/admin/boards/{board}"),
        Some(json!({"sort_order": -1})),
    )
    .await;
    assert_eq!(patched.json()["name"], "二手");
    let boards = app.get("/api/community/boards").await.json();
    assert_eq!(boards["items"][0]["id"], board, "sorted by sort_order");
    let wrong = call(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/admin/boards/{board}"),
        None,
    )
    .await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        app.count("SELECT count(*) FROM admin_audit WHERE action LIKE 'community_board_%'")
            .await,
        2
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_like_or_comment_on_one_instance_refreshes_the_cached_lists_of_another_within_a_second() {
    let a = community_app().await;
    let b = spawn_app_on(a.db.clone(), |_| {}).await;
    let (_, alice) = person(&a, "alice", "爱丽丝", "user").await;
    let (_, bob) = person(&a, "bob", "鲍勃", "user").await;
    let old = post(&a, &alice, "旧帖", "旧").await;
    let new = post(&a, &alice, "新帖", "新").await;
    // Warm B's caches.
    for path in [
        "/api/community/posts?sort=hot",
        "/api/community/posts?sort=top&range=day",
    ] {
        assert_eq!(b.get(path).await.json()["items"][0]["id"], new, "{path}");
    }
    assert_eq!(b.get(&format!("/api/community/posts/{old}")).await.json()["likes"], 0);

    call(&a, &bob, Method::PUT, &format!("/api/community/posts/{old}/like"), None).await;
    comment(&a, &bob, old, "顶", None).await;
    let fresh = eventually(Duration::from_secs(1), || async {
        let hot = b.get("/api/community/posts?sort=hot").await.json();
        let top = b.get("/api/community/posts?sort=top&range=day").await.json();
        let detail = b.get(&format!("/api/community/posts/{old}")).await.json();
        hot["items"][0]["id"] == old && top["items"][0]["id"] == old && detail["likes"] == 1 && detail["comments"] == 1
    })
    .await;
    assert!(fresh, "B still answers its cached lists");
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test]
async fn views_are_counted_in_memory_and_written_in_batches() {
    let app = spawn_app_with(|s| s.community.views_flush_secs = 300).await;
    let (_, alice) = person(&app, "alice", "爱丽丝", "user").await;
    let id = post(&app, &alice, "浏览", "浏览量").await;
    for n in 1..=5 {
        assert_eq!(app.get(&format!("/api/community/posts/{id}")).await.json()["views"], n);
    }
    assert_eq!(
        app.count(&format!("SELECT views FROM post_stats WHERE post_id = {id}"))
            .await,
        0,
        "not one write per view"
    );
    assert_eq!(app.state.community.flush_views(&app.state.store).await.unwrap(), 1);
    assert_eq!(
        app.count(&format!("SELECT views FROM post_stats WHERE post_id = {id}"))
            .await,
        5
    );
    // A view counted just before a graceful stop is written by the stop.
    app.get(&format!("/api/community/posts/{id}")).await;
    let db = app.db.clone();
    app.shutdown().await;
    let (client, conn) = db.connect(NoTls).await.unwrap();
    tokio::spawn(conn);
    let views: i64 = client
        .query_one("SELECT views FROM post_stats WHERE post_id = $1", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(views, 6);
}
