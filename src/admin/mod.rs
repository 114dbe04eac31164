//! The admin API (`/api/admin/…`) and the admin pages (`/admin/…`). Every route checks the
//! session first: 401 without one, 403 without the admin role. Every change is written with
//! its audit row (who, what, on which record, before and after) in one transaction.
//!
//! - `categories`, `settings`, `payments` (with `export` and `refund`), `inspect` (callbacks,
//!   reconcile, audit), `users`: the API, each a module of queries returning typed rows plus
//!   its handlers; `explain` the plans of the filtered reads, for the index test.
//! - `pages`: the server-rendered pages over the same queries.

mod categories;
mod dashboard;
mod explain;
mod export;
mod inspect;
pub mod pages;
mod payments;
mod refund;
mod settings;
mod users;

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use deadpool_postgres::GenericClient;
use http::request::Parts;
use http::{Method, StatusCode};
use hyper::body::Incoming;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The request bodies, for the API description.
pub(crate) use categories::{CategoryChange, NewCategory, Reorder};
pub use explain::explain_filtered_reads;
pub use pages::Chrome;
pub(crate) use refund::RefundRequest;
pub(crate) use users::UserChange;

use crate::account::{Principal, Role};
use crate::app::State;
use crate::error::AppError;
use crate::http::extract::{self, BodyKind};
pub(crate) use crate::http::list::{Listing, Paging};
use crate::http::respond::{self, Response};
use crate::http::route::{Match, Verb};

/// The admin behind a request and where it came from, for the audit log.
struct Actor {
    principal: Arc<Principal>,
    ip: String,
}

impl Actor {
    /// The name recorded in the audit log: the username, else the display name.
    fn name(&self) -> &str {
        self.principal
            .username
            .as_deref()
            .unwrap_or(&self.principal.display_name)
    }

    /// This actor as the audit log records it.
    fn audit_actor(&self) -> crate::store::audit::Actor<'_> {
        crate::store::audit::Actor {
            user_id: Some(self.principal.user_id),
            name: self.name(),
            ip: &self.ip,
        }
    }

    /// Writes this actor's audit row for `action` on `target`.
    async fn audit(
        &self,
        client: &impl GenericClient,
        action: &str,
        target: &str,
        before: Option<&serde_json::Value>,
        after: Option<&serde_json::Value>,
    ) -> Result<(), tokio_postgres::Error> {
        crate::store::audit::write(client, self.audit_actor(), action, target, before, after).await
    }
}

/// An admin endpoint: the API or a page, by the path after its prefix (routed within the
/// module once the session is checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// `/api/admin/{path}`
    Api(&'a str),
    /// `/admin` and `/admin/{path}`
    Page(&'a str),
}

impl<'a> Route<'a> {
    /// Metric labels, indexed by [`Route::index`].
    pub const NAMES: &'static [&'static str] = &["admin_api", "admin_page"];

    /// A dense number per route, for metrics.
    pub fn index(&self) -> usize {
        match self {
            Route::Api(_) => 0,
            Route::Page(_) => 1,
        }
    }

    /// Parses `path` (without its leading `/`) under `api/admin/` or `admin`. Methods are
    /// checked after the session, so an anonymous caller learns nothing of the admin's routes.
    pub fn parse(_verb: Verb, path: &'a str) -> Match<Route<'a>> {
        if let Some(api) = path.strip_prefix("api/admin/") {
            return Match::Found(Route::Api(api));
        }
        match path.strip_prefix("admin") {
            Some("") => Match::Found(Route::Page("")),
            Some(page) => page
                .strip_prefix('/')
                .map_or(Match::NotFound, |p| Match::Found(Route::Page(p))),
            None => Match::NotFound,
        }
    }

    /// Reads that answer 503 rather than wait on a database that stopped answering.
    pub fn is_bounded_read(&self) -> bool {
        matches!(self, Route::Page(_))
    }
}

/// Serves an admin route (a cold path: the caller boxes this future).
pub async fn dispatch(
    state: &State,
    route: Route<'_>,
    parts: &Parts,
    body: Incoming,
    ip: IpAddr,
) -> Result<Response, AppError> {
    match route {
        Route::Api(path) => api(state, path, parts, crate::http::read_body(state, body).await?, ip).await,
        Route::Page(path) => page(state, path, parts).await,
    }
}

/// `/api/admin/{path}`.
pub async fn api(state: &State, path: &str, parts: &Parts, body: Bytes, ip: IpAddr) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::Admin).await?;
    let actor = Actor {
        principal,
        ip: ip.to_string(),
    };
    let query = parts.uri.query();
    let segments: Vec<&str> = path.split('/').collect();
    use Verb::{Delete, Get, Patch, Post};
    let verb = Verb::of(&parts.method);
    match (segments.as_slice(), verb) {
        (["categories"], Get) => categories::list(state).await,
        (["categories"], Post) => categories::create(state, &actor, json_body(parts, &body)?).await,
        (["categories"], _) => not_allowed("GET, HEAD, POST"),
        (["categories", "reorder"], Post) => categories::reorder(state, &actor, json_body(parts, &body)?).await,
        (["categories", "reorder"], _) => not_allowed("POST"),
        (["categories", id], Patch) => categories::update(state, &actor, path_id(id)?, json_body(parts, &body)?).await,
        (["categories", id], Delete) => categories::delete(state, &actor, path_id(id)?).await,
        (["categories", _], _) => not_allowed("PATCH, DELETE"),
        (["settings"], Get) => settings::show(state).await,
        (["settings"], Patch) => settings::update(state, &actor, json_body(parts, &body)?).await,
        (["settings"], _) => not_allowed("GET, HEAD, PATCH"),
        (["payments"], Get) => payments::search(state, query).await,
        (["payments.csv"], Get) => export::csv(state, query).await,
        (["payments", no], Get) => payments::detail(state, no).await,
        (["payments", no, "refund"], Post) => refund::refund(state, &actor, no, parts, &body).await,
        (["payments", _, "refund"], _) => not_allowed("POST"),
        (["callbacks"], Get) => inspect::callbacks(state, query).await,
        (["reconcile"], Get) => inspect::reconcile(state, query).await,
        (["audit"], Get) => inspect::audit_log(state, query).await,
        (["users"], Get) => ok_json(&users::find(state, Paging::parse(query, 50, 200)?).await?),
        (
            ["payments"] | ["payments.csv"] | ["payments", _] | ["callbacks"] | ["reconcile"] | ["audit"] | ["users"],
            _,
        ) => not_allowed("GET, HEAD"),
        (["users", id], Patch) => users::update(state, &actor, path_id(id)?, json_body(parts, &body)?).await,
        (["users", _], _) => not_allowed("PATCH"),
        _ => Err(AppError::NotFound),
    }
}

