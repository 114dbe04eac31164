//! What a public project gathers: news from its owner (every backer and follower notified in
//! the update's transaction), its followers (idempotent, the count moved with the row), and
//! the list of its backers — paid backings less their refunds, so the list adds up to
//! `raised` at every moment.

use http::StatusCode;
use http::request::Parts;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use super::handlers::db;
use super::model::{self, Status};
use super::projects;
use crate::account::{Principal, Role};
use crate::app::State;
use crate::error::AppError;
use crate::http::extract::{self, BodyKind};
use crate::http::list::Paging;
use crate::http::respond::{self, Response};
use crate::notify::{self, Actor, Kind, Notice, Target, TargetId};
use crate::pay::money::format_yuan;
use crate::pay::rfc3339;

const PROJECT_STATE: &str = "SELECT owner_id, status, title FROM projects WHERE id = $1";

/// Project `id`'s owner, status and title; 404 when it is not public and `who` may not see it.
async fn visible(
    client: &impl deadpool_postgres::GenericClient,
    id: i64,
    who: Option<&Principal>,
) -> Result<(i64, Status, String), AppError> {
    let row = client
        .query_opt(PROJECT_STATE, &[&id])
        .await
        .map_err(db)?
        .ok_or(AppError::NotFound)?;
    let (owner_id, status): (i64, Status) = (row.get(0), row.try_get(1).map_err(db)?);
    if !status.is_public() && !projects::may_see_private(who, owner_id) {
        return Err(AppError::NotFound);
    }
    Ok((owner_id, status, row.get(2)))
}

const BACKERS: &str = "SELECT CASE WHEN b.anonymous THEN '匿名' ELSE u.display_name END, b.amount_fen - p.refunded_fen,
        r.title, p.paid_at, b.message, count(*) OVER ()
   FROM backings b JOIN payments p USING (order_no) JOIN users u ON u.id = b.user_id
   LEFT JOIN project_rewards r ON r.id = b.reward_id
  WHERE b.project_id = $1 AND b.counted AND p.refunded_fen < b.amount_fen
  ORDER BY p.paid_at DESC, b.order_no DESC LIMIT $2 OFFSET $3";

/// `GET /api/projects/{id}/backers?page=`: paid backings, newest first, each with what it
/// has left after refunds (`匿名` for an anonymous one).
pub async fn backers(state: &State, parts: &Parts, id: i64) -> Result<Response, AppError> {
    let paging = Paging::standard(parts.uri.query())?;
    let who = state.sessions.principal(&state.store, parts).await.ok().flatten();
    let client = state.store.client().await?;
    visible(&client, id, who.as_deref()).await?;
    let statement = client.prepare_cached(BACKERS).await.map_err(db)?;
    let rows = client
        .query(&statement, &[&id, &paging.limit(), &paging.offset()])
        .await
        .map_err(db)?;
    let total = rows.first().map_or(0, |r| r.get::<_, i64>(5));
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let amount: i64 = r.get(1);
            json!({
                "donor": r.get::<_, String>(0),
                "amount": format_yuan(amount), "amount_fen": amount,
                "reward": r.get::<_, Option<String>>(2),
                "paid_at": r.get::<_, Option<OffsetDateTime>>(3).map(rfc3339),
                "message": r.get::<_, String>(4),
            })
        })
        .collect();
    let body = serde_json::to_string(&paging.listing(total, items)).map_err(|e| AppError::Internal(e.into()))?;
    Ok(respond::json(StatusCode::OK, body))
}

const FOLLOW: &str =
    "INSERT INTO project_follows (project_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1";
const UNFOLLOW: &str = "DELETE FROM project_follows WHERE project_id = $1 AND user_id = $2 RETURNING 1";
const MOVE_FOLLOWERS: &str = "UPDATE projects SET followers = followers + $2 WHERE id = $1 RETURNING followers";
const FOLLOWERS: &str = "SELECT followers FROM projects WHERE id = $1";

