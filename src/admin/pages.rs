//! The admin pages: server-rendered over the same queries as the API, in the site's layout
//! and language. Forms that change something post JSON to the API through `static/admin.js`
//! (no inline script: the CSP forbids it); searches are plain GET forms, so filters live in
//! the URL and survive paging. Codes are shown as words and ids as names.

use std::collections::HashMap;

use askama::Template;
use http::StatusCode;
use http::request::Parts;

use super::categories::{self, AdminCategory};
use super::dashboard::{self, Total};
use super::inspect::{self, AuditRow, CallbackRow, Report};
use super::payments::{self, Filters, PaymentDetail, PaymentRow};
use super::settings::{self, SettingsView};
use super::users::{self, UserRow};
use super::{Listing, Paging};
use crate::account::Principal;
use crate::app::State;
use crate::error::AppError;
use crate::http::assets;
use crate::http::extract;
use crate::http::respond::Response;
use crate::store::StoreError;
use crate::ui::{self, Catalog, Pager, Section, Ui};

/// A message of the catalog.
type Label = fn(&Catalog) -> &'static str;

/// The admin area's pages, in the sub-navigation's order: path after `/admin`, label.
const PAGES: &[(&str, Label)] = &[
    ("", |t| t.admin.dashboard),
    ("payments", |t| t.admin.payments),
    ("reconcile", |t| t.admin.reconcile),
    ("categories", |t| t.admin.categories),
    ("settings", |t| t.admin.settings),
    ("callbacks", |t| t.admin.callbacks),
    ("users", |t| t.admin.users),
    ("community", |t| t.community.admin_title),
    ("audit", |t| t.admin.audit),
    // The mall's admin pages (served by the mall module).
    ("mall", |t| t.mall.admin_mall),
    ("mall/categories", |t| t.mall.admin_categories),
    ("mall/coupons", |t| t.mall.admin_coupons),
];

/// A link of the admin sub-navigation.
#[derive(Debug)]
pub struct AdminLink {
    pub href: String,
    pub label: &'static str,
    pub current: bool,
}

/// What every admin page adds to the layout: its title, the sub-navigation, the form script.
#[derive(Debug)]
pub struct Chrome {
    pub title: &'static str,
    pub links: Vec<AdminLink>,
    pub script: String,
}

impl Chrome {
    /// The chrome of the page at `/admin/{current}` (other modules' admin pages use it too).
    pub fn new(t: &Catalog, current: &str) -> Chrome {
        let links = PAGES
            .iter()
            .map(|(path, label)| AdminLink {
                href: if path.is_empty() {
                    "/admin".to_string()
                } else {
                    format!("/admin/{path}")
                },
                label: label(t),
                current: *path == current,
            })
            .collect();
        let title = PAGES
            .iter()
            .find(|(path, _)| *path == current)
            .map_or(t.admin.payment, |(_, label)| label(t));
        Chrome {
            title,
            links,
            script: assets::url("admin.js"),
        }
    }
}

#[derive(Template)]
#[template(path = "admin_dashboard.html")]
struct DashboardPage {
    ui: Ui,
    admin: Chrome,
    report: Report,
    totals: Vec<Total>,
    per_day: String,
    per_channel: String,
    per_status: String,
}

#[derive(Template)]
#[template(path = "admin_categories.html")]
struct CategoriesPage {
    ui: Ui,
    admin: Chrome,
    items: Vec<AdminCategory>,
    ids: String,
}

#[derive(Template)]
#[template(path = "admin_settings.html")]
struct SettingsPage {
    ui: Ui,
    admin: Chrome,
    settings: SettingsView,
}

#[derive(Template)]
#[template(path = "admin_payments.html")]
struct PaymentsPage {
    ui: Ui,
    admin: Chrome,
    form: SearchForm,
    filtered: bool,
    status_chips: Vec<Chip>,
    listing: Listing<PaymentRow>,
    csv_url: String,
    pager: Pager,
}

/// The search form's values, as given.
struct SearchForm {
    order_no: String,
    status: String,
    channel: String,
    from: String,
    to: String,
}

/// A quick filter: a link that sets one parameter and keeps the others.
struct Chip {
    label: &'static str,
    href: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "admin_payment.html")]
