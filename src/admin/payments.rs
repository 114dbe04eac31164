//! Payments: search (order number prefix, status, channel, creation date range) and one
//! payment with its donation, events and refunds. The CSV export is `export`, refunds
//! `refund`.

use deadpool_postgres::GenericClient;

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{Listing, Paging, filter_param, ok_json};
use crate::app::State;
use crate::error::AppError;
use crate::http::respond::Response;
use crate::pay::money::format_yuan;
use crate::pay::{CST, rfc3339};
use crate::store::StoreError;

/// The search filters, parsed.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub order_no: Option<String>,
    pub status: Option<String>,
    pub channel: Option<String>,
    /// Created at or after.
    pub from: Option<OffsetDateTime>,
    /// Created before.
    pub to: Option<OffsetDateTime>,
}

/// `text` as an instant: RFC 3339, or a date `YYYY-MM-DD` meaning that day's start at +08:00
/// (`end_of_day`: the next day's start, so the date is included).
fn parse_time(name: &str, text: &str, end_of_day: bool) -> Result<OffsetDateTime, AppError> {
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(at);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = Date::parse(text, &format).map_err(|_| {
        AppError::invalid(
            "invalid_date",
            format!("{name} must be an RFC 3339 time or a date YYYY-MM-DD"),
        )
    })?;
    let date = if end_of_day {
        date.next_day()
            .ok_or_else(|| AppError::invalid("invalid_date", format!("{name} is out of range")))?
    } else {
        date
    };
    Ok(PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_offset(CST))
}

impl Filters {
    /// Parses the filters of a query string; a bad one is a 422 naming it.
    pub fn parse(query: Option<&str>) -> Result<Filters, AppError> {
        let order_no = filter_param(query, "order_no")?;
        if let Some(no) = &order_no
            && (no.len() > 32 || !no.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
        {
            return Err(AppError::invalid(
                "invalid_order_no",
                "order_no must be up to 32 of 0-9, A-Z, a-z, '_' and '-'",
            ));
        }
        let status = filter_param(query, "status")?;
        if let Some(s) = &status
            && !matches!(s.as_str(), "pending" | "paid" | "closed" | "refunded")
        {
            return Err(AppError::invalid(
                "invalid_status",
                "status must be pending, paid, closed or refunded",
            ));
        }
        let channel = filter_param(query, "channel")?;
        if let Some(c) = &channel
            && c != "wechat"
            && c != "alipay"
        {
            return Err(AppError::invalid("invalid_channel", "channel must be wechat or alipay"));
        }
        let from = filter_param(query, "from")?
            .map(|t| parse_time("from", &t, false))
            .transpose()?;
        let to = filter_param(query, "to")?
            .map(|t| parse_time("to", &t, true))
            .transpose()?;
        if let (Some(from), Some(to)) = (from, to)
            && from >= to
        {
            return Err(AppError::invalid("invalid_date", "from must be before to"));
        }
        Ok(Filters {
            order_no,
            status,
            channel,
            from,
            to,
        })
    }

    /// The WHERE of this search with only the filters given, and its parameters from `$1`.
    /// Built per combination (each its own cached plan) because a `$1 IS NULL OR …` condition
    /// would keep the planner from every index. The order number prefix is a range on
    /// `text_pattern_ops` (`~>=~`, `~<~`), which a generic plan can use where `LIKE $1` cannot.
    pub(super) fn clause(&self) -> Clause<'_> {
        let mut clause = Clause::default();
        if let Some(no) = &self.order_no {
            let n = clause.push(no);
            clause.add(format!("p.order_no ~>=~ ${n} AND p.order_no ~<~ (${n} || '~')"));
        }
        if let Some(status) = &self.status {
            let n = clause.push(status);
            clause.add(format!("p.status = ${n}"));
        }
        if let Some(channel) = &self.channel {
            let n = clause.push(channel);
            clause.add(format!("p.channel = ${n}"));
        }
        if let Some(from) = &self.from {
            let n = clause.push(from);
            clause.add(format!("p.created_at >= ${n}"));
        }
        if let Some(to) = &self.to {
            let n = clause.push(to);
            clause.add(format!("p.created_at < ${n}"));
        }
        clause
    }
}

/// A WHERE clause and its parameters (`sql` is `true` when there is no condition).
#[derive(Default)]
pub(super) struct Clause<'a> {
    conditions: Vec<String>,
    pub params: Vec<&'a (dyn ToSql + Sync)>,
}

impl<'a> Clause<'a> {
    /// Adds a parameter; returns its number.
    fn push(&mut self, param: &'a (dyn ToSql + Sync)) -> usize {
        self.params.push(param);
        self.params.len()
    }

    fn add(&mut self, condition: String) {
        self.conditions.push(condition);
    }

