//! Users in the database: creating password and WeChat accounts, signing in (with the
//! lockout counter), issuing and revoking sessions. Each operation is one statement or one
//! short transaction.

use std::time::Duration;

use deadpool_postgres::GenericClient;
use time::OffsetDateTime;

use super::{Role, new_token, password};
use crate::error::AppError;
use crate::store::{Store, StoreError};

/// A session just issued: the token goes to the client once and is never stored.
#[derive(Debug)]
pub struct Issued {
    pub token: String,
    pub user_id: i64,
    pub expires_at: OffsetDateTime,
    /// The account as the session sees it, read by the same statement.
    pub username: Option<String>,
    pub display_name: String,
    pub role: Role,
}

/// How a session began (stored with it).
#[derive(Debug, Clone, Copy)]
pub enum Method {
    Password,
    WechatMini,
    WechatWeb,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Password => "password",
            Method::WechatMini => "wechat_mini",
            Method::WechatWeb => "wechat_web",
        }
    }
}

/// Usernames: 3..=32 of `[A-Za-z0-9_.-]` (the table's check).
pub fn is_username(text: &str) -> bool {
    (3..=32).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Display names: 1..=32 characters after trimming, no control characters.
pub fn clean_display_name(text: &str) -> Option<String> {
    let trimmed = text.trim();
    let chars = trimmed.chars().count();
    ((1..=32).contains(&chars) && !trimmed.chars().any(char::is_control)).then(|| trimmed.to_string())
}

/// Why an account could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("the username must be 3 to 32 letters, digits, '_', '.' or '-'")]
    BadUsername,
    #[error("{0}")]
    WeakPassword(&'static str),
    #[error("the username {0:?} is taken")]
    Taken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The hash of a new password that is strong enough.
async fn checked_hash(password_text: &str) -> Result<String, CreateError> {
    password::check_strength(password_text).map_err(CreateError::WeakPassword)?;
    Ok(password::hash(password_text.to_string()).await?)
}

/// Creates a password account with `role`; returns its id. `actor` is recorded in the audit
/// log with the new account (never the password or its hash).
pub async fn create_password_user(
    store: &Store,
    username: &str,
    password_text: &str,
    role: Role,
    actor: &str,
) -> Result<i64, CreateError> {
    if !is_username(username) {
        return Err(CreateError::BadUsername);
    }
    let phc = checked_hash(password_text).await?;
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let row = tx
        .query_opt(
            "INSERT INTO users (username, password_hash, display_name, role) VALUES ($1, $2, $1, $3)
             ON CONFLICT (lower(username)) WHERE username IS NOT NULL DO NOTHING RETURNING id",
            &[&username, &phc, &role.as_str()],
        )
        .await
        .map_err(StoreError::from)?
        .ok_or_else(|| CreateError::Taken(username.to_string()))?;
    let id: i64 = row.get(0);
    let after = serde_json::json!({"id": id, "username": username, "role": role.as_str()});
    crate::store::audit::write(
        &tx,
        crate::store::audit::Actor {
            user_id: None,
            name: actor,
            ip: "",
        },
        "user.create",
        &format!("user:{id}"),
        None,
        Some(&after),
    )
    .await
    .map_err(StoreError::from)?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(id)
}

/// Sets a new password for `username` and revokes all its sessions (command line reset).
pub async fn reset_password(
    store: &Store,
    username: &str,
    password_text: &str,
    actor: &str,
) -> Result<i64, CreateError> {
    let phc = checked_hash(password_text).await?;
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let row = tx
        .query_opt(
            "UPDATE users SET password_hash = $2, failed_logins = 0, locked_until = NULL, updated_at = now()
              WHERE lower(username) = lower($1) RETURNING id",
            &[&username, &phc],
        )
        .await
        .map_err(StoreError::from)?
        .ok_or_else(|| CreateError::Other(anyhow::anyhow!("no account is named {username:?}")))?;
    let id: i64 = row.get(0);
    revoke_all(&tx, id).await.map_err(StoreError::from)?;
    crate::store::audit::write(
        &tx,
        crate::store::audit::Actor {
            user_id: None,
            name: actor,
            ip: "",
        },
        "user.password_reset",
        &format!("user:{id}"),
        None,
        None,
    )
    .await
    .map_err(StoreError::from)?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(id)
}

/// Inserts a session row for `user_id` in the caller's transaction or connection.
async fn insert_session(
    client: &impl GenericClient,
    user_id: i64,
    ttl: Duration,
    method: Method,
    ip: &str,
) -> Result<Issued, AppError> {
    let (token, hash) = new_token().map_err(AppError::Internal)?;
    let ttl_secs = ttl.as_secs() as f64;
    let row = client
        .query_one(
            "WITH s AS (
                INSERT INTO sessions (token_sha256, user_id, expires_at, method, ip)
                VALUES ($1, $2, now() + make_interval(secs => $3), $4, $5) RETURNING user_id, expires_at)
             SELECT s.expires_at, u.username, u.display_name, u.role FROM s JOIN users u ON u.id = s.user_id",
            &[&hash.as_slice(), &user_id, &ttl_secs, &method.as_str(), &ip],
        )
        .await
        .map_err(StoreError::from)?;
    Ok(Issued {
        token,
        user_id,
        expires_at: row.get(0),
        username: row.get(1),
        display_name: row.get(2),
        role: Role::parse(row.get(3)).unwrap_or(Role::User),
    })
}

/// Lockout settings for [`password_login`].
#[derive(Debug, Clone, Copy)]
pub struct Lockout {
    pub after: u32,
    pub duration: Duration,
}

/// Password sign-in: checks the lockout, verifies off the async threads, counts a failure
/// (locking the account at `lockout.after`) or resets the counter and issues a session.
pub async fn password_login(
    store: &Store,
    username: &str,
    password_text: &str,
    lockout: Lockout,
    ttl: Duration,
    ip: &str,
) -> Result<Issued, AppError> {
    let client = store.client().await?;
    let row = if is_username(username) {
        client
            .query_opt(
                "SELECT id, password_hash, disabled,
                        ceil(extract(epoch FROM locked_until - now()))::bigint
                   FROM users WHERE lower(username) = lower($1)",
                &[&username],
            )
            .await
            .map_err(StoreError::from)?
    } else {
        None
    };
    // Give the connection back while hashing.
    drop(client);
    let (id, phc, disabled) = match &row {
        Some(row) => {
            let locked_secs: Option<i64> = row.get(3);
            if let Some(secs) = locked_secs.filter(|s| *s > 0) {
                return Err(AppError::Locked {
                    retry_after_secs: secs as u64,
                });
            }
            (
                Some(row.get::<_, i64>(0)),
                row.get::<_, Option<String>>(1),
                row.get::<_, bool>(2),
            )
        }
        None => (None, None, false),
    };
    let matches = password::verify(password_text.to_string(), phc).await;
    let Some(id) = id else {
        return Err(AppError::BadCredentials);
    };
    let client = store.client().await?;
    if !matches {
        let lock_secs = lockout.duration.as_secs() as f64;
        client
            .execute(
                "UPDATE users SET failed_logins = failed_logins + 1,
                        locked_until = CASE WHEN failed_logins + 1 >= $2
                                            THEN now() + make_interval(secs => $3) ELSE locked_until END
                  WHERE id = $1",
                &[&id, &(lockout.after as i32), &lock_secs],
            )
            .await
            .map_err(StoreError::from)?;
        return Err(AppError::BadCredentials);
    }
    if disabled {
        return Err(AppError::Forbidden);
    }
    let mut client = client;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    tx.execute(
        "UPDATE users SET failed_logins = 0, locked_until = NULL, last_login_at = now() WHERE id = $1",
        &[&id],
    )
    .await
    .map_err(StoreError::from)?;
    let issued = insert_session(&tx, id, ttl, Method::Password, ip).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(issued)
}

/// WeChat sign-in: finds the user by unionid (when WeChat sent one) or openid, registering
/// them on first sight, and issues a session.
pub async fn wechat_login(
    store: &Store,
    openid: &str,
    unionid: Option<&str>,
    method: Method,
    ttl: Duration,
    ip: &str,
) -> Result<Issued, AppError> {
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let found = tx
        .query_opt(
            "SELECT id, disabled FROM users
              WHERE wechat_openid = $1 OR ($2::text IS NOT NULL AND wechat_unionid = $2)
              ORDER BY (wechat_openid = $1) DESC LIMIT 1 FOR UPDATE",
            &[&openid, &unionid],
        )
        .await
        .map_err(StoreError::from)?;
    let id: i64 = match found {
        Some(row) => {
            if row.get::<_, bool>(1) {
                return Err(AppError::Forbidden);
            }
            let id = row.get(0);
            tx.execute(
                "UPDATE users SET last_login_at = now(), wechat_unionid = coalesce(wechat_unionid, $2) WHERE id = $1",
                &[&id, &unionid],
            )
            .await
            .map_err(StoreError::from)?;
            id
        }
        None => {
            // Two first sign-ins at once: the unique index makes the second one fail here; the
            // client retries and finds the account.
            let short: String = openid
                .chars()
                .rev()
                .take(4)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let name = format!("微信用户{short}");
            tx.query_one(
                "INSERT INTO users (wechat_openid, wechat_unionid, display_name, last_login_at)
                 VALUES ($1, $2, $3, now()) RETURNING id",
                &[&openid, &unionid, &name],
            )
            .await
            .map_err(|e| match e.code() {
                Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => AppError::conflict(
                    "registration_in_progress",
                    "this WeChat account is being registered; retry",
                ),
                _ => AppError::from(StoreError::from(e)),
            })?
            .get(0)
        }
    };
    let issued = insert_session(&tx, id, ttl, method, ip).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(issued)
}

/// Revokes one session (logout).
pub async fn revoke(client: &impl GenericClient, token_sha256: &[u8; 32]) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE sessions SET revoked_at = now() WHERE token_sha256 = $1 AND revoked_at IS NULL",
            &[&token_sha256.as_slice()],
        )
        .await?;
    crate::store::events::publish(client, r#"{"kind":"sessions"}"#).await
}

