//! Checkout (`POST /api/mall/orders`). A checkout is a purchase with purpose `mall_order`
//! made through the engine's `open`/`start` → reserve → `submit`: a quote is read first
//! (prices from the database, never the client), then in ONE transaction with the payment
//! row, by one statement sent with it (`reserve`), the SKUs are locked in id order (no
//! deadlock between two orders), the prices checked against the quote, the stock taken with a
//! conditional update (`stock >= quantity`), the coupon copy held (`unused → held`), the
//! order, its items (name, specs, price and image copied) and its first timeline row written
//! and the lines taken out of the cart; then the provider order is made. Out of stock names
//! the SKU. What undoes it lives in `purpose` (the engine's hooks).

use deadpool_postgres::GenericClient;
use http::StatusCode;
use http::request::Parts;
use serde::Deserialize;
use tokio_postgres::types::ToSql;

use crate::account::Role;
use crate::app::State;
use crate::error::AppError;
use crate::http::idempotent;
use crate::http::respond::Response;
use crate::mall::json_answer;
use crate::mall::pricing::{self, PriceError, Terms, Totals};
use crate::mall::text;
use crate::pay::create::{Created, Order};
use crate::pay::money::format_yuan;
use crate::pay::provider::Channel;
use crate::store::StoreError;

use super::reserve::{ReserveError, reserve};

/// Most lines of one order.
pub const MAX_ITEMS: usize = 50;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "MallOrderRequest")]
pub(crate) struct OrderBody {
    items: Vec<ItemBody>,
    #[serde(default)]
    address_id: Option<i64>,
    #[serde(default)]
    coupon_id: Option<i64>,
    channel: String,
    #[serde(default)]
    remark: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "MallOrderItem")]
pub(crate) struct ItemBody {
    sku_id: i64,
    quantity: i64,
}

/// A checkout request, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    /// `(sku_id, quantity)`, sorted by SKU id.
    pub items: Vec<(i64, i32)>,
    pub address_id: i64,
    /// A claimed copy of the buyer's.
    pub coupon_id: Option<i64>,
    pub channel: Channel,
    pub remark: String,
}

fn check(body: OrderBody) -> Result<Checkout, AppError> {
    if body.items.is_empty() || body.items.len() > MAX_ITEMS {
        return Err(AppError::invalid("invalid_items", "an order has 1 to 50 items"));
    }
    let mut items: Vec<(i64, i32)> = Vec::with_capacity(body.items.len());
    for item in &body.items {
        if !(1..=crate::mall::cart::MAX_QUANTITY).contains(&item.quantity) {
            return Err(AppError::invalid("invalid_quantity", "quantity must be 1 to 999"));
        }
        if item.sku_id < 1 || items.iter().any(|(id, _)| *id == item.sku_id) {
            return Err(AppError::invalid(
                "invalid_items",
                "each sku_id appears once, as a SKU id",
            ));
        }
        items.push((item.sku_id, item.quantity as i32));
    }
    items.sort_unstable();
    let address_id = body
        .address_id
        .filter(|id| *id > 0)
        .ok_or_else(|| AppError::invalid("invalid_address", "address_id names one of your addresses"))?;
    let channel = Channel::parse(&body.channel)
        .ok_or_else(|| AppError::invalid("invalid_channel", "channel must be wechat or alipay"))?;
    let remark = text(
        body.remark.as_deref().unwrap_or(""),
        0,
        200,
        true,
        "invalid_remark",
        "remark",
    )?;
    Ok(Checkout {
        items,
        address_id,
        coupon_id: body.coupon_id,
        channel,
        remark,
    })
}

/// A SKU as checkout reads it.
#[derive(Debug, Clone)]
pub struct Line {
    pub sku_id: i64,
    pub product_id: i64,
    pub name: String,
    pub specs: serde_json::Value,
    pub image: Option<String>,
    pub price_fen: i64,
    pub quantity: i32,
}

/// What an order will cost, read before its transaction and checked again inside it.
#[derive(Debug, Clone)]
pub struct Quote {
    pub merchant_id: i64,
    pub lines: Vec<Line>,
    pub totals: Totals,
}

const QUOTE_SKUS: &str = "SELECT s.id, s.product_id, p.name, s.specs, p.images[1], s.price_fen, s.active AND p.listed,
        p.merchant_id
   FROM mall_skus s JOIN mall_products p ON p.id = s.product_id WHERE s.id = ANY($1) ORDER BY s.id";

const COPY_TERMS: &str = "SELECT m.user_id, m.status, now() >= c.valid_from AND now() < c.valid_to,
        c.kind, c.value_fen, c.percent, c.threshold_fen
   FROM mall_user_coupons m JOIN mall_coupons c ON c.id = m.coupon_id WHERE m.id = $1";

/// The SKU named in an error: its product and specs.
pub(super) fn sku_label(name: &str, specs: &serde_json::Value) -> String {
    let specs: Vec<String> = specs
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    if specs.is_empty() {
        name.to_string()
    } else {
        format!("{name} ({})", specs.join(", "))
    }
}

