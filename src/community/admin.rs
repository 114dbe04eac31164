//! Moderation by people: reports (one per reporter and target, with the text as it was),
//! the admin queue, hide and unhide of posts and comments, pinning — every action written
//! to the audit log in its transaction. Hidden content is gone for everyone but its author
//! and admins; hiding or deleting a target resolves its open reports.

use std::net::IpAddr;
use std::sync::Arc;

use deadpool_postgres::GenericClient;
use http::StatusCode;
use http::request::Parts;
use serde::Deserialize;
use serde_json::json;

use super::json::author;
use super::post_changed;
use super::posts::{after_commit, clean_text, move_post_count, resolve_reports};
use crate::account::{Principal, Role};
use crate::app::State;
use crate::error::AppError;
use crate::http::extract::{self, BodyKind};
use crate::http::list::Paging;
use crate::http::respond::{self, Response};
use crate::pay::rfc3339;
use crate::store::StoreError;

/// The admin behind a request and where it came from.
pub struct Admin {
    pub principal: Arc<Principal>,
    pub ip: IpAddr,
}

/// Writes `principal`'s audit row for `action` on `target` in the caller's transaction.
pub async fn audit(
    client: &impl GenericClient,
    principal: &Principal,
    action: &str,
    target: &str,
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
    ip: IpAddr,
) -> Result<(), StoreError> {
    let name = principal.username.as_deref().unwrap_or(&principal.display_name);
    let ip = ip.to_string();
    let actor = crate::store::audit::Actor {
        user_id: Some(principal.user_id),
        name,
        ip: &ip,
    };
    crate::store::audit::write(client, actor, action, target, before, after).await?;
    Ok(())
}

/// [`audit`] for an admin's action.
pub async fn audit_admin(
    client: &impl GenericClient,
    admin: &Admin,
    action: &str,
    target: &str,
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
) -> Result<(), StoreError> {
    audit(client, &admin.principal, action, target, before, after, admin.ip).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewReport {
    target: String,
    id: i64,
    reason: String,
}

const REPORTED_POST: &str = "SELECT id, title || E'\\n' || content FROM posts
  WHERE id = $1 AND deleted_at IS NULL AND hidden_at IS NULL";
const REPORTED_COMMENT: &str = "SELECT c.post_id, c.content FROM comments c JOIN posts p ON p.id = c.post_id
  WHERE c.id = $1 AND c.deleted_at IS NULL AND c.hidden_at IS NULL AND p.deleted_at IS NULL AND p.hidden_at IS NULL";
const INSERT_REPORT: &str = "INSERT INTO reports (target_type, target_id, post_id, reporter_id, reason, snapshot)
  VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (target_type, target_id, reporter_id) DO NOTHING
  RETURNING id, status, created_at";
const EXISTING_REPORT: &str = "SELECT id, status, created_at FROM reports
  WHERE target_type = $1 AND target_id = $2 AND reporter_id = $3";

/// `POST /api/community/reports` `{"target":"post"|"comment","id","reason"}` → `201`, or `200`
/// with the same report when this user reported the target before.
pub async fn report(state: &State, parts: &Parts, body: &[u8]) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    extract::body_kind(&parts.headers, &[BodyKind::Json])?;
    let input: NewReport = extract::json(body)?;
    let reason = clean_text(&input.reason, 500, true, "invalid_reason")?;
    let sql = match input.target.as_str() {
        "post" => REPORTED_POST,
        "comment" => REPORTED_COMMENT,
        _ => return Err(AppError::invalid("invalid_target", "target must be post or comment")),
    };
    let client = state.store.client().await?;
    let target = client
        .query_opt(sql, &[&input.id])
        .await
        .map_err(StoreError::from)?
        .ok_or(AppError::NotFound)?;
    let (post_id, snapshot): (i64, String) = (target.get(0), target.get(1));
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] = [
        &input.target,
        &input.id,
        &post_id,
        &principal.user_id,
        &reason,
        &snapshot,
    ];
    let (row, status) = match client
        .query_opt(INSERT_REPORT, &params)
        .await
        .map_err(StoreError::from)?
    {
        Some(row) => (row, StatusCode::CREATED),
        None => (
            client
                .query_one(EXISTING_REPORT, &[&input.target, &input.id, &principal.user_id])
                .await
                .map_err(StoreError::from)?,
            StatusCode::OK,
        ),
    };
    let value = json!({
        "id": row.get::<_, i64>(0),
        "target": input.target,
        "target_id": input.id,
        "status": row.get::<_, String>(1),
        "created_at": rfc3339(row.get(2)),
    });
    Ok(respond::json(status, value.to_string()))
}

