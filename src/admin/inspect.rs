//! Read-only views for operators: the callback inbox (raw bodies shown as text, never
//! interpreted), the reconcile report (old pending orders, late payments, refunds not
//! finished, purpose steps waiting in the outbox) and the audit log.

use serde::Serialize;
use time::OffsetDateTime;
use tokio_postgres::types::ToSql;

use super::payments::{RefundRow, refund_from_row};
use super::{Listing, Paging, filter_param, ok_json};
use crate::app::State;
use crate::error::AppError;
use crate::http::extract;
use crate::http::respond::Response;
use crate::pay::money::format_yuan;
use crate::pay::rfc3339;
use crate::store::StoreError;

/// Rows of each list of the reconcile report.
const REPORT_ROWS: i64 = 200;

/// One stored provider callback.
#[derive(Debug, Clone, Serialize)]
pub struct CallbackRow {
    pub id: i64,
    pub channel: String,
    pub kind: String,
    pub subject_id: String,
    pub order_no: Option<String>,
    pub accepted: bool,
    pub outcome: String,
    pub headers: serde_json::Value,
    /// The raw body as text (invalid UTF-8 replaced); only ever displayed.
    pub body: String,
    pub received_at: String,
}

/// A page of the inbox, newest first, filtered by order number and acceptance.
pub async fn find_callbacks(state: &State, query: Option<&str>) -> Result<Listing<CallbackRow>, AppError> {
    let order_no = filter_param(query, "order_no")?;
    let accepted = match filter_param(query, "accepted")?.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(AppError::invalid("invalid_accepted", "accepted must be true or false")),
    };
    let paging = Paging::parse(query, 50, 200)?;
    let client = state.store.client().await?;
    let (total_sql, page_sql) = callbacks_sql(order_no.is_some(), accepted.is_some());
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(4);
    if let Some(no) = &order_no {
        params.push(no);
    }
    if let Some(accepted) = &accepted {
        params.push(accepted);
    }
    let total: i64 = client
        .query_one(&total_sql, &params)
        .await
        .map_err(StoreError::from)?
        .get(0);
    let (limit, offset) = (paging.limit(), paging.offset());
    params.push(&limit);
    params.push(&offset);
    let rows = client.query(&page_sql, &params).await.map_err(StoreError::from)?;
    let items = rows
        .iter()
        .map(|row| CallbackRow {
            id: row.get(0),
            channel: row.get(1),
            kind: row.get(2),
            subject_id: row.get(3),
            order_no: row.get(4),
            accepted: row.get(5),
            outcome: row.get(6),
            headers: row.get(7),
            body: String::from_utf8_lossy(row.get::<_, &[u8]>(8)).into_owned(),
            received_at: rfc3339(row.get(9)),
        })
        .collect();
    Ok(Listing {
        page: paging.page,
        size: paging.size,
        total,
        items,
    })
}

/// The count and page queries of the inbox with only the filters given (each combination
/// plans with its index): `$1` order_no, then accepted, then limit and offset.
pub(super) fn callbacks_sql(by_order: bool, by_accepted: bool) -> (String, String) {
    let mut conditions = Vec::new();
    if by_order {
        conditions.push(format!("order_no = ${}", conditions.len() + 1));
    }
    if by_accepted {
        conditions.push(format!("accepted = ${}", conditions.len() + 1));
    }
    let n = conditions.len() + 1;
    let condition = if conditions.is_empty() {
        "true".to_string()
    } else {
        conditions.join(" AND ")
    };
    (
        format!("SELECT count(*) FROM callback_inbox WHERE {condition}"),
        format!(
            "SELECT id, channel, kind, subject_id, order_no, accepted, outcome, headers, body, received_at
               FROM callback_inbox WHERE {condition} ORDER BY id DESC LIMIT ${n} OFFSET ${}",
            n + 1
        ),
    )
}

