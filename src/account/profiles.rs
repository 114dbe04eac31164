//! Public profiles (`GET /api/users/{id}`): id, display name, avatar, bio and the counters
//! kept on the users row, pre-serialized in memory and dropped on every instance by the
//! `profile` event; and the profile fields of `PATCH /api/me` (display name, avatar, bio).
//! A profile never carries the email, the username or WeChat ids.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use deadpool_postgres::GenericClient;
use http::StatusCode;
use http::request::Parts;
use serde::Deserialize;

use super::{Principal, users};
use crate::app::State;
use crate::error::AppError;
use crate::http::respond::{self, Response};
use crate::store::fresh::Fresh;
use crate::store::{Store, StoreError};

/// Longest bio, characters (contract).
pub const MAX_BIO: usize = 200;

/// Profiles by user id: the JSON without its closing `}`, so `followed_by_me` can be added
/// per viewer without serializing again. `None` for no such (or a disabled) user.
pub struct Profiles {
    cache: Fresh<Option<Bytes>>,
}

impl std::fmt::Debug for Profiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profiles").field("cache", &self.cache).finish()
    }
}

impl Default for Profiles {
    fn default() -> Self {
        Profiles {
            cache: Fresh::new(100_000, Duration::from_secs(60)),
        }
    }
}

const SELECT_PROFILE: &str = "SELECT id, display_name, avatar, bio, followers_count, following_count, posts_count
   FROM users WHERE id = $1 AND NOT disabled";

impl Profiles {
    /// The profile's JSON head (see [`Profiles`]): from memory, else one query.
    pub async fn head(&self, store: &Store, user_id: i64) -> Result<Option<Bytes>, StoreError> {
        if let Some(head) = self.cache.get(user_id) {
            return Ok(head);
        }
        let began = self.cache.begin();
        let client = store.client().await?;
        let statement = client.prepare_cached(SELECT_PROFILE).await?;
        let head = client.query_opt(&statement, &[&user_id]).await?.map(|row| {
            let avatar: Option<String> = row.get(2);
            let json = serde_json::json!({
                "id": row.get::<_, i64>(0),
                "display_name": row.get::<_, String>(1),
                "avatar_url": avatar.as_deref().map(crate::media::url),
                "bio": row.get::<_, String>(3),
                "followers": row.get::<_, i64>(4),
                "following": row.get::<_, i64>(5),
                "posts": row.get::<_, i64>(6),
            })
            .to_string();
            Bytes::from(json[..json.len() - 1].to_string())
        });
        // An unknown id is not kept: it may be registered a moment later.
        if head.is_some() {
            self.cache.keep(user_id, head.clone(), began);
        }
        Ok(head)
    }

    /// `user_id`'s profile changed (an event on every instance).
    pub fn changed(&self, user_id: i64) {
        self.cache.changed(user_id);
    }

    /// Anything may have changed (the event bus reconnected).
    pub fn changed_all(&self) {
        self.cache.changed_all();
    }
}