const QUEUE: &str = "SELECT r.id, r.target_type, r.target_id, r.post_id, r.reason, r.snapshot, r.status, r.created_at,
        r.reporter_id, ru.display_name, au.id, au.display_name,
        CASE WHEN r.target_type = 'post' THEN p.anonymous ELSE c.anonymous END,
        CASE WHEN r.target_type = 'post' THEN p.hidden_at IS NOT NULL ELSE c.hidden_at IS NOT NULL END,
        CASE WHEN r.target_type = 'post' THEN p.deleted_at IS NOT NULL ELSE c.deleted_at IS NOT NULL END,
        (SELECT count(*) FROM reports o WHERE o.target_type = r.target_type AND o.target_id = r.target_id)
   FROM reports r JOIN users ru ON ru.id = r.reporter_id JOIN posts p ON p.id = r.post_id
   LEFT JOIN comments c ON r.target_type = 'comment' AND c.id = r.target_id
   JOIN users au ON au.id = CASE WHEN r.target_type = 'post' THEN p.author_id ELSE c.author_id END
  WHERE $1 = 'all' OR r.status = $1
  ORDER BY r.id DESC LIMIT $2 OFFSET $3";
const QUEUE_COUNT: &str = "SELECT count(*) FROM reports r WHERE $1 = 'all' OR r.status = $1";

/// One report as the admin queue shows it.
pub fn queue_item(row: &tokio_postgres::Row) -> serde_json::Value {
    json!({
        "id": row.get::<_, i64>(0),
        "target": {"type": row.get::<_, String>(1), "id": row.get::<_, i64>(2)},
        "post_id": row.get::<_, i64>(3),
        "reason": row.get::<_, String>(4),
        "snapshot": row.get::<_, String>(5),
        "status": row.get::<_, String>(6),
        "created_at": rfc3339(row.get(7)),
        "reporter": {"id": row.get::<_, i64>(8), "display_name": row.get::<_, String>(9)},
        "author": author(row.get(10), row.get(11), false, true),
        "anonymous": row.get::<_, bool>(12),
        "hidden": row.get::<_, bool>(13),
        "deleted": row.get::<_, bool>(14),
        "reports": row.get::<_, i64>(15),
    })
}

/// A page of the report queue with `status` (`open`, `resolved`, `dismissed` or `all`).
pub async fn queue(state: &State, status: &str, paging: Paging) -> Result<(Vec<serde_json::Value>, i64), AppError> {
    if !matches!(status, "open" | "resolved" | "dismissed" | "all") {
        return Err(AppError::invalid(
            "invalid_status",
            "status must be open, resolved, dismissed or all",
        ));
    }
    let client = state.store.client().await?;
    let list = client.prepare_cached(QUEUE).await.map_err(StoreError::from)?;
    let count = client.prepare_cached(QUEUE_COUNT).await.map_err(StoreError::from)?;
    let (limit, offset) = (paging.limit(), paging.offset());
    let list_params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&status, &limit, &offset];
    let count_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&status];
    let (rows, total) = tokio::try_join!(
        client.query(&list, &list_params),
        client.query_one(&count, &count_params)
    )
    .map_err(StoreError::from)?;
    Ok((rows.iter().map(queue_item).collect(), total.get(0)))
}

