//! The admin pages: server-rendered over the same queries as the API. Forms that change
//! something post JSON to the API through `static/admin.js` (no inline script: the CSP
//! forbids it); searches are plain GET forms.

use askama::Template;
use http::StatusCode;

use super::categories::{self, AdminCategory};
use super::inspect::{self, AuditRow, CallbackRow, Report};
use super::payments::{self, Filters, PaymentDetail, PaymentRow};
use super::settings::{self, SettingsView};
use super::{Listing, Paging};
use crate::app::State;
use crate::error::AppError;
use crate::http::assets;
use crate::http::extract;
use crate::http::respond::{self, Response};

/// What every admin page links.
struct Chrome {
    admin_css: String,
    script: String,
}

impl Chrome {
    fn new() -> Chrome {
        Chrome {
            admin_css: assets::url("admin.css"),
            script: assets::url("admin.js"),
        }
    }
}

#[derive(Template)]
#[template(path = "admin_dashboard.html")]
struct DashboardPage {
    stylesheet: String,
    chrome: Chrome,
    report: Report,
}

#[derive(Template)]
#[template(path = "admin_categories.html")]
struct CategoriesPage {
    stylesheet: String,
    chrome: Chrome,
    items: Vec<AdminCategory>,
    ids: String,
}

#[derive(Template)]
#[template(path = "admin_settings.html")]
struct SettingsPage {
    stylesheet: String,
    chrome: Chrome,
    settings: SettingsView,
}

#[derive(Template)]
#[template(path = "admin_payments.html")]
struct PaymentsPage {
    stylesheet: String,
    chrome: Chrome,
    form: SearchForm,
    listing: Listing<PaymentRow>,
    csv_url: String,
    prev_url: Option<String>,
    next_url: Option<String>,
}

/// The search form's values, as given.
struct SearchForm {
    order_no: String,
    status: String,
    channel: String,
    from: String,
    to: String,
}

#[derive(Template)]
#[template(path = "admin_payment.html")]
struct PaymentPage {
    stylesheet: String,
    chrome: Chrome,
    detail: PaymentDetail,
    /// Event details as compact JSON text.
    event_details: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin_callbacks.html")]
struct CallbacksPage {
    stylesheet: String,
    chrome: Chrome,
    listing: Listing<CallbackRow>,
    order_no: String,
    accepted: String,
    prev_url: Option<String>,
    next_url: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_reconcile.html")]
struct ReconcilePage {
    stylesheet: String,
    chrome: Chrome,
    report: Report,
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
struct AuditPage {
    stylesheet: String,
    chrome: Chrome,
    listing: Listing<AuditRow>,
    /// (before, after) as compact JSON text, per row.
    changes: Vec<(String, String)>,
    prev_url: Option<String>,
    next_url: Option<String>,
}

fn html(page: &impl Template) -> Result<Response, AppError> {
    let body = page.render().map_err(|e| AppError::Internal(e.into()))?;
    Ok(respond::html(StatusCode::OK, body))
}

/// `path?…` with `page` replaced by `page`, keeping the other parameters.
fn page_url(path: &str, query: Option<&str>, page: u32) -> Result<String, AppError> {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in extract::pairs(query.unwrap_or("").as_bytes())? {
        if k != "page" {
            out.append_pair(&k, &v);
        }
    }
    out.append_pair("page", &page.to_string());
    Ok(format!("{path}?{}", out.finish()))
}

/// Links to the previous and next page of a listing, where there is one.
fn neighbours<T>(
    path: &str,
    query: Option<&str>,
    listing: &Listing<T>,
) -> Result<(Option<String>, Option<String>), AppError> {
    let prev = (listing.page > 1)
        .then(|| page_url(path, query, listing.page - 1))
        .transpose()?;
    let shown = i64::from(listing.page) * i64::from(listing.size);
    let next = (shown < listing.total)
        .then(|| page_url(path, query, listing.page + 1))
        .transpose()?;
    Ok((prev, next))
}

fn param(query: Option<&str>, name: &str) -> Result<String, AppError> {
    Ok(extract::query_param(query, name)?.unwrap_or_default())
}

fn compact(value: Option<&serde_json::Value>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// Renders the page at `path` (after `/admin/`).
pub async fn render(state: &State, path: &str, query: Option<&str>) -> Result<Response, AppError> {
    let chrome = Chrome::new();
    let segments: Vec<&str> = path.split('/').collect();
    match segments.as_slice() {
        [""] => html(&DashboardPage {
            stylesheet: assets::url("app.css"),
            chrome,
            report: inspect::report(state, None).await?,
        }),
        ["categories"] => {
            let client = state.store.client().await?;
            let items = categories::all(&client).await?;
            let ids = items.iter().map(|c| c.id.to_string()).collect::<Vec<_>>().join(", ");
            html(&CategoriesPage {
                stylesheet: assets::url("app.css"),
                chrome,
                items,
                ids,
            })
        }
        ["settings"] => html(&SettingsPage {
            stylesheet: assets::url("app.css"),
            chrome,
            settings: settings::current(state).await?,
        }),
        ["payments"] => {
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
            let (prev_url, next_url) = neighbours("/admin/payments", query, &listing)?;
            html(&PaymentsPage {
                stylesheet: assets::url("app.css"),
                chrome,
                form: SearchForm {
                    order_no: param(query, "order_no")?,
                    status: param(query, "status")?,
                    channel: param(query, "channel")?,
                    from: param(query, "from")?,
                    to: param(query, "to")?,
                },
                listing,
                csv_url: format!("/api/admin/payments.csv?{}", csv.finish()),
                prev_url,
                next_url,
            })
        }
        ["payments", order_no] => {
            let client = state.store.client().await?;
            let detail = payments::load(&client, order_no).await?.ok_or(AppError::NotFound)?;
            let event_details = detail.events.iter().map(|e| e.detail.to_string()).collect();
            html(&PaymentPage {
                stylesheet: assets::url("app.css"),
                chrome,
                detail,
                event_details,
            })
        }
        ["callbacks"] => {
            let listing = inspect::find_callbacks(state, query).await?;
            let (prev_url, next_url) = neighbours("/admin/callbacks", query, &listing)?;
            html(&CallbacksPage {
                stylesheet: assets::url("app.css"),
                chrome,
                listing,
                order_no: param(query, "order_no")?,
                accepted: param(query, "accepted")?,
                prev_url,
                next_url,
            })
        }
        ["reconcile"] => html(&ReconcilePage {
            stylesheet: assets::url("app.css"),
            chrome,
            report: inspect::report(state, query).await?,
        }),
        ["audit"] => {
            let listing = inspect::find_audit(state, query).await?;
            let changes = listing
                .items
                .iter()
                .map(|row| (compact(row.before.as_ref()), compact(row.after.as_ref())))
                .collect();
            let (prev_url, next_url) = neighbours("/admin/audit", query, &listing)?;
            html(&AuditPage {
                stylesheet: assets::url("app.css"),
                chrome,
                listing,
                changes,
                prev_url,
                next_url,
            })
        }
        _ => Err(AppError::NotFound),
    }
}
