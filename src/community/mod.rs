//! The community forum (contract: "Community"): boards, posts, comments with one level of
//! replies, likes, reports and moderation, the feed of followed users, hot ranking and search.
//!
//! - `route`: the module's routes (`/api/community/…`, `/community…`, `/users/{id}`, and its
//!   admin routes) and their dispatch.
//! - `posts`, `comments`, `likes`, `lists` (new / hot / top, search, feed), `admin`
//!   (boards, reports, hide, pin), `moderation`, `search`, `json` (what answers show:
//!   the one place an anonymous author is hidden), `pages` and `admin_pages`.
//!
//! Hot reads come from memory: post details and public lists are serialized once and kept
//! until an event (`{"kind":"community","post_id":…}`, published in the transaction of every
//! like, comment, post, deletion, hiding or pin) drops them on every instance. View counts
//! are gathered in memory and written every `community.views_flush_secs`.

pub(crate) mod admin;
mod admin_pages;
pub(crate) mod boards;
pub(crate) mod comments;
mod json;
mod likes;
mod lists;
pub mod moderation;
mod pages;
pub(crate) mod posts;
mod route;
pub mod search;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use deadpool_postgres::GenericClient;

use crate::config;
use crate::store::flights::Flights;
use crate::store::fresh::Fresh;
use crate::store::hot::Front;
use crate::store::{Store, StoreError};
pub use lists::{Filter, ListKey, Range, Sort, query_posts};
pub use moderation::Moderator;
pub use route::{Route, cached_read, dispatch};

/// A post's detail as cached: the public JSON up to its per-viewer tail, and what decides who
/// may see it.
#[derive(Debug)]
pub struct PostEntry {
    /// The JSON object without `views`, `liked_by_me`, `mine` and the closing brace; the
    /// author as everyone but admins sees them.
    head: Bytes,
    pub author_id: i64,
    pub hidden: bool,
    /// Views written to the database when it was read (this instance's since then are in
    /// [`Views`] until written).
    views: i64,
}

/// Views counted in memory, per post, until they are written. A detail shows the views
/// its cached row had plus these, so a refill of the cache never loses sight of them.
#[derive(Debug, Default)]
struct Views {
    /// A std mutex: held for one map operation, never across an await.
    pending: Mutex<HashMap<i64, i64>>,
}

/// The community's state: settings, moderation and the caches.
pub struct Community {
    pub settings: config::Community,
    pub moderator: Moderator,
    posts: Fresh<Option<Arc<PostEntry>>>,
    lists: moka::sync::Cache<ListKey, Bytes>,
    /// Each worker's copies of the lists it serves most.
    list_front: Front<ListKey>,
    /// One load per list at a time.
    list_flights: Flights<ListKey>,
    boards: moka::sync::Cache<(), Bytes>,
    /// Bumped by every invalidation of lists or boards; an answer computed across a bump is
    /// not cached, so a read that raced a write cannot outlive it.
    generation: AtomicU64,
    views: Views,
}

impl std::fmt::Debug for Community {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Community")
            .field("posts", &self.posts)
            .field("lists", &self.lists.entry_count())
            .finish()
    }
}

/// How long a list is kept without an event: the `day` and `week` windows slide with time.
const LIST_TTL: Duration = Duration::from_secs(10);

impl Community {
    pub fn new(settings: &config::Community) -> Community {
        Community {
            settings: settings.clone(),
            moderator: Moderator::new(settings),
            posts: Fresh::new(100_000, Duration::from_secs(60)),
            lists: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(LIST_TTL)
                .build(),
            list_front: Front::default(),
            list_flights: Flights::default(),
            boards: moka::sync::Cache::builder()
                .max_capacity(1)
                .time_to_live(Duration::from_secs(60))
                .build(),
            generation: AtomicU64::new(0),
            views: Views::default(),
        }
    }

    /// A post changed (`Some`), or posts in general: drops the lists and that post's detail.
    pub fn changed(&self, post_id: Option<i64>) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.lists.invalidate_all();
        self.list_front.changed();
        if let Some(id) = post_id {
            self.posts.changed(id);
        }
    }

    /// The boards changed.
    pub fn boards_changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.boards.invalidate_all();
        self.lists.invalidate_all();
        self.list_front.changed();
    }

    /// Anything may have changed (the event bus reconnected).
    pub fn changed_all(&self) {
        self.boards_changed();
        self.posts.changed_all();
    }

    /// Counts one view of `post_id` (written by a later flush); returns the views of it
    /// this instance has not written yet, this one included.
    fn count_view(&self, post_id: i64) -> i64 {
        match self.views.pending.lock() {
            Ok(mut pending) => {
                let n = pending.entry(post_id).or_insert(0);
                *n += 1;
                *n
            }
            Err(_) => 0,
        }
    }

    /// The views of `post_id` this instance has not written yet.
    fn pending_views(&self, post_id: i64) -> i64 {
        self.views
            .pending
            .lock()
            .map(|p| p.get(&post_id).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Writes the views counted since the last flush in one statement; they stay counted
    /// (and shown) until the write commits, and on a failure for the next try.
    pub async fn flush_views(&self, store: &Store) -> Result<usize, StoreError> {
        let batch: HashMap<i64, i64> = match self.views.pending.lock() {
            Ok(pending) => pending.clone(),
            Err(_) => return Ok(0),
        };
        if batch.is_empty() {
            return Ok(0);
        }
        let (ids, counts): (Vec<i64>, Vec<i64>) = batch.iter().map(|(id, n)| (*id, *n)).unzip();
        let client = store.job_client().await?;
        let statement = client.prepare_cached(FLUSH_VIEWS).await?;
        client.execute(&statement, &[&ids, &counts]).await?;
        drop(client);
        if let Ok(mut pending) = self.views.pending.lock() {
            for (id, n) in &batch {
                if let Some(left) = pending.get_mut(id) {
                    *left -= n;
                    if *left <= 0 {
                        pending.remove(id);
                    }
                }
            }
        }
        // The cached details hold the views as they were before this write.
        for id in &ids {
            self.posts.changed(*id);
        }
        Ok(ids.len())
    }
}

const FLUSH_VIEWS: &str = "UPDATE post_stats s SET views = s.views + v.n
   FROM unnest($1::bigint[], $2::bigint[]) AS v(id, n) WHERE s.post_id = v.id";

/// Writes the gathered view counts every `community.views_flush_secs` until shutdown (the
/// server writes the last ones after draining its requests).
pub async fn run_view_flusher(
    community: Arc<Community>,
    store: Store,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let every = Duration::from_secs(community.settings.views_flush_secs);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        if let Err(e) = community.flush_views(&store).await {
            tracing::warn!(error = %e, "cannot write the view counts; keeping them for the next try");
        }
    }
}

/// Tells every instance, on commit of the caller's transaction, that post `post_id` (its
/// text, counters or visibility) changed.
async fn post_changed(client: &impl GenericClient, post_id: i64) -> Result<(), tokio_postgres::Error> {
    crate::store::events::publish(client, &format!(r#"{{"kind":"community","post_id":{post_id}}}"#)).await
}

/// Tells every instance, on commit, that the boards changed.
async fn boards_changed(client: &impl GenericClient) -> Result<(), tokio_postgres::Error> {
    crate::store::events::publish(client, r#"{"kind":"community_boards"}"#).await
}
