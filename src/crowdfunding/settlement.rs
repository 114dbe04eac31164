//! The settlement job (contract: "Crowdfunding", money rules). Every instance runs it; one
//! applies each settlement:
//!
//! 1. **Decide** — a live project past its deadline (and `crowdfunding.settle_grace_secs`) is
//!    locked `FOR UPDATE SKIP LOCKED`; its counted backings are read with what each has left
//!    (paid, less refunds done or under way); `settle::plan` decides; the outcome, the settled
//!    amount and the whole refund plan (one row per backing owed money, its refund number
//!    chosen now) are written in that one transaction, with the owner's and backers'
//!    notifications. Payments landing meanwhile wait for the lock and are then refunded.
//! 2. **Send** — an instance leases the planned project and hands each planned refund to the
//!    engine under its number; the engine queues it at most once per number and the providers
//!    deduplicate by it, so a crash anywhere resumes without a double refund. Reconcile
//!    retries each until the provider says succeeded or failed.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Transaction;

use super::projects::changed;
use super::settle::{self, Outcome, Surplus};
use crate::app::State;
use crate::notify::{self, Actor, Kind, Notice, Target, TargetId};
use crate::pay::engine::{Engine, EngineError};
use crate::pay::money::format_yuan;
use crate::pay::refunds::NewRefund;
use crate::store::{Store, StoreError};

/// Projects looked at per pass, per step.
const BATCH: i64 = 20;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Projects this instance settled.
    pub settled: u32,
    /// Refunds handed to the engine.
    pub refunds_sent: u32,
}

/// Runs a pass every `crowdfunding.settle_interval_secs` (the first one interval after the
/// start) until shutdown.
pub async fn run(state: Arc<State>) {
    let every = Duration::from_secs(state.config.settings.crowdfunding.settle_interval_secs);
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        match pass(&state).await {
            Ok(done) if done != Pass::default() => tracing::info!(?done, "crowdfunding settlement pass"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "crowdfunding settlement pass failed; retrying"),
        }
    }
}

/// One pass: settle what is due, send what is planned, mark delivered what shipped long ago.
pub async fn pass(state: &State) -> Result<Pass, EngineError> {
    let settings = &state.config.settings.crowdfunding;
    let mut done = Pass::default();
    let grace = settings.settle_grace_secs as f64;
    for id in due(&state.store, grace).await? {
        if decide(&state.store, id, grace).await? {
            state.crowdfunding.cache.changed(id);
            done.settled += 1;
        }
    }
    let lease = (3 * state.engine.settings.call_budget()).as_secs_f64();
    for id in planned(&state.store).await? {
        done.refunds_sent += send(&state.engine, id, lease).await?;
        state.crowdfunding.cache.changed(id);
    }
    super::shipping::auto_deliver(&state.store, settings.auto_deliver_days).await?;
    Ok(done)
}

const DUE: &str = "SELECT id FROM projects WHERE status = 'live' AND deadline <= now() - make_interval(secs => $1)
  ORDER BY deadline LIMIT $2";
const PLANNED: &str = "SELECT id FROM projects WHERE settle_state = 'planned'
    AND (settle_lease IS NULL OR settle_lease < now()) ORDER BY id LIMIT $1";

