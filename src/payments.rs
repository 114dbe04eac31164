//! Payment endpoints common to every purpose: the status JSON with its long-poll, the QR
//! images, the pay page, the providers' callbacks (answered in their own formats), and the
//! sandbox (`POST /sandbox/pay/{no}` and the mounted provider emulators).

use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::request::Parts;
use http::{Method, StatusCode};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::error::AppError;
use crate::http::assets;
use crate::http::extract;
use crate::http::respond::{self, Response};
use crate::pay::engine::{Applied, Engine, EngineError, Inbox};
use crate::pay::money::format_yuan;
use crate::pay::provider::{Channel, Notification, NotifyError, RefundState};
use crate::pay::purpose::{self, BackTo};
use crate::pay::qr::Format;
use crate::pay::rfc3339;
use crate::pay::status::{Snapshot, Status};
use crate::ui::{self, Section, Ui};

#[cfg(feature = "sandbox")]
mod sandbox;
#[cfg(feature = "sandbox")]
pub use sandbox::{Sandbox, sandbox_pay, sandbox_provider};

/// Without the `sandbox` feature there are no emulators: no value of this type exists, so
/// `State::sandbox` is always `None` and the sandbox routes answer 404.
#[cfg(not(feature = "sandbox"))]
#[derive(Debug, Clone)]
pub enum Sandbox {}

#[cfg(not(feature = "sandbox"))]
pub async fn sandbox_pay(_: &Engine, sandbox: &Sandbox, _: &str, _: &HeaderMap) -> Result<Response, AppError> {
    match *sandbox {}
}

#[cfg(not(feature = "sandbox"))]
pub async fn sandbox_provider(sandbox: &Sandbox, _: Channel, _: &Method, _: &str, _: &HeaderMap, _: Bytes) -> Response {
    match *sandbox {}
}

/// Longest long-poll, seconds (contract: `?wait=1..=30`).
const MAX_WAIT: u64 = 30;

async fn snapshot(engine: &Engine, order_no: &str) -> Result<Arc<Snapshot>, AppError> {
    crate::store::bounded(engine.status.get(&engine.store, order_no))
        .await?
        .ok_or(AppError::NotFound)
}

/// The `wait` of a status query: absent, or 1..=30 seconds.
pub fn wait_param(query: Option<&str>) -> Result<Option<Duration>, AppError> {
    match extract::query_param(query, "wait")? {
        None => Ok(None),
        Some(text) => match text.parse::<u64>() {
            Ok(n) if (1..=MAX_WAIT).contains(&n) => Ok(Some(Duration::from_secs(n))),
            _ => Err(AppError::invalid(
                "invalid_wait",
                "wait must be a whole number of seconds from 1 to 30",
            )),
        },
    }
}

/// `GET /api/payments/{order_no}[?wait=N]`: from memory; with `wait`, parks until the order
/// leaves `pending` (woken by the event bus) or N seconds pass, or the server shuts down.
pub async fn status(
    engine: &Engine,
    order_no: &str,
    query: Option<&str>,
    shutdown: &watch::Receiver<bool>,
) -> Result<Response, AppError> {
    match wait_param(query)? {
        Some(wait) => status_wait(engine, order_no, wait, shutdown).await,
        None => status_now(engine, order_no).await,
    }
}

/// The status now, without waiting.
pub async fn status_now(engine: &Engine, order_no: &str) -> Result<Response, AppError> {
    let first = snapshot(engine, order_no).await?;
    Ok(respond::json(StatusCode::OK, first.json.clone()))
}

/// The status once the order leaves `pending`, `wait` passes or the server shuts down;
/// at once when it is not pending.
pub async fn status_wait(
    engine: &Engine,
    order_no: &str,
    wait: Duration,
    shutdown: &watch::Receiver<bool>,
) -> Result<Response, AppError> {
    let first = snapshot(engine, order_no).await?;
    if first.status != Status::Pending {
        return Ok(respond::json(StatusCode::OK, first.json.clone()));
    }
    drop(first);
    let deadline = tokio::time::Instant::now() + wait;
    let mut shutdown = shutdown.clone();
    loop {
        // Register before looking again, so a change between the two cannot be missed.
        let notify = engine.status.waiter(order_no);
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let current = snapshot(engine, order_no).await?;
        if current.status != Status::Pending || *shutdown.borrow() || tokio::time::Instant::now() >= deadline {
            return Ok(respond::json(StatusCode::OK, current.json.clone()));
        }
        drop(current);
        tokio::select! {
            () = notified => {}
            () = tokio::time::sleep_until(deadline) => {}
            _ = shutdown.wait_for(|stop| *stop) => {}
        }
    }
}

