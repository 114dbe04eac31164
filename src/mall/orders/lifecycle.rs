//! An order's transitions after checkout: the seller ships (`paid → shipped`, the buyer
//! notified), the buyer confirms (`shipped → completed`, or by itself after
//! `mall.auto_complete_days`), asks for a refund (`paid | shipped → refunding`), the seller
//! refuses (back where it was) or approves (the money goes back through the engine, the
//! stock too if nothing shipped), the buyer cancels while unpaid (through the engine, which
//! closes the payment at the provider first). Each is one conditional UPDATE with its
//! timeline row, in one transaction; a request that finds the order in another state is a
//! `409 invalid_state` and changes nothing.

use std::time::Duration;

use deadpool_postgres::{GenericClient, Transaction};
use http::StatusCode;
use http::request::Parts;
use serde::Deserialize;

use super::{OrderView, event, read, visible};
use crate::account::{Principal, Role};
use crate::app::State;
use crate::error::AppError;
use crate::http::respond::Response;
use crate::mall::{BuyerAction, SellerAction, json_answer, json_body, text};
use crate::notify::{Actor, Kind, Notice, Target, TargetId};
use crate::store::{Store, StoreError};

/// `POST /api/mall/orders/{order_no}/cancel|confirm|refund-request` by the buyer.
pub async fn buyer(
    state: &State,
    parts: &Parts,
    order_no: &str,
    action: BuyerAction,
    body: &[u8],
) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    let order = visible(state, &principal, order_no).await?;
    if order.buyer.id != principal.user_id && principal.role != Role::Admin {
        return Err(AppError::Forbidden);
    }
    match action {
        BuyerAction::Cancel => super::money::cancel(state, &principal, &order).await?,
        BuyerAction::Confirm => transition(state, &principal, &order, Transition::Confirm).await?,
        BuyerAction::RefundRequest => {
            let input: ReasonBody = json_body(parts, body)?;
            let reason = text(
                input.reason.as_deref().unwrap_or(""),
                1,
                200,
                false,
                "invalid_reason",
                "reason",
            )?;
            transition(state, &principal, &order, Transition::RequestRefund(reason)).await?
        }
    }
    answer(state, order_no).await
}

/// `POST /api/merchant/orders/{order_no}/ship|refund` by the seller (or an admin).
pub async fn seller(
    state: &State,
    parts: &Parts,
    order_no: &str,
    action: SellerAction,
    body: &[u8],
) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    let order = visible(state, &principal, order_no).await?;
    if order.merchant.id != principal.user_id && principal.role != Role::Admin {
        return Err(AppError::Forbidden);
    }
    match action {
        SellerAction::Ship => {
            let input: ShipBody = json_body(parts, body)?;
            let carrier = text(&input.carrier, 1, 32, false, "invalid_carrier", "carrier")?;
            let tracking_no = tracking(&input.tracking_no)?;
            transition(state, &principal, &order, Transition::Ship { carrier, tracking_no }).await?
        }
        SellerAction::Refund => {
            let input: DecisionBody = json_body(parts, body)?;
            let reason = match input.reason.as_deref().map(str::trim) {
                None | Some("") => String::new(),
                Some(r) => text(r, 1, 200, false, "invalid_reason", "reason")?,
            };
            if input.approve {
                super::money::approve_refund(state, &principal, &order, &reason).await?
            } else {
                transition(state, &principal, &order, Transition::RefuseRefund(reason)).await?
            }
        }
    }
    answer(state, order_no).await
}

async fn answer(state: &State, order_no: &str) -> Result<Response, AppError> {
    let client = state.store.client().await?;
    let order = read(&client, order_no).await?.ok_or(AppError::NotFound)?;
    json_answer(StatusCode::OK, &order)
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "MallReason")]
pub(crate) struct ReasonBody {
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "MallShip")]
pub(crate) struct ShipBody {
    carrier: String,
    tracking_no: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "MallRefundDecision")]
pub(crate) struct DecisionBody {
    approve: bool,
    #[serde(default)]
    reason: Option<String>,
}

/// A tracking number: 4..=40 letters, digits and dashes.
fn tracking(text: &str) -> Result<String, AppError> {
    let text = text.trim();
    if (4..=40).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        Ok(text.to_string())
    } else {
        Err(AppError::invalid(
            "invalid_tracking_no",
            "tracking_no must be 4 to 40 letters, digits or dashes",
        ))
    }
}

/// A transition that needs no money to move.
enum Transition {
    Ship { carrier: String, tracking_no: String },
    Confirm,
    RequestRefund(String),
    RefuseRefund(String),
}

/// `409 invalid_state` for an order that is not where a transition starts.
pub fn invalid_state(status: &str) -> AppError {
    AppError::conflict(
        "invalid_state",
        format!("the order is {status}; that cannot be done now"),
    )
}

const SHIP: &str = "UPDATE mall_orders SET status = 'shipped', carrier = $2, tracking_no = $3, shipped_at = now(),
        updated_at = now()
  WHERE order_no = $1 AND status = 'paid' RETURNING status";
const CONFIRM: &str = "UPDATE mall_orders SET status = 'completed', completed_at = now(), updated_at = now()
  WHERE order_no = $1 AND status = 'shipped' RETURNING status";
