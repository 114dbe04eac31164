//! Accounts: users, roles and sessions. A session is an opaque random token; only its SHA-256
//! is stored, so a database leak gives no usable token. Valid sessions are cached in memory;
//! logout, a password change or a role change drops them on every instance through the
//! event bus, and the cache's short TTL bounds any miss of that event.
//!
//! Who is asking comes from `Authorization: Bearer <token>` or, for pages, the `HttpOnly`
//! cookie [`COOKIE`]. A cookie is believed on a state-changing request only when the browser
//! says the request came from our own pages (see [`cookie_is_same_origin`]).

pub mod addresses;
pub mod cli;
pub(crate) mod follows;
pub mod handlers;
pub mod password;
pub mod profiles;
pub(crate) mod register;
mod route;
pub mod users;
pub mod wechat;

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use http::header;
use http::request::Parts;
use time::OffsetDateTime;

use crate::error::AppError;
use crate::store::{Store, StoreError};

pub use profiles::Profiles;
pub use route::{Route, dispatch};

/// The session cookie pages use.
pub const COOKIE: &str = "zhifu_session";

/// Tokens are this prefix and 32 random bytes in unpadded base64url.
const TOKEN_PREFIX: &str = "zf_";
const TOKEN_LEN: usize = 3 + 43;

/// What an account may do. Admin may do everything; merchant and reviewer each have their
/// own area besides what every user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Merchant,
    Reviewer,
    Admin,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "user" => Some(Role::User),
            "merchant" => Some(Role::Merchant),
            "reviewer" => Some(Role::Reviewer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Merchant => "merchant",
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
        }
    }

    /// True when this role may act where `needed` is required.
    pub fn allows(self, needed: Role) -> bool {
        needed == Role::User || self == needed || self == Role::Admin
    }
}

/// The signed-in user behind a request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: i64,
    pub role: Role,
    pub display_name: String,
    pub username: Option<String>,
    pub expires_at: OffsetDateTime,
    /// The SHA-256 of the session's token (to revoke this session).
    pub token_sha256: [u8; 32],
}

impl Principal {
    /// The contract's rule for private records (an order, an address, a backing): `record`
    /// when this user owns it (`owner_id`) or is an admin, else 404 — never 403, so the id of
    /// someone else's record reveals nothing.
    pub fn own<T>(&self, owner_id: i64, record: T) -> Result<T, AppError> {
        if self.user_id == owner_id || self.role == Role::Admin {
            Ok(record)
        } else {
            Err(AppError::NotFound)
        }
    }
}

/// A new random token and its SHA-256.
pub fn new_token() -> anyhow::Result<(String, [u8; 32])> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system random source failed"))?;
    let token = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let hash = token_sha256(&token);
    Ok((token, hash))
}

fn token_sha256(token: &str) -> [u8; 32] {
    let digest = digest::digest(&digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Looks like one of our tokens (cheap check before any hashing or lookup).
fn is_token(text: &str) -> bool {
    text.len() == TOKEN_LEN
        && text.starts_with(TOKEN_PREFIX)
        && text[TOKEN_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The token a request carries and whether it came in the cookie.
fn presented_token(parts: &Parts) -> Option<(&str, bool)> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let text = value.to_str().ok()?;
        let token = text.strip_prefix("Bearer ").or_else(|| text.strip_prefix("bearer "))?;
        return Some((token.trim(), false));
    }
    for value in parts.headers.get_all(header::COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for pair in text.split(';') {
            if let Some((name, token)) = pair.trim().split_once('=')
                && name == COOKIE
            {
                return Some((token, true));
            }
        }
    }
    None
}

/// Whether the request presents no session at all (no `Authorization`, no session cookie):
/// it reads as a visitor without a lookup.
pub fn is_visitor(parts: &Parts) -> bool {
    presented_token(parts).is_none()
}

/// The SHA-256 of the session token a request presents, checked as [`Sessions::principal`]
/// checks it (a well-formed token; a cookie only from our own pages): `Ok(None)` without one.
/// Synchronous, so that a parked long-poll can let go of its request head before it waits.
pub fn presented_hash(parts: &Parts) -> Result<Option<[u8; 32]>, AppError> {
    let Some((token, from_cookie)) = presented_token(parts) else {
        return Ok(None);
    };
    if !is_token(token) || (from_cookie && !cookie_is_same_origin(parts)) {
        return Err(AppError::Unauthorized);
    }
    Ok(Some(token_sha256(token)))
}

/// For a cookie on anything but GET/HEAD: the request must come from our own pages.
/// `Sec-Fetch-Site` says so in current browsers; else `Origin` must name the `Host`; a
/// request with neither is not from a browser that sends cookies cross-site without them
/// (and the cookie is `SameSite=Strict` besides).
pub fn cookie_is_same_origin(parts: &Parts) -> bool {
    if parts.method == http::Method::GET || parts.method == http::Method::HEAD {
        return true;
    }
    if let Some(site) = parts.headers.get("sec-fetch-site") {
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    if let Some(origin) = parts.headers.get(header::ORIGIN) {
        let host = parts.headers.get(header::HOST).map(|h| h.as_bytes());
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, rest)| rest.as_bytes());
        return host.is_some() && origin_host == host;
    }
    true
}

/// Valid sessions by token hash, cached; see the module comment.
pub struct Sessions {
    cache: moka::sync::Cache<[u8; 32], Arc<Principal>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sessions")
    }
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions::new()
    }
}

const SELECT_SESSION: &str = "SELECT u.id, u.role, u.display_name, u.username, s.expires_at
       FROM sessions s JOIN users u ON u.id = s.user_id
      WHERE s.token_sha256 = $1 AND s.revoked_at IS NULL AND s.expires_at > now() AND NOT u.disabled";

