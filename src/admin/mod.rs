//! The admin API (`/api/admin/…`) and the admin pages (`/admin/…`). Every route checks the
//! session first: 401 without one, 403 without the admin role. Every change is written with
//! its audit row (who, what, on which record, before and after) in one transaction.

use std::net::IpAddr;

use bytes::Bytes;
use deadpool_postgres::GenericClient;
use http::request::Parts;

use crate::account::Role;
use crate::app::State;
use crate::error::AppError;
use crate::http::respond::Response;

/// Writes one audit row in the caller's transaction. `before`/`after` are the record's
/// state around the change (never secrets: no password hashes, no tokens).
#[allow(clippy::too_many_arguments)]
pub async fn audit(
    client: &impl GenericClient,
    actor_id: Option<i64>,
    actor: &str,
    action: &str,
    target: &str,
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
    ip: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO admin_audit (actor_id, actor, action, target, before, after, ip)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&actor_id, &actor, &action, &target, &before, &after, &ip],
        )
        .await
        .map(drop)
}

/// `/api/admin/{path}`.
pub async fn api(state: &State, path: &str, parts: &Parts, body: Bytes, ip: IpAddr) -> Result<Response, AppError> {
    let _admin = state.sessions.require(&state.store, parts, Role::Admin).await?;
    let _ = (path, body, ip);
    Err(AppError::NotFound)
}

/// `/admin/{path}`: the pages.
pub async fn page(state: &State, path: &str, parts: &Parts) -> Result<Response, AppError> {
    let _admin = state.sessions.require(&state.store, parts, Role::Admin).await?;
    let _ = path;
    Err(AppError::NotFound)
}
