//! The crowdfunding pages, in the site's layout and language: `/projects` (the list with
//! progress bars), `/projects/{id}` (goals with their images and a mark on each reached one,
//! rewards with what is left, the back form → the pay page, updates, backers; `project.js`
//! keeps the progress current without a reload), `/projects/mine` (the owner's dashboard and
//! my backings), `/projects/new` and `…/edit` (the form `project-edit.js` posts as JSON), and
//! `/admin/projects` (the reviewers' queue). Every user text is escaped by askama.

use askama::Template;
use http::StatusCode;
use http::request::Parts;
use time::OffsetDateTime;

use super::handlers::{self, db};
use super::model::Status;
use super::read::{ListItem, ProjectView, RewardView};
use crate::account::Role;
use crate::app::State;
use crate::error::AppError;
use crate::http::assets;
use crate::http::list::Paging;
use crate::http::respond::{self, Response};
use crate::pay::money::format_yuan;
use crate::pay::provider::Channel;
use crate::ui::{self, Pager, Section, Ui, fill};

/// Helpers every crowdfunding page's template calls as `self.…`.
macro_rules! words {
    ($($page:ident),*) => {$(
        #[allow(dead_code)]
        impl $page {
            fn status_label(&self, status: &Status) -> &'static str {
                status_word(&self.ui, *status)
            }
            fn yuan(&self, fen: &i64) -> String {
                format_yuan(*fen)
            }
            fn rfc(&self, at: &OffsetDateTime) -> String {
                crate::pay::rfc3339(*at)
            }
            fn backers(&self, n: &i32) -> String {
                fill(self.ui.t.crowdfunding.backers, &[("n", n)])
            }
            fn review_note(&self, reason: &str) -> String {
                fill(self.ui.t.crowdfunding.review_note, &[("reason", &reason)])
            }
        }
    )*};
}

fn status_word(ui: &Ui, status: Status) -> &'static str {
    let t = &ui.t.crowdfunding;
    match status {
        Status::Draft => t.status_draft,
        Status::PendingReview => t.status_pending_review,
        Status::Rejected => t.status_rejected,
        Status::Live => t.status_live,
        Status::Succeeded => t.status_succeeded,
        Status::Failed => t.status_failed,
    }
}

/// A quick filter link.
pub struct Chip {
    pub href: String,
    pub label: &'static str,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "projects.html")]
struct ListPage {
    ui: Ui,
    items: Vec<ListItem>,
    pager: Pager,
    status_chips: Vec<Chip>,
    sort_chips: Vec<Chip>,
    q: String,
    status: &'static str,
    signed_in: bool,
}

impl ListPage {
    fn goal_text(&self, item: &ListItem) -> String {
        let t = &self.ui.t.crowdfunding;
        match item.goals.iter().find(|g| **g > item.raised_fen) {
            Some(next) => fill(t.next_goal, &[("amount", &format_yuan(*next))]),
            None => t.all_goals.to_string(),
        }
    }
}

fn link(status: &str, sort: &str, q: &str) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    out.append_pair("status", status);
    out.append_pair("sort", sort);
    if !q.is_empty() {
        out.append_pair("q", q);
    }
    format!("/projects?{}", out.finish())
}

/// `GET /projects`
pub async fn list(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let result = async {
        let query = handlers::list_query(parts.uri.query())?;
        let (_, items, total) = handlers::list_body(state, &query).await?;
        let ui = Ui::new(state, parts, Section::Projects).await;
        let t = &ui.t.crowdfunding;
        let q = query.q.clone().unwrap_or_default();
        let (status, sort) = (query.key.status.as_str(), query.key.sort.as_str());
        let status_chips = [
            (Status::Live, t.status_live),
            (Status::Succeeded, t.status_succeeded),
            (Status::Failed, t.status_failed),
        ]
        .into_iter()
        .map(|(s, label)| Chip {
            href: link(s.as_str(), sort, &q),
            label,
            current: s == query.key.status,
        })
        .collect();
        let sort_chips = [
            ("newest", t.sort_newest),
            ("ending", t.sort_ending),
            ("most_funded", t.sort_most_funded),
            ("most_backed", t.sort_most_backed),
        ]
        .into_iter()
        .map(|(s, label)| Chip {
            href: link(status, s, &q),
            label,
            current: s == sort,
        })
        .collect();
        let pager = Pager::new("/projects", parts.uri.query(), query.key.page, query.key.size, total)?;
        let signed_in = ui.user.is_some();
        let page = ListPage {
            ui,
            items,
            pager,
            status_chips,
            sort_chips,
            q,
            status,
            signed_in,
        };
        ui::page(page.ui.lang, StatusCode::OK, &page)
    }
    .await;
    Ok(ui::or_error_page(state, parts, result).await)
}

