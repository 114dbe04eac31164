//! The CSV export of a payment search: same filters as the search, newest first, bounded,
//! and safe to open in a spreadsheet (no cell is read as a formula).

use http::StatusCode;
use http::header::{self, HeaderValue};

use super::payments::{COLUMNS, Filters, payment_from_row};
use crate::app::State;
use crate::error::AppError;
use crate::http::respond::{self, Response};
use crate::store::StoreError;

/// Rows a CSV export may hold; a larger search must be narrowed.
const CSV_MAX_ROWS: i64 = 100_000;

/// A CSV cell: quoted when needed, and a leading `=`, `+`, `-`, `@` (or tab, carriage
/// return) defused with `'` so a spreadsheet never reads it as a formula.
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

fn csv_line(out: &mut String, cells: &[&str]) {
    for (i, text) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        cell(out, text);
    }
    out.push_str("\r\n");
}

const CSV_HEADER: [&str; 15] = [
    "order_no",
    "purpose",
    "channel",
    "status",
    "amount",
    "refunded",
    "late",
    "created_at",
    "paid_at",
    "closed_at",
    "transaction_id",
    "category_id",
    "donor_name",
    "anonymous",
    "message",
];

/// `GET /api/admin/payments.csv?…`: every payment the same filters find (at most
/// [`CSV_MAX_ROWS`]; more is a 422 asking to narrow them), newest first.
pub async fn csv(state: &State, query: Option<&str>) -> Result<Response, AppError> {
    let filters = Filters::parse(query)?;
    let client = state.store.client().await?;
    let mut clause = filters.clause();
    let sql = format!(
        "SELECT {COLUMNS} FROM payments p LEFT JOIN donations d USING (order_no) WHERE {}
          ORDER BY p.created_at DESC, p.order_no DESC LIMIT ${}",
        clause.sql(),
        clause.next()
    );
    let cap = CSV_MAX_ROWS + 1;
    clause.params.push(&cap);
    let rows = client.query(&sql, &clause.params).await.map_err(StoreError::from)?;
    if rows.len() as i64 > CSV_MAX_ROWS {
        return Err(AppError::invalid(
            "too_many_rows",
            format!("the export holds at most {CSV_MAX_ROWS} payments; narrow the filters"),
        ));
    }
    let mut out = String::with_capacity(64 + rows.len() * 160);
    csv_line(&mut out, &CSV_HEADER);
    for row in &rows {
        let p = payment_from_row(row);
        let donation = p.donation.as_ref();
        let category = donation.map(|d| d.category_id.to_string()).unwrap_or_default();
        csv_line(
            &mut out,
            &[
                &p.order_no,
                &p.purpose,
                &p.channel,
                &p.status,
                &p.amount,
                &p.refunded,
                if p.late { "true" } else { "false" },
                &p.created_at,
                p.paid_at.as_deref().unwrap_or(""),
                p.closed_at.as_deref().unwrap_or(""),
                p.transaction_id.as_deref().unwrap_or(""),
                &category,
                donation.map_or("", |d| &d.donor_name),
                donation.map_or("", |d| if d.anonymous { "true" } else { "false" }),
                donation.map_or("", |d| &d.message),
            ],
        );
    }
    let mut response = respond::with_body(StatusCode::OK, HeaderValue::from_static("text/csv; charset=utf-8"), out);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"payments.csv\""),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(cells: &[&str]) -> String {
        let mut out = String::new();
        csv_line(&mut out, cells);
        out
    }

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(line(&["a", "b c", "12.34"]), "a,b c,12.34\r\n");
        assert_eq!(line(&["x,y", "say \"hi\""]), "\"x,y\",\"say \"\"hi\"\"\"\r\n");
        assert_eq!(
            line(&["=1+1", "+SUM(A1)", "-2", "@cmd"]),
            "\"'=1+1\",\"'+SUM(A1)\",\"'-2\",\"'@cmd\"\r\n"
        );
        assert_eq!(line(&["two\nlines"]), "\"two\nlines\"\r\n");
        assert_eq!(line(&["张三"]), "张三\r\n");
    }
}
