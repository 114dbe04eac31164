//! Accounts for operators: list them, change a role, disable or enable one. A change ends
//! all of that account's sessions; an admin cannot demote or disable themself (so the last
//! admin cannot lock everyone out by mistake).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio_postgres::Row;

use super::{Actor, Listing, Paging, ok_json};
use crate::account::Role;
use crate::account::users::revoke_all;
use crate::app::State;
use crate::error::AppError;
use crate::http::respond::Response;
use crate::pay::rfc3339;
use crate::store::StoreError;

/// An account as operators see it (never its password hash).
#[derive(Debug, Clone, Serialize)]
pub struct UserRow {
    pub id: i64,
    pub username: Option<String>,
    pub display_name: String,
    pub role: String,
    pub disabled: bool,
    /// Signs in with WeChat.
    pub wechat: bool,
    pub locked_until: Option<String>,
    pub created_at: String,
    pub last_login_at: Option<String>,
}

const COLUMNS: &str = "id, username, display_name, role, disabled, wechat_openid IS NOT NULL,
        locked_until, created_at, last_login_at";

fn from_row(row: &Row) -> UserRow {
    UserRow {
        id: row.get(0),
        username: row.get(1),
        display_name: row.get(2),
        role: row.get(3),
        disabled: row.get(4),
        wechat: row.get(5),
        locked_until: row.get::<_, Option<OffsetDateTime>>(6).map(rfc3339),
        created_at: rfc3339(row.get(7)),
        last_login_at: row.get::<_, Option<OffsetDateTime>>(8).map(rfc3339),
    }
}

fn json(user: &UserRow) -> serde_json::Value {
    serde_json::json!({"id": user.id, "username": user.username, "role": user.role, "disabled": user.disabled})
}

/// A page of the accounts, oldest first (`GET /api/admin/users?page=&size=` and its page).
pub async fn find(state: &State, paging: Paging) -> Result<Listing<UserRow>, AppError> {
    let client = state.store.client().await?;
    let total: i64 = client
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .map_err(StoreError::from)?
        .get(0);
    let rows = client
        .query(
            &format!("SELECT {COLUMNS} FROM users ORDER BY id LIMIT $1 OFFSET $2"),
            &[&paging.limit(), &paging.offset()],
        )
        .await
        .map_err(StoreError::from)?;
    Ok(Listing {
        page: paging.page,
        size: paging.size,
        total,
        items: rows.iter().map(from_row).collect(),
    })
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserChange {
    #[serde(default)]
    #[schemars(regex(pattern = r"^(user|merchant|reviewer|admin)$"))]
    role: Option<String>,
    #[serde(default)]
    disabled: Option<bool>,
}

/// `PATCH /api/admin/users/{id}` `{"role"?, "disabled"?}`.
pub async fn update(state: &State, actor: &Actor, id: i64, input: UserChange) -> Result<Response, AppError> {
    let role = input
        .role
        .as_deref()
        .map(|r| {
            Role::parse(r)
                .ok_or_else(|| AppError::invalid("invalid_role", "role must be user, merchant, reviewer or admin"))
        })
        .transpose()?;
    if id == actor.principal.user_id && (role.is_some_and(|r| r != Role::Admin) || input.disabled == Some(true)) {
        return Err(AppError::invalid(
            "own_account",
            "you cannot demote or disable your own account",
        ));
    }
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1 FOR UPDATE");
    let before = tx
        .query_opt(&sql, &[&id])
        .await
        .map_err(StoreError::from)?
        .as_ref()
        .map(from_row)
        .ok_or(AppError::NotFound)?;
    let row = tx
        .query_one(
            &format!(
                "UPDATE users SET role = COALESCE($2, role), disabled = COALESCE($3, disabled), updated_at = now()
                  WHERE id = $1 RETURNING {COLUMNS}"
            ),
            &[&id, &role.map(Role::as_str), &input.disabled],
        )
        .await
        .map_err(StoreError::from)?;
    let after = from_row(&row);
    let changed = before.role != after.role || before.disabled != after.disabled;
    if changed {
        revoke_all(&tx, id).await.map_err(StoreError::from)?;
        // A disabled account's public profile goes away on every instance.
        crate::account::profiles::profile_changed(&tx, id)
            .await
            .map_err(StoreError::from)?;
        actor
            .audit(
                &tx,
                "user.update",
                &format!("user:{id}"),
                Some(&json(&before)),
                Some(&json(&after)),
            )
            .await
            .map_err(StoreError::from)?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    if changed {
        state.sessions.invalidate_all();
        state.profiles.changed(id);
    }
    ok_json(&after)
}