/// An update as the page shows it.
pub struct UpdateRow {
    pub title: String,
    pub body: String,
    pub created_at: String,
}

/// A backer as the page shows them.
pub struct BackerRow {
    pub donor: String,
    pub amount: String,
    pub reward: Option<String>,
    pub message: String,
}

#[derive(Template)]
#[template(path = "project.html")]
struct DetailPage {
    ui: Ui,
    p: ProjectView,
    private: bool,
    signed_in: bool,
    following: bool,
    addresses: Vec<(i64, String)>,
    channels: Vec<&'static str>,
    updates: Vec<UpdateRow>,
    backers: Vec<BackerRow>,
    script: String,
}

impl DetailPage {
    fn percent(&self) -> i64 {
        let bar = self
            .p
            .goals
            .iter()
            .map(|g| g.amount_fen)
            .find(|g| *g > self.p.raised_fen)
            .or_else(|| self.p.goals.last().map(|g| g.amount_fen))
            .unwrap_or(1);
        (self.p.raised_fen.saturating_mul(100) / bar.max(1)).clamp(0, 100)
    }
    fn open(&self) -> bool {
        self.p.status == Status::Live && self.p.deadline > OffsetDateTime::now_utc()
    }
    fn refunds_surplus(&self) -> bool {
        self.p.surplus == super::settle::Surplus::Refund
    }
    /// A `{n}` pattern for the page's script, its hole written `%n%`.
    fn js_pattern(&self, pattern: &str) -> String {
        pattern.replace("{n}", "%n%")
    }
    fn by_owner(&self) -> String {
        fill(self.ui.t.crowdfunding.by_owner, &[("name", &self.p.owner_name)])
    }
    fn followers_text(&self) -> String {
        fill(self.ui.t.crowdfunding.followers, &[("n", &self.p.followers)])
    }
    fn minimum_label(&self, fen: &i64) -> String {
        fill(self.ui.t.crowdfunding.from_amount, &[("amount", &format_yuan(*fen))])
    }
    fn remaining_text(&self, reward: &RewardView) -> String {
        let t = &self.ui.t.crowdfunding;
        match reward.remaining() {
            None => t.unlimited.to_string(),
            Some(0) => t.sold_out.to_string(),
            Some(n) => fill(t.remaining, &[("n", &n)]),
        }
    }
    fn settled_text(&self) -> String {
        format_yuan(self.p.settled_fen.unwrap_or(0))
    }
    fn any_ships(&self) -> bool {
        self.p.rewards.iter().any(|r| r.ships)
    }
}

const ADDRESSES: &str = "SELECT id, name || ' · ' || region || ' ' || detail FROM addresses
  WHERE user_id = $1 ORDER BY is_default DESC, id DESC";
const FOLLOWING: &str = "SELECT 1 FROM project_follows WHERE project_id = $1 AND user_id = $2";
const BACKERS: &str = "SELECT CASE WHEN b.anonymous THEN NULL ELSE u.display_name END, b.amount_fen - p.refunded_fen,
        r.title, b.message
   FROM backings b JOIN payments p USING (order_no) JOIN users u ON u.id = b.user_id
   LEFT JOIN project_rewards r ON r.id = b.reward_id
  WHERE b.project_id = $1 AND b.counted AND p.refunded_fen < b.amount_fen
  ORDER BY p.paid_at DESC, b.order_no DESC LIMIT 20";

