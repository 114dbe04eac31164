//! The mall's pages in the admin area, in its frame (`admin::Chrome`): `/admin/mall` (sales
//! charts), `/admin/mall/categories` (the tree: add, rename, move, delete) and
//! `/admin/mall/coupons` (coupons and a form for a new one). Forms post JSON to the API
//! through `static/admin.js`, like the other admin pages.

use askama::Template;
use http::StatusCode;
use http::request::Parts;

use super::AdminPage;
use super::categories::AdminRow;
use super::coupons::AdminCoupon;
use super::dashboard::Total;
use crate::account::Role;
use crate::admin::Chrome;
use crate::app::State;
use crate::error::AppError;
use crate::http::list::Paging;
use crate::http::respond::{self, Response};
use crate::pay::rfc3339;
use crate::ui::{self, Pager, Section, Ui};

#[derive(Template)]
#[template(path = "mall_admin_dashboard.html")]
struct DashboardPage {
    ui: Ui,
    admin: Chrome,
    totals: Vec<Total>,
    per_day: String,
    per_merchant: String,
    per_status: String,
}

/// A category to pick as a parent, indented by depth.
pub struct ParentOption {
    pub id: i64,
    pub label: String,
}

#[derive(Template)]
#[template(path = "mall_admin_categories.html")]
struct CategoriesPage {
    ui: Ui,
    admin: Chrome,
    rows: Vec<AdminRow>,
    parents: Vec<ParentOption>,
}

#[derive(Template)]
#[template(path = "mall_admin_coupons.html")]
struct CouponsPage {
    ui: Ui,
    admin: Chrome,
    items: Vec<AdminCoupon>,
    pager: Pager,
    default_from: String,
    default_to: String,
}

/// `GET /admin/mall…`: admins only; a browser without a session signs in first.
pub async fn page(state: &State, parts: &Parts, page: AdminPage) -> Result<Response, AppError> {
    let principal = match state.sessions.require(&state.store, parts, Role::Admin).await {
        Ok(principal) => principal,
        Err(AppError::Unauthorized) => return Ok(respond::see_other(&super::pages::login_href(parts))),
        Err(err @ AppError::Forbidden) => {
            let ui = Ui::new(state, parts, Section::Admin).await;
            return Ok(ui::error_page(ui, &err));
        }
        Err(other) => return Err(other),
    };
    let ui = Ui::for_principal(parts, Section::Admin, Some(&principal));
    match page {
        AdminPage::Dashboard => {
            let client = state.store.client().await?;
            let figures = super::dashboard::figures(&client, &state.config.settings.rankings.timezone, &ui).await?;
            let page = DashboardPage {
                admin: Chrome::new(ui.t, "mall"),
                totals: figures.totals,
                per_day: figures.per_day,
                per_merchant: figures.per_merchant,
                per_status: figures.per_status,
                ui,
            };
            ui::page(page.ui.lang, StatusCode::OK, &page)
        }
        AdminPage::Categories => {
            let rows = super::categories::admin_rows(state).await?;
            let parents = rows
                .iter()
                .map(|r| ParentOption {
                    id: r.id,
                    label: format!("{}{}", "— ".repeat(r.depth), r.name),
                })
                .collect();
            let page = CategoriesPage {
                admin: Chrome::new(ui.t, "mall/categories"),
                rows,
                parents,
                ui,
            };
            ui::page(page.ui.lang, StatusCode::OK, &page)
        }
        AdminPage::Coupons => {
            let query = parts.uri.query();
            let paging = Paging::parse(query, 50, 100)?;
            let (items, total) = super::coupons::all(state, paging).await?;
            let now = time::OffsetDateTime::now_utc();
            let now = now.replace_second(0).unwrap_or(now);
            let page = CouponsPage {
                admin: Chrome::new(ui.t, "mall/coupons"),
                items,
                pager: Pager::new("/admin/mall/coupons", query, paging.page, paging.size, total)?,
                default_from: rfc3339(now),
                default_to: rfc3339(now + time::Duration::days(30)),
                ui,
            };
            ui::page(page.ui.lang, StatusCode::OK, &page)
        }
    }
}
