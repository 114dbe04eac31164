//! What every page shares: the layout's data ([`Ui`]), the header's sections, the message
//! catalogs (`i18n`, `zh`, `en`), SVG charts (`chart`), HTML error pages and the language
//! switch (`GET /lang/{zh|en}?next=…`). Pages are rendered by the modules that own them.
//!
//! # Conventions for a module's pages
//!
//! - A page struct has a field `ui: Ui` (made by [`Ui::new`], or [`Ui::for_principal`] when the
//!   handler already knows the user) and its template starts `{% extends "layout.html" %}`
//!   (`admin_base.html` for the admin area). Render it with [`page`], which sets the language
//!   headers; a failure can be shown with [`error_page`].
//! - Every text comes from `ui.t`, the catalog of the page's language: add the module's own
//!   struct of texts to `i18n::Catalog` and its values to `zh.rs` and `en.rs` (the compiler
//!   refuses a catalog that misses one). Codes in data (statuses, channels…) are shown through
//!   the `Ui` helpers (`ui.status(…)`, `ui.channel(…)`), never raw. The JSON API stays English.
//! - The header's sections are [`SECTIONS`]: a module adds one entry (its path, label and who
//!   sees it) when it arrives, and its pages pass their [`Section`] to mark it current.
//! - The unread-notification badge: [`Ui::new`] fills [`Ui::unread`] for a signed-in user
//!   (a handler that made its `Ui` with [`Ui::for_principal`] calls [`Ui::fill_unread`]); the
//!   header shows it on the entry whose `badge` is true (我的), and `static/unread.js` keeps
//!   it current through the unread-count long-poll.
//! - Components are classes of `static/app.css`: `.btn` (`-primary`, `-secondary`, `-quiet`,
//!   `-danger`, `-wechat`, `-block`, `-small`), `.card`, `.form` + `.field`, `.table` (cells
//!   carry `data-label` so that rows become cards on a phone), `.badge[data-status]`,
//!   `.empty` / `.empty-state`, `.alert`, `.stats`, `.chips` and `pager.html` ([`Pager`]).
//!   No inline script or style: the CSP forbids both.

pub mod chart;
pub mod community;
pub mod i18n;
pub mod mall_texts;

mod en;
mod labels;
mod zh;

use askama::Template;
use http::StatusCode;
use http::header::{self, HeaderValue};
use http::request::Parts;

use crate::account::{Principal, Role};
use crate::app::State;
use crate::error::AppError;
use crate::http::assets;
use crate::http::extract;
use crate::http::respond::{self, Response};
pub use i18n::{Catalog, LANG_COOKIE, Lang, fill};

/// Where a page belongs in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Donate,
    /// Crowdfunding (众筹).
    Projects,
    Mall,
    Seller,
    Community,
    Me,
    Admin,
    /// Pages of no section (sign-in, errors).
    None,
}

/// One entry of the header.
#[derive(Debug)]
pub struct SectionEntry {
    pub section: Section,
    /// Stable name, also `data-section` in the page.
    pub id: &'static str,
    pub href: &'static str,
    pub label: fn(&Catalog) -> &'static str,
    /// The role needed to see it; `None` = everyone.
    pub needs: Option<Role>,
    /// Carries the unread-notification badge.
    pub badge: bool,
}

/// The header's sections, in order. The mall (商城) adds its own here
/// when they arrive.
pub const SECTIONS: &[SectionEntry] = &[
    SectionEntry {
        section: Section::Donate,
        id: "donate",
        href: "/",
        label: |t| t.nav.donate,
        needs: None,
        badge: false,
    },
    SectionEntry {
        section: Section::Projects,
        id: "projects",
        href: "/projects",
        label: |t| t.nav.projects,
        needs: None,
        badge: false,
    },
    SectionEntry {
        section: Section::Mall,
        id: "mall",
        href: "/mall",
        label: |t| t.mall.nav,
        needs: None,
        badge: false,
    },
    SectionEntry {
        section: Section::Community,
        id: "community",
        href: "/community",
        label: |t| t.community.nav,
        needs: None,
        badge: false,
    },
    SectionEntry {
        section: Section::Seller,
        id: "seller",
        href: "/merchant",
        label: |t| t.mall.nav_seller,
        needs: Some(Role::Merchant),
        badge: false,
    },
    SectionEntry {
        section: Section::Me,
        id: "me",
        href: "/me",
        label: |t| t.nav.me,
        needs: None,
        badge: true,
    },
    SectionEntry {
        section: Section::Admin,
        id: "admin",
        href: "/admin",
        label: |t| t.nav.admin,
        needs: Some(Role::Admin),
        badge: false,
    },
];

