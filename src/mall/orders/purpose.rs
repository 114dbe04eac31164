//! The `mall_order` purpose: what the payment engine does to an order when its payment
//! moves. Every hook runs in the payment's own transaction, after its conditional UPDATE and
//! with its row locked, so each runs exactly once per transition (a failed one is retried
//! from the engine's outbox and must give the same result then):
//! - paid: `pending_payment → paid`, the coupon consumed (`held → used`), sales raised, the
//!   merchant notified. A payment that lands on an order cancelled or closed before it is
//!   answered `Refund` (the engine refunds it in full, audited) after releasing what the order
//!   still held;
//! - closed (expired, cancelled, or its provider order never made): `pending_payment →
//!   cancelled`, stock and coupon back;
//! - refunded: a full refund ends the order `refunded` (stock back if nothing shipped, sales
//!   lowered) and tells the buyer; a partial one (by an admin) is written in the timeline;
//! - refund failed for good: the order's own refund puts it back where the request found it
//!   (`refunding → paid | shipped`, its refund number cleared so a new request and approval
//!   make a new refund); any failed refund is written in the timeline and told to the buyer.
//!
//! Its buyer goes back from the pay page to the order's own page.
//!
//! Rows are locked in one order everywhere — products, then SKUs (by id), then the coupon
//! copy — the order checkout and product edits use too, so no two transactions deadlock.

use deadpool_postgres::{GenericClient, Transaction};

use super::event;
use crate::notify::{Actor, Kind, Notice, Target, TargetId};
use crate::pay::money::format_yuan;
use crate::pay::purpose::{BackTo, Hook, HookError, Lookup, PaymentRef, Purpose, Verdict, WayBack};
use crate::store::Store;

/// `payments.purpose` of a mall order.
pub const NAME: &str = "mall_order";

/// The purpose `app.rs` registers.
#[derive(Debug, Default)]
pub struct MallOrder;

impl Purpose for MallOrder {
    fn name(&self) -> &'static str {
        NAME
    }

    fn on_paid<'a>(&'a self, tx: &'a Transaction<'_>, payment: &'a PaymentRef) -> Hook<'a, Verdict> {
        Box::pin(paid(tx, payment))
    }

    fn on_closed<'a>(&'a self, tx: &'a Transaction<'_>, payment: &'a PaymentRef) -> Hook<'a, ()> {
        Box::pin(async move {
            let source = if payment.cancelled { "buyer" } else { "expiry" };
            release(tx, &payment.order_no, source, None).await?;
            Ok(())
        })
    }

    fn on_refunded<'a>(&'a self, tx: &'a Transaction<'_>, payment: &'a PaymentRef, amount_fen: i64) -> Hook<'a, ()> {
        Box::pin(refunded(tx, payment, amount_fen))
    }

    fn on_refund_failed<'a>(
        &'a self,
        tx: &'a Transaction<'_>,
        payment: &'a PaymentRef,
        refund_no: &'a str,
        amount_fen: i64,
    ) -> Hook<'a, ()> {
        Box::pin(refund_failed(tx, payment, refund_no, amount_fen))
    }

    /// The buyer's page of the order, known from its number: no read.
    fn way_back<'a>(&'a self, _: &'a Store, order_no: &'a str) -> Lookup<'a, WayBack> {
        let back = WayBack {
            to: BackTo::Order,
            href: format!("/mall/orders/{order_no}"),
        };
        Box::pin(async move { Ok(back) })
    }
}

const PAY: &str = "UPDATE mall_orders SET status = 'paid', paid_at = now(), updated_at = now()
  WHERE order_no = $1 AND status = 'pending_payment' RETURNING merchant_id, coupon_id";
const USE_COPY: &str = "UPDATE mall_user_coupons SET status = 'used', updated_at = now()
  WHERE id = $1 AND status = 'held' AND order_no = $2";

async fn paid(tx: &Transaction<'_>, payment: &PaymentRef) -> Result<Verdict, HookError> {
    let no = payment.order_no.as_str();
    if payment.cancelled && !payment.late {
        // Cancelled by the buyer while the provider still took money: on_closed will not
        // run for a paid payment, so what the order holds comes back here.
        release(tx, no, "buyer", None).await?;
    }
    if payment.cancelled || payment.late {
        return refuse(tx, payment, "the order was cancelled before its payment landed").await;
    }
    let Some(row) = tx.query_opt(&tx.prepare_cached(PAY).await?, &[&no]).await? else {
        return refuse(tx, payment, "the order was no longer awaiting payment").await;
    };
    let (merchant, copy): (i64, Option<i64>) = (row.get(0), row.get(1));
    let products = count_sales(tx, no, 1).await?;
    if let Some(copy) = copy {
        tx.execute(&tx.prepare_cached(USE_COPY).await?, &[&copy, &no]).await?;
    }
    let detail = serde_json::json!({"amount_fen": payment.amount_fen, "channel": payment.channel.as_str(),
                                    "coupon_used": copy});
    event(
        tx,
        no,
        "paid",
        Some("pending_payment"),
        Some("paid"),
        None,
        "payment",
        detail,
    )
    .await?;
    let text = format!("订单 {no} 已付款 ¥{}，请尽快发货", format_yuan(payment.amount_fen));
    notify(tx, merchant, Kind::OrderPaid, no, &text, &format!("order_paid:{no}")).await?;
    crate::mall::publish(tx, &products, false).await?;
    Ok(Verdict::Keep)
}

