//! A project as it is written: the JSON bodies of `POST /api/projects` and `PATCH
//! /api/projects/{id}`, merged over what is stored and checked whole (contract:
//! "Crowdfunding"): 1..=5 goals strictly rising, 0..=20 rewards with `min_amount` within the
//! payment bounds, at most 9 images per project, goal and update, the deadline inside the
//! configured window. Pure: the image ids' existence is checked by the caller in its
//! transaction (`media::check_ids`).

use serde::Deserialize;
use time::OffsetDateTime;

use super::settle::Surplus;
use crate::error::AppError;
use crate::pay::money::{self, format_yuan};

/// Most goals, rewards, and images per project, goal or update.
pub const MAX_GOALS: usize = 5;
pub const MAX_REWARDS: usize = 20;
pub const MAX_IMAGES: usize = 9;
/// The largest goal: 100 million yuan.
pub const MAX_GOAL_FEN: i64 = 10_000_000_000;

/// Where a project stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Draft,
    PendingReview,
    Rejected,
    Live,
    Succeeded,
    Failed,
}

impl Status {
    pub fn parse(text: &str) -> Option<Status> {
        Some(match text {
            "draft" => Status::Draft,
            "pending_review" => Status::PendingReview,
            "rejected" => Status::Rejected,
            "live" => Status::Live,
            "succeeded" => Status::Succeeded,
            "failed" => Status::Failed,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::PendingReview => "pending_review",
            Status::Rejected => "rejected",
            Status::Live => "live",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
        }
    }

    /// Listed and readable by everyone.
    pub fn is_public(self) -> bool {
        matches!(self, Status::Live | Status::Succeeded | Status::Failed)
    }

    /// The owner may still change it.
    pub fn is_editable(self) -> bool {
        matches!(self, Status::Draft | Status::PendingReview | Status::Rejected)
    }
}

impl<'a> tokio_postgres::types::FromSql<'a> for Status {
    fn from_sql(
        ty: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let text = <&str as tokio_postgres::types::FromSql>::from_sql(ty, raw)?;
        Status::parse(text).ok_or_else(|| format!("unknown project status {text:?}").into())
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        <&str as tokio_postgres::types::FromSql>::accepts(ty)
    }
}

/// A goal as sent.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoalBody {
    pub amount: Option<String>,
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub images: Option<Vec<String>>,
}

/// A reward as sent.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RewardBody {
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub min_amount: Option<String>,
    #[serde(default)]
    pub quantity: Option<i64>,
    #[serde(default)]
    pub ships: Option<bool>,
}

/// `POST /api/projects` and `PATCH /api/projects/{id}`: a field given replaces the stored one.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectBody {
    pub title: Option<String>,
    pub summary: Option<String>,
    pub story: Option<String>,
    /// `null` removes the cover.
    #[serde(default, deserialize_with = "explicit")]
    pub cover_image: Option<Option<String>>,
    pub images: Option<Vec<String>>,
    pub deadline: Option<String>,
    pub goals: Option<Vec<GoalBody>>,
    pub rewards: Option<Vec<RewardBody>>,
    pub surplus: Option<String>,
    /// Send it to review (from `draft` or `rejected`).
    #[serde(default)]
    pub submit: bool,
}

/// A field that may be given as `null` (→ `Some(None)`) or left out (→ `None`).
fn explicit<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(Option::<String>::deserialize(d)?))
}

/// A checked goal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Goal {
    pub amount_fen: i64,
    pub title: String,
    pub description: String,
    pub images: Vec<String>,
}

/// A checked reward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reward {
    pub title: String,
    pub description: String,
    pub min_amount_fen: i64,
    pub quantity: Option<i32>,
    pub ships: bool,
}

/// A checked project, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub title: String,
    pub summary: String,
    pub story: String,
    pub cover_image: Option<String>,
    pub images: Vec<String>,
    pub deadline: OffsetDateTime,
    pub goals: Vec<Goal>,
    pub rewards: Vec<Reward>,
    pub surplus: Surplus,
}

