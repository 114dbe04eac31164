//! The buyer's pages: `/mall` (categories, search, the product grid), a product (with its
//! SKU picker), the cart, checkout, my orders and one order, coupons and favorites. They read
//! through the same functions as the API (the grid from the cached list answers); what they
//! change goes to the API through `static/mall.js`. Pages that need a user send a browser
//! without a session to sign in first.

use std::collections::BTreeSet;

use askama::Template;
use http::StatusCode;
use http::request::Parts;
use serde::Serialize;

use super::cart::{Cart, Line};
use super::catalog::{Detail, ListItem, Sort};
use super::coupons::{ClaimedCopy, Offer};
use super::orders::{self, OrderView, Party, Step};
use super::pricing;
use crate::account::{Principal, Role};
use crate::app::State;
use crate::error::AppError;
use crate::http::assets;
use crate::http::extract;
use crate::http::list::Paging;
use crate::http::respond::{self, Response};
use crate::ui::{self, Pager, Section, Ui};

/// A link that sets a filter.
pub struct Chip {
    pub label: String,
    pub href: String,
    pub current: bool,
}

/// An option of a `<select>`.
pub struct Choice {
    pub value: &'static str,
    pub label: &'static str,
    pub current: bool,
}

fn script() -> String {
    assets::url("mall.js")
}

/// The signed-in user, or the answer that sends the browser to sign in first.
pub async fn signed_in(state: &State, parts: &Parts) -> Result<std::sync::Arc<Principal>, Response> {
    match state.sessions.principal(&state.store, parts).await {
        Ok(Some(principal)) => Ok(principal),
        _ => Err(respond::see_other(&login_href(parts))),
    }
}

/// `/login?next=<this page>`.
pub fn login_href(parts: &Parts) -> String {
    let here = parts.uri.path_and_query().map_or("/mall", |p| p.as_str());
    let next: String = form_urlencoded::byte_serialize(here.as_bytes()).collect();
    format!("/login?next={next}")
}

#[derive(Template)]
#[template(path = "mall_index.html")]
struct IndexPage {
    ui: Ui,
    here: &'static str,
    script: String,
    q: String,
    category_id: Option<i64>,
    second_hand: String,
    sorts: Vec<Choice>,
    category_chips: Vec<Chip>,
    condition_chips: Vec<Chip>,
    items: Vec<ListItem>,
    total: i64,
    pager: Pager,
}

/// `/mall?…` with the given filters (empty ones left out).
fn mall_link(category: Option<i64>, q: &str, second_hand: &str, sort: Sort) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    if let Some(c) = category {
        out.append_pair("category_id", &c.to_string());
    }
    if !q.is_empty() {
        out.append_pair("q", q);
    }
    if !second_hand.is_empty() {
        out.append_pair("second_hand", second_hand);
    }
    if sort != Sort::Newest {
        out.append_pair("sort", sort.as_str());
    }
    let query = out.finish();
    if query.is_empty() {
        "/mall".to_string()
    } else {
        format!("/mall?{query}")
    }
}

