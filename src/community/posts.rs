//! Posts: publishing (moderated, rate limited, images checked, the author's post count moved
//! in the same transaction), the detail (from memory, views counted there), and deletion by
//! the author or an admin (soft, audited).

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use deadpool_postgres::GenericClient;
use http::StatusCode;
use http::request::Parts;
use serde::Deserialize;

use super::json::{PostRow, open_object, post_columns};
use super::moderation::{Write, check_rate};
use super::{PostEntry, post_changed};
use crate::account::profiles::profile_changed;
use crate::account::{Principal, Role};
use crate::app::State;
use crate::error::AppError;
use crate::http::extract::{self, BodyKind};
use crate::http::respond::{self, Response};
use crate::store::StoreError;

/// Limits of the contract, in characters.
pub const MAX_TITLE: usize = 100;
pub const MAX_CONTENT: usize = 10_000;
pub const MAX_IMAGES: usize = 9;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewPost {
    #[schemars(range(min = 1))]
    board_id: i64,
    #[schemars(length(max = 100))]
    title: String,
    #[schemars(length(max = 10000))]
    content: String,
    #[serde(default)]
    #[schemars(length(max = 9), inner(regex(pattern = r"^[0-9a-f]{64}$")))]
    images: Vec<String>,
    #[serde(default)]
    anonymous: bool,
}

/// `text` trimmed, of 1..=`max` characters, no control characters but line breaks and tabs
/// where `multiline`; else 422 `code`.
pub fn clean_text(text: &str, max: usize, multiline: bool, code: &'static str) -> Result<String, AppError> {
    let text = text.trim();
    let count = text.chars().count();
    let allowed = |c: char| !c.is_control() || (multiline && matches!(c, '\n' | '\t' | '\r'));
    if count == 0 || count > max || !text.chars().all(allowed) {
        let field = code.trim_start_matches("invalid_");
        return Err(AppError::invalid(
            code,
            format!("{field} must be 1 to {max} characters without control characters"),
        ));
    }
    Ok(text.replace("\r\n", "\n"))
}

/// At most `max` distinct image ids (their existence is checked in the transaction).
pub fn check_images(ids: &[String], max: usize) -> Result<(), AppError> {
    let mut seen = std::collections::HashSet::new();
    if ids.len() > max || !ids.iter().all(|id| seen.insert(id.as_str())) {
        return Err(AppError::invalid(
            "invalid_images",
            format!("images must be at most {max} distinct image ids"),
        ));
    }
    Ok(())
}

const INSERT_POST: &str = "WITH p AS (
        INSERT INTO posts (board_id, author_id, anonymous, title, content, images, search, grams)
        SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE EXISTS (SELECT 1 FROM boards WHERE id = $1)
        RETURNING id, board_id, created_at)
     INSERT INTO post_stats (post_id, board_id, created_at) SELECT id, board_id, created_at FROM p
     RETURNING post_id";
const COUNT_POST: &str = "UPDATE users SET posts_count = posts_count + $2 WHERE id = $1";

/// Moves `user_id`'s public post count by `delta` and tells every instance's profiles.
pub async fn move_post_count(client: &impl GenericClient, user_id: i64, delta: i64) -> Result<(), StoreError> {
    let statement = client.prepare_cached(COUNT_POST).await?;
    client.execute(&statement, &[&user_id, &delta]).await?;
    profile_changed(client, user_id).await?;
    Ok(())
}

/// `POST /api/community/posts` → `201` with the post as its author sees it.
pub async fn create(state: &State, parts: &Parts, body: &[u8]) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    extract::body_kind(&parts.headers, &[BodyKind::Json])?;
    let input: NewPost = extract::json(body)?;
    let title = clean_text(&input.title, MAX_TITLE, false, "invalid_title")?;
    let content = clean_text(&input.content, MAX_CONTENT, true, "invalid_content")?;
    check_images(&input.images, MAX_IMAGES)?;
    let community = &state.community;
    community.moderator.check(&[&title, &content], &input.images).await?;
    let search = super::search::document(&title, &content);
    let grams = super::search::grams(&search);

    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    check_rate(&tx, &community.settings, principal.user_id, Write::Post).await?;
    crate::media::check_ids(&tx, &input.images).await?;
    let statement = tx.prepare_cached(INSERT_POST).await.map_err(StoreError::from)?;
    let id: i64 = tx
        .query_opt(
            &statement,
            &[
                &input.board_id,
                &principal.user_id,
                &input.anonymous,
                &title,
                &content,
                &input.images,
                &search,
                &grams,
            ],
        )
        .await
        .map_err(StoreError::from)?
        .ok_or_else(|| AppError::invalid("unknown_board", "board_id names no board"))?
        .get(0);
    if !input.anonymous {
        move_post_count(&tx, principal.user_id, 1).await?;
    }
    post_changed(&tx, id).await.map_err(StoreError::from)?;
    tx.commit().await.map_err(StoreError::from)?;
    drop(client);
    after_commit(state, id, (!input.anonymous).then_some(principal.user_id));
    let body = post_body(state, id, Some(&principal), false).await?;
    Ok(respond::json(StatusCode::CREATED, body))
}

