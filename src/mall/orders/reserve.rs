//! A checkout's reservation: ONE statement ([`RESERVE`]) in the purchase's transaction, sent
//! in the same round trip as `BEGIN` and the payment (`Engine::open`/`start`), and the
//! judgement of what it saw ([`judge`]): the first refusal in the order a buyer is told, which
//! rolls everything back.

use tokio_postgres::types::ToSql;

use super::checkout::{Checkout, Quote, not_applicable, sku_label};
use crate::error::AppError;
use crate::pay::create::Purchase;
use crate::pay::engine::Engine;
use crate::store::StoreError;

/// Why a reservation did not go through.
#[derive(Debug)]
pub enum ReserveError {
    /// A price changed between the quote and the lock: quote again.
    PriceChanged,
    App(AppError),
}

impl From<AppError> for ReserveError {
    fn from(e: AppError) -> Self {
        ReserveError::App(e)
    }
}

impl From<StoreError> for ReserveError {
    fn from(e: StoreError) -> Self {
        ReserveError::App(e.into())
    }
}

impl From<tokio_postgres::Error> for ReserveError {
    fn from(e: tokio_postgres::Error) -> Self {
        ReserveError::App(StoreError::from(e).into())
    }
}

/// The whole reservation in one statement, sent behind the payment's insert in the purchase's
/// transaction. `$1` order_no, `$2` buyer, `$3` SKU ids (sorted), `$4` quantities, `$5` quoted
/// prices, `$6` coupon copy, `$7` address, `$8` merchant, `$9…$11` total, discount and
/// payable, `$12` remark, `$13…$16` the items' products, names, specs and images, `$17` the
/// timeline's detail, `$18`/`$19` the event bus channel and the `mall` event.
///
/// The SKUs are locked in id order (`locked`: two orders never deadlock), and every write
/// waits on what must hold before it: stock is taken only when every line is for sale at
/// its quoted price with stock enough (`checked`), the coupon copy held only then (unused →
/// held, valid now), the order, its items, its first timeline row, the cart lines and the
/// event only when the stock was taken from every SKU, the copy held and the address found
/// (`gate`). It answers what it saw, for `judge` to name the first refusal; a refusal rolls
/// the transaction back, so a partial take or hold never commits.
const RESERVE: &str = "WITH want AS (
        SELECT * FROM unnest($3::bigint[], $4::int[], $5::bigint[]) AS w(id, quantity, price_fen)),
     locked AS MATERIALIZED (
        SELECT id, price_fen, stock, active FROM mall_skus WHERE id = ANY($3) ORDER BY id FOR UPDATE),
     checked AS (
        SELECT count(*) = cardinality($3::bigint[]) AS ok
          FROM want w JOIN locked l ON l.id = w.id
         WHERE l.active AND l.price_fen = w.price_fen AND l.stock >= w.quantity),
     taken AS (
        UPDATE mall_skus s SET stock = s.stock - w.quantity, updated_at = now()
          FROM want w
         WHERE s.id = w.id AND s.stock >= w.quantity AND (SELECT ok FROM checked)
        RETURNING s.id),
     held AS (
        UPDATE mall_user_coupons m SET status = 'held', order_no = $1, updated_at = now()
          FROM mall_coupons c
         WHERE m.id = $6 AND m.user_id = $2 AND m.status = 'unused' AND c.id = m.coupon_id
           AND now() >= c.valid_from AND now() < c.valid_to AND (SELECT ok FROM checked)
        RETURNING m.id),
     address AS (
        SELECT jsonb_build_object('name', name, 'phone', phone, 'region', region, 'detail', detail) AS address
          FROM addresses WHERE id = $7 AND user_id = $2),
     gate AS (
        SELECT (SELECT ok FROM checked)
           AND (SELECT count(*) FROM taken) = cardinality($3::bigint[])
           AND ($6::bigint IS NULL OR EXISTS (SELECT 1 FROM held))
           AND EXISTS (SELECT 1 FROM address) AS go),
     made AS (
        INSERT INTO mall_orders
               (order_no, buyer_id, merchant_id, total_fen, discount_fen, payable_fen, coupon_id, address, remark)
        SELECT $1, $2, $8, $9, $10, $11, $6, a.address, $12 FROM address a WHERE (SELECT go FROM gate)
        RETURNING order_no),
     lines AS (
        INSERT INTO mall_order_items (order_no, sku_id, product_id, name, specs, price_fen, quantity, image)
        SELECT m.order_no, i.sku_id, i.product_id, i.name, i.specs, i.price_fen, i.quantity, i.image
          FROM made m,
               unnest($3::bigint[], $13::bigint[], $14::text[], $15::jsonb[], $5::bigint[], $4::int[], $16::text[])
                 AS i(sku_id, product_id, name, specs, price_fen, quantity, image)
        RETURNING 1),
     step AS (
        INSERT INTO mall_order_events (order_no, kind, from_status, to_status, actor_id, source, detail)
        SELECT order_no, 'created', NULL, 'pending_payment', $2, 'buyer', $17 FROM made
        RETURNING 1),
     uncarted AS (
        DELETE FROM mall_cart_items WHERE user_id = $2 AND sku_id = ANY($3) AND (SELECT go FROM gate)
        RETURNING 1),
     told AS MATERIALIZED (
        SELECT pg_notify($18, $19) FROM gate WHERE go)
SELECT (SELECT array_agg(id ORDER BY id) FROM locked), (SELECT array_agg(price_fen ORDER BY id) FROM locked),
       (SELECT array_agg(stock ORDER BY id) FROM locked), (SELECT array_agg(active ORDER BY id) FROM locked),
       (SELECT count(*) FROM taken), EXISTS (SELECT 1 FROM held), EXISTS (SELECT 1 FROM address),
       (SELECT count(*) FROM made), (SELECT count(*) FROM lines), (SELECT count(*) FROM step),
       (SELECT count(*) FROM told)";

