//! The cached public reads answered on the request path (`http::at_once`): the second read
//! of each, answered from memory without the handler, is the first one's answer, byte for
//! byte and header for header — and a visitor never gets from memory what the handler would
//! refuse them.

use http::{Method, StatusCode};

use crate::helpers::{Answer, TestApp, spawn_app};

const SEED: &str = "
INSERT INTO users (username, password_hash, display_name, role) VALUES
  ('owner', 'x', '发起人', 'user'), ('shop', 'x', '商店', 'merchant'), ('poster', 'x', '发帖人', 'user');
WITH p AS (INSERT INTO projects (owner_id, title, summary, story, deadline, status, published_at, raised_fen, backers)
           SELECT id, '山区学校图书角', '图书角', '故事', now() + interval '30 days', 'live', now(), 150000, 12
             FROM users WHERE username = 'owner' RETURNING id)
INSERT INTO project_goals (project_id, position, amount_fen, title, description)
SELECT id, 0, 200000, '目标', '说明' FROM p;
INSERT INTO mall_categories (name) VALUES ('测试');
INSERT INTO mall_products (merchant_id, category_id, name, description, min_price_fen, search_text, listed)
SELECT u.id, c.id, '商品 ' || g, '说明', 1990, '商品 ' || g, g <> 2
  FROM users u, mall_categories c, generate_series(1, 2) g WHERE u.username = 'shop';
INSERT INTO mall_skus (product_id, specs, price_fen, stock, position)
SELECT id, '{\"颜色\":\"红\"}', 1990, 10, 0 FROM mall_products;
INSERT INTO posts (board_id, author_id, title, content, search, grams, hidden_at)
SELECT 1, u.id, '帖子 ' || g, '内容', '', '{}', CASE WHEN g = 2 THEN now() END
  FROM users u, generate_series(1, 2) g WHERE u.username = 'poster';
INSERT INTO post_stats (post_id, board_id, created_at, likes, comments, listed)
SELECT id, board_id, created_at, 1, 0, hidden_at IS NULL FROM posts;
";

async fn id(app: &TestApp, sql: &str) -> i64 {
    app.count(sql).await
}

/// Reads `path` twice; the second answer (from memory) must equal the first.
async fn twice(app: &TestApp, path: &str) -> (Answer, Answer) {
    let first = app.request(Method::GET, path, &[], Default::default()).await;
    let second = app.request(Method::GET, path, &[], Default::default()).await;
    for name in ["content-type", "cache-control", "x-content-type-options"] {
        assert_eq!(first.header(name), second.header(name), "{path}: {name}");
    }
    assert_eq!(first.status, second.status, "{path}");
    (first, second)
}

#[tokio::test]
async fn cached_reads_answer_at_once_exactly_as_their_handlers() {
    let app = spawn_app().await;
    app.sql(SEED).await;
    let project = id(&app, "SELECT id FROM projects").await;
    let listed = id(&app, "SELECT min(id) FROM mall_products WHERE listed").await;
    let unlisted = id(&app, "SELECT min(id) FROM mall_products WHERE NOT listed").await;
    let shown = id(&app, "SELECT min(id) FROM posts WHERE hidden_at IS NULL").await;
    let hidden = id(&app, "SELECT min(id) FROM posts WHERE hidden_at IS NOT NULL").await;
    let order = app.donate("8.00", "wechat").await["order_no"]
        .as_str()
        .unwrap()
        .to_string();
    // A create seeds the status board: drop it, so the first read below takes the handler.
    app.state.engine.status.changed(&order).await;

    for path in [
        "/api/rankings".to_string(),
        "/api/donations/recent?limit=5".to_string(),
        "/api/stats".to_string(),
        "/api/categories".to_string(),
        format!("/api/payments/{order}"),
        "/api/projects".to_string(),
        format!("/api/projects/{project}"),
        "/api/mall/products?sort=price_asc".to_string(),
        format!("/api/mall/products/{listed}"),
        "/api/community/posts?sort=hot".to_string(),
    ] {
        let (first, second) = twice(&app, &path).await;
        assert_eq!(first.status, StatusCode::OK, "{path}: {}", first.text());
        assert_eq!(first.body, second.body, "{path}");
    }

    // A post's detail counts the view: the same answer but one view more.
    let (first, second) = twice(&app, &format!("/api/community/posts/{shown}")).await;
    let (mut a, mut b) = (first.json(), second.json());
    assert_eq!(b["views"].as_i64(), a["views"].as_i64().map(|v| v + 1));
    a["views"] = 0.into();
    b["views"] = 0.into();
    assert_eq!(a, b);

    // What the handler refuses a visitor, memory does not give them.
    for path in [
        format!("/api/community/posts/{hidden}"),
        format!("/api/mall/products/{unlisted}"),
    ] {
        let (first, second) = twice(&app, &path).await;
        assert_eq!(first.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(second.error_code(), first.error_code(), "{path}");
    }
    let hot = app.get("/api/community/posts?sort=hot").await.json();
    let ids: Vec<i64> = hot["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![shown], "the hidden post is not listed");

    // A bad parameter is refused the same way whether or not an answer is cached.
    let bad = app.get("/api/community/posts?sort=sideways").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let bad = app.get(&format!("/api/payments/{order}?wait=99")).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// Fires `n` reads of `path` at once and returns how many pool connections they took.
async fn checkouts_of_concurrent_reads(app: &TestApp, path: &str, n: usize) -> u64 {
    let before = app.state.store.checkouts();
    let reads = (0..n).map(|_| app.get(path));
    for answer in futures_util::future::join_all(reads).await {
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.text());
    }
    app.state.store.checkouts() - before
}

#[tokio::test]
async fn concurrent_misses_of_a_list_load_it_once() {
    let app = spawn_app().await;
    app.sql(SEED).await;
    for path in ["/api/community/posts?sort=hot", "/api/projects"] {
        app.get(path).await;
        // Everything dropped, as an event or the lists' expiry does under load.
        app.state.community.changed_all();
        app.state.crowdfunding.cache.changed_all();
        assert_eq!(checkouts_of_concurrent_reads(&app, path, 20).await, 1, "{path}");
    }
}