/// A header link as rendered.
#[derive(Debug, Clone)]
pub struct NavLink {
    pub id: &'static str,
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
    pub badge: bool,
}

/// The signed-in user as the header shows them.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub name: String,
    pub role: Role,
}

/// The layout's data: language, header, signed-in state.
#[derive(Debug)]
pub struct Ui {
    pub lang: Lang,
    pub other_lang: Lang,
    /// The page's messages.
    pub t: &'static Catalog,
    pub stylesheet: String,
    pub nav: Vec<NavLink>,
    pub user: Option<Viewer>,
    /// Where the header's sign-in link goes; empty on the sign-in page itself.
    pub sign_in_href: String,
    /// The language switch, back to this page.
    pub switch_href: String,
    /// Unread notifications for the header badge (`None` or a count above 0); a signed-in
    /// page keeps it current with `static/unread.js`.
    pub unread: Option<u64>,
    /// `static/unread.js`, for signed-in pages.
    pub unread_script: String,
    /// A wide page (the admin area).
    pub wide: bool,
    /// The footer's line, the section's own.
    pub footer: &'static str,
}

impl Ui {
    /// The layout for a request, looking up who is signed in (a failed lookup shows the
    /// page signed out rather than failing it).
    pub async fn new(state: &State, parts: &Parts, section: Section) -> Ui {
        let principal = state.sessions.principal(&state.store, parts).await.ok().flatten();
        let mut ui = Ui::for_principal(parts, section, principal.as_deref());
        if let Some(principal) = principal {
            ui.fill_unread(state, principal.user_id).await;
        }
        ui
    }

    /// Sets the header badge to `user_id`'s unread count (from memory; a failed read leaves
    /// the badge off, and the page's script fills it a moment later).
    pub async fn fill_unread(&mut self, state: &State, user_id: i64) {
        if let Ok(n) = state.notices.unread(&state.store, user_id).await {
            self.unread = u64::try_from(n).ok().filter(|n| *n > 0);
        }
    }

    /// The layout when the handler already knows the user.
    pub fn for_principal(parts: &Parts, section: Section, principal: Option<&Principal>) -> Ui {
        let lang = Lang::of_request(&parts.headers);
        let t = lang.catalog();
        let role = principal.map(|p| p.role);
        let nav = SECTIONS
            .iter()
            .filter(|e| e.needs.is_none_or(|needed| role.is_some_and(|r| r.allows(needed))))
            .map(|e| NavLink {
                id: e.id,
                href: e.href,
                label: (e.label)(t),
                current: e.section == section,
                badge: e.badge,
            })
            .collect();
        let here = here(parts);
        Ui {
            lang,
            other_lang: lang.other(),
            t,
            stylesheet: assets::url("app.css"),
            nav,
            user: principal.map(|p| Viewer {
                name: p.display_name.clone(),
                role: p.role,
            }),
            // Not on the sign-in page itself.
            sign_in_href: if here.starts_with("/login") {
                String::new()
            } else if here == "/" {
                "/login".to_string()
            } else {
                format!("/login?next={}", encode(&here))
            },
            switch_href: format!("/lang/{}?next={}", lang.other().code(), encode(&here)),
            unread: None,
            unread_script: assets::url("unread.js"),
            wide: section == Section::Admin,
            footer: footer(t, section),
        }
    }

    /// `pattern` with its one `{…}` hole filled by `value`.
    pub fn fill(&self, pattern: &str, value: impl std::fmt::Display) -> String {
        match (pattern.find('{'), pattern.find('}')) {
            (Some(open), Some(close)) if open < close => {
                format!("{}{value}{}", &pattern[..open], &pattern[close + 1..])
            }
            _ => pattern.to_string(),
        }
    }

    /// "共 {n} 条" / "{n} in all".
    pub fn count(&self, n: impl std::fmt::Display) -> String {
        self.fill(self.t.site.count, n)
    }

    /// "第 2 / 5 页"; without a known last page, "第 2 页".
    pub fn page_of(&self, page: &u32, pages: &Option<i64>) -> String {
        match pages {
            Some(pages) => fill(self.t.site.page_of, &[("page", page), ("pages", pages)]),
            None => fill(self.t.site.page_only, &[("page", page)]),
        }
    }

