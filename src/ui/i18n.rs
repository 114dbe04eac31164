//! Languages: which one a request gets (the `zhifu_lang` cookie, else `Accept-Language`, else
//! Chinese) and the shape of a message catalog. The texts live in `zh.rs` and `en.rs`, one
//! `Catalog` value each: a message missing from either is a compile error, since every field
//! of a struct literal must be given. The JSON API never uses these; it keeps its English.
//!
//! Texts with a value in them are patterns with `{name}` holes, filled by [`fill`].

use http::HeaderMap;
use http::header;

/// The cookie that keeps a visitor's pick of language (`zh` or `en`).
pub const LANG_COOKIE: &str = "zhifu_lang";

/// A language the pages speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    /// Every language, the default first.
    pub const ALL: [Lang; 2] = [Lang::Zh, Lang::En];

    /// The short code used in URLs and the cookie.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    /// The BCP 47 tag for `lang=` and `Content-Language`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// `zh` or `en`; anything else is `None`.
    pub fn parse(code: &str) -> Option<Lang> {
        match code {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The other language (what the switcher offers).
    pub fn other(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }

    /// This language's messages.
    pub fn catalog(self) -> &'static Catalog {
        match self {
            Lang::Zh => &super::zh::CATALOG,
            Lang::En => &super::en::CATALOG,
        }
    }

    /// The language of a request: the cookie when it names one, else the best match of
    /// `Accept-Language`, else Chinese.
    pub fn of_request(headers: &HeaderMap) -> Lang {
        cookie_lang(headers).or_else(|| accepted(headers)).unwrap_or(Lang::Zh)
    }
}

fn cookie_lang(headers: &HeaderMap) -> Option<Lang> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == LANG_COOKIE)
        .and_then(|(_, value)| Lang::parse(value.trim()))
}

/// The language `Accept-Language` prefers most among ours (ties go to the one listed first).
fn accepted(headers: &HeaderMap) -> Option<Lang> {
    let mut best: Option<(Lang, f32)> = None;
    let values = headers.get_all(header::ACCEPT_LANGUAGE);
    for item in values.iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')) {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let quality = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let primary = tag.split('-').next().unwrap_or("");
        let Some(lang) = Lang::parse(primary) else {
            continue;
        };
        if quality > 0.0 && best.is_none_or(|(_, q)| quality > q) {
            best = Some((lang, quality));
        }
    }
    best.map(|(lang, _)| lang)
}

/// `pattern` with each `{name}` replaced by its value.
pub fn fill(pattern: &str, values: &[(&str, &dyn std::fmt::Display)]) -> String {
    let mut out = pattern.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), &value.to_string());
    }
    out
}

/// A date as charts and lists show it: "5月1日", "May 1".
pub fn day(lang: Lang, date: time::Date) -> String {
    let t = lang.catalog();
    let month = t.site.months[usize::from(u8::from(date.month())) - 1];
    fill(t.site.day, &[("month", &month), ("day", &date.day())])
}

/// Every message of `catalog` with its path (`site.sign_in`, `site.months.0`), read from its
/// `Debug` form: for the tests that compare the languages and look for untranslated text.
pub fn entries(catalog: &Catalog) -> Vec<(String, String)> {
    let text = format!("{catalog:#?}");
    let mut path: Vec<String> = Vec::new();
    let mut index = 0usize;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('}') || line.starts_with(']') {
            path.pop();
        } else if let Some((key, rest)) = line.split_once(": ") {
            if rest.ends_with('{') || rest.ends_with('[') {
                path.push(key.to_string());
                index = 0;
            } else if let Some(value) = quoted(rest) {
                out.push((join(&path, key), value));
            }
        } else if let Some(value) = quoted(line) {
            out.push((join(&path, &index.to_string()), value));
            index += 1;
        }
    }
    out
}

fn join(path: &[String], key: &str) -> String {
    path.iter()
        .cloned()
        .chain([key.to_string()])
        .collect::<Vec<_>>()
        .join(".")
}

