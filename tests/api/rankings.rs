//! Rankings, recent donations and stats: equal to a brute-force computation over the payments
//! for every range, category, page and size; exact at day/week/month boundaries in
//! Asia/Shanghai; refunds subtract; anonymous donors never merge; cached, and fresh on every
//! instance after a payment.

use std::time::Duration;

use http::StatusCode;
use time::macros::datetime;
use time::{OffsetDateTime, UtcOffset};
use zhifu::donate::rankings::{Range, RankingItem, RankingKey, query_ranking};
use zhifu::pay::provider::{Channel, Paid, RefundState};

use crate::helpers::{TestApp, eventually, spawn_app, spawn_app_on};

const TZ: &str = "Asia/Shanghai";

/// Stores a donation and pays it through the engine (so the purpose hook runs).
async fn paid_donation(
    app: &TestApp,
    category: i64,
    name: &str,
    anonymous: bool,
    fen: i64,
    paid_at: OffsetDateTime,
) -> String {
    let no = uuid::Uuid::now_v7().simple().to_string();
    let client = app.state.store.client().await.unwrap();
    client
        .execute(
            "WITH p AS (INSERT INTO payments (order_no, purpose, channel, amount_fen, code_url, expires_at, next_check_at)
                        VALUES ($1, 'donation', 'wechat', $2, 'weixin://test', now() + interval '1 hour', now() + interval '1 day')
                        RETURNING order_no)
             INSERT INTO donations (order_no, category_id, donor_name, anonymous) SELECT order_no, $3, $4, $5 FROM p",
            &[&no, &fen, &category, &name, &anonymous],
        )
        .await
        .unwrap();
    drop(client);
    let paid = Paid {
        order_no: no.clone(),
        transaction_id: format!("T{no}"),
        amount_fen: fen,
        paid_at,
    };
    app.state
        .engine
        .apply_payment(Channel::Wechat, &paid, None, "test")
        .await
        .unwrap();
    no
}

/// Refunds `fen` of an order through the engine's refund settlement.
async fn refund(app: &TestApp, order_no: &str, fen: i64) {
    let refund_no = uuid::Uuid::now_v7().simple().to_string();
    let client = app.state.store.client().await.unwrap();
    client
        .execute(
            "INSERT INTO refunds (refund_no, order_no, amount_fen, requested_by) VALUES ($1, $2, $3, 'test')",
            &[&refund_no, &order_no, &fen],
        )
        .await
        .unwrap();
    drop(client);
    let done = RefundState::Succeeded {
        refund_id: format!("R{refund_no}"),
    };
    app.state
        .engine
        .apply_refund_state(Channel::Wechat, order_no, &refund_no, &done, None, "test")
        .await
        .unwrap();
}

/// The window of `range` around `now` in China Standard Time (UTC+8, no daylight saving),
/// computed here independently of the server's SQL.
fn window(range: Range, now: OffsetDateTime) -> (Option<OffsetDateTime>, Option<OffsetDateTime>) {
    let cst = UtcOffset::from_hms(8, 0, 0).unwrap();
    let local = now.to_offset(cst);
    let midnight = |date: time::Date| date.midnight().assume_offset(cst);
    let today = local.date();
    match range {
        Range::All => (None, None),
        Range::Day => (Some(midnight(today)), Some(midnight(today.next_day().unwrap()))),
        Range::Week => {
            let monday = today - time::Duration::days(i64::from(today.weekday().number_days_from_monday()));
            (Some(midnight(monday)), Some(midnight(monday + time::Duration::days(7))))
        }
        Range::Month => {
            let first = today.replace_day(1).unwrap();
            let next = if first.month() == time::Month::December {
                time::Date::from_calendar_date(first.year() + 1, time::Month::January, 1).unwrap()
            } else {
                time::Date::from_calendar_date(first.year(), first.month().next(), 1).unwrap()
            };
            (Some(midnight(first)), Some(midnight(next)))
        }
    }
}

