//! Long-polls parked at hyper's own cost: `GET /api/payments/{no}?wait=` and
//! `GET /api/me/notifications/unread-count?wait=`.
//!
//! hyper parses a request head into slices of its connection's read buffer (the path, the
//! header values). While anything of that head is alive, hyper cannot reuse the buffer: its
//! probe for the client hanging up, which runs while the request is in flight, allocates a new
//! one. So a poll that parked holding its request (or a `&str` into it) kept two read buffers,
//! the request's header map and the whole request in its future. Here a poll copies what it
//! needs out of the head — the order number or the session token's hash, the parameters, and
//! for the log the request id and method — before [`super::handle`] drops the head, and the
//! future that parks holds only those copies.

use std::convert::Infallible;
use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use http::request::Parts;

use super::respond::{self, Response};
use super::route::Route;
use super::{Done, limit};
use crate::app::State;
use crate::error::AppError;
use crate::notify::{self, UnreadQuery};
use crate::payments;

/// An order number held inline (order numbers are at most 32 bytes, [`super::route::is_order_no`]).
#[derive(Debug, Clone, Copy)]
pub struct OrderNo {
    len: u8,
    bytes: [u8; 32],
}

impl OrderNo {
    /// `None` when `no` is longer than 32 bytes (the router lets no such one through).
    pub fn new(no: &str) -> Option<OrderNo> {
        let mut bytes = [0u8; 32];
        bytes.get_mut(..no.len())?.copy_from_slice(no.as_bytes());
        Some(OrderNo {
            len: no.len() as u8,
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

/// Which long-poll a request is.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// `GET /api/payments/{no}[?wait=N]`
    Status(OrderNo),
    /// `GET /api/me/notifications/unread-count[?wait=N&since=K]`
    Unread,
}

impl Target {
    /// The long-poll `route` is, if it is one.
    pub fn of(route: Route<'_>) -> Option<Target> {
        match route {
            Route::PaymentStatus(no) => OrderNo::new(no).map(Target::Status),
            Route::Notifications(notify::Route::UnreadCount) => Some(Target::Unread),
            _ => None,
        }
    }

    /// The path for the access log, rebuilt from the copy (without the query string, as for
    /// every request).
    fn path(self) -> String {
        match self {
            Target::Status(no) => format!("/api/payments/{}", no.as_str()),
            Target::Unread => "/api/me/notifications/unread-count".to_string(),
        }
    }
}

/// A long-poll as read from its request head.
#[derive(Debug)]
pub enum Poll {
    /// `GET /api/payments/{no}[?wait=N]`
    Status { no: OrderNo, wait: Option<Duration> },
    /// `GET /api/me/notifications/unread-count[?wait=N&since=K]`
    Unread(UnreadQuery),
    /// Refused before it could park: the rate limit, a bad `wait`, no session token.
    Refused(AppError),
}

impl Poll {
    /// Reads `target`'s parameters from `parts`, after the status reads' rate limit.
    pub fn read(state: &State, target: Target, parts: &Parts, ip: IpAddr) -> Poll {
        if let Err(err) = state.limits.check(limit::Kind::Status, ip) {
            return Poll::Refused(err);
        }
        let read = match target {
            Target::Status(no) => payments::wait_param(parts.uri.query()).map(|wait| Poll::Status { no, wait }),
            Target::Unread => UnreadQuery::parse(parts).map(Poll::Unread),
        };
        read.unwrap_or_else(Poll::Refused)
    }
}

/// Answers `poll`, parking while it waits; then the common headers, metrics and access log.
/// A combinator over [`answer`]: nothing else is kept while it waits.
pub(super) fn run(
    state: Arc<State>,
    target: Target,
    poll: Poll,
    done: Done,
) -> impl Future<Output = Result<Response, Infallible>> + Send + use<> {
    AssertUnwindSafe(answer(Arc::clone(&state), poll))
        .catch_unwind()
        .map(move |outcome| {
            let response = match outcome {
                Ok(Ok(response)) => response,
                Ok(Err(err)) => respond::error(&err, done.request_id_str()),
                Err(panic) => respond::error(&super::panicked(&*panic), done.request_id_str()),
            };
            Ok(done.finish(&state, response, &target.path()))
        })
}

/// The answer to `poll`.
async fn answer(state: Arc<State>, poll: Poll) -> Result<Response, AppError> {
    match poll {
        Poll::Status { no, wait: Some(wait) } => {
            payments::status_wait(&state.engine, no.as_str(), wait, &state.shutdown).await
        }
        Poll::Status { no, wait: None } => payments::status_now(&state.engine, no.as_str()).await,
        Poll::Unread(query) => notify::unread_count(&state, query).await,
        Poll::Refused(err) => Err(err),
    }
}