/// `GET /mall`.
pub async fn mall(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let ui = Ui::new(state, parts, Section::Mall).await;
    let query = parts.uri.query();
    let answer = match super::catalog::list_answer(state, query).await {
        Ok(answer) => answer,
        Err(err @ AppError::Invalid { .. }) => return Ok(ui::error_page(ui, &err)),
        Err(err) => return Err(err),
    };
    let (key, _) = super::catalog::ListKey::parse(query)?;
    let q = extract::query_param(query, "q")?.unwrap_or_default();
    let second_hand = match key.second_hand {
        Some(true) => "true",
        Some(false) => "false",
        None => "",
    };
    let tree = super::categories::tree(state).await?;
    let m = &ui.t.mall;
    let mut category_chips = vec![Chip {
        label: m.all_categories.to_string(),
        href: mall_link(None, &q, second_hand, key.sort),
        current: key.category_id.is_none(),
    }];
    // The top level, and the children of the current category's branch.
    let current_branch: Vec<i64> = key
        .category_id
        .map(|c| {
            tree.flat
                .iter()
                .filter(|(id, ..)| tree.with_descendants(*id).is_some_and(|d| d.contains(&c)))
                .map(|(id, ..)| *id)
                .collect()
        })
        .unwrap_or_default();
    for root in &tree.roots {
        category_chips.push(Chip {
            label: root.name.clone(),
            href: mall_link(Some(root.id), &q, second_hand, key.sort),
            current: key.category_id == Some(root.id),
        });
    }
    let mut level = tree.roots.iter().find(|r| current_branch.contains(&r.id));
    while let Some(node) = level {
        for child in &node.children {
            category_chips.push(Chip {
                label: format!("· {}", child.name),
                href: mall_link(Some(child.id), &q, second_hand, key.sort),
                current: key.category_id == Some(child.id),
            });
        }
        level = node.children.iter().find(|c| current_branch.contains(&c.id));
    }
    let condition_chips = [
        ("", m.condition_all),
        ("false", m.condition_new),
        ("true", m.condition_second_hand),
    ]
    .into_iter()
    .map(|(value, label)| Chip {
        label: label.to_string(),
        href: mall_link(key.category_id, &q, value, key.sort),
        current: second_hand == value,
    })
    .collect();
    let sorts = [
        (Sort::Newest, m.sort_newest),
        (Sort::PriceAsc, m.sort_price_asc),
        (Sort::PriceDesc, m.sort_price_desc),
        (Sort::Sales, m.sort_sales),
    ]
    .into_iter()
    .map(|(sort, label)| Choice {
        value: sort.as_str(),
        label,
        current: sort == key.sort,
    })
    .collect();
    let pager = Pager::new("/mall", query, answer.paging.page, answer.paging.size, answer.total)?;
    let page = IndexPage {
        here: "mall",
        script: script(),
        q,
        category_id: key.category_id,
        second_hand: second_hand.to_string(),
        sorts,
        category_chips,
        condition_chips,
        items: answer.items.clone(),
        total: answer.total,
        pager,
        ui,
    };
    ui::page(page.ui.lang, StatusCode::OK, &page)
}

/// A spec dimension of a product: its name and the values its SKUs have.
pub struct Dimension {
    pub index: usize,
    pub key: String,
    pub values: Vec<String>,
}

/// A row of the product's SKU table.
pub struct SkuRow {
    pub id: i64,
    pub specs: String,
    pub price: String,
    pub stock: i64,
}

#[derive(Template)]
#[template(path = "mall_product.html")]
struct ProductPage {
    ui: Ui,
    here: &'static str,
    script: String,
    product: Detail,
    price_range: String,
    skus_json: String,
    dimensions: Vec<Dimension>,
    single_sku: Option<i64>,
    sku_rows: Vec<SkuRow>,
    favorited: bool,
    signed_in: bool,
    login_href: String,
    can_edit: bool,
}

#[derive(Serialize)]
struct PickerSku<'a> {
    id: i64,
    specs: &'a serde_json::Value,
    price: &'a str,
    stock: i64,
}

/// `GET /mall/products/{id}`.
pub async fn product(state: &State, parts: &Parts, id: i64) -> Result<Response, AppError> {
    let viewer = state.sessions.principal(&state.store, parts).await.ok().flatten();
    let ui = Ui::for_principal(parts, Section::Mall, viewer.as_deref());
    let entry = match super::catalog::entry(state, id).await? {
        Some(entry) if entry.visible_to(viewer.as_deref()) => entry,
        _ => return Ok(ui::error_page(ui, &AppError::NotFound)),
    };
    let favorited = match &viewer {
        Some(v) => super::catalog::is_favorite(state, v.user_id, id).await?,
        None => false,
    };
    let product = entry.detail.clone();
    let low = product
        .skus
        .iter()
        .map(|s| s.price_fen)
        .min()
        .unwrap_or(product.price_fen);
    let high = product.skus.iter().map(|s| s.price_fen).max().unwrap_or(low);
    let price_range = if low == high {
        crate::pay::money::format_yuan(low)
    } else {
        format!(
            "{} – {}",
            crate::pay::money::format_yuan(low),
            crate::pay::money::format_yuan(high)
        )
    };
    let mut keys: BTreeSet<String> = BTreeSet::new();
    for sku in &product.skus {
        if let Some(specs) = sku.specs.as_object() {
            keys.extend(specs.keys().cloned());
        }
    }
    let dimensions = keys
        .into_iter()
        .enumerate()
        .map(|(index, key)| {
            let mut values: Vec<String> = Vec::new();
            for sku in &product.skus {
                if let Some(v) = sku.specs.get(&key).and_then(|v| v.as_str())
                    && !values.iter().any(|x| x == v)
                {
                    values.push(v.to_string());
                }
            }
            Dimension { index, key, values }
        })
        .collect();
    let picker: Vec<PickerSku<'_>> = product
        .skus
        .iter()
        .map(|s| PickerSku {
            id: s.id,
            specs: &s.specs,
            price: &s.price,
            stock: s.stock,
        })
        .collect();
    let skus_json = serde_json::to_string(&picker).map_err(|e| AppError::Internal(e.into()))?;
    let sku_rows = product
        .skus
        .iter()
        .map(|s| SkuRow {
            id: s.id,
            specs: super::labels::specs_text(&s.specs),
            price: s.price.clone(),
            stock: s.stock,
        })
        .collect();
    let can_edit = viewer
        .as_deref()
        .is_some_and(|v| v.user_id == product.merchant.id || v.role == Role::Admin);
    let page = ProductPage {
        here: "mall",
        script: script(),
        single_sku: (product.skus.len() == 1).then(|| product.skus[0].id),
        price_range,
        skus_json,
        dimensions,
        sku_rows,
        favorited,
        signed_in: viewer.is_some(),
        login_href: login_href(parts),
        can_edit,
        product,
        ui,
    };
    ui::page(page.ui.lang, StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "mall_cart.html")]