struct PaymentPage {
    ui: Ui,
    admin: Chrome,
    detail: PaymentDetail,
    /// Event details as compact JSON text.
    event_details: Vec<String>,
    category_name: String,
    /// The signed-in donor's display name.
    user_name: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_callbacks.html")]
struct CallbacksPage {
    ui: Ui,
    admin: Chrome,
    listing: Listing<CallbackRow>,
    order_no: String,
    accepted: String,
    pager: Pager,
}

#[derive(Template)]
#[template(path = "admin_reconcile.html")]
struct ReconcilePage {
    ui: Ui,
    admin: Chrome,
    report: Report,
}

/// An audit row as shown: the target named, linked where it has a page.
struct AuditLine {
    created_at: String,
    actor: String,
    action: String,
    target_label: String,
    target_href: Option<String>,
    before: String,
    after: String,
    ip: String,
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
struct AuditPage {
    ui: Ui,
    admin: Chrome,
    listing: Listing<AuditRow>,
    rows: Vec<AuditLine>,
    pager: Pager,
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    ui: Ui,
    admin: Chrome,
    listing: Listing<UserRow>,
    /// The signed-in admin's id (their own row cannot be changed here).
    me: i64,
    pager: Pager,
}

fn param(query: Option<&str>, name: &str) -> Result<String, AppError> {
    Ok(extract::query_param(query, name)?.unwrap_or_default())
}

fn compact(value: Option<&serde_json::Value>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

fn pager<T>(path: &str, query: Option<&str>, listing: &Listing<T>) -> Result<Pager, AppError> {
    Pager::new(path, query, listing.page, listing.size, listing.total)
}

/// Renders the page at `path` (after `/admin/`) for `principal`; a failure is an error page.
pub async fn render(state: &State, path: &str, parts: &Parts, principal: &Principal) -> Response {
    let ui = Ui::for_principal(parts, Section::Admin, Some(principal));
    match render_page(state, path, parts, principal).await {
        Ok(response) => response,
        Err(err) => ui::error_page(ui, &err),
    }
}

async fn render_page(state: &State, path: &str, parts: &Parts, principal: &Principal) -> Result<Response, AppError> {
    let query = parts.uri.query();
    let ui = Ui::for_principal(parts, Section::Admin, Some(principal));
    let lang = ui.lang;
    let segments: Vec<&str> = path.split('/').collect();
    let current = match segments.as_slice() {
        ["payments", _] => "payments/",
        [page] => page,
        _ => return Err(AppError::NotFound),
    };
    let admin = Chrome::new(ui.t, current);
    match segments.as_slice() {
        [""] => {
            let client = state.store.client().await?;
            let figures = dashboard::figures(&client, &state.config.settings.rankings.timezone, &ui).await?;
            let page = DashboardPage {
                admin,
                report: inspect::report(state, None).await?,
                totals: figures.totals,
                per_day: figures.per_day,
                per_channel: figures.per_channel,
                per_status: figures.per_status,
                ui,
            };
            ui::page(lang, StatusCode::OK, &page)
        }
        ["categories"] => {
            let client = state.store.client().await?;
            let items = categories::all(&client).await?;
            let ids = items.iter().map(|c| c.id.to_string()).collect::<Vec<_>>().join(", ");
            ui::page(lang, StatusCode::OK, &CategoriesPage { ui, admin, items, ids })
        }
        ["settings"] => ui::page(
            lang,
            StatusCode::OK,
            &SettingsPage {
                ui,
                admin,
                settings: settings::current(state).await?,
            },
        ),
        ["payments"] => payments_page(state, query, ui, admin).await,
        ["payments", order_no] => payment_page(state, order_no, ui, admin).await,
        ["callbacks"] => {
            let listing = inspect::find_callbacks(state, query).await?;
            let page = CallbacksPage {
                pager: pager("/admin/callbacks", query, &listing)?,
                listing,
                order_no: param(query, "order_no")?,
                accepted: param(query, "accepted")?,
                ui,
                admin,
            };
            ui::page(lang, StatusCode::OK, &page)
        }
        ["reconcile"] => ui::page(
            lang,
            StatusCode::OK,
            &ReconcilePage {
                ui,
                admin,
                report: inspect::report(state, query).await?,
            },
        ),
        ["audit"] => audit_page(state, query, ui, admin).await,
        ["users"] => {
            let paging = Paging::parse(query, 50, 200)?;
            let listing = users::find(state, paging).await?;
            let page = UsersPage {
                pager: pager("/admin/users", query, &listing)?,
                listing,
                me: principal.user_id,
                ui,
                admin,
            };
            ui::page(lang, StatusCode::OK, &page)
        }
        _ => Err(AppError::NotFound),
    }
}

async fn payments_page(state: &State, query: Option<&str>, ui: Ui, admin: Chrome) -> Result<Response, AppError> {
    let filters = Filters::parse(query)?;
    let paging = Paging::parse(query, 50, 200)?;
    let listing = payments::find(state, &filters, paging).await?;
    let mut csv = form_urlencoded::Serializer::new(String::new());
    for name in ["order_no", "status", "channel", "from", "to"] {
        let value = param(query, name)?;
        if !value.is_empty() {
            csv.append_pair(name, &value);
        }
    }
    let form = SearchForm {
        order_no: param(query, "order_no")?,
        status: param(query, "status")?,
        channel: param(query, "channel")?,
        from: param(query, "from")?,
        to: param(query, "to")?,
    };
    let t = ui.t;
    let mut status_chips = Vec::new();
    for (status, label) in [
        ("", t.admin.all),
        ("pending", t.codes.status_pending),
        ("paid", t.codes.status_paid),
        ("closed", t.codes.status_closed),
        ("refunded", t.codes.status_refunded),
    ] {
        let mut href = form_urlencoded::Serializer::new(String::new());
        for (k, v) in extract::pairs(query.unwrap_or("").as_bytes())? {
            if k != "status" && k != "page" && !v.is_empty() {
                href.append_pair(&k, &v);
            }
        }
        if !status.is_empty() {
            href.append_pair("status", status);
        }
        let href = href.finish();
        status_chips.push(Chip {
            label,
            href: if href.is_empty() {
                "/admin/payments".to_string()
            } else {
                format!("/admin/payments?{href}")
            },
            current: form.status == status,
        });
    }
    let lang = ui.lang;
    let page = PaymentsPage {
        filtered: [&form.order_no, &form.status, &form.channel, &form.from, &form.to]
            .iter()
            .any(|v| !v.is_empty()),
        form,
        status_chips,
        pager: pager("/admin/payments", query, &listing)?,
        listing,
        csv_url: format!("/api/admin/payments.csv?{}", csv.finish()),
        ui,
        admin,
    };
    ui::page(lang, StatusCode::OK, &page)
}

async fn payment_page(state: &State, order_no: &str, ui: Ui, admin: Chrome) -> Result<Response, AppError> {
    let client = state.store.client().await?;
    let detail = payments::load(&client, order_no).await?.ok_or(AppError::NotFound)?;
    let event_details = detail.events.iter().map(|e| e.detail.to_string()).collect();
    let (mut category_name, mut user_name) = (String::new(), None);
    if let Some(d) = &detail.payment.donation {
        category_name = client
            .query_opt("SELECT name FROM categories WHERE id = $1", &[&d.category_id])
            .await
            .map_err(StoreError::from)?
            .map_or_else(|| format!("#{}", d.category_id), |r| r.get(0));
        if let Some(user_id) = d.user_id {
            user_name = client
                .query_opt("SELECT display_name FROM users WHERE id = $1", &[&user_id])
                .await
                .map_err(StoreError::from)?
                .map(|r| r.get(0));
        }
    }
    let lang = ui.lang;
    let page = PaymentPage {
        ui,
        admin,
        detail,
        event_details,
        category_name,
        user_name,
    };
    ui::page(lang, StatusCode::OK, &page)
}

async fn audit_page(state: &State, query: Option<&str>, ui: Ui, admin: Chrome) -> Result<Response, AppError> {
    let listing = inspect::find_audit(state, query).await?;
    let client = state.store.client().await?;
    let ids = |prefix: &str| -> Vec<i64> {
        listing
            .items
            .iter()
            .filter_map(|row| row.target.strip_prefix(prefix)?.parse().ok())
            .collect()
    };
    let names = |rows: Vec<tokio_postgres::Row>| -> HashMap<i64, String> {
        rows.iter().map(|r| (r.get(0), r.get(1))).collect()
    };
    let categories = names(
        client
            .query(
                "SELECT id, name FROM categories WHERE id = ANY($1)",
                &[&ids("category:")],
            )
            .await
            .map_err(StoreError::from)?,
    );
    let people = names(
        client
            .query(
                "SELECT id, display_name FROM users WHERE id = ANY($1)",
                &[&ids("user:")],
            )
            .await
            .map_err(StoreError::from)?,
    );
    let c = &ui.t.codes;
    let rows = listing
        .items
        .iter()
        .map(|row| {
            let (kind, id) = row.target.split_once(':').unwrap_or((row.target.as_str(), ""));
            let number = id.parse::<i64>().ok();
            let named = |word: &str, map: &HashMap<i64, String>| match number.and_then(|n| map.get(&n)) {
                Some(name) => format!("{word} #{id} {name}"),
                None => format!("{word} #{id}"),
            };
            let (target_label, target_href) = match kind {
                "category" => (
                    named(c.target_category, &categories),
                    Some("/admin/categories".to_string()),
                ),
                "user" => (named(c.target_user, &people), Some("/admin/users".to_string())),
                "payment" => (
                    format!("{} {id}", c.target_payment),
                    Some(format!("/admin/payments/{id}")),
                ),
                "settings" => (c.target_settings.to_string(), Some("/admin/settings".to_string())),
                "post" => (
                    format!("{} #{id}", c.target_post),
                    Some(format!("/community/posts/{id}")),
                ),
                "comment" => (
                    format!("{} #{id}", c.target_comment),
                    Some(format!("/community/comments/{id}")),
                ),
                "board" => (
                    format!("{} #{id}", c.target_board),
                    Some("/admin/community".to_string()),
                ),
                _ => (row.target.clone(), None),
            };
            AuditLine {
                created_at: row.created_at.clone(),
                actor: row.actor.clone(),
                action: row.action.clone(),
                target_label,
                target_href,
                before: compact(row.before.as_ref()),
                after: compact(row.after.as_ref()),
                ip: row.ip.clone(),
            }
        })
        .collect();
    let lang = ui.lang;
    let page = AuditPage {
        pager: pager("/admin/audit", query, &listing)?,
        listing,
        rows,
        ui,
        admin,
    };
    ui::page(lang, StatusCode::OK, &page)
}
