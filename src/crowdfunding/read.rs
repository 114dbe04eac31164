//! Reading projects: one project whole (`ProjectView`: the row, its goals, rewards and
//! settlement) and pages of the public list, as typed rows the JSON answers and the pages
//! share. The JSON is the contract's `GET /api/projects/{id}` and list items.

use deadpool_postgres::GenericClient;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::cache::{ListKey, Sort};
use super::model::Status;
use super::settle::Surplus;
use crate::pay::money::format_yuan;
use crate::pay::rfc3339;

/// An image as the answers show it.
pub fn image_json(id: &str) -> Value {
    json!({"id": id, "url": crate::media::url(id), "thumb_url": crate::media::thumb_url(id)})
}

fn images_json(ids: &[String]) -> Vec<Value> {
    ids.iter().map(|id| image_json(id)).collect()
}

/// A goal as read.
#[derive(Debug, Clone)]
pub struct GoalView {
    pub amount_fen: i64,
    pub title: String,
    pub description: String,
    pub images: Vec<String>,
}

/// A reward as read, with its units.
#[derive(Debug, Clone)]
pub struct RewardView {
    pub id: i64,
    pub title: String,
    pub description: String,
    pub min_amount_fen: i64,
    pub quantity: Option<i32>,
    pub reserved: i32,
    pub taken: i32,
    pub ships: bool,
}

impl RewardView {
    /// Units still to be had; `None` when unlimited.
    pub fn remaining(&self) -> Option<i32> {
        self.quantity.map(|q| (q - self.reserved - self.taken).max(0))
    }
}

/// How the settlement's refunds stand.
#[derive(Debug, Clone, Default)]
pub struct SettlementView {
    pub refunded_fen: i64,
    pub pending: i64,
    pub failed: i64,
}

/// A whole project.
#[derive(Debug, Clone)]
pub struct ProjectView {
    pub id: i64,
    pub owner_id: i64,
    pub owner_name: String,
    pub title: String,
    pub summary: String,
    pub story: String,
    pub cover_image: Option<String>,
    pub images: Vec<String>,
    pub deadline: OffsetDateTime,
    pub surplus: Surplus,
    pub status: Status,
    pub revision: i32,
    pub review_reason: Option<String>,
    pub submitted_at: Option<OffsetDateTime>,
    pub published_at: Option<OffsetDateTime>,
    pub raised_fen: i64,
    pub backers: i32,
    pub followers: i32,
    pub settled_goal: Option<i16>,
    pub settled_fen: Option<i64>,
    pub ended_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub goals: Vec<GoalView>,
    pub rewards: Vec<RewardView>,
    pub settlement: Option<SettlementView>,
}

impl ProjectView {
    /// Index of the highest goal `raised` reaches, if any.
    pub fn current_goal(&self) -> Option<usize> {
        self.goals.iter().rposition(|g| g.amount_fen <= self.raised_fen)
    }

