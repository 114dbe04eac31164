//! `Route`: what a request asks for, parsed purely from its method and path (no allocation),
//! then dispatched by one exhaustive `match` in `http::dispatch`. The donation core's routes
//! are variants here; every other module owns a `Route` type of its own, parsed from its path
//! prefixes by the module (`account::Route`, `admin::Route`, …) and dispatched by its own
//! `dispatch`. Unknown paths are `NotFound`; known paths with the wrong method are
//! `MethodNotAllowed` with the methods that would work.
//!
//! Adding a module: a variant below, its prefixes in [`parse`], its name table in [`MODULES`]
//! and its arm in [`Route::index`], and one arm in `http::dispatch`.

use http::Method;

use crate::pay::provider::Channel;
use crate::pay::qr::Format;
use crate::{account, admin, community, crowdfunding, mall, media, notify};

/// Every endpoint of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    Index,
    Healthz,
    Readyz,
    Metrics,
    Categories,
    /// A file under `static/`, by its name.
    Static(&'a str),
    /// `POST /api/donations`
    CreateDonation,
    /// `GET /api/rankings`
    Rankings,
    /// `GET /api/donations/recent`
    RecentDonations,
    /// `GET /api/stats`
    Stats,
    /// `GET /api/stats/chart.svg`
    StatsChart,
    /// `GET /pay/{order_no}`
    PayPage(&'a str),
    /// `GET /api/payments/{order_no}`
    PaymentStatus(&'a str),
    /// `GET /api/payments/{order_no}/qr.png|qr.svg`
    PaymentQr(&'a str, Format),
    /// `POST /notify/wechat|alipay`
    Notify(Channel),
    /// `POST /sandbox/pay/{order_no}`
    SandboxPay(&'a str),
    /// The WeChat Pay emulator's API under `/sandbox/wechat/…`: the path after that prefix.
    SandboxWechat(&'a str),
    /// The Alipay emulator's gateway, `/sandbox/alipay/gateway.do`.
    SandboxAlipay,
    /// `GET /lang/{zh|en}?next=…`: picks the pages' language (a cookie).
    SetLanguage(&'a str),
    /// `GET /api/openapi.json`: the API description.
    OpenApi,
    /// `GET /api/docs`: the API description as a page.
    ApiDocs,
    /// Sign-in, sessions and the signed-in user's own records (`/api/auth/…`, `/api/me…`,
    /// `/login`, `/me`, `/auth/…`, `/sandbox/wxlogin/…`).
    Account(account::Route<'a>),
    /// The admin API and pages (`/api/admin/…`, `/admin…`).
    Admin(admin::Route<'a>),
    /// Images: uploads and serving (`/api/images`, `/media/…`).
    Media(media::Route<'a>),
    /// The signed-in user's notifications (`/api/me/notifications…`).
    Notifications(notify::Route),
    /// Crowdfunding: projects, backings, the reviewers' queue (`/api/projects…`, `/projects…`,
    /// `/api/me/backings`, `/api/me/projects`, `/api/admin/projects…`, `/admin/projects`).
    Crowdfunding(crowdfunding::Route<'a>),
    /// The mall (`/api/mall/…`, `/api/merchant/…`, `/api/admin/mall/…`, `/api/admin/coupons`,
    /// `/api/me/orders`, `/api/me/coupons`, `/mall…`, `/merchant…`, `/admin/mall…`).
    Mall(mall::Route<'a>),
    /// The community: `/api/community/…`, `/community…`, `/users/{id}` and its admin routes.
    Community(community::Route),
    NotFound,
    /// The path exists, the method does not; `allow` lists the ones that do.
    MethodNotAllowed {
        allow: &'static str,
    },
}

/// Metric labels of the core routes, indexed by [`Route::index`].
const CORE_NAMES: &[&str] = &[
    "index",
    "healthz",
    "readyz",
    "metrics",
    "categories",
    "static",
    "create_donation",
    "pay_page",
    "payment_status",
    "payment_qr",
    "notify",
    "sandbox_pay",
    "sandbox_provider",
    "not_found",
    "method_not_allowed",
    "rankings",
    "recent_donations",
    "stats",
    "stats_chart",
    "set_language",
    "openapi",
    "api_docs",
];

/// The name tables of the core and of each module, in the order of their index ranges.
const MODULES: &[&[&str]] = &[
    CORE_NAMES,
    account::Route::NAMES,
    admin::Route::NAMES,
    media::Route::NAMES,
    notify::Route::NAMES,
    crowdfunding::Route::NAMES,
    mall::Route::NAMES,
    community::Route::NAMES,
];

/// First index of each entry of [`MODULES`].
const BASES: [usize; MODULES.len()] = {
    let mut bases = [0; MODULES.len()];
    let mut i = 1;
    while i < MODULES.len() {
        bases[i] = bases[i - 1] + MODULES[i - 1].len();
        i += 1;
    }
    bases
};

/// How many routes there are, every module included (metrics keep one series per route).
pub const ROUTE_COUNT: usize = BASES[MODULES.len() - 1] + MODULES[MODULES.len() - 1].len();

/// The metric label of the route with index `index` (from [`Route::index`]).
pub fn route_name(index: usize) -> &'static str {
    let mut index = index;
    for names in MODULES {
        if index < names.len() {
            return names[index];
        }
        index -= names.len();
    }
    "unknown"
}

/// The methods routes tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// GET or HEAD.
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Other,
}

impl Verb {
    pub fn of(method: &Method) -> Verb {
        if *method == Method::GET || *method == Method::HEAD {
            Verb::Get
        } else if *method == Method::POST {
            Verb::Post
        } else if *method == Method::PUT {
            Verb::Put
        } else if *method == Method::PATCH {
            Verb::Patch
        } else if *method == Method::DELETE {
            Verb::Delete
        } else {
            Verb::Other
        }
    }
}

/// What a module's parser made of a path under its prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match<R> {
    Found(R),
    /// The path is the module's, the method is not; the methods that would work.
    WrongMethod(&'static str),
    NotFound,
}

impl<R> Match<R> {
    /// `route` for GET and HEAD, else 405.
    pub fn get(verb: Verb, route: R) -> Match<R> {
        Match::only(verb, Verb::Get, GET, route)
    }

    /// `route` for POST, else 405.
    pub fn post(verb: Verb, route: R) -> Match<R> {
        Match::only(verb, Verb::Post, POST, route)
    }

    /// `route` when `verb` is one of `accepted` (written out in `allow`, e.g. `"GET, HEAD,
    /// PATCH"`), else 405.
    pub fn any(verb: Verb, accepted: &[Verb], allow: &'static str, route: R) -> Match<R> {
        if accepted.contains(&verb) {
            Match::Found(route)
        } else {
            Match::WrongMethod(allow)
        }
    }

    fn only(verb: Verb, accepted: Verb, allow: &'static str, route: R) -> Match<R> {
        Match::any(verb, &[accepted], allow, route)
    }

    /// Into the top-level route, the found one wrapped by `module`.
    fn into_route<'a>(self, module: impl FnOnce(R) -> Route<'a>) -> Route<'a> {
        match self {
            Match::Found(route) => module(route),
            Match::WrongMethod(allow) => Route::MethodNotAllowed { allow },
            Match::NotFound => Route::NotFound,
        }
    }
}

const GET: &str = "GET, HEAD";
const POST: &str = "POST";

impl Route<'_> {
    /// A small dense number per route (modules' routes included), for metrics arrays.
    pub fn index(&self) -> usize {
        match self {
            Route::Index => 0,
            Route::Healthz => 1,
            Route::Readyz => 2,
            Route::Metrics => 3,
            Route::Categories => 4,
            Route::Static(_) => 5,
            Route::CreateDonation => 6,
            Route::PayPage(_) => 7,
            Route::PaymentStatus(_) => 8,
            Route::PaymentQr(..) => 9,
            Route::Notify(_) => 10,
            Route::SandboxPay(_) => 11,
            Route::SandboxWechat(_) | Route::SandboxAlipay => 12,
            Route::NotFound => 13,
            Route::MethodNotAllowed { .. } => 14,
            Route::Rankings => 15,
            Route::RecentDonations => 16,
            Route::Stats => 17,
            Route::StatsChart => 18,
            Route::SetLanguage(_) => 19,
            Route::OpenApi => 20,
            Route::ApiDocs => 21,
            Route::Account(route) => BASES[1] + route.index(),
            Route::Admin(route) => BASES[2] + route.index(),
            Route::Media(route) => BASES[3] + route.index(),
            Route::Notifications(route) => BASES[4] + route.index(),
            Route::Crowdfunding(route) => BASES[5] + route.index(),
            Route::Mall(route) => BASES[6] + route.index(),
            Route::Community(route) => BASES[7] + route.index(),
        }
    }
}

/// Order numbers are 6..=32 characters of `[0-9A-Za-z_-]` (WeChat's `out_trade_no` rule).
pub fn is_order_no(text: &str) -> bool {
    (6..=32).contains(&text.len()) && text.bytes().all(|b| ORDER_NO_BYTES[usize::from(b)])
}

/// Which bytes an order number may hold, by value: one load per byte on the status path.
const ORDER_NO_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        table[b] = byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-';
        b += 1;
    }
    table
};

/// A record id in a path: a positive whole number without sign or leading zeros, as the JSON
/// answers write it.
pub fn path_id(text: &str) -> Option<i64> {
    if text.starts_with('0') || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<i64>().ok().filter(|id| *id > 0)
}

/// Most path segments any route has; longer paths are `NotFound` without further looking.
const MAX_SEGMENTS: usize = 8;

/// Parses `method` + `path` (the path without its query string).
pub fn parse<'a>(method: &Method, path: &'a str) -> Route<'a> {
    if *method == Method::GET
        && let Some(route) = hottest(path)
    {
        return route;
    }
    parse_segments(method, path)
}

/// The routes most requests ask for, by their whole path (GET only): one comparison of
/// lengths and bytes instead of a split into segments. A test holds them to [`parse`].
fn hottest(path: &str) -> Option<Route<'static>> {
    Some(match path {
        "/healthz" => Route::Healthz,
        "/api/rankings" => Route::Rankings,
        "/api/donations/recent" => Route::RecentDonations,
        "/api/stats" => Route::Stats,
        "/api/categories" => Route::Categories,
        "/api/projects" => Route::Crowdfunding(crowdfunding::Route::Projects),
        "/api/mall/products" => Route::Mall(mall::Route::Products),
        "/api/community/posts" => Route::Community(community::Route::Posts),
        _ => return None,
    })
}

/// [`parse`] by segments.
fn parse_segments<'a>(method: &Method, path: &'a str) -> Route<'a> {
    let Some(rest) = path.strip_prefix('/') else {
        return Route::NotFound;
    };
    // Subtrees whose rest is handed over whole.
    if let Some(api) = rest.strip_prefix("sandbox/wechat/") {
        return Route::SandboxWechat(api);
    }
    if let Some(api) = rest.strip_prefix("sandbox/wxlogin/") {
        return Route::Account(account::Route::SandboxWechatLogin(api));
    }
    let mut segments = [""; MAX_SEGMENTS];
    let mut count = 0;
    for segment in rest.split('/') {
        if count == MAX_SEGMENTS {
            return Route::NotFound;
        }
        segments[count] = segment;
        count += 1;
    }
    let segments = &segments[..count];
    let verb = Verb::of(method);
    // Each module's prefixes; the module parses the whole path. The mall's come first: some
    // lie under the admin's and the account's.
    if mall::Route::owns(segments) {
        return mall::Route::parse(verb, segments).into_route(Route::Mall);
    }
    match segments {
        // Before the admin and account modules' prefixes.
        ["api", "projects", ..]
        | ["projects", ..]
        | ["api", "me", "backings"]
        | ["api", "me", "projects"]
        | ["api", "admin", "projects", ..]
        | ["admin", "projects"] => {
            return crowdfunding::Route::parse(verb, segments).into_route(Route::Crowdfunding);
        }
        // Before the admin module's prefixes: the community's admin routes are its own.
        ["api", "community", ..]
        | ["community", ..]
        | ["users", _]
        | ["api", "admin", "boards" | "reports" | "community", ..]
        | ["admin", "community"] => {
            return community::Route::parse(verb, segments).into_route(Route::Community);
        }
        ["api", "admin", ..] | ["admin", ..] => return admin::Route::parse(verb, rest).into_route(Route::Admin),
        ["api", "images"] | ["media", ..] => return media::Route::parse(verb, segments).into_route(Route::Media),
        // Before the account module's `api/me` prefix.
        ["api", "me", "notifications", ..] | ["me", "notifications"] => {
            return notify::Route::parse(verb, segments).into_route(Route::Notifications);
        }
        ["api", "auth", ..]
        | ["api", "me", ..]
        | ["api", "users", ..]
        | ["auth", ..]
        | ["login"]
        | ["me"]
        | ["sandbox", "mail"] => {
            return account::Route::parse(verb, segments).into_route(Route::Account);
        }
        _ => {}
    }
    let get = |route| Match::get(verb, route).into_route(|r| r);
    let post = |route| Match::post(verb, route).into_route(|r| r);
    match segments {
        [""] => get(Route::Index),
        ["healthz"] => get(Route::Healthz),
        ["readyz"] => get(Route::Readyz),
        ["metrics"] => get(Route::Metrics),
        ["api", "categories"] => get(Route::Categories),
        ["static", name] if is_asset_name(name) => get(Route::Static(name)),
        ["api", "donations"] => post(Route::CreateDonation),
        ["api", "donations", "recent"] => get(Route::RecentDonations),
        ["api", "rankings"] => get(Route::Rankings),
        ["api", "stats"] => get(Route::Stats),
        ["api", "stats", "chart.svg"] => get(Route::StatsChart),
        ["pay", no] if is_order_no(no) => get(Route::PayPage(no)),
        ["api", "payments", no] if is_order_no(no) => get(Route::PaymentStatus(no)),
        ["api", "payments", no, "qr.png"] if is_order_no(no) => get(Route::PaymentQr(no, Format::Png)),
        ["api", "payments", no, "qr.svg"] if is_order_no(no) => get(Route::PaymentQr(no, Format::Svg)),
        ["notify", "wechat"] => post(Route::Notify(Channel::Wechat)),
        ["notify", "alipay"] => post(Route::Notify(Channel::Alipay)),
        ["sandbox", "pay", no] if is_order_no(no) => post(Route::SandboxPay(no)),
        ["sandbox", "alipay", "gateway.do"] => post(Route::SandboxAlipay),
        ["lang", code] => get(Route::SetLanguage(code)),
        ["api", "openapi.json"] => get(Route::OpenApi),
        ["api", "docs"] => get(Route::ApiDocs),
        _ => Route::NotFound,
    }
}

