//! The HTTP layer: accept loop (`server`), pure routing (`route`), responses (`respond`),
//! static files (`assets`), client addresses (`client_ip`) and request metrics. [`handle`] wraps
//! every request: request id, size guard, panic guard, dispatch, metrics and the access log.

pub mod access;
pub mod assets;
mod at_once;
pub mod client_ip;
pub mod extract;
mod head;
pub mod idempotent;
pub mod limit;
pub mod list;
pub mod metrics;
pub mod park;
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
use futures_util::future::Either;
use http::Method;
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

pub use respond::X_REQUEST_ID;

/// A request's future when it does not answer at once: boxed per request, so that the future
/// hyper keeps per connection stays the size of a response (it is moved on every request).
type Boxed = std::pin::Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// `X-Content-Type-Options: nosniff`, made once (`from_static` checks its bytes when called).
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");

/// Serves one request. Never fails: every error becomes the contract's JSON error.
///
/// A plain function returning a combinator, not an `async fn`: hyper keeps one future of this
/// type per connection (a parked long-poll's included), so its size is every connection's
/// cost, and an `async fn` would keep the whole request in it for as long as it runs. The
/// head is read here, synchronously: health checks, static files, cached rankings and
/// refusals are answered at once; long-polls copy what they need and let go of the head
/// before they park ([`park`]), so that hyper can reuse its read buffer instead of allocating
/// another one; the rest runs in a box of its own ([`serve`]). Whatever waits is boxed, so
/// that the future hyper keeps per connection (and moves on every request) is the size of a
/// response.
pub fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> impl Future<Output = Result<Response, Infallible>> + Send + use<> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let route = route::parse(&parts.method, parts.uri.path());
    let head = head::Head::read(&parts.headers);
    // Without a forwarding header the client is the peer, trusted proxy or not.
    let ip = if head.forwarded {
        client_ip::client_ip(peer.ip(), &parts.headers, &state.config.trusted_proxies)
    } else {
        peer.ip()
    };
    let limit = match route {
        Route::Media(media::Route::Upload) => state.config.settings.media.max_bytes + media::MULTIPART_SLACK,
        _ => state.config.settings.server.max_body_bytes,
    };
    let answer = if head.content_length > limit as u64 {
        Err(AppError::TooLarge { limit })
    } else {
        match route {
            Route::Healthz => Ok(ops::healthz()),
            Route::Static(name) => {
                let versioned = parts.uri.query().is_some_and(|q| q.starts_with("v="));
                assets::serve(name, &parts.headers, versioned).ok_or(AppError::NotFound)
            }
            // A cached public read is answered at once; a miss (or a bad query) takes the
            // general path, which checks and loads it.
            _ if let Some(response) = at_once::cached(&state, route, &parts, ip, started) => Ok(response),
            Route::PaymentStatus(_) | Route::Notifications(notify::Route::UnreadCount)
                if let Some(target) = park::Target::of(route) =>
            {
                // Copies, so that nothing refers to the head once it is dropped here.
                let done = Done::new(&state, &parts, head.request_id, route, ip, started).owned();
                let poll = park::Poll::read(&state, target, &parts, ip);
                drop((parts, body));
                let parked: Boxed = Box::pin(park::run(state, target, poll, done));
                return Either::Right(parked);
            }
            _ => {
                let general: Boxed = Box::pin(serve(state, parts, body, ip, started));
                return Either::Right(general);
            }
        }
    };
    let done = Done::new(&state, &parts, head.request_id, route, ip, started);
    let response = match answer {
        Ok(response) => response,
        Err(err @ AppError::TooLarge { .. }) => {
            let mut r = match route {
                Route::Notify(channel) => payments::refuse_callback(&state.engine, channel, &err),
                _ => respond::error(&err, done.request_id_str()),
            };
            // The body stays unread: the connection cannot be reused.
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            r
        }
        Err(err) => respond::error(&err, done.request_id_str()),
    };
    Either::Left(std::future::ready(Ok(done.finish(&state, response, parts.uri.path()))))
}

/// What finishing a response needs from its request, owned: the request id, the route's
/// metrics slot, the client address and method for the access log, and when it started.
struct Done {
    request_id: HeaderValue,
    route: usize,
    ip: IpAddr,
    method: Method,
    started: Instant,
}

impl Done {
    /// `sent` is the `X-Request-Id` the client sent.
    fn new(
        state: &State,
        parts: &Parts,
        sent: Option<&HeaderValue>,
        route: Route<'_>,
        ip: IpAddr,
        started: Instant,
    ) -> Done {
        Done {
            request_id: state.request_id(sent),
            route: route.index(),
            ip,
            method: parts.method.clone(),
            started,
        }
    }

