//! The address book (`/api/me/addresses…`), shared by the mall and crowdfunding: exactly one
//! default while a user has any address (the first one becomes it; deleting it promotes
//! another), kept under a lock on the owner's users row so concurrent changes cannot break
//! it. Modules copy an address into an order with [`for_order`].

use bytes::Bytes;
use deadpool_postgres::GenericClient;
use http::StatusCode;
use http::header::HeaderValue;
use http::request::Parts;
use serde::Deserialize;

use super::Role;
use crate::app::State;
use crate::error::AppError;
use crate::http::extract::{self, BodyKind};
use crate::http::list::Paging;
use crate::http::respond::{self, Response};
use crate::pay::rfc3339;
use crate::store::StoreError;

/// Most addresses one user may keep.
pub const MAX_ADDRESSES: i64 = 20;

/// An address as an order copies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub name: String,
    pub phone: String,
    pub region: String,
    pub detail: String,
}

const FOR_ORDER: &str = "SELECT name, phone, region, detail FROM addresses WHERE id = $1 AND user_id = $2";

/// Address `address_id` of `user_id`, to copy into an order; `None` when there is no such
/// address or it is someone else's (answer it as the module's 422 or 404).
pub async fn for_order(
    client: &impl GenericClient,
    user_id: i64,
    address_id: i64,
) -> Result<Option<Address>, tokio_postgres::Error> {
    let statement = client.prepare_cached(FOR_ORDER).await?;
    Ok(client
        .query_opt(&statement, &[&address_id, &user_id])
        .await?
        .map(|row| Address {
            name: row.get(0),
            phone: row.get(1),
            region: row.get(2),
            detail: row.get(3),
        }))
}

/// An entry of a user's address book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookEntry {
    pub id: i64,
    pub address: Address,
    pub is_default: bool,
}

const BOOK: &str = "SELECT id, name, phone, region, detail, is_default FROM addresses WHERE user_id = $1
  ORDER BY is_default DESC, id DESC LIMIT 20";

/// `user_id`'s address book, the default first (for a module's checkout page).
pub async fn book(client: &impl GenericClient, user_id: i64) -> Result<Vec<BookEntry>, tokio_postgres::Error> {
    let statement = client.prepare_cached(BOOK).await?;
    Ok(client
        .query(&statement, &[&user_id])
        .await?
        .iter()
        .map(|row| BookEntry {
            id: row.get(0),
            address: Address {
                name: row.get(1),
                phone: row.get(2),
                region: row.get(3),
                detail: row.get(4),
            },
            is_default: row.get(5),
        })
        .collect())
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddressBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    is_default: Option<bool>,
}

/// Trimmed text of 1..=`max` characters without control characters, else a 422 naming it.
fn text(field: &'static str, value: &str, max: usize) -> Result<String, AppError> {
    let value = value.trim();
    let count = value.chars().count();
    if !(1..=max).contains(&count) || value.chars().any(char::is_control) {
        return Err(AppError::invalid(
            match field {
                "name" => "invalid_name",
                "region" => "invalid_region",
                _ => "invalid_detail",
            },
            format!("{field} must be 1 to {max} characters"),
        ));
    }
    Ok(value.to_string())
}

fn phone(value: &str) -> Result<String, AppError> {
    let value = value.trim();
    let digits = value.strip_prefix('+').unwrap_or(value);
    let ok = (5..=24).contains(&digits.len())
        && digits.starts_with(|c: char| c.is_ascii_digit())
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b' ' || b == b'-');
    if !ok {
        return Err(AppError::invalid(
            "invalid_phone",
            "phone must be 5 to 24 digits (spaces, dashes and a leading + allowed)",
        ));
    }
    Ok(value.to_string())
}

/// The checked fields of a body: all four for a create, any for a change.
struct Fields {
    name: Option<String>,
    phone: Option<String>,
    region: Option<String>,
    detail: Option<String>,
}