/// Revokes every session of `user_id` (password change, role change, disabling).
pub async fn revoke_all(client: &impl GenericClient, user_id: i64) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
            &[&user_id],
        )
        .await?;
    crate::store::events::publish(client, r#"{"kind":"sessions"}"#).await
}

/// Changes the signed-in user's password after checking the current one; revokes all their
/// sessions and issues a new one for the caller.
pub async fn change_password(
    store: &Store,
    user_id: i64,
    current: &str,
    new: &str,
    ttl: Duration,
    ip: &str,
) -> Result<Issued, AppError> {
    password::check_strength(new).map_err(|m| AppError::invalid("weak_password", m))?;
    let phc: Option<String> = store
        .client()
        .await?
        .query_opt("SELECT password_hash FROM users WHERE id = $1", &[&user_id])
        .await
        .map_err(StoreError::from)?
        .and_then(|row| row.get(0));
    let Some(phc) = phc else {
        return Err(AppError::invalid(
            "no_password",
            "this account signs in with WeChat and has no password",
        ));
    };
    if !password::verify(current.to_string(), Some(phc.clone())).await {
        return Err(AppError::BadCredentials);
    }
    let new_phc = password::hash(new.to_string()).await.map_err(AppError::Internal)?;
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    // Conditional on the hash we verified: a concurrent change wins, this one fails.
    let changed = tx
        .execute(
            "UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1 AND password_hash = $3",
            &[&user_id, &new_phc, &phc],
        )
        .await
        .map_err(StoreError::from)?;
    if changed == 0 {
        return Err(AppError::conflict(
            "password_changed",
            "the password was changed meanwhile; sign in again",
        ));
    }
    revoke_all(&tx, user_id).await.map_err(StoreError::from)?;
    let issued = insert_session(&tx, user_id, ttl, Method::Password, ip).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(issued)
}

/// Deletes sessions that ended (expired or revoked) more than a day ago; returns how many.
pub async fn purge_sessions(store: &Store) -> Result<u64, StoreError> {
    let client = store.client().await?;
    Ok(client
        .execute(
            "DELETE FROM sessions WHERE least(expires_at, coalesce(revoked_at, expires_at)) < now() - interval '1 day'",
            &[],
        )
        .await?)
}
