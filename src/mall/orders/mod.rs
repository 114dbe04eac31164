//! Orders: what they look like (`GET /api/mall/orders/{order_no}`, `GET /api/me/orders`,
//! `GET /api/merchant/orders`), checkout (`checkout`), and the transitions after it
//! (`lifecycle`). An order is visible to its buyer, its seller and admins; to anyone else it
//! does not exist (404).

mod checkout;
mod lifecycle;
mod money;
mod purpose;
mod reserve;

use std::collections::HashMap;

use deadpool_postgres::GenericClient;
use http::StatusCode;
use http::request::Parts;
use serde::Serialize;
use tokio_postgres::types::ToSql;

use super::catalog::Seller;
use super::json_answer;
use crate::account::{Principal, Role};
use crate::app::State;
use crate::error::AppError;
use crate::http::extract;
use crate::http::list::Paging;
use crate::http::respond::Response;
use crate::pay::money::format_yuan;
use crate::pay::rfc3339;
use crate::store::StoreError;

/// The request bodies, for the API description.
pub(crate) use checkout::OrderBody;
pub use checkout::create;
pub(crate) use lifecycle::{DecisionBody, ReasonBody, ShipBody};
pub use lifecycle::{auto_complete, buyer, complete_due, seller};
pub use purpose::MallOrder;

/// Every status an order can have.
pub const STATUSES: &[&str] = &[
    "pending_payment",
    "paid",
    "shipped",
    "completed",
    "cancelled",
    "refunding",
    "refunded",
];

/// A line of an order, as bought.
#[derive(Debug, Clone, Serialize)]
pub struct ItemView {
    pub sku_id: i64,
    pub product_id: i64,
    pub name: String,
    pub specs: serde_json::Value,
    pub price: String,
    pub price_fen: i64,
    pub quantity: i32,
    pub image: Option<String>,
    pub thumb_url: Option<String>,
    pub subtotal: String,
    pub subtotal_fen: i64,
}

/// One step of an order's timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub kind: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub source: String,
    pub detail: serde_json::Value,
    pub at: String,
}

/// An order as its parties see it.
#[derive(Debug, Clone, Serialize)]
pub struct OrderView {
    pub order_no: String,
    pub status: String,
    pub buyer: Seller,
    pub merchant: Seller,
    pub items: Vec<ItemView>,
    pub total: String,
    pub total_fen: i64,
    pub discount: String,
    pub discount_fen: i64,
    pub payable: String,
    pub payable_fen: i64,
    /// The claimed copy the order holds or used.
    pub coupon_id: Option<i64>,
    pub address: serde_json::Value,
    pub remark: String,
    pub channel: String,
    pub carrier: Option<String>,
    pub tracking_no: Option<String>,
    pub refund_reason: Option<String>,
    pub cancel_reason: Option<String>,
    /// The payment's state (`pending`, `paid`, `closed`, `refunded`).
    pub payment_status: String,
    pub pay_url: String,
    pub expires_at: String,
    pub created_at: String,
    pub paid_at: Option<String>,
    pub shipped_at: Option<String>,
    pub completed_at: Option<String>,
    pub cancelled_at: Option<String>,
    pub refunded_at: Option<String>,
    /// Only in the detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Vec<Step>>,
}

/// The columns of an [`OrderView`] (without items and timeline).
const ORDER_COLUMNS: &str = "o.order_no, o.status, o.buyer_id, b.display_name, o.merchant_id, m.display_name,
        o.total_fen, o.discount_fen, o.payable_fen, o.coupon_id, o.address, o.remark, p.channel,
        o.carrier, o.tracking_no, o.refund_reason, o.cancel_reason, p.status, p.expires_at, o.created_at,
        o.paid_at, o.shipped_at, o.completed_at, o.cancelled_at, o.refunded_at";

const ORDER_FROM: &str = "mall_orders o JOIN payments p ON p.order_no = o.order_no
   JOIN users b ON b.id = o.buyer_id JOIN users m ON m.id = o.merchant_id";