/// What a committed change of post `id` means for this instance's caches (the events reach
/// it a moment later; the writer's next read must not wait for them).
pub fn after_commit(state: &State, id: i64, profile_of: Option<i64>) {
    state.community.changed(Some(id));
    if let Some(user_id) = profile_of {
        state.profiles.changed(user_id);
    }
}

const SELECT_POST: &str = concat!(
    "SELECT ",
    post_columns!(),
    " FROM posts p JOIN post_stats s ON s.post_id = p.id JOIN users u ON u.id = p.author_id WHERE p.id = $1"
);

/// Reads post `id` (deleted ones included).
pub async fn read_post(client: &impl GenericClient, id: i64) -> Result<Option<PostRow>, StoreError> {
    let statement = client.prepare_cached(SELECT_POST).await?;
    Ok(client.query_opt(&statement, &[&id]).await?.as_ref().map(PostRow::read))
}

/// The cached detail of post `id`: `None` when there is no such post or it was deleted.
pub async fn entry(state: &State, id: i64) -> Result<Option<Arc<PostEntry>>, AppError> {
    let cache = &state.community.posts;
    if let Some(hit) = cache.get(id) {
        return Ok(hit);
    }
    let began = cache.begin();
    let client = state.store.client().await?;
    let entry = read_post(&client, id).await?.filter(|p| !p.deleted).map(|post| {
        Arc::new(PostEntry {
            head: Bytes::from(open_object(&post.detail(false))),
            author_id: post.author_id,
            hidden: post.hidden,
            views: post.views,
        })
    });
    cache.keep(id, entry.clone(), began);
    Ok(entry)
}

const LIKED: &str = "SELECT EXISTS (SELECT 1 FROM post_likes WHERE post_id = $1 AND user_id = $2)";

/// Whether `user_id` likes post `id`.
async fn liked(state: &State, id: i64, user_id: i64) -> Result<bool, AppError> {
    let client = state.store.client().await?;
    let statement = client.prepare_cached(LIKED).await.map_err(StoreError::from)?;
    Ok(client
        .query_one(&statement, &[&id, &user_id])
        .await
        .map_err(StoreError::from)?
        .get(0))
}

/// The detail JSON of post `id` for `viewer`: 404 when deleted, or hidden and the viewer is
/// neither its author nor an admin. Admins read it from the database, author revealed.
/// `count_view` counts this read as a view.
pub async fn post_body(
    state: &State,
    id: i64,
    viewer: Option<&Principal>,
    count_view: bool,
) -> Result<Bytes, AppError> {
    if let Some(admin) = viewer.filter(|v| v.role == Role::Admin) {
        return admin_body(state, id, admin.user_id).await;
    }
    let entry = entry(state, id).await?.ok_or(AppError::NotFound)?;
    let mine = viewer.is_some_and(|v| v.user_id == entry.author_id);
    if entry.hidden && !mine {
        return Err(AppError::NotFound);
    }
    let unwritten = if count_view {
        state.community.count_view(id)
    } else {
        state.community.pending_views(id)
    };
    let views = entry.views + unwritten;
    let liked_by_me = match viewer {
        Some(viewer) => liked(state, id, viewer.user_id).await?,
        None => false,
    };
    Ok(with_tail(&entry.head, views, liked_by_me, mine))
}

/// A visitor's `GET /api/community/posts/{id}` when the post is in memory and shown: what
/// [`post_body`] answers a visitor, view counted, without a future (the request path answers
/// it at once). `None` on a miss or for a hidden or deleted post: the general path answers.
pub fn visitor_body_cached(state: &State, id: i64) -> Option<Bytes> {
    let entry = state.community.posts.get(id)??;
    if entry.hidden {
        return None;
    }
    let views = entry.views + state.community.count_view(id);
    Some(with_tail(&entry.head, views, false, false))
}

/// `head` with `"views":…,"liked_by_me":…,"mine":…}`, written without serializing again.
fn with_tail(head: &[u8], views: i64, liked_by_me: bool, mine: bool) -> Bytes {
    let mut number = itoa::Buffer::new();
    let views = number.format(views);
    let mut body = BytesMut::with_capacity(head.len() + 64);
    body.put_slice(head);
    body.put_slice(b",\"views\":");
    body.put_slice(views.as_bytes());
    body.put_slice(if liked_by_me {
        b",\"liked_by_me\":true"
    } else {
        b",\"liked_by_me\":false"
    });
    body.put_slice(if mine { b",\"mine\":true}" } else { b",\"mine\":false}" });
    body.freeze()
}