    /// With a request id of its own: one the client sent refers to the request head.
    fn owned(self) -> Done {
        let request_id = HeaderValue::from_bytes(self.request_id.as_bytes()).unwrap_or(self.request_id);
        Done { request_id, ..self }
    }

    fn request_id_str(&self) -> &str {
        self.request_id.to_str().unwrap_or_default()
    }

    /// The request id, the metrics and the access log line (`respond` made the other common
    /// headers).
    fn finish(self, state: &Arc<State>, mut response: Response, path: &str) -> Response {
        let finished = Instant::now();
        let elapsed = finished.saturating_duration_since(self.started);
        let status = response.status().as_u16();
        state.metrics.observe(self.route, status, elapsed);
        if let Some(access) = &state.access {
            access.record(
                self.request_id_str(),
                self.ip,
                self.method.as_str(),
                path,
                status,
                elapsed.as_micros() as u64,
                finished,
            );
        }
        respond::set_request_id(&mut response, self.request_id);
        response
    }
}

/// Everything but the answers [`handle`] gives at once and the long-polls: route again (the
/// route borrows the head, which moves in here), guard against panics, dispatch, finish.
async fn serve(
    state: Arc<State>,
    parts: Parts,
    body: Incoming,
    ip: IpAddr,
    started: Instant,
) -> Result<Response, Infallible> {
    let route = route::parse(&parts.method, parts.uri.path());
    let done = Done::new(&state, &parts, parts.headers.get(X_REQUEST_ID), route, ip, started);
    let mut response = match AssertUnwindSafe(bounded_if_reading(route, dispatch(&state, route, &parts, body, ip)))
        .catch_unwind()
        .await
    {
        Ok(Ok(response)) => response,
        Ok(Err(err)) => respond::error(&err, done.request_id_str()),
        Err(panic) => respond::error(&panicked(&*panic), done.request_id_str()),
    };
    // Responses not made by `respond` (the sandbox's emulators) get the header here.
    response
        .headers_mut()
        .entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(NOSNIFF);
    Ok(done.finish(&state, response, parts.uri.path()))
}

/// A handler's panic as the 500 it answers.
fn panicked(panic: &(dyn std::any::Any + Send)) -> AppError {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    AppError::Internal(anyhow::anyhow!("handler panicked: {what}"))
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
        Route::PaymentStatus(no) => Box::pin(payments::status(engine, no, parts.uri.query(), &state.shutdown)).await,
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
        Route::Notifications(route) => Box::pin(notify::dispatch(state, route, parts, body)).await,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future `f` returns, without calling it.
    fn future_size<A, B, C, F: Future>(_: fn(A, B, C) -> F) -> usize {
        size_of::<F>()
    }

    fn future_size4<A, B, C, D, F: Future>(_: fn(A, B, C, D) -> F) -> usize {
        size_of::<F>()
    }

    #[test]
    fn the_per_request_future_hyper_keeps_per_connection_stays_small() {
        let handle = future_size(handle);
        let poll = future_size4(park::run);
        eprintln!("handle {handle} B, parked poll {poll} B");
        // It was 2,840 B (debug build) while the whole request and every route's future were
        // in it: hyper boxes one per connection and moves it into that box on every request.
        assert!(
            handle <= size_of::<Response>() + 32,
            "handle {handle} B for a {} B response",
            size_of::<Response>()
        );
        // What a parked poll holds (its own box), with room for a compiler's layout choices.
        assert!(poll <= 1_100, "a parked poll's future grew to {poll} B");
    }

    #[test]
    fn a_parked_poll_keeps_no_byte_of_the_request_head() {
        // hyper hands header values out as slices of its read buffer: one kept alive keeps
        // the whole buffer. The request id a client sent is copied.
        let head = bytes::Bytes::from_static(b"GET / HTTP/1.1\r\nx-request-id: abc-123\r\n\r\n");
        let sent = HeaderValue::from_maybe_shared(head.slice(30..37)).unwrap();
        assert_eq!(sent.as_bytes(), b"abc-123");
        let done = Done {
            request_id: sent.clone(),
            route: 0,
            ip: IpAddr::from([127, 0, 0, 1]),
            method: Method::GET,
            started: Instant::now(),
        }
        .owned();
        assert_eq!(done.request_id, sent);
        let (kept, sent) = (
            done.request_id.as_bytes().as_ptr_range(),
            sent.as_bytes().as_ptr_range(),
        );
        assert!(
            kept.end <= sent.start || kept.start >= sent.end,
            "the copy does not point into the head"
        );
    }
}
