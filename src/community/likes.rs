//! Likes of posts and comments: `PUT` likes, `DELETE` unlikes, both idempotent. The row and
//! the counter change in one statement (a conditional insert or delete, and the counter moved
//! only when it did), so the counter equals the rows at every moment, under any concurrency.
//! The first like of a user notifies the author once, ever (the notification's dedupe key):
//! a like taken back and given again does not notify twice.

use http::StatusCode;
use http::request::Parts;

use super::post_changed;
use crate::account::Role;
use crate::app::State;
use crate::error::AppError;
use crate::http::respond::{self, Response};
use crate::notify::{self, Actor, Kind, Notice, Target, TargetId};
use crate::store::StoreError;

const LIKE_POST: &str = "WITH ins AS (
        INSERT INTO post_likes (post_id, user_id)
        SELECT id, $2 FROM posts WHERE id = $1 AND deleted_at IS NULL AND hidden_at IS NULL
        ON CONFLICT DO NOTHING RETURNING 1),
     upd AS (UPDATE post_stats SET likes = likes + 1 WHERE post_id = $1 AND EXISTS (SELECT 1 FROM ins)
        RETURNING likes)
     SELECT p.author_id, p.anonymous, p.title, EXISTS (SELECT 1 FROM ins),
            coalesce((SELECT likes FROM upd), (SELECT likes FROM post_stats WHERE post_id = $1))
       FROM posts p WHERE p.id = $1 AND p.deleted_at IS NULL AND p.hidden_at IS NULL";
const UNLIKE_POST: &str = "WITH del AS (
        DELETE FROM post_likes WHERE post_id = $1 AND user_id = $2 RETURNING 1),
     upd AS (UPDATE post_stats SET likes = likes - 1 WHERE post_id = $1 AND EXISTS (SELECT 1 FROM del)
        RETURNING likes)
     SELECT p.author_id, p.anonymous, p.title, EXISTS (SELECT 1 FROM del),
            coalesce((SELECT likes FROM upd), (SELECT likes FROM post_stats WHERE post_id = $1))
       FROM posts p WHERE p.id = $1 AND p.deleted_at IS NULL AND p.hidden_at IS NULL";

/// `PUT` (`on`) or `DELETE /api/community/posts/{id}/like` → `{"liked", "likes"}`.
pub async fn post(state: &State, parts: &Parts, id: i64, on: bool) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    let me = principal.user_id;
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let statement = tx
        .prepare_cached(if on { LIKE_POST } else { UNLIKE_POST })
        .await
        .map_err(StoreError::from)?;
    let row = tx
        .query_opt(&statement, &[&id, &me])
        .await
        .map_err(StoreError::from)?
        .ok_or(AppError::NotFound)?;
    let (author_id, title, changed, likes): (i64, String, bool, i64) = (row.get(0), row.get(2), row.get(3), row.get(4));
    if changed {
        if on {
            let key = format!("like:post:{id}:{me}");
            let notice = Notice {
                recipient_id: author_id,
                kind: Kind::Like,
                actor: Actor::User(me),
                target: Target {
                    kind: "post",
                    id: TargetId::Id(id),
                },
                text: &title,
                dedupe_key: Some(&key),
            };
            notify::notify(&tx, &notice).await.map_err(StoreError::from)?;
        }
        post_changed(&tx, id).await.map_err(StoreError::from)?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    if changed {
        state.community.changed(Some(id));
    }
    Ok(answer(on, likes))
}

fn answer(liked: bool, likes: i64) -> Response {
    respond::json(StatusCode::OK, format!(r#"{{"liked":{liked},"likes":{likes}}}"#))
}

const LIKE_COMMENT: &str = "WITH ins AS (
        INSERT INTO comment_likes (comment_id, user_id)
        SELECT c.id, $2 FROM comments c JOIN posts p ON p.id = c.post_id
         WHERE c.id = $1 AND c.deleted_at IS NULL AND c.hidden_at IS NULL
           AND p.deleted_at IS NULL AND p.hidden_at IS NULL
        ON CONFLICT DO NOTHING RETURNING 1),
     upd AS (UPDATE comments SET likes = likes + 1 WHERE id = $1 AND EXISTS (SELECT 1 FROM ins) RETURNING likes)
     SELECT c.author_id, c.content, c.post_id, p.anonymous AND p.author_id = $2, EXISTS (SELECT 1 FROM ins),
            coalesce((SELECT likes FROM upd), c.likes)
       FROM comments c JOIN posts p ON p.id = c.post_id
      WHERE c.id = $1 AND c.deleted_at IS NULL AND c.hidden_at IS NULL AND p.deleted_at IS NULL AND p.hidden_at IS NULL";
const UNLIKE_COMMENT: &str = "WITH del AS (
        DELETE FROM comment_likes WHERE comment_id = $1 AND user_id = $2 RETURNING 1),
     upd AS (UPDATE comments SET likes = likes - 1 WHERE id = $1 AND EXISTS (SELECT 1 FROM del) RETURNING likes)
     SELECT c.author_id, c.content, c.post_id, p.anonymous AND p.author_id = $2, EXISTS (SELECT 1 FROM del),
            coalesce((SELECT likes FROM upd), c.likes)
       FROM comments c JOIN posts p ON p.id = c.post_id
      WHERE c.id = $1 AND c.deleted_at IS NULL AND c.hidden_at IS NULL AND p.deleted_at IS NULL AND p.hidden_at IS NULL";

/// `PUT` (`on`) or `DELETE /api/community/comments/{id}/like` (also under its post) →
/// `{"liked", "likes"}`. The author of an anonymous post liking a comment under it is not
/// named in the notification.
pub async fn comment(
    state: &State,
    parts: &Parts,
    post_id: Option<i64>,
    id: i64,
    on: bool,
) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    let me = principal.user_id;
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let statement = tx
        .prepare_cached(if on { LIKE_COMMENT } else { UNLIKE_COMMENT })
        .await
        .map_err(StoreError::from)?;
    let row = tx
        .query_opt(&statement, &[&id, &me])
        .await
        .map_err(StoreError::from)?
        .filter(|row| post_id.is_none_or(|p| row.get::<_, i64>(2) == p))
        .ok_or(AppError::NotFound)?;
    let (author_id, content, as_anonymous, changed, likes): (i64, String, bool, bool, i64) =
        (row.get(0), row.get(1), row.get(3), row.get(4), row.get(5));
    if changed && on {
        let key = format!("like:comment:{id}:{me}");
        let text: String = content.chars().take(80).collect();
        let notice = Notice {
            recipient_id: author_id,
            kind: Kind::Like,
            actor: if as_anonymous {
                Actor::Anonymous(me)
            } else {
                Actor::User(me)
            },
            target: Target {
                kind: "comment",
                id: TargetId::Id(id),
            },
            text: &text,
            dedupe_key: Some(&key),
        };
        notify::notify(&tx, &notice).await.map_err(StoreError::from)?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(answer(on, likes))
}