pub(super) fn not_applicable(why: &str) -> AppError {
    AppError::invalid(
        "coupon_not_applicable",
        format!("the coupon cannot be used for this order: {why}"),
    )
}

/// Reads what `checkout` would cost `buyer`: the SKUs (for sale, one seller's, not the
/// buyer's own), the coupon copy's terms (the buyer's, unused, valid now) and the totals. The
/// two reads go in one round trip; the SKUs are judged first.
pub async fn quote(client: &impl GenericClient, buyer: i64, checkout: &Checkout) -> Result<Quote, AppError> {
    let ids: Vec<i64> = checkout.items.iter().map(|(id, _)| *id).collect();
    let skus = client.prepare_cached(QUOTE_SKUS).await.map_err(StoreError::from)?;
    let copy = match checkout.coupon_id {
        Some(copy) => Some((copy, client.prepare_cached(COPY_TERMS).await.map_err(StoreError::from)?)),
        None => None,
    };
    let terms = async {
        match &copy {
            Some((id, statement)) => client.query_opt(statement, &[id]).await,
            None => Ok(None),
        }
    };
    let params: [&(dyn ToSql + Sync); 1] = [&ids];
    let (rows, terms) = tokio::try_join!(biased; client.query(&skus, &params), terms).map_err(StoreError::from)?;
    let mut lines = Vec::with_capacity(rows.len());
    let mut merchant_id = None;
    for (sku_id, quantity) in &checkout.items {
        let row = rows
            .iter()
            .find(|r| r.get::<_, i64>(0) == *sku_id)
            .filter(|r| r.get::<_, bool>(6))
            .ok_or_else(|| AppError::invalid("invalid_items", format!("SKU {sku_id} is not for sale")))?;
        let seller: i64 = row.get(7);
        if seller == buyer {
            return Err(AppError::invalid("own_product", "you cannot buy what you sell"));
        }
        if merchant_id.is_some_and(|m| m != seller) {
            return Err(AppError::invalid(
                "mixed_merchants",
                "an order holds one seller's goods; order from each seller apart",
            ));
        }
        merchant_id = Some(seller);
        lines.push(Line {
            sku_id: *sku_id,
            product_id: row.get(1),
            name: row.get(2),
            specs: row.get(3),
            image: row.get(4),
            price_fen: row.get(5),
            quantity: *quantity,
        });
    }
    let coupon = match checkout.coupon_id {
        None => None,
        Some(_) => Some(copy_terms(terms.as_ref(), buyer)?),
    };
    let priced: Vec<(i64, i64)> = lines.iter().map(|l| (l.price_fen, i64::from(l.quantity))).collect();
    let totals = pricing::totals(&priced, coupon.as_ref()).map_err(|e| match e {
        PriceError::BelowThreshold { threshold_fen } => {
            not_applicable(&format!("it applies from a total of {}", format_yuan(threshold_fen)))
        }
        PriceError::TooLarge => AppError::invalid(
            "order_too_large",
            format!("an order's total is at most {}", format_yuan(pricing::MAX_ORDER_FEN)),
        ),
        PriceError::Empty => AppError::invalid("invalid_items", "an order has 1 to 50 items"),
    })?;
    Ok(Quote {
        merchant_id: merchant_id.ok_or_else(|| AppError::invalid("invalid_items", "an order has 1 to 50 items"))?,
        lines,
        totals,
    })
}

/// The terms of a coupon copy ([`COPY_TERMS`]' row), if it is `buyer`'s, unused and valid now.
fn copy_terms(row: Option<&tokio_postgres::Row>, buyer: i64) -> Result<Terms, AppError> {
    let row = row
        .filter(|r| r.get::<_, i64>(0) == buyer)
        .ok_or_else(|| not_applicable("coupon_id names none of your coupons"))?;
    if row.get::<_, &str>(1) != "unused" {
        return Err(not_applicable("it is already held by another order or used"));
    }
    if !row.get::<_, bool>(2) {
        return Err(not_applicable("it is not valid now"));
    }
    let off = match (
        row.get::<_, &str>(3),
        row.get::<_, Option<i64>>(4),
        row.get::<_, Option<i32>>(5),
    ) {
        ("amount_off", Some(fen), _) => pricing::Off::Amount(fen),
        (_, _, Some(percent)) => pricing::Off::Percent(i64::from(percent)),
        _ => return Err(not_applicable("its terms are unreadable")),
    };
    Ok(Terms {
        off,
        threshold_fen: row.get(6),
    })
}

/// What the payer's wallet shows: the first item's name, and how many more.
fn description(quote: &Quote) -> String {
    let first = quote.lines.first().map_or("", |l| l.name.as_str());
    match quote.lines.len() {
        0 | 1 => format!("商城订单 · {first}"),
        n => format!("商城订单 · {first} 等 {n} 件"),
    }
}