/// `GET /api/admin/reports?status=open|resolved|dismissed|all&page=&size=` (default open).
pub async fn reports(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let query = parts.uri.query();
    let status = extract::query_param(query, "status")?.unwrap_or_else(|| "open".into());
    let paging = Paging::standard(query)?;
    let (items, total) = queue(state, &status, paging).await?;
    let body = serde_json::to_vec(&paging.listing(total, items)).map_err(|e| AppError::Internal(e.into()))?;
    Ok(respond::json(StatusCode::OK, body))
}

const DISMISS: &str = "UPDATE reports SET status = 'dismissed', resolved_by = $2, resolved_at = now()
  WHERE id = $1 AND status = 'open' RETURNING target_type, target_id";

/// `POST /api/admin/reports/{id}/dismiss`: the target stays; `409 report_closed` unless open.
pub async fn dismiss(state: &State, admin: &Admin, id: i64) -> Result<Response, AppError> {
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let Some(row) = tx
        .query_opt(DISMISS, &[&id, &admin.principal.user_id])
        .await
        .map_err(StoreError::from)?
    else {
        let exists = tx
            .query_opt("SELECT 1 FROM reports WHERE id = $1", &[&id])
            .await
            .map_err(StoreError::from)?;
        return Err(match exists {
            Some(_) => AppError::conflict("report_closed", "the report was resolved or dismissed already"),
            None => AppError::NotFound,
        });
    };
    let target = format!("{}:{}", row.get::<_, String>(0), row.get::<_, i64>(1));
    let after = json!({"report": id, "status": "dismissed"});
    audit_admin(&tx, admin, "community_report_dismiss", &target, None, Some(&after)).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(respond::json(StatusCode::OK, after.to_string()))
}

/// What the admin acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Post,
    Comment,
}