impl Sessions {
    pub fn new() -> Sessions {
        Sessions {
            cache: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
        }
    }

    /// Who is asking, if anyone: `Ok(None)` without a token, `Unauthorized` for a token that
    /// is malformed, unknown, expired or revoked, or a cookie sent cross-site.
    pub async fn principal(&self, store: &Store, parts: &Parts) -> Result<Option<Arc<Principal>>, AppError> {
        match presented_hash(parts)? {
            Some(hash) => self.by_hash(store, hash).await.map(Some),
            None => Ok(None),
        }
    }

    /// The session whose token hashes to `hash` ([`presented_hash`]): `Unauthorized` when it
    /// is unknown, expired or revoked.
    pub async fn by_hash(&self, store: &Store, hash: [u8; 32]) -> Result<Arc<Principal>, AppError> {
        if let Some(principal) = self.cache.get(&hash) {
            if principal.expires_at > OffsetDateTime::now_utc() {
                return Ok(principal);
            }
            self.cache.invalidate(&hash);
            return Err(AppError::Unauthorized);
        }
        let row = crate::store::bounded(async {
            let client = store.client().await?;
            client
                .query_opt(SELECT_SESSION, &[&hash.as_slice()])
                .await
                .map_err(StoreError::from)
        })
        .await?
        .ok_or(AppError::Unauthorized)?;
        let principal = Arc::new(Principal {
            user_id: row.get(0),
            role: Role::parse(row.get(1)).unwrap_or(Role::User),
            display_name: row.get(2),
            username: row.get(3),
            expires_at: row.get(4),
            token_sha256: hash,
        });
        self.cache.insert(hash, Arc::clone(&principal));
        Ok(principal)
    }

    /// The signed-in user with at least `role`: 401 without a session, 403 without the role.
    pub async fn require(&self, store: &Store, parts: &Parts, role: Role) -> Result<Arc<Principal>, AppError> {
        let principal = self.principal(store, parts).await?.ok_or(AppError::Unauthorized)?;
        if !principal.role.allows(role) {
            return Err(AppError::Forbidden);
        }
        Ok(principal)
    }

    /// Drops every cached session (a `sessions` event: some were revoked or changed).
    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
    }
}

/// The `Set-Cookie` value that carries `token` for `max_age`, `Secure` when served over https.
pub fn session_cookie(token: &str, max_age: Duration, secure: bool) -> String {
    format!(
        "{COOKIE}={token}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    session_cookie("", Duration::ZERO, secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, headers: &[(&str, &str)]) -> Parts {
        let mut builder = http::Request::builder().method(method).uri("/api/me");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn someone_elses_record_is_not_found_except_for_an_admin() {
        let mut principal = Principal {
            user_id: 7,
            role: Role::Merchant,
            display_name: "张三".into(),
            username: None,
            expires_at: OffsetDateTime::UNIX_EPOCH,
            token_sha256: [0; 32],
        };
        assert_eq!(principal.own(7, "mine").unwrap(), "mine");
        assert!(matches!(principal.own(8, "theirs"), Err(AppError::NotFound)));
        principal.role = Role::Admin;
        assert_eq!(principal.own(8, "theirs").unwrap(), "theirs");
    }

    #[test]
    fn tokens_are_random_prefixed_and_hash_to_what_is_stored() {
        let (a, hash_a) = new_token().unwrap();
        let (b, _) = new_token().unwrap();
        assert_ne!(a, b);
        assert!(is_token(&a), "{a}");
        assert_eq!(token_sha256(&a), hash_a);
        assert!(!is_token("zf_short"));
        assert!(!is_token(&format!("xx_{}", &a[3..])));
        assert!(!is_token(&format!("{}=", &a[..a.len() - 1])));
    }

    #[test]
    fn bearer_wins_over_the_cookie() {
        let p = parts(
            "GET",
            &[
                ("authorization", "Bearer zf_abc"),
                ("cookie", "x=1; zhifu_session=zf_def"),
            ],
        );
        assert_eq!(presented_token(&p), Some(("zf_abc", false)));
        let p = parts("GET", &[("cookie", "x=1; zhifu_session=zf_def")]);
        assert_eq!(presented_token(&p), Some(("zf_def", true)));
        assert_eq!(presented_token(&parts("GET", &[])), None);
    }

    #[test]
    fn a_cookie_on_a_cross_site_post_is_not_believed() {
        assert!(cookie_is_same_origin(&parts(
            "GET",
            &[("sec-fetch-site", "cross-site")]
        )));
        assert!(!cookie_is_same_origin(&parts(
            "POST",
            &[("sec-fetch-site", "cross-site")]
        )));
        assert!(cookie_is_same_origin(&parts(
            "POST",
            &[("sec-fetch-site", "same-origin")]
        )));
        assert!(cookie_is_same_origin(&parts(
            "POST",
            &[("origin", "https://pay.example.com"), ("host", "pay.example.com")]
        )));
        assert!(!cookie_is_same_origin(&parts(
            "POST",
            &[("origin", "https://evil.example"), ("host", "pay.example.com")]
        )));
    }

    #[test]
    fn admin_allows_everything_others_only_their_own() {
        assert!(Role::Admin.allows(Role::Reviewer));
        assert!(Role::Reviewer.allows(Role::User));
        assert!(!Role::Reviewer.allows(Role::Merchant));
        assert!(!Role::User.allows(Role::Admin));
        for role in [Role::User, Role::Merchant, Role::Reviewer, Role::Admin] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
    }
}
