//! Donation rankings, recent donations, per-category totals and the 30-day chart (contract:
//! "Ranking JSON" and below). Totals live in `donation_totals` (category × donor × local day),
//! kept exact by the donation purpose (`donate::purpose`) inside every payment and refund
//! transaction; a
//! signed-in donor is shown by their current display name, read with the page (a rename
//! rewrites nothing here, it only drops the cached answers).
//! Answers are serialized once into `Bytes` and cached per parameter set (the first
//! [`MAX_CACHED_PAGE`] pages), weighed by their bytes, computed once per key at a time; a
//! paid or refunded donation on any instance drops them all, a `day`/`week`/`month` answer
//! expires with its period, and a short TTL is the safety net. A hit does no I/O and no
//! serialization.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use time::OffsetDateTime;

use crate::error::AppError;
use crate::pay::money::format_yuan;
use crate::pay::rfc3339;
use crate::store::flights::Flights;
use crate::store::hot::Front;
use crate::store::{Store, StoreError};
use crate::ui::Lang;

/// The donor a donation counts for (see the migration): anonymity first, then the signed-in
/// user, then the trimmed name; a blank name counts alone.
const DONOR_KEY: &str =
    "CASE WHEN d.anonymous OR (d.user_id IS NULL AND btrim(d.donor_name) = '') THEN 'a:' || d.order_no
            WHEN d.user_id IS NOT NULL THEN 'u:' || d.user_id
            ELSE 'n:' || btrim(d.donor_name) END";

/// What the donor is shown as: a signed-in donor by their display name.
const DONOR_NAME: &str = "CASE WHEN d.anonymous THEN '匿名'
            WHEN d.user_id IS NOT NULL THEN (SELECT u.display_name FROM users u WHERE u.id = d.user_id)
            WHEN btrim(d.donor_name) = '' THEN '匿名' ELSE btrim(d.donor_name) END";

/// Adds a donation just paid to `donation_totals` (`$1` order_no, `$2` time zone): run by
/// the donation purpose's `on_paid`, in the payment's transaction.
pub(super) fn on_paid_sql() -> &'static str {
    ON_PAID.get_or_init(|| {
        format!(
            "INSERT INTO donation_totals AS t (category_id, donor_key, day, donor, amount_fen, count, first_paid_at)
             SELECT d.category_id, {DONOR_KEY}, (p.paid_at AT TIME ZONE $2)::date, {DONOR_NAME},
                    p.amount_fen - p.refunded_fen, 1, p.paid_at
               FROM payments p JOIN donations d USING (order_no) WHERE p.order_no = $1
             ON CONFLICT (category_id, donor_key, day) DO UPDATE
                SET amount_fen = t.amount_fen + EXCLUDED.amount_fen, count = t.count + 1,
                    first_paid_at = least(t.first_paid_at, EXCLUDED.first_paid_at)"
        )
    })
}

/// Takes a refund off `donation_totals` (`$1` order_no, `$2` the refund in fen, `$3` time
/// zone; `refunded_fen` already raised): run by the donation purpose's `on_refunded`.
pub(super) fn on_refunded_sql() -> &'static str {
    ON_REFUNDED.get_or_init(|| {
        format!(
            "UPDATE donation_totals t
                SET amount_fen = t.amount_fen - $2,
                    count = t.count - CASE WHEN p.refunded_fen >= p.amount_fen THEN 1 ELSE 0 END
               FROM payments p JOIN donations d USING (order_no)
              WHERE p.order_no = $1 AND t.category_id = d.category_id AND t.donor_key = {DONOR_KEY}
                AND t.day = (p.paid_at AT TIME ZONE $3)::date"
        )
    })
}