    /// The condition, for after `WHERE`.
    pub fn sql(&self) -> String {
        if self.conditions.is_empty() {
            "true".into()
        } else {
            self.conditions.join(" AND ")
        }
    }

    /// The number the next parameter gets.
    pub fn next(&self) -> usize {
        self.params.len() + 1
    }
}

pub(super) const COLUMNS: &str = "p.order_no, p.purpose, p.channel, p.status, p.amount_fen, p.refunded_fen, p.late,
    p.created_at, p.paid_at, p.closed_at, p.expires_at, p.transaction_id,
    d.category_id, d.donor_name, d.message, d.anonymous, d.user_id";

/// A payment as operators see it.
#[derive(Debug, Clone, Serialize)]
pub struct PaymentRow {
    pub order_no: String,
    pub purpose: String,
    pub channel: String,
    pub status: String,
    pub amount: String,
    pub amount_fen: i64,
    pub refunded: String,
    pub refunded_fen: i64,
    pub late: bool,
    pub created_at: String,
    pub paid_at: Option<String>,
    pub closed_at: Option<String>,
    pub expires_at: String,
    pub transaction_id: Option<String>,
    pub donation: Option<DonationRow>,
}

/// The donation a payment pays for, if it is one.
#[derive(Debug, Clone, Serialize)]
pub struct DonationRow {
    pub category_id: i64,
    pub donor_name: String,
    pub message: String,
    pub anonymous: bool,
    pub user_id: Option<i64>,
}

pub(super) fn payment_from_row(row: &Row) -> PaymentRow {
    let amount_fen: i64 = row.get(4);
    let refunded_fen: i64 = row.get(5);
    let donation = row.get::<_, Option<i64>>(12).map(|category_id| DonationRow {
        category_id,
        donor_name: row.get(13),
        message: row.get(14),
        anonymous: row.get(15),
        user_id: row.get(16),
    });
    PaymentRow {
        order_no: row.get(0),
        purpose: row.get(1),
        channel: row.get(2),
        status: row.get(3),
        amount: format_yuan(amount_fen),
        amount_fen,
        refunded: format_yuan(refunded_fen),
        refunded_fen,
        late: row.get(6),
        created_at: rfc3339(row.get(7)),
        paid_at: row.get::<_, Option<OffsetDateTime>>(8).map(rfc3339),
        closed_at: row.get::<_, Option<OffsetDateTime>>(9).map(rfc3339),
        expires_at: rfc3339(row.get(10)),
        transaction_id: row.get(11),
        donation,
    }
}

/// One page of the payments matching `filters`, newest first.
pub async fn find(state: &State, filters: &Filters, paging: Paging) -> Result<Listing<PaymentRow>, AppError> {
    let client = state.store.client().await?;
    let (total_sql, page_sql) = search_sql(filters);
    let mut clause = filters.clause();
    let total: i64 = client
        .query_one(&total_sql, &clause.params)
        .await
        .map_err(StoreError::from)?
        .get(0);
    let (limit, offset) = (paging.limit(), paging.offset());
    clause.params.push(&limit);
    clause.params.push(&offset);
    let rows = client
        .query(&page_sql, &clause.params)
        .await
        .map_err(StoreError::from)?;
    Ok(Listing {
        page: paging.page,
        size: paging.size,
        total,
        items: rows.iter().map(payment_from_row).collect(),
    })
}

/// The count and the page query of a search (the page's limit and offset are its two last
/// parameters).
pub(super) fn search_sql(filters: &Filters) -> (String, String) {
    let clause = filters.clause();
    let (condition, n) = (clause.sql(), clause.next());
    (
        format!("SELECT count(*) FROM payments p WHERE {condition}"),
        format!(
            "SELECT {COLUMNS} FROM payments p LEFT JOIN donations d USING (order_no) WHERE {condition}
              ORDER BY p.created_at DESC, p.order_no DESC LIMIT ${n} OFFSET ${}",
            n + 1
        ),
    )
}

/// `GET /api/admin/payments?order_no=&status=&channel=&from=&to=&page=&size=`
pub async fn search(state: &State, query: Option<&str>) -> Result<Response, AppError> {
    let filters = Filters::parse(query)?;
    let paging = Paging::parse(query, 50, 200)?;
    ok_json(&find(state, &filters, paging).await?)
}

/// One state change of a payment.
#[derive(Debug, Clone, Serialize)]
pub struct EventRow {
    pub id: i64,
    pub kind: String,
    pub from_status: Option<String>,
    pub to_status: Option<String>,
    pub amount: Option<String>,
    pub amount_fen: Option<i64>,
    pub source: String,
    pub detail: serde_json::Value,
    pub created_at: String,
}

