//! Donations: the donor-facing pages and APIs — the categories (`catalog`), the home page
//! with its donate form, and creating a donation (`create`).

pub mod catalog;
mod chart;
pub mod create;
pub mod rankings;

use http::StatusCode;

use crate::error::AppError;
use crate::http::extract;
use crate::http::respond::{self, Response};
use crate::store::Store;
pub use catalog::{Catalog, PageContext};
pub use rankings::Rankings;

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

/// Largest page number accepted (keeps OFFSET bounded).
const MAX_PAGE: u32 = 100_000;

fn category_param(query: Option<&str>) -> Result<Option<i64>, AppError> {
    match extract::query_param(query, "category_id")? {
        None => Ok(None),
        Some(text) if text.is_empty() => Ok(None),
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .map(Some)
            .ok_or_else(|| AppError::invalid("invalid_category", "category_id must be a positive whole number")),
    }
}

/// The parameters of a ranking query, checked.
pub fn ranking_key(query: Option<&str>) -> Result<rankings::RankingKey, AppError> {
    let range = match extract::query_param(query, "range")? {
        None => rankings::Range::All,
        Some(text) => rankings::Range::parse(&text)
            .ok_or_else(|| AppError::invalid("invalid_range", "range must be day, week, month or all"))?,
    };
    Ok(rankings::RankingKey {
        category_id: category_param(query)?,
        range,
        page: extract::number_param(query, "page", 1, MAX_PAGE, "invalid_page")?,
        size: extract::number_param(query, "size", 20, 100, "invalid_size")?,
    })
}

/// The `category_id` and `limit` of a recent-donations query, checked.
pub fn recent_params(query: Option<&str>) -> Result<(Option<i64>, u32), AppError> {
    Ok((
        category_param(query)?,
        extract::number_param(query, "limit", 20, 100, "invalid_limit")?,
    ))
}

/// `GET /api/rankings?category_id=&range=&page=&size=` (contract: "Ranking JSON").
pub async fn rankings(rankings: &Rankings, store: &Store, query: Option<&str>) -> Result<Response, AppError> {
    let key = ranking_key(query)?;
    Ok(respond::json(StatusCode::OK, rankings.ranking(store, key).await?))
}

/// `GET /api/donations/recent?category_id=&limit=`
pub async fn recent(rankings: &Rankings, store: &Store, query: Option<&str>) -> Result<Response, AppError> {
    let (category_id, limit) = recent_params(query)?;
    Ok(respond::json(
        StatusCode::OK,
        rankings.recent(store, category_id, limit).await?,
    ))
}

/// `GET /api/stats`
pub async fn stats(rankings: &Rankings, store: &Store) -> Result<Response, AppError> {
    Ok(respond::json(StatusCode::OK, rankings.stats(store).await?))
}

/// `GET /api/stats/chart.svg`
pub async fn chart(rankings: &Rankings, store: &Store) -> Result<Response, AppError> {
    let svg = rankings.chart(store).await?;
    let mut response = respond::with_body(
        StatusCode::OK,
        http::header::HeaderValue::from_static("image/svg+xml"),
        svg,
    );
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::header::HeaderValue::from_static("no-cache"),
    );
    Ok(response)
}
