//! The account module's routes: registration, sign-in and sessions (`/api/auth/…`, `/login`,
//! `/auth/…`), the signed-in user's own records (`/api/me…`, `/me`: profile, donations,
//! addresses), public profiles and follows (`/api/users/…`), and the sandbox's WeChat
//! sign-in emulator (`/sandbox/wxlogin/…`) and mail outbox (`/sandbox/mail`). Parsed from the
//! path by [`Route::parse`], served by [`dispatch`].

use std::net::IpAddr;

use http::request::Parts;
use hyper::body::Incoming;

use super::{addresses, follows, handlers, profiles, register};
use crate::app::State;
use crate::error::AppError;
use crate::http::limit;
use crate::http::read_body;
use crate::http::respond;
use crate::http::respond::Response;
use crate::http::route::{Match, Verb, is_order_no, path_id};

/// An account endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// `POST /api/auth/login`: password sign-in.
    Login,
    /// `POST /api/auth/wechat`: sign-in with a WeChat code (mini program or web).
    WechatLogin,
    /// `POST /api/auth/logout`
    Logout,
    /// `GET /login`: the sign-in page.
    LoginPage,
    /// `POST /login`: the sign-in page's form.
    LoginForm,
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
    /// `GET /me`: the signed-in user's page (profile and donations).
    MePage,
    /// The WeChat sign-in emulator under `/sandbox/wxlogin/…`: the path after that prefix.
    SandboxWechatLogin(&'a str),
    /// `POST /api/auth/register`
    Register,
    /// `GET /auth/verify-email?token=`: the page a verification link opens.
    VerifyEmail,
    /// `POST /api/me/email/verify`: mail a new verification link.
    ResendVerification,
    /// `GET /api/users/{id}`: a public profile.
    User(i64),
    /// `PUT` / `DELETE /api/users/{id}/follow`
    Follow(i64),
    /// `GET /api/users/{id}/followers`
    Followers(i64),
    /// `GET /api/users/{id}/following`
    Following(i64),
    /// `GET` / `POST /api/me/addresses`
    Addresses,
    /// `GET` / `PATCH` / `DELETE /api/me/addresses/{id}`
    Address(i64),
    /// `GET /sandbox/mail`: the mail outbox (sandbox mode only).
    SandboxMail,
}

