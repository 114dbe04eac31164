//! The seller's pages: `/merchant` (orders to ship, refund requests, the seller's products and
//! recent orders) and the product form (`/merchant/products/new`, `/merchant/products/{id}`).
//! Any signed-in user sells second-hand here; new goods need the merchant role.

use askama::Template;
use http::StatusCode;
use http::request::Parts;

use super::catalog::ListItem;
use super::orders::{self, OrderView, Party};
use super::pages::signed_in;
use crate::account::Role;
use crate::app::State;
use crate::error::AppError;
use crate::http::assets;
use crate::http::extract;
use crate::http::list::Paging;
use crate::http::respond::Response;
use crate::ui::{self, Section, Ui};

#[derive(Template)]
#[template(path = "mall_seller.html")]
struct SellerPage {
    ui: Ui,
    here: &'static str,
    script: String,
    is_merchant: bool,
    to_ship: Vec<OrderView>,
    to_ship_total: i64,
    refunds: Vec<OrderView>,
    refunds_total: i64,
    products: Vec<ListItem>,
    products_total: i64,
    recent: Vec<OrderView>,
}

/// `GET /merchant`.
pub async fn seller(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let principal = match signed_in(state, parts).await {
        Ok(p) => p,
        Err(redirect) => return Ok(redirect),
    };
    let user = principal.user_id;
    let fifty = Paging { page: 1, size: 50 };
    let (to_ship, to_ship_total) = orders::page(state, user, Party::Seller, Some("paid"), fifty).await?;
    let (refunds, refunds_total) = orders::page(state, user, Party::Seller, Some("refunding"), fifty).await?;
    let (products, products_total) = super::catalog::own_products(state, user, Paging { page: 1, size: 100 }).await?;
    let (recent, _) = orders::page(state, user, Party::Seller, None, Paging { page: 1, size: 20 }).await?;
    let section = if principal.role.allows(Role::Merchant) {
        Section::Seller
    } else {
        Section::Mall
    };
    let page = SellerPage {
        ui: Ui::for_principal(parts, section, Some(&principal)),
        here: "seller",
        script: assets::url("mall.js"),
        is_merchant: principal.role.allows(Role::Merchant),
        to_ship,
        to_ship_total,
        refunds,
        refunds_total,
        products,
        products_total,
        recent,
    };
    ui::page(page.ui.lang, StatusCode::OK, &page)
}

/// A category to pick, indented by depth.
pub struct CategoryOption {
    pub id: i64,
    pub label: String,
    pub selected: bool,
}

/// A SKU row of the form.
pub struct SkuField {
    pub specs: String,
    pub price: String,
    pub stock: i64,
}

/// The form's values.
pub struct FormValues {
    pub name: String,
    pub description: String,
    pub images: Vec<String>,
    pub second_hand: bool,
    pub listed: bool,
    pub skus: Vec<SkuField>,
}

#[derive(Template)]
#[template(path = "mall_product_form.html")]
struct FormPage {
    ui: Ui,
    here: &'static str,
    script: String,
    heading: &'static str,
    api: String,
    method: &'static str,
    categories: Vec<CategoryOption>,
    form: FormValues,
    may_sell_new: bool,
}

/// Specs as the form writes them: `颜色:红, 尺码:M`.
fn specs_field(specs: &serde_json::Value) -> String {
    specs
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| format!("{k}:{}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// `GET /merchant/products/new[?second_hand=true]` or `/merchant/products/{id}`.
pub async fn product_form(state: &State, parts: &Parts, id: Option<i64>) -> Result<Response, AppError> {
    let principal = match signed_in(state, parts).await {
        Ok(p) => p,
        Err(redirect) => return Ok(redirect),
    };
    let ui = Ui::for_principal(parts, Section::Mall, Some(&principal));
    let may_sell_new = principal.role.allows(Role::Merchant);
    let (form, category, api, method, heading) = match id {
        None => {
            let second_hand =
                !may_sell_new || extract::query_param(parts.uri.query(), "second_hand")?.as_deref() == Some("true");
            let form = FormValues {
                name: String::new(),
                description: String::new(),
                images: Vec::new(),
                second_hand,
                listed: true,
                skus: vec![SkuField {
                    specs: String::new(),
                    price: String::new(),
                    stock: 1,
                }],
            };
            let heading = if second_hand {
                ui.t.mall.sell
            } else {
                ui.t.mall.new_product
            };
            (form, None, "/api/mall/products".to_string(), "POST", heading)
        }
        Some(id) => {
            let entry = super::catalog::entry(state, id).await?;
            let Some(entry) =
                entry.filter(|e| e.detail.merchant.id == principal.user_id || principal.role == Role::Admin)
            else {
                return Ok(ui::error_page(ui, &AppError::NotFound));
            };
            let d = &entry.detail;
            let form = FormValues {
                name: d.name.clone(),
                description: d.description.clone(),
                images: d.images.clone(),
                second_hand: d.second_hand,
                listed: d.listed,
                skus: d
                    .skus
                    .iter()
                    .map(|s| SkuField {
                        specs: specs_field(&s.specs),
                        price: s.price.clone(),
                        stock: s.stock,
                    })
                    .collect(),
            };
            (
                form,
                Some(d.category_id),
                format!("/api/mall/products/{id}"),
                "PATCH",
                ui.t.mall.edit_product,
            )
        }
    };
    let tree = super::categories::tree(state).await?;
    let categories = tree
        .flat
        .iter()
        .map(|(id, name, depth)| CategoryOption {
            id: *id,
            label: format!("{}{name}", "— ".repeat(*depth)),
            selected: category == Some(*id),
        })
        .collect();
    let page = FormPage {
        here: "seller",
        script: assets::url("mall.js"),
        heading,
        api,
        method,
        categories,
        form,
        may_sell_new,
        ui,
    };
    ui::page(page.ui.lang, StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_written_as_the_form_reads_them() {
        assert_eq!(specs_field(&serde_json::json!({"a": "1", "b": "2"})), "a:1, b:2");
        assert_eq!(specs_field(&serde_json::json!({})), "");
    }
}