/// `GET /projects/{id}`
pub async fn detail(state: &State, parts: &Parts, id: i64) -> Result<Response, AppError> {
    let result = async {
        let ui = Ui::new(state, parts, Section::Projects).await;
        let who = state.sessions.principal(&state.store, parts).await.ok().flatten();
        let client = state.store.client().await?;
        let p = super::read::project(&client, id)
            .await
            .map_err(db)?
            .ok_or(AppError::NotFound)?;
        let private = super::projects::may_see_private(who.as_deref(), p.owner_id);
        if !p.status.is_public() && !private {
            return Err(AppError::NotFound);
        }
        let (mut addresses, mut following) = (Vec::new(), false);
        if let Some(who) = &who {
            addresses = client
                .query(ADDRESSES, &[&who.user_id])
                .await
                .map_err(db)?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            following = client
                .query_opt(FOLLOWING, &[&id, &who.user_id])
                .await
                .map_err(db)?
                .is_some();
        }
        let (_, updates) = super::updates::update_page(&client, id, Paging { page: 1, size: 10 }).await?;
        let updates = updates
            .iter()
            .map(|u| UpdateRow {
                title: u["title"].as_str().unwrap_or_default().to_string(),
                body: u["body"].as_str().unwrap_or_default().to_string(),
                created_at: u["created_at"].as_str().unwrap_or_default().to_string(),
            })
            .collect();
        let anonymous = ui.t.donate.anonymous_donor;
        let backers = client
            .query(BACKERS, &[&id])
            .await
            .map_err(db)?
            .iter()
            .map(|r| BackerRow {
                donor: r.get::<_, Option<String>>(0).unwrap_or_else(|| anonymous.to_string()),
                amount: format_yuan(r.get(1)),
                reward: r.get(2),
                message: r.get(3),
            })
            .collect();
        let policy = state.engine.policy.current();
        let channels = [Channel::Wechat, Channel::Alipay]
            .into_iter()
            .filter(|c| policy.accepts(*c) && state.engine.is_configured(*c))
            .map(Channel::as_str)
            .collect();
        let page = DetailPage {
            signed_in: who.is_some(),
            ui,
            p,
            private,
            following,
            addresses,
            channels,
            updates,
            backers,
            script: assets::url("project.js"),
        };
        ui::page(page.ui.lang, StatusCode::OK, &page)
    }
    .await;
    Ok(ui::or_error_page(state, parts, result).await)
}

/// A backing of mine as the dashboard shows it.
pub struct MyBacking {
    pub order_no: String,
    pub project_id: i64,
    pub project_title: String,
    pub amount: String,
    pub status: String,
    pub reward: Option<String>,
    pub shipping: Option<String>,
    pub tracking: Option<String>,
}

/// A backing to ship.
pub struct ToShip {
    pub order_no: String,
    pub project_id: i64,
    pub project_title: String,
    pub reward: String,
    pub amount: String,
    pub address: String,
}

#[derive(Template)]
#[template(path = "projects_mine.html")]
struct Dashboard {
    ui: Ui,
    reviewer: bool,
    projects: Vec<ListItem>,
    to_ship: Vec<ToShip>,
    backings: Vec<MyBacking>,
    script: String,
}

impl Dashboard {
    fn shipping_label(&self, code: &str) -> &'static str {
        let t = &self.ui.t.crowdfunding;
        match code {
            "pending" => t.shipping_pending,
            "shipped" => t.shipping_shipped,
            _ => t.shipping_delivered,
        }
    }
}

const MY_BACKINGS: &str = "SELECT b.order_no, b.project_id, pr.title, b.amount_fen - p.refunded_fen, p.status, r.title,
        b.shipping, b.tracking_no
   FROM backings b JOIN payments p USING (order_no) JOIN projects pr ON pr.id = b.project_id
   LEFT JOIN project_rewards r ON r.id = b.reward_id
  WHERE b.user_id = $1 ORDER BY b.created_at DESC LIMIT 50";
const TO_SHIP: &str = "SELECT b.order_no, b.project_id, pr.title, COALESCE(r.title, ''), b.amount_fen,
        b.ship_name || ' ' || b.ship_phone || ' · ' || b.ship_region || ' ' || b.ship_detail
   FROM backings b JOIN projects pr ON pr.id = b.project_id JOIN payments p USING (order_no)
   LEFT JOIN project_rewards r ON r.id = b.reward_id
  WHERE pr.owner_id = $1 AND pr.status = 'succeeded' AND b.shipping = 'pending' AND b.counted
    AND p.refunded_fen < b.amount_fen
  ORDER BY b.created_at LIMIT 100";

