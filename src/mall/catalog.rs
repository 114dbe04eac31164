//! The catalog's reads, from memory: `GET /api/mall/products` (filters, search, sorts) and
//! `GET /api/mall/products/{id}`, each answer serialized once and kept until a `mall` event
//! says what it shows changed (an edit, stock taken or returned, a sale). A list answer is
//! kept per filter set under the version of the catalog (any product change starts a new
//! one); a detail per product, without `favorited`, which is added per signed-in viewer.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::StatusCode;
use http::request::Parts;
use serde::Serialize;
use tokio_postgres::types::ToSql;

use super::search::{self, Query};
use crate::account::{Principal, Role};
use crate::app::State;
use crate::error::AppError;
use crate::http::extract;
use crate::http::list::Paging;
use crate::http::respond::{self, Response};
use crate::pay::money::format_yuan;
use crate::pay::rfc3339;
use crate::store::StoreError;

/// How a list is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sort {
    Newest,
    PriceAsc,
    PriceDesc,
    Sales,
}

impl Sort {
    pub fn parse(text: &str) -> Option<Sort> {
        match text {
            "newest" => Some(Sort::Newest),
            "price_asc" => Some(Sort::PriceAsc),
            "price_desc" => Some(Sort::PriceDesc),
            "sales" => Some(Sort::Sales),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Newest => "newest",
            Sort::PriceAsc => "price_asc",
            Sort::PriceDesc => "price_desc",
            Sort::Sales => "sales",
        }
    }

    fn order_by(self) -> &'static str {
        match self {
            Sort::Newest => "p.id DESC",
            Sort::PriceAsc => "p.min_price_fen, p.id DESC",
            Sort::PriceDesc => "p.min_price_fen DESC, p.id DESC",
            Sort::Sales => "p.sales DESC, p.id DESC",
        }
    }
}

/// A list request, parsed: also the cache key of its answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListKey {
    pub category_id: Option<i64>,
    /// The query's words, space-separated (empty: no search).
    pub q: String,
    pub second_hand: Option<bool>,
    pub sort: Sort,
    pub page: u32,
    pub size: u32,
}

impl ListKey {
    /// Parses `category_id`, `q`, `second_hand`, `sort`, `page`, `size`; 422 for a bad one.
    pub fn parse(query: Option<&str>) -> Result<(ListKey, Option<Query>), AppError> {
        let paging = Paging::standard(query)?;
        let param = |name| extract::query_param(query, name).map(|v| v.filter(|v| !v.trim().is_empty()));
        let category_id = match param("category_id")? {
            None => None,
            Some(text) => Some(
                crate::http::route::path_id(text.trim())
                    .ok_or_else(|| AppError::invalid("invalid_category", "category_id must be a category id"))?,
            ),
        };
        let q = match param("q")? {
            None => None,
            Some(text) => search::parse_query(&text).map_err(|e| {
                AppError::invalid(
                    "invalid_q",
                    match e {
                        search::QueryError::TooLong => "q must be at most 50 characters",
                        search::QueryError::TooManyWords => "q may have at most 8 words",
                    },
                )
            })?,
        };
        let second_hand = match param("second_hand")?.as_deref() {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => {
                return Err(AppError::invalid(
                    "invalid_second_hand",
                    "second_hand must be true or false",
                ));
            }
        };
        let sort = match param("sort")? {
            None => Sort::Newest,
            Some(text) => Sort::parse(&text).ok_or_else(|| {
                AppError::invalid("invalid_sort", "sort must be newest, price_asc, price_desc or sales")
            })?,
        };
        let key = ListKey {
            category_id,
            q: search::cache_form(&q),
            second_hand,
            sort,
            page: paging.page,
            size: paging.size,
        };
        Ok((key, q))
    }
}

/// Who sells a product.
#[derive(Debug, Clone, Serialize)]
pub struct Seller {
    pub id: i64,
    pub display_name: String,
}

/// A product as lists show it.
#[derive(Debug, Clone, Serialize)]
pub struct ListItem {
    pub id: i64,
    pub name: String,
    pub category_id: i64,
    /// The lowest price of its SKUs.
    pub price: String,
    pub price_fen: i64,
    /// Units in stock over its SKUs.
    pub stock: i64,
    pub sales: i64,
    pub second_hand: bool,
    pub listed: bool,
    /// The first image, if any.
    pub image: Option<String>,
    pub thumb_url: Option<String>,
    pub merchant: Seller,
    pub created_at: String,
}

