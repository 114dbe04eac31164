//! Favorites: `PUT` / `DELETE /api/mall/favorites/{product_id}` (idempotent: one row per
//! user and product, inserted with `ON CONFLICT DO NOTHING`) and `GET /api/mall/favorites`.

use http::StatusCode;
use http::request::Parts;
use tokio_postgres::types::ToSql;

use super::catalog::{ITEM_COLUMNS, ListItem, item};
use super::json_answer;
use crate::account::Role;
use crate::app::State;
use crate::error::AppError;
use crate::http::list::Paging;
use crate::http::respond::Response;
use crate::store::StoreError;

const ADD: &str = "INSERT INTO mall_favorites (user_id, product_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";
const REMOVE: &str = "DELETE FROM mall_favorites WHERE user_id = $1 AND product_id = $2";

/// `PUT` (`favorite`) or `DELETE`: `{"product_id": …, "favorited": …}`. A product the user
/// cannot see is 404 for `PUT`; `DELETE` of anything is fine.
pub async fn set(state: &State, parts: &Parts, product_id: i64, favorite: bool) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    if favorite {
        let entry = super::catalog::entry(state, product_id)
            .await?
            .ok_or(AppError::NotFound)?;
        if !entry.visible_to(Some(&principal)) {
            return Err(AppError::NotFound);
        }
    }
    let client = state.store.client().await?;
    let statement = client
        .prepare_cached(if favorite { ADD } else { REMOVE })
        .await
        .map_err(StoreError::from)?;
    client
        .execute(&statement, &[&principal.user_id, &product_id])
        .await
        .map_err(StoreError::from)?;
    json_answer(
        StatusCode::OK,
        &serde_json::json!({"product_id": product_id, "favorited": favorite}),
    )
}

/// A page of `user`'s favorites, the newest first, and how many there are.
pub async fn page(state: &State, user: i64, paging: Paging) -> Result<(Vec<ListItem>, i64), AppError> {
    let client = state.store.client().await?;
    let list_sql = format!(
        "SELECT {ITEM_COLUMNS} FROM mall_favorites f JOIN mall_products p ON p.id = f.product_id
           JOIN users u ON u.id = p.merchant_id
          WHERE f.user_id = $1 ORDER BY f.created_at DESC, p.id DESC LIMIT $2 OFFSET $3"
    );
    let (list, count) = tokio::try_join!(
        client.prepare_cached(&list_sql),
        client.prepare_cached("SELECT count(*) FROM mall_favorites WHERE user_id = $1"),
    )
    .map_err(StoreError::from)?;
    let (limit, offset) = (paging.limit(), paging.offset());
    let list_params: [&(dyn ToSql + Sync); 3] = [&user, &limit, &offset];
    let count_params: [&(dyn ToSql + Sync); 1] = [&user];
    let (rows, total) = tokio::try_join!(
        client.query(&list, &list_params),
        client.query_one(&count, &count_params)
    )
    .map_err(StoreError::from)?;
    Ok((rows.iter().map(item).collect(), total.get(0)))
}

/// `GET /api/mall/favorites?page=&size=`: the products (as lists show them, with `listed`).
pub async fn list(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    let paging = Paging::standard(parts.uri.query())?;
    let (items, total) = page(state, principal.user_id, paging).await?;
    json_answer(StatusCode::OK, &paging.listing(total, items))
}
