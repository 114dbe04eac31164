//! `/admin/community`: the report queue (hide, unhide, dismiss) and the boards (add, rename,
//! reorder), in the admin area's layout; its forms post to the API through `static/admin.js`.

use askama::Template;
use http::StatusCode;
use http::request::Parts;
use serde_json::Value;

use super::admin::queue;
use super::boards::{self, Board};
use crate::account::Role;
use crate::admin::pages::Chrome;
use crate::app::State;
use crate::error::AppError;
use crate::http::extract;
use crate::http::list::Paging;
use crate::http::respond::Response;
use crate::ui::{self, Link, Pager, Section, Ui};

/// A report as the queue shows it.
pub struct ReportRow {
    pub id: i64,
    pub kind: String,
    pub target_id: i64,
    pub post_id: i64,
    pub reason: String,
    pub snapshot: String,
    pub status: String,
    pub reporter: String,
    pub author_id: i64,
    pub author: String,
    pub anonymous: bool,
    pub hidden: bool,
    pub deleted: bool,
    pub reports: i64,
    pub created_at: String,
}

#[derive(Template)]
#[template(path = "admin_community.html")]
struct AdminCommunityPage {
    ui: Ui,
    admin: Chrome,
    statuses: Vec<Link>,
    reports: Vec<ReportRow>,
    total: i64,
    pager: Pager,
    boards: Vec<Board>,
}

fn text(value: &Value, name: &str) -> String {
    value[name].as_str().unwrap_or_default().to_string()
}

/// `GET /admin/community?status=open|resolved|dismissed|all&page=`
pub async fn page(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let principal = match state.sessions.require(&state.store, parts, Role::Admin).await {
        Ok(principal) => principal,
        Err(AppError::Unauthorized) => {
            return Ok(crate::http::respond::see_other("/login?next=%2Fadmin%2Fcommunity"));
        }
        Err(err @ AppError::Forbidden) => {
            return Ok(ui::error_page(Ui::new(state, parts, Section::Admin).await, &err));
        }
        Err(other) => return Err(other),
    };
    if parts.method != http::Method::GET && parts.method != http::Method::HEAD {
        return Err(AppError::MethodNotAllowed { allow: "GET, HEAD" });
    }
    let mut ui = Ui::for_principal(parts, Section::Admin, Some(&principal));
    ui.fill_unread(state, principal.user_id).await;
    let query = parts.uri.query();
    let result = async {
        let status = extract::query_param(query, "status")?.unwrap_or_else(|| "open".into());
        let paging = Paging::standard(query)?;
        let (items, total) = queue(state, &status, paging).await?;
        let boards = boards::all(state).await?;
        Ok::<_, AppError>((status, paging, items, total, boards))
    }
    .await;
    let (status, paging, items, total, boards) = match result {
        Ok(found) => found,
        Err(err) => return Ok(ui::error_page(ui, &err)),
    };
    let t = &ui.t.community;
    let statuses = [
        ("open", t.status_open),
        ("resolved", t.status_resolved),
        ("dismissed", t.status_dismissed),
        ("all", t.status_all),
    ]
    .into_iter()
    .map(|(code, label)| Link {
        href: format!("/admin/community?status={code}"),
        label: label.to_string(),
        current: status == code,
    })
    .collect();
    let reports = items
        .iter()
        .map(|r| ReportRow {
            id: r["id"].as_i64().unwrap_or_default(),
            kind: text(&r["target"], "type"),
            target_id: r["target"]["id"].as_i64().unwrap_or_default(),
            post_id: r["post_id"].as_i64().unwrap_or_default(),
            reason: text(r, "reason"),
            snapshot: text(r, "snapshot"),
            status: text(r, "status"),
            reporter: text(&r["reporter"], "display_name"),
            author_id: r["author"]["id"].as_i64().unwrap_or_default(),
            author: text(&r["author"], "display_name"),
            anonymous: r["anonymous"].as_bool().unwrap_or(false),
            hidden: r["hidden"].as_bool().unwrap_or(false),
            deleted: r["deleted"].as_bool().unwrap_or(false),
            reports: r["reports"].as_i64().unwrap_or_default(),
            created_at: ui.time(text(r, "created_at")),
        })
        .collect();
    let view = AdminCommunityPage {
        admin: Chrome::new(ui.t, "community"),
        statuses,
        reports,
        total,
        pager: Pager::new("/admin/community", query, paging.page, paging.size, total)?,
        boards,
        ui,
    };
    ui::page(view.ui.lang, StatusCode::OK, &view)
}
