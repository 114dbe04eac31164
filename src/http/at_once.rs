//! The cached public reads, answered on the request path: no future, no box, no second route
//! parse. Each module says which of its reads it holds in memory and answers them exactly as
//! its handler would on a cache hit; a miss, a bad parameter, a signed-in reader where the
//! answer depends on the reader, or a spent allowance returns `None`, and the general path
//! answers (and checks) the request as before.

use std::net::IpAddr;
use std::time::Instant;

use http::request::Parts;
use http::{Method, StatusCode};

use super::limit;
use super::respond::{self, Response};
use super::route::Route;
use crate::app::State;
use crate::{community, crowdfunding, donate, mall};

/// The answer to `route` from memory, or `None`.
/// `now` is when the request began: the hottest answers are kept per worker until a change or
/// a second later (`store::hot`).
pub(super) fn cached(state: &State, route: Route<'_>, parts: &Parts, ip: IpAddr, now: Instant) -> Option<Response> {
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return None;
    }
    let query = parts.uri.query();
    // Whether the general path counts this read against the status allowance.
    let (body, allowance) = match route {
        Route::Rankings => (
            state.rankings.ranking_cached(donate::ranking_key(query).ok()?, now),
            true,
        ),
        Route::RecentDonations => {
            let (category_id, limit) = donate::recent_params(query).ok()?;
            (state.rankings.recent_cached(category_id, limit, now), true)
        }
        Route::Stats => (state.rankings.stats_cached(now), true),
        Route::Categories => (state.catalog.cached().map(|s| s.json.clone()), false),
        // A status read without `wait` (a long-poll parks: see `park`).
        Route::PaymentStatus(no) if matches!(crate::payments::wait_param(query), Ok(None)) => {
            (state.engine.status.cached(no).map(|s| s.json.clone()), true)
        }
        Route::Crowdfunding(read) => (
            crowdfunding::cached_read(state, read, parts, now),
            read.is_public_read(),
        ),
        Route::Mall(read) => (mall::cached_read(state, read, parts, now), read.is_public_read()),
        Route::Community(read) => (community::cached_read(state, read, parts, now), false),
        _ => return None,
    };
    let body = body?;
    if allowance && state.limits.check(limit::Kind::Status, ip).is_err() {
        // The general path checks again and answers 429.
        return None;
    }
    Some(respond::json(StatusCode::OK, body))
}
