//! The account endpoints (contract: "Accounts and admin"): password and WeChat sign-in,
//! logout, the profile, password change and the signed-in user's donations. Sign-in answers
//! the token once in JSON and, for pages, as an `HttpOnly` `SameSite=Strict` cookie.

use std::net::IpAddr;
use std::time::Duration;

use askama::Template;
use bytes::Bytes;
use http::StatusCode;
use http::header::{self, HeaderValue};
use http::request::Parts;
use serde::Deserialize;

use super::Role;
use super::users::{self, Issued, Lockout, Method};
use super::wechat::{Flow, LoginClient};
use crate::app::State;
use crate::error::AppError;
use crate::http::extract::{self, BodyKind};
use crate::http::list::Paging;
use crate::http::respond::{self, Response};
use crate::pay::money::format_yuan;
use crate::pay::rfc3339;
use crate::store::StoreError;
use crate::ui::{self, Pager, Section, Ui};

/// Where the web sign-in returns, and the cookie that carries its `state` meanwhile.
const CALLBACK_PATH: &str = "/auth/wechat/callback";
const STATE_COOKIE: &str = "zhifu_oauth_state";

fn session_ttl(state: &State) -> Duration {
    Duration::from_secs(state.config.settings.accounts.session_ttl_secs)
}

fn secure_cookies(state: &State) -> bool {
    state.config.settings.server.public_url.starts_with("https://")
}

fn user_json(id: i64, username: Option<&str>, display_name: &str, role: Role) -> serde_json::Value {
    serde_json::json!({"id": id, "username": username, "display_name": display_name, "role": role.as_str()})
}

/// The answer to a sign-in: the token in JSON plus the cookie.
async fn signed_in(state: &State, issued: Issued) -> Result<Response, AppError> {
    let body = serde_json::json!({
        "token": issued.token,
        "expires_at": rfc3339(issued.expires_at),
        "user": user_json(issued.user_id, issued.username.as_deref(), &issued.display_name, issued.role),
    });
    let mut response = respond::json(StatusCode::OK, body.to_string());
    set_cookie(
        &mut response,
        &super::session_cookie(&issued.token, session_ttl(state), secure_cookies(state)),
    );
    Ok(response)
}

