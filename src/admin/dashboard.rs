//! The admin dashboard's figures: money received today, this week and this month (local
//! time of `rankings.timezone`), and the last 30 days per day and channel and per status,
//! drawn as charts. Read from `payments` directly: a cold page, one round trip per figure.

use deadpool_postgres::GenericClient;
use time::Date;

use crate::pay::money::format_yuan;
use crate::store::StoreError;
use crate::ui::Ui;
use crate::ui::chart::{self, Bar, Daily, Series, Unit, channel_color, status_color};

/// Days the charts cover, today included.
const DAYS: i64 = 30;

/// Money received in one period.
#[derive(Debug, Clone)]
pub struct Total {
    /// `today`, `week` or `month` (the element's id).
    pub id: &'static str,
    pub label: &'static str,
    /// Yuan.
    pub amount: String,
    pub count: i64,
}

/// Paid amounts and counts since the start of the local day, week (Monday) and month.
const TOTALS_SQL: &str = "WITH b AS (SELECT date_trunc('day', now() AT TIME ZONE $1) AS d,
                  date_trunc('week', now() AT TIME ZONE $1) AS w,
                  date_trunc('month', now() AT TIME ZONE $1) AS m)
     SELECT coalesce(sum(p.amount_fen) FILTER (WHERE p.paid_at AT TIME ZONE $1 >= b.d), 0)::bigint,
            count(*) FILTER (WHERE p.paid_at AT TIME ZONE $1 >= b.d),
            coalesce(sum(p.amount_fen) FILTER (WHERE p.paid_at AT TIME ZONE $1 >= b.w), 0)::bigint,
            count(*) FILTER (WHERE p.paid_at AT TIME ZONE $1 >= b.w),
            coalesce(sum(p.amount_fen) FILTER (WHERE p.paid_at AT TIME ZONE $1 >= b.m), 0)::bigint,
            count(*) FILTER (WHERE p.paid_at AT TIME ZONE $1 >= b.m)
       FROM b LEFT JOIN payments p
         ON p.paid_at IS NOT NULL AND p.paid_at >= (least(b.w, b.m) AT TIME ZONE $1)
      GROUP BY b.d, b.w, b.m";

/// Today's local date.
const TODAY_SQL: &str = "SELECT (now() AT TIME ZONE $1)::date";

/// Day index 0..=29 (29 = today), channel, amount, count of payments paid in the window.
const PER_DAY_SQL: &str = "WITH today AS (SELECT (now() AT TIME ZONE $1)::date AS d)
     SELECT ((p.paid_at AT TIME ZONE $1)::date - today.d + 29)::int, p.channel,
            sum(p.amount_fen)::bigint, count(*)
       FROM payments p, today
      WHERE p.paid_at >= ((today.d - 29)::timestamp AT TIME ZONE $1)
      GROUP BY 1, 2 ORDER BY 1, 2";

/// Orders created in the window by status: count and amount.
const PER_STATUS_SQL: &str = "WITH today AS (SELECT (now() AT TIME ZONE $1)::date AS d)
     SELECT p.status, count(*), sum(p.amount_fen)::bigint
       FROM payments p, today
      WHERE p.created_at >= ((today.d - 29)::timestamp AT TIME ZONE $1)
      GROUP BY 1";

/// Everything the dashboard shows besides the reconcile report.
#[derive(Debug)]
pub struct Figures {
    pub totals: Vec<Total>,
    pub per_day: String,
    pub per_channel: String,
    pub per_status: String,
}

/// Reads and draws the dashboard's figures in the page's language.
pub async fn figures(client: &impl GenericClient, timezone: &str, ui: &Ui) -> Result<Figures, StoreError> {
    let t = &ui.t.admin;
    let row = client.query_one(TOTALS_SQL, &[&timezone]).await?;
    let totals = [("today", t.today), ("week", t.this_week), ("month", t.this_month)]
        .into_iter()
        .enumerate()
        .map(|(i, (id, label))| Total {
            id,
            label,
            amount: format_yuan(row.get(2 * i)),
            count: row.get(2 * i + 1),
        })
        .collect();
    let today: Date = client.query_one(TODAY_SQL, &[&timezone]).await?.get(0);
    let days: Vec<Date> = (0..DAYS).map(|i| today - time::Duration::days(DAYS - 1 - i)).collect();
    let rows = client.query(PER_DAY_SQL, &[&timezone]).await?;
    let mut series = Vec::new();
    let mut channels = Vec::new();
    for channel in ["wechat", "alipay"] {
        let mut values = vec![0i64; DAYS as usize];
        let (mut amount, mut count) = (0i64, 0i64);
        for row in rows.iter().filter(|r| r.get::<_, &str>(1) == channel) {
            let fen: i64 = row.get(2);
            if let Some(slot) = usize::try_from(row.get::<_, i32>(0))
                .ok()
                .and_then(|d| values.get_mut(d))
            {
                *slot += fen;
            }
            amount += fen;
            count += row.get::<_, i64>(3);
        }
        series.push(Series {
            name: ui.channel(channel).to_string(),
            color: channel_color(channel),
            values,
        });
        channels.push(Bar {
            label: ui.channel(channel).to_string(),
            color: channel_color(channel),
            value: amount,
            note: ui.fill(t.n_payments, count),
        });
    }
    let per_day = chart::daily(
        ui.lang,
        &Daily {
            days,
            series,
            unit: Unit::Fen,
            empty: t.chart_empty_days,
            label: t.chart_per_day,
        },
        false,
    );
    let per_channel = chart::bars(Unit::Fen, &channels, t.chart_per_channel, t.chart_empty_channels, false);
    let rows = client.query(PER_STATUS_SQL, &[&timezone]).await?;
    let statuses: Vec<Bar> = ["paid", "pending", "closed", "refunded"]
        .into_iter()
        .map(|status| {
            let row = rows.iter().find(|r| r.get::<_, &str>(0) == status);
            Bar {
                label: ui.status(status).to_string(),
                color: status_color(status),
                value: row.map_or(0, |r| r.get(1)),
                note: row.map_or(String::new(), |r| chart::full_value(Unit::Fen, r.get(2))),
            }
        })
        .collect();
    let per_status = chart::bars(Unit::Count, &statuses, t.chart_per_status, t.chart_empty_status, false);
    Ok(Figures {
        totals,
        per_day,
        per_channel,
        per_status,
    })
}