/// `GET /projects/mine`: my projects, what I owe backers, what I backed.
pub async fn dashboard(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let result = async {
        let who = state.sessions.require(&state.store, parts, Role::User).await?;
        let (_, projects) = handlers::owned(state, who.user_id, Paging { page: 1, size: 100 }).await?;
        let client = state.store.client().await?;
        let backings = client
            .query(MY_BACKINGS, &[&who.user_id])
            .await
            .map_err(db)?
            .iter()
            .map(|r| MyBacking {
                order_no: r.get(0),
                project_id: r.get(1),
                project_title: r.get(2),
                amount: format_yuan(r.get(3)),
                status: r.get(4),
                reward: r.get(5),
                shipping: r.get(6),
                tracking: r.get(7),
            })
            .collect();
        let to_ship = client
            .query(TO_SHIP, &[&who.user_id])
            .await
            .map_err(db)?
            .iter()
            .map(|r| ToShip {
                order_no: r.get(0),
                project_id: r.get(1),
                project_title: r.get(2),
                reward: r.get(3),
                amount: format_yuan(r.get(4)),
                address: r.get::<_, Option<String>>(5).unwrap_or_default(),
            })
            .collect();
        let page = Dashboard {
            ui: Ui::for_principal(parts, Section::Projects, Some(&who)),
            reviewer: who.role.allows(Role::Reviewer),
            projects,
            to_ship,
            backings,
            script: assets::url("project-forms.js"),
        };
        ui::page(page.ui.lang, StatusCode::OK, &page)
    }
    .await;
    Ok(sign_in_or_error(state, parts, result).await)
}

/// A goal slot of the form.
pub struct GoalSlot {
    pub label: String,
    pub amount: String,
    pub title: String,
    pub description: String,
    /// Image ids, comma-separated (the hidden field).
    pub images: String,
    pub image_ids: Vec<String>,
    /// Not shown until asked for (an empty slot beyond the first two).
    pub hidden: bool,
}

/// A reward slot of the form.
pub struct RewardSlot {
    pub label: String,
    pub title: String,
    pub description: String,
    pub min_amount: String,
    pub quantity: String,
    pub ships: bool,
    pub hidden: bool,
}

/// The form's values.
pub struct FormValues {
    pub title: String,
    pub summary: String,
    pub story: String,
    /// `YYYY-MM-DDTHH:MM` in Beijing time (what `datetime-local` shows); the script sends it
    /// with the browser's offset.
    pub deadline: String,
    pub cover: String,
    pub surplus: &'static str,
    pub goals: Vec<GoalSlot>,
    pub rewards: Vec<RewardSlot>,
}

#[derive(Template)]
#[template(path = "project_edit.html")]
struct EditPage {
    ui: Ui,
    heading: &'static str,
    /// The project's id, or empty for a new one.
    id: String,
    review_reason: Option<String>,
    deadline_hint: String,
    f: FormValues,
    script: String,
}

fn form_values(ui: &Ui, p: Option<&ProjectView>) -> FormValues {
    let t = &ui.t.crowdfunding;
    let local = |at: OffsetDateTime| {
        let at = at.to_offset(time::macros::offset!(+8));
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute()
        )
    };
    let goals_filled = p.map_or(0, |p| p.goals.len());
    let goals = (0..super::model::MAX_GOALS)
        .map(|i| {
            let g = p.and_then(|p| p.goals.get(i));
            GoalSlot {
                label: fill(t.f_goal, &[("n", &(i + 1))]),
                amount: g.map(|g| format_yuan(g.amount_fen)).unwrap_or_default(),
                title: g.map(|g| g.title.clone()).unwrap_or_default(),
                description: g.map(|g| g.description.clone()).unwrap_or_default(),
                images: g.map(|g| g.images.join(",")).unwrap_or_default(),
                image_ids: g.map(|g| g.images.clone()).unwrap_or_default(),
                hidden: i >= goals_filled.max(2),
            }
        })
        .collect();
    let filled = p.map_or(0, |p| p.rewards.len());
    let rewards = (0..super::model::MAX_REWARDS)
        .map(|i| {
            let r = p.and_then(|p| p.rewards.get(i));
            RewardSlot {
                label: fill(t.f_reward, &[("n", &(i + 1))]),
                title: r.map(|r| r.title.clone()).unwrap_or_default(),
                description: r.map(|r| r.description.clone()).unwrap_or_default(),
                min_amount: r.map(|r| format_yuan(r.min_amount_fen)).unwrap_or_default(),
                quantity: r.and_then(|r| r.quantity).map(|q| q.to_string()).unwrap_or_default(),
                ships: r.is_some_and(|r| r.ships),
                hidden: i >= filled.max(2),
            }
        })
        .collect();
    FormValues {
        title: p.map(|p| p.title.clone()).unwrap_or_default(),
        summary: p.map(|p| p.summary.clone()).unwrap_or_default(),
        story: p.map(|p| p.story.clone()).unwrap_or_default(),
        deadline: p.map(|p| local(p.deadline)).unwrap_or_default(),
        cover: p.and_then(|p| p.cover_image.clone()).unwrap_or_default(),
        surplus: p.map_or("refund", |p| p.surplus.as_str()),
        goals,
        rewards,
    }
}

