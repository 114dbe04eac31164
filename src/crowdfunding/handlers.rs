//! The project endpoints (contract: "Crowdfunding"): create, edit and submit, the reviewers'
//! queue and decision, the public list and detail (served from the cache when public), and
//! the signed-in user's own projects and backings. Updates, follows, backers, shipping and
//! the report are in their own files.

use std::net::IpAddr;
use std::time::Instant;

use bytes::Bytes;
use http::StatusCode;
use http::request::Parts;
use serde_json::json;
use time::OffsetDateTime;

use super::cache::{ListKey, Sort};
use super::model::{ProjectBody, Rules, Status};
use super::projects::{self, Review};
use super::read;
use crate::account::Role;
use crate::app::State;
use crate::error::AppError;
use crate::http::extract::{self, BodyKind};
use crate::http::list::Paging;
use crate::http::respond::{self, Response};
use crate::pay::money::format_yuan;
use crate::pay::rfc3339;
use crate::store::StoreError;

pub use super::back::back;
pub use super::report::report;
pub use super::shipping::{deliver, owner_backings, ship};
pub use super::updates::{backers, follow, post_update, updates};

pub(super) fn db(e: tokio_postgres::Error) -> AppError {
    AppError::from(StoreError::from(e))
}

/// The rules a project is checked against now.
pub(super) fn rules(state: &State) -> Rules {
    let policy = state.engine.policy.current();
    Rules {
        now: OffsetDateTime::now_utc(),
        min_duration_secs: state.config.settings.crowdfunding.min_duration_secs,
        min_amount_fen: policy.min_amount_fen,
        max_amount_fen: policy.max_amount_fen,
    }
}

/// The project as its owner (or a reviewer) reads it, whatever its status.
async fn private_answer(state: &State, id: i64, status: StatusCode) -> Result<Response, AppError> {
    let client = state.store.client().await?;
    let view = read::project(&client, id)
        .await
        .map_err(db)?
        .ok_or(AppError::NotFound)?;
    Ok(respond::json(status, view.to_json(true).to_string()))
}

/// `POST /api/projects`
pub async fn create(state: &State, parts: &Parts, body: &[u8]) -> Result<Response, AppError> {
    let who = state.sessions.require(&state.store, parts, Role::User).await?;
    extract::body_kind(&parts.headers, &[BodyKind::Json])?;
    let body: ProjectBody = extract::json(body)?;
    let mut client = state.store.client().await?;
    let id = projects::create(&mut client, &who, body, &rules(state)).await?;
    drop(client);
    let mut response = private_answer(state, id, StatusCode::CREATED).await?;
    if let Ok(location) = http::HeaderValue::from_str(&format!("/api/projects/{id}")) {
        response.headers_mut().insert(http::header::LOCATION, location);
    }
    Ok(response)
}

/// `PATCH /api/projects/{id}`
pub async fn edit(state: &State, parts: &Parts, id: i64, body: &[u8]) -> Result<Response, AppError> {
    let who = state.sessions.require(&state.store, parts, Role::User).await?;
    extract::body_kind(&parts.headers, &[BodyKind::Json])?;
    let change: ProjectBody = extract::json(body)?;
    let mut client = state.store.client().await?;
    projects::edit(&mut client, &who, id, change, &rules(state)).await?;
    drop(client);
    private_answer(state, id, StatusCode::OK).await
}

/// A public read of `route` answered from memory, or `None` (the general path answers): a
/// project's detail (public projects are cached, the same for every reader) and the lists
/// without a search.
pub fn cached_read(state: &State, route: super::Route<'_>, parts: &Parts, now: Instant) -> Option<Bytes> {
    let cache = &state.crowdfunding.cache;
    match route {
        super::Route::Project(id) => cache.detail(id, now),
        super::Route::Projects => {
            let query = list_query(parts.uri.query()).ok()?;
            if query.q.is_some() {
                return None;
            }
            cache.list(&query.key, now)
        }
        _ => None,
    }
}

