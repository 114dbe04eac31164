//! Boards: the public list (serialized once, dropped by the `community_boards` event on every
//! instance) and the admin's create and update, audited.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::StatusCode;
use http::request::Parts;
use serde::Deserialize;
use serde_json::json;

use super::admin::{Admin, audit_admin};
use super::boards_changed;
use crate::app::State;
use crate::error::AppError;
use crate::http::extract::{self, BodyKind};
use crate::http::respond::{self, Response};
use crate::store::StoreError;

/// A board as listed.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Board {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub sort_order: i32,
}

const LIST: &str = "SELECT id, name, description, sort_order FROM boards ORDER BY sort_order, id";

/// `{"items": [boards]}`, from memory.
pub async fn boards_body(state: &State) -> Result<Bytes, AppError> {
    let community = &state.community;
    if let Some(hit) = community.boards.get(&()) {
        return Ok(hit);
    }
    let generation = community.generation.load(Ordering::SeqCst);
    let client = state.store.client().await?;
    let statement = client.prepare_cached(LIST).await.map_err(StoreError::from)?;
    let items: Vec<Board> = client
        .query(&statement, &[])
        .await
        .map_err(StoreError::from)?
        .iter()
        .map(|r| Board {
            id: r.get(0),
            name: r.get(1),
            description: r.get(2),
            sort_order: r.get(3),
        })
        .collect();
    let body = Bytes::from(json!({ "items": items }).to_string());
    if community.generation.load(Ordering::SeqCst) == generation {
        community.boards.insert((), body.clone());
    }
    Ok(body)
}

/// Every board, in order.
pub async fn all(state: &State) -> Result<Vec<Board>, AppError> {
    #[derive(Deserialize)]
    struct Items {
        items: Vec<Board>,
    }
    let body = boards_body(state).await?;
    let items: Items = serde_json::from_slice(&body).map_err(|e| AppError::Internal(e.into()))?;
    Ok(items.items)
}

/// `GET /api/community/boards`
pub async fn list(state: &State) -> Result<Response, AppError> {
    Ok(respond::json(StatusCode::OK, boards_body(state).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BoardInput {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    sort_order: Option<i32>,
}

/// A board's fields as given: name, description, sort order (each optional).
type Fields = (Option<String>, Option<String>, Option<i32>);

fn clean(input: BoardInput) -> Result<Fields, AppError> {
    let name = input
        .name
        .map(|n| super::posts::clean_text(&n, 32, false, "invalid_name"))
        .transpose()?;
    let description = match input.description {
        None => None,
        Some(d) => {
            let d = d.trim().to_string();
            if d.chars().count() > 500 || d.chars().any(char::is_control) {
                return Err(AppError::invalid(
                    "invalid_description",
                    "description must be at most 500 characters without control characters",
                ));
            }
            Some(d)
        }
    };
    Ok((name, description, input.sort_order))
}

const NAME_TAKEN: &[(&str, &str, &str)] = &[("boards_name_key", "board_name_taken", "a board has this name already")];
const INSERT: &str = "INSERT INTO boards (name, description, sort_order) VALUES ($1, $2, $3)
  RETURNING id, name, description, sort_order";
const UPDATE: &str = "UPDATE boards SET name = coalesce($2, name), description = coalesce($3, description),
        sort_order = coalesce($4, sort_order), updated_at = now()
  WHERE id = $1 RETURNING id, name, description, sort_order";
const SELECT: &str = "SELECT id, name, description, sort_order FROM boards WHERE id = $1 FOR UPDATE";

fn board_json(row: &tokio_postgres::Row) -> serde_json::Value {
    json!({"id": row.get::<_, i64>(0), "name": row.get::<_, String>(1),
           "description": row.get::<_, String>(2), "sort_order": row.get::<_, i32>(3)})
}

/// `POST /api/admin/boards` `{"name","description","sort_order"}` → `201`.
pub async fn create(state: &State, admin: &Admin, parts: &Parts, body: &[u8]) -> Result<Response, AppError> {
    extract::body_kind(&parts.headers, &[BodyKind::Json])?;
    let (name, description, sort_order) = clean(extract::json(body)?)?;
    let name = name.ok_or_else(|| AppError::invalid("invalid_name", "name is required"))?;
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let row = tx
        .query_one(
            INSERT,
            &[&name, &description.unwrap_or_default(), &sort_order.unwrap_or(0)],
        )
        .await
        .map_err(|e| AppError::from_unique(e, NAME_TAKEN))?;
    let after = board_json(&row);
    let target = format!("board:{}", row.get::<_, i64>(0));
    audit_admin(&tx, admin, "community_board_create", &target, None, Some(&after)).await?;
    boards_changed(&tx).await.map_err(StoreError::from)?;
    tx.commit().await.map_err(StoreError::from)?;
    state.community.boards_changed();
    Ok(respond::json(StatusCode::CREATED, after.to_string()))
}

/// `PATCH /api/admin/boards/{id}`: any of `name`, `description`, `sort_order`.
pub async fn update(state: &State, admin: &Admin, parts: &Parts, id: i64, body: &[u8]) -> Result<Response, AppError> {
    extract::body_kind(&parts.headers, &[BodyKind::Json])?;
    let (name, description, sort_order) = clean(extract::json(body)?)?;
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let before = tx
        .query_opt(SELECT, &[&id])
        .await
        .map_err(StoreError::from)?
        .as_ref()
        .map(board_json)
        .ok_or(AppError::NotFound)?;
    let row = tx
        .query_one(UPDATE, &[&id, &name, &description, &sort_order])
        .await
        .map_err(|e| AppError::from_unique(e, NAME_TAKEN))?;
    let after = board_json(&row);
    audit_admin(
        &tx,
        admin,
        "community_board_update",
        &format!("board:{id}"),
        Some(&before),
        Some(&after),
    )
    .await?;
    boards_changed(&tx).await.map_err(StoreError::from)?;
    tx.commit().await.map_err(StoreError::from)?;
    state.community.boards_changed();
    Ok(respond::json(StatusCode::OK, after.to_string()))
}