/// `POST /api/mall/orders`. With an `Idempotency-Key` the order is made once per key and
/// buyer, and the first answer replayed.
pub async fn create(state: &State, parts: &Parts, body: &[u8]) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    let engine = &state.engine;
    let caller = format!("u:{}", principal.user_id);
    let lock = engine.idempotency_lock();
    idempotent::run(&engine.keys, &engine.store, parts, body, &caller, lock, |order_no| {
        create_once(state, principal.user_id, parts, body, order_no)
    })
    .await
}

/// Prices read, then begin → reserve → submit as order `order_no` (an idempotent request's
/// number, or a new one), then the answer.
async fn create_once(
    state: &State,
    buyer: i64,
    parts: &Parts,
    body: &[u8],
    order_no: Option<String>,
) -> Result<Response, AppError> {
    let checkout = check(crate::mall::json_body(parts, body)?)?;
    let created = purchase(state, buyer, &checkout, order_no).await?;
    answer(state, &created).await
}

/// The purchase itself. A price changed between the read and the lock: read again (a dropped
/// purchase writes nothing).
async fn purchase(
    state: &State,
    buyer: i64,
    checkout: &Checkout,
    order_no: Option<String>,
) -> Result<Created, AppError> {
    let mut client = state.store.client().await?;
    for _ in 0..3 {
        let quote = quote(&client, buyer, checkout).await?;
        let order = Order {
            purpose: super::purpose::NAME,
            channel: checkout.channel,
            amount_fen: quote.totals.payable_fen,
            description: &description(&quote),
            order_no: order_no.clone(),
        };
        let purchase = state.engine.open(client, order).await?;
        match reserve(&state.engine, &purchase, buyer, checkout, &quote).await {
            Ok(true) => return Ok(state.engine.submit(purchase).await?),
            // Made by this key's first request, which died before its answer was kept.
            Ok(false) => return Ok(state.engine.taken(purchase).await?),
            // Rolled back: the same connection reads the prices again.
            Err(ReserveError::PriceChanged) => client = purchase.roll_back().await?,
            Err(ReserveError::App(e)) => return Err(e),
        }
    }
    Err(AppError::conflict(
        "prices_changed",
        "the prices changed while the order was placed; look at them again",
    ))
}

/// `201 {"order": …, "payment": …}`.
async fn answer(state: &State, created: &Created) -> Result<Response, AppError> {
    let client = state.store.client().await?;
    let order = super::read(&client, &created.order_no)
        .await?
        .ok_or(AppError::NotFound)?;
    let body = serde_json::json!({"order": order, "payment": created.json()});
    json_answer(StatusCode::CREATED, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(items: serde_json::Value) -> OrderBody {
        serde_json::from_value(serde_json::json!({"items": items, "address_id": 1, "channel": "wechat"})).unwrap()
    }

    #[test]
    fn a_checkout_is_checked_and_its_items_sorted_by_sku() {
        let c = check(body(
            serde_json::json!([{"sku_id": 9, "quantity": 2}, {"sku_id": 3, "quantity": 1}]),
        ))
        .unwrap();
        assert_eq!(c.items, [(3, 1), (9, 2)]);
        assert_eq!(c.channel, Channel::Wechat);
        for (items, code) in [
            (serde_json::json!([]), "invalid_items"),
            (serde_json::json!([{"sku_id": 1, "quantity": 0}]), "invalid_quantity"),
            (serde_json::json!([{"sku_id": 1, "quantity": 1000}]), "invalid_quantity"),
            (
                serde_json::json!([{"sku_id": 1, "quantity": 1}, {"sku_id": 1, "quantity": 2}]),
                "invalid_items",
            ),
            (serde_json::json!([{"sku_id": 0, "quantity": 1}]), "invalid_items"),
        ] {
            assert_eq!(check(body(items)).unwrap_err().code(), code);
        }
        let many: Vec<serde_json::Value> = (1..=51)
            .map(|i| serde_json::json!({"sku_id": i, "quantity": 1}))
            .collect();
        assert_eq!(
            check(body(serde_json::Value::Array(many))).unwrap_err().code(),
            "invalid_items"
        );
        let mut b = body(serde_json::json!([{"sku_id": 1, "quantity": 1}]));
        b.channel = "paypal".into();
        assert_eq!(check(b).unwrap_err().code(), "invalid_channel");
        let mut b = body(serde_json::json!([{"sku_id": 1, "quantity": 1}]));
        b.address_id = None;
        assert_eq!(check(b).unwrap_err().code(), "invalid_address");
    }

    #[test]
    fn an_out_of_stock_sku_is_named_with_its_specs() {
        assert_eq!(
            sku_label("连衣裙", &serde_json::json!({"颜色": "红"})),
            "连衣裙 (颜色: 红)"
        );
        assert_eq!(sku_label("Mug", &serde_json::json!({})), "Mug");
    }
}