/// `GET /projects/new` and `GET /projects/{id}/edit` (the owner, while not public).
pub async fn edit(state: &State, parts: &Parts, id: Option<i64>) -> Result<Response, AppError> {
    let result = async {
        let who = state.sessions.require(&state.store, parts, Role::User).await?;
        let project = match id {
            None => None,
            Some(id) => {
                let client = state.store.client().await?;
                let p = super::read::project(&client, id)
                    .await
                    .map_err(db)?
                    .ok_or(AppError::NotFound)?;
                who.own(p.owner_id, ())?;
                if !p.status.is_editable() {
                    return Err(AppError::conflict("project_not_editable", "this project is live"));
                }
                Some(p)
            }
        };
        let ui = Ui::for_principal(parts, Section::Projects, Some(&who));
        let t = &ui.t.crowdfunding;
        let hours = state.config.settings.crowdfunding.min_duration_secs.div_ceil(3600);
        let page = EditPage {
            heading: if id.is_some() { t.edit_title } else { t.new_title },
            id: id.map(|i| i.to_string()).unwrap_or_default(),
            review_reason: project
                .as_ref()
                .filter(|p| p.status == Status::Rejected)
                .and_then(|p| p.review_reason.clone()),
            deadline_hint: fill(t.f_deadline_hint, &[("hours", &hours)]),
            f: form_values(&ui, project.as_ref()),
            script: assets::url("project-edit.js"),
            ui,
        };
        ui::page(page.ui.lang, StatusCode::OK, &page)
    }
    .await;
    Ok(sign_in_or_error(state, parts, result).await)
}

/// A project in the reviewers' queue.
pub struct QueueRow {
    pub id: i64,
    pub title: String,
    pub owner: String,
    pub goals: String,
    pub deadline: String,
    pub submitted: String,
    pub revision: i32,
}

#[derive(Template)]
#[template(path = "projects_queue.html")]
struct QueuePage {
    ui: Ui,
    total: i64,
    items: Vec<QueueRow>,
    pager: Pager,
    script: String,
}

/// `GET /admin/projects`: what waits for review, oldest first (reviewers and admins).
pub async fn queue(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let result = async {
        let who = state.sessions.require(&state.store, parts, Role::Reviewer).await?;
        let paging = Paging::parse(parts.uri.query(), 50, 100)?;
        let (total, rows) = handlers::queue_items(state, Status::PendingReview, paging).await?;
        let items = rows
            .into_iter()
            .map(|(item, submitted, revision)| QueueRow {
                id: item.id,
                goals: item
                    .goals
                    .iter()
                    .map(|g| format!("¥{}", format_yuan(*g)))
                    .collect::<Vec<_>>()
                    .join(" / "),
                title: item.title,
                owner: item.owner_name,
                deadline: crate::pay::rfc3339(item.deadline),
                submitted: submitted.map(crate::pay::rfc3339).unwrap_or_default(),
                revision,
            })
            .collect();
        let pager = Pager::new("/admin/projects", parts.uri.query(), paging.page, paging.size, total)?;
        let mut ui = Ui::for_principal(parts, Section::Admin, Some(&who));
        ui.wide = true;
        let page = QueuePage {
            ui,
            total,
            items,
            pager,
            script: assets::url("project-forms.js"),
        };
        ui::page(page.ui.lang, StatusCode::OK, &page)
    }
    .await;
    Ok(sign_in_or_error(state, parts, result).await)
}

/// A page that needs a session: to the sign-in page without one, else the error page.
async fn sign_in_or_error(state: &State, parts: &Parts, result: Result<Response, AppError>) -> Response {
    match result {
        Err(AppError::Unauthorized) => {
            let here = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            let next: String = form_urlencoded::byte_serialize(here.as_bytes()).collect();
            respond::see_other(&format!("/login?next={next}"))
        }
        other => ui::or_error_page(state, parts, other).await,
    }
}

words!(ListPage, DetailPage, Dashboard, EditPage, QueuePage);
