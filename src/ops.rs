//! Operations endpoints: `/healthz` (the process serves), `/readyz` (the database answers)
//! and `/metrics` (Prometheus text, names prefixed `zhifu_`).

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http::header::HeaderValue;

use std::sync::atomic::Ordering;

use crate::app::State;
use crate::error::AppError;
use crate::http::metrics::gauge;
use crate::http::respond::{self, Response};
use crate::store::Store;

static OK: &[u8] = b"{\"status\":\"ok\"}";
static READY: &[u8] = b"{\"status\":\"ready\"}";

/// How long `/readyz` waits for the database before answering 503.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /healthz`: 200 while the process serves.
pub fn healthz() -> Response {
    respond::json(StatusCode::OK, Bytes::from_static(OK))
}

/// `GET /readyz`: 200 when the database answers a query, else 503 within [`READY_TIMEOUT`].
pub async fn readyz(store: &Store) -> Result<Response, AppError> {
    store.ping(READY_TIMEOUT).await.map_err(AppError::Unavailable)?;
    Ok(respond::json(StatusCode::OK, Bytes::from_static(READY)))
}

/// `GET /metrics`
pub fn metrics(state: &State) -> Response {
    let (http, store, events) = (&state.metrics, &state.store, &state.events);
    let mut out = String::with_capacity(8192);
    http.render(&mut out);
    let pay = &state.engine.metrics;
    out.push_str("# HELP zhifu_payments_total Payment transitions and callbacks since start, by kind.\n# TYPE zhifu_payments_total counter\n");
    for (kind, counter) in [
        ("created", &pay.created),
        ("paid", &pay.paid),
        ("paid_late", &pay.paid_late),
        ("closed", &pay.closed),
        ("refund_succeeded", &pay.refunds_succeeded),
        ("callback_applied", &pay.callbacks_applied),
        ("callback_duplicate", &pay.callbacks_duplicate),
        ("callback_refused", &pay.callbacks_refused),
        ("provider_error", &pay.provider_errors),
        ("purpose_step_deferred", &pay.purpose_steps_deferred),
        ("purpose_step_retried", &pay.purpose_steps_retried),
    ] {
        out.push_str(&format!(
            "zhifu_payments_total{{kind=\"{kind}\"}} {}\n",
            counter.load(Ordering::Relaxed)
        ));
    }
    gauge(
        &mut out,
        "zhifu_longpoll_orders",
        "Orders with at least one parked long-poll.",
        state.engine.status.waiting_orders(),
    );
    gauge(
        &mut out,
        "zhifu_longpoll_notification_users",
        "Users with at least one parked unread-count long-poll.",
        state.notices.waiting_users(),
    );
    let status = store.pool.status();
    gauge(
        &mut out,
        "zhifu_db_pool_size",
        "Connections in the database pool now.",
        status.size,
    );
    gauge(
        &mut out,
        "zhifu_db_pool_max_size",
        "Most connections the pool may hold.",
        status.max_size,
    );
    gauge(
        &mut out,
        "zhifu_db_pool_available",
        "Idle connections ready for use.",
        status.available,
    );
    gauge(
        &mut out,
        "zhifu_db_pool_waiting",
        "Requests waiting for a connection.",
        status.waiting,
    );
    gauge(
        &mut out,
        "zhifu_events_connected",
        "1 while the LISTEN connection of the event bus is up.",
        u8::from(events.is_connected()),
    );
    if let Some(access) = &state.access {
        out.push_str(&format!(
            "# HELP zhifu_access_log_dropped_total Access log lines dropped because stdout did not keep up.\n# TYPE zhifu_access_log_dropped_total counter\nzhifu_access_log_dropped_total {}\n",
            access.dropped()
        ));
    }
    gauge(
        &mut out,
        "zhifu_last_backup_timestamp_seconds",
        "Unix time of the last completed backup recorded in the database (0: none yet).",
        state.last_backup.unix_seconds(),
    );
    out.push_str("# HELP zhifu_build_info Version of the running binary.\n# TYPE zhifu_build_info gauge\n");
    out.push_str(concat!(
        "zhifu_build_info{version=\"",
        env!("CARGO_PKG_VERSION"),
        "\"} 1\n"
    ));
    respond::with_body(
        StatusCode::OK,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        out,
    )
}