/// One refund of a payment.
#[derive(Debug, Clone, Serialize)]
pub struct RefundRow {
    pub refund_no: String,
    pub order_no: String,
    pub amount: String,
    pub amount_fen: i64,
    pub reason: String,
    pub status: String,
    pub failure: Option<String>,
    pub requested_by: String,
    pub attempts: i32,
    pub created_at: String,
    pub updated_at: String,
}

/// A payment with everything about it.
#[derive(Debug, Clone, Serialize)]
pub struct PaymentDetail {
    pub payment: PaymentRow,
    /// What can still be refunded: the amount less refunds done or under way.
    pub refundable: String,
    pub refundable_fen: i64,
    pub events: Vec<EventRow>,
    pub refunds: Vec<RefundRow>,
}

pub(super) const REFUND_COLUMNS: &str =
    "refund_no, order_no, amount_fen, reason, status, failure, requested_by, attempts, created_at, updated_at";

pub fn refund_from_row(row: &Row) -> RefundRow {
    let amount_fen: i64 = row.get(2);
    RefundRow {
        refund_no: row.get(0),
        order_no: row.get(1),
        amount: format_yuan(amount_fen),
        amount_fen,
        reason: row.get(3),
        status: row.get(4),
        failure: row.get(5),
        requested_by: row.get(6),
        attempts: row.get(7),
        created_at: rfc3339(row.get(8)),
        updated_at: rfc3339(row.get(9)),
    }
}

/// The payment `order_no` with its donation, events and refunds; `None` when unknown.
pub async fn load(client: &impl GenericClient, order_no: &str) -> Result<Option<PaymentDetail>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM payments p LEFT JOIN donations d USING (order_no) WHERE p.order_no = $1");
    let Some(row) = client.query_opt(&sql, &[&order_no]).await? else {
        return Ok(None);
    };
    let payment = payment_from_row(&row);
    let events = client
        .query(
            "SELECT id, kind, from_status, to_status, amount_fen, source, detail, created_at
               FROM payment_events WHERE order_no = $1 ORDER BY id",
            &[&order_no],
        )
        .await?
        .iter()
        .map(|row| {
            let amount_fen: Option<i64> = row.get(4);
            EventRow {
                id: row.get(0),
                kind: row.get(1),
                from_status: row.get(2),
                to_status: row.get(3),
                amount: amount_fen.map(format_yuan),
                amount_fen,
                source: row.get(5),
                detail: row.get(6),
                created_at: rfc3339(row.get(7)),
            }
        })
        .collect();
    let refunds: Vec<RefundRow> = client
        .query(
            &format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE order_no = $1 ORDER BY created_at, refund_no"),
            &[&order_no],
        )
        .await?
        .iter()
        .map(refund_from_row)
        .collect();
    let under_way: i64 = refunds
        .iter()
        .filter(|r| r.status == "processing")
        .map(|r| r.amount_fen)
        .sum();
    let refundable_fen = if matches!(payment.status.as_str(), "paid" | "refunded") {
        (payment.amount_fen - payment.refunded_fen - under_way).max(0)
    } else {
        0
    };
    Ok(Some(PaymentDetail {
        payment,
        refundable: format_yuan(refundable_fen),
        refundable_fen,
        events,
        refunds,
    }))
}

/// `GET /api/admin/payments/{order_no}`
pub async fn detail(state: &State, order_no: &str) -> Result<Response, AppError> {
    let client = state.store.client().await?;
    ok_json(&load(&client, order_no).await?.ok_or(AppError::NotFound)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_parse_and_bad_filters_are_named() {
        let day = parse_time("from", "2026-11-21", false).unwrap();
        assert_eq!(rfc3339(day), "2026-11-21T00:00:00+08:00");
        let end = parse_time("to", "2026-11-21", true).unwrap();
        assert_eq!(rfc3339(end), "2026-11-22T00:00:00+08:00");
        let exact = parse_time("from", "2026-11-21T10:00:00Z", false).unwrap();
        assert_eq!(rfc3339(exact), "2026-11-21T18:00:00+08:00");
        assert_eq!(
            parse_time("from", "21/11/2026", false).unwrap_err().code(),
            "invalid_date"
        );
        for (query, code) in [
            ("status=lost", "invalid_status"),
            ("channel=paypal", "invalid_channel"),
            ("order_no=a%27b", "invalid_order_no"),
            ("from=2026-11-22&to=2026-11-21", "invalid_date"),
            ("to=yesterday", "invalid_date"),
        ] {
            assert_eq!(Filters::parse(Some(query)).unwrap_err().code(), code, "{query}");
        }
        let f = Filters::parse(Some("status=&channel=wechat&order_no=ab_1")).unwrap();
        assert_eq!(f.status, None, "empty means not given");
        assert_eq!(f.channel.as_deref(), Some("wechat"));
    }
}