fn view(row: &tokio_postgres::Row) -> OrderView {
    let at = |i: usize| row.get::<_, Option<time::OffsetDateTime>>(i).map(rfc3339);
    let order_no: String = row.get(0);
    let (total, discount, payable): (i64, i64, i64) = (row.get(6), row.get(7), row.get(8));
    OrderView {
        pay_url: format!("/pay/{order_no}"),
        order_no,
        status: row.get(1),
        buyer: Seller {
            id: row.get(2),
            display_name: row.get(3),
        },
        merchant: Seller {
            id: row.get(4),
            display_name: row.get(5),
        },
        items: Vec::new(),
        total: format_yuan(total),
        total_fen: total,
        discount: format_yuan(discount),
        discount_fen: discount,
        payable: format_yuan(payable),
        payable_fen: payable,
        coupon_id: row.get(9),
        address: row.get(10),
        remark: row.get(11),
        channel: row.get(12),
        carrier: row.get(13),
        tracking_no: row.get(14),
        refund_reason: row.get(15),
        cancel_reason: row.get(16),
        payment_status: row.get(17),
        expires_at: rfc3339(row.get(18)),
        created_at: rfc3339(row.get(19)),
        paid_at: at(20),
        shipped_at: at(21),
        completed_at: at(22),
        cancelled_at: at(23),
        refunded_at: at(24),
        timeline: None,
    }
}

const ITEMS: &str = "SELECT order_no, sku_id, product_id, name, specs, price_fen, quantity, image
   FROM mall_order_items WHERE order_no = ANY($1) ORDER BY order_no, sku_id";

/// An [`ITEMS`] row.
fn item(row: &tokio_postgres::Row) -> ItemView {
    let (price_fen, quantity): (i64, i32) = (row.get(5), row.get(6));
    let image: Option<String> = row.get(7);
    ItemView {
        sku_id: row.get(1),
        product_id: row.get(2),
        name: row.get(3),
        specs: row.get(4),
        price: format_yuan(price_fen),
        price_fen,
        quantity,
        thumb_url: image.as_deref().map(crate::media::thumb_url),
        image,
        subtotal: format_yuan(price_fen * i64::from(quantity)),
        subtotal_fen: price_fen * i64::from(quantity),
    }
}

/// Fills in the items of `orders`, in one query.
async fn with_items(client: &impl GenericClient, orders: &mut [OrderView]) -> Result<(), StoreError> {
    if orders.is_empty() {
        return Ok(());
    }
    let numbers: Vec<&str> = orders.iter().map(|o| o.order_no.as_str()).collect();
    let statement = client.prepare_cached(ITEMS).await?;
    let mut by_order: HashMap<String, Vec<ItemView>> = HashMap::new();
    for row in client.query(&statement, &[&numbers]).await? {
        by_order.entry(row.get(0)).or_default().push(item(&row));
    }
    for order in orders {
        order.items = by_order.remove(&order.order_no).unwrap_or_default();
    }
    Ok(())
}

const TIMELINE: &str = "SELECT kind, from_status, to_status, source, detail, created_at
   FROM mall_order_events WHERE order_no = $1 ORDER BY id";

/// Order `order_no` with its items and timeline, if it exists: the three reads in one round
/// trip.
pub async fn read(client: &impl GenericClient, order_no: &str) -> Result<Option<OrderView>, StoreError> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM {ORDER_FROM} WHERE o.order_no = $1");
    let order = client.prepare_cached(&sql).await?;
    let items = client.prepare_cached(ITEMS).await?;
    let timeline = client.prepare_cached(TIMELINE).await?;
    let numbers = [order_no];
    let (one, many): ([&(dyn ToSql + Sync); 1], [&(dyn ToSql + Sync); 1]) = ([&order_no], [&numbers.as_slice()]);
    let (row, items, steps) = tokio::try_join!(
        biased;
        client.query_opt(&order, &one),
        client.query(&items, &many),
        client.query(&timeline, &one)
    )?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut order = view(&row);
    order.items = items.iter().map(item).collect();
    order.timeline = Some(
        steps
            .iter()
            .map(|r| Step {
                kind: r.get(0),
                from: r.get(1),
                to: r.get(2),
                source: r.get(3),
                detail: r.get(4),
                at: rfc3339(r.get(5)),
            })
            .collect(),
    );
    Ok(Some(order))
}

/// True when `principal` may see `order`: its buyer, its seller, or an admin.
fn may_see(principal: &Principal, order: &OrderView) -> bool {
    principal.user_id == order.buyer.id || principal.user_id == order.merchant.id || principal.role == Role::Admin
}