    /// The contract's project JSON; `private` adds what only the owner and reviewers see.
    pub fn to_json(&self, private: bool) -> Value {
        let goals: Vec<Value> = self
            .goals
            .iter()
            .map(|g| {
                json!({
                    "amount": format_yuan(g.amount_fen), "amount_fen": g.amount_fen,
                    "title": g.title, "description": g.description,
                    "images": images_json(&g.images), "reached": self.raised_fen >= g.amount_fen,
                })
            })
            .collect();
        let rewards: Vec<Value> = self
            .rewards
            .iter()
            .map(|r| {
                json!({
                    "id": r.id, "title": r.title, "description": r.description,
                    "min_amount": format_yuan(r.min_amount_fen), "min_amount_fen": r.min_amount_fen,
                    "quantity": r.quantity, "remaining": r.remaining(), "ships": r.ships,
                })
            })
            .collect();
        let settlement = self.settlement.as_ref().map(|s| {
            let settled = self.settled_fen.unwrap_or(0);
            json!({
                "outcome": self.status.as_str(),
                "goal": self.settled_goal,
                "settled": format_yuan(settled), "settled_fen": settled,
                "surplus": self.surplus.as_str(),
                "refunded": format_yuan(s.refunded_fen), "refunded_fen": s.refunded_fen,
                "refunds_pending": s.pending, "refunds_failed": s.failed,
                "ended_at": self.ended_at.map(rfc3339),
            })
        });
        let mut body = json!({
            "id": self.id,
            "title": self.title,
            "summary": self.summary,
            "story": self.story,
            "status": self.status.as_str(),
            "owner": {"id": self.owner_id, "display_name": self.owner_name},
            "cover_image": self.cover_image,
            "cover_url": self.cover_image.as_deref().map(crate::media::url),
            "images": images_json(&self.images),
            "deadline": rfc3339(self.deadline),
            "surplus": self.surplus.as_str(),
            "raised": format_yuan(self.raised_fen),
            "raised_fen": self.raised_fen,
            "backers": self.backers,
            "followers": self.followers,
            "goals": goals,
            "current_goal": self.current_goal(),
            "rewards": rewards,
            "settlement": settlement,
            "published_at": self.published_at.map(rfc3339),
            "revision": self.revision,
        });
        if private {
            body["review_reason"] = json!(self.review_reason);
            body["submitted_at"] = json!(self.submitted_at.map(rfc3339));
            body["created_at"] = json!(rfc3339(self.created_at));
        }
        body
    }
}

const SELECT_PROJECT: &str = "SELECT p.id, p.owner_id, u.display_name, p.title, p.summary, p.story, p.cover_image,
        p.images, p.deadline, p.surplus, p.status, p.revision, p.review_reason, p.submitted_at,
        p.published_at, p.raised_fen, p.backers, p.followers, p.settled_goal, p.settled_fen,
        p.ended_at, p.created_at
   FROM projects p JOIN users u ON u.id = p.owner_id WHERE p.id = $1";

const SELECT_GOALS: &str = "SELECT amount_fen, title, description, images FROM project_goals
  WHERE project_id = $1 ORDER BY position";

const SELECT_REWARDS: &str = "SELECT id, title, description, min_amount_fen, quantity, reserved, taken, ships
   FROM project_rewards WHERE project_id = $1 ORDER BY position";

/// What the settlement's refunds came to: succeeded fen, still pending, failed (or refused).
const SELECT_SETTLEMENT: &str = "SELECT COALESCE(sum(r.amount_fen) FILTER (WHERE r.status = 'succeeded'), 0)::bigint,
        count(*) FILTER (WHERE s.refused IS NULL AND (r.status IS NULL OR r.status = 'processing')),
        count(*) FILTER (WHERE s.refused IS NOT NULL OR r.status = 'failed')
   FROM settlement_refunds s LEFT JOIN refunds r ON r.refund_no = s.refund_no
  WHERE s.project_id = $1";

