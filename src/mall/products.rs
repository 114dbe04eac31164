//! Product writes: `POST /api/mall/products` and `PATCH /api/mall/products/{id}`. A merchant
//! (or an admin) sells anything; any signed-in user may list a second-hand item (one SKU,
//! stock 1). An edit matches SKUs by their specs: a SKU whose specs stay keeps its id (and
//! the carts and orders that name it), a dropped one is kept inactive. Each write commits
//! with a `mall` event, so every instance shows it within the second.

use std::collections::BTreeSet;

use deadpool_postgres::GenericClient;
use http::StatusCode;
use http::request::Parts;
use serde::Deserialize;

use super::catalog::{Detail, read_detail};
use super::{json_answer, json_body, price, text};
use crate::account::{Principal, Role};
use crate::app::State;
use crate::error::AppError;
use crate::http::respond::Response;
use crate::store::StoreError;

/// Most SKUs, images and spec dimensions of a product.
pub const MAX_SKUS: usize = 50;
pub const MAX_IMAGES: usize = 9;
pub const MAX_SPEC_KEYS: usize = 5;
/// Highest price of a SKU: ¥1 000 000.00.
pub const MAX_PRICE_FEN: i64 = 100_000_000;
/// Largest stock of a SKU.
pub const MAX_STOCK: i64 = 1_000_000;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProductBody {
    #[serde(default)]
    category_id: Option<i64>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    images: Option<Vec<String>>,
    #[serde(default)]
    second_hand: Option<bool>,
    #[serde(default)]
    listed: Option<bool>,
    #[serde(default)]
    skus: Option<Vec<SkuBody>>,
}

/// A SKU as a request gives it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SkuBody {
    #[serde(default)]
    pub specs: serde_json::Map<String, serde_json::Value>,
    pub price: String,
    pub stock: i64,
}

/// A SKU, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSku {
    /// Keys and values trimmed, as a JSON object.
    pub specs: serde_json::Value,
    pub price_fen: i64,
    pub stock: i64,
}

/// Checks a product's SKUs: 1..=50 of them, specs with the same 0..=5 keys on each (keys
/// 1..=16 characters, string values 1..=32), no two alike, prices 0.01..=1 000 000.00,
/// stock 0..=1 000 000; a second-hand listing has exactly one SKU of stock 1.
pub fn check_skus(skus: &[SkuBody], second_hand: bool) -> Result<Vec<NewSku>, AppError> {
    if skus.is_empty() || skus.len() > MAX_SKUS {
        return Err(AppError::invalid("invalid_skus", "a product has 1 to 50 SKUs"));
    }
    if second_hand && (skus.len() != 1 || skus[0].stock != 1) {
        return Err(AppError::invalid(
            "invalid_second_hand",
            "a second-hand listing has exactly one SKU with stock 1",
        ));
    }
    let mut out: Vec<NewSku> = Vec::with_capacity(skus.len());
    let mut keys_of_first: Option<BTreeSet<String>> = None;
    for sku in skus {
        if sku.specs.len() > MAX_SPEC_KEYS {
            return Err(AppError::invalid("invalid_specs", "specs have at most 5 keys"));
        }
        let mut specs = serde_json::Map::new();
        for (key, value) in &sku.specs {
            let key = text(key, 1, 16, false, "invalid_specs", "a spec's name")?;
            let serde_json::Value::String(value) = value else {
                return Err(AppError::invalid("invalid_specs", "spec values are strings"));
            };
            let value = text(value, 1, 32, false, "invalid_specs", "a spec's value")?;
            if specs.insert(key, serde_json::Value::String(value)).is_some() {
                return Err(AppError::invalid(
                    "invalid_specs",
                    "a spec name appears twice once trimmed",
                ));
            }
        }
        let keys: BTreeSet<String> = specs.keys().cloned().collect();
        match &keys_of_first {
            None => keys_of_first = Some(keys),
            Some(first) if *first != keys => {
                return Err(AppError::invalid(
                    "invalid_specs",
                    "every SKU of a product has the same spec names",
                ));
            }
            Some(_) => {}
        }
        let specs = serde_json::Value::Object(specs);
        if out.iter().any(|s| s.specs == specs) {
            return Err(AppError::invalid("duplicate_sku", "two SKUs have the same specs"));
        }
        if !(0..=MAX_STOCK).contains(&sku.stock) {
            return Err(AppError::invalid(
                "invalid_stock",
                "stock is a whole number from 0 to 1000000",
            ));
        }
        out.push(NewSku {
            specs,
            price_fen: price(&sku.price, MAX_PRICE_FEN, "invalid_price", "price")?,
            stock: sku.stock,
        });
    }
    Ok(out)
}