static ON_PAID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
static ON_REFUNDED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Rebuilds `donation_totals` from the payments when the time zone its days were cut in is
/// not `timezone` (first start, or `rankings.timezone` changed). One transaction, serialized
/// across instances; returns whether it rebuilt.
pub async fn ensure_totals(store: &Store, timezone: &str) -> Result<bool, StoreError> {
    let mut client = store.client().await?;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock(7365617801)", &[]).await?;
    let current: Option<String> = tx
        .query_opt("SELECT value FROM app_state WHERE key = 'rankings_timezone'", &[])
        .await?
        .map(|row| row.get(0));
    if current.as_deref() == Some(timezone) {
        return Ok(false);
    }
    tx.batch_execute("DELETE FROM donation_totals").await?;
    let rebuild = format!(
        "INSERT INTO donation_totals (category_id, donor_key, day, donor, amount_fen, count, first_paid_at)
         SELECT d.category_id, {DONOR_KEY}, (p.paid_at AT TIME ZONE $1)::date, max({DONOR_NAME}),
                sum(p.amount_fen - p.refunded_fen), count(*) FILTER (WHERE p.refunded_fen < p.amount_fen),
                min(p.paid_at)
           FROM payments p JOIN donations d USING (order_no)
          WHERE p.status IN ('paid', 'refunded')
          GROUP BY 1, 2, 3"
    );
    tx.execute(&rebuild, &[&timezone]).await?;
    tx.execute(
        "INSERT INTO app_state (key, value) VALUES ('rankings_timezone', $1)
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        &[&timezone],
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// A ranking's time range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Range {
    Day,
    Week,
    Month,
    All,
}

impl Range {
    pub fn parse(text: &str) -> Option<Range> {
        match text {
            "day" => Some(Range::Day),
            "week" => Some(Range::Week),
            "month" => Some(Range::Month),
            "all" => Some(Range::All),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Range::Day => "day",
            Range::Week => "week",
            Range::Month => "month",
            Range::All => "all",
        }
    }
}

/// Every parameter of a ranking request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RankingKey {
    pub category_id: Option<i64>,
    pub range: Range,
    /// From 1.
    pub page: u32,
    /// 1..=100.
    pub size: u32,
}

/// One row of a ranking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankingItem {
    pub rank: u64,
    pub donor: String,
    pub amount_fen: i64,
    pub count: i64,
}

/// A page of a ranking, and until when it holds (the end of its day/week/month).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankingPage {
    pub total: i64,
    pub items: Vec<RankingItem>,
    pub valid_until: Option<OffsetDateTime>,
}

/// The `day`/`week`/`month` window around `$2` (now) in zone `$1`, as local dates, and when
/// it ends as an instant.
const BOUNDS: &str = "bounds AS (
        SELECT CASE $3 WHEN 'day' THEN l::date WHEN 'week' THEN date_trunc('week', l)::date
                       WHEN 'month' THEN date_trunc('month', l)::date END AS start,
               CASE $3 WHEN 'day' THEN l::date + 1 WHEN 'week' THEN date_trunc('week', l)::date + 7
                       WHEN 'month' THEN (date_trunc('month', l) + interval '1 month')::date END AS stop
          FROM (SELECT $2::timestamptz AT TIME ZONE $1 AS l) now_local)";

static RANKING_SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn ranking_sql() -> &'static str {
    RANKING_SQL.get_or_init(|| {
        format!(
            "WITH {BOUNDS},
             g AS (
                SELECT t.donor_key, max(t.donor) AS donor, sum(t.amount_fen)::bigint AS amount,
                       sum(t.count)::bigint AS n, min(t.first_paid_at) AS first
                  FROM donation_totals t, bounds b
                 WHERE ($4::bigint IS NULL OR t.category_id = $4)
                   AND (b.start IS NULL OR (t.day >= b.start AND t.day < b.stop))
                 GROUP BY t.donor_key
                HAVING sum(t.amount_fen) > 0),
             page AS (
                SELECT donor_key, donor, amount, n, first FROM g
                 ORDER BY amount DESC, first ASC, donor_key ASC LIMIT $5 OFFSET $6)
             SELECT (SELECT count(*) FROM g), (SELECT stop::timestamp AT TIME ZONE $1 FROM bounds),
                    COALESCE(u.display_name, page.donor), page.amount, page.n
               FROM (SELECT 1) one LEFT JOIN page ON true
               LEFT JOIN users u
                 ON u.id = CASE WHEN page.donor_key LIKE 'u:%' THEN substr(page.donor_key, 3)::bigint END
              ORDER BY page.amount DESC, page.first ASC, page.donor_key ASC"
        )
    })
}

