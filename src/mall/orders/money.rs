//! The buyer's and the seller's transitions that move money, through the payment engine:
//! a cancel of an unpaid order (closed at the provider first, within its rules; the stock
//! and coupon come back in the engine's close, `purpose::release`) and an approved refund
//! request (the money back through the provider under a refund number kept on the order, so
//! an approval sent twice refunds once; the order ends `refunded` when the provider confirms,
//! in `purpose`).

use super::OrderView;
use super::event;
use super::lifecycle::{current_status, invalid_state};
use crate::account::Principal;
use crate::app::State;
use crate::error::AppError;
use crate::pay::close::Cancelled;
use crate::pay::refunds::NewRefund;
use crate::store::StoreError;

/// Writes who asked for the cancel, once, while the order is unpaid; then answers whether it
/// is unpaid.
const CANCEL_ASKED: &str = "WITH o AS (SELECT order_no, status, cancel_reason FROM mall_orders WHERE order_no = $1),
     asked AS (
        INSERT INTO mall_order_events (order_no, kind, from_status, actor_id, source)
        SELECT order_no, 'cancel_requested', status, $2, 'buyer' FROM o
         WHERE status = 'pending_payment' AND cancel_reason IS NULL)
     SELECT status = 'pending_payment' FROM o";
/// The provider's rules put the close off: the order shows it is being cancelled.
const CANCELLING: &str = "UPDATE mall_orders SET cancel_reason = 'buyer', updated_at = now()
  WHERE order_no = $1 AND status = 'pending_payment' AND cancel_reason IS NULL";

/// The buyer cancels unpaid `order`: the engine closes its payment at the provider (now, or
/// once the provider allows it) and here, where `on_closed` returns the stock and the
/// coupon, once. A payment landing meanwhile is refunded in full. Asking again while the
/// close waits is harmless.
pub async fn cancel(state: &State, principal: &Principal, order: &OrderView) -> Result<(), AppError> {
    let no = order.order_no.as_str();
    let client = state.store.client().await?;
    let unpaid: bool = client
        .query_opt(CANCEL_ASKED, &[&no, &principal.user_id])
        .await
        .map_err(StoreError::from)?
        .is_some_and(|row| row.get(0));
    if !unpaid {
        return Err(invalid_state(&current_status(&client, no).await?));
    }
    drop(client);
    match state.engine.cancel(no).await? {
        Cancelled::Closed | Cancelled::AlreadyClosed | Cancelled::Paid { refunding: true } => Ok(()),
        Cancelled::Closing { .. } => {
            let client = state.store.client().await?;
            client.execute(CANCELLING, &[&no]).await.map_err(StoreError::from)?;
            Ok(())
        }
        Cancelled::Paid { refunding: false } => Err(invalid_state("paid")),
    }
}

/// Gives the request its refund number, once: `$2` a new number.
const APPROVE: &str = "UPDATE mall_orders SET refund_no = $2, updated_at = now()
  WHERE order_no = $1 AND status = 'refunding' AND refund_no IS NULL RETURNING refund_from";
const APPROVED: &str = "SELECT o.status, o.refund_no, p.amount_fen - p.refunded_fen
   FROM mall_orders o JOIN payments p USING (order_no) WHERE o.order_no = $1";

/// The seller approves `order`'s refund request: the refund number is kept on the order
/// (with its timeline row), then the engine refunds what is left of the payment under it.
/// Approving again (a retry, or after a crash between the two) submits the same refund.
pub async fn approve_refund(
    state: &State,
    principal: &Principal,
    order: &OrderView,
    reason: &str,
) -> Result<(), AppError> {
    let no = order.order_no.as_str();
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let fresh = uuid::Uuid::now_v7().simple().to_string();
    if let Some(row) = tx.query_opt(APPROVE, &[&no, &fresh]).await.map_err(StoreError::from)? {
        let from: Option<String> = row.get(0);
        let detail = serde_json::json!({"refund_no": fresh, "reason": reason, "from": from});
        event(
            &tx,
            no,
            "refund_approved",
            Some("refunding"),
            Some("refunding"),
            Some(principal.user_id),
            "seller",
            detail,
        )
        .await
        .map_err(StoreError::from)?;
    }
    let row = tx.query_one(APPROVED, &[&no]).await.map_err(StoreError::from)?;
    tx.commit().await.map_err(StoreError::from)?;
    let (status, refund_no, left): (String, Option<String>, i64) = (row.get(0), row.get(1), row.get(2));
    let Some(refund_no) = refund_no.filter(|_| status == "refunding") else {
        return Err(invalid_state(&status));
    };
    if left <= 0 {
        return Ok(());
    }
    let requested_by = format!("merchant:{}", principal.user_id);
    let refund = NewRefund {
        order_no: no,
        amount_fen: left,
        reason: "商城订单退款（卖家同意）",
        requested_by: &requested_by,
        refund_no: Some(&refund_no),
    };
    state.engine.refund(refund, None).await?;
    Ok(())
}
