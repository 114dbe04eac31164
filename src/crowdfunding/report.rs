//! `GET /api/projects/{id}/report.csv`: every backing of a project with its payment, refunds,
//! reward, shipping and the goal progress when it counted (the project's raised right after
//! it, the goal that reached, the next goal and how far along) — for the owner and admins.
//! Safe to open in a spreadsheet: no cell is read as a formula.

use http::StatusCode;
use http::header::{self, HeaderValue};
use http::request::Parts;
use time::OffsetDateTime;

use super::handlers::db;
use crate::account::Role;
use crate::app::State;
use crate::error::AppError;
use crate::http::respond::{self, Response};
use crate::pay::money::format_yuan;
use crate::pay::rfc3339;

/// A CSV cell: quoted when needed, and a leading `=`, `+`, `-`, `@` (or tab, carriage return)
/// defused with `'` so a spreadsheet never reads it as a formula.
fn cell(out: &mut String, text: &str) {
    let defuse = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = defuse || text.contains([',', '"', '\n', '\r']);
    if quote {
        out.push('"');
    }
    if defuse {
        out.push('\'');
    }
    for c in text.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quote {
        out.push('"');
    }
}

fn line(out: &mut String, cells: &[&str]) {
    for (i, text) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        cell(out, text);
    }
    out.push_str("\r\n");
}

const HEADER: [&str; 24] = [
    "order_no",
    "created_at",
    "paid_at",
    "backer",
    "anonymous",
    "amount",
    "refunded",
    "net",
    "payment_status",
    "counted",
    "reward",
    "shipping",
    "carrier",
    "tracking_no",
    "raised_after",
    "goal_reached",
    "goal_title",
    "next_goal",
    "next_goal_percent",
    "settlement_refund",
    "ship_name",
    "ship_phone",
    "ship_region",
    "ship_detail",
];

/// Goal progress at `raised`: the goal reached (1-based, 0 = none) and its title, the next
/// goal's amount and the percent of it raised (empty past the last goal).
pub fn progress(goals: &[(i64, String)], raised: i64) -> (usize, String, String, String) {
    let reached = goals.iter().rposition(|(amount, _)| *amount <= raised);
    let title = reached.map(|i| goals[i].1.clone()).unwrap_or_default();
    let next = goals.iter().find(|(amount, _)| *amount > raised);
    let (next_amount, percent) = match next {
        Some((amount, _)) => (
            format_yuan(*amount),
            (i128::from(raised) * 100 / i128::from((*amount).max(1))).to_string(),
        ),
        None => (String::new(), String::new()),
    };
    (reached.map_or(0, |i| i + 1), title, next_amount, percent)
}

const GOALS: &str = "SELECT amount_fen, title FROM project_goals WHERE project_id = $1 ORDER BY position";
const ROWS: &str =
    "SELECT b.order_no, b.created_at, p.paid_at, u.display_name, b.anonymous, b.amount_fen, p.refunded_fen,
        p.status, b.counted, r.title, b.shipping, b.carrier, b.tracking_no, b.raised_after_fen, s.amount_fen,
        b.ship_name, b.ship_phone, b.ship_region, b.ship_detail
   FROM backings b JOIN payments p USING (order_no) JOIN users u ON u.id = b.user_id
   LEFT JOIN project_rewards r ON r.id = b.reward_id
   LEFT JOIN settlement_refunds s ON s.order_no = b.order_no
  WHERE b.project_id = $1 ORDER BY b.created_at, b.order_no";

/// `GET /api/projects/{id}/report.csv`
pub async fn report(state: &State, parts: &Parts, id: i64) -> Result<Response, AppError> {
    let who = state.sessions.require(&state.store, parts, Role::User).await?;
    let client = state.store.client().await?;
    super::shipping::as_owner(&client, &who, id).await?;
    let goals: Vec<(i64, String)> = client
        .query(GOALS, &[&id])
        .await
        .map_err(db)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let rows = client.query(ROWS, &[&id]).await.map_err(db)?;
    let mut out = String::with_capacity(256 + rows.len() * 200);
    line(&mut out, &HEADER);
    let at = |t: Option<OffsetDateTime>| t.map(rfc3339).unwrap_or_default();
    let yes_no = |b: bool| if b { "true" } else { "false" };
    for r in &rows {
        let (amount, refunded): (i64, i64) = (r.get(5), r.get(6));
        let raised_after: Option<i64> = r.get(13);
        let (reached, title, next, percent) = match raised_after {
            Some(raised) => progress(&goals, raised),
            None => (0, String::new(), String::new(), String::new()),
        };
        let opt = |i: usize| r.get::<_, Option<String>>(i).unwrap_or_default();
        line(
            &mut out,
            &[
                r.get::<_, &str>(0),
                &rfc3339(r.get(1)),
                &at(r.get(2)),
                r.get::<_, &str>(3),
                yes_no(r.get(4)),
                &format_yuan(amount),
                &format_yuan(refunded),
                &format_yuan(amount - refunded),
                r.get::<_, &str>(7),
                yes_no(r.get(8)),
                &opt(9),
                &opt(10),
                &opt(11),
                &opt(12),
                &raised_after.map(format_yuan).unwrap_or_default(),
                &reached.to_string(),
                &title,
                &next,
                &percent,
                &r.get::<_, Option<i64>>(14).map(format_yuan).unwrap_or_default(),
                &opt(15),
                &opt(16),
                &opt(17),
                &opt(18),
            ],
        );
    }
    let mut response = respond::with_body(StatusCode::OK, HeaderValue::from_static("text/csv; charset=utf-8"), out);
    let headers = response.headers_mut();
    if let Ok(disposition) = HeaderValue::from_str(&format!("attachment; filename=\"project-{id}.csv\"")) {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_names_the_goal_reached_and_the_next() {
        let goals = vec![(1_000, "一".to_string()), (3_000, "二".to_string())];
        assert_eq!(progress(&goals, 500), (0, String::new(), "10.00".into(), "50".into()));
        assert_eq!(progress(&goals, 1_500), (1, "一".into(), "30.00".into(), "50".into()));
        assert_eq!(progress(&goals, 3_000), (2, "二".into(), String::new(), String::new()));
    }

    #[test]
    fn formulas_are_defused() {
        let mut out = String::new();
        line(&mut out, &["=1+1", "a,b", "say \"hi\"", "-3"]);
        assert_eq!(out, "\"'=1+1\",\"a,b\",\"say \"\"hi\"\"\",\"'-3\"\r\n");
    }
}