fn check_images(images: &[String]) -> Result<(), AppError> {
    if images.len() > MAX_IMAGES {
        return Err(AppError::invalid("invalid_images", "a product has at most 9 images"));
    }
    if images.iter().enumerate().any(|(i, a)| images[..i].contains(a)) {
        return Err(AppError::invalid("invalid_images", "an image appears twice"));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<String, AppError> {
    text(name, 1, 100, false, "invalid_name", "name")
}

fn check_description(description: &str) -> Result<String, AppError> {
    text(description, 0, 5000, true, "invalid_description", "description")
}

/// Only merchants (and admins) sell new goods; anyone may sell second-hand.
fn may_sell(principal: &Principal, second_hand: bool) -> Result<(), AppError> {
    if second_hand || principal.role.allows(Role::Merchant) {
        Ok(())
    } else {
        Err(AppError::Forbidden)
    }
}

const INSERT_PRODUCT: &str = "INSERT INTO mall_products
        (merchant_id, category_id, name, description, images, second_hand, listed, min_price_fen, search_text)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id";

const INSERT_SKUS: &str = "INSERT INTO mall_skus (product_id, specs, price_fen, stock, position)
     SELECT $1, s.specs, s.price_fen, s.stock, s.position
       FROM unnest($2::jsonb[], $3::bigint[], $4::bigint[], $5::int[]) AS s(specs, price_fen, stock, position)";

fn category_error(e: tokio_postgres::Error) -> AppError {
    let constraint = e.as_db_error().and_then(|d| d.constraint());
    if constraint == Some("mall_products_category_id_fkey") {
        AppError::invalid("invalid_category", "category_id names no mall category")
    } else {
        AppError::from(StoreError::from(e))
    }
}

/// `POST /api/mall/products` → `201` with the product as its detail.
pub async fn create(state: &State, parts: &Parts, body: &[u8]) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    let input: ProductBody = json_body(parts, body)?;
    let second_hand = input.second_hand.unwrap_or(false);
    may_sell(&principal, second_hand)?;
    let category_id = input
        .category_id
        .ok_or_else(|| AppError::invalid("invalid_category", "category_id is required"))?;
    let name = check_name(input.name.as_deref().unwrap_or(""))?;
    let description = check_description(input.description.as_deref().unwrap_or(""))?;
    let images = input.images.unwrap_or_default();
    check_images(&images)?;
    let skus = check_skus(
        input
            .skus
            .as_deref()
            .ok_or_else(|| AppError::invalid("invalid_skus", "skus are required"))?,
        second_hand,
    )?;
    let min_price = skus.iter().map(|s| s.price_fen).min().unwrap_or(1);
    let search_text = super::search::search_text(&name, &description);
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    crate::media::check_ids(&tx, &images).await?;
    let id: i64 = tx
        .query_one(
            INSERT_PRODUCT,
            &[
                &principal.user_id,
                &category_id,
                &name,
                &description,
                &images,
                &second_hand,
                &input.listed.unwrap_or(true),
                &min_price,
                &search_text,
            ],
        )
        .await
        .map_err(category_error)?
        .get(0);
    insert_skus(&tx, id, &skus, 0).await?;
    let detail = read_detail(&tx, id).await?.ok_or(AppError::NotFound)?;
    super::publish(&tx, &[id], false).await.map_err(StoreError::from)?;
    tx.commit().await.map_err(StoreError::from)?;
    state.mall.products_changed(&[id]);
    answer(StatusCode::CREATED, &detail)
}

async fn insert_skus(
    tx: &impl GenericClient,
    product: i64,
    skus: &[NewSku],
    first_position: i32,
) -> Result<(), AppError> {
    if skus.is_empty() {
        return Ok(());
    }
    let specs: Vec<serde_json::Value> = skus.iter().map(|s| s.specs.clone()).collect();
    let prices: Vec<i64> = skus.iter().map(|s| s.price_fen).collect();
    let stocks: Vec<i64> = skus.iter().map(|s| s.stock).collect();
    let positions: Vec<i32> = (0..skus.len() as i32).map(|i| first_position + i).collect();
    let statement = tx.prepare_cached(INSERT_SKUS).await.map_err(StoreError::from)?;
    tx.execute(&statement, &[&product, &specs, &prices, &stocks, &positions])
        .await
        .map_err(StoreError::from)?;
    Ok(())
}

/// The detail as a create or an edit answers it (the author is its viewer: `favorited` is
/// read by the next `GET`).
fn answer(status: StatusCode, detail: &Detail) -> Result<Response, AppError> {
    let mut value = serde_json::to_value(detail).map_err(|e| AppError::Internal(e.into()))?;
    value["favorited"] = serde_json::Value::Bool(false);
    json_answer(status, &value)
}

const LOCK_PRODUCT: &str =
    "SELECT merchant_id, second_hand, name, description FROM mall_products WHERE id = $1 FOR UPDATE";

/// `PATCH /api/mall/products/{id}`: any of the create's fields, by its seller or an admin.
pub async fn update(
    state: &State,
    parts: &Parts,
    id: i64,
    body: &[u8],
    ip: std::net::IpAddr,
) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    let input: ProductBody = json_body(parts, body)?;
    let name = input.name.as_deref().map(check_name).transpose()?;
    let description = input.description.as_deref().map(check_description).transpose()?;
    if let Some(images) = &input.images {
        check_images(images)?;
    }
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let row = tx
        .query_opt(LOCK_PRODUCT, &[&id])
        .await
        .map_err(StoreError::from)?
        .ok_or(AppError::NotFound)?;
    let seller: i64 = row.get(0);
    if seller != principal.user_id && principal.role != Role::Admin {
        return Err(AppError::Forbidden);
    }
    let second_hand = input.second_hand.unwrap_or(row.get(1));
    if input.second_hand == Some(false) && row.get::<_, bool>(1) {
        // Turning a listing into new goods needs a seller of new goods.
        may_sell(&principal, false)?;
    }
    let skus = input.skus.as_deref().map(|s| check_skus(s, second_hand)).transpose()?;
    if let Some(images) = &input.images {
        crate::media::check_ids(&tx, images).await?;
    }
    if let Some(skus) = &skus {
        replace_skus(&tx, id, skus).await?;
    }
    let search_text = (name.is_some() || description.is_some()).then(|| {
        super::search::search_text(
            name.as_deref().unwrap_or(row.get(2)),
            description.as_deref().unwrap_or(row.get(3)),
        )
    });
    tx.execute(
        UPDATE_PRODUCT,
        &[
            &id,
            &input.category_id,
            &name,
            &description,
            &input.images,
            &second_hand,
            &input.listed,
            &search_text,
        ],
    )
    .await
    .map_err(category_error)?;
    if second_hand {
        second_hand_shape(&tx, id).await?;
    }
    let detail = read_detail(&tx, id).await?.ok_or(AppError::NotFound)?;
    if principal.role == Role::Admin && seller != principal.user_id {
        let ip = ip.to_string();
        let after = serde_json::to_value(&detail).map_err(|e| AppError::Internal(e.into()))?;
        crate::store::audit::write(
            &tx,
            super::audit_actor(&principal, &ip),
            "mall_product.update",
            &format!("mall_product:{id}"),
            None,
            Some(&after),
        )
        .await
        .map_err(StoreError::from)?;
    }
    super::publish(&tx, &[id], false).await.map_err(StoreError::from)?;
    tx.commit().await.map_err(StoreError::from)?;
    state.mall.products_changed(&[id]);
    answer(StatusCode::OK, &detail)
}