struct CartPage {
    ui: Ui,
    here: &'static str,
    script: String,
    cart: Cart,
}

/// `GET /mall/cart`.
pub async fn cart(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let principal = match signed_in(state, parts).await {
        Ok(p) => p,
        Err(redirect) => return Ok(redirect),
    };
    let cart = super::cart::load(state, principal.user_id).await?;
    let page = CartPage {
        ui: Ui::for_principal(parts, Section::Mall, Some(&principal)),
        here: "cart",
        script: script(),
        cart,
    };
    ui::page(page.ui.lang, StatusCode::OK, &page)
}

/// An address to pick at checkout.
pub struct AddressOption {
    pub id: i64,
    pub name: String,
    pub phone: String,
    pub region: String,
    pub detail: String,
    pub is_default: bool,
}

/// A coupon copy to pick at checkout, with what it takes off this order.
pub struct CouponOption {
    pub id: i64,
    pub label: String,
    pub discount: String,
    pub discount_fen: i64,
}

#[derive(Template)]
#[template(path = "mall_checkout.html")]
struct CheckoutPage {
    ui: Ui,
    here: &'static str,
    script: String,
    merchant_name: String,
    lines: Vec<Line>,
    addresses: Vec<AddressOption>,
    coupons: Vec<CouponOption>,
    channels: Vec<&'static str>,
    items_json: String,
    total: String,
    total_fen: i64,
}

/// What to check out: `?merchant=ID` (that seller's available cart lines) or
/// `?sku=ID&quantity=N` (buy now).
async fn checkout_lines(state: &State, user: i64, query: Option<&str>) -> Result<(String, Vec<Line>), AppError> {
    let param = |name| extract::query_param(query, name).map(|v| v.and_then(|v| crate::http::route::path_id(&v)));
    if let Some(sku) = param("sku")? {
        let quantity = param("quantity")?.unwrap_or(1).min(super::cart::MAX_QUANTITY);
        let client = state.store.client().await?;
        let row = client
            .query_opt(
                "SELECT s.product_id, p.name, s.specs, p.images[1], s.price_fen, s.stock, u.display_name
                   FROM mall_skus s JOIN mall_products p ON p.id = s.product_id JOIN users u ON u.id = p.merchant_id
                  WHERE s.id = $1 AND s.active AND p.listed AND p.merchant_id <> $2",
                &[&sku, &user],
            )
            .await
            .map_err(crate::store::StoreError::from)?;
        let Some(row) = row else {
            return Ok((String::new(), Vec::new()));
        };
        let image: Option<String> = row.get(3);
        let price_fen: i64 = row.get(4);
        let stock: i64 = row.get(5);
        let line = Line {
            sku_id: sku,
            product_id: row.get(0),
            name: row.get(1),
            specs: row.get(2),
            thumb_url: image.as_deref().map(crate::media::thumb_url),
            image,
            price: crate::pay::money::format_yuan(price_fen),
            price_fen,
            quantity,
            stock,
            available: stock >= quantity,
            subtotal: crate::pay::money::format_yuan(price_fen * quantity),
            subtotal_fen: price_fen * quantity,
        };
        return Ok((row.get(6), vec![line]));
    }
    let Some(merchant) = param("merchant")? else {
        return Ok((String::new(), Vec::new()));
    };
    let cart = super::cart::load(state, user).await?;
    Ok(cart
        .groups
        .into_iter()
        .find(|g| g.merchant.id == merchant)
        .map(|g| {
            let lines = g.items.into_iter().filter(|l| l.available).collect();
            (g.merchant.display_name, lines)
        })
        .unwrap_or_default())
}

