//! `GET /me/notifications`: the signed-in user's notifications, newest first, each saying who
//! did what (anonymous actors as "someone") with a link to it, and buttons that mark one or
//! all read (`static/unread.js`, through `POST /api/me/notifications/read`).

use askama::Template;
use http::StatusCode;
use http::request::Parts;
use serde_json::Value;

use super::handlers::page_of;
use crate::app::State;
use crate::error::AppError;
use crate::http::list::Paging;
use crate::http::respond::Response;
use crate::ui::{self, Pager, Section, Ui};

/// One notification as the page shows it.
pub struct NoticeView {
    pub id: i64,
    pub kind: String,
    pub line: String,
    /// What the user wrote that it quotes (a comment, a post's title); none for a follow.
    pub quote: String,
    pub href: Option<String>,
    pub read: bool,
    pub created_at: String,
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct NotificationsPage {
    ui: Ui,
    items: Vec<NoticeView>,
    unread: i64,
    pager: Pager,
}

fn view(item: &Value, ui: &Ui) -> NoticeView {
    let t = &ui.t.notices;
    let kind = item["kind"].as_str().unwrap_or_default().to_string();
    let actor = match item["actor"]["display_name"].as_str() {
        Some(name) => name.to_string(),
        None if matches!(kind.as_str(), "comment" | "reply" | "like" | "follow") => t.someone.to_string(),
        None => t.system.to_string(),
    };
    let pattern = match kind.as_str() {
        "comment" => t.comment,
        "reply" => t.reply,
        "like" => t.like,
        "follow" => t.follow,
        _ => t.other,
    };
    let text = item["text"].as_str().unwrap_or_default();
    let target = &item["target"];
    let href = match (target["type"].as_str(), target["id"].as_i64()) {
        (Some("post"), Some(id)) => Some(format!("/community/posts/{id}")),
        (Some("comment"), Some(id)) => Some(format!("/community/comments/{id}")),
        (Some("user"), Some(id)) => Some(format!("/users/{id}")),
        (Some("project"), Some(id)) => Some(format!("/projects/{id}")),
        (Some("backing"), _) => Some("/projects/mine".to_string()),
        _ => None,
    };
    NoticeView {
        id: item["id"].as_i64().unwrap_or_default(),
        line: ui::fill(pattern, &[("actor", &actor)]),
        quote: match kind.as_str() {
            "follow" => String::new(),
            "comment" | "reply" | "like" => text.to_string(),
            _ => in_language(text, ui.lang).to_string(),
        },
        kind,
        href,
        read: item["read"].as_bool().unwrap_or(false),
        created_at: ui.time(item["created_at"].as_str().unwrap_or_default()),
    }
}

/// The line of `text` in `lang` when it has both ([`super::bilingual`]: Chinese, a line
/// break, English); else all of it.
pub fn in_language(text: &str, lang: ui::Lang) -> &str {
    match (text.split_once('\n'), lang) {
        (Some((zh, _)), ui::Lang::Zh) => zh,
        (Some((_, en)), ui::Lang::En) => en,
        (None, _) => text,
    }
}

/// `GET /me/notifications?page=`: signed in (else the sign-in page first).
pub async fn page(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let principal = match state.sessions.principal(&state.store, parts).await {
        Ok(Some(principal)) => principal,
        Ok(None) | Err(AppError::Unauthorized) => {
            return Ok(crate::http::respond::see_other("/login?next=%2Fme%2Fnotifications"));
        }
        Err(other) => return Err(other),
    };
    let mut ui = Ui::for_principal(parts, Section::Me, Some(&principal));
    ui.fill_unread(state, principal.user_id).await;
    let result = async {
        let paging = Paging::standard(parts.uri.query())?;
        let (items, total) = page_of(state, principal.user_id, false, paging).await?;
        let unread = state.notices.unread(&state.store, principal.user_id).await?;
        let pager = Pager::new("/me/notifications", parts.uri.query(), paging.page, paging.size, total)?;
        Ok::<_, AppError>((items, unread, pager))
    }
    .await;
    let (items, unread, pager) = match result {
        Ok(found) => found,
        Err(err) => return Ok(ui::error_page(ui, &err)),
    };
    let page = NotificationsPage {
        items: items.iter().map(|item| view(item, &ui)).collect(),
        unread,
        pager,
        ui,
    };
    ui::page(page.ui.lang, StatusCode::OK, &page)
}