fn check(body: &AddressBody) -> Result<Fields, AppError> {
    Ok(Fields {
        name: body.name.as_deref().map(|v| text("name", v, 32)).transpose()?,
        phone: body.phone.as_deref().map(phone).transpose()?,
        region: body.region.as_deref().map(|v| text("region", v, 100)).transpose()?,
        detail: body.detail.as_deref().map(|v| text("detail", v, 200)).transpose()?,
    })
}

const COLUMNS: &str = "id, user_id, name, phone, region, detail, is_default, created_at, updated_at";

fn json(row: &tokio_postgres::Row) -> serde_json::Value {
    serde_json::json!({
        "id": row.get::<_, i64>(0),
        "name": row.get::<_, String>(2),
        "phone": row.get::<_, String>(3),
        "region": row.get::<_, String>(4),
        "detail": row.get::<_, String>(5),
        "is_default": row.get::<_, bool>(6),
        "created_at": rfc3339(row.get(7)),
        "updated_at": rfc3339(row.get(8)),
    })
}

/// `GET /api/me/addresses`: the default first, then newest first.
pub async fn list(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    let paging = Paging::standard(parts.uri.query())?;
    let client = state.store.client().await?;
    let sql = format!(
        "SELECT {COLUMNS}, count(*) OVER () FROM addresses WHERE user_id = $1
          ORDER BY is_default DESC, id DESC LIMIT $2 OFFSET $3"
    );
    let rows = client
        .query(&sql, &[&principal.user_id, &paging.limit(), &paging.offset()])
        .await
        .map_err(StoreError::from)?;
    let total: i64 = match rows.first() {
        Some(row) => row.get(9),
        None => client
            .query_one(
                "SELECT count(*) FROM addresses WHERE user_id = $1",
                &[&principal.user_id],
            )
            .await
            .map_err(StoreError::from)?
            .get(0),
    };
    let items: Vec<_> = rows.iter().map(json).collect();
    let body = serde_json::to_vec(&paging.listing(total, items)).map_err(|e| AppError::Internal(e.into()))?;
    Ok(respond::json(StatusCode::OK, body))
}

const LOCK_USER: &str = "SELECT 1 FROM users WHERE id = $1 FOR UPDATE";
const UNSET_DEFAULT: &str =
    "UPDATE addresses SET is_default = false, updated_at = now() WHERE user_id = $1 AND is_default";

/// `POST /api/me/addresses` → `201` with the address; the first one is the default.
pub async fn create(state: &State, parts: &Parts, body: &[u8]) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    extract::body_kind(&parts.headers, &[BodyKind::Json])?;
    let input: AddressBody = extract::json(body)?;
    let fields = check(&input)?;
    let (Some(name), Some(phone), Some(region), Some(detail)) =
        (fields.name, fields.phone, fields.region, fields.detail)
    else {
        return Err(AppError::invalid(
            "missing_field",
            "name, phone, region and detail are required",
        ));
    };
    let user = principal.user_id;
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    tx.execute(LOCK_USER, &[&user]).await.map_err(StoreError::from)?;
    let count: i64 = tx
        .query_one("SELECT count(*) FROM addresses WHERE user_id = $1", &[&user])
        .await
        .map_err(StoreError::from)?
        .get(0);
    if count >= MAX_ADDRESSES {
        return Err(AppError::conflict(
            "too_many_addresses",
            format!("an account keeps at most {MAX_ADDRESSES} addresses; delete one first"),
        ));
    }
    let is_default = count == 0 || input.is_default == Some(true);
    if is_default {
        tx.execute(UNSET_DEFAULT, &[&user]).await.map_err(StoreError::from)?;
    }
    let sql = format!(
        "INSERT INTO addresses (user_id, name, phone, region, detail, is_default)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    );
    let row = tx
        .query_one(&sql, &[&user, &name, &phone, &region, &detail, &is_default])
        .await
        .map_err(StoreError::from)?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(respond::json(StatusCode::CREATED, json(&row).to_string()))
}