/// The ranking computed the slow way, straight from payments and donations.
async fn brute_force(app: &TestApp, category: Option<i64>, range: Range, now: OffsetDateTime) -> Vec<RankingItem> {
    let (start, stop) = window(range, now);
    let client = app.state.store.client().await.unwrap();
    let rows = client
        .query(
            "SELECT CASE WHEN d.anonymous OR (d.user_id IS NULL AND btrim(d.donor_name) = '') THEN 'a:' || d.order_no
                         WHEN d.user_id IS NOT NULL THEN 'u:' || d.user_id ELSE 'n:' || btrim(d.donor_name) END AS key,
                    max(CASE WHEN d.anonymous OR btrim(d.donor_name) = '' THEN '匿名' ELSE btrim(d.donor_name) END),
                    sum(p.amount_fen - p.refunded_fen)::bigint AS amount,
                    count(*) FILTER (WHERE p.refunded_fen < p.amount_fen) AS n,
                    min(p.paid_at) AS first
               FROM payments p JOIN donations d USING (order_no)
              WHERE p.status IN ('paid', 'refunded') AND ($1::bigint IS NULL OR d.category_id = $1)
                AND ($2::timestamptz IS NULL OR p.paid_at >= $2) AND ($3::timestamptz IS NULL OR p.paid_at < $3)
              GROUP BY 1 HAVING sum(p.amount_fen - p.refunded_fen) > 0
              ORDER BY amount DESC, first ASC, key ASC",
            &[&category, &start, &stop],
        )
        .await
        .unwrap();
    rows.iter()
        .enumerate()
        .map(|(i, r)| RankingItem {
            rank: i as u64 + 1,
            donor: r.get(1),
            amount_fen: r.get(2),
            count: r.get(3),
        })
        .collect()
}

async fn ranking_at(app: &TestApp, key: RankingKey, now: OffsetDateTime) -> zhifu::donate::rankings::RankingPage {
    let client = app.state.store.client().await.unwrap();
    query_ranking(&client, TZ, key, now).await.unwrap()
}

/// A small deterministic generator (no dependency, same data every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
    }
}

#[tokio::test]
async fn rankings_equal_a_brute_force_computation_for_every_range_category_page_and_size() {
    let app = spawn_app().await;
    app.sql("INSERT INTO categories (id, name) VALUES (2, '助学'), (3, '救灾')")
        .await;
    let now = datetime!(2026-11-25 15:30:00 +08:00); // a Wednesday
    let names = ["张三", " 张三 ", "李四", "王五", "赵六", "", "  ", "Ann", "ann", "钱七"];
    let mut rng = Lcg(20261121);
    let mut orders = Vec::new();
    for _ in 0..160 {
        let category = 1 + rng.next(3) as i64;
        let name = names[rng.next(names.len() as u64) as usize];
        let anonymous = rng.next(6) == 0;
        let fen = 1 + rng.next(20_000) as i64;
        // Spread over the last 40 days, with many near midnight and the week/month edges.
        let minutes_back = if rng.next(4) == 0 {
            (rng.next(40) * 1440) as i64 + rng.next(3) as i64
        } else {
            rng.next(40 * 1440) as i64
        };
        let paid_at = now - time::Duration::minutes(minutes_back) - time::Duration::seconds(rng.next(60) as i64);
        orders.push((paid_donation(&app, category, name, anonymous, fen, paid_at).await, fen));
    }
    for (order, fen) in &orders {
        match rng.next(10) {
            0 => refund(&app, order, *fen).await,
            1 if *fen > 1 => refund(&app, order, 1 + rng.next(*fen as u64 - 1) as i64).await,
            _ => {}
        }
    }

    let mut compared = 0;
    for range in [Range::Day, Range::Week, Range::Month, Range::All] {
        for category in [None, Some(1), Some(2), Some(3)] {
            let expected = brute_force(&app, category, range, now).await;
            for size in [1u32, 3, 7, 20, 100] {
                let pages = (expected.len() as u32).div_ceil(size) + 1;
                for page in 1..=pages {
                    let key = RankingKey {
                        category_id: category,
                        range,
                        page,
                        size,
                    };
                    let got = ranking_at(&app, key, now).await;
                    let from = ((page - 1) * size) as usize;
                    let want: Vec<_> = expected.iter().skip(from).take(size as usize).cloned().collect();
                    assert_eq!(got.total as usize, expected.len(), "{key:?}");
                    assert_eq!(got.items, want, "{key:?}");
                    compared += 1;
                }
            }
            if range != Range::All {
                assert!(
                    !expected.is_empty() || category.is_some(),
                    "{range:?} has data to compare"
                );
            }
        }
    }
    assert!(compared > 300, "compared {compared} pages");
}

