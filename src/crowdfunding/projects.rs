//! Writing projects: create, edit while not public, submit to review, and the review itself
//! (contract: "Crowdfunding"). Each write is one transaction: the project row (locked for an
//! edit or a review), its goals and rewards replaced whole, the images checked, the audit
//! row of a review and the owner's notification; a change of a public project publishes its
//! event so every instance drops the cached answers.

use deadpool_postgres::{GenericClient, Transaction};
use serde_json::json;

use super::model::{self, Project, ProjectBody, Rules, Status};
use super::read::ProjectView;
use super::settle::Surplus;
use crate::account::{Principal, Role};
use crate::error::AppError;
use crate::notify::{self, Actor, Kind, Notice, Target, TargetId};
use crate::store::StoreError;
use crate::store::audit;

fn db(e: tokio_postgres::Error) -> AppError {
    AppError::from(StoreError::from(e))
}

const INSERT_PROJECT: &str =
    "INSERT INTO projects (owner_id, title, summary, story, cover_image, images, deadline, surplus,
        status, submitted_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $9 = 'pending_review' THEN now() END)
     RETURNING id";

const UPDATE_PROJECT: &str = "UPDATE projects SET title = $2, summary = $3, story = $4, cover_image = $5, images = $6,
        deadline = $7, surplus = $8, status = $9, revision = revision + 1, updated_at = now(),
        submitted_at = CASE WHEN $9 = 'pending_review' AND status <> 'pending_review' THEN now() ELSE submitted_at END
  WHERE id = $1 AND status IN ('draft', 'pending_review', 'rejected')";

const DELETE_GOALS: &str = "DELETE FROM project_goals WHERE project_id = $1";
const DELETE_REWARDS: &str = "DELETE FROM project_rewards WHERE project_id = $1";

/// Goals from one JSON array: `[{"amount_fen","title","description","images":[…]}]`.
const INSERT_GOALS: &str = "INSERT INTO project_goals (project_id, position, amount_fen, title, description, images)
     SELECT $1, (g.n - 1)::smallint, (g.v->>'amount_fen')::bigint, g.v->>'title', g.v->>'description',
            ARRAY(SELECT jsonb_array_elements_text(g.v->'images'))
       FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS g(v, n)";

const INSERT_REWARDS: &str =
    "INSERT INTO project_rewards (project_id, position, title, description, min_amount_fen, quantity, ships)
     SELECT $1, (r.n - 1)::smallint, r.v->>'title', r.v->>'description', (r.v->>'min_amount_fen')::bigint,
            (r.v->>'quantity')::integer, (r.v->>'ships')::boolean
       FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS r(v, n)";

/// Stores the goals and rewards of `project` for project `id` (after removing any).
async fn write_parts(tx: &Transaction<'_>, id: i64, project: &Project, replace: bool) -> Result<(), AppError> {
    if replace {
        tx.execute(DELETE_GOALS, &[&id]).await.map_err(db)?;
        tx.execute(DELETE_REWARDS, &[&id]).await.map_err(db)?;
    }
    let goals: Vec<serde_json::Value> = project
        .goals
        .iter()
        .map(
            |g| json!({"amount_fen": g.amount_fen, "title": g.title, "description": g.description, "images": g.images}),
        )
        .collect();
    let rewards: Vec<serde_json::Value> = project
        .rewards
        .iter()
        .map(|r| {
            json!({"title": r.title, "description": r.description, "min_amount_fen": r.min_amount_fen,
                   "quantity": r.quantity, "ships": r.ships})
        })
        .collect();
    let statement = tx.prepare_cached(INSERT_GOALS).await.map_err(db)?;
    tx.execute(&statement, &[&id, &json!(goals)]).await.map_err(db)?;
    if !rewards.is_empty() {
        let statement = tx.prepare_cached(INSERT_REWARDS).await.map_err(db)?;
        tx.execute(&statement, &[&id, &json!(rewards)]).await.map_err(db)?;
    }
    Ok(())
}