/// Reads one ranking page as of `now` (tests pass their own `now`).
pub async fn query_ranking(
    client: &impl deadpool_postgres::GenericClient,
    timezone: &str,
    key: RankingKey,
    now: OffsetDateTime,
) -> Result<RankingPage, tokio_postgres::Error> {
    let statement = client.prepare_cached(ranking_sql()).await?;
    let limit = i64::from(key.size);
    let offset = i64::from(key.page - 1) * limit;
    let rows = client
        .query(
            &statement,
            &[&timezone, &now, &key.range.as_str(), &key.category_id, &limit, &offset],
        )
        .await?;
    let total = rows.first().map_or(0, |r| r.get::<_, i64>(0));
    let valid_until = rows.first().and_then(|r| r.get::<_, Option<OffsetDateTime>>(1));
    let items = rows
        .iter()
        .filter_map(|r| {
            let donor: Option<String> = r.get(2);
            Some((donor?, r.get::<_, i64>(3), r.get::<_, i64>(4)))
        })
        .enumerate()
        .map(|(i, (donor, amount_fen, count))| RankingItem {
            rank: offset as u64 + i as u64 + 1,
            donor,
            amount_fen,
            count,
        })
        .collect();
    Ok(RankingPage {
        total,
        items,
        valid_until,
    })
}

/// The contract's ranking JSON for one page (what the cache keeps; public for the benchmarks).
pub fn ranking_json(key: RankingKey, page: &RankingPage) -> Bytes {
    let items: Vec<serde_json::Value> = page
        .items
        .iter()
        .map(|item| {
            serde_json::json!({
                "rank": item.rank,
                "donor": item.donor,
                "amount": format_yuan(item.amount_fen),
                "amount_fen": item.amount_fen,
                "count": item.count,
            })
        })
        .collect();
    let body = serde_json::json!({
        "range": key.range.as_str(),
        "category_id": key.category_id,
        "page": key.page,
        "size": key.size,
        "total": page.total,
        "items": items,
    });
    Bytes::from(body.to_string())
}

/// What is cached.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum CacheKey {
    Ranking(RankingKey),
    Recent(Option<i64>, u32),
    Stats,
    /// The chart in a language, inline or standalone.
    Chart(Lang, bool),
}

impl CacheKey {
    /// Only the first pages of a ranking are kept: deeper ones (and any page an attacker
    /// walks through) are computed for each request, so the key space stays bounded.
    fn cacheable(&self) -> bool {
        match self {
            CacheKey::Ranking(key) => key.page <= MAX_CACHED_PAGE,
            _ => true,
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    body: Bytes,
    /// When the answer stops being true by itself (the end of its day/week/month).
    expires: Option<Instant>,
}

/// Answers expire at the end of their period, or after [`SAFETY_TTL`].
struct Expiry;

/// The longest any answer is kept without an event confirming it.
const SAFETY_TTL: Duration = Duration::from_secs(30);
/// Ranking pages beyond this one are not cached.
pub const MAX_CACHED_PAGE: u32 = 5;
/// Bytes of answers kept at most (each weighed by its body plus [`ENTRY_OVERHEAD`]).
const MAX_CACHED_BYTES: u64 = 32 * 1024 * 1024;
/// What an entry costs beyond its body: key, bookkeeping.
const ENTRY_OVERHEAD: usize = 160;

impl moka::Expiry<CacheKey, Entry> for Expiry {
    fn expire_after_create(&self, _key: &CacheKey, value: &Entry, created_at: Instant) -> Option<Duration> {
        let until_period_end = value.expires.map(|at| at.saturating_duration_since(created_at));
        Some(until_period_end.map_or(SAFETY_TTL, |d| d.min(SAFETY_TTL)))
    }
}

/// The cached answers.
pub struct Rankings {
    cache: moka::sync::Cache<CacheKey, Entry>,
    /// Bumped by every invalidation; an answer computed across a bump is not cached, so a
    /// read that raced a payment cannot outlive it. Checked and bumped under `caching`.
    generation: AtomicU64,
    /// Held for the check-then-insert of an answer and for an invalidation, so neither can
    /// slip between the other's two steps. A std mutex: never held across an await.
    caching: Mutex<()>,
    /// One computation per key at a time: later askers wait for the first one's answer.
    flights: Flights<CacheKey>,
    /// Each worker's copies of the answers it serves most.
    front: Front<CacheKey>,
    timezone: String,
}

impl std::fmt::Debug for Rankings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rankings").field("timezone", &self.timezone).finish()
    }
}