impl Project {
    /// Every image id it names (to check they exist).
    pub fn image_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.cover_image.iter().cloned().collect();
        ids.extend(self.images.iter().cloned());
        for goal in &self.goals {
            ids.extend(goal.images.iter().cloned());
        }
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// This project as a body, so a change can be merged over it.
    pub fn to_body(&self) -> ProjectBody {
        ProjectBody {
            title: Some(self.title.clone()),
            summary: Some(self.summary.clone()),
            story: Some(self.story.clone()),
            cover_image: Some(self.cover_image.clone()),
            images: Some(self.images.clone()),
            deadline: Some(crate::pay::rfc3339(self.deadline)),
            goals: Some(
                self.goals
                    .iter()
                    .map(|g| GoalBody {
                        amount: Some(format_yuan(g.amount_fen)),
                        title: Some(g.title.clone()),
                        description: Some(g.description.clone()),
                        images: Some(g.images.clone()),
                    })
                    .collect(),
            ),
            rewards: Some(
                self.rewards
                    .iter()
                    .map(|r| RewardBody {
                        title: Some(r.title.clone()),
                        description: Some(r.description.clone()),
                        min_amount: Some(format_yuan(r.min_amount_fen)),
                        quantity: r.quantity.map(i64::from),
                        ships: Some(r.ships),
                    })
                    .collect(),
            ),
            surplus: Some(self.surplus.as_str().to_string()),
            submit: false,
        }
    }
}

impl ProjectBody {
    /// `self` with every field `change` gives replaced.
    pub fn merged(mut self, change: ProjectBody) -> ProjectBody {
        macro_rules! take {
            ($($field:ident),*) => {$(if change.$field.is_some() { self.$field = change.$field; })*};
        }
        take!(
            title,
            summary,
            story,
            cover_image,
            images,
            deadline,
            goals,
            rewards,
            surplus
        );
        self.submit = change.submit;
        self
    }
}

/// The rules a project is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub now: OffsetDateTime,
    /// `crowdfunding.min_duration_secs`.
    pub min_duration_secs: u64,
    /// The payment bounds a reward's `min_amount` must lie within.
    pub min_amount_fen: i64,
    pub max_amount_fen: i64,
}

/// Checks a whole project (after merging), trimming its texts.
pub fn check(body: ProjectBody, rules: &Rules) -> Result<Project, AppError> {
    let title = text(body.title.as_deref(), 1, 60, false, "invalid_title", "title")?;
    let summary = text(body.summary.as_deref(), 0, 200, false, "invalid_summary", "summary")?;
    let story = text(body.story.as_deref(), 0, 20_000, true, "invalid_story", "story")?;
    let cover_image = body
        .cover_image
        .flatten()
        .map(|id| id.trim().to_string())
        .filter(|id| !id.is_empty());
    let images = image_list(body.images.unwrap_or_default(), "images")?;
    let deadline = deadline(body.deadline.as_deref(), rules)?;
    let goals = goals(body.goals.unwrap_or_default())?;
    let rewards = rewards(body.rewards.unwrap_or_default(), rules)?;
    let surplus = match body.surplus.as_deref() {
        None => Surplus::Refund,
        Some(text) => Surplus::parse(text)
            .ok_or_else(|| AppError::invalid("invalid_surplus", "surplus must be refund or keep"))?,
    };
    Ok(Project {
        title,
        summary,
        story,
        cover_image,
        images,
        deadline,
        goals,
        rewards,
        surplus,
    })
}