/// `POST /api/projects`: a new project of `owner` (a draft, or in review with `submit`).
pub async fn create(
    client: &mut deadpool_postgres::Object,
    owner: &Principal,
    body: ProjectBody,
    rules: &Rules,
) -> Result<i64, AppError> {
    let submit = body.submit;
    let project = model::check(body, rules)?;
    let status = if submit { Status::PendingReview } else { Status::Draft };
    let tx = client.transaction().await.map_err(db)?;
    crate::media::check_ids(&tx, &project.image_ids()).await?;
    let statement = tx.prepare_cached(INSERT_PROJECT).await.map_err(db)?;
    let id: i64 = tx
        .query_one(
            &statement,
            &[
                &owner.user_id,
                &project.title,
                &project.summary,
                &project.story,
                &project.cover_image,
                &project.images,
                &project.deadline,
                &project.surplus.as_str(),
                &status.as_str(),
            ],
        )
        .await
        .map_err(db)?
        .get(0);
    write_parts(&tx, id, &project, false).await?;
    tx.commit().await.map_err(db)?;
    Ok(id)
}

const LOCK_PROJECT: &str = "SELECT owner_id, status FROM projects WHERE id = $1 FOR UPDATE";

/// The stored project as a checked [`Project`] (what a change is merged over).
fn stored(view: &ProjectView) -> Project {
    Project {
        title: view.title.clone(),
        summary: view.summary.clone(),
        story: view.story.clone(),
        cover_image: view.cover_image.clone(),
        images: view.images.clone(),
        deadline: view.deadline,
        goals: view
            .goals
            .iter()
            .map(|g| model::Goal {
                amount_fen: g.amount_fen,
                title: g.title.clone(),
                description: g.description.clone(),
                images: g.images.clone(),
            })
            .collect(),
        rewards: view
            .rewards
            .iter()
            .map(|r| model::Reward {
                title: r.title.clone(),
                description: r.description.clone(),
                min_amount_fen: r.min_amount_fen,
                quantity: r.quantity,
                ships: r.ships,
            })
            .collect(),
        surplus: view.surplus,
    }
}

/// `PATCH /api/projects/{id}`: the owner changes a project that is not public yet; with
/// `submit` it goes to review.
pub async fn edit(
    client: &mut deadpool_postgres::Object,
    who: &Principal,
    id: i64,
    change: ProjectBody,
    rules: &Rules,
) -> Result<(), AppError> {
    let tx = client.transaction().await.map_err(db)?;
    let row = tx
        .query_opt(LOCK_PROJECT, &[&id])
        .await
        .map_err(db)?
        .ok_or(AppError::NotFound)?;
    let (owner_id, status): (i64, Status) = (row.get(0), row.try_get(1).map_err(db)?);
    if owner_id != who.user_id {
        // Someone else's unpublished project does not exist for them.
        return Err(if status.is_public() {
            AppError::Forbidden
        } else {
            AppError::NotFound
        });
    }
    if !status.is_editable() {
        return Err(AppError::conflict(
            "project_not_editable",
            "a project can be changed only before it is live",
        ));
    }
    let view = super::read::project(&tx, id)
        .await
        .map_err(db)?
        .ok_or(AppError::NotFound)?;
    let submit = change.submit;
    let project = model::check(stored(&view).to_body().merged(change), rules)?;
    crate::media::check_ids(&tx, &project.image_ids()).await?;
    let next = if submit { Status::PendingReview } else { status };
    let statement = tx.prepare_cached(UPDATE_PROJECT).await.map_err(db)?;
    tx.execute(
        &statement,
        &[
            &id,
            &project.title,
            &project.summary,
            &project.story,
            &project.cover_image,
            &project.images,
            &project.deadline,
            &project.surplus.as_str(),
            &next.as_str(),
        ],
    )
    .await
    .map_err(db)?;
    write_parts(&tx, id, &project, true).await?;
    tx.commit().await.map_err(db)?;
    Ok(())
}

/// A reviewer's decision.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ProjectReview")]
pub struct Review {
    pub decision: String,
    #[serde(default)]
    pub reason: Option<String>,
    /// The revision the reviewer read; a project changed since answers 409 `project_changed`.
    #[serde(default)]
    pub revision: Option<i32>,
}

const REVIEW_STATE: &str =
    "SELECT status, revision, deadline > now(), title, owner_id FROM projects WHERE id = $1 FOR UPDATE";

const APPROVE: &str =
    "UPDATE projects SET status = 'live', published_at = now(), reviewed_by = $2, reviewed_at = now(),
        review_reason = $3, updated_at = now()
  WHERE id = $1 AND status = 'pending_review'";

