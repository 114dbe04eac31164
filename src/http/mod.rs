//! The HTTP layer: accept loop (`server`), pure routing (`route`), responses (`respond`),
//! static files (`assets`), client addresses (`client_ip`) and request metrics. [`handle`] wraps
//! every request: request id, size guard, panic guard, dispatch, metrics and the access log.

pub mod access;
pub mod assets;
pub mod client_ip;
pub mod extract;
pub mod idempotent;
pub mod limit;
pub mod list;
pub mod metrics;
pub mod port_owner;
pub mod respond;
pub mod route;
pub mod server;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use http::header::{self, HeaderValue};
use http::request::Parts;
use hyper::Request;
use hyper::body::Incoming;

use crate::app::State;
use crate::error::AppError;
use crate::pay::provider::Channel;
use crate::{account, admin, community, crowdfunding, donate, mall, media, notify, ops, payments, ui};
use respond::Response;
use route::Route;

/// `X-Request-Id`, as a constant: looking a header up by `&str` parses the name every time.
pub const X_REQUEST_ID: http::header::HeaderName = http::header::HeaderName::from_static("x-request-id");

/// Serves one request. Never fails: every error becomes the contract's JSON error.
pub async fn handle(state: Arc<State>, req: Request<Incoming>, peer: SocketAddr) -> Result<Response, Infallible> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let request_id_value = state.request_id(&parts.headers);
    let request_id = request_id_value.to_str().unwrap_or_default();
    let route = route::parse(&parts.method, parts.uri.path());
    let limit = match route {
        Route::Media(media::Route::Upload) => state.config.settings.media.max_bytes + media::MULTIPART_SLACK,
        _ => state.config.settings.server.max_body_bytes,
    };
    let ip = client_ip::client_ip(peer.ip(), &parts.headers, &state.config.trusted_proxies);

    let mut response = if content_length(&parts) > limit as u64 {
        let err = AppError::TooLarge { limit };
        let mut r = match route {
            Route::Notify(channel) => payments::refuse_callback(&state.engine, channel, &err),
            _ => respond::error(&err, request_id),
        };
        // The body stays unread: the connection cannot be reused.
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        r
    } else {
        match AssertUnwindSafe(bounded_if_reading(route, dispatch(&state, route, &parts, body, ip)))
            .catch_unwind()
            .await
        {
            Ok(Ok(response)) => response,
            Ok(Err(err)) => respond::error(&err, request_id),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                let err = AppError::Internal(anyhow::anyhow!("handler panicked: {what}"));
                respond::error(&err, request_id)
            }
        }
    };

    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_REQUEST_ID, request_id_value.clone());
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    state.metrics.observe(route.index(), status, elapsed);
    if let Some(access) = &state.access {
        access.record(
            request_id,
            ip,
            parts.method.as_str(),
            parts.uri.path(),
            status,
            elapsed.as_micros() as u64,
        );
    }
    Ok(response)
}

