//! Comments: one level of replies (a reply to a reply is filed under the same top-level
//! comment and answers the one replied to), oldest first with each thread together. Writing
//! one moves the post's comment counter in the same statement and notifies the post's author
//! (`comment`) and the author of the comment answered (`reply`), never oneself. The author of
//! an anonymous post stays anonymous in its comments and in what their comments notify.
//! A burst of comments on one post makes one unread `comment` notification, not a storm.

use deadpool_postgres::GenericClient;
use http::StatusCode;
use http::request::Parts;
use serde::Deserialize;
use serde_json::{Value, json};

use super::json::{author, images};
use super::moderation::{Write, check_rate};
use super::post_changed;
use super::posts::{check_images, clean_text, resolve_reports};
use crate::account::{Principal, Role};
use crate::app::State;
use crate::error::AppError;
use crate::http::extract::{self, BodyKind};
use crate::http::list::Paging;
use crate::http::respond::{self, Response};
use crate::notify::{self, Actor, Kind, Notice, Target, TargetId};
use crate::pay::rfc3339;
use crate::store::StoreError;

pub const MAX_COMMENT: usize = 2_000;
pub const MAX_IMAGES: usize = 3;
/// Characters of a comment quoted in its notification.
const SNIPPET: usize = 80;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewComment {
    content: String,
    #[serde(default)]
    images: Vec<String>,
    #[serde(default)]
    parent_id: Option<i64>,
}

const POST_FOR_COMMENT: &str = "SELECT author_id, anonymous FROM posts
  WHERE id = $1 AND deleted_at IS NULL AND hidden_at IS NULL";
const PARENT: &str = "SELECT post_id, parent_id, author_id, anonymous FROM comments
  WHERE id = $1 AND deleted_at IS NULL AND hidden_at IS NULL";
const INSERT_COMMENT: &str = "WITH c AS (
        INSERT INTO comments (post_id, parent_id, reply_to_id, author_id, anonymous, content, images)
        VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, created_at),
     s AS (UPDATE post_stats SET comments = comments + 1 WHERE post_id = $1)
     SELECT id, created_at FROM c";
const UNREAD_ABOUT: &str = "SELECT EXISTS (SELECT 1 FROM notifications
  WHERE recipient_id = $1 AND kind = 'comment' AND target_type = 'post' AND target_id = $2 AND read_at IS NULL)";

/// The comment answered: who wrote it and under which top-level comment it files.
struct Parent {
    top: i64,
    author_id: i64,
}

async fn parent(client: &impl GenericClient, post_id: i64, parent_id: Option<i64>) -> Result<Option<Parent>, AppError> {
    let Some(parent_id) = parent_id else {
        return Ok(None);
    };
    let row = client
        .query_opt(PARENT, &[&parent_id])
        .await
        .map_err(StoreError::from)?
        .filter(|row| row.get::<_, i64>(0) == post_id)
        .ok_or_else(|| AppError::invalid("invalid_parent", "parent_id names no comment of this post"))?;
    let grandparent: Option<i64> = row.get(1);
    Ok(Some(Parent {
        top: grandparent.unwrap_or(parent_id),
        author_id: row.get(2),
    }))
}