/// An admin's view: from the database, the author revealed, deleted posts too.
async fn admin_body(state: &State, id: i64, admin_id: i64) -> Result<Bytes, AppError> {
    let client = state.store.client().await?;
    let post = read_post(&client, id).await?.ok_or(AppError::NotFound)?;
    drop(client);
    let mut value = post.detail(true);
    value["deleted"] = serde_json::Value::Bool(post.deleted);
    let liked_by_me = liked(state, id, admin_id).await?;
    Ok(with_tail(
        &open_object(&value),
        post.views,
        liked_by_me,
        post.author_id == admin_id,
    ))
}

/// `GET /api/community/posts/{id}`: from memory for visitors; counts a view.
pub async fn detail(state: &State, parts: &Parts, id: i64) -> Result<Response, AppError> {
    // A stale or broken session reads the post as a visitor would.
    let viewer = state.sessions.principal(&state.store, parts).await.ok().flatten();
    let body = post_body(state, id, viewer.as_deref(), true).await?;
    Ok(respond::json(StatusCode::OK, body))
}

const LOCK_POST: &str = "SELECT author_id, anonymous, hidden_at IS NOT NULL, title FROM posts
  WHERE id = $1 AND deleted_at IS NULL FOR UPDATE";
const DELETE_POST: &str = "WITH d AS (UPDATE posts SET deleted_at = now(), deleted_by = $2 WHERE id = $1 RETURNING id)
     UPDATE post_stats SET listed = false WHERE post_id = (SELECT id FROM d)";
const RESOLVE_REPORTS: &str = "UPDATE reports SET status = 'resolved', resolved_by = $3, resolved_at = now()
  WHERE target_type = $1 AND target_id = $2 AND status = 'open'";

/// Marks the open reports on a target resolved (it was hidden or deleted).
pub async fn resolve_reports(client: &impl GenericClient, target: &str, id: i64, by: i64) -> Result<(), StoreError> {
    let statement = client.prepare_cached(RESOLVE_REPORTS).await?;
    client.execute(&statement, &[&target, &id, &by]).await?;
    Ok(())
}

/// `DELETE /api/community/posts/{id}`: the author or an admin; soft, audited → `204`.
pub async fn delete(state: &State, parts: &Parts, id: i64, ip: std::net::IpAddr) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let row = tx
        .query_opt(LOCK_POST, &[&id])
        .await
        .map_err(StoreError::from)?
        .ok_or(AppError::NotFound)?;
    let (author_id, anonymous, hidden, title): (i64, bool, bool, String) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let admin = principal.role == Role::Admin;
    if author_id != principal.user_id && !admin {
        // A hidden post does not exist for anyone else.
        return Err(if hidden {
            AppError::NotFound
        } else {
            AppError::Forbidden
        });
    }
    tx.execute(DELETE_POST, &[&id, &principal.user_id])
        .await
        .map_err(StoreError::from)?;
    let counted = !anonymous && !hidden;
    if counted {
        move_post_count(&tx, author_id, -1).await?;
    }
    resolve_reports(&tx, "post", id, principal.user_id).await?;
    let before = serde_json::json!({"title": title, "author_id": author_id, "anonymous": anonymous, "hidden": hidden});
    super::admin::audit(
        &tx,
        &principal,
        "community_post_delete",
        &format!("post:{id}"),
        Some(&before),
        None,
        ip,
    )
    .await?;
    post_changed(&tx, id).await.map_err(StoreError::from)?;
    tx.commit().await.map_err(StoreError::from)?;
    after_commit(state, id, counted.then_some(author_id));
    Ok(respond::with_body(
        StatusCode::NO_CONTENT,
        http::HeaderValue::from_static("text/plain"),
        Bytes::new(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_trimmed_and_bounded() {
        assert_eq!(clean_text("  标题 ", 100, false, "invalid_title").unwrap(), "标题");
        assert_eq!(clean_text("a\r\nb", 10, true, "invalid_content").unwrap(), "a\nb");
        assert!(clean_text("a\nb", 10, false, "invalid_title").is_err());
        assert!(clean_text("   ", 10, false, "invalid_title").is_err());
        assert!(clean_text(&"字".repeat(101), 100, false, "invalid_title").is_err());
        assert!(check_images(&["a".into(), "a".into()], 9).is_err());
        assert_eq!(
            with_tail(b"{\"id\":1", 12, true, false),
            Bytes::from_static(b"{\"id\":1,\"views\":12,\"liked_by_me\":true,\"mine\":false}")
        );
    }
}
