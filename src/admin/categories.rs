//! Categories: list (disabled ones too), create, rename, describe, enable or disable,
//! reorder, and delete one no donation refers to. Each change is audited and tells every
//! instance to drop its catalog (`{"kind":"categories"}`).

use std::collections::HashSet;

use deadpool_postgres::GenericClient;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use super::{Actor, ok_json, with_status};
use crate::app::State;
use crate::error::AppError;
use crate::http::respond::{self, Response};
use crate::pay::rfc3339;
use crate::store::StoreError;

/// A category as operators see it.
#[derive(Debug, Clone, Serialize)]
pub struct AdminCategory {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub sort_order: i32,
    pub enabled: bool,
    /// Some donation refers to it (so it can be disabled, never deleted).
    pub referenced: bool,
    pub created_at: String,
    pub updated_at: String,
}

const COLUMNS: &str = "c.id, c.name, c.description, c.sort_order, c.enabled,
        EXISTS (SELECT 1 FROM donations d WHERE d.category_id = c.id), c.created_at, c.updated_at";

fn from_row(row: &Row) -> AdminCategory {
    AdminCategory {
        id: row.get(0),
        name: row.get(1),
        description: row.get(2),
        sort_order: row.get(3),
        enabled: row.get(4),
        referenced: row.get(5),
        created_at: rfc3339(row.get(6)),
        updated_at: rfc3339(row.get(7)),
    }
}

/// Every category, in display order.
pub async fn all(client: &impl GenericClient) -> Result<Vec<AdminCategory>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM categories c ORDER BY c.sort_order, c.id");
    Ok(client.query(&sql, &[]).await?.iter().map(from_row).collect())
}

async fn one(client: &impl GenericClient, id: i64, lock: bool) -> Result<Option<AdminCategory>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM categories c WHERE c.id = $1{}",
        if lock { " FOR UPDATE OF c" } else { "" }
    );
    Ok(client.query_opt(&sql, &[&id]).await?.as_ref().map(from_row))
}

fn json(category: &AdminCategory) -> serde_json::Value {
    serde_json::to_value(category).unwrap_or_default()
}

/// `GET /api/admin/categories`
pub async fn list(state: &State) -> Result<Response, AppError> {
    let client = state.store.client().await?;
    ok_json(&serde_json::json!({ "items": all(&client).await? }))
}

/// A name: 1..=64 characters after trimming, no control characters (the table's check).
fn clean_name(name: &str) -> Result<String, AppError> {
    let trimmed = name.trim();
    let chars = trimmed.chars().count();
    if !(1..=64).contains(&chars) || trimmed.chars().any(char::is_control) {
        return Err(AppError::invalid(
            "invalid_name",
            "name must be 1 to 64 characters without control characters",
        ));
    }
    Ok(trimmed.to_string())
}

/// A description: at most 1000 characters (the table's check).
fn clean_description(text: &str) -> Result<String, AppError> {
    let trimmed = text.trim();
    if trimmed.chars().count() > 1000 {
        return Err(AppError::invalid(
            "invalid_description",
            "description must be at most 1000 characters",
        ));
    }
    Ok(trimmed.to_string())
}

/// A unique violation on the name is the operator's mistake (409), anything else is ours.
fn name_taken(e: tokio_postgres::Error) -> AppError {
    AppError::from_unique(
        e,
        &[(
            "categories_name_key",
            "category_name_taken",
            "another category already has this name",
        )],
    )
}