    /// An RFC 3339 time as `2024-05-01 14:03` (the time as stored, at +08:00).
    pub fn time(&self, at: impl AsRef<str>) -> String {
        let at = at.as_ref();
        match (at.get(..10), at.get(11..16)) {
            (Some(date), Some(clock)) if at.as_bytes().get(10) == Some(&b'T') => format!("{date} {clock}"),
            _ => at.to_string(),
        }
    }

    /// A local date as the charts show it ("5月1日", "May 1").
    pub fn day(&self, date: time::Date) -> String {
        i18n::day(self.lang, date)
    }

    /// `true` / `false` as 开启 / 关闭.
    pub fn on_off(&self, on: impl std::borrow::Borrow<bool>) -> &'static str {
        if *on.borrow() {
            self.t.codes.on
        } else {
            self.t.codes.off
        }
    }
}

/// The footer's line of a page of `section`: a shop, a crowdfunding or a forum page says what
/// fits it, not what a donation page says; the pages of no one module (an account, the
/// administration, an error) speak of every payment.
fn footer(t: &Catalog, section: Section) -> &'static str {
    match section {
        Section::Donate => t.site.footer,
        Section::Mall | Section::Seller => t.site.footer_mall,
        Section::Projects => t.site.footer_projects,
        Section::Community => t.site.footer_community,
        Section::Me | Section::Admin | Section::None => t.site.footer_site,
    }
}

/// The request's path and query, for coming back to it.
fn here(parts: &Parts) -> String {
    parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string()
}

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A local path to go back to (never another site).
pub fn local_path(next: Option<String>) -> String {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') && n.len() <= 512)
        .unwrap_or_else(|| "/".to_string())
}

/// A link of a row of chips or tabs.
#[derive(Debug, Clone)]
pub struct Link {
    pub href: String,
    pub label: String,
    pub current: bool,
}

/// Links to the previous and next page of a list.
#[derive(Debug, Clone, Default)]
pub struct Pager {
    pub page: u32,
    /// The last page, when known.
    pub pages: Option<i64>,
    pub prev: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    /// The pager of page `page` of `total` rows, `size` a page, at `path?query` (the other
    /// parameters are kept, so filters stay in the URL).
    pub fn new(path: &str, query: Option<&str>, page: u32, size: u32, total: i64) -> Result<Pager, AppError> {
        let size = i64::from(size.max(1));
        let pages = ((total + size - 1) / size).max(1);
        let at = |n: u32| page_url(path, query, n);
        Ok(Pager {
            page,
            pages: Some(pages),
            prev: (page > 1).then(|| at(page - 1)).transpose()?,
            next: (i64::from(page) < pages).then(|| at(page + 1)).transpose()?,
        })
    }
}

/// `path?…` with `page` replaced by `page`, keeping the other parameters.
pub fn page_url(path: &str, query: Option<&str>, page: u32) -> Result<String, AppError> {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in extract::pairs(query.unwrap_or("").as_bytes())? {
        if k != "page" {
            out.append_pair(&k, &v);
        }
    }
    out.append_pair("page", &page.to_string());
    Ok(format!("{path}?{}", out.finish()))
}

/// A rendered page in `lang` with the status, the security headers and the headers that
/// say the answer depends on the language.
pub fn page(lang: Lang, status: StatusCode, page: &impl Template) -> Result<Response, AppError> {
    let body = page.render().map_err(|e| AppError::Internal(e.into()))?;
    Ok(with_lang(lang, respond::html(status, body)))
}

/// Marks `response` as being in `lang` and varying with the language's sources.
pub fn with_lang(lang: Lang, mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LANGUAGE, HeaderValue::from_static(lang.tag()));
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Language, Cookie"));
    response
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    ui: Ui,
    heading: &'a str,
    message: &'a str,
    code: &'a str,
    /// The API's own words for a field error (they name the rule).
    detail: Option<String>,
}

/// `err` as an HTML page in the request's language, with the error's status.
pub fn error_page(ui: Ui, err: &AppError) -> Response {
    let e = &ui.t.errors;
    let (heading, message) = match err {
        AppError::NotFound | AppError::MethodNotAllowed { .. } => (e.not_found_title, e.not_found),
        AppError::Malformed(_) | AppError::Invalid { .. } => (e.invalid_title, e.invalid),
        AppError::Forbidden | AppError::Unauthorized => (e.forbidden_title, e.forbidden),
        AppError::RateLimited { .. } | AppError::Locked { .. } => (e.too_many_title, e.too_many),
        AppError::Unavailable(_) | AppError::Provider(_) => (e.unavailable_title, e.unavailable),
        _ => (e.failed_title, e.failed),
    };
    if matches!(
        err,
        AppError::Internal(_) | AppError::Unavailable(_) | AppError::Provider(_)
    ) {
        // Logs the cause, as the JSON error would.
        let _ = err.to_json("page");
    }
    let detail = matches!(err, AppError::Invalid { .. } | AppError::Malformed(_)).then(|| err.to_string());
    let lang = ui.lang;
    let page = ErrorPage {
        ui,
        heading,
        message,
        code: err.code(),
        detail,
    };
    match page.render() {
        Ok(body) => with_lang(lang, respond::html(err.status(), body)),
        Err(_) => respond::error(err, "page"),
    }
}