/// The text of a `Debug`-quoted string (`"…",`), unescaped.
fn quoted(text: &str) -> Option<String> {
    let inner = text.trim_end_matches(',').strip_prefix('"')?.strip_suffix('"')?;
    Some(inner.replace("\\\"", "\"").replace("\\\\", "\\"))
}

/// Every text of the pages in one language. A module adds a struct of its own texts here
/// and a value for it in `zh.rs` and `en.rs`.
#[derive(Debug)]
pub struct Catalog {
    pub site: Site,
    pub nav: Nav,
    pub errors: Errors,
    pub codes: Codes,
    pub donate: Donate,
    pub pay: Pay,
    pub account: Account,
    pub admin: Admin,
    pub crowdfunding: Crowdfunding,
    pub mall: super::mall_texts::Mall,
    pub community: super::community::Community,
    pub notices: super::community::Notices,
}

/// The layout: header, footer, pagination, dates.
#[derive(Debug)]
pub struct Site {
    pub name: &'static str,
    pub brand: &'static str,
    pub skip_to_content: &'static str,
    pub sections: &'static str,
    pub signed_in_as: &'static str,
    pub sign_in: &'static str,
    pub sign_out: &'static str,
    /// The switcher's label: the other language's name, in that language.
    pub other_language: &'static str,
    pub unread: &'static str,
    /// The footer of the donation pages.
    pub footer: &'static str,
    /// The footer of the pages of no one module: an account's, the administration's, errors.
    pub footer_site: &'static str,
    /// The footer of the mall's pages (buyers' and sellers').
    pub footer_mall: &'static str,
    /// The footer of the crowdfunding pages.
    pub footer_projects: &'static str,
    /// The footer of the community's pages.
    pub footer_community: &'static str,
    pub loading: &'static str,
    pub back_home: &'static str,
    pub pages: &'static str,
    pub prev: &'static str,
    pub next: &'static str,
    /// `{page}`, `{pages}`.
    pub page_of: &'static str,
    /// `{page}`.
    pub page_only: &'static str,
    /// `{n}`: how many rows a list has.
    pub count: &'static str,
    /// Month names for chart dates.
    pub months: [&'static str; 12],
    /// `{month}`, `{day}`.
    pub day: &'static str,
}

/// The header's sections. A module adds its label here and its entry in `ui::SECTIONS`.
#[derive(Debug)]
pub struct Nav {
    pub donate: &'static str,
    pub me: &'static str,
    pub admin: &'static str,
    pub projects: &'static str,
}

/// HTML error pages.
#[derive(Debug)]
pub struct Errors {
    pub not_found_title: &'static str,
    pub not_found: &'static str,
    pub invalid_title: &'static str,
    pub invalid: &'static str,
    pub forbidden_title: &'static str,
    pub forbidden: &'static str,
    pub too_many_title: &'static str,
    pub too_many: &'static str,
    pub unavailable_title: &'static str,
    pub unavailable: &'static str,
    pub failed_title: &'static str,
    pub failed: &'static str,
}

/// Human words for the codes the data holds (statuses, channels, roles, events…).
#[derive(Debug)]
pub struct Codes {
    pub status_pending: &'static str,
    pub status_paid: &'static str,
    pub status_closed: &'static str,
    pub status_refunded: &'static str,
    pub channel_wechat: &'static str,
    pub channel_alipay: &'static str,
    pub purpose_donation: &'static str,
    pub purpose_backing: &'static str,
    pub purpose_mall_order: &'static str,
    pub role_user: &'static str,
    pub role_merchant: &'static str,
    pub role_reviewer: &'static str,
    pub role_admin: &'static str,
    pub refund_processing: &'static str,
    pub refund_succeeded: &'static str,
    pub refund_failed: &'static str,
    pub late_keep: &'static str,
    pub late_refund: &'static str,
    pub on: &'static str,
    pub off: &'static str,
    pub event_created: &'static str,
    pub event_paid: &'static str,
    pub event_paid_late: &'static str,
    pub event_second_payment: &'static str,
    pub event_closed: &'static str,
    pub event_refund_requested: &'static str,
    pub event_refund_succeeded: &'static str,
    pub event_refund_failed: &'static str,
    pub event_cancel_requested: &'static str,
    pub event_cancelled: &'static str,
    pub event_create_failed: &'static str,
    pub event_create_abandoned: &'static str,
    pub source_api: &'static str,
    pub source_callback: &'static str,
    pub source_reconcile: &'static str,
    pub source_admin: &'static str,
    pub source_sandbox: &'static str,
    pub kind_payment: &'static str,
    pub kind_refund: &'static str,
    pub kind_other: &'static str,
    pub outcome_applied: &'static str,
    pub outcome_refused: &'static str,
    pub action_category_create: &'static str,
    pub action_category_update: &'static str,
    pub action_category_delete: &'static str,
    pub action_category_reorder: &'static str,
    pub action_settings_update: &'static str,
    pub action_payment_refund: &'static str,
    pub action_user_update: &'static str,
    pub action_community_post_hide: &'static str,
    pub action_community_post_unhide: &'static str,
    pub action_community_comment_hide: &'static str,
    pub action_community_comment_unhide: &'static str,
    pub action_community_post_pin: &'static str,
    pub action_community_post_delete: &'static str,
    pub action_community_comment_delete: &'static str,
    pub action_community_report_dismiss: &'static str,
    pub action_community_board_create: &'static str,
    pub action_community_board_update: &'static str,
    pub target_category: &'static str,
    pub target_payment: &'static str,
    pub target_user: &'static str,
    pub target_settings: &'static str,
    pub target_post: &'static str,
    pub target_comment: &'static str,
    pub target_board: &'static str,
}

/// The home page.
#[derive(Debug)]
pub struct Donate {
    pub title: &'static str,
    pub hero_title: &'static str,
    pub hero_text: &'static str,
    pub form_title: &'static str,
    pub closed: &'static str,
    pub amount: &'static str,
    pub amount_placeholder: &'static str,
    /// `{min}`, `{max}` (yuan).
    pub bounds: &'static str,
    pub category: &'static str,
    pub channel: &'static str,
    pub donor_name: &'static str,
    pub message: &'static str,
    pub anonymous: &'static str,
    pub submit: &'static str,
    pub categories: &'static str,
    pub no_categories: &'static str,
    pub donations_unit: &'static str,
    pub donors_unit: &'static str,
    pub ranking: &'static str,
    pub range_day: &'static str,
    pub range_week: &'static str,
    pub range_month: &'static str,
    pub range_all: &'static str,
    pub no_donations_yet: &'static str,
    /// How an anonymous donor is shown (the API says 匿名).
    pub anonymous_donor: &'static str,
    pub recent: &'static str,
    pub chart_title: &'static str,
    pub chart_empty: &'static str,
}

/// The pay page.
#[derive(Debug)]
pub struct Pay {
    /// `{amount}`.
    pub title: &'static str,
    pub pending: &'static str,
    pub paid: &'static str,
    pub closed: &'static str,
    pub refunded: &'static str,
    /// `{channel}`.
    pub qr_alt: &'static str,
    pub scan_wechat: &'static str,
    pub scan_alipay: &'static str,
    pub time_left: &'static str,
    pub sandbox_note: &'static str,
    pub simulate: &'static str,
    pub thanks: &'static str,
    pub late_note: &'static str,
    /// A purchase whose provider order is still being made.
    pub qr_preparing: &'static str,
    pub back_home: &'static str,
    /// The pay page of a crowdfunding backing: back to its project.
    pub back_project: &'static str,
    /// The pay page of a mall order: to the buyer's order page.
    pub view_order: &'static str,
    pub thanks_backing: &'static str,
    pub thanks_order: &'static str,
    pub closed_text: &'static str,
    pub donate_again: &'static str,
    pub refunded_text: &'static str,
    pub order_no: &'static str,
}

/// Sign-in and the user's own page.
#[derive(Debug)]
pub struct Account {
    pub sign_in_title: &'static str,
    pub username: &'static str,
    pub password: &'static str,
    pub sign_in: &'static str,
    pub or: &'static str,
    pub wechat_sign_in: &'static str,
    pub bad_credentials: &'static str,
    /// `{minutes}`.
    pub locked: &'static str,
    pub disabled: &'static str,
    /// `{seconds}`.
    pub too_many: &'static str,
    pub signed_in: &'static str,
    pub continue_: &'static str,
    pub me_title: &'static str,
    pub open_admin: &'static str,
    pub my_donations: &'static str,
    pub no_donations: &'static str,
    pub go_donate: &'static str,
    pub details: &'static str,
    pub verify_title: &'static str,
    pub verify_verified: &'static str,
    pub verify_used: &'static str,
    pub verify_expired: &'static str,
    pub verify_invalid: &'static str,
}

/// The admin area.
#[derive(Debug)]
pub struct Admin {
    pub area: &'static str,
    pub dashboard: &'static str,
    pub categories: &'static str,
    pub settings: &'static str,
    pub payments: &'static str,
    pub callbacks: &'static str,
    pub reconcile: &'static str,
    pub audit: &'static str,
    pub users: &'static str,
    pub attention: &'static str,
    pub refunds_unfinished: &'static str,
    pub flagged: &'static str,
    pub issue: &'static str,
    pub flagged_at: &'static str,
    /// `{n}` minutes.
    pub pending_over: &'static str,
    pub late_payments: &'static str,
    /// Purpose steps (a module's part of a payment) waiting in the outbox.
    pub purpose_steps: &'static str,
    pub none_purpose_steps: &'static str,
    pub step: &'static str,
    pub last_error: &'static str,
    pub next_attempt: &'static str,
    pub received: &'static str,
    pub today: &'static str,
    pub this_week: &'static str,
    pub this_month: &'static str,
    /// `{n}` payments.
    pub n_payments: &'static str,
    pub chart_per_day: &'static str,
    pub chart_per_channel: &'static str,
    pub chart_per_status: &'static str,
    pub chart_empty_days: &'static str,
    pub chart_empty_channels: &'static str,
    pub chart_empty_status: &'static str,
    pub search_payments: &'static str,
    pub export_csv: &'static str,
    pub no_categories: &'static str,
    pub id: &'static str,
    pub category: &'static str,
    pub actions: &'static str,
    pub sort_order: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub enabled: &'static str,
    pub save: &'static str,
    pub in_use: &'static str,
    /// `{name}`.
    pub confirm_delete: &'static str,
    pub delete: &'static str,
    pub new_category: &'static str,
    pub add: &'static str,
    pub order: &'static str,
    pub reorder_hint: &'static str,
    pub reorder: &'static str,
    pub settings_hint: &'static str,
    pub setting: &'static str,
    pub configured: &'static str,
    pub override_: &'static str,
    pub effective: &'static str,
    pub min_amount: &'static str,
    pub max_amount: &'static str,
    pub order_ttl: &'static str,
    pub late_payment: &'static str,
    pub change_overrides: &'static str,
    pub empty_is_configured: &'static str,
    pub use_configured: &'static str,
    pub on: &'static str,
    pub off: &'static str,
    pub all: &'static str,
    pub status: &'static str,
    pub prefix_ok: &'static str,
    pub any: &'static str,
    pub channel: &'static str,
    pub from: &'static str,
    pub to: &'static str,
    pub search: &'static str,
    pub clear: &'static str,
    pub no_payments: &'static str,
    pub order_no: &'static str,
    pub amount: &'static str,
    pub refunded: &'static str,
    pub donor: &'static str,
    pub created: &'static str,
    pub late: &'static str,
    pub anonymous: &'static str,
    pub payment: &'static str,
    pub purpose: &'static str,
    pub refundable: &'static str,
    pub paid_at: &'static str,
    pub transaction: &'static str,
    pub message: &'static str,
    pub account: &'static str,
    pub refund: &'static str,
    pub confirm_refund: &'static str,
    /// `{n}`: the most that can be refunded.
    pub refund_amount: &'static str,
    pub reason: &'static str,
    pub refunds: &'static str,
    pub no_refunds: &'static str,
    pub refund_no: &'static str,
    pub by: &'static str,
    pub events: &'static str,
    pub time: &'static str,
    pub event: &'static str,
    pub source: &'static str,
    pub detail: &'static str,
    pub show: &'static str,
    pub callbacks_of_order: &'static str,
    pub accepted: &'static str,
    pub accepted_yes: &'static str,
    pub accepted_no: &'static str,
    pub filter: &'static str,
    pub no_callbacks: &'static str,
    pub kind: &'static str,
    pub outcome: &'static str,
    pub body: &'static str,
    pub pending_minutes: &'static str,
    pub refresh: &'static str,
    pub none_pending: &'static str,
    pub expires: &'static str,
    pub checks: &'static str,
    pub none_late: &'static str,
    pub none_refunds: &'static str,
    pub attempts: &'static str,
    pub no_audit: &'static str,
    pub who: &'static str,
    pub action: &'static str,
    pub target: &'static str,
    pub change: &'static str,
    pub before: &'static str,
    pub after: &'static str,
    pub sign_in_with: &'static str,
    pub role: &'static str,
    pub last_sign_in: &'static str,
    pub disabled: &'static str,
    pub locked: &'static str,
    pub wechat: &'static str,
    pub you: &'static str,
}

/// The crowdfunding pages.
#[derive(Debug, Clone, Copy)]
pub struct Crowdfunding {
    pub title: &'static str,
    pub lead: &'static str,
    pub status_draft: &'static str,
    pub status_pending_review: &'static str,
    pub status_rejected: &'static str,
    pub status_live: &'static str,
    pub status_succeeded: &'static str,
    pub status_failed: &'static str,
    pub sort_newest: &'static str,
    pub sort_ending: &'static str,
    pub sort_most_funded: &'static str,
    pub sort_most_backed: &'static str,
    pub search: &'static str,
    pub search_button: &'static str,
    pub none: &'static str,
    pub raised: &'static str,
    pub backers: &'static str,
    pub deadline: &'static str,
    pub ended: &'static str,
    pub next_goal: &'static str,
    pub all_goals: &'static str,
    pub goals: &'static str,
    pub goal_reached: &'static str,
    pub goal_open: &'static str,
    pub rewards: &'static str,
    pub from_amount: &'static str,
    pub remaining: &'static str,
    pub sold_out: &'static str,
    pub unlimited: &'static str,
    pub ships: &'static str,
    pub back_title: &'static str,
    pub amount: &'static str,
    pub reward: &'static str,
    pub no_reward: &'static str,
    pub channel: &'static str,
    pub address: &'static str,
    pub no_address: &'static str,
    pub message: &'static str,
    pub anonymous: &'static str,
    pub back_button: &'static str,
    pub sign_in_to_back: &'static str,
    pub not_open: &'static str,
    pub story: &'static str,
    pub updates: &'static str,
    pub no_updates: &'static str,
    pub backers_title: &'static str,
    pub no_backers: &'static str,
    pub follow: &'static str,
    pub unfollow: &'static str,
    pub followers: &'static str,
    pub settlement: &'static str,
    pub settled: &'static str,
    pub refunded: &'static str,
    pub refunds_pending: &'static str,
    pub refunds_failed: &'static str,
    pub surplus_refund: &'static str,
    pub surplus_keep: &'static str,
    pub owner: &'static str,
    /// `{name}`.
    pub by_owner: &'static str,
    /// `{reason}`.
    pub review_note: &'static str,
    pub dashboard: &'static str,
    pub new_project: &'static str,
    pub my_projects: &'static str,
    pub my_backings: &'static str,
    pub no_projects: &'static str,
    pub no_backings: &'static str,
    pub edit: &'static str,
    pub view: &'static str,
    pub report: &'static str,
    pub to_ship: &'static str,
    pub carrier: &'static str,
    pub tracking_no: &'static str,
    pub ship: &'static str,
    pub shipping_pending: &'static str,
    pub shipping_shipped: &'static str,
    pub shipping_delivered: &'static str,
    pub confirm_delivery: &'static str,
    pub review_queue: &'static str,
    pub review_reason: &'static str,
    pub new_title: &'static str,
    pub edit_title: &'static str,
    pub f_title: &'static str,
    pub f_summary: &'static str,
    pub f_story: &'static str,
    pub f_deadline: &'static str,
    pub f_deadline_hint: &'static str,
    pub f_cover: &'static str,
    pub f_goal: &'static str,
    pub f_goals_hint: &'static str,
    pub f_amount: &'static str,
    pub f_description: &'static str,
    pub f_images: &'static str,
    pub f_reward: &'static str,
    pub f_min_amount: &'static str,
    pub f_quantity: &'static str,
    pub f_ships: &'static str,
    pub add_reward: &'static str,
    pub add_goal: &'static str,
    pub f_surplus: &'static str,
    pub save_draft: &'static str,
    pub submit_review: &'static str,
    pub saved: &'static str,
    pub queue_title: &'static str,
    pub queue_empty: &'static str,
    pub approve: &'static str,
    pub reject: &'static str,
    pub reason: &'static str,
    pub submitted: &'static str,
    pub open: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn chinese_is_the_default() {
        assert_eq!(Lang::of_request(&headers(&[])), Lang::Zh);
        assert_eq!(
            Lang::of_request(&headers(&[("accept-language", "fr-FR, de;q=0.5")])),
            Lang::Zh
        );
    }