/// `PUT` (`on`) or `DELETE /api/projects/{id}/follow`: idempotent; answers
/// `{"following", "followers"}`.
pub async fn follow(state: &State, parts: &Parts, id: i64, on: bool) -> Result<Response, AppError> {
    let who = state.sessions.require(&state.store, parts, Role::User).await?;
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(db)?;
    let (_, status, _) = visible(&tx, id, Some(&who)).await?;
    if on && !status.is_public() {
        return Err(AppError::conflict(
            "project_not_public",
            "only a public project can be followed",
        ));
    }
    let moved = tx
        .query_opt(if on { FOLLOW } else { UNFOLLOW }, &[&id, &who.user_id])
        .await
        .map_err(db)?
        .is_some();
    let followers: i32 = if moved {
        let delta: i32 = if on { 1 } else { -1 };
        projects::changed(&tx, id).await.map_err(db)?;
        tx.query_one(MOVE_FOLLOWERS, &[&id, &delta]).await.map_err(db)?.get(0)
    } else {
        tx.query_one(FOLLOWERS, &[&id]).await.map_err(db)?.get(0)
    };
    tx.commit().await.map_err(db)?;
    if moved {
        state.crowdfunding.cache.changed(id);
    }
    Ok(respond::json(
        StatusCode::OK,
        json!({"following": on, "followers": followers}).to_string(),
    ))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ProjectUpdateBody")]
pub(crate) struct UpdateBody {
    #[serde(default)]
    title: Option<String>,
    body: Option<String>,
    #[serde(default)]
    images: Option<Vec<String>>,
}

const INSERT_UPDATE: &str = "INSERT INTO project_updates (project_id, author_id, title, body, images)
     VALUES ($1, $2, $3, $4, $5) RETURNING id, created_at";

/// Who hears of a project's news: every backer (a counted backing) and every follower.
const AUDIENCE: &str = "SELECT user_id FROM backings WHERE project_id = $1 AND counted
     UNION SELECT user_id FROM project_follows WHERE project_id = $1";

/// Notifications written at once, pipelined on the transaction's connection.
const NOTIFY_BATCH: usize = 256;

/// `POST /api/projects/{id}/updates`: the owner's news (text and images) on a public project;
/// every backer and follower is notified in the same transaction.
pub async fn post_update(state: &State, parts: &Parts, id: i64, body: &[u8]) -> Result<Response, AppError> {
    let who = state.sessions.require(&state.store, parts, Role::User).await?;
    extract::body_kind(&parts.headers, &[BodyKind::Json])?;
    let input: UpdateBody = extract::json(body)?;
    let title = model::text(input.title.as_deref(), 0, 60, false, "invalid_title", "title")?;
    let text = model::text(input.body.as_deref(), 1, 5_000, true, "invalid_body", "body")?;
    let images = model::image_list(input.images.unwrap_or_default(), "an update")?;
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(db)?;
    let (owner_id, status, project_title) = visible(&tx, id, Some(&who)).await?;
    if owner_id != who.user_id {
        return Err(AppError::Forbidden);
    }
    if !status.is_public() {
        return Err(AppError::conflict(
            "project_not_public",
            "news can be posted once the project is live",
        ));
    }
    crate::media::check_ids(&tx, &images).await?;
    let row = tx
        .query_one(INSERT_UPDATE, &[&id, &who.user_id, &title, &text, &images])
        .await
        .map_err(db)?;
    let (update_id, created_at): (i64, OffsetDateTime) = (row.get(0), row.get(1));
    let audience: Vec<i64> = tx
        .query(AUDIENCE, &[&id])
        .await
        .map_err(db)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let headline = if title.is_empty() {
        text.chars().take(60).collect()
    } else {
        title.clone()
    };
    let message = notify::bilingual(
        &format!("「{project_title}」有新动态：{headline}"),
        &format!("News from “{project_title}”: {headline}"),
    );
    let key = format!("project_update:{update_id}");
    let on = &tx;
    for chunk in audience.chunks(NOTIFY_BATCH) {
        let writes = chunk.iter().map(|recipient| {
            let notice = Notice {
                recipient_id: *recipient,
                kind: Kind::ProjectUpdate,
                actor: Actor::User(who.user_id),
                target: Target {
                    kind: "project",
                    id: TargetId::Id(id),
                },
                text: &message,
                dedupe_key: Some(&key),
            };
            async move { notify::notify(on, &notice).await }
        });
        futures_util::future::try_join_all(writes).await.map_err(db)?;
    }
    tx.commit().await.map_err(db)?;
    let answer = update_json(
        update_id,
        &title,
        &text,
        &images,
        created_at,
        who.user_id,
        &who.display_name,
    );
    Ok(respond::json(StatusCode::CREATED, answer.to_string()))
}

fn update_json(
    id: i64,
    title: &str,
    body: &str,
    images: &[String],
    created_at: OffsetDateTime,
    author_id: i64,
    author: &str,
) -> serde_json::Value {
    let images: Vec<serde_json::Value> = images.iter().map(|i| super::read::image_json(i)).collect();
    json!({
        "id": id, "title": title, "body": body, "images": images,
        "author": {"id": author_id, "display_name": author},
        "created_at": rfc3339(created_at),
    })
}

const UPDATES: &str =
    "SELECT n.id, n.title, n.body, n.images, n.created_at, n.author_id, u.display_name, count(*) OVER ()
   FROM project_updates n JOIN users u ON u.id = n.author_id
  WHERE n.project_id = $1 ORDER BY n.id DESC LIMIT $2 OFFSET $3";

/// A page of project `id`'s news, newest first, and how many there are.
pub(super) async fn update_page(
    client: &impl deadpool_postgres::GenericClient,
    id: i64,
    paging: Paging,
) -> Result<(i64, Vec<serde_json::Value>), AppError> {
    let statement = client.prepare_cached(UPDATES).await.map_err(db)?;
    let rows = client
        .query(&statement, &[&id, &paging.limit(), &paging.offset()])
        .await
        .map_err(db)?;
    let total = rows.first().map_or(0, |r| r.get::<_, i64>(7));
    let items = rows
        .iter()
        .map(|r| {
            let images: Vec<String> = r.get(3);
            update_json(r.get(0), r.get(1), r.get(2), &images, r.get(4), r.get(5), r.get(6))
        })
        .collect();
    Ok((total, items))
}

/// `GET /api/projects/{id}/updates?page=`
pub async fn updates(state: &State, parts: &Parts, id: i64) -> Result<Response, AppError> {
    let paging = Paging::standard(parts.uri.query())?;
    let who = state.sessions.principal(&state.store, parts).await.ok().flatten();
    let client = state.store.client().await?;
    visible(&client, id, who.as_deref()).await?;
    let (total, items) = update_page(&client, id, paging).await?;
    let body = serde_json::to_string(&paging.listing(total, items)).map_err(|e| AppError::Internal(e.into()))?;
    Ok(respond::json(StatusCode::OK, body))
}
