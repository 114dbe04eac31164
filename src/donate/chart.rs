//! The home page's chart: donations per local day and category over the last 30 days, read
//! from `donation_totals` (kept exact in the payment transactions) and drawn by `ui::chart`.
//! `Rankings::chart` caches it per language until the next payment event or local midnight.

use deadpool_postgres::GenericClient;
use time::{Date, OffsetDateTime};

use crate::ui::Lang;
use crate::ui::chart::{self, Daily, PALETTE, Series, Unit};

/// Days the chart shows, today included.
const DAYS: i64 = 30;

/// Today's local date and the next local midnight (when the chart stops being true).
const TODAY_SQL: &str = "SELECT ($2::timestamptz AT TIME ZONE $1)::date,
            ((($2::timestamptz AT TIME ZONE $1)::date + 1)::timestamp AT TIME ZONE $1)";

/// Day index 0..=29 (29 = today), category, amount net of refunds.
const CHART_SQL: &str = "WITH today AS (SELECT ($2::timestamptz AT TIME ZONE $1)::date AS d)
     SELECT (t.day - today.d + 29)::int, t.category_id, sum(t.amount_fen)::bigint
       FROM donation_totals t, today
      WHERE t.day > today.d - 30 AND t.day <= today.d
      GROUP BY 1, 2 ORDER BY 1, 2";

const NAMES_SQL: &str = "SELECT id, name FROM categories ORDER BY sort_order, id";

/// The chart in `lang` and when it expires by itself.
pub async fn load(
    client: &impl GenericClient,
    timezone: &str,
    lang: Lang,
    standalone: bool,
) -> Result<(String, OffsetDateTime), tokio_postgres::Error> {
    let now = OffsetDateTime::now_utc();
    let today = client.query_one(TODAY_SQL, &[&timezone, &now]).await?;
    let (today, midnight): (Date, OffsetDateTime) = (today.get(0), today.get(1));
    let statement = client.prepare_cached(CHART_SQL).await?;
    let points: Vec<(i32, i64, i64)> = client
        .query(&statement, &[&timezone, &now])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let names: Vec<(i64, String)> = client
        .query(NAMES_SQL, &[])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    Ok((draw(lang, today, &points, &names, standalone), midnight))
}

/// One series per category that has a donation in the window, coloured by its place.
fn draw(lang: Lang, today: Date, points: &[(i32, i64, i64)], names: &[(i64, String)], standalone: bool) -> String {
    let days: Vec<Date> = (0..DAYS).map(|i| today - time::Duration::days(DAYS - 1 - i)).collect();
    let series = names
        .iter()
        .enumerate()
        .filter_map(|(place, (id, name))| {
            let mut values = vec![0i64; DAYS as usize];
            for (day, category, amount) in points {
                if category == id
                    && let Some(slot) = usize::try_from(*day).ok().and_then(|d| values.get_mut(d))
                {
                    *slot += (*amount).max(0);
                }
            }
            values.iter().any(|v| *v > 0).then(|| Series {
                name: name.clone(),
                color: PALETTE[place % PALETTE.len()],
                values,
            })
        })
        .collect();
    let t = lang.catalog();
    let chart = Daily {
        days,
        series,
        unit: Unit::Fen,
        empty: t.donate.chart_empty,
        label: t.donate.chart_title,
    };
    chart::daily(lang, &chart, standalone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn categories_without_donations_stay_out_of_the_legend() {
        let names = [(1, "通用捐赠".to_string()), (2, "<b>灾区</b>".to_string())];
        let svg = draw(
            Lang::Zh,
            date!(2024 - 05 - 19),
            &[(29, 2, 1000), (28, 2, 500)],
            &names,
            false,
        );
        assert!(svg.contains("&lt;b&gt;灾区&lt;/b&gt;") && !svg.contains("<b>"), "{svg}");
        assert!(
            !svg.contains("通用捐赠"),
            "a category with no donation is not in the legend"
        );
        assert!(svg.contains("5月19日 · &lt;b&gt;灾区&lt;/b&gt; · ¥10.00"), "{svg}");
        let none = draw(Lang::En, date!(2024 - 05 - 19), &[], &names, false);
        assert!(none.contains("No donations in the last 30 days yet"), "{none}");
    }
}