/// A payment the order cannot honour: written in its timeline, refunded in full by the
/// engine.
async fn refuse(tx: &Transaction<'_>, payment: &PaymentRef, why: &str) -> Result<Verdict, HookError> {
    let detail = serde_json::json!({"amount_fen": payment.amount_fen, "refund": "full", "why": why});
    event(
        tx,
        &payment.order_no,
        "payment_refused",
        None,
        None,
        None,
        "payment",
        detail,
    )
    .await?;
    Ok(Verdict::Refund(format!("商城订单已取消，全额退款 ({why})")))
}

const LOCK_PRODUCTS: &str = "SELECT p.id FROM mall_products p
  WHERE p.id IN (SELECT product_id FROM mall_order_items WHERE order_no = $1) ORDER BY p.id FOR UPDATE OF p";
const PRODUCT_SALES: &str = "UPDATE mall_products p SET sales = greatest(p.sales + $2::bigint * i.units, 0)
   FROM (SELECT product_id, sum(quantity)::bigint AS units FROM mall_order_items WHERE order_no = $1
          GROUP BY product_id) i
  WHERE p.id = i.product_id";
const LOCK_SKUS: &str = "SELECT s.id FROM mall_skus s JOIN mall_order_items i ON i.sku_id = s.id
  WHERE i.order_no = $1 ORDER BY s.id FOR UPDATE OF s";
const SKU_SALES: &str = "UPDATE mall_skus s SET sales = greatest(s.sales + $2::bigint * i.quantity, 0)
   FROM mall_order_items i WHERE i.order_no = $1 AND s.id = i.sku_id";

/// Adds (`sign` 1) or takes back (`sign` -1) the order's units in its products' and SKUs'
/// sales, rows locked products first, then SKUs, each by id; returns the products.
async fn count_sales(tx: &impl GenericClient, order_no: &str, sign: i64) -> Result<Vec<i64>, tokio_postgres::Error> {
    let products: Vec<i64> = tx
        .query(&tx.prepare_cached(LOCK_PRODUCTS).await?, &[&order_no])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    tx.execute(&tx.prepare_cached(PRODUCT_SALES).await?, &[&order_no, &sign])
        .await?;
    tx.query(&tx.prepare_cached(LOCK_SKUS).await?, &[&order_no]).await?;
    tx.execute(&tx.prepare_cached(SKU_SALES).await?, &[&order_no, &sign])
        .await?;
    Ok(products)
}

const CANCEL: &str = "UPDATE mall_orders SET status = 'cancelled', cancel_reason = coalesce(cancel_reason, $2),
        cancelled_at = now(), updated_at = now()
  WHERE order_no = $1 AND status = 'pending_payment' RETURNING coupon_id";
const RETURN_STOCK: &str = "UPDATE mall_skus s SET stock = s.stock + i.quantity, updated_at = now()
   FROM mall_order_items i WHERE i.order_no = $1 AND s.id = i.sku_id RETURNING s.product_id";
const RETURN_COPY: &str = "UPDATE mall_user_coupons SET status = 'unused', order_no = NULL, updated_at = now()
  WHERE id = $1 AND status = 'held' AND order_no = $2";

/// Cancels unpaid order `order_no` (`pending_payment → cancelled`) and returns its stock and
/// coupon, in the caller's transaction; false (and nothing done) when it is not unpaid, so
/// however often it is called, they come back once. `source`: `buyer` or `expiry`.
pub async fn release(
    tx: &impl GenericClient,
    order_no: &str,
    source: &str,
    actor: Option<i64>,
) -> Result<bool, tokio_postgres::Error> {
    let Some(row) = tx
        .query_opt(&tx.prepare_cached(CANCEL).await?, &[&order_no, &source])
        .await?
    else {
        return Ok(false);
    };
    let copy: Option<i64> = row.get(0);
    return_stock(tx, order_no).await?;
    if let Some(copy) = copy {
        tx.execute(&tx.prepare_cached(RETURN_COPY).await?, &[&copy, &order_no])
            .await?;
    }
    let detail = serde_json::json!({"stock_returned": true, "coupon_returned": copy});
    event(
        tx,
        order_no,
        "cancelled",
        Some("pending_payment"),
        Some("cancelled"),
        actor,
        source,
        detail,
    )
    .await?;
    Ok(true)
}