/// Order `order_no` as `principal` may see it; 404 otherwise.
pub async fn visible(state: &State, principal: &Principal, order_no: &str) -> Result<OrderView, AppError> {
    let client = state.store.client().await?;
    let order = read(&client, order_no).await?.ok_or(AppError::NotFound)?;
    if may_see(principal, &order) {
        Ok(order)
    } else {
        Err(AppError::NotFound)
    }
}

/// `GET /api/mall/orders/{order_no}`: the order with its timeline.
pub async fn detail(state: &State, parts: &Parts, order_no: &str) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    json_answer(StatusCode::OK, &visible(state, &principal, order_no).await?)
}

/// Whose orders a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    Buyer,
    Seller,
}

/// The `status` filter: one of [`STATUSES`] or none.
pub fn status_param(query: Option<&str>) -> Result<Option<String>, AppError> {
    match extract::query_param(query, "status")?.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) if STATUSES.contains(&s.as_str()) => Ok(Some(s)),
        Some(_) => Err(AppError::invalid(
            "invalid_status",
            "status must be pending_payment, paid, shipped, completed, cancelled, refunding or refunded",
        )),
    }
}

/// A page of `user`'s orders as `party` (newest first), with their items, and the total.
pub async fn page(
    state: &State,
    user: i64,
    party: Party,
    status: Option<&str>,
    paging: Paging,
) -> Result<(Vec<OrderView>, i64), AppError> {
    let column = match party {
        Party::Buyer => "o.buyer_id",
        Party::Seller => "o.merchant_id",
    };
    let filter = if status.is_some() { " AND o.status = $2" } else { "" };
    let (limit, offset) = if status.is_some() { ("$3", "$4") } else { ("$2", "$3") };
    let list_sql = format!(
        "SELECT {ORDER_COLUMNS} FROM {ORDER_FROM} WHERE {column} = $1{filter}
          ORDER BY o.created_at DESC, o.order_no DESC LIMIT {limit} OFFSET {offset}"
    );
    let count_sql = format!("SELECT count(*) FROM mall_orders o WHERE {column} = $1{filter}");
    let client = state.store.client().await?;
    let (list, count) = tokio::try_join!(client.prepare_cached(&list_sql), client.prepare_cached(&count_sql))
        .map_err(StoreError::from)?;
    let (limit, offset) = (paging.limit(), paging.offset());
    let mut count_params: Vec<&(dyn ToSql + Sync)> = vec![&user];
    if let Some(status) = &status {
        count_params.push(status);
    }
    let mut list_params = count_params.clone();
    list_params.push(&limit);
    list_params.push(&offset);
    let (rows, total) = tokio::try_join!(
        client.query(&list, &list_params),
        client.query_one(&count, &count_params)
    )
    .map_err(StoreError::from)?;
    let mut orders: Vec<OrderView> = rows.iter().map(view).collect();
    with_items(&client, &mut orders).await?;
    Ok((orders, total.get(0)))
}

async fn list(state: &State, parts: &Parts, party: Party) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    let query = parts.uri.query();
    let paging = Paging::standard(query)?;
    let status = status_param(query)?;
    let (orders, total) = page(state, principal.user_id, party, status.as_deref(), paging).await?;
    json_answer(StatusCode::OK, &paging.listing(total, orders))
}

/// `GET /api/me/orders?status=&page=&size=`: the signed-in buyer's orders.
pub async fn mine(state: &State, parts: &Parts) -> Result<Response, AppError> {
    list(state, parts, Party::Buyer).await
}

/// `GET /api/merchant/orders?status=&page=&size=`: orders of the signed-in seller's goods.
pub async fn seller_list(state: &State, parts: &Parts) -> Result<Response, AppError> {
    list(state, parts, Party::Seller).await
}

/// Appends to an order's timeline (`mall_order_events`), in the transition's transaction.
#[allow(clippy::too_many_arguments)]
pub async fn event(
    client: &impl GenericClient,
    order_no: &str,
    kind: &str,
    from: Option<&str>,
    to: Option<&str>,
    actor: Option<i64>,
    source: &str,
    detail: serde_json::Value,
) -> Result<(), tokio_postgres::Error> {
    const INSERT: &str =
        "INSERT INTO mall_order_events (order_no, kind, from_status, to_status, actor_id, source, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7)";
    let statement = client.prepare_cached(INSERT).await?;
    client
        .execute(&statement, &[&order_no, &kind, &from, &to, &actor, &source, &detail])
        .await
        .map(drop)
}