/// `GET /mall/checkout?merchant=ID` or `?sku=ID&quantity=N`.
pub async fn checkout(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let principal = match signed_in(state, parts).await {
        Ok(p) => p,
        Err(redirect) => return Ok(redirect),
    };
    let ui = Ui::for_principal(parts, Section::Mall, Some(&principal));
    let (merchant_name, lines) = checkout_lines(state, principal.user_id, parts.uri.query()).await?;
    let priced: Vec<(i64, i64)> = lines.iter().map(|l| (l.price_fen, l.quantity)).collect();
    let total_fen = pricing::total(&priced).unwrap_or(0);
    let client = state.store.client().await?;
    let addresses = crate::account::addresses::book(&client, principal.user_id)
        .await
        .map_err(crate::store::StoreError::from)?
        .into_iter()
        .map(|e| AddressOption {
            id: e.id,
            name: e.address.name,
            phone: e.address.phone,
            region: e.address.region,
            detail: e.address.detail,
            is_default: e.is_default,
        })
        .collect();
    drop(client);
    let (copies, _) = super::coupons::my_copies(state, principal.user_id, None, Paging { page: 1, size: 100 }).await?;
    let now = time::OffsetDateTime::now_utc();
    let coupons = copies
        .into_iter()
        .filter(|c| c.status == "unused" && starts_by(&c.coupon.valid_from, now))
        .filter_map(|c| {
            let discount_fen = pricing::discount(&c.coupon.terms(), total_fen).ok()?;
            Some(CouponOption {
                id: c.id,
                label: format!("{} · {}", c.coupon.name, ui.coupon_off(&c.coupon)),
                discount: crate::pay::money::format_yuan(discount_fen),
                discount_fen,
            })
        })
        .collect();
    let policy = state.engine.policy.current();
    let channels = [
        crate::pay::provider::Channel::Wechat,
        crate::pay::provider::Channel::Alipay,
    ]
    .into_iter()
    .filter(|c| policy.accepts(*c))
    .map(|c| c.as_str())
    .collect();
    let items: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::json!({"sku_id": l.sku_id, "quantity": l.quantity}))
        .collect();
    let page = CheckoutPage {
        here: "cart",
        script: script(),
        merchant_name,
        lines,
        addresses,
        coupons,
        channels,
        items_json: serde_json::Value::Array(items).to_string(),
        total: crate::pay::money::format_yuan(total_fen),
        total_fen,
        ui,
    };
    ui::page(page.ui.lang, StatusCode::OK, &page)
}

/// True when an RFC 3339 time is not after `now`.
fn starts_by(rfc3339: &str, now: time::OffsetDateTime) -> bool {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339).is_ok_and(|t| t <= now)
}

#[derive(Template)]
#[template(path = "mall_orders.html")]
struct OrdersPage {
    ui: Ui,
    here: &'static str,
    script: String,
    chips: Vec<Chip>,
    orders: Vec<OrderView>,
    pager: Pager,
}

/// `GET /mall/orders?status=`.
pub async fn orders(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let principal = match signed_in(state, parts).await {
        Ok(p) => p,
        Err(redirect) => return Ok(redirect),
    };
    let ui = Ui::for_principal(parts, Section::Mall, Some(&principal));
    let query = parts.uri.query();
    let status = match orders::status_param(query) {
        Ok(s) => s,
        Err(err) => return Ok(ui::error_page(ui, &err)),
    };
    let paging = Paging::standard(query)?;
    let (list, total) = orders::page(state, principal.user_id, Party::Buyer, status.as_deref(), paging).await?;
    let mut chips = vec![Chip {
        label: ui.t.mall.all.to_string(),
        href: "/mall/orders".into(),
        current: status.is_none(),
    }];
    for code in orders::STATUSES {
        chips.push(Chip {
            label: ui.order_status(*code).to_string(),
            href: format!("/mall/orders?status={code}"),
            current: status.as_deref() == Some(code),
        });
    }
    let page = OrdersPage {
        here: "orders",
        script: script(),
        chips,
        orders: list,
        pager: Pager::new("/mall/orders", query, paging.page, paging.size, total)?,
        ui,
    };
    ui::page(page.ui.lang, StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "mall_order.html")]