impl Rankings {
    pub fn new(timezone: &str) -> Rankings {
        Rankings {
            cache: moka::sync::Cache::builder()
                .max_capacity(MAX_CACHED_BYTES)
                .weigher(|_key: &CacheKey, entry: &Entry| {
                    u32::try_from(entry.body.len() + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
                })
                .expire_after(Expiry)
                .build(),
            generation: AtomicU64::new(0),
            caching: Mutex::new(()),
            flights: Flights::default(),
            front: Front::default(),
            timezone: timezone.to_string(),
        }
    }

    /// Drops every answer (a donation was paid or refunded somewhere, a donor renamed).
    pub fn invalidate(&self) {
        let _caching = self.caching.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.cache.invalidate_all();
        self.front.changed();
    }

    /// How many times the answers were dropped since start.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Bytes the cached answers weigh now.
    pub fn cached_bytes(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.weighted_size()
    }

    /// The ranking's body when it is cached: what `ranking` answers on a hit, without a
    /// future (the request path answers hits at once). `now` is the request's start.
    pub fn ranking_cached(&self, key: RankingKey, now: Instant) -> Option<Bytes> {
        self.hit(CacheKey::Ranking(key), now)
    }

    /// The recent donations' body when it is cached (see [`Rankings::ranking_cached`]).
    pub fn recent_cached(&self, category_id: Option<i64>, limit: u32, now: Instant) -> Option<Bytes> {
        self.hit(CacheKey::Recent(category_id, limit), now)
    }

    /// The totals' body when it is cached (see [`Rankings::ranking_cached`]).
    pub fn stats_cached(&self, now: Instant) -> Option<Bytes> {
        self.hit(CacheKey::Stats, now)
    }

    /// `key`'s answer from this worker's front, else from the cache.
    fn hit(&self, key: CacheKey, now: Instant) -> Option<Bytes> {
        self.front
            .get_or(&key, now, || self.cache.get(&key).map(|hit| (hit.body, hit.expires)))
    }

    async fn cached_or<F, Fut>(&self, key: CacheKey, load: F) -> Result<Bytes, AppError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(Bytes, Option<OffsetDateTime>), AppError>>,
    {
        if let Some(hit) = self.cache.get(&key) {
            return Ok(hit.body);
        }
        if !key.cacheable() {
            return Ok(Box::pin(load()).await?.0);
        }
        let flight = self.flights.of(&key);
        let _flying = flight.lock().await;
        // The one computing before us may have cached it.
        if let Some(hit) = self.cache.get(&key) {
            return Ok(hit.body);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        // Boxed: the query's future is large and only a miss needs it.
        let (body, valid_until) = Box::pin(load()).await?;
        let expires = valid_until.map(|at| {
            let left = (at - OffsetDateTime::now_utc()).max(time::Duration::ZERO);
            Instant::now() + Duration::try_from(left).unwrap_or(Duration::ZERO)
        });
        let _caching = self.caching.lock();
        if self.generation.load(Ordering::SeqCst) == generation {
            self.cache.insert(
                key,
                Entry {
                    body: body.clone(),
                    expires,
                },
            );
            self.front.changed();
        }
        Ok(body)
    }

    /// `GET /api/rankings`
    pub async fn ranking(&self, store: &Store, key: RankingKey) -> Result<Bytes, AppError> {
        self.cached_or(CacheKey::Ranking(key), || async move {
            let client = store.client().await?;
            let page = query_ranking(&client, &self.timezone, key, OffsetDateTime::now_utc())
                .await
                .map_err(StoreError::from)?;
            Ok((ranking_json(key, &page), page.valid_until))
        })
        .await
    }

    /// `GET /api/donations/recent`
    pub async fn recent(&self, store: &Store, category_id: Option<i64>, limit: u32) -> Result<Bytes, AppError> {
        self.cached_or(CacheKey::Recent(category_id, limit), || async move {
            let client = store.client().await?;
            let sql = RECENT_SQL.get_or_init(|| {
                format!(
                    "SELECT {DONOR_NAME}, p.amount_fen - p.refunded_fen, d.message, d.category_id, p.paid_at
                       FROM payments p JOIN donations d USING (order_no)
                      WHERE p.paid_at IS NOT NULL AND p.purpose = 'donation' AND p.refunded_fen < p.amount_fen
                        AND ($1::bigint IS NULL OR d.category_id = $1)
                      ORDER BY p.paid_at DESC, p.order_no DESC LIMIT $2"
                )
            });
            let statement = client.prepare_cached(sql).await.map_err(StoreError::from)?;
            let rows = client
                .query(&statement, &[&category_id, &i64::from(limit)])
                .await
                .map_err(StoreError::from)?;
            let items: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    let amount: i64 = r.get(1);
                    serde_json::json!({
                        "donor": r.get::<_, String>(0),
                        "amount": format_yuan(amount),
                        "amount_fen": amount,
                        "message": r.get::<_, String>(2),
                        "category_id": r.get::<_, i64>(3),
                        "paid_at": rfc3339(r.get(4)),
                    })
                })
                .collect();
            Ok((Bytes::from(serde_json::json!({ "items": items }).to_string()), None))
        })
        .await
    }