/// What [`RESERVE`] saw and did.
#[derive(Debug)]
struct Reserved {
    /// The SKUs locked, by id: `(id, price_fen, stock, active)`.
    locked: Vec<(i64, i64, i64, bool)>,
    taken: i64,
    held: bool,
    address: bool,
    /// Orders, items, timeline rows and events written.
    written: [i64; 4],
}

impl Reserved {
    fn from_row(row: &tokio_postgres::Row) -> Reserved {
        let ids: Vec<i64> = row.get::<_, Option<Vec<i64>>>(0).unwrap_or_default();
        let prices: Vec<i64> = row.get::<_, Option<Vec<i64>>>(1).unwrap_or_default();
        let stocks: Vec<i64> = row.get::<_, Option<Vec<i64>>>(2).unwrap_or_default();
        let actives: Vec<bool> = row.get::<_, Option<Vec<bool>>>(3).unwrap_or_default();
        let locked = ids
            .into_iter()
            .zip(prices)
            .zip(stocks)
            .zip(actives)
            .map(|(((id, price), stock), active)| (id, price, stock, active))
            .collect();
        Reserved {
            locked,
            taken: row.get(4),
            held: row.get(5),
            address: row.get(6),
            written: [row.get(7), row.get(8), row.get(9), row.get(10)],
        }
    }
}

/// The first refusal among what [`RESERVE`] saw, in the order a buyer is told: a line not
/// for sale, a price changed (quote again), out of stock (naming the SKU), the coupon copy,
/// the address.
fn judge(reserved: &Reserved, checkout: &Checkout, quote: &Quote) -> Result<(), ReserveError> {
    for line in &quote.lines {
        let row = reserved.locked.iter().find(|r| r.0 == line.sku_id);
        let Some(&(_, price_fen, stock, _)) = row.filter(|r| r.3) else {
            return Err(AppError::invalid("invalid_items", format!("SKU {} is not for sale", line.sku_id)).into());
        };
        if price_fen != line.price_fen {
            return Err(ReserveError::PriceChanged);
        }
        if stock < i64::from(line.quantity) {
            return Err(AppError::conflict(
                "out_of_stock",
                format!(
                    "SKU {} — {} — is out of stock: {} left, {} asked",
                    line.sku_id,
                    sku_label(&line.name, &line.specs),
                    stock,
                    line.quantity
                ),
            )
            .into());
        }
    }
    let lines = quote.lines.len() as i64;
    if reserved.taken != lines {
        // Cannot happen under the locks; never commit a partial take.
        return Err(AppError::Internal(anyhow::anyhow!("stock taken from {} of {lines} SKUs", reserved.taken)).into());
    }
    if checkout.coupon_id.is_some() && !reserved.held {
        return Err(not_applicable("it is already held by another order or used").into());
    }
    if !reserved.address {
        return Err(AppError::invalid("invalid_address", "address_id names none of your addresses").into());
    }
    if reserved.written != [1, lines, 1, 1] {
        return Err(AppError::Internal(anyhow::anyhow!("an order written as {:?}", reserved.written)).into());
    }
    Ok(())
}

/// Begins the purchase and reserves what `quote` needs in its transaction, as order
/// `purchase.order_no()` of `buyer`: `BEGIN`, the payment and [`RESERVE`] in one round trip.
/// `Ok(false)`: the order number was taken ([`Engine::taken`]).
pub(super) async fn reserve(
    engine: &Engine,
    purchase: &Purchase,
    buyer: i64,
    checkout: &Checkout,
    quote: &Quote,
) -> Result<bool, ReserveError> {
    let tx = purchase.tx();
    let statement = tx.prepare_cached(RESERVE).await?;
    let lines = &quote.lines;
    let ids: Vec<i64> = lines.iter().map(|l| l.sku_id).collect();
    let quantities: Vec<i32> = lines.iter().map(|l| l.quantity).collect();
    let prices: Vec<i64> = lines.iter().map(|l| l.price_fen).collect();
    let products: Vec<i64> = lines.iter().map(|l| l.product_id).collect();
    let names: Vec<&str> = lines.iter().map(|l| l.name.as_str()).collect();
    let specs: Vec<&serde_json::Value> = lines.iter().map(|l| &l.specs).collect();
    let images: Vec<Option<&str>> = lines.iter().map(|l| l.image.as_deref()).collect();
    let t = &quote.totals;
    let detail = serde_json::json!({"total_fen": t.total_fen, "discount_fen": t.discount_fen,
                                    "payable_fen": t.payable_fen, "coupon_id": checkout.coupon_id});
    let mut stocked = products.clone();
    stocked.sort_unstable();
    stocked.dedup();
    let event = crate::mall::event_payload(&stocked, false);
    let order_no = purchase.order_no();
    let params: [&(dyn ToSql + Sync); 19] = [
        &order_no,
        &buyer,
        &ids,
        &quantities,
        &prices,
        &checkout.coupon_id,
        &checkout.address_id,
        &quote.merchant_id,
        &t.total_fen,
        &t.discount_fen,
        &t.payable_fen,
        &checkout.remark,
        &products,
        &names,
        &specs,
        &images,
        &detail,
        &crate::store::events::CHANNEL,
        &event,
    ];
    let (started, reserved) = tokio::join!(biased; engine.start(purchase), tx.query_one(&statement, &params));
    if !started.map_err(AppError::from)? {
        // The reservation ran in a transaction that is rolled back: what it did is moot.
        return Ok(false);
    }
    judge(&Reserved::from_row(&reserved?), checkout, quote)?;
    Ok(true)
}