/// The one exhaustive match from route to handler. Routes off the cached-read paths are boxed:
/// hyper keeps one future of this size per connection (a parked long-poll included) and
/// moves it on every request, so the cold, large futures (provider calls, transactions,
/// templates) must not set its size.
async fn dispatch(
    state: &State,
    route: Route<'_>,
    parts: &Parts,
    body: Incoming,
    ip: IpAddr,
) -> Result<Response, AppError> {
    let engine = &state.engine;
    match route {
        Route::CreateDonation => state.limits.check(limit::Kind::Create, ip)?,
        // The public reads that can reach the database share the status allowance.
        Route::PaymentStatus(_)
        | Route::Notifications(notify::Route::UnreadCount)
        | Route::Rankings
        | Route::RecentDonations
        | Route::Stats
        | Route::StatsChart => state.limits.check(limit::Kind::Status, ip)?,
        Route::Crowdfunding(route) if route.is_public_read() => state.limits.check(limit::Kind::Status, ip)?,
        Route::Crowdfunding(crowdfunding::Route::Backings(_)) if parts.method == http::Method::POST => {
            state.limits.check(limit::Kind::Create, ip)?
        }
        Route::Mall(route) if route.is_public_read() => state.limits.check(limit::Kind::Status, ip)?,
        Route::Mall(mall::Route::CreateOrder) => state.limits.check(limit::Kind::Create, ip)?,
        _ => {}
    }
    match route {
        Route::Index => Box::pin(donate::index_page(state, parts)).await,
        Route::Healthz => Ok(ops::healthz()),
        Route::Readyz => Box::pin(ops::readyz(&state.store)).await,
        Route::Metrics => Ok(ops::metrics(state)),
        Route::Categories => Box::pin(donate::categories(&state.catalog, &state.store)).await,
        Route::Static(name) => {
            let versioned = parts.uri.query().is_some_and(|q| q.starts_with("v="));
            assets::serve(name, &parts.headers, versioned).ok_or(AppError::NotFound)
        }
        Route::CreateDonation => {
            Box::pin(async {
                let body = read_body(state, body).await?;
                // A stale or broken session must not stop a donation: it is then made unsigned.
                let user = state.sessions.principal(&state.store, parts).await.ok().flatten();
                donate::create::create(engine, &state.catalog, parts, &body, user.map(|u| u.user_id), ip).await
            })
            .await
        }
        Route::Rankings => donate::rankings(&state.rankings, &state.store, parts.uri.query()).await,
        Route::RecentDonations => Box::pin(donate::recent(&state.rankings, &state.store, parts.uri.query())).await,
        Route::Stats => Box::pin(donate::stats(&state.rankings, &state.store)).await,
        Route::StatsChart => Box::pin(donate::chart(&state.rankings, &state.store, parts)).await,
        Route::PayPage(no) => Box::pin(payments::pay_page(state, parts, no)).await,
        Route::SetLanguage(code) => ui::switch_language(code, parts),
        Route::OpenApi => Ok(crate::openapi::serve_document()),
        Route::ApiDocs => Box::pin(crate::openapi::docs_page(state, parts)).await,
        Route::PaymentStatus(no) => payments::status(engine, no, parts.uri.query(), &state.shutdown).await,
        Route::PaymentQr(no, format) => Box::pin(payments::qr(engine, no, format)).await,
        Route::Notify(channel) => {
            Box::pin(async {
                match read_body(state, body).await {
                    Ok(body) => Ok(payments::notify(engine, channel, &parts.headers, body).await),
                    Err(err) => Ok(payments::refuse_callback(engine, channel, &err)),
                }
            })
            .await
        }
        Route::SandboxPay(no) => {
            let sandbox = state.sandbox.as_ref().ok_or(AppError::NotFound)?;
            Box::pin(async {
                read_body(state, body).await?;
                payments::sandbox_pay(engine, sandbox, no, &parts.headers).await
            })
            .await
        }
        Route::SandboxWechat(_) | Route::SandboxAlipay => {
            let sandbox = state.sandbox.as_ref().ok_or(AppError::NotFound)?;
            let (channel, prefix) = match route {
                Route::SandboxWechat(_) => (Channel::Wechat, "/sandbox/wechat"),
                _ => (Channel::Alipay, "/sandbox/alipay"),
            };
            let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            let inner = path_and_query.strip_prefix(prefix).unwrap_or(path_and_query);
            Box::pin(async {
                let body = read_body(state, body).await?;
                Ok(payments::sandbox_provider(sandbox, channel, &parts.method, inner, &parts.headers, body).await)
            })
            .await
        }
        // Modules: cold paths, boxed so they do not grow every connection's future.
        Route::Account(route) => Box::pin(account::dispatch(state, route, parts, body, ip)).await,
        Route::Admin(route) => Box::pin(admin::dispatch(state, route, parts, body, ip)).await,
        Route::Media(route) => Box::pin(media::dispatch(state, route, parts, body, ip)).await,
        Route::Mall(route) => Box::pin(mall::dispatch(state, route, parts, body, ip)).await,
        Route::Community(route) => Box::pin(community::dispatch(state, route, parts, body, ip)).await,
        // The unread-count long-poll parks like a payment status poll: unboxed, its future
        // no larger than that one (tested), so parking it costs no more.
        Route::Notifications(notify::Route::UnreadCount) => notify::unread_count(state, parts).await,
        Route::Notifications(route) => Box::pin(notify::dispatch(state, route, parts, body)).await,
        // A cached project detail is a hot read: served unboxed, without I/O.
        Route::Crowdfunding(crowdfunding::Route::Project(id)) => match crowdfunding::cached_detail(state, id) {
            Some(hit) => Ok(hit),
            // A miss reads the database: bounded, as the other reads are.
            None => {
                let route = crowdfunding::Route::Project(id);
                Box::pin(crate::store::bounded(crowdfunding::dispatch(
                    state, route, parts, body, ip,
                )))
                .await
            }
        },
        Route::Crowdfunding(route) => Box::pin(crowdfunding::dispatch(state, route, parts, body, ip)).await,
        Route::NotFound => Box::pin(ui::not_found(state, parts)).await,
        Route::MethodNotAllowed { allow } => Err(AppError::MethodNotAllowed { allow }),
    }
}

/// Pages and reads answer 503 rather than wait on a database that stopped answering (they
/// touch it on a cache miss); creates, callbacks and status reads bound their own database work.
async fn bounded_if_reading(
    route: Route<'_>,
    work: impl Future<Output = Result<Response, AppError>>,
) -> Result<Response, AppError> {
    match route {
        Route::Index
        | Route::Categories
        | Route::Rankings
        | Route::RecentDonations
        | Route::Stats
        | Route::StatsChart
        | Route::PayPage(_)
        | Route::PaymentQr(..) => crate::store::bounded(work).await,
        Route::Account(route) if route.is_bounded_read() => crate::store::bounded(work).await,
        Route::Admin(route) if route.is_bounded_read() => crate::store::bounded(work).await,
        Route::Media(route) if route.is_bounded_read() => crate::store::bounded(work).await,
        Route::Notifications(route) if route.is_bounded_read() => crate::store::bounded(work).await,
        Route::Crowdfunding(route) if route.is_bounded_read() => crate::store::bounded(work).await,
        Route::Mall(route) if route.is_bounded_read() => crate::store::bounded(work).await,
        Route::Community(route) if route.is_bounded_read() => crate::store::bounded(work).await,
        _ => work.await,
    }
}

/// Reads a request body within `server.max_body_bytes` and `server.body_read_timeout_secs`.
pub async fn read_body(state: &State, body: Incoming) -> Result<bytes::Bytes, AppError> {
    let server = &state.config.settings.server;
    extract::body(
        body,
        server.max_body_bytes,
        Duration::from_secs(server.body_read_timeout_secs),
    )
    .await
}

/// The declared body length; 0 when absent or unreadable (then the body is read with a limit).
fn content_length(parts: &Parts) -> u64 {
    parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
