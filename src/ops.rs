//! Operations endpoints: `/healthz` (the process serves), `/readyz` (the database answers)
//! and `/metrics` (Prometheus text, names prefixed `zhifu_`), and the figures an operator
//! alerts on ([`Attention`]), read from the database every minute.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http::header::HeaderValue;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

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

/// What needs an operator, as every instance last read it from the database (each reads it
/// every minute, so every instance's `/metrics` says the same). `-1` until the first read.
#[derive(Debug)]
pub struct Attention {
    /// Pending orders the reconcile job stopped asking about: the provider's answer
    /// contradicts them.
    pub flagged_orders: AtomicI64,
    /// Refunds that failed in the last 7 days (the money did not go back).
    pub refunds_failed: AtomicI64,
    /// Refunds still processing an hour after they were asked for.
    pub refunds_stuck: AtomicI64,
    /// Orders still pending 10 minutes past their expiry (reconcile is not keeping up).
    pub payments_overdue: AtomicI64,
    /// Purpose steps (a module's side of a payment) waiting in the outbox for over 10
    /// minutes: the payment stands, the module's effect does not yet.
    pub purpose_steps_stuck: AtomicI64,
}

impl Default for Attention {
    fn default() -> Self {
        Attention {
            flagged_orders: AtomicI64::new(-1),
            refunds_failed: AtomicI64::new(-1),
            refunds_stuck: AtomicI64::new(-1),
            payments_overdue: AtomicI64::new(-1),
            purpose_steps_stuck: AtomicI64::new(-1),
        }
    }
}

const ATTENTION_SQL: &str = "SELECT
    (SELECT count(*) FROM payments WHERE status = 'pending' AND reconcile_issue IS NOT NULL),
    (SELECT count(*) FROM refunds WHERE status = 'failed' AND updated_at > now() - interval '7 days'),
    (SELECT count(*) FROM refunds WHERE status = 'processing' AND created_at < now() - interval '1 hour'),
    (SELECT count(*) FROM payments
      WHERE status = 'pending' AND expires_at < now() - interval '10 minutes' AND reconcile_issue IS NULL),
    (SELECT count(*) FROM purpose_outbox WHERE done_at IS NULL AND created_at < now() - interval '10 minutes')";

impl Attention {
    /// Reads the figures once.
    pub async fn refresh(&self, store: &Store) -> Result<(), crate::store::StoreError> {
        let client = store.job_client().await?;
        let row = client.query_one(ATTENTION_SQL, &[]).await?;
        for (i, gauge) in [
            &self.flagged_orders,
            &self.refunds_failed,
            &self.refunds_stuck,
            &self.payments_overdue,
            &self.purpose_steps_stuck,
        ]
        .into_iter()
        .enumerate()
        {
            gauge.store(row.get(i), Ordering::Relaxed);
        }
        Ok(())
    }

    /// Refreshes the figures every minute until shutdown.
    pub async fn watch(state: Arc<State>) {
        let mut shutdown = state.shutdown.clone();
        loop {
            if let Err(e) = state.attention.refresh(&state.store).await {
                tracing::warn!(error = %e, "cannot read the figures operators alert on; retrying in a minute");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        }
    }
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
    let attention = &state.attention;
    for (name, help, value) in [
        (
            "zhifu_payments_flagged",
            "Pending orders whose provider answer contradicts them, waiting for an operator (-1: not read yet).",
            &attention.flagged_orders,
        ),
        (
            "zhifu_refunds_failed_7d",
            "Refunds that failed in the last 7 days: the money did not go back (-1: not read yet).",
            &attention.refunds_failed,
        ),
        (
            "zhifu_refunds_stuck",
            "Refunds still processing an hour after they were asked for (-1: not read yet).",
            &attention.refunds_stuck,
        ),
        (
            "zhifu_payments_overdue",
            "Orders still pending 10 minutes past expiry: reconcile is not keeping up (-1: not read yet).",
            &attention.payments_overdue,
        ),
        (
            "zhifu_purpose_steps_stuck",
            "Purpose steps (a module's side of a payment) waiting in the outbox for over 10 minutes (-1: not read yet).",
            &attention.purpose_steps_stuck,
        ),
    ] {
        gauge(&mut out, name, help, value.load(Ordering::Relaxed));
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
