//! For the index test: the plans of the admin area's filtered reads and of the housekeeping
//! deletes, as a cached prepared statement runs them (generic plans), with sample
//! parameters. `tests/api/indexes.rs` runs this on 100 000 rows and refuses any sequential
//! scan of a big table.

use deadpool_postgres::GenericClient;
use time::OffsetDateTime;
use tokio_postgres::types::ToSql;

use super::inspect::{
    REPORT_FLAGGED, REPORT_LATE, REPORT_PENDING, REPORT_PURPOSE_STEPS, REPORT_REFUNDS, callbacks_sql,
};
use super::payments::{Filters, search_sql};

/// `(what, EXPLAIN (FORMAT JSON) output)` of every filtered read, planned generically.
pub async fn explain_filtered_reads(
    client: &impl GenericClient,
) -> Result<Vec<(String, serde_json::Value)>, tokio_postgres::Error> {
    client.batch_execute("SET plan_cache_mode = force_generic_plan").await?;
    let mut plans = Vec::new();
    let (limit, offset, rows, minutes, days) = (50_i64, 0_i64, 200_i64, 15_i32, 180_i32);
    let day = OffsetDateTime::now_utc() - time::Duration::days(3);
    let searches: [(&str, Filters); 4] = [
        (
            "payments by order_no prefix",
            Filters {
                order_no: Some("a1b2".into()),
                ..Filters::default()
            },
        ),
        (
            "payments by status",
            Filters {
                status: Some("pending".into()),
                ..Filters::default()
            },
        ),
        (
            "payments by channel",
            Filters {
                channel: Some("alipay".into()),
                ..Filters::default()
            },
        ),
        (
            "payments by date",
            Filters {
                from: Some(day),
                to: Some(day + time::Duration::days(1)),
                ..Filters::default()
            },
        ),
    ];
    for (what, filters) in &searches {
        let (total, page) = search_sql(filters);
        let mut params = filters.clause().params;
        plans.push((format!("{what} (count)"), explain(client, &total, &params).await?));
        params.extend([&limit as &(dyn ToSql + Sync), &offset]);
        plans.push((format!("{what} (page)"), explain(client, &page, &params).await?));
    }
    let order_no = "a1b2c3d4e5f60718293a4b5c6d7e8f90".to_string();
    let (total, page) = callbacks_sql(true, false);
    plans.push((
        "callbacks by order_no (count)".into(),
        explain(client, &total, &[&order_no]).await?,
    ));
    let paged: [&(dyn ToSql + Sync); 3] = [&order_no, &limit, &offset];
    plans.push((
        "callbacks by order_no (page)".into(),
        explain(client, &page, &paged).await?,
    ));
    let (_, refused) = callbacks_sql(false, true);
    let refused_params: [&(dyn ToSql + Sync); 3] = [&false, &limit, &offset];
    plans.push((
        "callbacks refused (page)".into(),
        explain(client, &refused, &refused_params).await?,
    ));
    plans.push((
        "reconcile: pending".into(),
        explain(client, REPORT_PENDING, &[&minutes, &rows]).await?,
    ));
    plans.push((
        "reconcile: flagged".into(),
        explain(client, REPORT_FLAGGED, &[&rows]).await?,
    ));
    plans.push((
        "reconcile: late payments".into(),
        explain(client, REPORT_LATE, &[&rows]).await?,
    ));
    plans.push((
        "reconcile: open refunds".into(),
        explain(client, REPORT_REFUNDS, &[&rows]).await?,
    ));
    plans.push((
        "reconcile: purpose steps waiting".into(),
        explain(client, REPORT_PURPOSE_STEPS, &[&rows]).await?,
    ));
    let purge = crate::pay::retention::PURGE_BODIES;
    plans.push((
        "purge callback bodies".into(),
        explain(client, purge, &[&days, &5000_i64]).await?,
    ));
    let outbox = crate::pay::retention::PURGE_OUTBOX;
    plans.push((
        "purge finished purpose steps".into(),
        explain(client, outbox, &[&days, &5000_i64]).await?,
    ));
    let keys = crate::pay::idempotency::PURGE;
    plans.push((
        "purge idempotency keys".into(),
        explain(client, keys, &[&5000_i64]).await?,
    ));
    client.batch_execute("RESET plan_cache_mode").await?;
    Ok(plans)
}

async fn explain(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<serde_json::Value, tokio_postgres::Error> {
    let row = client
        .query_one(&format!("EXPLAIN (FORMAT JSON) {sql}"), params)
        .await?;
    row.try_get(0)
}