/// The public detail body of project `id`, from the cache or read and kept; `None` when the
/// project is not public (or does not exist).
pub async fn public_detail(state: &State, id: i64) -> Result<Option<(Bytes, read::ProjectView)>, AppError> {
    let cache = &state.crowdfunding.cache;
    let generation = cache.generation();
    let client = state.store.client().await?;
    let Some(view) = read::project(&client, id).await.map_err(db)? else {
        return Ok(None);
    };
    if !view.status.is_public() {
        return Ok(Some((Bytes::new(), view)));
    }
    let body = Bytes::from(view.to_json(false).to_string());
    cache.keep_detail(generation, id, body.clone());
    Ok(Some((body, view)))
}

/// `GET /api/projects/{id}` when the cache did not have it: public projects for everyone,
/// the others for their owner and reviewers only (404 to anyone else).
pub async fn detail(state: &State, parts: &Parts, id: i64) -> Result<Response, AppError> {
    if let Some(hit) = state.crowdfunding.cache.detail(id, Instant::now()) {
        return Ok(respond::json(StatusCode::OK, hit));
    }
    let (body, view) = public_detail(state, id).await?.ok_or(AppError::NotFound)?;
    let who = state.sessions.principal(&state.store, parts).await.ok().flatten();
    if projects::may_see_private(who.as_deref(), view.owner_id) {
        return Ok(respond::json(StatusCode::OK, view.to_json(true).to_string()));
    }
    if !view.status.is_public() {
        return Err(AppError::NotFound);
    }
    Ok(respond::json(StatusCode::OK, body))
}

/// The list's parameters.
pub(super) struct ListQuery {
    pub key: ListKey,
    pub q: Option<String>,
}

pub(super) fn list_query(query: Option<&str>) -> Result<ListQuery, AppError> {
    let paging = Paging::standard(query)?;
    let status = match extract::query_param(query, "status")?.as_deref() {
        None | Some("") => Status::Live,
        Some(text) => Status::parse(text)
            .filter(|s| s.is_public())
            .ok_or_else(|| AppError::invalid("invalid_status", "status must be live, succeeded or failed"))?,
    };
    let sort = match extract::query_param(query, "sort")?.as_deref() {
        None | Some("") => Sort::Newest,
        Some(text) => Sort::parse(text).ok_or_else(|| {
            AppError::invalid(
                "invalid_sort",
                "sort must be newest, ending, most_funded or most_backed",
            )
        })?,
    };
    let q = extract::query_param(query, "q")?
        .map(|q| q.trim().to_string())
        .filter(|q| !q.is_empty());
    if q.as_ref().is_some_and(|q| q.chars().count() > 50) {
        return Err(AppError::invalid("invalid_q", "q must be at most 50 characters"));
    }
    Ok(ListQuery {
        key: ListKey {
            status,
            sort,
            page: paging.page,
            size: paging.size,
        },
        q,
    })
}

/// The list answer's body and its items (the page renders the items).
pub(super) async fn list_body(state: &State, query: &ListQuery) -> Result<(Bytes, Vec<read::ListItem>, i64), AppError> {
    let cache = &state.crowdfunding.cache;
    let generation = cache.generation();
    let client = state.store.client().await?;
    let (total, items) = read::list(&client, &query.key, query.q.as_deref()).await.map_err(db)?;
    let paging = Paging {
        page: query.key.page,
        size: query.key.size,
    };
    let listing = paging.listing(total, items.iter().map(read::ListItem::to_json).collect());
    let mut body = serde_json::to_value(&listing).map_err(|e| AppError::Internal(e.into()))?;
    body["status"] = json!(query.key.status.as_str());
    body["sort"] = json!(query.key.sort.as_str());
    let body = Bytes::from(body.to_string());
    if query.q.is_none() {
        cache.keep_list(generation, query.key, body.clone());
    }
    Ok((body, items, total))
}

