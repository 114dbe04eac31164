//! The media module's routes: `POST /api/images`, `GET /media/{id}`, `GET /media/{id}/thumb`.

use std::net::IpAddr;

use http::request::Parts;
use hyper::body::Incoming;

use super::{handlers, is_image_id};
use crate::app::State;
use crate::error::AppError;
use crate::http::respond::Response;
use crate::http::route::{Match, Verb};

/// A media endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// `POST /api/images`
    Upload,
    /// `GET /media/{id}`
    Image(&'a str),
    /// `GET /media/{id}/thumb`
    Thumb(&'a str),
}

impl<'a> Route<'a> {
    /// Metric labels, indexed by [`Route::index`].
    pub const NAMES: &'static [&'static str] = &["image_upload", "image", "image_thumb"];

    /// A dense number per route, for metrics.
    pub fn index(&self) -> usize {
        match self {
            Route::Upload => 0,
            Route::Image(_) => 1,
            Route::Thumb(_) => 2,
        }
    }

    /// Parses a path under the module's prefixes (`segments` of the whole path).
    pub fn parse(verb: Verb, segments: &[&'a str]) -> Match<Route<'a>> {
        match segments {
            ["api", "images"] => Match::post(verb, Route::Upload),
            ["media", id] if is_image_id(id) => Match::get(verb, Route::Image(id)),
            ["media", id, "thumb"] if is_image_id(id) => Match::get(verb, Route::Thumb(id)),
            _ => Match::NotFound,
        }
    }

    /// Reads that answer 503 rather than wait on a database that stopped answering.
    pub fn is_bounded_read(&self) -> bool {
        matches!(self, Route::Image(_) | Route::Thumb(_))
    }
}

/// Serves a media route (the caller boxes this future).
pub async fn dispatch(
    state: &State,
    route: Route<'_>,
    parts: &Parts,
    body: Incoming,
    ip: IpAddr,
) -> Result<Response, AppError> {
    match route {
        Route::Upload => handlers::upload(state, parts, body, ip).await,
        Route::Image(id) => handlers::serve(state, parts, id, false).await,
        Route::Thumb(id) => handlers::serve(state, parts, id, true).await,
    }
}