/// `GET /api/payments/{order_no}/qr.png|qr.svg`: rendered once, then from memory. A
/// purchase whose provider order is still being made has none yet: `409 qr_not_ready`.
pub async fn qr(engine: &Engine, order_no: &str, format: Format) -> Result<Response, AppError> {
    let order = snapshot(engine, order_no).await?;
    if order.code_url.is_empty() {
        return Err(AppError::conflict(
            "qr_not_ready",
            "this order's QR code is not ready yet; retry shortly",
        ));
    }
    let image = engine
        .qr
        .get(order_no, format, &order.code_url)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("the code_url of {order_no} does not fit a QR code")))?;
    let content_type = match format {
        Format::Png => HeaderValue::from_static("image/png"),
        Format::Svg => HeaderValue::from_static("image/svg+xml"),
    };
    let mut response = respond::with_body(StatusCode::OK, content_type, image);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400, immutable"),
    );
    Ok(response)
}

#[derive(Template)]
#[template(path = "pay.html")]
struct PayPage<'a> {
    ui: Ui,
    script: String,
    title: String,
    order_no: &'a str,
    status: &'a str,
    status_label: &'a str,
    amount: String,
    channel: &'a str,
    qr_alt: String,
    scan_hint: &'a str,
    description: &'a str,
    expires_at: String,
    expires_at_ms: i128,
    sandbox: bool,
    late: bool,
    /// False while a purchase's provider order is being made: no QR code to show yet.
    has_qr: bool,
    /// Where the page's buttons lead once it is paid, closed or refunded.
    back: WayBack,
}

/// The pay page's buttons once it is paid, closed or refunded.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WayBack {
    href: String,
    /// Below a paid, refunded or closed payment.
    label: &'static str,
    /// Below a closed one (a donation offers to donate again).
    closed_label: &'static str,
    thanks: &'static str,
}

/// Where the pay page of `order` leads back to, as its purpose says (a purpose unknown here
/// leads home, as a donation does).
async fn way_back(state: &crate::app::State, order: &Snapshot) -> Result<purpose::WayBack, AppError> {
    match state.engine.settings.purposes.get(&order.purpose) {
        Some(purpose) => Ok(crate::store::bounded(purpose.way_back(&state.store, &order.order_no)).await?),
        None => Ok(purpose::WayBack::home()),
    }
}

/// The header section a way back marks current.
fn section_of(to: BackTo) -> Section {
    match to {
        BackTo::Donation => Section::Donate,
        BackTo::Project => Section::Projects,
        BackTo::Order => Section::Mall,
    }
}

/// A way back's buttons and thanks, in the catalog's language.
fn buttons(back: purpose::WayBack, t: &ui::Catalog) -> WayBack {
    let (label, closed_label, thanks) = match back.to {
        BackTo::Donation => (t.pay.back_home, t.pay.donate_again, t.pay.thanks),
        BackTo::Project => (t.pay.back_project, t.pay.back_project, t.pay.thanks_backing),
        BackTo::Order => (t.pay.view_order, t.pay.view_order, t.pay.thanks_order),
    };
    WayBack {
        href: back.href,
        label,
        closed_label,
        thanks,
    }
}

/// `GET /pay/{order_no}`: the pay page in the payer's language; its script keeps
/// `#payment-status` current. An unknown order is the 404 page.
pub async fn pay_page(state: &crate::app::State, parts: &Parts, order_no: &str) -> Result<Response, AppError> {
    let order = match snapshot(&state.engine, order_no).await {
        Ok(order) => order,
        Err(err @ AppError::NotFound) => {
            let ui = Ui::new(state, parts, Section::Donate).await;
            return Ok(ui::error_page(ui, &err));
        }
        Err(other) => return Err(other),
    };
    let back = way_back(state, &order).await?;
    let ui = Ui::new(state, parts, section_of(back.to)).await;
    let t = ui.t;
    let back = buttons(back, t);
    let amount = format_yuan(order.amount_fen);
    let page = PayPage {
        script: assets::url("pay.js"),
        title: ui.fill(t.pay.title, &amount),
        order_no,
        status: order.status.as_str(),
        status_label: match order.status {
            Status::Pending => t.pay.pending,
            Status::Paid => t.pay.paid,
            Status::Closed => t.pay.closed,
            Status::Refunded => t.pay.refunded,
        },
        amount,
        channel: order.channel.as_str(),
        qr_alt: ui.fill(t.pay.qr_alt, ui.channel(order.channel.as_str())),
        scan_hint: match order.channel {
            Channel::Wechat => t.pay.scan_wechat,
            Channel::Alipay => t.pay.scan_alipay,
        },
        description: &order.description,
        expires_at: rfc3339(order.expires_at),
        expires_at_ms: order.expires_at.unix_timestamp_nanos() / 1_000_000,
        sandbox: state.sandbox.is_some(),
        late: order.late,
        has_qr: !order.code_url.is_empty(),
        back,
        ui,
    };
    ui::page(page.ui.lang, StatusCode::OK, &page)
}

