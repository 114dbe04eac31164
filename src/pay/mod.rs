//! The payment engine and the providers.
//!
//! - `money`: yuan strings ↔ integer fen.
//! - `keys`: RSA keys (PEM / base64), SHA256withRSA sign and verify.
//! - `outbound`: the pooled HTTPS client for provider APIs.
//! - `provider`: protocol-independent requests, answers and notifications.
//! - `providers`: the enabled providers' clients behind one enum.
//! - `wechat`, `alipay`: the two wire protocols (client, notification verification, emulator).
//! - `sandbox`: scripted answers shared by the emulators (`sandbox` feature).
//! - `engine`: settle payments, each transition one audited transaction.
//! - `purpose`: what a payment is for: the `Purpose` trait modules implement, the registry.
//! - `create`: orders for every purpose (provider first, or begin → reserve → submit).
//! - `close`: closing unpaid orders (expired, cancelled by the buyer, never made).
//! - `outbox`: purpose steps in savepoints; failed ones retried from `purpose_outbox`.
//! - `refunds`: queue, submit and settle refunds.
//! - `idempotency`: `Idempotency-Key` records (claim, replay, release, purge).
//! - `status`: in-memory order snapshots and long-poll waiters.
//! - `qr`: QR images, cached.
//! - `reconcile`: the background job for missed callbacks, expiry and refunds.
//! - `retention`: hourly housekeeping (callback bodies past retention, old idempotency keys).

pub mod alipay;
pub mod close;
pub mod create;
pub mod engine;
pub mod idempotency;
pub mod keys;
pub mod money;
pub mod outbound;
pub mod outbox;
pub mod policy;
pub mod provider;
pub mod providers;
pub mod purpose;
pub mod qr;
pub mod reconcile;
pub mod refunds;
pub mod retention;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod status;
pub mod wechat;

use time::{OffsetDateTime, UtcOffset};

/// China Standard Time, the offset both providers use and every answer carries.
pub const CST: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(offset) => offset,
    Err(_) => UtcOffset::UTC,
};

/// RFC 3339 at +08:00, whole seconds: `2026-11-21T22:15:00+08:00`.
pub fn rfc3339(at: OffsetDateTime) -> String {
    let at = at.to_offset(CST).replace_nanosecond(0).unwrap_or(at);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