const REQUEST_REFUND: &str = "UPDATE mall_orders SET status = 'refunding', refund_from = status, refund_reason = $2,
        updated_at = now()
  WHERE order_no = $1 AND status IN ('paid', 'shipped') RETURNING refund_from";
const REFUSE_REFUND: &str = "UPDATE mall_orders SET status = refund_from, updated_at = now()
  WHERE order_no = $1 AND status = 'refunding' AND refund_no IS NULL RETURNING status";

async fn transition(state: &State, principal: &Principal, order: &OrderView, step: Transition) -> Result<(), AppError> {
    let no = order.order_no.as_str();
    let actor = Some(principal.user_id);
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let moved = match &step {
        Transition::Ship { carrier, tracking_no } => tx.query_opt(SHIP, &[&no, carrier, tracking_no]).await,
        Transition::Confirm => tx.query_opt(CONFIRM, &[&no]).await,
        Transition::RequestRefund(reason) => tx.query_opt(REQUEST_REFUND, &[&no, reason]).await,
        Transition::RefuseRefund(_) => tx.query_opt(REFUSE_REFUND, &[&no]).await,
    }
    .map_err(StoreError::from)?;
    let Some(row) = moved else {
        let now = current_status(&tx, no).await?;
        return Err(invalid_state(&now));
    };
    let (kind, from, to, source, detail) = match &step {
        Transition::Ship { carrier, tracking_no } => (
            "shipped",
            "paid".to_string(),
            "shipped".to_string(),
            "seller",
            serde_json::json!({"carrier": carrier, "tracking_no": tracking_no}),
        ),
        Transition::Confirm => (
            "completed",
            "shipped".into(),
            "completed".into(),
            "buyer",
            serde_json::json!({}),
        ),
        Transition::RequestRefund(reason) => (
            "refund_requested",
            row.get::<_, String>(0),
            "refunding".into(),
            "buyer",
            serde_json::json!({"reason": reason}),
        ),
        Transition::RefuseRefund(reason) => (
            "refund_refused",
            "refunding".into(),
            row.get::<_, String>(0),
            "seller",
            serde_json::json!({"reason": reason}),
        ),
    };
    let source = if principal.role == Role::Admin && !is_party(principal, order) {
        "admin"
    } else {
        source
    };
    event(&tx, no, kind, Some(&from), Some(&to), actor, source, detail)
        .await
        .map_err(StoreError::from)?;
    if let Transition::Ship { carrier, tracking_no } = &step {
        let text = format!("订单 {no} 已发货：{carrier} {tracking_no}");
        crate::notify::notify(
            &tx,
            &Notice {
                recipient_id: order.buyer.id,
                kind: Kind::OrderShipped,
                actor: Actor::User(principal.user_id),
                target: Target {
                    kind: "order",
                    id: TargetId::Key(no),
                },
                text: &text,
                dedupe_key: Some(&format!("order_shipped:{no}")),
            },
        )
        .await
        .map_err(StoreError::from)?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

fn is_party(principal: &Principal, order: &OrderView) -> bool {
    principal.user_id == order.buyer.id || principal.user_id == order.merchant.id
}

/// The order's status now (for the 409's message).
pub async fn current_status(client: &impl GenericClient, order_no: &str) -> Result<String, AppError> {
    Ok(client
        .query_opt("SELECT status FROM mall_orders WHERE order_no = $1", &[&order_no])
        .await
        .map_err(StoreError::from)?
        .ok_or(AppError::NotFound)?
        .get(0))
}

const COMPLETE_DUE: &str = "WITH due AS (
        SELECT order_no FROM mall_orders
         WHERE status = 'shipped' AND shipped_at <= now() - make_interval(days => $1)
         ORDER BY shipped_at LIMIT 200 FOR UPDATE SKIP LOCKED),
     done AS (
        UPDATE mall_orders o SET status = 'completed', completed_at = now(), updated_at = now()
          FROM due WHERE o.order_no = due.order_no AND o.status = 'shipped'
        RETURNING o.order_no)
     INSERT INTO mall_order_events (order_no, kind, from_status, to_status, source, detail)
     SELECT order_no, 'completed', 'shipped', 'completed', 'system', json_build_object('after_days', $1)
       FROM done";

/// Completes the shipped orders older than `days`, 200 at a time (instances share the work);
/// returns how many.
pub async fn complete_due(store: &Store, days: u32) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        // A background job's connection: not counted in `Store::checkouts`.
        let mut client = store.job_client().await?;
        let tx: Transaction<'_> = client.transaction().await?;
        let days = i32::try_from(days).unwrap_or(i32::MAX);
        let n = tx.execute(COMPLETE_DUE, &[&days]).await?;
        tx.commit().await?;
        total += n;
        if n < 200 {
            return Ok(total);
        }
    }
}

/// Runs [`complete_due`] every minute until shutdown.
pub async fn auto_complete(store: Store, days: u32, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        match complete_due(&store, days).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(orders = n, "completed shipped orders after mall.auto_complete_days"),
            Err(e) => tracing::warn!(error = %e, "cannot complete shipped orders now; retrying in a minute"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_numbers_are_plain() {
        assert_eq!(tracking(" SF1234567890 ").unwrap(), "SF1234567890");
        for bad in ["", "12", "SF 123", "<script>", &"1".repeat(41)] {
            assert_eq!(tracking(bad).unwrap_err().code(), "invalid_tracking_no", "{bad:?}");
        }
    }
}