/// A list answer: its items (for pages) and its JSON (for the API).
#[derive(Debug)]
pub struct ListAnswer {
    pub items: Vec<ListItem>,
    pub total: i64,
    pub paging: Paging,
    pub body: Bytes,
}

/// The columns of a [`ListItem`], over `mall_products p JOIN users u`.
pub const ITEM_COLUMNS: &str = "p.id, p.name, p.category_id, p.min_price_fen,
        (SELECT coalesce(sum(s.stock), 0)::bigint FROM mall_skus s WHERE s.product_id = p.id AND s.active),
        p.sales, p.second_hand, p.listed, p.images[1], p.merchant_id, u.display_name, p.created_at";

/// A [`ListItem`] from a row of [`ITEM_COLUMNS`].
pub fn item(row: &tokio_postgres::Row) -> ListItem {
    let image: Option<String> = row.get(8);
    ListItem {
        id: row.get(0),
        name: row.get(1),
        category_id: row.get(2),
        price: format_yuan(row.get(3)),
        price_fen: row.get(3),
        stock: row.get(4),
        sales: row.get(5),
        second_hand: row.get(6),
        listed: row.get(7),
        thumb_url: image.as_deref().map(crate::media::thumb_url),
        image,
        merchant: Seller {
            id: row.get(9),
            display_name: row.get(10),
        },
        created_at: rfc3339(row.get(11)),
    }
}

