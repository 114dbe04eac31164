//! The notify module's routes, under `/api/me/notifications` and the page
//! `/me/notifications` (parsed before the account module's `/api/me…` and `/me`). The unread-count long-poll is served by `http::dispatch` directly
//! (unboxed, like the payment status poll); the rest through [`dispatch`].

use http::request::Parts;
use hyper::body::Incoming;

use super::handlers;
use crate::app::State;
use crate::error::AppError;
use crate::http::read_body;
use crate::http::respond::Response;
use crate::http::route::{Match, Verb};

/// A notification endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /api/me/notifications`
    List,
    /// `GET /api/me/notifications/unread-count[?wait=N&since=K]`
    UnreadCount,
    /// `POST /api/me/notifications/read`
    Read,
    /// `GET /me/notifications`: the page.
    Page,
}

impl Route {
    /// Metric labels, indexed by [`Route::index`].
    pub const NAMES: &'static [&'static str] = &[
        "notifications",
        "notifications_unread",
        "notifications_read",
        "notifications_page",
    ];

    /// A dense number per route, for metrics.
    pub fn index(&self) -> usize {
        match self {
            Route::List => 0,
            Route::UnreadCount => 1,
            Route::Read => 2,
            Route::Page => 3,
        }
    }

    /// Parses a path under `/api/me/notifications` (`segments` of the whole path).
    pub fn parse(verb: Verb, segments: &[&str]) -> Match<Route> {
        match segments {
            ["api", "me", "notifications"] => Match::get(verb, Route::List),
            ["api", "me", "notifications", "unread-count"] => Match::get(verb, Route::UnreadCount),
            ["api", "me", "notifications", "read"] => Match::post(verb, Route::Read),
            ["me", "notifications"] => Match::get(verb, Route::Page),
            _ => Match::NotFound,
        }
    }

    /// Reads that answer 503 rather than wait on a database that stopped answering.
    pub fn is_bounded_read(&self) -> bool {
        matches!(self, Route::List | Route::Page)
    }
}

/// Serves a notification route (the caller boxes this future).
pub async fn dispatch(state: &State, route: Route, parts: &Parts, body: Incoming) -> Result<Response, AppError> {
    match route {
        Route::List => handlers::list(state, parts).await,
        Route::UnreadCount => handlers::unread_count(state, parts).await,
        Route::Read => handlers::mark_read(state, parts, &read_body(state, body).await?).await,
        Route::Page => super::page::page(state, parts).await,
    }
}