/// `GET /api/projects?status=&sort=&q=&page=&size=`
pub async fn list(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let query = list_query(parts.uri.query())?;
    let cache = &state.crowdfunding.cache;
    if query.q.is_some() {
        let (body, ..) = list_body(state, &query).await?;
        return Ok(respond::json(StatusCode::OK, body));
    }
    if let Some(hit) = cache.list(&query.key, Instant::now()) {
        return Ok(respond::json(StatusCode::OK, hit));
    }
    // One load per page at a time: when a hot page expires under load, the other readers
    // wait for this load instead of each querying.
    let flight = cache.list_flight(&query.key);
    let _flying = match &flight {
        Some(flight) => Some(flight.lock().await),
        None => None,
    };
    if let Some(hit) = cache.list(&query.key, Instant::now()) {
        return Ok(respond::json(StatusCode::OK, hit));
    }
    let (body, ..) = list_body(state, &query).await?;
    Ok(respond::json(StatusCode::OK, body))
}

const MY_PROJECTS: &str = "SELECT p.id, p.title, p.summary, p.status, p.owner_id, u.display_name, p.cover_image,
        p.deadline, p.raised_fen, p.backers,
        ARRAY(SELECT g.amount_fen FROM project_goals g WHERE g.project_id = p.id ORDER BY g.position),
        p.created_at, count(*) OVER ()
   FROM projects p JOIN users u ON u.id = p.owner_id
  WHERE p.owner_id = $1 ORDER BY p.id DESC LIMIT $2 OFFSET $3";

/// The projects `owner_id` owns, newest first, and how many.
pub(super) async fn owned(
    state: &State,
    owner_id: i64,
    paging: Paging,
) -> Result<(i64, Vec<read::ListItem>), AppError> {
    let client = state.store.client().await?;
    let statement = client.prepare_cached(MY_PROJECTS).await.map_err(db)?;
    let rows = client
        .query(&statement, &[&owner_id, &paging.limit(), &paging.offset()])
        .await
        .map_err(db)?;
    let total = rows.first().map_or(0, |r| r.get::<_, i64>(12));
    let items = rows
        .iter()
        .map(read::item_from_row)
        .collect::<Result<_, _>>()
        .map_err(db)?;
    Ok((total, items))
}

/// `GET /api/me/projects`: every project of mine, any status.
pub async fn my_projects(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let who = state.sessions.require(&state.store, parts, Role::User).await?;
    let paging = Paging::standard(parts.uri.query())?;
    let (total, items) = owned(state, who.user_id, paging).await?;
    let items: Vec<serde_json::Value> = items.iter().map(read::ListItem::to_json).collect();
    let body = serde_json::to_string(&paging.listing(total, items)).map_err(|e| AppError::Internal(e.into()))?;
    Ok(respond::json(StatusCode::OK, body))
}

const MY_BACKINGS: &str =
    "SELECT b.order_no, b.project_id, pr.title, b.amount_fen, p.refunded_fen, p.status, b.counted,
        r.title, b.shipping, b.carrier, b.tracking_no, b.shipped_at, b.delivered_at, p.paid_at, b.created_at,
        b.anonymous, b.message, count(*) OVER ()
   FROM backings b JOIN payments p USING (order_no) JOIN projects pr ON pr.id = b.project_id
   LEFT JOIN project_rewards r ON r.id = b.reward_id
  WHERE b.user_id = $1 ORDER BY b.created_at DESC, b.order_no DESC LIMIT $2 OFFSET $3";

/// `GET /api/me/backings`: my backings, newest first, with their payment and shipping.
pub async fn my_backings(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let who = state.sessions.require(&state.store, parts, Role::User).await?;
    let paging = Paging::standard(parts.uri.query())?;
    let client = state.store.client().await?;
    let statement = client.prepare_cached(MY_BACKINGS).await.map_err(db)?;
    let rows = client
        .query(&statement, &[&who.user_id, &paging.limit(), &paging.offset()])
        .await
        .map_err(db)?;
    let total = rows.first().map_or(0, |r| r.get::<_, i64>(17));
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let (amount, refunded): (i64, i64) = (r.get(3), r.get(4));
            let at = |i: usize| r.get::<_, Option<OffsetDateTime>>(i).map(rfc3339);
            json!({
                "order_no": r.get::<_, String>(0),
                "project": {"id": r.get::<_, i64>(1), "title": r.get::<_, String>(2)},
                "amount": format_yuan(amount), "amount_fen": amount,
                "refunded": format_yuan(refunded), "refunded_fen": refunded,
                "status": r.get::<_, String>(5),
                "counted": r.get::<_, bool>(6),
                "reward": r.get::<_, Option<String>>(7),
                "shipping": r.get::<_, Option<String>>(8),
                "carrier": r.get::<_, Option<String>>(9),
                "tracking_no": r.get::<_, Option<String>>(10),
                "shipped_at": at(11), "delivered_at": at(12), "paid_at": at(13),
                "created_at": rfc3339(r.get(14)),
                "anonymous": r.get::<_, bool>(15),
                "message": r.get::<_, String>(16),
                "pay_url": format!("/pay/{}", r.get::<_, &str>(0)),
            })
        })
        .collect();
    let body = serde_json::to_string(&paging.listing(total, items)).map_err(|e| AppError::Internal(e.into()))?;
    Ok(respond::json(StatusCode::OK, body))
}