/// `GET /api/admin/callbacks?order_no=&accepted=&page=&size=`
pub async fn callbacks(state: &State, query: Option<&str>) -> Result<Response, AppError> {
    ok_json(&find_callbacks(state, query).await?)
}

/// An order in the reconcile report.
#[derive(Debug, Clone, Serialize)]
pub struct OrderLine {
    pub order_no: String,
    pub channel: String,
    pub status: String,
    pub amount: String,
    pub amount_fen: i64,
    pub created_at: String,
    pub expires_at: String,
    pub paid_at: Option<String>,
    pub check_count: i32,
}

/// A pending order the reconcile job stopped asking about: the provider's answer
/// contradicts it (another amount, another order).
#[derive(Debug, Clone, Serialize)]
pub struct FlaggedLine {
    #[serde(flatten)]
    pub order: OrderLine,
    /// Why, in the reconcile job's words.
    pub issue: String,
    pub flagged_at: String,
}

/// A purpose's step that failed inside its payment's transaction and waits in the outbox
/// (the payment itself stands).
#[derive(Debug, Clone, Serialize)]
pub struct StepLine {
    pub order_no: String,
    pub purpose: String,
    /// `paid`, `closed` or `refunded`.
    pub step: String,
    /// The refund number of a `refunded` step.
    pub refund_no: Option<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: String,
    pub next_attempt_at: String,
}

/// What needs an operator's eye.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub pending_minutes: u32,
    /// Orders whose provider answer contradicts them: no longer queried until looked at.
    pub flagged: Vec<FlaggedLine>,
    /// Orders still pending that were created more than `pending_minutes` ago.
    pub pending: Vec<OrderLine>,
    /// Payments that arrived after their order had closed.
    pub late: Vec<OrderLine>,
    /// Refunds still processing at the provider, or failed.
    pub refunds: Vec<RefundRow>,
    /// Purpose steps not applied yet (retried by the reconcile job), the next due first.
    pub purpose_steps: Vec<StepLine>,
}

/// The reconcile report's lists (`$1` minutes and `$2` rows for the first, `$1` rows for
/// the others), each served by its index (migration 0006).
pub(super) const REPORT_PENDING: &str =
    "SELECT order_no, channel, status, amount_fen, created_at, expires_at, paid_at, check_count
       FROM payments WHERE status = 'pending' AND created_at < now() - make_interval(mins => $1)
      ORDER BY created_at LIMIT $2";
pub(super) const REPORT_FLAGGED: &str =
    "SELECT order_no, channel, status, amount_fen, created_at, expires_at, paid_at, check_count,
            reconcile_issue, reconcile_issue_at
       FROM payments WHERE reconcile_issue IS NOT NULL ORDER BY reconcile_issue_at DESC LIMIT $1";
pub(super) const REPORT_LATE: &str =
    "SELECT order_no, channel, status, amount_fen, created_at, expires_at, paid_at, check_count
       FROM payments WHERE late ORDER BY paid_at DESC LIMIT $1";
pub(super) const REPORT_REFUNDS: &str =
    "SELECT refund_no, order_no, amount_fen, reason, status, failure, requested_by, attempts,
            created_at, updated_at
       FROM refunds WHERE status IN ('processing', 'failed') ORDER BY created_at LIMIT $1";

pub(super) const REPORT_PURPOSE_STEPS: &str =
    "SELECT order_no, purpose, step, subject, attempts, last_error, created_at, next_attempt_at
       FROM purpose_outbox WHERE done_at IS NULL ORDER BY next_attempt_at LIMIT $1";

fn step_line(row: &tokio_postgres::Row) -> StepLine {
    let subject: String = row.get(3);
    StepLine {
        order_no: row.get(0),
        purpose: row.get(1),
        step: row.get(2),
        refund_no: (!subject.is_empty()).then_some(subject),
        attempts: row.get(4),
        last_error: row.get(5),
        created_at: rfc3339(row.get(6)),
        next_attempt_at: rfc3339(row.get(7)),
    }
}