    #[test]
    fn accept_language_picks_the_preferred_of_ours() {
        for (value, want) in [
            ("en-US,en;q=0.9", Lang::En),
            ("en-US,en;q=0.9,zh-CN;q=0.8", Lang::En),
            ("zh-CN,zh;q=0.9,en;q=0.8", Lang::Zh),
            ("fr, en;q=0.3", Lang::En),
            ("zh-TW;q=0.2, en-GB;q=0.7", Lang::En),
            ("en;q=0, zh;q=0.1", Lang::Zh),
            ("EN", Lang::En),
        ] {
            assert_eq!(
                Lang::of_request(&headers(&[("accept-language", value)])),
                want,
                "{value}"
            );
        }
    }

    #[test]
    fn the_cookie_wins_over_the_browser() {
        let h = headers(&[("accept-language", "en"), ("cookie", "a=b; zhifu_lang=zh")]);
        assert_eq!(Lang::of_request(&h), Lang::Zh);
        let h = headers(&[("cookie", "zhifu_lang=en")]);
        assert_eq!(Lang::of_request(&h), Lang::En);
        let h = headers(&[("accept-language", "en"), ("cookie", "zhifu_lang=xx")]);
        assert_eq!(Lang::of_request(&h), Lang::En, "an unknown cookie value is ignored");
    }