    /// `GET /api/stats`: per open category, the amount, donations and donors so far.
    pub async fn stats(&self, store: &Store) -> Result<Bytes, AppError> {
        self.cached_or(CacheKey::Stats, || async move {
            let client = store.client().await?;
            let statement = client.prepare_cached(STATS_SQL).await.map_err(StoreError::from)?;
            let rows = client.query(&statement, &[]).await.map_err(StoreError::from)?;
            let (mut amount_all, mut count_all) = (0i64, 0i64);
            let items: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    let (amount, count): (i64, i64) = (r.get(2), r.get(3));
                    amount_all += amount;
                    count_all += count;
                    serde_json::json!({
                        "category_id": r.get::<_, i64>(0),
                        "name": r.get::<_, String>(1),
                        "amount": format_yuan(amount),
                        "amount_fen": amount,
                        "count": count,
                        "donors": r.get::<_, i64>(4),
                    })
                })
                .collect();
            let donors_all: i64 = client
                .query_one(DONORS_ALL_SQL, &[])
                .await
                .map_err(StoreError::from)?
                .get(0);
            let body = serde_json::json!({
                "items": items,
                "total": {"amount": format_yuan(amount_all), "amount_fen": amount_all, "count": count_all, "donors": donors_all},
            });
            Ok((Bytes::from(body.to_string()), None))
        })
        .await
    }

    /// The 30-day chart (donations per day and category) in `lang`: inline SVG for the home
    /// page, or a document of its own for `GET /api/stats/chart.svg` (`standalone`).
    pub async fn chart(&self, store: &Store, lang: Lang, standalone: bool) -> Result<Bytes, AppError> {
        self.cached_or(CacheKey::Chart(lang, standalone), || async move {
            let client = store.client().await?;
            let (svg, valid_until) = super::chart::load(&client, &self.timezone, lang, standalone)
                .await
                .map_err(StoreError::from)?;
            Ok((Bytes::from(svg), Some(valid_until)))
        })
        .await
    }
}

static RECENT_SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

const STATS_SQL: &str = "SELECT c.id, c.name, coalesce(sum(x.amount), 0)::bigint, coalesce(sum(x.n), 0)::bigint,
            count(x.donor_key) FILTER (WHERE x.amount > 0)
       FROM categories c
       LEFT JOIN (SELECT category_id, donor_key, sum(amount_fen) AS amount, sum(count) AS n
                    FROM donation_totals GROUP BY 1, 2) x ON x.category_id = c.id
      WHERE c.enabled
      GROUP BY c.id, c.name, c.sort_order ORDER BY c.sort_order, c.id";

const DONORS_ALL_SQL: &str =
    "SELECT count(*) FROM (SELECT donor_key FROM donation_totals GROUP BY donor_key HAVING sum(amount_fen) > 0) d";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_print_back() {
        for text in ["day", "week", "month", "all"] {
            assert_eq!(Range::parse(text).unwrap().as_str(), text);
        }
        assert_eq!(Range::parse("year"), None);
    }
}