const QUEUE: &str = "SELECT p.id, p.title, p.summary, p.status, p.owner_id, u.display_name, p.cover_image,
        p.deadline, p.raised_fen, p.backers,
        ARRAY(SELECT g.amount_fen FROM project_goals g WHERE g.project_id = p.id ORDER BY g.position),
        p.created_at, count(*) OVER (), p.submitted_at, p.revision
   FROM projects p JOIN users u ON u.id = p.owner_id
  WHERE p.status = $1 ORDER BY p.submitted_at NULLS LAST, p.id LIMIT $2 OFFSET $3";

/// Projects of `status` for reviewers, oldest submission first, with their submission time
/// and revision.
pub(super) async fn queue_items(
    state: &State,
    status: Status,
    paging: Paging,
) -> Result<(i64, Vec<(read::ListItem, Option<OffsetDateTime>, i32)>), AppError> {
    let client = state.store.client().await?;
    let statement = client.prepare_cached(QUEUE).await.map_err(db)?;
    let rows = client
        .query(&statement, &[&status.as_str(), &paging.limit(), &paging.offset()])
        .await
        .map_err(db)?;
    let total = rows.first().map_or(0, |r| r.get::<_, i64>(12));
    let items = rows
        .iter()
        .map(|r| Ok((read::item_from_row(r)?, r.get(13), r.get(14))))
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(db)?;
    Ok((total, items))
}

/// `GET /api/admin/projects?status=pending_review` (the default): the reviewers' queue.
pub async fn queue(state: &State, parts: &Parts) -> Result<Response, AppError> {
    state.sessions.require(&state.store, parts, Role::Reviewer).await?;
    let query = parts.uri.query();
    let paging = Paging::standard(query)?;
    let status = match extract::query_param(query, "status")?.as_deref() {
        None | Some("") => Status::PendingReview,
        Some(text) => Status::parse(text).ok_or_else(|| AppError::invalid("invalid_status", "unknown status"))?,
    };
    let (total, items) = queue_items(state, status, paging).await?;
    let items: Vec<serde_json::Value> = items
        .iter()
        .map(|(item, submitted, revision)| {
            let mut v = item.to_json();
            v["submitted_at"] = json!(submitted.map(rfc3339));
            v["revision"] = json!(revision);
            v
        })
        .collect();
    let body = serde_json::to_string(&paging.listing(total, items)).map_err(|e| AppError::Internal(e.into()))?;
    Ok(respond::json(StatusCode::OK, body))
}

/// `POST /api/admin/projects/{id}/review`
pub async fn review(state: &State, parts: &Parts, id: i64, body: &[u8], ip: IpAddr) -> Result<Response, AppError> {
    let who = state.sessions.require(&state.store, parts, Role::Reviewer).await?;
    extract::body_kind(&parts.headers, &[BodyKind::Json])?;
    let decision: Review = extract::json(body)?;
    let mut client = state.store.client().await?;
    let status = projects::review(&mut client, &who, &ip.to_string(), id, decision).await?;
    drop(client);
    if status == Status::Live {
        state.crowdfunding.cache.changed(id);
    }
    private_answer(state, id, StatusCode::OK).await
}