/// The owner of address `id` if the principal may touch it (its owner, or an admin), with
/// the owner's row locked; 404 otherwise.
async fn lock_owner(tx: &impl GenericClient, principal: &super::Principal, id: i64) -> Result<i64, AppError> {
    let owner: i64 = tx
        .query_opt("SELECT user_id FROM addresses WHERE id = $1", &[&id])
        .await
        .map_err(StoreError::from)?
        .ok_or(AppError::NotFound)?
        .get(0);
    let owner = principal.own(owner, owner)?;
    tx.execute(LOCK_USER, &[&owner]).await.map_err(StoreError::from)?;
    Ok(owner)
}

/// `GET`, `PATCH` or `DELETE /api/me/addresses/{id}`; someone else's address is 404.
pub async fn one(state: &State, parts: &Parts, id: i64, body: &[u8]) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let owner = lock_owner(&tx, &principal, id).await?;
    let select = format!("SELECT {COLUMNS} FROM addresses WHERE id = $1 AND user_id = $2");
    // Read again under the lock: it may have gone meanwhile.
    let row = tx
        .query_opt(&select, &[&id, &owner])
        .await
        .map_err(StoreError::from)?
        .ok_or(AppError::NotFound)?;
    let response = match parts.method {
        http::Method::PATCH => {
            extract::body_kind(&parts.headers, &[BodyKind::Json])?;
            let input: AddressBody = extract::json(body)?;
            let updated = change(&tx, &row, owner, &input).await?;
            respond::json(StatusCode::OK, json(&updated).to_string())
        }
        http::Method::DELETE => {
            remove(&tx, &row, owner).await?;
            respond::with_body(
                StatusCode::NO_CONTENT,
                HeaderValue::from_static("text/plain"),
                Bytes::new(),
            )
        }
        _ => respond::json(StatusCode::OK, json(&row).to_string()),
    };
    tx.commit().await.map_err(StoreError::from)?;
    Ok(response)
}

async fn change(
    tx: &impl GenericClient,
    row: &tokio_postgres::Row,
    owner: i64,
    input: &AddressBody,
) -> Result<tokio_postgres::Row, AppError> {
    let fields = check(input)?;
    let was_default: bool = row.get(6);
    let is_default = match input.is_default {
        Some(false) if was_default => {
            return Err(AppError::invalid(
                "default_required",
                "one address stays the default; make another one the default instead",
            ));
        }
        Some(true) if !was_default => {
            tx.execute(UNSET_DEFAULT, &[&owner]).await.map_err(StoreError::from)?;
            true
        }
        _ => was_default,
    };
    let sql = format!(
        "UPDATE addresses SET name = coalesce($2, name), phone = coalesce($3, phone), region = coalesce($4, region),
                detail = coalesce($5, detail), is_default = $6, updated_at = now()
          WHERE id = $1 RETURNING {COLUMNS}"
    );
    let id: i64 = row.get(0);
    tx.query_one(
        &sql,
        &[
            &id,
            &fields.name,
            &fields.phone,
            &fields.region,
            &fields.detail,
            &is_default,
        ],
    )
    .await
    .map_err(|e| AppError::from(StoreError::from(e)))
}

const PROMOTE: &str = "UPDATE addresses SET is_default = true, updated_at = now()
  WHERE id = (SELECT id FROM addresses WHERE user_id = $1 ORDER BY updated_at DESC, id DESC LIMIT 1)";

async fn remove(tx: &impl GenericClient, row: &tokio_postgres::Row, owner: i64) -> Result<(), AppError> {
    let id: i64 = row.get(0);
    tx.execute("DELETE FROM addresses WHERE id = $1", &[&id])
        .await
        .map_err(StoreError::from)?;
    if row.get::<_, bool>(6) {
        tx.execute(PROMOTE, &[&owner]).await.map_err(StoreError::from)?;
    }
    Ok(())
}