/// Project `id` whole, if it exists.
pub async fn project(client: &impl GenericClient, id: i64) -> Result<Option<ProjectView>, tokio_postgres::Error> {
    let statement = client.prepare_cached(SELECT_PROJECT).await?;
    let Some(row) = client.query_opt(&statement, &[&id]).await? else {
        return Ok(None);
    };
    let status: Status = row.try_get(10)?;
    let goals = client.prepare_cached(SELECT_GOALS).await?;
    let rewards = client.prepare_cached(SELECT_REWARDS).await?;
    let (goals, rewards) =
        futures_util::future::try_join(client.query(&goals, &[&id]), client.query(&rewards, &[&id])).await?;
    let settlement = if matches!(status, Status::Succeeded | Status::Failed) {
        let statement = client.prepare_cached(SELECT_SETTLEMENT).await?;
        let s = client.query_one(&statement, &[&id]).await?;
        Some(SettlementView {
            refunded_fen: s.get(0),
            pending: s.get(1),
            failed: s.get(2),
        })
    } else {
        None
    };
    Ok(Some(ProjectView {
        id: row.get(0),
        owner_id: row.get(1),
        owner_name: row.get(2),
        title: row.get(3),
        summary: row.get(4),
        story: row.get(5),
        cover_image: row.get(6),
        images: row.get(7),
        deadline: row.get(8),
        surplus: Surplus::parse(row.get(9)).unwrap_or(Surplus::Refund),
        status,
        revision: row.get(11),
        review_reason: row.get(12),
        submitted_at: row.get(13),
        published_at: row.get(14),
        raised_fen: row.get(15),
        backers: row.get(16),
        followers: row.get(17),
        settled_goal: row.get(18),
        settled_fen: row.get(19),
        ended_at: row.get(20),
        created_at: row.get(21),
        goals: goals
            .iter()
            .map(|g| GoalView {
                amount_fen: g.get(0),
                title: g.get(1),
                description: g.get(2),
                images: g.get(3),
            })
            .collect(),
        rewards: rewards
            .iter()
            .map(|r| RewardView {
                id: r.get(0),
                title: r.get(1),
                description: r.get(2),
                min_amount_fen: r.get(3),
                quantity: r.get(4),
                reserved: r.get(5),
                taken: r.get(6),
                ships: r.get(7),
            })
            .collect(),
        settlement,
    }))
}

/// A project in a list.
#[derive(Debug, Clone)]
pub struct ListItem {
    pub id: i64,
    pub title: String,
    pub summary: String,
    pub status: Status,
    pub owner_id: i64,
    pub owner_name: String,
    pub cover_image: Option<String>,
    pub deadline: OffsetDateTime,
    pub raised_fen: i64,
    pub backers: i32,
    /// Goal amounts, rising.
    pub goals: Vec<i64>,
    pub created_at: OffsetDateTime,
}

impl ListItem {
    /// Index of the highest goal reached.
    pub fn current_goal(&self) -> Option<usize> {
        self.goals.iter().rposition(|g| *g <= self.raised_fen)
    }

    /// The goal the bar measures against: the next one not reached, else the last.
    pub fn bar_goal(&self) -> i64 {
        self.goals
            .iter()
            .copied()
            .find(|g| *g > self.raised_fen)
            .or_else(|| self.goals.last().copied())
            .unwrap_or(1)
    }

    /// Percent of [`bar_goal`](Self::bar_goal) raised, 0..=100 (for the bar's width).
    pub fn percent(&self) -> i64 {
        (self.raised_fen.saturating_mul(100) / self.bar_goal().max(1)).clamp(0, 100)
    }

    pub fn to_json(&self) -> Value {
        let goals: Vec<Value> = self
            .goals
            .iter()
            .map(|g| json!({"amount": format_yuan(*g), "amount_fen": g, "reached": self.raised_fen >= *g}))
            .collect();
        json!({
            "id": self.id, "title": self.title, "summary": self.summary,
            "status": self.status.as_str(),
            "owner": {"id": self.owner_id, "display_name": self.owner_name},
            "cover_url": self.cover_image.as_deref().map(crate::media::url),
            "cover_thumb_url": self.cover_image.as_deref().map(crate::media::thumb_url),
            "deadline": rfc3339(self.deadline),
            "raised": format_yuan(self.raised_fen), "raised_fen": self.raised_fen,
            "backers": self.backers,
            "goals": goals,
            "current_goal": self.current_goal(),
        })
    }
}

const ITEM_COLUMNS: &str = "p.id, p.title, p.summary, p.status, p.owner_id, u.display_name, p.cover_image,
        p.deadline, p.raised_fen, p.backers,
        ARRAY(SELECT g.amount_fen FROM project_goals g WHERE g.project_id = p.id ORDER BY g.position),
        p.created_at";