#[tokio::test]
async fn day_and_week_boundaries_fall_at_local_midnight_and_monday() {
    let app = spawn_app().await;
    let monday_morning = datetime!(2026-11-23 10:00:00 +08:00);
    paid_donation(&app, 1, "周日深夜", false, 100, datetime!(2026-11-22 23:59:59 +08:00)).await;
    paid_donation(&app, 1, "周一零点", false, 200, datetime!(2026-11-23 00:00:00 +08:00)).await;
    let donors =
        |page: zhifu::donate::rankings::RankingPage| page.items.into_iter().map(|i| i.donor).collect::<Vec<_>>();
    let key = |range| RankingKey {
        category_id: None,
        range,
        page: 1,
        size: 20,
    };
    assert_eq!(
        donors(ranking_at(&app, key(Range::Day), monday_morning).await),
        ["周一零点"]
    );
    assert_eq!(
        donors(ranking_at(&app, key(Range::Week), monday_morning).await),
        ["周一零点"]
    );
    assert_eq!(
        donors(ranking_at(&app, key(Range::Month), monday_morning).await),
        ["周一零点", "周日深夜"]
    );
    assert_eq!(donors(ranking_at(&app, key(Range::All), monday_morning).await).len(), 2);
    // 23:59:59 Sunday in Shanghai is 15:59:59 UTC: a UTC cut would put both on one day.
    let sunday_night = datetime!(2026-11-22 23:59:59 +08:00);
    assert_eq!(
        donors(ranking_at(&app, key(Range::Day), sunday_night).await),
        ["周日深夜"]
    );
    let page = ranking_at(&app, key(Range::Day), monday_morning).await;
    assert_eq!(
        page.valid_until,
        Some(datetime!(2026-11-24 00:00:00 +08:00)),
        "a day ranking ends at midnight"
    );
}

#[tokio::test]
async fn month_boundaries_fall_at_local_midnight_on_the_first() {
    let app = spawn_app().await;
    let december_first = datetime!(2026-12-01 10:00:00 +08:00); // a Tuesday
    paid_donation(&app, 1, "十一月末", false, 100, datetime!(2026-11-30 23:59:59 +08:00)).await;
    paid_donation(&app, 1, "十二月初", false, 200, datetime!(2026-12-01 00:00:00 +08:00)).await;
    let key = |range| RankingKey {
        category_id: None,
        range,
        page: 1,
        size: 20,
    };
    let month = ranking_at(&app, key(Range::Month), december_first).await;
    assert_eq!(
        month.items.iter().map(|i| i.donor.as_str()).collect::<Vec<_>>(),
        ["十二月初"]
    );
    assert_eq!(month.valid_until, Some(datetime!(2027-01-01 00:00:00 +08:00)));
    let week = ranking_at(&app, key(Range::Week), december_first).await;
    assert_eq!(week.total, 2, "the week began on Monday 30 November");
    assert_eq!(week.valid_until, Some(datetime!(2026-12-07 00:00:00 +08:00)));
}

#[tokio::test]
async fn anonymous_and_nameless_donations_are_never_merged_and_refunds_subtract() {
    let app = spawn_app().await;
    let now = OffsetDateTime::now_utc();
    paid_donation(&app, 1, "张三", true, 500, now).await;
    paid_donation(&app, 1, "张三", true, 500, now).await;
    paid_donation(&app, 1, "", false, 300, now).await;
    let named = paid_donation(&app, 1, "张三", false, 1000, now).await;
    paid_donation(&app, 1, " 张三", false, 1000, now).await;
    let key = RankingKey {
        category_id: Some(1),
        range: Range::All,
        page: 1,
        size: 20,
    };
    let page = ranking_at(&app, key, now).await;
    let rows: Vec<_> = page
        .items
        .iter()
        .map(|i| (i.donor.as_str(), i.amount_fen, i.count))
        .collect();
    assert_eq!(
        rows,
        [("张三", 2000, 2), ("匿名", 500, 1), ("匿名", 500, 1), ("匿名", 300, 1)]
    );

    refund(&app, &named, 400).await;
    let page = ranking_at(&app, key, now).await;
    assert_eq!((page.items[0].amount_fen, page.items[0].count), (1600, 2));
    refund(&app, &named, 600).await;
    let page = ranking_at(&app, key, now).await;
    assert_eq!(
        (page.items[0].amount_fen, page.items[0].count),
        (1000, 1),
        "a full refund drops the donation"
    );
}

