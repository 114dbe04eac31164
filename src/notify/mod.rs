//! Notifications (contract: "Notifications"). Every module notifies through [`notify`], inside
//! its own transaction, so a notification exists exactly when what caused it committed; the
//! event it publishes on commit refreshes the recipient's unread count and wakes their
//! long-polls on every instance (`board`). Reading, marking read and the long-poll are in
//! `handlers`; the page `/me/notifications` in `page`.

mod board;
pub(crate) mod handlers;
mod page;
mod route;

use deadpool_postgres::GenericClient;

pub use board::Board;
pub use handlers::{UnreadQuery, unread_count};
pub use page::in_language;
pub use route::{Route, dispatch};

/// A system notice's text in both languages: the Chinese line, a line break, the English
/// line (each kept on one line), as the API gives it; the page shows the line of its language
/// ([`in_language`]).
pub fn bilingual(zh: &str, en: &str) -> String {
    let line = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    format!("{}\n{}", line(zh), line(en))
}

/// What a notification is about (the contract's kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A comment on your post or project.
    Comment,
    /// A reply to your comment.
    Reply,
    /// A like of your post or comment.
    Like,
    /// Someone followed you.
    Follow,
    /// Your project was approved or rejected (with the reason).
    ProjectReview,
    /// News from a project you back or follow.
    ProjectUpdate,
    /// A project you own or backed succeeded or failed (with your refund).
    ProjectResult,
    /// An order was paid (to the merchant).
    OrderPaid,
    /// Your order shipped.
    OrderShipped,
    /// A refund of yours went through.
    Refund,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Comment => "comment",
            Kind::Reply => "reply",
            Kind::Like => "like",
            Kind::Follow => "follow",
            Kind::ProjectReview => "project_review",
            Kind::ProjectUpdate => "project_update",
            Kind::ProjectResult => "project_result",
            Kind::OrderPaid => "order_paid",
            Kind::OrderShipped => "order_shipped",
            Kind::Refund => "refund",
        }
    }
}

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A user, shown as the actor.
    User(i64),
    /// A user who stays unnamed (an anonymous post or comment): not shown, but still never
    /// notified of their own action.
    Anonymous(i64),
    /// The platform itself (a review decision, a settlement, a refund).
    System,
}

impl Actor {
    fn user_id(self) -> Option<i64> {
        match self {
            Actor::User(id) | Actor::Anonymous(id) => Some(id),
            Actor::System => None,
        }
    }
}

/// The target's id: a number (users, posts, comments, projects) or a key (an order number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetId<'a> {
    Id(i64),
    Key(&'a str),
}

/// What the notification points at: `{"type": …, "id": …}` in the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    /// `user`, `post`, `comment`, `project`, `order`, … (`[a-z_]{1,32}`).
    pub kind: &'a str,
    pub id: TargetId<'a>,
}

/// One notification to write.
#[derive(Debug, Clone, Copy)]
pub struct Notice<'a> {
    pub recipient_id: i64,
    pub kind: Kind,
    pub actor: Actor,
    pub target: Target<'a>,
    /// Shown as text (≤ 500 characters; longer is cut).
    pub text: &'a str,
    /// The same key for the same recipient notifies once, ever: e.g. `like:post:42:7`, so a
    /// like removed and given again does not notify twice.
    pub dedupe_key: Option<&'a str>,
}

/// Longest text kept, in characters.
pub const MAX_TEXT: usize = 500;

const INSERT: &str = "INSERT INTO notifications
        (recipient_id, kind, actor_id, target_type, target_id, target_key, text, dedupe_key)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (recipient_id, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
     RETURNING id";

/// Writes `notice` in the caller's transaction (or connection) and, on its commit, tells
/// every instance. Nothing is written when the actor is the recipient, or when the dedupe
/// key was used before. Returns whether a notification was written.
pub async fn notify(client: &impl GenericClient, notice: &Notice<'_>) -> Result<bool, tokio_postgres::Error> {
    if notice.actor.user_id() == Some(notice.recipient_id) {
        return Ok(false);
    }
    let shown_actor = match notice.actor {
        Actor::User(id) => Some(id),
        Actor::Anonymous(_) | Actor::System => None,
    };
    let (target_id, target_key) = match notice.target.id {
        TargetId::Id(id) => (Some(id), None),
        TargetId::Key(key) => (None, Some(key)),
    };
    let text: String = notice.text.trim().chars().take(MAX_TEXT).collect();
    let statement = client.prepare_cached(INSERT).await?;
    let inserted = client
        .query_opt(
            &statement,
            &[
                &notice.recipient_id,
                &notice.kind.as_str(),
                &shown_actor,
                &notice.target.kind,
                &target_id,
                &target_key,
                &text,
                &notice.dedupe_key,
            ],
        )
        .await?
        .is_some();
    if inserted {
        changed(client, notice.recipient_id).await?;
    }
    Ok(inserted)
}

/// Tells every instance (on commit) that `user_id`'s notifications changed.
async fn changed(client: &impl GenericClient, user_id: i64) -> Result<(), tokio_postgres::Error> {
    let payload = format!(r#"{{"kind":"notification","user_id":{user_id}}}"#);
    crate::store::events::publish(client, &payload).await
}
