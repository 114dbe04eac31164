//! Registration with email verification: `POST /api/auth/register` makes a password account
//! that can sign in at once, and in the same transaction writes a single-use verification
//! link (valid 24 h, only its SHA-256 stored) and the mail carrying it into the outbox.
//! `GET /auth/verify-email?token=` marks the address verified; `POST /api/me/email/verify`
//! sends a new link.

use askama::Template;
use deadpool_postgres::GenericClient;
use http::StatusCode;
use http::request::Parts;
use serde::Deserialize;

use super::{Role, new_token, password, token_sha256, users};
use crate::app::State;
use crate::error::AppError;
use crate::http::extract::{self, BodyKind};
use crate::http::respond::{self, Response};
use crate::store::StoreError;
use crate::ui::{self, Section, Ui};

/// How long a verification link works.
const LINK_TTL_SECS: f64 = 24.0 * 3600.0;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterBody {
    #[schemars(regex(pattern = r"^[A-Za-z0-9_.-]{3,32}$"))]
    username: String,
    #[schemars(length(min = 10, max = 128))]
    password: String,
    #[schemars(length(max = 254))]
    email: String,
    #[schemars(length(max = 32))]
    display_name: String,
}

/// A plausible mail address (what lettre will accept too), trimmed; `None` otherwise.
pub fn clean_email(text: &str) -> Option<String> {
    let email = text.trim();
    let (local, domain) = email.rsplit_once('@')?;
    let plausible = (3..=254).contains(&email.len())
        && (1..=64).contains(&local.len())
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'));
    (plausible && email.parse::<lettre::Address>().is_ok()).then(|| email.to_string())
}

const INSERT_USER: &str = "INSERT INTO users (username, password_hash, display_name, email)
     VALUES ($1, $2, $3, $4) RETURNING id";
const INSERT_LINK: &str = "INSERT INTO email_verifications (token_sha256, user_id, email, expires_at)
     VALUES ($1, $2, $3, now() + make_interval(secs => $4))";

/// `POST /api/auth/register` `{"username","password","email","display_name"}` → `201`
/// `{"user": …}`; `409 username_taken` / `email_taken`.
pub async fn register(state: &State, parts: &Parts, body: &[u8]) -> Result<Response, AppError> {
    extract::body_kind(&parts.headers, &[BodyKind::Json])?;
    let input: RegisterBody = extract::json(body)?;
    let username = input.username.trim();
    if !users::is_username(username) {
        return Err(AppError::invalid(
            "invalid_username",
            "username must be 3 to 32 letters, digits, '_', '.' or '-'",
        ));
    }
    let display_name = users::clean_display_name(&input.display_name).ok_or_else(|| {
        AppError::invalid(
            "invalid_display_name",
            "display_name must be 1 to 32 characters, no control characters",
        )
    })?;
    let email = clean_email(&input.email)
        .ok_or_else(|| AppError::invalid("invalid_email", "email must be a mail address such as name@example.com"))?;
    password::check_strength(&input.password).map_err(|m| AppError::invalid("weak_password", m))?;
    let phc = password::hash(input.password).await.map_err(AppError::Internal)?;
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let user_id: i64 = tx
        .query_one(INSERT_USER, &[&username, &phc, &display_name, &email])
        .await
        .map_err(|e| {
            AppError::from_unique(
                e,
                &[
                    ("users_username_key", "username_taken", "this username is taken"),
                    ("users_email_key", "email_taken", "an account with this email exists"),
                ],
            )
        })?
        .get(0);
    send_link(state, &tx, user_id, &email, &display_name).await?;
    tx.commit().await.map_err(StoreError::from)?;
    drop(client);
    let user = super::handlers::me_json(state, user_id).await?;
    Ok(respond::json(
        StatusCode::CREATED,
        serde_json::json!({ "user": user }).to_string(),
    ))
}

