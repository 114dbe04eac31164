//! The mall (contract: "Mall"): a category tree, products with SKUs, search, favorites, carts,
//! coupons, orders paid through the payment engine, sellers (merchants, and any user for a
//! second-hand listing) and their pages.
//!
//! - `categories`, `catalog` (cached list and detail reads), `products` (writes), `search`
//!   (what a query asks for), `favorites`, `cart`, `coupons`, `pricing` (the order's money,
//!   pure), `orders` (checkout and the lifecycle);
//! - `pages`, `merchant_pages`, `admin_pages`, `dashboard`, `labels`: the server-rendered pages;
//! - `route`: the module's own `Route` and `dispatch`.
//!
//! Public reads are pre-serialized and kept in memory ([`Mall`]); every write that changes
//! what they show publishes a `mall` event on commit, which drops the affected answers on
//! every instance (and on this one at once).

mod admin_pages;
mod cache;
mod cart;
mod catalog;
mod categories;
mod coupons;
mod dashboard;
mod favorites;
mod labels;
mod merchant_pages;
mod orders;
mod pages;
pub mod pricing;
mod products;
mod route;
pub mod search;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::GenericClient;
use http::StatusCode;
use http::request::Parts;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::account::Principal;
use crate::error::AppError;
use crate::http::extract::{self, BodyKind};
use crate::http::respond::{self, Response};
use crate::store::fresh::Fresh;

pub use catalog::{cached_read, explain_list};
pub use orders::{MallOrder, auto_complete, complete_due};
pub use route::{AdminPage, BuyerAction, Route, SellerAction, dispatch};
/// The request bodies, for the API description.
pub(crate) mod bodies {
    pub(crate) use super::cart::PutBody as CartItem;
    pub(crate) use super::categories::{CreateBody as NewCategory, PatchBody as CategoryPatch};
    pub(crate) use super::coupons::CreateBody as NewCoupon;
    pub(crate) use super::orders::{DecisionBody, OrderBody, ReasonBody, ShipBody};
    pub(crate) use super::products::ProductBody;
}

/// What the mall keeps in memory: the category tree, list answers and product details, each
/// dropped by the events that change them.
pub struct Mall {
    /// `mall.*` settings.
    pub settings: crate::config::Mall,
    categories: cache::Versioned<(), Arc<categories::Tree>>,
    lists: cache::Versioned<catalog::ListKey, Arc<catalog::ListAnswer>>,
    /// Each worker's copies of the lists it serves most.
    list_front: crate::store::hot::Front<catalog::ListKey>,
    products: Fresh<Arc<catalog::ProductEntry>>,
}

impl std::fmt::Debug for Mall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mall")
            .field("lists", &self.lists)
            .field("products", &self.products)
            .finish()
    }
}

impl Mall {
    pub fn new(settings: &crate::config::Mall) -> Mall {
        // The TTLs are a safety net: events keep every entry fresh.
        Mall {
            settings: settings.clone(),
            categories: cache::Versioned::new(4, Duration::from_secs(300)),
            lists: cache::Versioned::new(10_000, Duration::from_secs(60)),
            list_front: Default::default(),
            products: Fresh::new(100_000, Duration::from_secs(300)),
        }
    }

    /// Applies a `mall` event (from any instance): `{"kind":"mall","products":[…],
    /// "categories":true}`.
    pub fn apply_event(&self, message: &serde_json::Value) {
        if message.get("categories").and_then(|c| c.as_bool()) == Some(true) {
            self.categories_changed();
        }
        let ids: Vec<i64> = message
            .get("products")
            .and_then(|p| p.as_array())
            .map(|ids| ids.iter().filter_map(|id| id.as_i64()).collect())
            .unwrap_or_default();
        self.products_changed(&ids);
    }

    /// Products changed (their details, and any list).
    pub fn products_changed(&self, ids: &[i64]) {
        if ids.is_empty() {
            return;
        }
        for id in ids {
            self.products.changed(*id);
        }
        self.lists.bump();
        self.list_front.changed();
    }

    /// The category tree changed (and with it what a category filter covers).
    pub fn categories_changed(&self) {
        self.categories.bump();
        self.lists.bump();
        self.list_front.changed();
    }

    /// Everything may have changed (the event bus reconnected, a seller renamed).
    pub fn changed_all(&self) {
        self.categories.bump();
        self.lists.bump();
        self.list_front.changed();
        self.products.changed_all();
    }
}

/// Tells every instance, when the caller's transaction commits, that `products` (and the
/// category tree, with `categories`) changed.
pub async fn publish(
    client: &impl GenericClient,
    products: &[i64],
    categories: bool,
) -> Result<(), tokio_postgres::Error> {
    crate::store::events::publish(client, &event_payload(products, categories)).await
}

/// The `mall` event [`publish`] sends, for a statement that sends it itself.
pub fn event_payload(products: &[i64], categories: bool) -> String {
    serde_json::json!({"kind": "mall", "products": products, "categories": categories}).to_string()
}

/// The audit log's view of `principal` acting from `ip`.
fn audit_actor<'a>(principal: &'a Principal, ip: &'a str) -> crate::store::audit::Actor<'a> {
    crate::store::audit::Actor {
        user_id: Some(principal.user_id),
        name: principal.username.as_deref().unwrap_or(&principal.display_name),
        ip,
    }
}

/// A JSON body (415 for another content type, 400 when it does not parse into `T`).
fn json_body<T: DeserializeOwned>(parts: &Parts, body: &[u8]) -> Result<T, AppError> {
    extract::body_kind(&parts.headers, &[BodyKind::Json])?;
    extract::json(body)
}

/// `value` as a JSON answer with `status`.
fn json_answer(status: StatusCode, value: &impl Serialize) -> Result<Response, AppError> {
    let body = serde_json::to_vec(value).map_err(|e| AppError::Internal(e.into()))?;
    Ok(respond::json(status, body))
}

/// Trimmed text of `min..=max` characters without control characters (newlines allowed
/// where `multiline`), else a 422 `code`.
fn text(
    value: &str,
    min: usize,
    max: usize,
    multiline: bool,
    code: &'static str,
    name: &str,
) -> Result<String, AppError> {
    let value = value.trim();
    let count = value.chars().count();
    let bad_char = value
        .chars()
        .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\r' || c == '\t')));
    if !(min..=max).contains(&count) || bad_char {
        return Err(AppError::invalid(
            code,
            format!("{name} must be {min} to {max} characters without control characters"),
        ));
    }
    Ok(value.to_string())
}

/// `Some(Some(v))` for a value, `Some(None)` for an explicit `null`, `None` when absent: for
/// PATCH bodies where `null` means "clear".
fn double_option<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}

/// A yuan string as fen within `1..=max_fen`, else a 422 `code`.
fn price(text: &str, max_fen: i64, code: &'static str, name: &str) -> Result<i64, AppError> {
    match crate::pay::money::parse_yuan(text.trim()) {
        Ok(fen) if (1..=max_fen).contains(&fen) => Ok(fen),
        _ => Err(AppError::invalid(
            code,
            format!(
                "{name} must be a yuan string from 0.01 to {}",
                crate::pay::money::format_yuan(max_fen)
            ),
        )),
    }
}

/// A shared load's error as the requests that waited on it see it: 503 while the database
/// is unavailable, else a 500 with its cause.
fn load_error(e: &crate::store::StoreError) -> AppError {
    if e.is_unavailable() {
        AppError::Unavailable(crate::store::StoreError::Unavailable(e.to_string()))
    } else {
        AppError::Internal(anyhow::anyhow!("loading the mall's data: {e}"))
    }
}
