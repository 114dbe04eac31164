//! The community in a real headless Chromium: a comment made on instance A turns the post
//! author's unread badge on instance B in place within a second (the page's long-poll), and a
//! member publishes a post with an image from the compose page, likes it and comments on it,
//! all through the page's script. Skipped (saying so) where Chromium is not installed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{Method, StatusCode};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use serde_json::json;

use crate::admin::call;
use crate::community::{comment, person, post};
use crate::devtools::{DevTools, chromium_or_skip};
use crate::helpers::{eventually, scratch_dir, spawn_app, spawn_app_on};

fn now_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64() * 1000.0
}

#[tokio::test]
async fn a_comment_on_one_instance_turns_the_authors_badge_on_another_within_a_second() {
    let Some(browser) = chromium_or_skip() else { return };
    let a = spawn_app().await;
    let b = spawn_app_on(a.db.clone(), |_| {}).await;
    let (_, author) = person(&a, "author", "作者", "user").await;
    let (_, reader) = person(&a, "reader", "读者", "user").await;
    let id = post(&a, &author, "等评论", "有人吗").await;

    let origin = b.url("");
    let page = b.url("/community");
    let profile = scratch_dir("chromium-badge");
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<f64>();
    let token = author.clone();
    let dir = profile.clone();
    let browser_side = tokio::task::spawn_blocking(move || {
        let mut tools = DevTools::start(browser, &dir);
        tools.set_cookies(&origin, &[("zhifu_session", &token)]);
        let session = tools.open_page();
        tools.navigate(&session, &page);
        let hidden = tools.eval(&session, "document.getElementById('unread-count').hidden");
        assert_eq!(hidden, json!(true), "no unread notification yet");
        // Note when the badge changes, by the page's own clock (the machine's).
        tools.eval(
            &session,
            "window.badgeAt = 0;
             new MutationObserver(() => { if (!window.badgeAt) window.badgeAt = Date.now(); })
               .observe(document.getElementById('unread-count'), {attributes: true, childList: true, characterData: true, subtree: true});
             true",
        );
        let _ = ready_tx.send(());
        let sent = go_rx.recv().expect("the comment was sent");
        let shown = tools.wait_for(
            &session,
            "(() => { const b = document.getElementById('unread-count'); return !b.hidden && b.textContent === '1'; })()",
            Duration::from_secs(10),
        );
        let at = tools.eval(&session, "window.badgeAt").as_f64().unwrap_or(0.0);
        (shown, at - sent)
    });
    ready_rx.await.expect("the page loaded");
    let parked = eventually(Duration::from_secs(10), || async {
        b.state.notices.waiting_users() == 1
    })
    .await;
    assert!(parked, "the page's long-poll never parked on B");

    let sent = now_ms();
    comment(&a, &reader, id, "我来了", None).await;
    go_tx.send(sent).unwrap();
    let (shown, lag_ms) = browser_side.await.expect("the browser session ran");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(shown, "the badge on B never showed the new notification");
    eprintln!("badge on B turned on {lag_ms:.0} ms after the comment was sent to A");
    assert!(lag_ms < 1000.0, "the badge turned on {lag_ms:.0} ms after the comment");
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test]
async fn a_member_publishes_with_an_image_likes_and_comments_from_the_pages() {
    let Some(browser) = chromium_or_skip() else { return };
    let app = spawn_app().await;
    let (_, member) = person(&app, "member", "会员", "user").await;
    let profile = scratch_dir("chromium-compose");
    std::fs::create_dir_all(&profile).unwrap();
    let picture = profile.join("picture.png");
    DynamicImage::ImageRgb8(RgbImage::from_fn(64, 48, |x, y| Rgb([x as u8 * 4, y as u8 * 5, 200])))
        .save_with_format(&picture, ImageFormat::Png)
        .unwrap();

    let origin = app.url("");
    let token = member.clone();
    let dir = profile.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut tools = DevTools::start(browser, &dir.join("profile"));
        tools.set_cookies(&origin, &[("zhifu_session", &token)]);
        let session = tools.open_page();
        tools.navigate(&session, &format!("{origin}/community/new"));
        tools.eval(
            &session,
            "document.getElementById('title').value = '浏览器发的帖';
             document.getElementById('content').value = '<b>不是粗体</b> 带一张图';
             true",
        );
        let document = tools.send(Some(&session), "DOM.getDocument", json!({}));
        let input = tools.send(
            Some(&session),
            "DOM.querySelector",
            json!({"nodeId": document["root"]["nodeId"], "selector": "#images"}),
        );
        tools.send(
            Some(&session),
            "DOM.setFileInputFiles",
            json!({"nodeId": input["nodeId"], "files": [picture.display().to_string()]}),
        );
        tools.eval(&session, "document.getElementById('compose-form').requestSubmit(); true");
        let published = tools.wait_for(
            &session,
            "location.pathname.startsWith('/community/posts/') && document.readyState === 'complete' && !!document.getElementById('like')",
            Duration::from_secs(20),
        );
        assert!(published, "the compose page did not lead to the new post");
        let shown = tools.eval(
            &session,
            "[document.querySelector('.post h1').textContent.trim(),
              document.getElementById('post-content').textContent,
              document.querySelectorAll('.gallery img').length,
              document.querySelectorAll('#post-content b').length]",
        );
        tools.eval(&session, "document.getElementById('like').click(); true");
        let liked = tools.wait_for(
            &session,
            "document.getElementById('like').getAttribute('aria-pressed') === 'true'
               && document.querySelector('#like .like-count').textContent === '1'",
            Duration::from_secs(10),
        );
        tools.eval(
            &session,
            "document.getElementById('comment-content').value = '自己顶一下';
             document.getElementById('comment-form').requestSubmit(); true",
        );
        let commented = tools.wait_for(
            &session,
            "document.readyState === 'complete' && !!document.querySelector('#comment-list .comment p')
               && document.querySelector('#comment-list .comment p').textContent === '自己顶一下'",
            Duration::from_secs(20),
        );
        (shown, liked, commented)
    })
    .await
    .expect("the browser session ran");
    let _ = std::fs::remove_dir_all(&profile);

    let (shown, liked, commented) = outcome;
    assert_eq!(
        shown,
        json!(["浏览器发的帖", "<b>不是粗体</b> 带一张图", 1, 0]),
        "text stays text"
    );
    assert!(liked, "the like button did not turn on");
    assert!(commented, "the comment did not appear");
    let listed = call(&app, &member, Method::GET, "/api/community/posts", None).await;
    assert_eq!(listed.status, StatusCode::OK);
    let item = &listed.json()["items"][0];
    assert_eq!(item["likes"], 1);
    assert_eq!(item["comments"], 1);
    assert_eq!(item["images"].as_array().unwrap().len(), 1);
    app.shutdown().await;
}