/// Asset names are plain file names: no traversal, no hidden files.
fn is_asset_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_hottest_paths_parse_as_every_path_does() {
        for path in [
            "/healthz",
            "/api/rankings",
            "/api/donations/recent",
            "/api/stats",
            "/api/categories",
            "/api/projects",
            "/api/mall/products",
            "/api/community/posts",
        ] {
            let fast = hottest(path).unwrap_or_else(|| panic!("{path} is among the hottest"));
            assert_eq!(fast, parse_segments(&Method::GET, path), "{path}");
            assert_eq!(parse(&Method::GET, path), fast);
            assert_eq!(parse(&Method::POST, path), parse_segments(&Method::POST, path));
        }
        assert_eq!(hottest("/api/rankings/"), None);
    }

    use super::*;

    #[test]
    fn known_paths_parse_to_their_routes() {
        assert_eq!(parse(&Method::GET, "/"), Route::Index);
        assert_eq!(parse(&Method::GET, "/healthz"), Route::Healthz);
        assert_eq!(parse(&Method::HEAD, "/readyz"), Route::Readyz);
        assert_eq!(parse(&Method::GET, "/metrics"), Route::Metrics);
        assert_eq!(parse(&Method::GET, "/api/categories"), Route::Categories);
        assert_eq!(parse(&Method::GET, "/static/app.css"), Route::Static("app.css"));
        assert_eq!(parse(&Method::POST, "/api/donations"), Route::CreateDonation);
        assert_eq!(parse(&Method::GET, "/api/rankings"), Route::Rankings);
        assert_eq!(parse(&Method::GET, "/api/donations/recent"), Route::RecentDonations);
        assert_eq!(parse(&Method::GET, "/api/stats"), Route::Stats);
        assert_eq!(parse(&Method::GET, "/api/stats/chart.svg"), Route::StatsChart);
        let no = "0193a4b2c3d47e8f9a0b1c2d3e4f5a6b";
        assert_eq!(parse(&Method::GET, &format!("/pay/{no}")), Route::PayPage(no));
        assert_eq!(
            parse(&Method::GET, &format!("/api/payments/{no}")),
            Route::PaymentStatus(no)
        );
        assert_eq!(
            parse(&Method::GET, &format!("/api/payments/{no}/qr.svg")),
            Route::PaymentQr(no, Format::Svg)
        );
        assert_eq!(parse(&Method::POST, "/notify/alipay"), Route::Notify(Channel::Alipay));
        assert_eq!(
            parse(&Method::POST, &format!("/sandbox/pay/{no}")),
            Route::SandboxPay(no)
        );
        assert_eq!(
            parse(&Method::POST, "/sandbox/wechat/v3/pay/transactions/native"),
            Route::SandboxWechat("v3/pay/transactions/native")
        );
        assert_eq!(parse(&Method::GET, "/administrator"), Route::NotFound);
        assert_eq!(parse(&Method::GET, "/lang/en"), Route::SetLanguage("en"));
    }

    #[test]
    fn module_prefixes_go_to_their_module() {
        let no = "0193a4b2c3d47e8f9a0b1c2d3e4f5a6b";
        assert_eq!(
            parse(&Method::POST, "/api/auth/login"),
            Route::Account(account::Route::Login)
        );
        assert_eq!(parse(&Method::PATCH, "/api/me"), Route::Account(account::Route::Me));
        assert_eq!(
            parse(&Method::GET, &format!("/api/me/donations/{no}")),
            Route::Account(account::Route::MyDonation(no))
        );
        assert_eq!(parse(&Method::GET, "/login"), Route::Account(account::Route::LoginPage));
        assert_eq!(
            parse(&Method::POST, "/login"),
            Route::Account(account::Route::LoginForm)
        );
        assert_eq!(
            parse(&Method::GET, "/sandbox/wxlogin/sns/jscode2session"),
            Route::Account(account::Route::SandboxWechatLogin("sns/jscode2session"))
        );
        assert_eq!(
            parse(&Method::GET, "/api/admin/payments"),
            Route::Admin(admin::Route::Api("payments"))
        );
        assert_eq!(parse(&Method::GET, "/admin"), Route::Admin(admin::Route::Page("")));
        assert_eq!(
            parse(&Method::GET, "/api/community/posts/7"),
            Route::Community(community::Route::Post(7))
        );
        assert_eq!(
            parse(&Method::POST, "/api/admin/reports/3/dismiss"),
            Route::Community(community::Route::AdminDismiss(3)),
            "the community's admin routes come before the admin module's prefix"
        );
        assert_eq!(
            parse(&Method::GET, "/admin/community"),
            Route::Community(community::Route::AdminPage)
        );
        assert_eq!(
            parse(&Method::GET, "/api/admin/payments"),
            Route::Admin(admin::Route::Api("payments"))
        );
        assert_eq!(
            parse(&Method::GET, "/users/12"),
            Route::Community(community::Route::UserPage(12))
        );
        assert_eq!(
            parse(&Method::GET, "/api/users/12"),
            Route::Account(account::Route::User(12)),
            "profiles and follows stay the account module's"
        );
        assert_eq!(
            parse(&Method::GET, "/me/notifications"),
            Route::Notifications(notify::Route::Page)
        );
        assert_eq!(
            parse(&Method::GET, "/admin/categories"),
            Route::Admin(admin::Route::Page("categories"))
        );
        let id = "ab".repeat(32);
        assert_eq!(parse(&Method::POST, "/api/images"), Route::Media(media::Route::Upload));
        assert_eq!(
            parse(&Method::GET, &format!("/media/{id}")),
            Route::Media(media::Route::Image(&id))
        );
        assert_eq!(
            parse(&Method::HEAD, &format!("/media/{id}/thumb")),
            Route::Media(media::Route::Thumb(&id))
        );
        assert_eq!(parse(&Method::GET, "/media/AB"), Route::NotFound);
        assert_eq!(
            parse(&Method::GET, "/api/me/notifications/unread-count"),
            Route::Notifications(notify::Route::UnreadCount),
            "before the account module's api/me"
        );
        assert_eq!(
            parse(&Method::POST, "/api/me/notifications/read"),
            Route::Notifications(notify::Route::Read)
        );
        assert_eq!(
            parse(&Method::POST, "/api/auth/register"),
            Route::Account(account::Route::Register)
        );
        assert_eq!(
            parse(&Method::GET, "/api/users/42"),
            Route::Account(account::Route::User(42))
        );
        assert_eq!(
            parse(&Method::DELETE, "/api/users/42/follow"),
            Route::Account(account::Route::Follow(42))
        );
        assert_eq!(
            parse(&Method::GET, "/api/users/42/follow"),
            Route::MethodNotAllowed { allow: "PUT, DELETE" }
        );
        assert_eq!(parse(&Method::GET, "/api/users/042"), Route::NotFound);
        assert_eq!(
            parse(&Method::PATCH, "/api/me/addresses/7"),
            Route::Account(account::Route::Address(7))
        );
        assert_eq!(
            parse(&Method::GET, "/sandbox/mail"),
            Route::Account(account::Route::SandboxMail)
        );
        assert_eq!(parse(&Method::GET, "/api/me/nothing"), Route::NotFound);
        assert_eq!(
            parse(&Method::GET, "/api/projects/3"),
            Route::Crowdfunding(crowdfunding::Route::Project(3))
        );
        assert_eq!(
            parse(&Method::GET, "/api/me/backings"),
            Route::Crowdfunding(crowdfunding::Route::MyBackings),
            "before the account module's api/me"
        );
        assert_eq!(
            parse(&Method::POST, "/api/admin/projects/3/review"),
            Route::Crowdfunding(crowdfunding::Route::Review(3)),
            "before the admin module"
        );
        assert_eq!(
            parse(&Method::GET, "/admin/projects"),
            Route::Crowdfunding(crowdfunding::Route::QueuePage)
        );
        assert_eq!(
            parse(&Method::GET, "/admin/payments"),
            Route::Admin(admin::Route::Page("payments"))
        );
        assert_eq!(
            parse(&Method::DELETE, "/api/me"),
            Route::MethodNotAllowed {
                allow: "GET, HEAD, PATCH"
            }
        );
    }

    #[test]
    fn mall_paths_go_to_the_mall_before_the_admin_and_account_prefixes() {
        assert_eq!(
            parse(&Method::GET, "/api/mall/products"),
            Route::Mall(mall::Route::Products)
        );
        assert_eq!(
            parse(&Method::POST, "/api/admin/coupons"),
            Route::Mall(mall::Route::AdminCoupons)
        );
        assert_eq!(
            parse(&Method::GET, "/api/admin/mall/categories"),
            Route::Mall(mall::Route::AdminCategories)
        );
        assert_eq!(
            parse(&Method::GET, "/api/me/orders"),
            Route::Mall(mall::Route::MyOrders)
        );
        assert_eq!(
            parse(&Method::GET, "/api/me/coupons"),
            Route::Mall(mall::Route::MyCoupons)
        );
        assert_eq!(
            parse(&Method::GET, "/admin/mall"),
            Route::Mall(mall::Route::Admin(mall::AdminPage::Dashboard))
        );
        assert_eq!(parse(&Method::GET, "/merchant"), Route::Mall(mall::Route::SellerPage));
        assert_eq!(
            parse(&Method::GET, "/api/admin/payments"),
            Route::Admin(admin::Route::Api("payments")),
            "the rest of the admin API stays the admin's"
        );
        assert_eq!(
            parse(&Method::GET, "/api/me/addresses"),
            Route::Account(account::Route::Addresses)
        );
        assert_eq!(parse(&Method::GET, "/mall/nothing"), Route::NotFound);
        let mall = Route::Mall(mall::Route::Products).index();
        assert_eq!(route_name(mall), "mall_products");
    }

    #[test]
    fn order_numbers_follow_the_out_trade_no_rule() {
        assert!(is_order_no("abc_-9"));
        assert!(!is_order_no("abc12"), "too short");
        assert!(!is_order_no(&"a".repeat(33)), "too long");
        assert!(!is_order_no("abc12'; DROP"));
        // Every byte, against the rule as written.
        for b in 0..=255u8 {
            let text = format!("abcde{}", char::from(b));
            let rule = b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
            assert_eq!(is_order_no(&text), rule, "byte {b:#04x}");
        }
        assert_eq!(parse(&Method::GET, "/pay/short"), Route::NotFound);
        assert_eq!(parse(&Method::GET, "/api/payments/%27%20OR%201%3D1"), Route::NotFound);
    }

    #[test]
    fn path_ids_are_positive_plain_numbers() {
        assert_eq!(path_id("42"), Some(42));
        for bad in ["0", "-1", "+1", "007", "1e3", "", "9223372036854775808", "1 "] {
            assert_eq!(path_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_known_path_with_the_wrong_method_is_405_with_allow() {
        assert_eq!(
            parse(&Method::POST, "/api/categories"),
            Route::MethodNotAllowed { allow: "GET, HEAD" }
        );
        assert_eq!(
            parse(&Method::DELETE, "/"),
            Route::MethodNotAllowed { allow: "GET, HEAD" }
        );
        assert_eq!(
            parse(&Method::GET, "/api/auth/login"),
            Route::MethodNotAllowed { allow: "POST" }
        );
    }

    #[test]
    fn unknown_or_odd_paths_are_not_found() {
        for path in [
            "",
            "healthz",
            "/healthz/",
            "/api",
            "/api/categories/1/x/y",
            "/static/",
            "/static/../Cargo.toml",
            "/static/.env",
            "/static/a/b",
            "//",
            "/a/b/c/d/e/f/g/h/i",
        ] {
            assert_eq!(parse(&Method::GET, path), Route::NotFound, "{path:?}");
        }
    }

    #[test]
    fn every_route_index_is_unique_and_named() {
        let routes = [
            Route::Index,
            Route::Healthz,
            Route::Readyz,
            Route::Metrics,
            Route::Categories,
            Route::Static("x"),
            Route::CreateDonation,
            Route::PayPage("x"),
            Route::PaymentStatus("x"),
            Route::PaymentQr("x", Format::Png),
            Route::Notify(Channel::Wechat),
            Route::SandboxPay("x"),
            Route::SandboxWechat("x"),
            Route::NotFound,
            Route::MethodNotAllowed { allow: "" },
            Route::Rankings,
            Route::RecentDonations,
            Route::Stats,
            Route::StatsChart,
            Route::SetLanguage("x"),
            Route::OpenApi,
            Route::ApiDocs,
        ];
        for (i, route) in routes.iter().enumerate() {
            assert_eq!(route.index(), i);
            assert_eq!(route_name(i), CORE_NAMES[i]);
        }
        assert_eq!(CORE_NAMES.len(), routes.len());
        let account = Route::Account(account::Route::Login).index();
        assert_eq!(route_name(account), "login");
        let admin = Route::Admin(admin::Route::Page("")).index();
        assert_eq!(route_name(admin), "admin_page");
        let mut names: Vec<&str> = (0..ROUTE_COUNT).map(route_name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ROUTE_COUNT, "every label once");
        assert_eq!(route_name(ROUTE_COUNT), "unknown");
    }
}
