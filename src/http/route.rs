//! `Route`: what a request asks for, parsed purely from its method and path (no allocation),
//! then dispatched by one exhaustive `match` in `http::dispatch`. Unknown paths are `NotFound`;
//! known paths with the wrong method are `MethodNotAllowed` with the methods that would work.

use http::Method;

use crate::pay::provider::Channel;
use crate::pay::qr::Format;

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
    /// `POST /api/auth/login`: password sign-in.
    Login,
    /// `POST /api/auth/wechat`: sign-in with a WeChat code (mini program or web).
    WechatLogin,
    /// `POST /api/auth/logout`
    Logout,
    /// `GET /login`: the sign-in page.
    LoginPage,
    /// `GET /auth/wechat`: starts the web OAuth sign-in (redirects to WeChat).
    WechatAuthorize,
    /// `GET /auth/wechat/callback`: where WeChat sends the browser back with a code.
    WechatCallback,
    /// `GET` / `PATCH /api/me`: the signed-in user's profile.
    Me,
    /// `POST /api/me/password`
    MePassword,
    /// `GET /api/me/donations`
    MyDonations,
    /// `GET /api/me/donations/{order_no}`
    MyDonation(&'a str),
    /// `/api/admin/…`: the path after that prefix, routed by the admin module.
    AdminApi(&'a str),
    /// `/admin` and `/admin/…`: the admin pages; the path after `/admin`.
    AdminPage(&'a str),
    /// The WeChat sign-in emulator under `/sandbox/wxlogin/…`: the path after that prefix.
    SandboxWechatLogin(&'a str),
    /// `GET /me`: the signed-in user's page (profile and donations).
    MePage,
    /// `POST /login`: the sign-in page's form.
    LoginForm,
    /// `GET /lang/{zh|en}?next=…`: picks the pages' language (a cookie).
    SetLanguage(&'a str),
    NotFound,
    /// The path exists, the method does not; `allow` lists the ones that do.
    MethodNotAllowed {
        allow: &'static str,
    },
}

/// Labels of the routes for metrics, indexed by [`Route::index`].
pub const ROUTE_NAMES: &[&str] = &[
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
    "login",
    "wechat_login",
    "logout",
    "login_page",
    "wechat_authorize",
    "wechat_callback",
    "me",
    "me_password",
    "my_donations",
    "my_donation",
    "admin_api",
    "admin_page",
    "sandbox_wechat_login",
    "me_page",
    "login_form",
    "set_language",
];

const GET: &str = "GET, HEAD";
const POST: &str = "POST";
const GET_PATCH: &str = "GET, HEAD, PATCH";
const GET_POST: &str = "GET, HEAD, POST";

impl Route<'_> {
    /// A small dense number per variant, for metrics arrays.
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
            Route::Login => 19,
            Route::WechatLogin => 20,
            Route::Logout => 21,
            Route::LoginPage => 22,
            Route::WechatAuthorize => 23,
            Route::WechatCallback => 24,
            Route::Me => 25,
            Route::MePassword => 26,
            Route::MyDonations => 27,
            Route::MyDonation(_) => 28,
            Route::AdminApi(_) => 29,
            Route::AdminPage(_) => 30,
            Route::SandboxWechatLogin(_) => 31,
            Route::MePage => 32,
            Route::LoginForm => 33,
            Route::SetLanguage(_) => 34,
        }
    }
}

/// Order numbers are 6..=32 characters of `[0-9A-Za-z_-]` (WeChat's `out_trade_no` rule).
pub fn is_order_no(text: &str) -> bool {
    (6..=32).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Most path segments any route has; longer paths are `NotFound` without further looking.
const MAX_SEGMENTS: usize = 4;

/// Parses `method` + `path` (the path without its query string).
pub fn parse<'a>(method: &Method, path: &'a str) -> Route<'a> {
    let Some(rest) = path.strip_prefix('/') else {
        return Route::NotFound;
    };
    if let Some(api) = rest.strip_prefix("sandbox/wechat/") {
        return Route::SandboxWechat(api);
    }
    if let Some(api) = rest.strip_prefix("api/admin/") {
        return Route::AdminApi(api);
    }
    if rest == "admin" {
        return Route::AdminPage("");
    }
    if let Some(page) = rest.strip_prefix("admin/") {
        return Route::AdminPage(page);
    }
    if let Some(api) = rest.strip_prefix("sandbox/wxlogin/") {
        return Route::SandboxWechatLogin(api);
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
    let is_get = *method == Method::GET || *method == Method::HEAD;
    let is_post = *method == Method::POST;
    let get = |route| {
        if is_get {
            route
        } else {
            Route::MethodNotAllowed { allow: GET }
        }
    };
    let post = |route| {
        if is_post {
            route
        } else {
            Route::MethodNotAllowed { allow: POST }
        }
    };
    match &segments[..count] {
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
        ["api", "auth", "login"] => post(Route::Login),
        ["api", "auth", "wechat"] => post(Route::WechatLogin),
        ["api", "auth", "logout"] => post(Route::Logout),
        ["login"] if is_post => Route::LoginForm,
        ["login"] if is_get => Route::LoginPage,
        ["login"] => Route::MethodNotAllowed { allow: GET_POST },
        ["lang", code] => get(Route::SetLanguage(code)),
        ["me"] => get(Route::MePage),
        ["auth", "wechat"] => get(Route::WechatAuthorize),
        ["auth", "wechat", "callback"] => get(Route::WechatCallback),
        ["api", "me"] => {
            if is_get || *method == Method::PATCH {
                Route::Me
            } else {
                Route::MethodNotAllowed { allow: GET_PATCH }
            }
        }
        ["api", "me", "password"] => post(Route::MePassword),
        ["api", "me", "donations"] => get(Route::MyDonations),
        ["api", "me", "donations", no] if is_order_no(no) => get(Route::MyDonation(no)),
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
        assert_eq!(parse(&Method::POST, "/api/auth/login"), Route::Login);
        assert_eq!(parse(&Method::PATCH, "/api/me"), Route::Me);
        assert_eq!(
            parse(&Method::GET, &format!("/api/me/donations/{no}")),
            Route::MyDonation(no)
        );
        assert_eq!(parse(&Method::GET, "/api/admin/payments"), Route::AdminApi("payments"));
        assert_eq!(parse(&Method::GET, "/admin"), Route::AdminPage(""));
        assert_eq!(parse(&Method::GET, "/admin/categories"), Route::AdminPage("categories"));
        assert_eq!(parse(&Method::GET, "/administrator"), Route::NotFound);
        assert_eq!(parse(&Method::GET, "/login"), Route::LoginPage);
        assert_eq!(parse(&Method::POST, "/login"), Route::LoginForm);
        assert_eq!(parse(&Method::GET, "/lang/en"), Route::SetLanguage("en"));
    }

    #[test]
    fn order_numbers_follow_the_out_trade_no_rule() {
        assert!(is_order_no("abc_-9"));
        assert!(!is_order_no("abc12"), "too short");
        assert!(!is_order_no(&"a".repeat(33)), "too long");
        assert!(!is_order_no("abc12'; DROP"));
        assert_eq!(parse(&Method::GET, "/pay/short"), Route::NotFound);
        assert_eq!(parse(&Method::GET, "/api/payments/%27%20OR%201%3D1"), Route::NotFound);
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
            "/a/b/c/d/e/f/g",
        ] {
            assert_eq!(parse(&Method::GET, path), Route::NotFound, "{path:?}");
        }
    }

    #[test]
    fn every_route_index_has_a_name() {
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
            Route::Login,
            Route::WechatLogin,
            Route::Logout,
            Route::LoginPage,
            Route::WechatAuthorize,
            Route::WechatCallback,
            Route::Me,
            Route::MePassword,
            Route::MyDonations,
            Route::MyDonation("x"),
            Route::AdminApi("x"),
            Route::AdminPage("x"),
            Route::SandboxWechatLogin("x"),
            Route::MePage,
            Route::LoginForm,
            Route::SetLanguage("x"),
        ];
        for (i, route) in routes.iter().enumerate() {
            assert_eq!(route.index(), i);
        }
        assert_eq!(ROUTE_NAMES.len(), routes.len());
    }
}