/// Writes a new verification link for `email` and the mail carrying it, in `tx`.
async fn send_link(
    state: &State,
    tx: &impl GenericClient,
    user_id: i64,
    email: &str,
    name: &str,
) -> Result<(), AppError> {
    let (token, hash) = new_token().map_err(AppError::Internal)?;
    tx.execute(INSERT_LINK, &[&hash.as_slice(), &user_id, &email, &LINK_TTL_SECS])
        .await
        .map_err(StoreError::from)?;
    let base = state.config.settings.server.public_url.trim_end_matches('/');
    let link = format!("{base}/auth/verify-email?token={token}");
    let text = format!(
        "{name}，你好：\n\n请在 24 小时内打开下面的链接，验证你在 zhifu 的邮箱：\n{link}\n\n\
         Hello {name}, open the link above within 24 hours to verify your email address at zhifu.\n\
         如果你没有注册过 zhifu，请忽略这封邮件。 If you did not register, ignore this mail.\n"
    );
    crate::mail::enqueue(
        tx,
        &state.config.settings.mail,
        email,
        "验证你的邮箱 · Verify your email (zhifu)",
        &text,
    )
    .await
    .map_err(StoreError::from)?;
    Ok(())
}

const SELECT_UNVERIFIED: &str = "SELECT email, display_name FROM users WHERE id = $1 AND email IS NOT NULL AND email_verified_at IS NULL FOR UPDATE";

/// `POST /api/me/email/verify`: mails a new link (earlier ones keep working until they
/// expire); `409 email_verified` when there is nothing to verify.
pub async fn resend(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let row = tx
        .query_opt(SELECT_UNVERIFIED, &[&principal.user_id])
        .await
        .map_err(StoreError::from)?
        .ok_or_else(|| AppError::conflict("email_verified", "there is no unverified email on this account"))?;
    let (email, name): (String, String) = (row.get(0), row.get(1));
    send_link(state, &tx, principal.user_id, &email, &name).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(respond::json(StatusCode::ACCEPTED, r#"{"sent":true}"#))
}

#[derive(Template)]
#[template(path = "verify_email.html")]
struct VerifyPage<'a> {
    ui: Ui,
    /// `verified`, `used`, `expired` or `invalid` (the page's `data-result`).
    result: &'a str,
    message: &'a str,
}

const USE_LINK: &str = "UPDATE email_verifications SET used_at = now()
  WHERE token_sha256 = $1 AND used_at IS NULL AND expires_at > now() RETURNING user_id, email";
const MARK_VERIFIED: &str =
    "UPDATE users SET email_verified_at = coalesce(email_verified_at, now()), updated_at = now()
  WHERE id = $1 AND lower(email) = lower($2)";
const LINK_STATE: &str = "SELECT used_at IS NOT NULL FROM email_verifications WHERE token_sha256 = $1";

/// `GET /auth/verify-email?token=…`: uses the link once and says what happened.
pub async fn verify_email(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let token = extract::query_param(parts.uri.query(), "token")?.unwrap_or_default();
    let (status, result) = if super::is_token(&token) {
        use_link(state, &token_sha256(&token)).await?
    } else {
        invalid()
    };
    let ui = Ui::new(state, parts, Section::Me).await;
    let t = &ui.t.account;
    let message = match result {
        "verified" => t.verify_verified,
        "used" => t.verify_used,
        "expired" => t.verify_expired,
        _ => t.verify_invalid,
    };
    let page = VerifyPage { ui, result, message };
    ui::page(page.ui.lang, status, &page)
}

fn invalid() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "invalid")
}

async fn use_link(state: &State, hash: &[u8; 32]) -> Result<(StatusCode, &'static str), AppError> {
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let used = tx
        .query_opt(USE_LINK, &[&hash.as_slice()])
        .await
        .map_err(StoreError::from)?;
    if let Some(row) = used {
        let (user_id, email): (i64, String) = (row.get(0), row.get(1));
        let verified = tx
            .execute(MARK_VERIFIED, &[&user_id, &email])
            .await
            .map_err(StoreError::from)?;
        tx.commit().await.map_err(StoreError::from)?;
        return Ok(if verified == 1 {
            (StatusCode::OK, "verified")
        } else {
            // The account's address changed since the link was sent.
            invalid()
        });
    }
    let known = tx
        .query_opt(LINK_STATE, &[&hash.as_slice()])
        .await
        .map_err(StoreError::from)?;
    Ok(match known.map(|row| row.get::<_, bool>(0)) {
        Some(true) => (StatusCode::GONE, "used"),
        Some(false) => (StatusCode::GONE, "expired"),
        None => invalid(),
    })
}