/// `POST /api/community/posts/{id}/comments` → `201` with the comment.
pub async fn create(state: &State, parts: &Parts, post_id: i64, body: &[u8]) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    extract::body_kind(&parts.headers, &[BodyKind::Json])?;
    let input: NewComment = extract::json(body)?;
    let content = clean_text(&input.content, MAX_COMMENT, true, "invalid_content")?;
    check_images(&input.images, MAX_IMAGES)?;
    state.community.moderator.check(&[&content], &input.images).await?;
    let me = principal.user_id;

    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    check_rate(&tx, &state.community.settings, me, Write::Comment).await?;
    crate::media::check_ids(&tx, &input.images).await?;
    let post = tx
        .query_opt(POST_FOR_COMMENT, &[&post_id])
        .await
        .map_err(StoreError::from)?
        .ok_or(AppError::NotFound)?;
    let (post_author, post_anonymous): (i64, bool) = (post.get(0), post.get(1));
    let parent = parent(&tx, post_id, input.parent_id).await?;
    // The author of an anonymous post stays anonymous under it.
    let anonymous = post_anonymous && me == post_author;
    let statement = tx.prepare_cached(INSERT_COMMENT).await.map_err(StoreError::from)?;
    let row = tx
        .query_one(
            &statement,
            &[
                &post_id,
                &parent.as_ref().map(|p| p.top),
                &input.parent_id,
                &me,
                &anonymous,
                &content,
                &input.images,
            ],
        )
        .await
        .map_err(StoreError::from)?;
    let (id, created_at): (i64, time::OffsetDateTime) = (row.get(0), row.get(1));
    let actor = if anonymous {
        Actor::Anonymous(me)
    } else {
        Actor::User(me)
    };
    let snippet: String = content.chars().take(SNIPPET).collect();
    if let Some(parent) = &parent {
        let notice = Notice {
            recipient_id: parent.author_id,
            kind: Kind::Reply,
            actor,
            target: Target {
                kind: "comment",
                id: TargetId::Id(id),
            },
            text: &snippet,
            dedupe_key: None,
        };
        notify::notify(&tx, &notice).await.map_err(StoreError::from)?;
    }
    let replied_to_author = parent.as_ref().is_some_and(|p| p.author_id == post_author);
    if !replied_to_author && post_author != me {
        let pending: bool = tx
            .query_one(UNREAD_ABOUT, &[&post_author, &post_id])
            .await
            .map_err(StoreError::from)?
            .get(0);
        if !pending {
            let notice = Notice {
                recipient_id: post_author,
                kind: Kind::Comment,
                actor,
                target: Target {
                    kind: "post",
                    id: TargetId::Id(post_id),
                },
                text: &snippet,
                dedupe_key: None,
            };
            notify::notify(&tx, &notice).await.map_err(StoreError::from)?;
        }
    }
    post_changed(&tx, post_id).await.map_err(StoreError::from)?;
    tx.commit().await.map_err(StoreError::from)?;
    drop(client);
    state.community.changed(Some(post_id));
    let value = json!({
        "id": id,
        "post_id": post_id,
        "parent_id": parent.as_ref().map(|p| p.top),
        "reply_to_id": input.parent_id,
        "content": content,
        "images": images(&input.images),
        "author": author(me, &principal.display_name, anonymous, principal.role == Role::Admin),
        "op": me == post_author,
        "likes": 0,
        "liked_by_me": false,
        "hidden": false,
        "created_at": rfc3339(created_at),
    });
    Ok(respond::json(StatusCode::CREATED, value.to_string()))
}

const POST_VISIBLE: &str = "SELECT author_id, hidden_at IS NOT NULL FROM posts WHERE id = $1 AND deleted_at IS NULL";
const LIST: &str = "SELECT c.id, c.parent_id, c.reply_to_id, c.content, c.images, c.author_id, u.display_name,
        c.anonymous, c.likes, c.created_at, c.hidden_at IS NOT NULL, c.author_id = p.author_id,
        EXISTS (SELECT 1 FROM comment_likes l WHERE l.comment_id = c.id AND l.user_id = $2)
   FROM comments c JOIN users u ON u.id = c.author_id JOIN posts p ON p.id = c.post_id
  WHERE c.post_id = $1 AND c.deleted_at IS NULL AND (c.hidden_at IS NULL OR c.author_id = $2 OR $3)
  ORDER BY coalesce(c.parent_id, c.id), c.id LIMIT $4 OFFSET $5";
const COUNT: &str = "SELECT count(*) FROM comments c
  WHERE c.post_id = $1 AND c.deleted_at IS NULL AND (c.hidden_at IS NULL OR c.author_id = $2 OR $3)";

fn comment_json(row: &tokio_postgres::Row, reveal: bool) -> Value {
    json!({
        "id": row.get::<_, i64>(0),
        "parent_id": row.get::<_, Option<i64>>(1),
        "reply_to_id": row.get::<_, Option<i64>>(2),
        "content": row.get::<_, String>(3),
        "images": images(&row.get::<_, Vec<String>>(4)),
        "author": author(row.get(5), row.get(6), row.get(7), reveal),
        "likes": row.get::<_, i64>(8),
        "created_at": rfc3339(row.get(9)),
        "hidden": row.get::<_, bool>(10),
        "op": row.get::<_, bool>(11),
        "liked_by_me": row.get::<_, bool>(12),
    })
}