/// `/admin/{path}`: the pages. Without a session the browser is sent to sign in first; a
/// method other than GET answers 401 / 403 / 405 (in that order), never a redirect.
pub async fn page(state: &State, path: &str, parts: &Parts) -> Result<Response, AppError> {
    let reading = parts.method == Method::GET || parts.method == Method::HEAD;
    let principal = match state.sessions.require(&state.store, parts, Role::Admin).await {
        Ok(principal) => principal,
        Err(err @ (AppError::Unauthorized | AppError::Forbidden)) if !reading => return Err(err),
        Err(AppError::Unauthorized) => {
            let next = format!("/admin{}{path}", if path.is_empty() { "" } else { "/" });
            let encoded: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
            return Ok(crate::http::respond::see_other(&format!("/login?next={encoded}")));
        }
        Err(err @ AppError::Forbidden) => {
            let ui = crate::ui::Ui::new(state, parts, crate::ui::Section::Admin).await;
            return Ok(crate::ui::error_page(ui, &err));
        }
        Err(other) => return Err(other),
    };
    if !reading {
        return not_allowed("GET, HEAD");
    }
    Ok(pages::render(state, path, parts, &principal).await)
}

fn not_allowed(allow: &'static str) -> Result<Response, AppError> {
    Err(AppError::MethodNotAllowed { allow })
}

/// A record id in the path: a positive whole number, else 404 (no such record).
fn path_id(text: &str) -> Result<i64, AppError> {
    crate::http::route::path_id(text).ok_or(AppError::NotFound)
}

/// A JSON body (415 for another content type, 400 when it does not parse into `T`).
fn json_body<T: DeserializeOwned>(parts: &Parts, body: &[u8]) -> Result<T, AppError> {
    extract::body_kind(&parts.headers, &[BodyKind::Json])?;
    extract::json(body)
}

/// `value` as a 200 JSON answer.
fn ok_json(value: &impl Serialize) -> Result<Response, AppError> {
    with_status(StatusCode::OK, value)
}

fn with_status(status: StatusCode, value: &impl Serialize) -> Result<Response, AppError> {
    let body = serde_json::to_vec(value).map_err(|e| AppError::Internal(e.into()))?;
    Ok(respond::json(status, body))
}

/// A query parameter that is absent or empty counts as not given.
fn filter_param(query: Option<&str>, name: &str) -> Result<Option<String>, AppError> {
    Ok(extract::query_param(query, name)?.filter(|v| !v.is_empty()))
}