struct OrderPage {
    ui: Ui,
    here: &'static str,
    script: String,
    order: OrderView,
    as_buyer: bool,
    as_seller: bool,
    address_text: String,
    steps: Vec<Step>,
}

/// `GET /mall/orders/{order_no}`: for its buyer, its seller and admins.
pub async fn order(state: &State, parts: &Parts, order_no: &str) -> Result<Response, AppError> {
    let principal = match signed_in(state, parts).await {
        Ok(p) => p,
        Err(redirect) => return Ok(redirect),
    };
    let ui = Ui::for_principal(parts, Section::Mall, Some(&principal));
    let mut order = match orders::visible(state, &principal, order_no).await {
        Ok(order) => order,
        Err(err) => return Ok(ui::error_page(ui, &err)),
    };
    let a = &order.address;
    let field = |k: &str| a.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let address_text = format!(
        "{} {} · {} {}",
        field("name"),
        field("phone"),
        field("region"),
        field("detail")
    );
    let steps = order.timeline.take().unwrap_or_default();
    let page = OrderPage {
        here: "orders",
        script: script(),
        as_buyer: order.buyer.id == principal.user_id,
        as_seller: order.merchant.id == principal.user_id,
        address_text,
        steps,
        order,
        ui,
    };
    ui::page(page.ui.lang, StatusCode::OK, &page)
}

/// A coupon on offer, and whether this user may claim one more.
pub struct OfferRow {
    pub coupon: super::coupons::Coupon,
    pub claimed_by_me: i64,
    pub can_claim: bool,
}

#[derive(Template)]
#[template(path = "mall_coupons.html")]
struct CouponsPage {
    ui: Ui,
    here: &'static str,
    script: String,
    offers: Vec<OfferRow>,
    copies: Vec<ClaimedCopy>,
    signed_in: bool,
    login_href: String,
}

/// `GET /mall/coupons`: coupons to claim, and the signed-in user's own.
pub async fn coupons(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let viewer = state.sessions.principal(&state.store, parts).await.ok().flatten();
    let ui = Ui::for_principal(parts, Section::Mall, viewer.as_deref());
    let user = viewer.as_ref().map(|v| v.user_id);
    let (offers, _) = super::coupons::offers(state, user, Paging { page: 1, size: 100 }).await?;
    let copies = match user {
        Some(user) => {
            super::coupons::my_copies(state, user, None, Paging { page: 1, size: 100 })
                .await?
                .0
        }
        None => Vec::new(),
    };
    let offers = offers
        .into_iter()
        .map(|Offer { coupon, claimed_by_me }| OfferRow {
            can_claim: coupon.remaining > 0 && claimed_by_me < i64::from(coupon.per_user),
            coupon,
            claimed_by_me,
        })
        .collect();
    let page = CouponsPage {
        here: "coupons",
        script: script(),
        offers,
        copies,
        signed_in: viewer.is_some(),
        login_href: login_href(parts),
        ui,
    };
    ui::page(page.ui.lang, StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "mall_favorites.html")]
struct FavoritesPage {
    ui: Ui,
    here: &'static str,
    items: Vec<ListItem>,
    pager: Pager,
}

/// `GET /mall/favorites`.
pub async fn favorites(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let principal = match signed_in(state, parts).await {
        Ok(p) => p,
        Err(redirect) => return Ok(redirect),
    };
    let query = parts.uri.query();
    let paging = Paging::standard(query)?;
    let (items, total) = super::favorites::page(state, principal.user_id, paging).await?;
    let page = FavoritesPage {
        ui: Ui::for_principal(parts, Section::Mall, Some(&principal)),
        here: "favorites",
        items,
        pager: Pager::new("/mall/favorites", query, paging.page, paging.size, total)?,
    };
    ui::page(page.ui.lang, StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mall_links_keep_only_the_filters_given() {
        assert_eq!(mall_link(None, "", "", Sort::Newest), "/mall");
        assert_eq!(
            mall_link(Some(3), "红 裙", "true", Sort::Sales),
            "/mall?category_id=3&q=%E7%BA%A2+%E8%A3%99&second_hand=true&sort=sales"
        );
    }
}