pub fn item_from_row(row: &tokio_postgres::Row) -> Result<ListItem, tokio_postgres::Error> {
    Ok(ListItem {
        id: row.get(0),
        title: row.get(1),
        summary: row.get(2),
        status: row.try_get(3)?,
        owner_id: row.get(4),
        owner_name: row.get(5),
        cover_image: row.get(6),
        deadline: row.get(7),
        raised_fen: row.get(8),
        backers: row.get(9),
        goals: row.get(10),
        created_at: row.get(11),
    })
}

/// The public list's SQL for `sort` (one fixed statement per order, so each has its plan and
/// its index): `$1` status, `$2` the search pattern or NULL, `$3` limit, `$4` offset.
fn list_sql(sort: Sort) -> &'static str {
    static SQL: std::sync::OnceLock<[String; 4]> = std::sync::OnceLock::new();
    let all = SQL.get_or_init(|| {
        [Sort::Newest, Sort::Ending, Sort::MostFunded, Sort::MostBacked].map(|sort| {
            let order = match sort {
                Sort::Newest => "p.published_at DESC, p.id DESC",
                Sort::Ending => "p.deadline ASC, p.id ASC",
                Sort::MostFunded => "p.raised_fen DESC, p.id DESC",
                Sort::MostBacked => "p.backers DESC, p.id DESC",
            };
            format!(
                "SELECT {ITEM_COLUMNS} FROM projects p JOIN users u ON u.id = p.owner_id
                  WHERE p.status = $1 AND ($2::text IS NULL OR p.title ILIKE $2 OR p.summary ILIKE $2)
                  ORDER BY {order} LIMIT $3 OFFSET $4"
            )
        })
    });
    &all[sort as usize]
}

const COUNT_LIST: &str = "SELECT count(*) FROM projects p
  WHERE p.status = $1 AND ($2::text IS NULL OR p.title ILIKE $2 OR p.summary ILIKE $2)";

/// `%q%` with `\`, `%` and `_` escaped, for ILIKE.
pub fn like_pattern(q: &str) -> String {
    let mut out = String::with_capacity(q.len() + 2);
    out.push('%');
    for c in q.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// A page of the public list and the total.
pub async fn list(
    client: &impl GenericClient,
    key: &ListKey,
    q: Option<&str>,
) -> Result<(i64, Vec<ListItem>), tokio_postgres::Error> {
    let pattern = q.map(like_pattern);
    let status = key.status.as_str();
    let limit = i64::from(key.size);
    let offset = i64::from(key.page - 1) * limit;
    let page = client.prepare_cached(list_sql(key.sort)).await?;
    let count = client.prepare_cached(COUNT_LIST).await?;
    let (rows, total) = futures_util::future::try_join(
        client.query(&page, &[&status, &pattern, &limit, &offset]),
        client.query_one(&count, &[&status, &pattern]),
    )
    .await?;
    let items = rows.iter().map(item_from_row).collect::<Result<_, _>>()?;
    Ok((total.get(0), items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_patterns_escape_the_wildcards() {
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
        assert_eq!(like_pattern("图书"), "%图书%");
    }

    #[test]
    fn the_bar_measures_against_the_next_goal() {
        let mut item = ListItem {
            id: 1,
            title: String::new(),
            summary: String::new(),
            status: Status::Live,
            owner_id: 1,
            owner_name: String::new(),
            cover_image: None,
            deadline: OffsetDateTime::UNIX_EPOCH,
            raised_fen: 1_500,
            backers: 1,
            goals: vec![1_000, 2_000],
            created_at: OffsetDateTime::UNIX_EPOCH,
        };
        assert_eq!(
            (item.current_goal(), item.bar_goal(), item.percent()),
            (Some(0), 2_000, 75)
        );
        item.raised_fen = 5_000;
        assert_eq!(
            (item.current_goal(), item.bar_goal(), item.percent()),
            (Some(1), 2_000, 100)
        );
        item.raised_fen = 0;
        assert_eq!(item.current_goal(), None);
    }
}
