//! The follow graph: `PUT`/`DELETE /api/users/{id}/follow` (idempotent; the counters on both
//! users' rows move in the same transaction as the row, so they are exact under any
//! concurrency) and the paginated `…/followers` and `…/following` lists. A new follower
//! notifies the followed user once, ever (the notification's dedupe key).

use http::StatusCode;
use http::request::Parts;

use super::Role;
use super::profiles::{profile_body, profile_changed};
use crate::app::State;
use crate::error::AppError;
use crate::http::list::Paging;
use crate::http::respond::{self, Response};
use crate::notify::{self, Actor, Kind, Notice, Target, TargetId};
use crate::store::StoreError;

const USER_STATE: &str = "SELECT disabled FROM users WHERE id = $1";
const FOLLOW: &str =
    "INSERT INTO follows (follower_id, followee_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1";
const UNFOLLOW: &str = "DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2 RETURNING 1";
const MOVE_COUNTS: &str =
    "UPDATE users SET followers_count = followers_count + $2, following_count = following_count + $3
  WHERE id = $1";

/// `PUT` (`on`) or `DELETE /api/users/{id}/follow`: answers the followed user's profile.
pub async fn follow(state: &State, parts: &Parts, user_id: i64, on: bool) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    let me = principal.user_id;
    if me == user_id {
        return Err(AppError::invalid("cannot_follow_self", "you cannot follow yourself"));
    }
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let disabled: bool = tx
        .query_opt(USER_STATE, &[&user_id])
        .await
        .map_err(StoreError::from)?
        .ok_or(AppError::NotFound)?
        .get(0);
    if disabled && on {
        return Err(AppError::NotFound);
    }
    let changed = tx
        .query_opt(if on { FOLLOW } else { UNFOLLOW }, &[&me, &user_id])
        .await
        .map_err(StoreError::from)?
        .is_some();
    if changed {
        let delta: i64 = if on { 1 } else { -1 };
        // Both rows in id order, so two users following each other at once cannot deadlock.
        let mut moves = [(user_id, delta, 0i64), (me, 0, delta)];
        moves.sort_by_key(|m| m.0);
        for (id, followers, following) in moves {
            tx.execute(MOVE_COUNTS, &[&id, &followers, &following])
                .await
                .map_err(StoreError::from)?;
        }
        if on {
            let key = format!("follow:{me}");
            let notice = Notice {
                recipient_id: user_id,
                kind: Kind::Follow,
                actor: Actor::User(me),
                target: Target {
                    kind: "user",
                    id: TargetId::Id(me),
                },
                text: "关注了你 · followed you",
                dedupe_key: Some(&key),
            };
            notify::notify(&tx, &notice).await.map_err(StoreError::from)?;
        }
        profile_changed(&tx, user_id).await.map_err(StoreError::from)?;
        profile_changed(&tx, me).await.map_err(StoreError::from)?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    // Back to the pool before the profile is read (it may need a connection of its own).
    drop(client);
    if changed {
        state.profiles.changed(user_id);
        state.profiles.changed(me);
    }
    match profile_body(state, user_id, on).await {
        Ok(body) => Ok(respond::json(StatusCode::OK, body)),
        // Unfollowing a disabled account: done, and it has no public profile to show.
        Err(AppError::NotFound) if !on => Ok(respond::with_body(
            StatusCode::NO_CONTENT,
            http::HeaderValue::from_static("text/plain"),
            bytes::Bytes::new(),
        )),
        Err(other) => Err(other),
    }
}

const COUNTS: &str = "SELECT followers_count, following_count FROM users WHERE id = $1 AND NOT disabled";
const FOLLOWERS: &str = "SELECT u.id, u.display_name, u.avatar FROM follows f JOIN users u ON u.id = f.follower_id
  WHERE f.followee_id = $1 ORDER BY f.created_at DESC, f.follower_id DESC LIMIT $2 OFFSET $3";
const FOLLOWING: &str = "SELECT u.id, u.display_name, u.avatar FROM follows f JOIN users u ON u.id = f.followee_id
  WHERE f.follower_id = $1 ORDER BY f.created_at DESC, f.followee_id DESC LIMIT $2 OFFSET $3";

/// `GET /api/users/{id}/followers` (`followers`) or `…/following`: newest first, as
/// `{"id", "display_name", "avatar_url"}`; the total is the counter on the user's row.
pub async fn list(state: &State, parts: &Parts, user_id: i64, followers: bool) -> Result<Response, AppError> {
    let paging = Paging::standard(parts.uri.query())?;
    let client = state.store.client().await?;
    let counts = client
        .query_opt(COUNTS, &[&user_id])
        .await
        .map_err(StoreError::from)?
        .ok_or(AppError::NotFound)?;
    let total: i64 = counts.get(if followers { 0 } else { 1 });
    let statement = client
        .prepare_cached(if followers { FOLLOWERS } else { FOLLOWING })
        .await
        .map_err(StoreError::from)?;
    let items: Vec<_> = client
        .query(&statement, &[&user_id, &paging.limit(), &paging.offset()])
        .await
        .map_err(StoreError::from)?
        .iter()
        .map(|row| {
            let avatar: Option<String> = row.get(2);
            serde_json::json!({
                "id": row.get::<_, i64>(0),
                "display_name": row.get::<_, String>(1),
                "avatar_url": avatar.as_deref().map(crate::media::url),
            })
        })
        .collect();
    let body = serde_json::to_vec(&paging.listing(total, items)).map_err(|e| AppError::Internal(e.into()))?;
    Ok(respond::json(StatusCode::OK, body))
}
