//! Donations: the donor-facing pages and APIs — the categories (`catalog`), the home page
//! with its donate form, creating a donation (`create`), and the donation purpose the engine
//! runs in its transactions (`purpose`).

pub mod catalog;
pub mod chart;
pub mod create;
pub mod purpose;
pub mod rankings;

use askama::Template;
use http::StatusCode;
use http::request::Parts;

use crate::app::State;
use crate::error::AppError;
use crate::http::respond::{self, Response};
use crate::http::{assets, extract};
use crate::store::Store;
use crate::ui::{self, Lang, Section, Ui};
pub use catalog::{Catalog, Category, PageContext};
pub use purpose::Donation;
pub use rankings::Rankings;

/// `GET /api/categories` (contract: "Donor-facing HTTP API").
pub async fn categories(catalog: &Catalog, store: &Store) -> Result<Response, AppError> {
    let snapshot = catalog.snapshot(store).await?;
    Ok(respond::json(StatusCode::OK, snapshot.json.clone()))
}

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage<'a> {
    ui: Ui,
    categories: &'a [Category],
    script: String,
    context: &'a PageContext,
    /// "0.01 – 50000.00 元".
    bounds: String,
    /// The 30-day chart, inline SVG made (and escaped) by `ui::chart`.
    chart: &'a str,
}

/// `GET /`: the home page, in the visitor's language, the chart inline (its bars' titles
/// are tooltips only there). Its parts come from memory: the catalog and the cached chart.
pub async fn index_page(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let ui = Ui::new(state, parts, Section::Donate).await;
    let snapshot = state.catalog.snapshot(&state.store).await?;
    let chart = state.rankings.chart(&state.store, ui.lang, false).await?;
    let lang = ui.lang;
    let page = IndexPage {
        bounds: ui::fill(
            ui.t.donate.bounds,
            &[
                ("min", &snapshot.context.min_amount),
                ("max", &snapshot.context.max_amount),
            ],
        ),
        ui,
        categories: &snapshot.categories,
        script: assets::url("home.js"),
        context: &snapshot.context,
        chart: std::str::from_utf8(&chart).unwrap_or_default(),
    };
    ui::page(lang, StatusCode::OK, &page)
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

/// A ranking's page size, and recent donations' count, when the query names none.
const DEFAULT_SIZE: u32 = 20;

/// The parameters of a ranking query, checked.
pub fn ranking_key(query: Option<&str>) -> Result<rankings::RankingKey, AppError> {
    // No query (the home page's read, and most clients'): every parameter's default, without
    // looking each one up (a cached ranking's hottest request).
    if query.is_none_or(str::is_empty) {
        return Ok(rankings::RankingKey {
            category_id: None,
            range: rankings::Range::All,
            page: 1,
            size: DEFAULT_SIZE,
        });
    }
    let range = match extract::query_param(query, "range")? {
        None => rankings::Range::All,
        Some(text) => rankings::Range::parse(&text)
            .ok_or_else(|| AppError::invalid("invalid_range", "range must be day, week, month or all"))?,
    };
    Ok(rankings::RankingKey {
        category_id: category_param(query)?,
        range,
        page: extract::number_param(query, "page", 1, MAX_PAGE, "invalid_page")?,
        size: extract::number_param(query, "size", DEFAULT_SIZE, 100, "invalid_size")?,
    })
}

/// The `category_id` and `limit` of a recent-donations query, checked.
pub fn recent_params(query: Option<&str>) -> Result<(Option<i64>, u32), AppError> {
    if query.is_none_or(str::is_empty) {
        return Ok((None, DEFAULT_SIZE));
    }
    Ok((
        category_param(query)?,
        extract::number_param(query, "limit", DEFAULT_SIZE, 100, "invalid_limit")?,
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

/// `GET /api/stats/chart.svg`: the home page's chart as a document of its own, its labels
/// in the language the request asks for.
pub async fn chart(rankings: &Rankings, store: &Store, parts: &Parts) -> Result<Response, AppError> {
    let lang = Lang::of_request(&parts.headers);
    let svg = rankings.chart(store, lang, true).await?;
    let mut response = respond::with_body(
        StatusCode::OK,
        http::header::HeaderValue::from_static("image/svg+xml"),
        svg,
    );
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::header::HeaderValue::from_static("no-cache"),
    );
    Ok(ui::with_lang(lang, response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_without_parameters_reads_as_their_defaults() {
        let spelled = ranking_key(Some("range=all&page=1&size=20")).unwrap();
        assert_eq!(ranking_key(None).unwrap(), spelled);
        assert_eq!(ranking_key(Some("")).unwrap(), spelled);
        // Pieces that name nothing are skipped, as before the shortcut.
        assert_eq!(ranking_key(Some("&&")).unwrap(), spelled);
        let asked = ranking_key(Some("category_id=3&range=week&page=2&size=50")).unwrap();
        assert_eq!(
            (asked.category_id, asked.range, asked.page, asked.size),
            (Some(3), rankings::Range::Week, 2, 50)
        );
        assert!(ranking_key(Some("size=0")).is_err());

        let spelled = recent_params(Some("limit=20")).unwrap();
        assert_eq!(recent_params(None).unwrap(), spelled);
        assert_eq!(recent_params(Some("")).unwrap(), spelled);
        assert_eq!(recent_params(Some("category_id=4&limit=5")).unwrap(), (Some(4), 5));
        assert!(recent_params(Some("limit=101")).is_err());
    }
}