/// Puts the order's units back on its SKUs (locked in id order first) and tells every
/// instance.
async fn return_stock(tx: &impl GenericClient, order_no: &str) -> Result<(), tokio_postgres::Error> {
    tx.query(&tx.prepare_cached(LOCK_SKUS).await?, &[&order_no]).await?;
    let mut products: Vec<i64> = tx
        .query(&tx.prepare_cached(RETURN_STOCK).await?, &[&order_no])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    products.sort_unstable();
    products.dedup();
    crate::mall::publish(tx, &products, false).await
}

const LOCK_ORDER: &str = "SELECT status, buyer_id, shipped_at IS NULL FROM mall_orders WHERE order_no = $1 FOR UPDATE";
const REFUNDED: &str = "UPDATE mall_orders SET status = 'refunded', refunded_at = now(), updated_at = now()
  WHERE order_no = $1 AND status IN ('paid', 'shipped', 'completed', 'refunding')";

async fn refunded(tx: &Transaction<'_>, payment: &PaymentRef, amount_fen: i64) -> Result<(), HookError> {
    let no = payment.order_no.as_str();
    let row = tx
        .query_opt(&tx.prepare_cached(LOCK_ORDER).await?, &[&no])
        .await?
        .ok_or("no mall order for this payment")?;
    let (status, buyer, unshipped): (String, i64, bool) = (row.get(0), row.get(1), row.get(2));
    let full = payment.refunded_fen >= payment.amount_fen;
    let mut detail = serde_json::json!({"amount_fen": amount_fen, "refunded_fen": payment.refunded_fen});
    let ends = full && matches!(status.as_str(), "paid" | "shipped" | "completed" | "refunding");
    if ends {
        tx.execute(&tx.prepare_cached(REFUNDED).await?, &[&no]).await?;
        // Locks products, then SKUs: the same order as every other writer of them.
        let products = count_sales(tx, no, -1).await?;
        if unshipped {
            return_stock(tx, no).await?;
        } else {
            crate::mall::publish(tx, &products, false).await?;
        }
        detail["stock_returned"] = unshipped.into();
        event(
            tx,
            no,
            "refunded",
            Some(&status),
            Some("refunded"),
            None,
            "payment",
            detail,
        )
        .await?;
    } else {
        // A partial refund, or the refund of a payment the order could not honour.
        event(tx, no, "refund_succeeded", None, None, None, "payment", detail).await?;
    }
    let text = format!("订单 {no} 已退款 ¥{}，原路退回", format_yuan(amount_fen));
    let key = format!("refund:{no}:{}", payment.refunded_fen);
    notify(tx, buyer, Kind::Refund, no, &text, &key).await?;
    Ok(())
}

/// Back from `refunding` to where the request found the order, when the refund that failed
/// is the one its approval made.
const REFUND_FAILED: &str = "UPDATE mall_orders SET status = refund_from, refund_no = NULL, updated_at = now()
  WHERE order_no = $1 AND status = 'refunding' AND refund_no = $2 RETURNING status";
const BUYER: &str = "SELECT buyer_id FROM mall_orders WHERE order_no = $1";

async fn refund_failed(
    tx: &Transaction<'_>,
    payment: &PaymentRef,
    refund_no: &str,
    amount_fen: i64,
) -> Result<(), HookError> {
    let no = payment.order_no.as_str();
    let buyer: i64 = tx
        .query_opt(&tx.prepare_cached(BUYER).await?, &[&no])
        .await?
        .ok_or("no mall order for this payment")?
        .get(0);
    let back: Option<String> = tx
        .query_opt(&tx.prepare_cached(REFUND_FAILED).await?, &[&no, &refund_no])
        .await?
        .map(|row| row.get(0));
    let detail = serde_json::json!({"refund_no": refund_no, "amount_fen": amount_fen});
    let from = back.as_ref().map(|_| "refunding");
    event(tx, no, "refund_failed", from, back.as_deref(), None, "payment", detail).await?;
    let text = match &back {
        Some(_) => format!(
            "订单 {no} 的退款 ¥{} 未能完成，款项未退回；订单已恢复，可重新申请退款",
            format_yuan(amount_fen)
        ),
        None => format!(
            "订单 {no} 的退款 ¥{} 未能完成，款项未退回；请联系客服",
            format_yuan(amount_fen)
        ),
    };
    notify(
        tx,
        buyer,
        Kind::Refund,
        no,
        &text,
        &format!("refund_failed:{refund_no}"),
    )
    .await?;
    Ok(())
}

/// Tells `recipient` about order `order_no`, once per `key`.
async fn notify(
    tx: &impl GenericClient,
    recipient: i64,
    kind: Kind,
    order_no: &str,
    text: &str,
    key: &str,
) -> Result<bool, tokio_postgres::Error> {
    let notice = Notice {
        recipient_id: recipient,
        kind,
        actor: Actor::System,
        target: Target {
            kind: "order",
            id: TargetId::Key(order_no),
        },
        text,
        dedupe_key: Some(key),
    };
    crate::notify::notify(tx, &notice).await
}