/// The comments of post `post_id` as `viewer` may see them (hidden ones only to their author
/// and admins); 404 when the post is not visible to the viewer.
pub async fn page(
    state: &State,
    post_id: i64,
    viewer: Option<&Principal>,
    paging: Paging,
) -> Result<(Vec<Value>, i64), AppError> {
    let client = state.store.client().await?;
    let post = client
        .query_opt(POST_VISIBLE, &[&post_id])
        .await
        .map_err(StoreError::from)?
        .ok_or(AppError::NotFound)?;
    let admin = viewer.is_some_and(|v| v.role == Role::Admin);
    let viewer_id = viewer.map_or(0, |v| v.user_id);
    let (post_author, post_hidden): (i64, bool) = (post.get(0), post.get(1));
    if post_hidden && !admin && viewer_id != post_author {
        return Err(AppError::NotFound);
    }
    let list = client.prepare_cached(LIST).await.map_err(StoreError::from)?;
    let count = client.prepare_cached(COUNT).await.map_err(StoreError::from)?;
    let (limit, offset) = (paging.limit(), paging.offset());
    let list_params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] = [&post_id, &viewer_id, &admin, &limit, &offset];
    let count_params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&post_id, &viewer_id, &admin];
    let (rows, total) = tokio::try_join!(
        client.query(&list, &list_params),
        client.query_one(&count, &count_params)
    )
    .map_err(StoreError::from)?;
    Ok((rows.iter().map(|r| comment_json(r, admin)).collect(), total.get(0)))
}

/// `GET /api/community/posts/{id}/comments?page=&size=`: oldest first, threads together.
pub async fn list(state: &State, parts: &Parts, post_id: i64) -> Result<Response, AppError> {
    let paging = Paging::standard(parts.uri.query())?;
    let viewer = state.sessions.principal(&state.store, parts).await.ok().flatten();
    let (items, total) = page(state, post_id, viewer.as_deref(), paging).await?;
    let body = serde_json::to_vec(&paging.listing(total, items)).map_err(|e| AppError::Internal(e.into()))?;
    Ok(respond::json(StatusCode::OK, body))
}

const LOCK_COMMENT: &str = "SELECT c.post_id, c.author_id, c.hidden_at IS NOT NULL, c.content FROM comments c
  WHERE c.id = $1 AND c.deleted_at IS NULL FOR UPDATE";
const DELETE_COMMENT: &str = "UPDATE comments SET deleted_at = now(), deleted_by = $2 WHERE id = $1";
const UNCOUNT: &str = "UPDATE post_stats SET comments = comments - 1 WHERE post_id = $1";

/// `DELETE /api/community/posts/{post}/comments/{id}` (or `/api/community/comments/{id}`): the
/// author or an admin; soft, audited → `204`. `post_id` must match when given.
pub async fn delete(
    state: &State,
    parts: &Parts,
    post_id: Option<i64>,
    id: i64,
    ip: std::net::IpAddr,
) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let row = tx
        .query_opt(LOCK_COMMENT, &[&id])
        .await
        .map_err(StoreError::from)?
        .filter(|row| post_id.is_none_or(|p| row.get::<_, i64>(0) == p))
        .ok_or(AppError::NotFound)?;
    let (post, author_id, hidden, content): (i64, i64, bool, String) = (row.get(0), row.get(1), row.get(2), row.get(3));
    if author_id != principal.user_id && principal.role != Role::Admin {
        return Err(if hidden {
            AppError::NotFound
        } else {
            AppError::Forbidden
        });
    }
    tx.execute(DELETE_COMMENT, &[&id, &principal.user_id])
        .await
        .map_err(StoreError::from)?;
    if !hidden {
        tx.execute(UNCOUNT, &[&post]).await.map_err(StoreError::from)?;
    }
    resolve_reports(&tx, "comment", id, principal.user_id).await?;
    let before = json!({"post_id": post, "author_id": author_id, "content": content, "hidden": hidden});
    super::admin::audit(
        &tx,
        &principal,
        "community_comment_delete",
        &format!("comment:{id}"),
        Some(&before),
        None,
        ip,
    )
    .await?;
    post_changed(&tx, post).await.map_err(StoreError::from)?;
    tx.commit().await.map_err(StoreError::from)?;
    state.community.changed(Some(post));
    Ok(respond::with_body(
        StatusCode::NO_CONTENT,
        http::HeaderValue::from_static("text/plain"),
        bytes::Bytes::new(),
    ))
}