impl<'a> Route<'a> {
    /// Metric labels, indexed by [`Route::index`].
    pub const NAMES: &'static [&'static str] = &[
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
        "me_page",
        "sandbox_wechat_login",
        "register",
        "verify_email",
        "resend_verification",
        "user_profile",
        "follow",
        "followers",
        "following",
        "addresses",
        "address",
        "sandbox_mail",
        "login_form",
    ];

    /// A dense number per route, for metrics.
    pub fn index(&self) -> usize {
        match self {
            Route::Login => 0,
            Route::WechatLogin => 1,
            Route::Logout => 2,
            Route::LoginPage => 3,
            Route::WechatAuthorize => 4,
            Route::WechatCallback => 5,
            Route::Me => 6,
            Route::MePassword => 7,
            Route::MyDonations => 8,
            Route::MyDonation(_) => 9,
            Route::MePage => 10,
            Route::SandboxWechatLogin(_) => 11,
            Route::Register => 12,
            Route::VerifyEmail => 13,
            Route::ResendVerification => 14,
            Route::User(_) => 15,
            Route::Follow(_) => 16,
            Route::Followers(_) => 17,
            Route::Following(_) => 18,
            Route::Addresses => 19,
            Route::Address(_) => 20,
            Route::SandboxMail => 21,
            Route::LoginForm => 22,
        }
    }

    /// Parses a path under the module's prefixes (`segments` of the whole path).
    pub fn parse(verb: Verb, segments: &[&'a str]) -> Match<Route<'a>> {
        match segments {
            ["api", "auth", "login"] => Match::post(verb, Route::Login),
            ["api", "auth", "wechat"] => Match::post(verb, Route::WechatLogin),
            ["api", "auth", "logout"] => Match::post(verb, Route::Logout),
            ["login"] => match verb {
                Verb::Get => Match::Found(Route::LoginPage),
                Verb::Post => Match::Found(Route::LoginForm),
                _ => Match::WrongMethod("GET, HEAD, POST"),
            },
            ["me"] => Match::get(verb, Route::MePage),
            ["auth", "wechat"] => Match::get(verb, Route::WechatAuthorize),
            ["auth", "wechat", "callback"] => Match::get(verb, Route::WechatCallback),
            ["api", "me"] => Match::any(verb, &[Verb::Get, Verb::Patch], "GET, HEAD, PATCH", Route::Me),
            ["api", "me", "password"] => Match::post(verb, Route::MePassword),
            ["api", "me", "donations"] => Match::get(verb, Route::MyDonations),
            ["api", "me", "donations", no] if is_order_no(no) => Match::get(verb, Route::MyDonation(no)),
            ["api", "auth", "register"] => Match::post(verb, Route::Register),
            ["auth", "verify-email"] => Match::get(verb, Route::VerifyEmail),
            ["api", "me", "email", "verify"] => Match::post(verb, Route::ResendVerification),
            ["api", "me", "addresses"] => {
                Match::any(verb, &[Verb::Get, Verb::Post], "GET, HEAD, POST", Route::Addresses)
            }
            ["api", "me", "addresses", id] => match path_id(id) {
                Some(id) => Match::any(
                    verb,
                    &[Verb::Get, Verb::Patch, Verb::Delete],
                    "GET, HEAD, PATCH, DELETE",
                    Route::Address(id),
                ),
                None => Match::NotFound,
            },
            ["api", "users", id, rest @ ..] => match (path_id(id), rest) {
                (Some(id), []) => Match::get(verb, Route::User(id)),
                (Some(id), ["follow"]) => {
                    Match::any(verb, &[Verb::Put, Verb::Delete], "PUT, DELETE", Route::Follow(id))
                }
                (Some(id), ["followers"]) => Match::get(verb, Route::Followers(id)),
                (Some(id), ["following"]) => Match::get(verb, Route::Following(id)),
                _ => Match::NotFound,
            },
            ["sandbox", "mail"] => Match::get(verb, Route::SandboxMail),
            _ => Match::NotFound,
        }
    }

    /// Reads that answer 503 rather than wait on a database that stopped answering.
    pub fn is_bounded_read(&self) -> bool {
        matches!(
            self,
            Route::LoginPage
                | Route::MePage
                | Route::MyDonations
                | Route::MyDonation(_)
                | Route::User(_)
                | Route::Followers(_)
                | Route::Following(_)
                | Route::SandboxMail
        )
    }
}

/// Serves an account route (a cold path: the caller boxes this future).
pub async fn dispatch(
    state: &State,
    route: Route<'_>,
    parts: &Parts,
    body: Incoming,
    ip: IpAddr,
) -> Result<Response, AppError> {
    if matches!(
        route,
        Route::Login
            | Route::LoginForm
            | Route::WechatLogin
            | Route::WechatCallback
            | Route::Register
            | Route::ResendVerification
    ) {
        state.limits.check(limit::Kind::Login, ip)?;
    }
    match route {
        Route::Login => handlers::login(state, parts, &read_body(state, body).await?, ip).await,
        Route::WechatLogin => handlers::wechat_login(state, parts, &read_body(state, body).await?, ip).await,
        Route::Logout => {
            read_body(state, body).await?;
            handlers::logout(state, parts).await
        }
        Route::MePage => handlers::me_page(state, parts).await,
        Route::LoginPage => handlers::login_page(state, parts).await,
        Route::LoginForm => handlers::login_form(state, parts, &read_body(state, body).await?, ip).await,
        Route::WechatAuthorize => handlers::wechat_authorize(state, parts).await,
        Route::WechatCallback => handlers::wechat_callback(state, parts, ip).await,
        Route::Me => handlers::me(state, parts, &read_body(state, body).await?).await,
        Route::MePassword => handlers::change_password(state, parts, &read_body(state, body).await?, ip).await,
        Route::MyDonations => handlers::my_donations(state, parts).await,
        Route::MyDonation(no) => handlers::my_donation(state, parts, no).await,
        Route::SandboxWechatLogin(path) => {
            let sandbox = state.sandbox.as_ref().ok_or(AppError::NotFound)?;
            super::wechat::sandbox(sandbox, path, parts, &read_body(state, body).await?).await
        }
        Route::Register => register::register(state, parts, &read_body(state, body).await?).await,
        Route::VerifyEmail => register::verify_email(state, parts).await,
        Route::ResendVerification => {
            read_body(state, body).await?;
            register::resend(state, parts).await
        }
        Route::User(id) => profiles::profile(state, parts, id).await,
        Route::Follow(id) => {
            read_body(state, body).await?;
            follows::follow(state, parts, id, parts.method == http::Method::PUT).await
        }
        Route::Followers(id) => follows::list(state, parts, id, true).await,
        Route::Following(id) => follows::list(state, parts, id, false).await,
        Route::Addresses if parts.method == http::Method::POST => {
            addresses::create(state, parts, &read_body(state, body).await?).await
        }
        Route::Addresses => addresses::list(state, parts).await,
        Route::Address(id) => addresses::one(state, parts, id, &read_body(state, body).await?).await,
        Route::SandboxMail => {
            state.sandbox.as_ref().ok_or(AppError::NotFound)?;
            let body = crate::mail::outbox_json(&state.store).await?;
            Ok(respond::json(http::StatusCode::OK, body))
        }
    }
}
