//! The signed-in user's notifications: the list, marking read, and the unread count with its
//! long-poll (parked like a payment status poll: a `Notify` per user, no query while parked).

use bytes::Bytes;
use http::StatusCode;
use http::header::HeaderValue;
use http::request::Parts;
use serde::Deserialize;

use crate::account::Role;
use crate::app::State;
use crate::error::AppError;
use crate::http::extract::{self, BodyKind};
use crate::http::list::Paging;
use crate::http::respond::{self, Response};
use crate::pay::rfc3339;
use crate::store::StoreError;

/// Most ids one mark-read request may name.
const MAX_IDS: usize = 1000;

/// `GET /api/me/notifications/unread-count[?wait=N&since=K]`: `{"unread": K}`; with `wait`
/// (1..=30 s), parks until the count differs from `since` (or from the count now), N seconds
/// pass or the server shuts down.
pub async fn unread_count(state: &State, parts: &Parts) -> Result<Response, AppError> {
    // Boxed: the session's miss path is large and done before parking.
    let user_id = Box::pin(state.sessions.require(&state.store, parts, Role::User))
        .await?
        .user_id;
    let query = parts.uri.query();
    let wait = crate::payments::wait_param(query)?;
    let since = since_param(query)?;
    let board = &state.notices;
    let first = crate::store::bounded(board.unread(&state.store, user_id)).await?;
    let Some(wait) = wait else {
        return Ok(count_json(first));
    };
    let since = since.unwrap_or(first);
    let deadline = tokio::time::Instant::now() + wait;
    let mut shutdown = state.shutdown.clone();
    loop {
        // Register before looking again, so a change between the two cannot be missed.
        let notify = board.waiter(user_id);
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let current = crate::store::bounded(board.unread(&state.store, user_id)).await?;
        if current != since || *shutdown.borrow() || tokio::time::Instant::now() >= deadline {
            return Ok(count_json(current));
        }
        tokio::select! {
            () = notified => {}
            () = tokio::time::sleep_until(deadline) => {}
            _ = shutdown.wait_for(|stop| *stop) => {}
        }
    }
}

fn count_json(n: i64) -> Response {
    respond::json(StatusCode::OK, format!(r#"{{"unread":{n}}}"#))
}

fn since_param(query: Option<&str>) -> Result<Option<i64>, AppError> {
    match extract::query_param(query, "since")? {
        None => Ok(None),
        Some(text) => text
            .parse::<u32>()
            .map(|n| Some(i64::from(n)))
            .map_err(|_| AppError::invalid("invalid_since", "since must be a whole number from 0")),
    }
}

const LIST: &str = "SELECT n.id, n.kind, n.actor_id, u.display_name, n.target_type, n.target_id, n.target_key,
        n.text, n.read_at IS NOT NULL, n.created_at
   FROM notifications n LEFT JOIN users u ON u.id = n.actor_id
  WHERE n.recipient_id = $1 AND (NOT $2 OR n.read_at IS NULL)
  ORDER BY n.id DESC LIMIT $3 OFFSET $4";
const COUNT: &str = "SELECT count(*) FROM notifications WHERE recipient_id = $1 AND (NOT $2 OR read_at IS NULL)";

fn item_json(row: &tokio_postgres::Row) -> serde_json::Value {
    let actor = row
        .get::<_, Option<i64>>(2)
        .map(|id| serde_json::json!({"id": id, "display_name": row.get::<_, Option<String>>(3)}));
    let target_id = match row.get::<_, Option<i64>>(5) {
        Some(id) => serde_json::Value::from(id),
        None => serde_json::Value::from(row.get::<_, Option<String>>(6).unwrap_or_default()),
    };
    serde_json::json!({
        "id": row.get::<_, i64>(0),
        "kind": row.get::<_, String>(1),
        "actor": actor,
        "target": {"type": row.get::<_, String>(4), "id": target_id},
        "text": row.get::<_, String>(7),
        "read": row.get::<_, bool>(8),
        "created_at": rfc3339(row.get(9)),
    })
}

/// `GET /api/me/notifications?unread=true&page=&size=`: newest first.
pub async fn list(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    let query = parts.uri.query();
    let paging = Paging::standard(query)?;
    let unread = match extract::query_param(query, "unread")?.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(AppError::invalid("invalid_unread", "unread must be true or false")),
    };
    let (items, total) = page_of(state, principal.user_id, unread, paging).await?;
    let body = serde_json::to_vec(&paging.listing(total, items)).map_err(|e| AppError::Internal(e.into()))?;
    Ok(respond::json(StatusCode::OK, body))
}

/// A page of `user`'s notifications (only the unread ones when `unread`), as the API shows
/// them, and how many there are.
pub(super) async fn page_of(
    state: &State,
    user: i64,
    unread: bool,
    paging: Paging,
) -> Result<(Vec<serde_json::Value>, i64), AppError> {
    let client = state.store.client().await?;
    let list = client.prepare_cached(LIST).await.map_err(StoreError::from)?;
    let count = client.prepare_cached(COUNT).await.map_err(StoreError::from)?;
    let (limit, offset) = (paging.limit(), paging.offset());
    let list_params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] = [&user, &unread, &limit, &offset];
    let count_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&user, &unread];
    let (rows, total) = tokio::try_join!(
        client.query(&list, &list_params),
        client.query_one(&count, &count_params),
    )
    .map_err(StoreError::from)?;
    Ok((rows.iter().map(item_json).collect(), total.get(0)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadBody {
    #[serde(default)]
    ids: Option<Vec<i64>>,
    #[serde(default)]
    all: Option<bool>,
}

const MARK_READ: &str = "UPDATE notifications SET read_at = now()
  WHERE recipient_id = $1 AND read_at IS NULL AND ($3 OR id = ANY($2))";

/// `POST /api/me/notifications/read` `{"ids": […]}` or `{"all": true}` → `204`. Ids that are
/// not the user's, or already read, change nothing.
pub async fn mark_read(state: &State, parts: &Parts, body: &[u8]) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    extract::body_kind(&parts.headers, &[BodyKind::Json])?;
    let input: ReadBody = extract::json(body)?;
    let (ids, all) = match (input.ids, input.all) {
        (Some(ids), None | Some(false)) if !ids.is_empty() && ids.len() <= MAX_IDS => (ids, false),
        (None, Some(true)) => (Vec::new(), true),
        _ => {
            return Err(AppError::invalid(
                "invalid_read",
                "send {\"ids\": [1 to 1000 ids]} or {\"all\": true}",
            ));
        }
    };
    let user = principal.user_id;
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let statement = tx.prepare_cached(MARK_READ).await.map_err(StoreError::from)?;
    let changed = tx
        .execute(&statement, &[&user, &ids, &all])
        .await
        .map_err(StoreError::from)?;
    if changed > 0 {
        super::changed(&tx, user).await.map_err(StoreError::from)?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    if changed > 0 {
        // The event reaches this instance too, a moment later; the next read must not wait.
        state.notices.changed(user);
    }
    Ok(respond::with_body(
        StatusCode::NO_CONTENT,
        HeaderValue::from_static("text/plain"),
        Bytes::new(),
    ))
}
