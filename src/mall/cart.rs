//! The cart: quantities per SKU, kept per user; prices, stock and availability are read at
//! every display (and again at checkout), never stored. `GET /api/mall/cart` groups the
//! lines by seller, since an order is one seller's; `PUT /api/mall/cart/items/{sku_id}`
//! `{"quantity"}` sets a line (0 removes it).

use http::StatusCode;
use http::request::Parts;
use serde::{Deserialize, Serialize};

use super::catalog::Seller;
use super::{json_answer, json_body};
use crate::account::Role;
use crate::app::State;
use crate::error::AppError;
use crate::http::respond::Response;
use crate::pay::money::format_yuan;
use crate::store::StoreError;

/// Most lines a cart holds, and most units of one line.
pub const MAX_LINES: i64 = 100;
pub const MAX_QUANTITY: i64 = 999;

/// A cart line with what it costs now.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub sku_id: i64,
    pub product_id: i64,
    pub name: String,
    pub specs: serde_json::Value,
    pub image: Option<String>,
    pub thumb_url: Option<String>,
    pub price: String,
    pub price_fen: i64,
    pub quantity: i64,
    pub stock: i64,
    /// Listed, still sold, and enough in stock for this quantity.
    pub available: bool,
    pub subtotal: String,
    pub subtotal_fen: i64,
}

/// One seller's lines.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub merchant: Seller,
    pub items: Vec<Line>,
    /// Of the available lines.
    pub total: String,
    pub total_fen: i64,
}

/// The cart, grouped by seller (the seller of the most recently added line first).
#[derive(Debug, Clone, Serialize)]
pub struct Cart {
    pub groups: Vec<Group>,
    /// Units over all lines.
    pub count: i64,
    pub total: String,
    pub total_fen: i64,
}

const SELECT_CART: &str = "SELECT c.sku_id, s.product_id, p.name, s.specs, p.images[1], s.price_fen, c.quantity,
        s.stock, p.listed AND s.active, p.merchant_id, u.display_name
   FROM mall_cart_items c JOIN mall_skus s ON s.id = c.sku_id
   JOIN mall_products p ON p.id = s.product_id JOIN users u ON u.id = p.merchant_id
  WHERE c.user_id = $1 ORDER BY c.created_at DESC, c.sku_id";

/// `user`'s cart as it costs now.
pub async fn load(state: &State, user: i64) -> Result<Cart, AppError> {
    let client = state.store.client().await?;
    let statement = client.prepare_cached(SELECT_CART).await.map_err(StoreError::from)?;
    let rows = client.query(&statement, &[&user]).await.map_err(StoreError::from)?;
    let mut groups: Vec<Group> = Vec::new();
    for row in &rows {
        let image: Option<String> = row.get(4);
        let (price_fen, quantity, stock): (i64, i32, i64) = (row.get(5), row.get(6), row.get(7));
        let quantity = i64::from(quantity);
        let subtotal_fen = price_fen * quantity;
        let line = Line {
            sku_id: row.get(0),
            product_id: row.get(1),
            name: row.get(2),
            specs: row.get(3),
            thumb_url: image.as_deref().map(crate::media::thumb_url),
            image,
            price: format_yuan(price_fen),
            price_fen,
            quantity,
            stock,
            available: row.get::<_, bool>(8) && stock >= quantity,
            subtotal: format_yuan(subtotal_fen),
            subtotal_fen,
        };
        let merchant_id: i64 = row.get(9);
        let group = match groups.iter_mut().position(|g| g.merchant.id == merchant_id) {
            Some(i) => &mut groups[i],
            None => {
                groups.push(Group {
                    merchant: Seller {
                        id: merchant_id,
                        display_name: row.get(10),
                    },
                    items: Vec::new(),
                    total: String::new(),
                    total_fen: 0,
                });
                groups.last_mut().expect("just pushed")
            }
        };
        if line.available {
            group.total_fen += line.subtotal_fen;
        }
        group.items.push(line);
    }
    for group in &mut groups {
        group.total = format_yuan(group.total_fen);
    }
    let count = groups.iter().flat_map(|g| &g.items).map(|l| l.quantity).sum();
    let total_fen = groups.iter().map(|g| g.total_fen).sum();
    Ok(Cart {
        groups,
        count,
        total: format_yuan(total_fen),
        total_fen,
    })
}

/// `GET /api/mall/cart`.
pub async fn show(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    json_answer(StatusCode::OK, &load(state, principal.user_id).await?)
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "CartItemPut")]
pub(crate) struct PutBody {
    quantity: i64,
}

const SKU_FOR_CART: &str = "SELECT p.merchant_id, p.listed AND s.active
   FROM mall_skus s JOIN mall_products p ON p.id = s.product_id WHERE s.id = $1";
const LOCK_USER: &str = "SELECT 1 FROM users WHERE id = $1 FOR UPDATE";
const UPSERT: &str = "INSERT INTO mall_cart_items (user_id, sku_id, quantity) VALUES ($1, $2, $3)
     ON CONFLICT (user_id, sku_id) DO UPDATE SET quantity = EXCLUDED.quantity, updated_at = now()
     RETURNING (xmax = 0)";
const LINES: &str = "SELECT count(*) FROM mall_cart_items WHERE user_id = $1";
const REMOVE: &str = "DELETE FROM mall_cart_items WHERE user_id = $1 AND sku_id = $2";

/// `PUT /api/mall/cart/items/{sku_id}` `{"quantity": 0..=999}` → the cart. A SKU that is not
/// for sale is 404; one's own goods cannot go in (`422 own_product`); a 101st line is
/// `409 cart_full`.
pub async fn put(state: &State, parts: &Parts, sku_id: i64, body: &[u8]) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    let input: PutBody = json_body(parts, body)?;
    if !(0..=MAX_QUANTITY).contains(&input.quantity) {
        return Err(AppError::invalid(
            "invalid_quantity",
            "quantity must be 0 to 999 (0 removes the line)",
        ));
    }
    let user = principal.user_id;
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    if input.quantity == 0 {
        tx.execute(REMOVE, &[&user, &sku_id]).await.map_err(StoreError::from)?;
    } else {
        let row = tx
            .query_opt(SKU_FOR_CART, &[&sku_id])
            .await
            .map_err(StoreError::from)?
            .ok_or(AppError::NotFound)?;
        if !row.get::<_, bool>(1) {
            return Err(AppError::NotFound);
        }
        if row.get::<_, i64>(0) == user {
            return Err(AppError::invalid(
                "own_product",
                "you sell this; it cannot go in your cart",
            ));
        }
        // Under the user's lock: a 101st line cannot slip in beside another request.
        tx.execute(LOCK_USER, &[&user]).await.map_err(StoreError::from)?;
        let quantity = i32::try_from(input.quantity).unwrap_or(1);
        let inserted: bool = tx
            .query_one(UPSERT, &[&user, &sku_id, &quantity])
            .await
            .map_err(StoreError::from)?
            .get(0);
        if inserted {
            let lines: i64 = tx.query_one(LINES, &[&user]).await.map_err(StoreError::from)?.get(0);
            if lines > MAX_LINES {
                return Err(AppError::conflict("cart_full", "a cart holds at most 100 lines"));
            }
        }
    }
    tx.commit().await.map_err(StoreError::from)?;
    json_answer(StatusCode::OK, &load(state, user).await?)
}