/// Tells every instance (this one included) to drop its catalog, inside the transaction.
async fn announce(client: &impl GenericClient) -> Result<(), StoreError> {
    crate::store::events::publish(client, r#"{"kind":"categories"}"#).await?;
    Ok(())
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewCategory {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    sort_order: Option<i32>,
}

/// `POST /api/admin/categories` `{"name", "description"?, "enabled"?, "sort_order"?}`:
/// 201 with the category; placed last unless `sort_order` says otherwise.
pub async fn create(state: &State, actor: &Actor, input: NewCategory) -> Result<Response, AppError> {
    let name = clean_name(&input.name)?;
    let description = clean_description(&input.description)?;
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let id: i64 = tx
        .query_one(
            "INSERT INTO categories (name, description, enabled, sort_order)
             VALUES ($1, $2, $3, COALESCE($4, (SELECT COALESCE(max(sort_order) + 1, 0) FROM categories)))
             RETURNING id",
            &[&name, &description, &input.enabled.unwrap_or(true), &input.sort_order],
        )
        .await
        .map_err(name_taken)?
        .get(0);
    let created = one(&tx, id, false).await?.ok_or(AppError::NotFound)?;
    actor
        .audit(
            &tx,
            "category.create",
            &format!("category:{id}"),
            None,
            Some(&json(&created)),
        )
        .await
        .map_err(StoreError::from)?;
    announce(&tx).await?;
    tx.commit().await.map_err(StoreError::from)?;
    state.catalog.invalidate();
    with_status(StatusCode::CREATED, &created)
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CategoryChange {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    sort_order: Option<i32>,
}

/// `PATCH /api/admin/categories/{id}`: any of name, description, enabled, sort_order.
pub async fn update(state: &State, actor: &Actor, id: i64, input: CategoryChange) -> Result<Response, AppError> {
    let name = input.name.as_deref().map(clean_name).transpose()?;
    let description = input.description.as_deref().map(clean_description).transpose()?;
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let before = one(&tx, id, true).await?.ok_or(AppError::NotFound)?;
    tx.execute(
        "UPDATE categories SET name = COALESCE($2, name), description = COALESCE($3, description),
                enabled = COALESCE($4, enabled), sort_order = COALESCE($5, sort_order), updated_at = now()
          WHERE id = $1",
        &[&id, &name, &description, &input.enabled, &input.sort_order],
    )
    .await
    .map_err(name_taken)?;
    let after = one(&tx, id, false).await?.ok_or(AppError::NotFound)?;
    let unchanged = (&before.name, &before.description, before.enabled, before.sort_order)
        == (&after.name, &after.description, after.enabled, after.sort_order);
    if unchanged {
        // Nothing to record or announce; the touched updated_at is rolled back.
        tx.rollback().await.map_err(StoreError::from)?;
        return ok_json(&before);
    }
    actor
        .audit(
            &tx,
            "category.update",
            &format!("category:{id}"),
            Some(&json(&before)),
            Some(&json(&after)),
        )
        .await
        .map_err(StoreError::from)?;
    announce(&tx).await?;
    tx.commit().await.map_err(StoreError::from)?;
    state.catalog.invalidate();
    ok_json(&after)
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Reorder {
    ids: Vec<i64>,
}

/// `POST /api/admin/categories/reorder` `{"ids": [...]}`: every category exactly once, in
/// the new display order.
pub async fn reorder(state: &State, actor: &Actor, input: Reorder) -> Result<Response, AppError> {
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let before: Vec<i64> = tx
        .query("SELECT id FROM categories ORDER BY sort_order, id FOR UPDATE", &[])
        .await
        .map_err(StoreError::from)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let given: HashSet<i64> = input.ids.iter().copied().collect();
    let known: HashSet<i64> = before.iter().copied().collect();
    if given.len() != input.ids.len() || given != known {
        return Err(AppError::invalid(
            "invalid_ids",
            "ids must list every category exactly once",
        ));
    }
    tx.execute(
        "UPDATE categories c SET sort_order = v.position - 1, updated_at = now()
           FROM unnest($1::bigint[]) WITH ORDINALITY AS v(id, position)
          WHERE c.id = v.id AND c.sort_order IS DISTINCT FROM (v.position - 1)::integer",
        &[&input.ids],
    )
    .await
    .map_err(StoreError::from)?;
    actor
        .audit(
            &tx,
            "category.reorder",
            "categories",
            Some(&serde_json::json!({ "ids": before })),
            Some(&serde_json::json!({ "ids": input.ids })),
        )
        .await
        .map_err(StoreError::from)?;
    announce(&tx).await?;
    let items = all(&tx).await?;
    tx.commit().await.map_err(StoreError::from)?;
    state.catalog.invalidate();
    ok_json(&serde_json::json!({ "items": items }))
}

/// `DELETE /api/admin/categories/{id}`: 204, or 409 when a donation refers to it (disable
/// it instead).
pub async fn delete(state: &State, actor: &Actor, id: i64) -> Result<Response, AppError> {
    let in_use = || {
        AppError::conflict(
            "category_in_use",
            "donations refer to this category; disable it instead",
        )
    };
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    // The row lock makes a donation being inserted meanwhile (its foreign key check locks
    // the row too) either finish first, and be seen, or wait and then fail.
    let before = one(&tx, id, true).await?.ok_or(AppError::NotFound)?;
    if before.referenced {
        return Err(in_use());
    }
    tx.execute("DELETE FROM categories WHERE id = $1", &[&id])
        .await
        .map_err(|e| {
            if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) {
                in_use()
            } else {
                StoreError::from(e).into()
            }
        })?;
    actor
        .audit(
            &tx,
            "category.delete",
            &format!("category:{id}"),
            Some(&json(&before)),
            None,
        )
        .await
        .map_err(StoreError::from)?;
    announce(&tx).await?;
    tx.commit().await.map_err(StoreError::from)?;
    state.catalog.invalidate();
    Ok(respond::with_body(
        StatusCode::NO_CONTENT,
        http::header::HeaderValue::from_static("text/plain"),
        bytes::Bytes::new(),
    ))
}