#[tokio::test]
async fn the_api_answers_in_the_contract_shape_and_refuses_bad_parameters() {
    let app = spawn_app().await;
    paid_donation(&app, 1, "张三", false, 12000, OffsetDateTime::now_utc()).await;
    let json = app
        .get("/api/rankings?range=week&category_id=1&page=1&size=20")
        .await
        .json();
    assert_eq!(json["range"], "week");
    assert_eq!(json["category_id"], 1);
    assert_eq!(json["page"], 1);
    assert_eq!(json["size"], 20);
    assert_eq!(json["total"], 1);
    assert_eq!(
        json["items"][0],
        serde_json::json!({"rank": 1, "donor": "张三", "amount": "120.00", "amount_fen": 12000, "count": 1})
    );
    let defaults = app.get("/api/rankings").await.json();
    assert_eq!(
        (defaults["range"].as_str(), defaults["size"].as_u64()),
        (Some("all"), Some(20))
    );
    assert!(defaults["category_id"].is_null());
    for (query, code) in [
        ("range=year", "invalid_range"),
        ("size=0", "invalid_size"),
        ("size=101", "invalid_size"),
        ("page=0", "invalid_page"),
        ("page=x", "invalid_page"),
        ("category_id=-1", "invalid_category"),
        ("category_id=1%27", "invalid_category"),
    ] {
        let answer = app.get(&format!("/api/rankings?{query}")).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(answer.error_code(), code, "{query}");
    }
    let recent = app.get("/api/donations/recent?limit=5").await.json();
    assert_eq!(recent["items"][0]["donor"], "张三");
    assert_eq!(recent["items"][0]["amount"], "120.00");
    assert!(recent["items"][0]["paid_at"].as_str().unwrap().ends_with("+08:00"));
    assert_eq!(
        app.get("/api/donations/recent?limit=101").await.error_code(),
        "invalid_limit"
    );
    let stats = app.get("/api/stats").await.json();
    assert_eq!(stats["items"][0]["amount_fen"], 12000);
    assert_eq!(stats["items"][0]["donors"], 1);
    assert_eq!(stats["total"]["count"], 1);
    let chart = app.get("/api/stats/chart.svg").await;
    assert_eq!(chart.header("content-type"), Some("image/svg+xml"));
    assert!(chart.text().contains("<rect"));
}

#[tokio::test]
async fn a_cached_ranking_runs_no_query() {
    let app = spawn_app().await;
    paid_donation(&app, 1, "张三", false, 100, OffsetDateTime::now_utc()).await;
    // The payment's event drops the caches when it arrives: wait until reads are cached.
    let settled = eventually(Duration::from_secs(2), || async {
        app.get("/api/rankings?range=day").await;
        let before = app.state.store.checkouts();
        app.get("/api/rankings?range=day").await;
        app.state.store.checkouts() == before
    })
    .await;
    assert!(settled, "ranking reads never came from the cache");
    let first = app.get("/api/rankings?range=day").await;
    let before = app.state.store.checkouts();
    for _ in 0..20 {
        let again = app.get("/api/rankings?range=day").await;
        assert_eq!(again.body, first.body);
    }
    assert_eq!(
        app.state.store.checkouts(),
        before,
        "a cached ranking read took a connection"
    );
    app.get("/api/donations/recent").await;
    let recent_before = app.state.store.checkouts();
    assert_eq!(recent_before - before, 1, "the first recent read queried once");
    app.get("/api/donations/recent").await;
    assert_eq!(
        app.state.store.checkouts(),
        recent_before,
        "the second recent read was cached"
    );
}

#[tokio::test]
async fn two_instances_agree_within_a_second_after_a_callback_on_either() {
    let a = spawn_app().await;
    let b = spawn_app_on(a.db.clone(), |_| {}).await;
    for (payer, name) in [(&a, "甲"), (&b, "乙")] {
        // Both instances have the current ranking cached.
        let before_a = a.get("/api/rankings").await.json()["total"].clone();
        let before_b = b.get("/api/rankings").await.json()["total"].clone();
        assert_eq!(before_a, before_b);
        let order = payer
            .post_json(
                "/api/donations",
                serde_json::json!({"amount": "8.88", "channel": "wechat", "category_id": 1, "donor_name": name}),
            )
            .await
            .json();
        let paid = payer.sandbox_pay(order["order_no"].as_str().unwrap()).await;
        assert_eq!(paid.status, StatusCode::OK);
        for app in [&a, &b] {
            let seen = eventually(Duration::from_secs(1), || async {
                let json = app.get("/api/rankings").await.json();
                json["items"].as_array().unwrap().iter().any(|i| i["donor"] == name)
            })
            .await;
            assert!(seen, "{name} missing from an instance's ranking 1 s after the callback");
        }
    }
}