/// Tells every instance, on commit of the caller's transaction, that `user_id`'s public
/// profile changed (its name, avatar, bio or a counter). The community module calls this
/// when it moves `posts_count`.
pub async fn profile_changed(client: &impl GenericClient, user_id: i64) -> Result<(), tokio_postgres::Error> {
    crate::store::events::publish(client, &format!(r#"{{"kind":"profile","user_id":{user_id}}}"#)).await
}

/// The profile JSON of `user_id` with `followed_by_me`; 404 for no such user.
pub async fn profile_body(state: &State, user_id: i64, followed_by_me: bool) -> Result<Bytes, AppError> {
    let head = state
        .profiles
        .head(&state.store, user_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let tail: &[u8] = if followed_by_me {
        b",\"followed_by_me\":true}"
    } else {
        b",\"followed_by_me\":false}"
    };
    let mut body = BytesMut::with_capacity(head.len() + tail.len());
    body.put_slice(&head);
    body.put_slice(tail);
    Ok(body.freeze())
}

const FOLLOWS: &str = "SELECT EXISTS (SELECT 1 FROM follows WHERE follower_id = $1 AND followee_id = $2)";

/// Whether `viewer` follows `user_id`.
pub async fn follows(store: &Store, viewer: i64, user_id: i64) -> Result<bool, StoreError> {
    let client = store.client().await?;
    let statement = client.prepare_cached(FOLLOWS).await?;
    Ok(client.query_one(&statement, &[&viewer, &user_id]).await?.get(0))
}

/// `GET /api/users/{id}`: public; `followed_by_me` for a signed-in viewer.
pub async fn profile(state: &State, parts: &Parts, user_id: i64) -> Result<Response, AppError> {
    // A stale or broken session reads the page as a visitor would.
    let viewer: Option<Arc<Principal>> = state.sessions.principal(&state.store, parts).await.ok().flatten();
    let followed = match viewer {
        Some(viewer) if viewer.user_id != user_id => follows(&state.store, viewer.user_id, user_id).await?,
        _ => false,
    };
    Ok(respond::json(
        StatusCode::OK,
        profile_body(state, user_id, followed).await?,
    ))
}

/// The profile fields of `PATCH /api/me`; absent fields stay as they are.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    #[serde(default)]
    display_name: Option<String>,
    /// An image id, or `null` to remove the avatar (present-but-null is `Some(Null)`).
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<String>")]
    avatar: Option<serde_json::Value>,
    #[serde(default)]
    bio: Option<String>,
}

/// A field that is present, `null` included.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(deserializer).map(Some)
}

/// A patch checked field by field.
struct Checked {
    name: Option<String>,
    /// `Some(None)` removes the avatar.
    avatar: Option<Option<String>>,
    bio: Option<String>,
}

fn check(patch: ProfilePatch) -> Result<Checked, AppError> {
    let name = match patch.display_name {
        None => None,
        Some(text) => Some(users::clean_display_name(&text).ok_or_else(|| {
            AppError::invalid(
                "invalid_display_name",
                "display_name must be 1 to 32 characters, no control characters",
            )
        })?),
    };
    let avatar = match patch.avatar {
        None => None,
        Some(serde_json::Value::Null) => Some(None),
        Some(serde_json::Value::String(id)) if crate::media::is_image_id(&id) => Some(Some(id)),
        Some(_) => {
            return Err(AppError::invalid(
                "invalid_image",
                "avatar must be an image id (from POST /api/images) or null",
            ));
        }
    };
    let bio = match patch.bio {
        None => None,
        Some(text) => {
            let text = text.trim().to_string();
            if text.chars().count() > MAX_BIO || text.chars().any(|c| c.is_control() && c != '\n') {
                return Err(AppError::invalid(
                    "invalid_bio",
                    "bio must be at most 200 characters, no control characters but line breaks",
                ));
            }
            Some(text)
        }
    };
    Ok(Checked { name, avatar, bio })
}

const UPDATE_PROFILE: &str = "UPDATE users SET display_name = coalesce($2, display_name), bio = coalesce($3, bio),
        avatar = CASE WHEN $4 THEN $5 ELSE avatar END, updated_at = now()
  WHERE id = $1";

/// Applies a `PATCH /api/me` in one transaction: the avatar must name a stored image; a new
/// name is announced (`user_renamed`) to whoever shows it.
pub async fn update_me(state: &State, principal: &Principal, patch: ProfilePatch) -> Result<(), AppError> {
    let checked = check(patch)?;
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    if let Some(Some(avatar)) = &checked.avatar {
        crate::media::check_ids(&tx, std::slice::from_ref(avatar)).await?;
    }
    let statement = tx.prepare_cached(UPDATE_PROFILE).await.map_err(StoreError::from)?;
    let (set_avatar, avatar) = match &checked.avatar {
        Some(avatar) => (true, avatar.clone()),
        None => (false, None),
    };
    tx.execute(
        &statement,
        &[&principal.user_id, &checked.name, &checked.bio, &set_avatar, &avatar],
    )
    .await
    .map_err(StoreError::from)?;
    // A rename is an event: whoever shows names (the rankings read current display names)
    // reacts to it; no other module's rows are rewritten here.
    let renamed = serde_json::json!({"kind": "user_renamed", "user_id": principal.user_id});
    let sessions = serde_json::json!({"kind": "sessions"});
    if checked.name.is_some() {
        for event in [&renamed, &sessions] {
            crate::store::events::publish(&tx, &event.to_string())
                .await
                .map_err(StoreError::from)?;
        }
    }
    profile_changed(&tx, principal.user_id)
        .await
        .map_err(StoreError::from)?;
    tx.commit().await.map_err(StoreError::from)?;
    // The events reach this instance a moment later; the next read must not wait for them.
    state.profiles.changed(principal.user_id);
    if checked.name.is_some() {
        for event in [&renamed, &sessions] {
            crate::app::apply_event(state, event).await;
        }
    }
    Ok(())
}