/// A page handler's result with its error shown as a page.
pub async fn or_error_page(state: &State, parts: &Parts, result: Result<Response, AppError>) -> Response {
    match result {
        Ok(response) => response,
        Err(err) => error_page(Ui::new(state, parts, Section::None).await, &err),
    }
}

/// An unknown path: for a browser (a GET that accepts HTML, outside `/api/`) the 404 page
/// in its language; for everything else the JSON error.
pub async fn not_found(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let is_get = parts.method == http::Method::GET || parts.method == http::Method::HEAD;
    let wants_html = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if !is_get || !wants_html || parts.uri.path().starts_with("/api/") {
        return Err(AppError::NotFound);
    }
    Ok(error_page(
        Ui::new(state, parts, Section::None).await,
        &AppError::NotFound,
    ))
}

/// `GET /lang/{zh|en}?next=/…`: keeps the pick in a cookie for a year and goes back.
pub fn switch_language(code: &str, parts: &Parts) -> Result<Response, AppError> {
    let lang = Lang::parse(code).ok_or(AppError::NotFound)?;
    let next = local_path(extract::query_param(parts.uri.query(), "next")?);
    let mut response = crate::http::respond::see_other(&next);
    let cookie = format!("{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax", lang.code());
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut builder = http::Request::builder().uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_header_shows_admin_only_to_admins_and_marks_the_current_section() {
        let anonymous = Ui::for_principal(&parts("/", &[]), Section::Donate, None);
        let ids: Vec<_> = anonymous.nav.iter().map(|l| l.id).collect();
        assert_eq!(ids, ["donate", "projects", "mall", "community", "me"]);
        assert!(anonymous.nav[0].current && !anonymous.nav[1].current);
        assert_eq!(anonymous.sign_in_href, "/login");
    }

    #[test]
    fn the_switch_comes_back_to_the_same_page() {
        let ui = Ui::for_principal(&parts("/me?page=2", &[("accept-language", "en")]), Section::Me, None);
        assert_eq!(ui.lang, Lang::En);
        assert_eq!(ui.switch_href, "/lang/zh?next=%2Fme%3Fpage%3D2");
        assert_eq!(ui.sign_in_href, "/login?next=%2Fme%3Fpage%3D2");
    }

    #[test]
    fn codes_get_words_and_unknown_codes_stay_as_they_are() {
        let zh = Ui::for_principal(&parts("/", &[]), Section::None, None);
        assert_eq!(zh.status("paid"), "已支付");
        assert_eq!(zh.channel("alipay"), "支付宝");
        assert_eq!(zh.status("weird"), "weird");
        let en = Ui::for_principal(&parts("/", &[("cookie", "zhifu_lang=en")]), Section::None, None);
        assert_eq!(en.channel("wechat"), "WeChat Pay");
        assert_eq!(en.time("2024-05-01T14:03:22+08:00"), "2024-05-01 14:03");
        assert_eq!(en.day(time::macros::date!(2024 - 05 - 01)), "May 1");
        assert_eq!(zh.day(time::macros::date!(2024 - 12 - 31)), "12月31日");
    }

    #[test]
    fn the_pager_keeps_the_filters() {
        let pager = Pager::new("/admin/payments", Some("status=paid&page=2"), 2, 50, 120).unwrap();
        assert_eq!(pager.pages, Some(3));
        assert_eq!(pager.prev.as_deref(), Some("/admin/payments?status=paid&page=1"));
        assert_eq!(pager.next.as_deref(), Some("/admin/payments?status=paid&page=3"));
        let last = Pager::new("/x", None, 3, 50, 120).unwrap();
        assert!(last.next.is_none());
    }

    #[test]
    fn only_local_paths_are_followed() {
        for bad in ["https://evil.example/", "//evil.example", "/\\evil", ""] {
            assert_eq!(local_path(Some(bad.into())), "/", "{bad}");
        }
        assert_eq!(local_path(Some("/me?page=2".into())), "/me?page=2");
    }
}