/// Trimmed text of `min..=max` characters, without control characters (newlines allowed
/// where `multiline`); a missing field is empty.
pub fn text(
    value: Option<&str>,
    min: usize,
    max: usize,
    multiline: bool,
    code: &'static str,
    name: &str,
) -> Result<String, AppError> {
    let value = value.unwrap_or("").trim();
    let count = value.chars().count();
    if count < min || count > max {
        let message = if min == 0 {
            format!("{name} must be at most {max} characters")
        } else {
            format!("{name} must be {min} to {max} characters")
        };
        return Err(AppError::invalid(code, message));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t')))
    {
        return Err(AppError::invalid(
            code,
            format!("{name} must not contain control characters"),
        ));
    }
    Ok(value.to_string())
}

/// At most [`MAX_IMAGES`] ids, each once.
pub fn image_list(ids: Vec<String>, name: &str) -> Result<Vec<String>, AppError> {
    if ids.len() > MAX_IMAGES {
        return Err(AppError::invalid(
            "invalid_images",
            format!("{name} may hold at most {MAX_IMAGES} images"),
        ));
    }
    let mut seen = Vec::with_capacity(ids.len());
    for id in ids {
        let id = id.trim().to_string();
        if !seen.contains(&id) {
            seen.push(id);
        }
    }
    Ok(seen)
}

fn deadline(value: Option<&str>, rules: &Rules) -> Result<OffsetDateTime, AppError> {
    let earliest = rules.now + time::Duration::seconds(rules.min_duration_secs as i64);
    let latest = rules.now + time::Duration::seconds(crate::config::crowdfunding::MAX_DURATION_SECS as i64);
    let window = || {
        format!(
            "deadline must be an RFC 3339 time from {} to {}",
            crate::pay::rfc3339(earliest),
            crate::pay::rfc3339(latest)
        )
    };
    let at = value
        .and_then(|v| OffsetDateTime::parse(v.trim(), &time::format_description::well_known::Rfc3339).ok())
        .ok_or_else(|| AppError::invalid("invalid_deadline", window()))?;
    if at < earliest || at > latest {
        return Err(AppError::invalid("invalid_deadline", window()));
    }
    Ok(at.replace_nanosecond(0).unwrap_or(at))
}

fn yuan(value: Option<&str>, code: &'static str, what: &str) -> Result<i64, AppError> {
    let value = value.ok_or_else(|| AppError::invalid(code, format!("{what} is required, e.g. \"100.00\"")))?;
    money::parse_yuan(value.trim())
        .ok()
        .filter(|fen| *fen > 0)
        .ok_or_else(|| {
            AppError::invalid(
                code,
                format!("{what} must be a yuan string above 0 with at most two decimals"),
            )
        })
}

fn goals(bodies: Vec<GoalBody>) -> Result<Vec<Goal>, AppError> {
    if !(1..=MAX_GOALS).contains(&bodies.len()) {
        return Err(AppError::invalid(
            "invalid_goals",
            format!("a project has 1 to {MAX_GOALS} goals"),
        ));
    }
    let mut goals: Vec<Goal> = Vec::with_capacity(bodies.len());
    for (i, body) in bodies.into_iter().enumerate() {
        let amount_fen = yuan(body.amount.as_deref(), "invalid_goal", "a goal's amount")?;
        if amount_fen > MAX_GOAL_FEN {
            return Err(AppError::invalid(
                "invalid_goal",
                format!("a goal may be at most {}", format_yuan(MAX_GOAL_FEN)),
            ));
        }
        if let Some(previous) = goals.last()
            && amount_fen <= previous.amount_fen
        {
            return Err(AppError::invalid(
                "invalid_goals",
                format!(
                    "goals must rise strictly: goal {} ({}) is not above goal {} ({})",
                    i + 1,
                    format_yuan(amount_fen),
                    i,
                    format_yuan(previous.amount_fen)
                ),
            ));
        }
        goals.push(Goal {
            amount_fen,
            title: text(body.title.as_deref(), 1, 60, false, "invalid_goal", "a goal's title")?,
            description: text(
                body.description.as_deref(),
                0,
                2_000,
                true,
                "invalid_goal",
                "a goal's description",
            )?,
            images: image_list(body.images.unwrap_or_default(), "a goal")?,
        });
    }
    Ok(goals)
}

fn rewards(bodies: Vec<RewardBody>, rules: &Rules) -> Result<Vec<Reward>, AppError> {
    if bodies.len() > MAX_REWARDS {
        return Err(AppError::invalid(
            "invalid_rewards",
            format!("a project has at most {MAX_REWARDS} rewards"),
        ));
    }
    bodies
        .into_iter()
        .map(|body| {
            let min_amount_fen = yuan(body.min_amount.as_deref(), "invalid_reward", "a reward's min_amount")?;
            if !(rules.min_amount_fen..=rules.max_amount_fen).contains(&min_amount_fen) {
                return Err(AppError::invalid(
                    "invalid_reward",
                    format!(
                        "a reward's min_amount must be between {} and {} (the payment bounds)",
                        format_yuan(rules.min_amount_fen),
                        format_yuan(rules.max_amount_fen)
                    ),
                ));
            }
            let quantity = match body.quantity {
                None => None,
                Some(n) => Some(
                    i32::try_from(n)
                        .ok()
                        .filter(|n| (1..=1_000_000).contains(n))
                        .ok_or_else(|| {
                            AppError::invalid("invalid_reward", "a reward's quantity must be 1 to 1000000, or absent")
                        })?,
                ),
            };
            Ok(Reward {
                title: text(
                    body.title.as_deref(),
                    1,
                    60,
                    false,
                    "invalid_reward",
                    "a reward's title",
                )?,
                description: text(
                    body.description.as_deref(),
                    0,
                    1_000,
                    true,
                    "invalid_reward",
                    "a reward's description",
                )?,
                min_amount_fen,
                quantity,
                ships: body.ships.unwrap_or(false),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules {
            now: OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
            min_duration_secs: 86_400,
            min_amount_fen: 1,
            max_amount_fen: 5_000_000,
        }
    }

    fn body() -> ProjectBody {
        serde_json::from_value(serde_json::json!({
            "title": "  山区图书角  ",
            "deadline": "2027-01-30T00:00:00+08:00",
            "goals": [{"amount": "1000.00", "title": "第一期"}, {"amount": "5000", "title": "第二期"}],
            "rewards": [{"title": "明信片", "min_amount": "20.00", "quantity": 100, "ships": true}],
        }))
        .unwrap()
    }

    fn code(body: ProjectBody) -> &'static str {
        check(body, &rules()).unwrap_err().code()
    }

    #[test]
    fn a_valid_project_is_trimmed_and_in_fen() {
        let p = check(body(), &rules()).unwrap();
        assert_eq!(p.title, "山区图书角");
        assert_eq!(p.goals[1].amount_fen, 500_000);
        assert_eq!(p.rewards[0].quantity, Some(100));
        assert_eq!(p.surplus, Surplus::Refund);
    }

    #[test]
    fn goals_must_be_one_to_five_and_strictly_rising() {
        let mut b = body();
        b.goals = Some(vec![]);
        assert_eq!(code(b), "invalid_goals");
        let mut b = body();
        let goal = |amount: &str| GoalBody {
            amount: Some(amount.into()),
            title: Some("g".into()),
            ..GoalBody::default()
        };
        b.goals = Some((1..=6).map(|i| goal(&i.to_string())).collect());
        assert_eq!(code(b), "invalid_goals");
        let mut b = body();
        b.goals = Some(vec![goal("10"), goal("10")]);
        assert_eq!(code(b), "invalid_goals", "equal is not rising");
        let mut b = body();
        b.goals = Some(vec![goal("10"), goal("9.99")]);
        assert_eq!(code(b), "invalid_goals");
        let mut b = body();
        b.goals = Some(vec![goal("0")]);
        assert_eq!(code(b), "invalid_goal");
        let mut b = body();
        b.goals = Some(vec![goal("1.001")]);
        assert_eq!(code(b), "invalid_goal");
    }

    #[test]
    fn rewards_are_at_most_twenty_within_the_payment_bounds() {
        let reward = |min: &str| RewardBody {
            title: Some("r".into()),
            min_amount: Some(min.into()),
            ..RewardBody::default()
        };
        let mut b = body();
        b.rewards = Some((0..21).map(|_| reward("1")).collect());
        assert_eq!(code(b), "invalid_rewards");
        let mut b = body();
        b.rewards = Some(vec![reward("50000.01")]);
        assert_eq!(code(b), "invalid_reward");
        let mut b = body();
        b.rewards = Some(vec![RewardBody {
            quantity: Some(0),
            ..reward("1")
        }]);
        assert_eq!(code(b), "invalid_reward");
        let mut b = body();
        b.rewards = Some(vec![]);
        assert!(check(b, &rules()).is_ok(), "no rewards is fine");
    }

    #[test]
    fn the_deadline_lies_in_the_window() {
        for bad in ["2027-01-15T00:00:00+08:00", "2027-04-30T00:00:00Z", "tomorrow", ""] {
            let mut b = body();
            b.deadline = Some(bad.into());
            assert_eq!(code(b), "invalid_deadline", "{bad}");
        }
        let mut b = body();
        b.deadline = None;
        assert_eq!(code(b), "invalid_deadline");
    }

    #[test]
    fn texts_images_and_surplus_are_checked() {
        let mut b = body();
        b.title = Some(" ".into());
        assert_eq!(code(b), "invalid_title");
        let mut b = body();
        b.summary = Some("a\u{7}".into());
        assert_eq!(code(b), "invalid_summary");
        let mut b = body();
        b.images = Some(vec!["x".into(); 10]);
        assert_eq!(code(b), "invalid_images");
        let mut b = body();
        b.surplus = Some("donate".into());
        assert_eq!(code(b), "invalid_surplus");
        let mut b = body();
        b.story = Some("第一段\n第二段".into());
        assert_eq!(check(b, &rules()).unwrap().story, "第一段\n第二段");
    }

    #[test]
    fn a_change_replaces_only_what_it_gives_and_round_trips() {
        let stored = check(body(), &rules()).unwrap();
        let change: ProjectBody =
            serde_json::from_value(serde_json::json!({"title": "新标题", "cover_image": null})).unwrap();
        assert_eq!(change.cover_image, Some(None));
        let merged = check(stored.to_body().merged(change), &rules()).unwrap();
        assert_eq!(merged.title, "新标题");
        assert_eq!(merged.goals, stored.goals);
        assert_eq!(merged.rewards, stored.rewards);
        assert!(serde_json::from_value::<ProjectBody>(serde_json::json!({"evil": 1})).is_err());
    }
}