impl Target {
    pub fn parse(text: &str) -> Option<Target> {
        match text {
            "post" => Some(Target::Post),
            "comment" => Some(Target::Comment),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Target::Post => "post",
            Target::Comment => "comment",
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HideInput {
    #[serde(default)]
    reason: Option<String>,
}

const LOCK_POST: &str = "SELECT author_id, anonymous, hidden_at IS NOT NULL FROM posts
  WHERE id = $1 AND deleted_at IS NULL FOR UPDATE";
const HIDE_POST: &str = "WITH h AS (UPDATE posts SET hidden_at = CASE WHEN $2 THEN now() END,
            hidden_by = CASE WHEN $2 THEN $3::bigint END, hidden_reason = $4 WHERE id = $1 RETURNING id)
     UPDATE post_stats SET listed = NOT $2 WHERE post_id = (SELECT id FROM h)";
const LOCK_COMMENT: &str = "SELECT post_id, author_id, hidden_at IS NOT NULL FROM comments
  WHERE id = $1 AND deleted_at IS NULL FOR UPDATE";
const HIDE_COMMENT: &str = "WITH h AS (UPDATE comments SET hidden_at = CASE WHEN $2 THEN now() END,
            hidden_by = CASE WHEN $2 THEN $3::bigint END, hidden_reason = $4 WHERE id = $1 RETURNING post_id)
     UPDATE post_stats SET comments = comments + CASE WHEN $2 THEN -1 ELSE 1 END
      WHERE post_id = (SELECT post_id FROM h)";

/// `POST /api/admin/community/{post|comment}/{id}/hide` (`hide`) or `…/unhide`, with an
/// optional `{"reason"}` → `{"target","id","hidden"}`; doing it twice changes nothing.
pub async fn hide(
    state: &State,
    admin: &Admin,
    parts: &Parts,
    target: Target,
    id: i64,
    hide: bool,
    body: &[u8],
) -> Result<Response, AppError> {
    let input: HideInput = if body.iter().all(u8::is_ascii_whitespace) {
        HideInput::default()
    } else {
        extract::body_kind(&parts.headers, &[BodyKind::Json])?;
        extract::json(body)?
    };
    let reason = match input.reason.filter(|r| !r.trim().is_empty()) {
        Some(r) if hide => clean_text(&r, 500, true, "invalid_reason")?,
        _ => String::new(),
    };
    let by = admin.principal.user_id;
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let (post_id, profile_of) = match target {
        Target::Post => {
            let row = tx
                .query_opt(LOCK_POST, &[&id])
                .await
                .map_err(StoreError::from)?
                .ok_or(AppError::NotFound)?;
            let (author_id, anonymous, hidden): (i64, bool, bool) = (row.get(0), row.get(1), row.get(2));
            if hidden == hide {
                return Ok(hidden_answer(target, id, hide));
            }
            tx.execute(HIDE_POST, &[&id, &hide, &by, &reason])
                .await
                .map_err(StoreError::from)?;
            let counted = !anonymous;
            if counted {
                move_post_count(&tx, author_id, if hide { -1 } else { 1 }).await?;
            }
            (id, counted.then_some(author_id))
        }
        Target::Comment => {
            let row = tx
                .query_opt(LOCK_COMMENT, &[&id])
                .await
                .map_err(StoreError::from)?
                .ok_or(AppError::NotFound)?;
            let (post_id, hidden): (i64, bool) = (row.get(0), row.get(2));
            if hidden == hide {
                return Ok(hidden_answer(target, id, hide));
            }
            tx.execute(HIDE_COMMENT, &[&id, &hide, &by, &reason])
                .await
                .map_err(StoreError::from)?;
            (post_id, None)
        }
    };
    if hide {
        resolve_reports(&tx, target.as_str(), id, by).await?;
    }
    let action = match (target, hide) {
        (Target::Post, true) => "community_post_hide",
        (Target::Post, false) => "community_post_unhide",
        (Target::Comment, true) => "community_comment_hide",
        (Target::Comment, false) => "community_comment_unhide",
    };
    let after = json!({"hidden": hide, "reason": reason});
    let target_name = format!("{}:{id}", target.as_str());
    audit_admin(&tx, admin, action, &target_name, None, Some(&after)).await?;
    post_changed(&tx, post_id).await.map_err(StoreError::from)?;
    tx.commit().await.map_err(StoreError::from)?;
    after_commit(state, post_id, profile_of);
    Ok(hidden_answer(target, id, hide))
}

fn hidden_answer(target: Target, id: i64, hidden: bool) -> Response {
    respond::json(
        StatusCode::OK,
        json!({"target": target.as_str(), "id": id, "hidden": hidden}).to_string(),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PostPatch {
    pinned: bool,
}

const PIN: &str = "WITH old AS (SELECT pinned FROM post_stats WHERE post_id = $1 FOR UPDATE)
     UPDATE post_stats s SET pinned = $2 FROM old WHERE s.post_id = $1 RETURNING old.pinned";

/// `PATCH /api/admin/community/posts/{id}` `{"pinned": true|false}` → `{"id","pinned"}`.
pub async fn patch_post(
    state: &State,
    admin: &Admin,
    parts: &Parts,
    id: i64,
    body: &[u8],
) -> Result<Response, AppError> {
    extract::body_kind(&parts.headers, &[BodyKind::Json])?;
    let patch: PostPatch = extract::json(body)?;
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let was: bool = tx
        .query_opt(PIN, &[&id, &patch.pinned])
        .await
        .map_err(StoreError::from)?
        .ok_or(AppError::NotFound)?
        .get(0);
    if was != patch.pinned {
        let before = json!({"pinned": was});
        let after = json!({"pinned": patch.pinned});
        audit_admin(
            &tx,
            admin,
            "community_post_pin",
            &format!("post:{id}"),
            Some(&before),
            Some(&after),
        )
        .await?;
        post_changed(&tx, id).await.map_err(StoreError::from)?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    if was != patch.pinned {
        state.community.changed(Some(id));
    }
    Ok(respond::json(
        StatusCode::OK,
        json!({"id": id, "pinned": patch.pinned}).to_string(),
    ))
}
