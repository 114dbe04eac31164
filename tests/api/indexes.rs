//! Every filter of the admin area and every housekeeping delete has its index: on 100 000
//! payments, donations, callbacks and finished purpose steps (made by one `INSERT … SELECT generate_series` each),
//! the plans a cached prepared statement would use scan no big table sequentially.

use crate::helpers::fresh_database;

const ROWS: &str = "
INSERT INTO payments (order_no, purpose, channel, amount_fen, status, code_url, description, expires_at,
                      created_at, paid_at, transaction_id, late, next_check_at)
SELECT md5(i::text), 'donation', CASE WHEN i % 2 = 0 THEN 'wechat' ELSE 'alipay' END, 100 + i % 1000,
       CASE WHEN i % 100 = 0 THEN 'pending' WHEN i % 10 = 1 THEN 'closed'
            WHEN i % 50 = 7 THEN 'refunded' ELSE 'paid' END,
       'weixin://wxpay/bizpayurl?pr=x', '捐赠', now() - make_interval(mins => i) + interval '15 minutes',
       now() - make_interval(mins => i),
       CASE WHEN i % 100 = 0 OR i % 10 = 1 THEN NULL ELSE now() - make_interval(mins => i) END,
       CASE WHEN i % 100 = 0 OR i % 10 = 1 THEN NULL ELSE 'T' || i END,
       i % 1000 = 3, now() + interval '1 minute'
  FROM generate_series(1, 100000) i;
INSERT INTO donations (order_no, category_id, donor_name)
SELECT md5(i::text), 1, 'donor ' || (i % 5000) FROM generate_series(1, 100000) i;
INSERT INTO callback_inbox (channel, kind, subject_id, order_no, accepted, outcome, body, received_at)
SELECT CASE WHEN i % 2 = 0 THEN 'wechat' ELSE 'alipay' END, 'payment', 'T' || i, md5(i::text),
       i % 200 <> 0, 'applied', '\\x7b7d'::bytea, now() - make_interval(mins => i)
  FROM generate_series(1, 100000) i;
INSERT INTO refunds (refund_no, order_no, amount_fen, requested_by, status, created_at)
SELECT 'RF' || lpad(i::text, 8, '0'), md5(i::text), 1,
       'test', CASE WHEN i % 500 = 7 THEN 'processing' WHEN i % 500 = 57 THEN 'failed' ELSE 'succeeded' END,
       now() - make_interval(mins => i)
  FROM generate_series(7, 100000, 50) i;
INSERT INTO purpose_outbox (order_no, purpose, step, next_attempt_at, created_at, done_at)
SELECT md5(i::text), 'donation', 'paid', now(), now() - make_interval(mins => i),
       CASE WHEN i % 1000 = 0 THEN NULL ELSE now() - make_interval(mins => i) END
  FROM generate_series(1, 100000) i;
INSERT INTO idempotency_keys (scope, key, fingerprint, resource_id, locked_until, expires_at)
SELECT 'POST /api/donations|ip:10.0.0.1', 'k' || i, sha256(i::text::bytea), md5(i::text), now(),
       now() + make_interval(mins => i)
  FROM generate_series(1, 100000) i;
";

/// The big tables' sequential scans in a plan, as `Seq Scan on …`.
fn seq_scans(plan: &serde_json::Value, found: &mut Vec<String>) {
    match plan {
        serde_json::Value::Object(node) => {
            if node.get("Node Type").and_then(|t| t.as_str()) == Some("Seq Scan") {
                let table = node.get("Relation Name").and_then(|t| t.as_str()).unwrap_or("?");
                if [
                    "payments",
                    "donations",
                    "callback_inbox",
                    "refunds",
                    "idempotency_keys",
                    "purpose_outbox",
                ]
                .contains(&table)
                {
                    found.push(format!("Seq Scan on {table}"));
                }
            }
            node.values().for_each(|v| seq_scans(v, found));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| seq_scans(v, found)),
        _ => {}
    }
}

#[tokio::test]
async fn every_admin_filter_and_purge_uses_an_index_on_100_000_rows() {
    let db = fresh_database().await;
    let store = zhifu::store::Store::connect(db, 1, std::time::Duration::from_secs(5), None).unwrap();
    let client = store.client().await.unwrap();
    client.batch_execute(ROWS).await.expect("the rows go in");
    // As autovacuum leaves a table in steady state: statistics and the visibility map.
    client.batch_execute("VACUUM ANALYZE").await.unwrap();
    let plans = zhifu::admin::explain_filtered_reads(&client)
        .await
        .expect("every read plans");
    assert!(plans.len() >= 15, "{} plans", plans.len());
    let mut failures = Vec::new();
    for (what, plan) in &plans {
        // Counting half the table (one channel of two): reading it all is the fastest plan,
        // and the page itself comes from the index.
        if what == "payments by channel (count)" {
            continue;
        }
        let mut found = Vec::new();
        seq_scans(plan, &mut found);
        if !found.is_empty() {
            failures.push(format!("{what}: {found:?}\n{plan:#}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