fn order_line(row: &tokio_postgres::Row) -> OrderLine {
    let amount_fen: i64 = row.get(3);
    OrderLine {
        order_no: row.get(0),
        channel: row.get(1),
        status: row.get(2),
        amount: format_yuan(amount_fen),
        amount_fen,
        created_at: rfc3339(row.get(4)),
        expires_at: rfc3339(row.get(5)),
        paid_at: row.get::<_, Option<OffsetDateTime>>(6).map(rfc3339),
        check_count: row.get(7),
    }
}

/// The reconcile report for orders pending longer than `?pending_minutes=` (1..=10080,
/// default 15).
pub async fn report(state: &State, query: Option<&str>) -> Result<Report, AppError> {
    let minutes = extract::number_param(query, "pending_minutes", 15, 10_080, "invalid_pending_minutes")?;
    let client = state.store.client().await?;
    let pending = client
        .query(REPORT_PENDING, &[&(minutes as i32), &REPORT_ROWS])
        .await
        .map_err(StoreError::from)?;
    let flagged = client
        .query(REPORT_FLAGGED, &[&REPORT_ROWS])
        .await
        .map_err(StoreError::from)?;
    let late = client
        .query(REPORT_LATE, &[&REPORT_ROWS])
        .await
        .map_err(StoreError::from)?;
    let refunds = client
        .query(REPORT_REFUNDS, &[&REPORT_ROWS])
        .await
        .map_err(StoreError::from)?;
    let steps = client
        .query(REPORT_PURPOSE_STEPS, &[&REPORT_ROWS])
        .await
        .map_err(StoreError::from)?;
    Ok(Report {
        pending_minutes: minutes,
        flagged: flagged
            .iter()
            .map(|row| FlaggedLine {
                order: order_line(row),
                issue: row.get(8),
                flagged_at: rfc3339(row.get(9)),
            })
            .collect(),
        pending: pending.iter().map(order_line).collect(),
        late: late.iter().map(order_line).collect(),
        refunds: refunds.iter().map(refund_from_row).collect(),
        purpose_steps: steps.iter().map(step_line).collect(),
    })
}

/// `GET /api/admin/reconcile?pending_minutes=N`
pub async fn reconcile(state: &State, query: Option<&str>) -> Result<Response, AppError> {
    ok_json(&report(state, query).await?)
}

/// One audit row.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub actor_id: Option<i64>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub ip: String,
    pub created_at: String,
}

/// A page of the audit log, newest first.
pub async fn find_audit(state: &State, query: Option<&str>) -> Result<Listing<AuditRow>, AppError> {
    let paging = Paging::parse(query, 50, 200)?;
    let client = state.store.client().await?;
    let total: i64 = client
        .query_one("SELECT count(*) FROM admin_audit", &[])
        .await
        .map_err(StoreError::from)?
        .get(0);
    let rows = client
        .query(
            "SELECT id, actor_id, actor, action, target, before, after, ip, created_at
               FROM admin_audit ORDER BY id DESC LIMIT $1 OFFSET $2",
            &[&paging.limit(), &paging.offset()],
        )
        .await
        .map_err(StoreError::from)?;
    let items = rows
        .iter()
        .map(|row| AuditRow {
            id: row.get(0),
            actor_id: row.get(1),
            actor: row.get(2),
            action: row.get(3),
            target: row.get(4),
            before: row.get(5),
            after: row.get(6),
            ip: row.get(7),
            created_at: rfc3339(row.get(8)),
        })
        .collect();
    Ok(Listing {
        page: paging.page,
        size: paging.size,
        total,
        items,
    })
}

/// `GET /api/admin/audit?page=&size=`
pub async fn audit_log(state: &State, query: Option<&str>) -> Result<Response, AppError> {
    ok_json(&find_audit(state, query).await?)
}
