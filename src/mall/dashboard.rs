//! The mall's figures for the admin dashboard: sales over the last 30 local days (days of
//! `rankings.timezone`) per day and per seller, and orders by status, drawn with
//! `ui::chart`. Sales are paid orders that were not refunded, at what the buyer paid. A cold
//! page: read from the orders directly, one query per figure.

use deadpool_postgres::GenericClient;
use time::Date;

use crate::pay::money::format_yuan;
use crate::store::StoreError;
use crate::ui::Ui;
use crate::ui::chart::{self, Bar, Daily, PALETTE, Series, Unit};

/// Days the charts cover, today included.
const DAYS: i64 = 30;

/// A headline figure.
#[derive(Debug, Clone)]
pub struct Total {
    pub id: &'static str,
    pub label: &'static str,
    pub value: String,
    pub sub: String,
}

/// Everything the page shows.
#[derive(Debug)]
pub struct Figures {
    pub totals: Vec<Total>,
    pub per_day: String,
    pub per_merchant: String,
    pub per_status: String,
}

/// Orders paid in the window and not refunded or cancelled since.
const SOLD: &str = "o.paid_at >= ((today.d - 29)::timestamp AT TIME ZONE $1)
        AND o.status IN ('paid', 'shipped', 'completed', 'refunding')";

fn per_day_sql() -> String {
    format!(
        "WITH today AS (SELECT (now() AT TIME ZONE $1)::date AS d)
         SELECT ((o.paid_at AT TIME ZONE $1)::date - today.d + 29)::int, sum(o.payable_fen)::bigint, count(*)
           FROM mall_orders o, today WHERE {SOLD} GROUP BY 1 ORDER BY 1"
    )
}

fn per_merchant_sql() -> String {
    format!(
        "WITH today AS (SELECT (now() AT TIME ZONE $1)::date AS d)
         SELECT u.display_name, sum(o.payable_fen)::bigint, count(*)
           FROM mall_orders o JOIN users u ON u.id = o.merchant_id, today
          WHERE {SOLD} GROUP BY u.id, u.display_name ORDER BY 2 DESC, u.id LIMIT 10"
    )
}

fn units_sql() -> String {
    format!(
        "WITH today AS (SELECT (now() AT TIME ZONE $1)::date AS d)
         SELECT coalesce(sum(i.quantity), 0)::bigint
           FROM mall_orders o JOIN mall_order_items i ON i.order_no = o.order_no, today WHERE {SOLD}"
    )
}

const PER_STATUS_SQL: &str = "WITH today AS (SELECT (now() AT TIME ZONE $1)::date AS d)
     SELECT o.status, count(*), sum(o.payable_fen)::bigint FROM mall_orders o, today
      WHERE o.created_at >= ((today.d - 29)::timestamp AT TIME ZONE $1) GROUP BY 1";

/// The colour of an order status.
fn status_color(status: &str) -> &'static str {
    match status {
        "pending_payment" => "#f59e0b",
        "paid" => "#1677ff",
        "shipped" => "#0891b2",
        "completed" => "#0a7d3b",
        "refunding" => "#db2777",
        "refunded" => "#7c3aed",
        _ => "#9ca3af",
    }
}

/// Reads and draws the figures in the page's language.
pub async fn figures(client: &impl GenericClient, timezone: &str, ui: &Ui) -> Result<Figures, StoreError> {
    let m = &ui.t.mall;
    let today: Date = client
        .query_one("SELECT (now() AT TIME ZONE $1)::date", &[&timezone])
        .await?
        .get(0);
    let days: Vec<Date> = (0..DAYS).map(|i| today - time::Duration::days(DAYS - 1 - i)).collect();
    let mut values = vec![0i64; DAYS as usize];
    let (mut sales, mut orders) = (0i64, 0i64);
    for row in client.query(&per_day_sql(), &[&timezone]).await? {
        let fen: i64 = row.get(1);
        if let Some(slot) = usize::try_from(row.get::<_, i32>(0))
            .ok()
            .and_then(|d| values.get_mut(d))
        {
            *slot += fen;
        }
        sales += fen;
        orders += row.get::<_, i64>(2);
    }
    let units: i64 = client.query_one(&units_sql(), &[&timezone]).await?.get(0);
    let per_day = chart::daily(
        ui.lang,
        &Daily {
            days,
            series: vec![Series {
                name: m.sales.to_string(),
                color: PALETTE[0],
                values,
            }],
            unit: Unit::Fen,
            empty: m.chart_empty_sales,
            label: m.chart_sales_per_day,
        },
        false,
    );
    let merchants: Vec<Bar> = client
        .query(&per_merchant_sql(), &[&timezone])
        .await?
        .iter()
        .enumerate()
        .map(|(i, row)| Bar {
            label: row.get(0),
            color: PALETTE[i % PALETTE.len()],
            value: row.get(1),
            note: ui.fill(m.n_orders, row.get::<_, i64>(2)),
        })
        .collect();
    let per_merchant = chart::bars(
        Unit::Fen,
        &merchants,
        m.chart_sales_per_merchant,
        m.chart_empty_sales,
        false,
    );
    let rows = client.query(PER_STATUS_SQL, &[&timezone]).await?;
    let statuses: Vec<Bar> = super::orders::STATUSES
        .iter()
        .map(|status| {
            let row = rows.iter().find(|r| r.get::<_, &str>(0) == *status);
            Bar {
                label: ui.order_status(*status).to_string(),
                color: status_color(status),
                value: row.map_or(0, |r| r.get(1)),
                note: row.map_or(String::new(), |r| chart::full_value(Unit::Fen, r.get(2))),
            }
        })
        .collect();
    let per_status = chart::bars(
        Unit::Count,
        &statuses,
        m.chart_orders_by_status,
        m.chart_empty_orders,
        false,
    );
    let totals = vec![
        Total {
            id: "sales",
            label: m.sales_30_days,
            value: format!("¥{}", format_yuan(sales)),
            sub: ui.fill(m.n_orders, orders),
        },
        Total {
            id: "orders",
            label: m.orders_30_days,
            value: orders.to_string(),
            sub: String::new(),
        },
        Total {
            id: "units",
            label: m.units_30_days,
            value: units.to_string(),
            sub: String::new(),
        },
    ];
    Ok(Figures {
        totals,
        per_day,
        per_merchant,
        per_status,
    })
}