    fn holes(text: &str) -> Vec<&str> {
        let mut found: Vec<&str> = text
            .split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
            .collect();
        found.sort_unstable();
        found
    }

    fn has_cjk(text: &str) -> bool {
        text.chars()
            .any(|c| ('\u{2E80}'..='\u{9FFF}').contains(&c) || ('\u{FF00}'..='\u{FFEF}').contains(&c))
    }

    #[test]
    fn both_catalogs_have_every_message_translated_with_the_same_holes() {
        let zh = entries(Lang::Zh.catalog());
        let en = entries(Lang::En.catalog());
        assert!(zh.len() > 250, "the catalog reads as {} messages", zh.len());
        assert_eq!(zh.len(), en.len());
        for ((zh_key, zh_text), (en_key, en_text)) in zh.iter().zip(&en) {
            assert_eq!(zh_key, en_key);
            assert!(!zh_text.is_empty() && !en_text.is_empty(), "{zh_key} is empty");
            assert_eq!(
                holes(zh_text),
                holes(en_text),
                "{zh_key}: the two languages fill different holes"
            );
            if zh_key == "site.other_language" {
                assert!(
                    !has_cjk(zh_text) && has_cjk(en_text),
                    "the switch names the other language"
                );
                continue;
            }
            assert!(has_cjk(zh_text), "{zh_key}: {zh_text:?} is not Chinese");
            assert!(!has_cjk(en_text), "{en_key}: {en_text:?} is not English");
        }
        assert!(
            zh.iter().any(|(k, v)| k == "site.months.11" && v == "12月"),
            "arrays are read too"
        );
    }

    #[test]
    fn patterns_are_filled_by_name() {
        assert_eq!(
            fill("第 {page} 页，共 {pages} 页", &[("page", &2), ("pages", &5)]),
            "第 2 页，共 5 页"
        );
    }
}