/// Live projects past their deadline and `grace_secs`.
async fn due(store: &Store, grace_secs: f64) -> Result<Vec<i64>, StoreError> {
    let client = store.job_client().await?;
    let statement = client.prepare_cached(DUE).await?;
    let rows = client.query(&statement, &[&grace_secs, &BATCH]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Settled projects whose refunds are not all handed to the engine, not leased now.
async fn planned(store: &Store) -> Result<Vec<i64>, StoreError> {
    let client = store.job_client().await?;
    let statement = client.prepare_cached(PLANNED).await?;
    let rows = client.query(&statement, &[&BATCH]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

const LOCK_DUE: &str = "SELECT surplus, title, owner_id FROM projects
  WHERE id = $1 AND status = 'live' AND deadline <= now() - make_interval(secs => $2)
  FOR UPDATE SKIP LOCKED";
const GOALS: &str = "SELECT amount_fen FROM project_goals WHERE project_id = $1 ORDER BY position";
/// Counted backings with what each has left: paid, less refunds done or under way.
const BACKINGS: &str = "SELECT b.order_no, b.user_id,
        b.amount_fen - p.refunded_fen - COALESCE((SELECT sum(r.amount_fen) FROM refunds r
                                                   WHERE r.order_no = b.order_no AND r.status = 'processing'), 0)::bigint
   FROM backings b JOIN payments p USING (order_no)
  WHERE b.project_id = $1 AND b.counted ORDER BY p.paid_at, b.order_no";
const END: &str = "UPDATE projects SET status = $2, settled_goal = $3, settled_fen = $4, ended_at = now(),
        settle_state = $5, updated_at = now()
  WHERE id = $1";
const PLAN: &str = "INSERT INTO settlement_refunds (project_id, order_no, refund_no, amount_fen, kind)
     SELECT $1, o, n, a, $5 FROM unnest($2::text[], $3::text[], $4::bigint[]) AS x(o, n, a)";

/// Settles project `id` if it is due and no other instance holds it; true when it did.
pub async fn decide(store: &Store, id: i64, grace_secs: f64) -> Result<bool, StoreError> {
    let mut client = store.job_client().await?;
    let tx = client.transaction().await?;
    let Some(row) = tx.query_opt(LOCK_DUE, &[&id, &grace_secs]).await? else {
        return Ok(false);
    };
    let surplus = Surplus::parse(row.get(0)).unwrap_or(Surplus::Refund);
    let (title, owner_id): (String, i64) = (row.get(1), row.get(2));
    let goals: Vec<i64> = tx.query(GOALS, &[&id]).await?.iter().map(|r| r.get(0)).collect();
    let backings = tx.query(BACKINGS, &[&id]).await?;
    let lefts: Vec<i64> = backings.iter().map(|r| r.get(2)).collect();
    let plan = settle::plan(&goals, &lefts, surplus);
    let (status, goal, settled_fen, kind) = match plan.outcome {
        Outcome::Failed => ("failed", None, 0, "full"),
        Outcome::Succeeded { goal, settled_fen } => ("succeeded", Some(goal as i16), settled_fen, "surplus"),
    };
    let (mut orders, mut numbers, mut amounts) = (Vec::new(), Vec::new(), Vec::new());
    let mut per_backer: Vec<(i64, i64)> = Vec::new();
    for (row, refund) in backings.iter().zip(&plan.refunds) {
        let user: i64 = row.get(1);
        match per_backer.iter_mut().find(|(u, _)| *u == user) {
            Some((_, sum)) => *sum += refund,
            None => per_backer.push((user, *refund)),
        }
        if *refund > 0 {
            orders.push(row.get::<_, String>(0));
            numbers.push(uuid::Uuid::now_v7().simple().to_string());
            amounts.push(*refund);
        }
    }
    let state = if orders.is_empty() { "done" } else { "planned" };
    tx.execute(END, &[&id, &status, &goal, &settled_fen, &state]).await?;
    if !orders.is_empty() {
        tx.execute(PLAN, &[&id, &orders, &numbers, &amounts, &kind]).await?;
    }
    let result = Ending {
        id,
        title: &title,
        outcome: plan.outcome,
        goals: &goals,
    };
    result.notify(&tx, owner_id, None).await?;
    for (user, refund) in per_backer {
        if user != owner_id {
            result.notify(&tx, user, Some(refund)).await?;
        }
    }
    changed(&tx, id).await?;
    tx.commit().await?;
    tracing::info!(
        project = id,
        status,
        settled_fen,
        refunds = orders.len(),
        "crowdfunding project settled"
    );
    Ok(true)
}

/// How a project ended, as its notifications say it.
struct Ending<'a> {
    id: i64,
    title: &'a str,
    outcome: Outcome,
    goals: &'a [i64],
}

impl Ending<'_> {
    /// Tells `user` (the owner when `refund` is `None`, else a backer and their refund).
    async fn notify(&self, tx: &Transaction<'_>, user: i64, refund: Option<i64>) -> Result<(), tokio_postgres::Error> {
        let title = self.title;
        let (mut zh, mut en) = match self.outcome {
            Outcome::Failed => {
                let first = format_yuan(self.goals.first().copied().unwrap_or(0));
                (
                    format!("「{title}」未达到首个目标 ¥{first}，众筹失败"),
                    format!("“{title}” missed its first goal of ¥{first} and failed"),
                )
            }
            Outcome::Succeeded { goal, settled_fen } => {
                let (n, amount) = (goal + 1, format_yuan(settled_fen));
                (
                    format!("「{title}」众筹成功，达成第 {n} 个目标 ¥{amount}"),
                    format!("“{title}” succeeded: goal {n} of ¥{amount} reached"),
                )
            }
        };
        if let Some(fen) = refund.filter(|f| *f > 0) {
            zh.push_str(&format!("；你将获退款 ¥{}", format_yuan(fen)));
            en.push_str(&format!("; your refund: ¥{}", format_yuan(fen)));
        }
        let text = notify::bilingual(&zh, &en);
        let key = format!("project_result:{}", self.id);
        let notice = Notice {
            recipient_id: user,
            kind: Kind::ProjectResult,
            actor: Actor::System,
            target: Target {
                kind: "project",
                id: TargetId::Id(self.id),
            },
            text: &text,
            dedupe_key: Some(&key),
        };
        notify::notify(tx, &notice).await.map(drop)
    }
}

const CLAIM: &str = "UPDATE projects SET settle_lease = now() + make_interval(secs => $2)
  WHERE id = $1 AND settle_state = 'planned' AND (settle_lease IS NULL OR settle_lease < now())
  RETURNING id";
const RENEW: &str = "UPDATE projects SET settle_lease = now() + make_interval(secs => $2) WHERE id = $1";
const UNSENT: &str = "SELECT order_no, refund_no, amount_fen, kind FROM settlement_refunds
  WHERE project_id = $1 AND queued_at IS NULL AND refused IS NULL ORDER BY order_no";
const QUEUED: &str = "UPDATE settlement_refunds SET queued_at = now() WHERE refund_no = $1";
const REFUSED: &str = "UPDATE settlement_refunds SET refused = $2 WHERE refund_no = $1";
const SENT: &str = "UPDATE projects SET settle_state = 'done', settle_lease = NULL, updated_at = now()
  WHERE id = $1 AND settle_state = 'planned'
    AND NOT EXISTS (SELECT 1 FROM settlement_refunds WHERE project_id = $1 AND queued_at IS NULL AND refused IS NULL)";

/// Hands project `id`'s planned refunds to the engine, under a lease of `lease_secs`
/// (renewed after each); how many it handed over.
pub async fn send(engine: &Engine, id: i64, lease_secs: f64) -> Result<u32, EngineError> {
    let client = engine.store.job_client().await?;
    if client.query_opt(CLAIM, &[&id, &lease_secs]).await?.is_none() {
        return Ok(0);
    }
    let unsent = client.query(UNSENT, &[&id]).await?;
    drop(client);
    let mut sent = 0;
    for row in &unsent {
        let (order_no, refund_no, amount_fen, kind): (String, String, i64, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let reason = if kind == "full" {
            "众筹未成功，全额退款 (the project failed)"
        } else {
            "超出所达目标部分按比例退款 (the surplus above the goal reached)"
        };
        let refund = NewRefund {
            order_no: &order_no,
            amount_fen,
            reason,
            requested_by: "settlement",
            refund_no: Some(&refund_no),
        };
        let outcome = engine.refund(refund, None).await;
        let client = engine.store.job_client().await?;
        match outcome {
            Ok(_) => {
                client.execute(QUEUED, &[&refund_no]).await?;
                sent += 1;
            }
            Err(EngineError::RefundRefused(why)) => {
                tracing::warn!(project = id, %refund_no, %why, "a settlement refund was refused; an operator must look");
                client.execute(REFUSED, &[&refund_no, &why]).await?;
            }
            Err(e) => return Err(e),
        }
        client.execute(RENEW, &[&id, &lease_secs]).await?;
    }
    let client = engine.store.job_client().await?;
    client.execute(SENT, &[&id]).await?;
    Ok(sent)
}
