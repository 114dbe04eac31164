//! What answers show of posts and comments. The one place an author is written: an
//! anonymous post (and its author's comments under it) shows `{"display_name":"匿名"}` with
//! no id to everyone but admins, whatever the endpoint (detail, lists, feed, search, hot).

use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio_postgres::Row;

use crate::pay::rfc3339;

/// The name anonymous authors are shown by.
pub const ANONYMOUS: &str = "匿名";

/// Characters of content a list item shows.
const EXCERPT: usize = 140;

/// The author as shown: `reveal` is true for admins only.
pub fn author(id: i64, name: &str, anonymous: bool, reveal: bool) -> Value {
    if anonymous && !reveal {
        json!({ "display_name": ANONYMOUS })
    } else {
        json!({ "id": id, "display_name": name })
    }
}

/// Image ids as `[{"id","url","thumb_url"}]`.
pub fn images(ids: &[String]) -> Value {
    Value::Array(
        ids.iter()
            .map(|id| json!({"id": id, "url": crate::media::url(id), "thumb_url": crate::media::thumb_url(id)}))
            .collect(),
    )
}

/// The columns of [`PostRow::read`], in order (`p` posts, `s` post_stats, `u` the author),
/// as a literal for `concat!`.
macro_rules! post_columns {
    () => {
        "p.id, p.board_id, p.title, p.content, p.images, p.author_id, u.display_name, p.anonymous,
         s.likes, s.comments, s.views, s.pinned, p.created_at, p.hidden_at IS NOT NULL, p.deleted_at IS NOT NULL"
    };
}
pub(crate) use post_columns;

/// A post as read with [`post_columns`].
#[derive(Debug, Clone)]
pub struct PostRow {
    pub id: i64,
    pub board_id: i64,
    pub title: String,
    pub content: String,
    pub images: Vec<String>,
    pub author_id: i64,
    pub author_name: String,
    pub anonymous: bool,
    pub likes: i64,
    pub comments: i64,
    pub views: i64,
    pub pinned: bool,
    pub created_at: OffsetDateTime,
    pub hidden: bool,
    pub deleted: bool,
}

impl PostRow {
    pub fn read(row: &Row) -> PostRow {
        PostRow {
            id: row.get(0),
            board_id: row.get(1),
            title: row.get(2),
            content: row.get(3),
            images: row.get(4),
            author_id: row.get(5),
            author_name: row.get(6),
            anonymous: row.get(7),
            likes: row.get(8),
            comments: row.get(9),
            views: row.get(10),
            pinned: row.get(11),
            created_at: row.get(12),
            hidden: row.get(13),
            deleted: row.get(14),
        }
    }

    /// The detail's fields but the per-viewer ones (`views`, `liked_by_me`, `mine`).
    pub fn detail(&self, reveal: bool) -> Value {
        json!({
            "id": self.id,
            "board_id": self.board_id,
            "title": self.title,
            "content": self.content,
            "images": images(&self.images),
            "author": author(self.author_id, &self.author_name, self.anonymous, reveal),
            "anonymous": self.anonymous,
            "likes": self.likes,
            "comments": self.comments,
            "pinned": self.pinned,
            "hidden": self.hidden,
            "created_at": rfc3339(self.created_at),
        })
    }

    /// A list item: the content cut to an excerpt, the first three images.
    pub fn item(&self, reveal: bool) -> Value {
        let excerpt: String = self.content.chars().take(EXCERPT).collect();
        json!({
            "id": self.id,
            "board_id": self.board_id,
            "title": self.title,
            "excerpt": excerpt,
            "images": images(&self.images[..self.images.len().min(3)]),
            "author": author(self.author_id, &self.author_name, self.anonymous, reveal),
            "anonymous": self.anonymous,
            "likes": self.likes,
            "comments": self.comments,
            "views": self.views,
            "pinned": self.pinned,
            "created_at": rfc3339(self.created_at),
        })
    }
}

/// `value` (an object) serialized without its closing brace, so fields can follow.
pub fn open_object(value: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    bytes.pop();
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_anonymous_author_has_no_id_except_for_admins() {
        assert_eq!(author(7, "张三", true, false), json!({"display_name": "匿名"}));
        assert_eq!(author(7, "张三", true, true), json!({"id": 7, "display_name": "张三"}));
        assert_eq!(
            author(7, "张三", false, false),
            json!({"id": 7, "display_name": "张三"})
        );
        assert_eq!(open_object(&json!({"a": 1})), b"{\"a\":1".to_vec());
    }
}
