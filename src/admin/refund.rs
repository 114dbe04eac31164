//! `POST /api/admin/payments/{order_no}/refund`: a refund through the engine (which never
//! lets refunds exceed the payment), audited in the refund's own transaction, once per
//! `Idempotency-Key`.

use http::StatusCode;
use http::request::Parts;
use serde::Deserialize;

use super::payments::{REFUND_COLUMNS, load, refund_from_row};
use super::{Actor, with_status};
use crate::app::State;
use crate::error::AppError;
use crate::http::idempotent;
use crate::http::respond::Response;
use crate::pay::engine::EngineError;
use crate::pay::money::parse_yuan;
use crate::pay::refunds::NewRefund;
use crate::store::StoreError;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefundRequest {
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]{1,2})?$"))]
    amount: String,
    #[schemars(length(max = 80))]
    reason: String,
}

impl RefundRequest {
    /// The amount in fen (above 0) and the trimmed reason (1..=80 characters, as WeChat
    /// takes at most 80).
    fn checked(&self) -> Result<(i64, &str), AppError> {
        let amount_fen = parse_yuan(&self.amount).ok().filter(|fen| *fen > 0).ok_or_else(|| {
            AppError::invalid(
                "invalid_amount",
                "amount must be a yuan string above 0, such as \"12.34\"",
            )
        })?;
        let reason = self.reason.trim();
        if !(1..=80).contains(&reason.chars().count()) || reason.chars().any(char::is_control) {
            return Err(AppError::invalid(
                "invalid_reason",
                "reason must be 1 to 80 characters without control characters",
            ));
        }
        Ok((amount_fen, reason))
    }
}

/// `POST /api/admin/payments/{order_no}/refund` `{"amount": "12.34", "reason": "…"}`
/// (contract: "Accounts and admin"): 201 with the refund (`processing` until the provider
/// confirms, `succeeded`, or `failed`) and the payment as it stands. With an
/// `Idempotency-Key` (per admin and order), one refund per key, its answer replayed.
pub async fn refund(
    state: &State,
    actor: &Actor,
    order_no: &str,
    parts: &Parts,
    body: &[u8],
) -> Result<Response, AppError> {
    let caller = format!("u:{}", actor.principal.user_id);
    let lock = state.engine.idempotency_lock();
    idempotent::run(
        &state.engine.keys,
        &state.store,
        parts,
        body,
        &caller,
        lock,
        |refund_no| refund_once(state, actor, order_no, parts, body, refund_no),
    )
    .await
}

/// Queues and submits one refund as `refund_no` (an idempotent request's number, or new).
/// A refund already queued under `refund_no` (its request died before its answer was
/// kept) is answered as it stands.
async fn refund_once(
    state: &State,
    actor: &Actor,
    order_no: &str,
    parts: &Parts,
    body: &[u8],
    refund_no: Option<String>,
) -> Result<Response, AppError> {
    let input: RefundRequest = super::json_body(parts, body)?;
    let (amount_fen, reason) = input.checked()?;
    let before = {
        let client = state.store.client().await?;
        load(&client, order_no).await?.ok_or(AppError::NotFound)?
    };
    let made_before = refund_no
        .as_deref()
        .is_some_and(|no| before.refunds.iter().any(|r| r.refund_no == no));
    if !made_before {
        // The engine decides under the order's row lock; these checks only name the reason.
        if !matches!(before.payment.status.as_str(), "paid" | "refunded") {
            return Err(AppError::conflict(
                "payment_not_paid",
                format!(
                    "the payment is {}; only a paid payment can be refunded",
                    before.payment.status
                ),
            ));
        }
        if amount_fen > before.refundable_fen {
            return Err(AppError::invalid(
                "refund_exceeds_remaining",
                format!("only {} can still be refunded", before.refundable),
            ));
        }
    }
    let requested_by = format!("admin:{}", actor.name());
    let refund = NewRefund {
        order_no,
        amount_fen,
        reason,
        requested_by: &requested_by,
        refund_no: refund_no.as_deref(),
    };
    let refund_no = state
        .engine
        .refund(refund, Some(actor.audit_actor()))
        .await
        .map_err(|e| match e {
            EngineError::UnknownOrder => AppError::NotFound,
            EngineError::RefundRefused(message) => AppError::invalid("refund_exceeds_remaining", message),
            EngineError::Store(s) => s.into(),
            other => AppError::Internal(other.into()),
        })?;
    // The audit row went in with the refund; this reads what it became for the answer.
    let client = state.store.client().await?;
    let refund = client
        .query_one(
            &format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE refund_no = $1"),
            &[&refund_no],
        )
        .await
        .map_err(StoreError::from)?;
    let refund = refund_from_row(&refund);
    let after = load(&client, order_no).await?.ok_or(AppError::NotFound)?;
    with_status(
        StatusCode::CREATED,
        &serde_json::json!({ "refund": refund, "payment": after.payment, "refundable": after.refundable,
                             "refundable_fen": after.refundable_fen }),
    )
}