/// `POST /notify/wechat` and `POST /notify/alipay`: verify, apply, and acknowledge in the
/// provider's own format only once the effect is committed.
pub async fn notify(engine: &Engine, channel: Channel, headers: &HeaderMap, body: Bytes) -> Response {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let verified = match channel {
        Channel::Wechat => match &engine.providers.wechat {
            Some(client) => client.verify_notification(headers, &body, now),
            None => Err(NotifyError::Malformed("the WeChat Pay channel is not enabled".into())),
        },
        Channel::Alipay => match &engine.providers.alipay {
            Some(client) => client.verify_notification(&body),
            None => Err(NotifyError::Malformed("the Alipay channel is not enabled".into())),
        },
    };
    let notification = match verified {
        Ok(n) => n,
        Err(e) => {
            engine
                .metrics
                .callbacks_refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(channel = channel.as_str(), error = %e, "callback refused");
            return ack(channel, Err(StatusCode::UNAUTHORIZED), "verification failed");
        }
    };
    let kept_headers = kept_headers(headers);
    let outcome = match &notification {
        Notification::Payment { paid, .. } => {
            let inbox = Inbox {
                kind: "payment",
                subject_id: paid.transaction_id.clone(),
                headers: kept_headers,
                body,
            };
            engine
                .apply_payment(channel, paid, Some(&inbox), "callback")
                .await
                .map(|applied| {
                    tracing::info!(order_no = %paid.order_no, ?applied, "payment callback applied");
                    let counter = match applied {
                        Applied::Credited { .. } => &engine.metrics.callbacks_applied,
                        Applied::Duplicate | Applied::AlreadyPaid => &engine.metrics.callbacks_duplicate,
                    };
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                })
        }
        Notification::Refund {
            order_no,
            refund_no,
            state,
        } => {
            let state_name = match state {
                RefundState::Succeeded { .. } => "succeeded",
                RefundState::Processing => "processing",
                RefundState::Stuck { .. } => "stuck",
                RefundState::Failed { .. } => "failed",
            };
            let inbox = Inbox {
                kind: "refund",
                subject_id: format!("{refund_no}:{state_name}"),
                headers: kept_headers,
                body,
            };
            crate::store::bounded(engine.apply_refund_state(
                channel,
                order_no,
                refund_no,
                state,
                Some(&inbox),
                "callback",
            ))
            .await
        }
        Notification::Ignored { order_no, what } => {
            tracing::info!(%order_no, %what, "callback verified; nothing to do");
            Ok(())
        }
    };
    match outcome {
        Ok(()) => ack(channel, Ok(()), ""),
        Err(EngineError::UnknownOrder) => ack(channel, Err(StatusCode::NOT_FOUND), "unknown order"),
        Err(EngineError::Mismatch(why)) => {
            tracing::warn!(channel = channel.as_str(), %why, "callback does not match its order; kept, not applied");
            ack(channel, Err(StatusCode::BAD_REQUEST), "order mismatch")
        }
        Err(e) => {
            tracing::error!(channel = channel.as_str(), error = %e, "callback not applied; the provider will retry");
            ack(
                channel,
                Err(StatusCode::INTERNAL_SERVER_ERROR),
                "temporarily unavailable",
            )
        }
    }
}

/// A callback refused before it could be read (too large, too slow), answered in the
/// provider's failure format like any other refusal.
pub fn refuse_callback(engine: &Engine, channel: Channel, err: &AppError) -> Response {
    engine
        .metrics
        .callbacks_refused
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::warn!(channel = channel.as_str(), error = %err, "callback refused unread");
    ack(channel, Err(err.status()), "the request body was not accepted")
}

/// The provider's own acknowledgement: WeChat 204 / `{"code":"FAIL",…}`; Alipay `success` / `fail`.
fn ack(channel: Channel, outcome: Result<(), StatusCode>, message: &str) -> Response {
    match (channel, outcome) {
        (Channel::Wechat, Ok(())) => {
            let mut r = respond::with_body(
                StatusCode::NO_CONTENT,
                HeaderValue::from_static("application/json"),
                Bytes::new(),
            );
            r.headers_mut().remove(header::CONTENT_TYPE);
            r
        }
        (Channel::Wechat, Err(status)) => {
            let body = serde_json::json!({"code": "FAIL", "message": message}).to_string();
            respond::json(status, body)
        }
        (Channel::Alipay, outcome) => respond::with_body(
            StatusCode::OK,
            HeaderValue::from_static("text/plain; charset=utf-8"),
            Bytes::from_static(if outcome.is_ok() { b"success" } else { b"fail" }),
        ),
    }
}

/// The headers worth keeping with a raw callback (what its signature needs).
fn kept_headers(headers: &HeaderMap) -> serde_json::Value {
    let mut kept = serde_json::Map::new();
    for (name, value) in headers {
        let name = name.as_str();
        if name.starts_with("wechatpay-") || name == "content-type" || name == "request-id" {
            kept.insert(name.to_string(), String::from_utf8_lossy(value.as_bytes()).into());
        }
    }
    serde_json::Value::Object(kept)
}