const UPDATE_PRODUCT: &str = "UPDATE mall_products SET
        category_id = coalesce($2, category_id), name = coalesce($3, name),
        description = coalesce($4, description), images = coalesce($5, images), second_hand = $6,
        listed = coalesce($7, listed), search_text = coalesce($8, search_text),
        min_price_fen = (SELECT min(price_fen) FROM mall_skus WHERE product_id = $1 AND active),
        updated_at = now()
  WHERE id = $1";

const ACTIVE_SKUS: &str = "SELECT id, specs FROM mall_skus WHERE product_id = $1 AND active ORDER BY id FOR UPDATE";
const DEACTIVATE: &str = "UPDATE mall_skus SET active = false, updated_at = now() WHERE id = ANY($1)";
const CHANGE_SKU: &str =
    "UPDATE mall_skus SET price_fen = $2, stock = $3, position = $4, updated_at = now() WHERE id = $1";

/// Makes the product's active SKUs `skus`: the same specs keep their SKU (price and stock
/// set), new specs get a new one, SKUs left out turn inactive. The SKU rows are locked in id
/// order, after the product's row, as every writer of both does (no deadlock).
async fn replace_skus(tx: &impl GenericClient, product: i64, skus: &[NewSku]) -> Result<(), AppError> {
    let existing: Vec<(i64, serde_json::Value)> = tx
        .query(ACTIVE_SKUS, &[&product])
        .await
        .map_err(StoreError::from)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let dropped: Vec<i64> = existing
        .iter()
        .filter(|(_, specs)| !skus.iter().any(|s| s.specs == *specs))
        .map(|(id, _)| *id)
        .collect();
    tx.execute(DEACTIVATE, &[&dropped]).await.map_err(StoreError::from)?;
    let mut fresh = Vec::new();
    for (position, sku) in skus.iter().enumerate() {
        match existing.iter().find(|(_, specs)| *specs == sku.specs) {
            Some((sku_id, _)) => {
                tx.execute(CHANGE_SKU, &[sku_id, &sku.price_fen, &sku.stock, &(position as i32)])
                    .await
                    .map_err(StoreError::from)?;
            }
            None => fresh.push((position, sku.clone())),
        }
    }
    for (position, sku) in fresh {
        insert_skus(tx, product, std::slice::from_ref(&sku), position as i32).await?;
    }
    Ok(())
}