const REJECT: &str = "UPDATE projects SET status = 'rejected', reviewed_by = $2, reviewed_at = now(),
        review_reason = $3, updated_at = now()
  WHERE id = $1 AND status = 'pending_review'";

/// `POST /api/admin/projects/{id}/review`: approve (→ `live`) or reject (→ `rejected`, with a
/// reason), audited, the owner notified; 409 unless the project is in review.
pub async fn review(
    client: &mut deadpool_postgres::Object,
    reviewer: &Principal,
    ip: &str,
    id: i64,
    review: Review,
) -> Result<Status, AppError> {
    let approve = match review.decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => {
            return Err(AppError::invalid(
                "invalid_decision",
                "decision must be approve or reject",
            ));
        }
    };
    let reason = model::text(
        review.reason.as_deref(),
        usize::from(!approve),
        500,
        true,
        "invalid_reason",
        "reason",
    )?;
    let tx = client.transaction().await.map_err(db)?;
    let row = tx
        .query_opt(REVIEW_STATE, &[&id])
        .await
        .map_err(db)?
        .ok_or(AppError::NotFound)?;
    let status: Status = row.try_get(0).map_err(db)?;
    let (revision, open, title, owner_id): (i32, bool, String, i64) = (row.get(1), row.get(2), row.get(3), row.get(4));
    if status != Status::PendingReview {
        return Err(AppError::conflict(
            "project_not_pending",
            format!("the project is {}, not pending_review", status.as_str()),
        ));
    }
    if review.revision.is_some_and(|r| r != revision) {
        return Err(AppError::conflict(
            "project_changed",
            "the owner changed the project since that revision; read it again",
        ));
    }
    if approve && !open {
        return Err(AppError::conflict(
            "deadline_passed",
            "the project's deadline has passed; reject it so the owner can set another",
        ));
    }
    let reason_stored = (!reason.is_empty()).then_some(reason.as_str());
    tx.execute(
        if approve { APPROVE } else { REJECT },
        &[&id, &reviewer.user_id, &reason_stored],
    )
    .await
    .map_err(db)?;
    let next = if approve { Status::Live } else { Status::Rejected };
    let actor = audit::Actor {
        user_id: Some(reviewer.user_id),
        name: reviewer.username.as_deref().unwrap_or(&reviewer.display_name),
        ip,
    };
    let before = json!({"status": status.as_str(), "revision": revision});
    let after = json!({"status": next.as_str(), "reason": reason_stored});
    audit::write(
        &tx,
        actor,
        "project.review",
        &format!("project:{id}"),
        Some(&before),
        Some(&after),
    )
    .await
    .map_err(db)?;
    let text = if approve {
        notify::bilingual(
            &format!("你的项目「{title}」已通过审核，现已上线"),
            &format!("Your project “{title}” was approved and is live"),
        )
    } else {
        notify::bilingual(
            &format!("你的项目「{title}」未通过审核：{reason}"),
            &format!("Your project “{title}” was not approved: {reason}"),
        )
    };
    let notice = Notice {
        recipient_id: owner_id,
        kind: Kind::ProjectReview,
        actor: Actor::System,
        target: Target {
            kind: "project",
            id: TargetId::Id(id),
        },
        text: &text,
        dedupe_key: None,
    };
    notify::notify(&tx, &notice).await.map_err(db)?;
    if approve {
        changed(&tx, id).await.map_err(db)?;
    }
    tx.commit().await.map_err(db)?;
    Ok(next)
}

/// Tells every instance (on commit) that public project `id` changed.
pub async fn changed(client: &impl GenericClient, id: i64) -> Result<(), tokio_postgres::Error> {
    crate::store::events::publish(client, &changed_payload(id)).await
}

/// The event [`changed`] sends, for a statement that sends it itself.
pub fn changed_payload(id: i64) -> String {
    format!(r#"{{"kind":"project","id":{id}}}"#)
}

/// May `who` see project `owner_id`'s unpublished work: its owner, reviewers and admins.
pub fn may_see_private(who: Option<&Principal>, owner_id: i64) -> bool {
    who.is_some_and(|p| p.user_id == owner_id || p.role.allows(Role::Reviewer))
}

/// The surplus policy a stored text names (the column's CHECK keeps it one of them).
pub fn surplus_of(text: &str) -> Surplus {
    Surplus::parse(text).unwrap_or(Surplus::Refund)
}