fn set_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// A local path to return to after sign-in (never another site).
fn local_next(next: Option<String>) -> String {
    ui::local_path(next)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    username: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /api/auth/login`: JSON answers the token; the sign-in page's form post answers
/// `303` to `next` with the cookie, or the page again with the error.
pub async fn login(state: &State, parts: &Parts, body: &[u8], ip: IpAddr) -> Result<Response, AppError> {
    let kind = extract::body_kind(&parts.headers, &[BodyKind::Json, BodyKind::Form])?;
    let input: LoginBody = match kind {
        BodyKind::Json => extract::json(body)?,
        BodyKind::Form => {
            let mut form = extract::pairs(body)?
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>();
            LoginBody {
                username: form.remove("username").unwrap_or_default(),
                password: form.remove("password").unwrap_or_default(),
                next: form.remove("next"),
            }
        }
    };
    if input.username.len() > 64 || input.password.len() > 1024 {
        return Err(AppError::BadCredentials);
    }
    let accounts = &state.config.settings.accounts;
    let lockout = Lockout {
        after: accounts.lockout_after,
        duration: Duration::from_secs(accounts.lockout_secs),
    };
    let result = crate::store::bounded(users::password_login(
        &state.store,
        input.username.trim(),
        &input.password,
        lockout,
        session_ttl(state),
        &ip.to_string(),
    ))
    .await;
    if kind == BodyKind::Json {
        return signed_in(state, result?).await;
    }
    match result {
        Ok(issued) => {
            let mut response = crate::http::respond::see_other(&local_next(input.next));
            set_cookie(
                &mut response,
                &super::session_cookie(&issued.token, session_ttl(state), secure_cookies(state)),
            );
            Ok(response)
        }
        Err(err) => login_refused(state, parts, &input.username, &local_next(input.next), err),
    }
}

/// `POST /login`: the sign-in page's form. Rate limited like the API (here, so that a
/// refusal is the page again with the message, not JSON).
pub async fn login_form(state: &State, parts: &Parts, body: &[u8], ip: IpAddr) -> Result<Response, AppError> {
    extract::body_kind(&parts.headers, &[BodyKind::Form])?;
    if let Err(err) = state.limits.check(crate::http::limit::Kind::Login, ip) {
        let mut form = extract::pairs(body)?
            .into_iter()
            .collect::<std::collections::HashMap<_, _>>();
        let username = form.remove("username").unwrap_or_default();
        return login_refused(state, parts, &username, &local_next(form.remove("next")), err);
    }
    login(state, parts, body, ip).await
}

/// The sign-in page again, in the visitor's language, saying why the sign-in failed.
fn login_refused(
    state: &State,
    parts: &Parts,
    username: &str,
    next: &str,
    err: AppError,
) -> Result<Response, AppError> {
    let ui = Ui::for_principal(parts, Section::Me, None);
    let t = &ui.t.account;
    let message = match &err {
        AppError::BadCredentials => t.bad_credentials.to_string(),
        AppError::Locked { retry_after_secs } => ui.fill(t.locked, retry_after_secs.div_ceil(60).max(1)),
        AppError::Forbidden => t.disabled.to_string(),
        AppError::RateLimited { retry_after_secs } => ui.fill(t.too_many, retry_after_secs),
        _ => return Err(err),
    };
    let page = LoginPage {
        ui,
        next,
        username: username.chars().take(64).collect(),
        error: Some(&message),
        wechat: wechat_web(state),
    };
    let mut response = ui::page(page.ui.lang, err.status(), &page)?;
    if let AppError::Locked { retry_after_secs } | AppError::RateLimited { retry_after_secs } = err {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    }
    Ok(response)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WechatBody {
    code: String,
    /// `mini_program` (default) or `web`.
    #[serde(default)]
    flow: Option<String>,
}

fn login_client(state: &State) -> Result<&LoginClient, AppError> {
    state
        .wechat_login
        .as_ref()
        .ok_or_else(|| AppError::invalid("wechat_login_unavailable", "WeChat sign-in is not configured"))
}

fn is_code(code: &str) -> bool {
    (1..=128).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `POST /api/auth/wechat` `{"code": "…", "flow": "mini_program" | "web"}`.
pub async fn wechat_login(state: &State, parts: &Parts, body: &[u8], ip: IpAddr) -> Result<Response, AppError> {
    extract::body_kind(&parts.headers, &[BodyKind::Json])?;
    let input: WechatBody = extract::json(body)?;
    let flow = match input.flow.as_deref() {
        None | Some("mini_program") => Flow::MiniProgram,
        Some("web") => Flow::Web,
        Some(_) => return Err(AppError::invalid("invalid_flow", "flow must be mini_program or web")),
    };
    if !is_code(&input.code) {
        return Err(AppError::invalid(
            "invalid_code",
            "code must be the code WeChat gave the client",
        ));
    }
    let identity = login_client(state)?.exchange(flow, &input.code).await?;
    let method = if flow == Flow::Web {
        Method::WechatWeb
    } else {
        Method::WechatMini
    };
    let issued = users::wechat_login(
        &state.store,
        &identity.openid,
        identity.unionid.as_deref(),
        method,
        session_ttl(state),
        &ip.to_string(),
    )
    .await?;
    signed_in(state, issued).await
}

/// `GET /auth/wechat?next=/…`: sends the browser to WeChat to approve the sign-in.
pub async fn wechat_authorize(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let client = login_client(state)?;
    let next = local_next(extract::query_param(parts.uri.query(), "next")?);
    let (nonce, _) = super::new_token().map_err(AppError::Internal)?;
    let nonce = &nonce[3..];
    let base = state.config.settings.server.public_url.trim_end_matches('/');
    let redirect_uri = if state.sandbox.is_some() {
        CALLBACK_PATH.to_string()
    } else {
        format!("{base}{CALLBACK_PATH}")
    };
    let url = client.authorize_url(&redirect_uri, nonce)?;
    let mut response = crate::http::respond::see_other(&url);
    // Lax: the cookie must come back on WeChat's top-level redirect to the callback.
    let cookie = format!(
        "{STATE_COOKIE}={nonce}|{}; Path={CALLBACK_PATH}; Max-Age=600; HttpOnly; SameSite=Lax{}",
        form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>(),
        if secure_cookies(state) { "; Secure" } else { "" }
    );
    set_cookie(&mut response, &cookie);
    Ok(response)
}

fn cookie_value<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// `GET /auth/wechat/callback?code&state`: checks `state` against the cookie set when the
/// sign-in began, exchanges the code, sets the session cookie and continues to `next`.
pub async fn wechat_callback(state: &State, parts: &Parts, ip: IpAddr) -> Result<Response, AppError> {
    let query = parts.uri.query();
    let code = extract::query_param(query, "code")?.unwrap_or_default();
    let given_state = extract::query_param(query, "state")?.unwrap_or_default();
    let (expected, next) = cookie_value(parts, STATE_COOKIE)
        .and_then(|v| v.split_once('|'))
        .ok_or_else(|| AppError::invalid("invalid_state", "the sign-in expired or began elsewhere; start again"))?;
    if given_state.is_empty() || given_state != expected || !is_code(&code) {
        return Err(AppError::invalid(
            "invalid_state",
            "the sign-in expired or began elsewhere; start again",
        ));
    }
    let next = local_next(
        form_urlencoded::parse(format!("n={next}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned()),
    );
    let identity = login_client(state)?.exchange(Flow::Web, &code).await?;
    let issued = users::wechat_login(
        &state.store,
        &identity.openid,
        identity.unionid.as_deref(),
        Method::WechatWeb,
        session_ttl(state),
        &ip.to_string(),
    )
    .await?;
    // A page that moves on by itself: the navigation it starts is same-site, so the
    // SameSite=Strict session cookie goes with it (it would not on a redirect from WeChat).
    let page = ContinuePage {
        ui: Ui::for_principal(parts, Section::Me, None),
        next: &next,
    };
    let mut response = ui::page(page.ui.lang, StatusCode::OK, &page)?;
    set_cookie(
        &mut response,
        &super::session_cookie(&issued.token, session_ttl(state), secure_cookies(state)),
    );
    set_cookie(
        &mut response,
        &format!("{STATE_COOKIE}=; Path={CALLBACK_PATH}; Max-Age=0; HttpOnly; SameSite=Lax"),
    );
    Ok(response)
}

/// `POST /api/auth/logout`: revokes this session everywhere and clears the cookie.
pub async fn logout(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let principal = state
        .sessions
        .principal(&state.store, parts)
        .await?
        .ok_or(AppError::Unauthorized)?;
    let client = state.store.client().await?;
    users::revoke(&client, &principal.token_sha256)
        .await
        .map_err(StoreError::from)?;
    state.sessions.invalidate_all();
    // The pages' "sign out" button posts a form; it goes back home.
    let mut response = if extract::body_kind(&parts.headers, &[BodyKind::Form]).is_ok() {
        crate::http::respond::see_other("/")
    } else {
        respond::with_body(
            StatusCode::NO_CONTENT,
            HeaderValue::from_static("text/plain"),
            Bytes::new(),
        )
    };
    set_cookie(&mut response, &super::clear_cookie(secure_cookies(state)));
    Ok(response)
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    ui: Ui,
    next: &'a str,
    /// What was typed, kept when the page comes back with an error.
    username: String,
    error: Option<&'a str>,
    wechat: bool,
}

#[derive(Template)]
#[template(path = "continue.html")]
struct ContinuePage<'a> {
    ui: Ui,
    next: &'a str,
}

fn wechat_web(state: &State) -> bool {
    state.wechat_login.as_ref().is_some_and(|c| c.supports(Flow::Web))
}

/// `GET /login?next=/…`: the sign-in page (works without JavaScript).
pub async fn login_page(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let next = local_next(extract::query_param(parts.uri.query(), "next")?);
    let page = LoginPage {
        ui: Ui::for_principal(parts, Section::Me, None),
        next: &next,
        username: String::new(),
        error: None,
        wechat: wechat_web(state),
    };
    ui::page(page.ui.lang, StatusCode::OK, &page)
}

const SELECT_ME: &str = "SELECT id, username, display_name, role, wechat_openid IS NOT NULL, created_at, email,
        email_verified_at IS NOT NULL, avatar, bio, followers_count, following_count, posts_count
   FROM users WHERE id = $1";

/// The signed-in user as `GET /api/me` shows it (their own email included).
pub(super) async fn me_json(state: &State, user_id: i64) -> Result<serde_json::Value, AppError> {
    let row = state
        .store
        .client()
        .await?
        .query_opt(SELECT_ME, &[&user_id])
        .await
        .map_err(StoreError::from)?
        .ok_or(AppError::Unauthorized)?;
    let mut json = user_json(
        row.get(0),
        row.get(1),
        row.get(2),
        Role::parse(row.get(3)).unwrap_or(Role::User),
    );
    let avatar: Option<String> = row.get(8);
    json["wechat"] = row.get::<_, bool>(4).into();
    json["created_at"] = rfc3339(row.get(5)).into();
    json["email"] = row.get::<_, Option<String>>(6).into();
    json["email_verified"] = row.get::<_, bool>(7).into();
    json["avatar"] = avatar.clone().into();
    json["avatar_url"] = avatar.as_deref().map(crate::media::url).into();
    json["bio"] = row.get::<_, String>(9).into();
    json["followers"] = row.get::<_, i64>(10).into();
    json["following"] = row.get::<_, i64>(11).into();
    json["posts"] = row.get::<_, i64>(12).into();
    Ok(json)
}

/// `GET /api/me` (the profile) and `PATCH /api/me` `{"display_name", "avatar", "bio"}`
/// (each optional).
pub async fn me(state: &State, parts: &Parts, body: &[u8]) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    if parts.method == http::Method::PATCH {
        extract::body_kind(&parts.headers, &[BodyKind::Json])?;
        let patch: super::profiles::ProfilePatch = extract::json(body)?;
        super::profiles::update_me(state, &principal, patch).await?;
    }
    Ok(respond::json(
        StatusCode::OK,
        me_json(state, principal.user_id).await?.to_string(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    current_password: String,
    new_password: String,
}

/// `POST /api/me/password`: every session of the user ends; the answer carries a new one.
pub async fn change_password(state: &State, parts: &Parts, body: &[u8], ip: IpAddr) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    extract::body_kind(&parts.headers, &[BodyKind::Json])?;
    let input: PasswordBody = extract::json(body)?;
    if input.current_password.len() > 1024 {
        return Err(AppError::BadCredentials);
    }
    let issued = users::change_password(
        &state.store,
        principal.user_id,
        &input.current_password,
        &input.new_password,
        session_ttl(state),
        &ip.to_string(),
    )
    .await?;
    state.sessions.invalidate_all();
    signed_in(state, issued).await
}

const MY_DONATION_COLUMNS: &str = "p.order_no, p.status, p.amount_fen, p.refunded_fen, p.channel, d.category_id,
        d.donor_name, d.message, d.anonymous, p.created_at, p.paid_at, p.late";

fn donation_json(row: &tokio_postgres::Row) -> serde_json::Value {
    let amount: i64 = row.get(2);
    let refunded: i64 = row.get(3);
    serde_json::json!({
        "order_no": row.get::<_, String>(0),
        "status": row.get::<_, String>(1),
        "amount": format_yuan(amount),
        "amount_fen": amount,
        "refunded_fen": refunded,
        "channel": row.get::<_, String>(4),
        "category_id": row.get::<_, i64>(5),
        "donor_name": row.get::<_, String>(6),
        "message": row.get::<_, String>(7),
        "anonymous": row.get::<_, bool>(8),
        "created_at": rfc3339(row.get(9)),
        "paid_at": row.get::<_, Option<time::OffsetDateTime>>(10).map(rfc3339),
        "late": row.get::<_, bool>(11),
    })
}

/// One page of the user's donations, newest first, and how many there are in all.
async fn donations_page(
    state: &State,
    user_id: i64,
    page: u32,
    size: u32,
) -> Result<(Vec<serde_json::Value>, i64), AppError> {
    let client = state.store.client().await?;
    let sql = format!(
        "SELECT {MY_DONATION_COLUMNS}, count(*) OVER ()
           FROM donations d JOIN payments p USING (order_no)
          WHERE d.user_id = $1 ORDER BY p.created_at DESC, p.order_no DESC LIMIT $2 OFFSET $3"
    );
    let rows = client
        .query(
            &sql,
            &[&user_id, &i64::from(size), &(i64::from(page - 1) * i64::from(size))],
        )
        .await
        .map_err(StoreError::from)?;
    let total: i64 = match rows.first() {
        Some(row) => row.get(12),
        None => client
            .query_one("SELECT count(*) FROM donations WHERE user_id = $1", &[&user_id])
            .await
            .map_err(StoreError::from)?
            .get(0),
    };
    Ok((rows.iter().map(donation_json).collect(), total))
}

/// `GET /api/me/donations?page=&size=`: the user's donations, newest first.
pub async fn my_donations(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    let paging = Paging::standard(parts.uri.query())?;
    let (items, total) = donations_page(state, principal.user_id, paging.page, paging.size).await?;
    let body = serde_json::to_vec(&paging.listing(total, items)).map_err(|e| AppError::Internal(e.into()))?;
    Ok(respond::json(StatusCode::OK, body))
}

#[derive(Template)]
#[template(path = "me.html")]
struct MePage<'a> {
    ui: Ui,
    user_id: i64,
    name: &'a str,
    username: Option<&'a str>,
    role: &'a str,
    is_admin: bool,
    items: Vec<MyDonation>,
    total: i64,
    pager: Pager,
}

/// A donation on the user's page.
struct MyDonation {
    order_no: String,
    status: String,
    amount: String,
    channel: String,
    created_at: String,
    message: String,
}

impl MyDonation {
    fn from_json(item: &serde_json::Value) -> MyDonation {
        let text = |name: &str| item[name].as_str().unwrap_or_default().to_string();
        MyDonation {
            order_no: text("order_no"),
            status: text("status"),
            amount: text("amount"),
            channel: text("channel"),
            created_at: text("created_at"),
            message: text("message"),
        }
    }
}

/// `GET /me?page=`: the user's page; without a session, the sign-in page first.
pub async fn me_page(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let principal = match state.sessions.principal(&state.store, parts).await {
        Ok(Some(principal)) => principal,
        Ok(None) | Err(AppError::Unauthorized) => return Ok(crate::http::respond::see_other("/login?next=/me")),
        Err(other) => return Err(other),
    };
    const SIZE: u32 = 20;
    let page = extract::number_param(parts.uri.query(), "page", 1, 100_000, "invalid_page")?;
    let (items, total) = donations_page(state, principal.user_id, page, SIZE).await?;
    let mut ui = Ui::for_principal(parts, Section::Me, Some(&principal));
    ui.fill_unread(state, principal.user_id).await;
    let page = MePage {
        ui,
        user_id: principal.user_id,
        name: &principal.display_name,
        username: principal.username.as_deref(),
        role: principal.role.as_str(),
        is_admin: principal.role == Role::Admin,
        items: items.iter().map(MyDonation::from_json).collect(),
        total,
        pager: Pager::new("/me", parts.uri.query(), page, SIZE, total)?,
    };
    ui::page(page.ui.lang, StatusCode::OK, &page)
}

/// `GET /api/me/donations/{order_no}`: one of the user's donations; someone else's is 404.
pub async fn my_donation(state: &State, parts: &Parts, order_no: &str) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    let sql = format!(
        "SELECT {MY_DONATION_COLUMNS} FROM donations d JOIN payments p USING (order_no)
          WHERE d.order_no = $1 AND d.user_id = $2"
    );
    let row = state
        .store
        .client()
        .await?
        .query_opt(&sql, &[&order_no, &principal.user_id])
        .await
        .map_err(StoreError::from)?
        .ok_or(AppError::NotFound)?;
    Ok(respond::json(StatusCode::OK, donation_json(&row).to_string()))
}