/// A second-hand listing keeps one SKU with at most one unit.
async fn second_hand_shape(tx: &impl GenericClient, product: i64) -> Result<(), AppError> {
    let row = tx
        .query_one(
            "SELECT count(*), coalesce(max(stock), 0) FROM mall_skus WHERE product_id = $1 AND active",
            &[&product],
        )
        .await
        .map_err(StoreError::from)?;
    if row.get::<_, i64>(0) != 1 || row.get::<_, i64>(1) > 1 {
        return Err(AppError::invalid(
            "invalid_second_hand",
            "a second-hand listing has exactly one SKU with stock 1",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sku(specs: serde_json::Value, price: &str, stock: i64) -> SkuBody {
        SkuBody {
            specs: specs.as_object().cloned().unwrap_or_default(),
            price: price.into(),
            stock,
        }
    }

    #[test]
    fn skus_are_checked_and_trimmed() {
        let skus = check_skus(
            &[
                sku(serde_json::json!({" 颜色 ": " 红 ", "尺码": "M"}), "19.90", 5),
                sku(serde_json::json!({"颜色": "蓝", "尺码": "M"}), "21", 0),
            ],
            false,
        )
        .unwrap();
        assert_eq!(skus[0].specs, serde_json::json!({"颜色": "红", "尺码": "M"}));
        assert_eq!((skus[0].price_fen, skus[1].price_fen, skus[1].stock), (1990, 2100, 0));
        let cases: Vec<(Vec<SkuBody>, bool, &str)> = vec![
            (vec![], false, "invalid_skus"),
            (
                (0..51)
                    .map(|i| sku(serde_json::json!({"n": i.to_string()}), "1", 1))
                    .collect(),
                false,
                "invalid_skus",
            ),
            (
                vec![
                    sku(serde_json::json!({"颜色": "红"}), "1", 1),
                    sku(serde_json::json!({"尺码": "M"}), "1", 1),
                ],
                false,
                "invalid_specs",
            ),
            (
                vec![sku(serde_json::json!({"颜色": 1}), "1", 1)],
                false,
                "invalid_specs",
            ),
            (
                vec![sku(serde_json::json!({"颜色": ""}), "1", 1)],
                false,
                "invalid_specs",
            ),
            (
                vec![sku(
                    serde_json::json!({"a": "1", "b": "1", "c": "1", "d": "1", "e": "1", "f": "1"}),
                    "1",
                    1,
                )],
                false,
                "invalid_specs",
            ),
            (
                vec![
                    sku(serde_json::json!({"颜色": "红"}), "1", 1),
                    sku(serde_json::json!({"颜色": " 红"}), "2", 1),
                ],
                false,
                "duplicate_sku",
            ),
            (vec![sku(serde_json::json!({}), "0", 1)], false, "invalid_price"),
            (vec![sku(serde_json::json!({}), "1.001", 1)], false, "invalid_price"),
            (
                vec![sku(serde_json::json!({}), "1000000.01", 1)],
                false,
                "invalid_price",
            ),
            (vec![sku(serde_json::json!({}), "1", -1)], false, "invalid_stock"),
            (vec![sku(serde_json::json!({}), "1", 1_000_001)], false, "invalid_stock"),
            (vec![sku(serde_json::json!({}), "1", 2)], true, "invalid_second_hand"),
            (
                vec![
                    sku(serde_json::json!({"a": "1"}), "1", 1),
                    sku(serde_json::json!({"a": "2"}), "1", 1),
                ],
                true,
                "invalid_second_hand",
            ),
        ];
        for (skus, second_hand, code) in cases {
            assert_eq!(check_skus(&skus, second_hand).unwrap_err().code(), code, "{skus:?}");
        }
        assert!(check_skus(&[sku(serde_json::json!({}), "1", 1)], true).is_ok());
    }

    #[test]
    fn images_are_at_most_nine_and_distinct() {
        let id = |c: char| c.to_string().repeat(64);
        assert!(check_images(&[id('a'), id('b')]).is_ok());
        assert_eq!(check_images(&[id('a'), id('a')]).unwrap_err().code(), "invalid_images");
        let ten: Vec<String> = "0123456789".chars().map(id).collect();
        assert_eq!(check_images(&ten).unwrap_err().code(), "invalid_images");
    }
}