/// The statements of a list and its count, and their parameters (the count's are all but
/// the last two).
struct ListSql {
    list: String,
    count: String,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

/// The SQL for `key` (`category` = the category and its descendants). Only the filters given
/// appear, so each combination gets a plan of its own. A search reads its candidates through
/// the character index first (a fenced subquery: otherwise a rare word under `ORDER BY …
/// LIMIT` can be planned as a walk of the whole table in sort order), then the other filters
/// and the substring check apply, then the order.
fn list_sql(key: &ListKey, category: Option<Vec<i64>>, q: &Option<Query>) -> ListSql {
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    let mut source = String::from("mall_products p");
    let mut condition = String::from(" WHERE p.listed");
    if let Some(q) = q {
        params.push(Box::new(q.grams.clone()));
        source = "(SELECT * FROM mall_products WHERE search_grams @> $1::text[] OFFSET 0) p".to_string();
        for term in &q.terms {
            params.push(Box::new(term.clone()));
            condition.push_str(&format!(" AND strpos(p.search_text, ${}) > 0", params.len()));
        }
    }
    if let Some(ids) = category {
        params.push(Box::new(ids));
        condition.push_str(&format!(" AND p.category_id = ANY(${})", params.len()));
    }
    if let Some(second_hand) = key.second_hand {
        params.push(Box::new(second_hand));
        condition.push_str(&format!(" AND p.second_hand = ${}", params.len()));
    }
    let count = format!("SELECT count(*) FROM {source}{condition}");
    let paging = Paging {
        page: key.page,
        size: key.size,
    };
    params.push(Box::new(paging.limit()));
    params.push(Box::new(paging.offset()));
    let n = params.len();
    let list = format!(
        "SELECT {ITEM_COLUMNS} FROM {source} JOIN users u ON u.id = p.merchant_id{condition}
          ORDER BY {} LIMIT ${} OFFSET ${n}",
        key.sort.order_by(),
        n - 1
    );
    ListSql { list, count, params }
}

async fn load_list(
    state: &State,
    key: ListKey,
    category: Option<Vec<i64>>,
    q: Option<Query>,
) -> Result<Arc<ListAnswer>, StoreError> {
    let sql = list_sql(&key, category, &q);
    let paging = Paging {
        page: key.page,
        size: key.size,
    };
    let client = state.store.client().await?;
    let (list, count) = tokio::try_join!(client.prepare_cached(&sql.list), client.prepare_cached(&sql.count))?;
    let refs: Vec<&(dyn ToSql + Sync)> = sql.params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
    let n = refs.len();
    let (rows, total) = tokio::try_join!(client.query(&list, &refs), client.query_one(&count, &refs[..n - 2]))?;
    let items: Vec<ListItem> = rows.iter().map(item).collect();
    let total: i64 = total.get(0);
    let body = serde_json::to_vec(&paging.listing(total, items.clone())).expect("a product list serializes");
    Ok(Arc::new(ListAnswer {
        items,
        total,
        paging,
        body: Bytes::from(body),
    }))
}

/// The plan of the list query for `query` (a category filter covers that category alone),
/// for the test that checks searches use the index.
pub async fn explain_list(store: &crate::store::Store, query: &str) -> Result<String, AppError> {
    let (key, q) = ListKey::parse(Some(query))?;
    let sql = list_sql(&key, key.category_id.map(|c| vec![c]), &q);
    let client = store.client().await?;
    let refs: Vec<&(dyn ToSql + Sync)> = sql.params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
    let rows = client
        .query(&format!("EXPLAIN {}", sql.list), &refs)
        .await
        .map_err(StoreError::from)?;
    Ok(rows
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// The list answer for `query`, from memory when it is there.
pub async fn list_answer(state: &State, query: Option<&str>) -> Result<Arc<ListAnswer>, AppError> {
    let (key, q) = ListKey::parse(query)?;
    if let Some(answer) = state.mall.lists.get(&key).await {
        return Ok(answer);
    }
    let category = match key.category_id {
        None => None,
        // An unknown category filters everything out.
        Some(id) => Some(
            super::categories::tree(state)
                .await?
                .with_descendants(id)
                .map_or_else(Vec::new, <[i64]>::to_vec),
        ),
    };
    let load = load_list(state, key.clone(), category, q);
    state
        .mall
        .lists
        .get_or_load(key, crate::store::bounded(load))
        .await
        .map_err(|e| super::load_error(&e))
}

/// A public read answered from memory, or `None` (the general path answers): a list, and a
/// listed product's detail for a visitor (a session's reader may have favorited it, or be
/// its seller).
pub fn cached_read(state: &State, route: super::Route<'_>, parts: &Parts, now: std::time::Instant) -> Option<Bytes> {
    use futures_util::FutureExt;
    match route {
        super::Route::Products => {
            let (key, _) = ListKey::parse(parts.uri.query()).ok()?;
            let mall = &state.mall;
            mall.list_front.get_or(&key, now, || {
                // The cache's lookup does not wait on anything: one poll answers it.
                let answer = mall.lists.get(&key).now_or_never()??;
                Some((answer.body.clone(), None))
            })
        }
        super::Route::Product(id) if crate::account::is_visitor(parts) => {
            let entry = state.mall.products.get(id)?;
            entry.visible_to(None).then(|| entry.body(false))
        }
        _ => None,
    }
}

/// `GET /api/mall/products?category_id=&q=&second_hand=&sort=&page=&size=`.
pub async fn list(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let answer = list_answer(state, parts.uri.query()).await?;
    Ok(respond::json(StatusCode::OK, answer.body.clone()))
}

/// A SKU as the detail shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SkuView {
    pub id: i64,
    pub specs: serde_json::Value,
    pub price: String,
    pub price_fen: i64,
    pub stock: i64,
    pub sales: i64,
}

/// A product's detail (without the viewer's `favorited`).
#[derive(Debug, Clone, Serialize)]
pub struct Detail {
    pub id: i64,
    pub category_id: i64,
    pub name: String,
    pub description: String,
    pub images: Vec<String>,
    pub second_hand: bool,
    pub listed: bool,
    pub merchant: Seller,
    pub skus: Vec<SkuView>,
    pub sales: i64,
    pub price: String,
    pub price_fen: i64,
    pub stock: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// A cached detail: the data and its JSON without the closing `}`.
#[derive(Debug)]
pub struct ProductEntry {
    pub detail: Detail,
    open_body: Bytes,
}

impl ProductEntry {
    /// The detail JSON for a viewer who has (or has not) favorited it.
    pub fn body(&self, favorited: bool) -> Bytes {
        let tail: &[u8] = if favorited {
            b",\"favorited\":true}"
        } else {
            b",\"favorited\":false}"
        };
        let mut out = BytesMut::with_capacity(self.open_body.len() + tail.len());
        out.extend_from_slice(&self.open_body);
        out.extend_from_slice(tail);
        out.freeze()
    }

    /// True when `viewer` may see it: listed, or its seller, or an admin.
    pub fn visible_to(&self, viewer: Option<&Principal>) -> bool {
        self.detail.listed || viewer.is_some_and(|v| v.user_id == self.detail.merchant.id || v.role == Role::Admin)
    }
}

const SELECT_DETAIL: &str = "SELECT p.id, p.category_id, p.name, p.description, p.images, p.second_hand, p.listed,
        p.merchant_id, u.display_name, p.sales, p.min_price_fen, p.created_at, p.updated_at,
        coalesce((SELECT json_agg(json_build_object('id', s.id, 'specs', s.specs, 'price_fen', s.price_fen,
                                                    'stock', s.stock, 'sales', s.sales) ORDER BY s.position, s.id)
                    FROM mall_skus s WHERE s.product_id = p.id AND s.active), '[]')
   FROM mall_products p JOIN users u ON u.id = p.merchant_id WHERE p.id = $1";

#[derive(serde::Deserialize)]
struct SkuRow {
    id: i64,
    specs: serde_json::Value,
    price_fen: i64,
    stock: i64,
    sales: i64,
}

/// Reads product `id` from the database.
pub async fn read_detail(
    client: &impl deadpool_postgres::GenericClient,
    id: i64,
) -> Result<Option<Detail>, StoreError> {
    let statement = client.prepare_cached(SELECT_DETAIL).await?;
    let Some(row) = client.query_opt(&statement, &[&id]).await? else {
        return Ok(None);
    };
    let skus: Vec<SkuRow> = serde_json::from_value(row.get(13)).unwrap_or_default();
    let skus: Vec<SkuView> = skus
        .into_iter()
        .map(|s| SkuView {
            id: s.id,
            specs: s.specs,
            price: format_yuan(s.price_fen),
            price_fen: s.price_fen,
            stock: s.stock,
            sales: s.sales,
        })
        .collect();
    Ok(Some(Detail {
        id: row.get(0),
        category_id: row.get(1),
        name: row.get(2),
        description: row.get(3),
        images: row.get(4),
        second_hand: row.get(5),
        listed: row.get(6),
        merchant: Seller {
            id: row.get(7),
            display_name: row.get(8),
        },
        stock: skus.iter().map(|s| s.stock).sum(),
        skus,
        sales: row.get(9),
        price: format_yuan(row.get(10)),
        price_fen: row.get(10),
        created_at: rfc3339(row.get(11)),
        updated_at: rfc3339(row.get(12)),
    }))
}

/// Product `id`'s cached detail, loading it on a miss; `None` when there is no such product.
pub async fn entry(state: &State, id: i64) -> Result<Option<Arc<ProductEntry>>, AppError> {
    if let Some(entry) = state.mall.products.get(id) {
        return Ok(Some(entry));
    }
    let began = state.mall.products.begin();
    let detail = crate::store::bounded(async {
        let client = state.store.client().await?;
        read_detail(&client, id).await
    })
    .await?;
    let Some(detail) = detail else { return Ok(None) };
    let mut body = serde_json::to_vec(&detail).map_err(|e| AppError::Internal(e.into()))?;
    body.pop(); // the closing brace: `favorited` goes there
    let entry = Arc::new(ProductEntry {
        detail,
        open_body: Bytes::from(body),
    });
    state.mall.products.keep(id, Arc::clone(&entry), began);
    Ok(Some(entry))
}

const IS_FAVORITE: &str = "SELECT EXISTS (SELECT 1 FROM mall_favorites WHERE user_id = $1 AND product_id = $2)";

/// Whether `user_id` favorited product `id`.
pub async fn is_favorite(state: &State, user_id: i64, id: i64) -> Result<bool, AppError> {
    crate::store::bounded(async {
        let client = state.store.client().await?;
        let statement = client.prepare_cached(IS_FAVORITE).await?;
        Ok::<bool, StoreError>(client.query_one(&statement, &[&user_id, &id]).await?.get(0))
    })
    .await
    .map_err(AppError::from)
}

/// `GET /api/mall/products/{id}`: the detail; an unlisted product is 404 but to its seller
/// and admins.
pub async fn detail(state: &State, parts: &Parts, id: i64) -> Result<Response, AppError> {
    // A stale session never stops a public read: it is then read signed out.
    let viewer = state.sessions.principal(&state.store, parts).await.ok().flatten();
    let entry = entry(state, id).await?.ok_or(AppError::NotFound)?;
    if !entry.visible_to(viewer.as_deref()) {
        return Err(AppError::NotFound);
    }
    let favorited = match &viewer {
        Some(v) => is_favorite(state, v.user_id, id).await?,
        None => false,
    };
    Ok(respond::json(StatusCode::OK, entry.body(favorited)))
}

/// `GET /api/merchant/products?page=&size=`: the signed-in seller's own products, listed or
/// not, newest first.
pub async fn seller_products(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    let paging = Paging::standard(parts.uri.query())?;
    let (items, total) = own_products(state, principal.user_id, paging).await?;
    super::json_answer(StatusCode::OK, &paging.listing(total, items))
}

/// A page of `seller`'s products and how many there are.
pub async fn own_products(state: &State, seller: i64, paging: Paging) -> Result<(Vec<ListItem>, i64), AppError> {
    let client = state.store.client().await?;
    let list_sql = format!(
        "SELECT {ITEM_COLUMNS} FROM mall_products p JOIN users u ON u.id = p.merchant_id
          WHERE p.merchant_id = $1 ORDER BY p.id DESC LIMIT $2 OFFSET $3"
    );
    let (list, count) = tokio::try_join!(
        client.prepare_cached(&list_sql),
        client.prepare_cached("SELECT count(*) FROM mall_products WHERE merchant_id = $1"),
    )
    .map_err(StoreError::from)?;
    let (limit, offset) = (paging.limit(), paging.offset());
    let list_params: [&(dyn ToSql + Sync); 3] = [&seller, &limit, &offset];
    let count_params: [&(dyn ToSql + Sync); 1] = [&seller];
    let (rows, total) = tokio::try_join!(
        client.query(&list, &list_params),
        client.query_one(&count, &count_params)
    )
    .map_err(StoreError::from)?;
    Ok((rows.iter().map(item).collect(), total.get(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_parameters_parse_or_answer_their_422() {
        let (key, q) = ListKey::parse(Some(
            "category_id=3&q=%E8%BF%9E%E8%A1%A3%E8%A3%99&second_hand=false&sort=sales&page=2&size=10",
        ))
        .unwrap();
        assert_eq!(key.category_id, Some(3));
        assert_eq!(key.q, "连衣裙");
        assert_eq!(q.unwrap().grams, ["连衣", "衣裙"]);
        assert_eq!(
            (key.second_hand, key.sort, key.page, key.size),
            (Some(false), Sort::Sales, 2, 10)
        );
        let (plain, q) = ListKey::parse(None).unwrap();
        assert_eq!((plain.sort, plain.page, plain.size, q), (Sort::Newest, 1, 20, None));
        let (blank, _) = ListKey::parse(Some("q=+&category_id=")).unwrap();
        assert_eq!((blank.q.as_str(), blank.category_id), ("", None));
        for (bad, code) in [
            ("sort=cheap", "invalid_sort"),
            ("second_hand=yes", "invalid_second_hand"),
            ("category_id=0", "invalid_category"),
            ("category_id=abc", "invalid_category"),
            ("size=101", "invalid_size"),
            ("page=0", "invalid_page"),
        ] {
            assert_eq!(ListKey::parse(Some(bad)).unwrap_err().code(), code, "{bad}");
        }
    }

    #[test]
    fn the_filters_given_make_the_statements() {
        let (key, q) = ListKey::parse(Some("q=red+%E8%A3%99&second_hand=true")).unwrap();
        let sql = list_sql(&key, Some(vec![1, 2]), &q);
        assert_eq!(
            sql.count,
            "SELECT count(*) FROM (SELECT * FROM mall_products WHERE search_grams @> $1::text[] OFFSET 0) p \
             WHERE p.listed AND strpos(p.search_text, $2) > 0 AND strpos(p.search_text, $3) > 0 \
             AND p.category_id = ANY($4) AND p.second_hand = $5"
        );
        assert!(
            sql.list.ends_with("ORDER BY p.id DESC LIMIT $6 OFFSET $7"),
            "{}",
            sql.list
        );
        assert_eq!(sql.params.len(), 7);
        let plain = list_sql(&ListKey::parse(None).unwrap().0, None, &None);
        assert_eq!(plain.count, "SELECT count(*) FROM mall_products p WHERE p.listed");
        assert_eq!(plain.params.len(), 2);
    }
}
