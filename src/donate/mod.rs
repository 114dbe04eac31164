//! Donations: the donor-facing pages and APIs — the categories (`catalog`), the home page
//! with its donate form, and creating a donation (`create`).

pub mod catalog;
pub mod create;

use http::StatusCode;

use crate::error::AppError;
use crate::http::respond::{self, Response};
use crate::store::Store;
pub use catalog::{Catalog, PageContext};

/// `GET /api/categories` (contract: "Donor-facing HTTP API").
pub async fn categories(catalog: &Catalog, store: &Store) -> Result<Response, AppError> {
    let snapshot = catalog.snapshot(store).await?;
    Ok(respond::json(StatusCode::OK, snapshot.json.clone()))
}

/// `GET /`: the home page.
pub async fn index_page(catalog: &Catalog, store: &Store) -> Result<Response, AppError> {
    let snapshot = catalog.snapshot(store).await?;
    Ok(respond::html(StatusCode::OK, snapshot.index_html.clone()))
}
