//! Coupons: admins create them (`POST /api/admin/coupons`), users claim copies
//! (`POST /api/mall/coupons/{id}/claim`) and see them (`GET /api/me/coupons`). A claim is one
//! transaction: a conditional update raises `claimed` while it is below `total` (the coupon's
//! row lock serializes claims of one coupon), then the user's next copy number is inserted,
//! refused above `per_user` and unique per coupon and user — so neither limit is passed under
//! any concurrency, and a refused claim takes nothing.

use std::net::IpAddr;

use http::StatusCode;
use http::request::Parts;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::pricing::{Off, Terms};
use super::{audit_actor, json_answer, json_body, text};
use crate::account::Role;
use crate::app::State;
use crate::error::AppError;
use crate::http::list::Paging;
use crate::http::respond::Response;
use crate::pay::money::{format_yuan, parse_yuan};
use crate::pay::rfc3339;
use crate::store::StoreError;

/// Largest `total` of a coupon, and largest `per_user`.
pub const MAX_TOTAL: i64 = 1_000_000;
pub const MAX_PER_USER: i64 = 100;

/// A coupon's terms as the API shows them.
#[derive(Debug, Clone, Serialize)]
pub struct Coupon {
    pub id: i64,
    pub name: String,
    pub kind: String,
    /// `amount_off`: yuan taken off.
    pub value: Option<String>,
    pub value_fen: Option<i64>,
    /// `percent_off`: the percentage taken off.
    pub percent: Option<i32>,
    pub threshold: String,
    pub threshold_fen: i64,
    pub valid_from: String,
    pub valid_to: String,
    pub total: i32,
    pub per_user: i32,
    pub claimed: i32,
    pub remaining: i32,
}

impl Coupon {
    /// The terms pricing applies.
    pub fn terms(&self) -> Terms {
        Terms {
            off: match (self.value_fen, self.percent) {
                (Some(fen), _) => Off::Amount(fen),
                (None, percent) => Off::Percent(i64::from(percent.unwrap_or(0))),
            },
            threshold_fen: self.threshold_fen,
        }
    }
}

/// The columns of a [`Coupon`] over `mall_coupons c`.
pub const COUPON_COLUMNS: &str =
    "c.id, c.name, c.kind, c.value_fen, c.percent, c.threshold_fen, c.valid_from, c.valid_to,
        c.total, c.per_user, c.claimed";

/// A [`Coupon`] from [`COUPON_COLUMNS`] starting at column `at`.
pub fn coupon(row: &tokio_postgres::Row, at: usize) -> Coupon {
    let value_fen: Option<i64> = row.get(at + 3);
    let (total, claimed): (i32, i32) = (row.get(at + 8), row.get(at + 10));
    Coupon {
        id: row.get(at),
        name: row.get(at + 1),
        kind: row.get(at + 2),
        value: value_fen.map(format_yuan),
        value_fen,
        percent: row.get(at + 4),
        threshold: format_yuan(row.get(at + 5)),
        threshold_fen: row.get(at + 5),
        valid_from: rfc3339(row.get(at + 6)),
        valid_to: rfc3339(row.get(at + 7)),
        total,
        per_user: row.get(at + 9),
        claimed,
        remaining: total - claimed,
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "CouponNew")]
pub(crate) struct CreateBody {
    name: String,
    kind: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    percent: Option<i64>,
    #[serde(default)]
    threshold: Option<String>,
    valid_from: String,
    valid_to: String,
    total: i64,
    per_user: i64,
}

/// A coupon to create, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NewCoupon {
    name: String,
    kind: &'static str,
    value_fen: Option<i64>,
    percent: Option<i32>,
    threshold_fen: i64,
    valid_from: OffsetDateTime,
    valid_to: OffsetDateTime,
    total: i32,
    per_user: i32,
}

fn time_field(text: &str, name: &str) -> Result<OffsetDateTime, AppError> {
    OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
        .map_err(|_| AppError::invalid("invalid_window", format!("{name} must be an RFC 3339 time")))
}

fn check(input: CreateBody, now: OffsetDateTime) -> Result<NewCoupon, AppError> {
    let name = text(&input.name, 1, 32, false, "invalid_name", "name")?;
    let (kind, value_fen, percent) = match (input.kind.as_str(), &input.value, input.percent) {
        ("amount_off", Some(value), None) => (
            "amount_off",
            Some(super::price(
                value,
                super::pricing::MAX_ORDER_FEN,
                "invalid_value",
                "value",
            )?),
            None,
        ),
        ("percent_off", None, Some(p)) if (1..=99).contains(&p) => ("percent_off", None, Some(p as i32)),
        ("percent_off", None, Some(_)) => {
            return Err(AppError::invalid("invalid_percent", "percent must be 1 to 99"));
        }
        ("amount_off" | "percent_off", ..) => {
            return Err(AppError::invalid(
                "invalid_kind",
                "amount_off takes value (a yuan string), percent_off takes percent (1 to 99)",
            ));
        }
        _ => {
            return Err(AppError::invalid(
                "invalid_kind",
                "kind must be amount_off or percent_off",
            ));
        }
    };
    let threshold_fen = match input.threshold.as_deref().map(str::trim) {
        None | Some("") => 0,
        Some(t) => parse_yuan(t)
            .ok()
            .filter(|fen| *fen <= super::pricing::MAX_ORDER_FEN)
            .ok_or_else(|| {
                AppError::invalid(
                    "invalid_threshold",
                    "threshold must be a yuan string such as \"100.00\"",
                )
            })?,
    };
    let valid_from = time_field(&input.valid_from, "valid_from")?;
    let valid_to = time_field(&input.valid_to, "valid_to")?;
    if valid_from >= valid_to || valid_to <= now {
        return Err(AppError::invalid(
            "invalid_window",
            "valid_from must be before valid_to, and valid_to in the future",
        ));
    }
    if !(1..=MAX_TOTAL).contains(&input.total) {
        return Err(AppError::invalid("invalid_total", "total must be 1 to 1000000"));
    }
    if !(1..=MAX_PER_USER.min(input.total)).contains(&input.per_user) {
        return Err(AppError::invalid(
            "invalid_per_user",
            "per_user must be 1 to 100 and at most total",
        ));
    }
    Ok(NewCoupon {
        name,
        kind,
        value_fen,
        percent,
        threshold_fen,
        valid_from,
        valid_to,
        total: input.total as i32,
        per_user: input.per_user as i32,
    })
}

/// `POST /api/admin/coupons` → `201` with the coupon.
pub async fn create(state: &State, parts: &Parts, body: &[u8], ip: IpAddr) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::Admin).await?;
    let new = check(json_body(parts, body)?, OffsetDateTime::now_utc())?;
    let ip = ip.to_string();
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let sql = format!(
        "INSERT INTO mall_coupons AS c (name, kind, value_fen, percent, threshold_fen, valid_from, valid_to, total, per_user, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {COUPON_COLUMNS}"
    );
    let row = tx
        .query_one(
            &sql,
            &[
                &new.name,
                &new.kind,
                &new.value_fen,
                &new.percent,
                &new.threshold_fen,
                &new.valid_from,
                &new.valid_to,
                &new.total,
                &new.per_user,
                &principal.user_id,
            ],
        )
        .await
        .map_err(StoreError::from)?;
    let made = coupon(&row, 0);
    let after = serde_json::to_value(&made).map_err(|e| AppError::Internal(e.into()))?;
    crate::store::audit::write(
        &tx,
        audit_actor(&principal, &ip),
        "mall_coupon.create",
        &format!("mall_coupon:{}", made.id),
        None,
        Some(&after),
    )
    .await
    .map_err(StoreError::from)?;
    tx.commit().await.map_err(StoreError::from)?;
    json_answer(StatusCode::CREATED, &made)
}

/// A coupon as offered to a user: the terms and how many copies they hold.
#[derive(Debug, Clone, Serialize)]
pub struct Offer {
    #[serde(flatten)]
    pub coupon: Coupon,
    pub claimed_by_me: i64,
}

/// Coupons that can still be claimed or used (valid_to ahead), newest first.
pub async fn offers(state: &State, user: Option<i64>, paging: Paging) -> Result<(Vec<Offer>, i64), AppError> {
    let client = state.store.client().await?;
    let list_sql = format!(
        "SELECT {COUPON_COLUMNS},
                (SELECT count(*) FROM mall_user_coupons m WHERE m.coupon_id = c.id AND m.user_id = $1)
           FROM mall_coupons c WHERE c.valid_to > now()
          ORDER BY c.id DESC LIMIT $2 OFFSET $3"
    );
    let user = user.unwrap_or(0);
    let rows = client
        .query(&list_sql, &[&user, &paging.limit(), &paging.offset()])
        .await
        .map_err(StoreError::from)?;
    let total: i64 = client
        .query_one("SELECT count(*) FROM mall_coupons WHERE valid_to > now()", &[])
        .await
        .map_err(StoreError::from)?
        .get(0);
    let items = rows
        .iter()
        .map(|r| Offer {
            coupon: coupon(r, 0),
            claimed_by_me: r.get(11),
        })
        .collect();
    Ok((items, total))
}

/// `GET /api/mall/coupons?page=&size=`: `claimed_by_me` counts the signed-in user's copies.
pub async fn public(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let viewer = state.sessions.principal(&state.store, parts).await.ok().flatten();
    let paging = Paging::standard(parts.uri.query())?;
    let (items, total) = offers(state, viewer.map(|v| v.user_id), paging).await?;
    json_answer(StatusCode::OK, &paging.listing(total, items))
}

/// `GET /api/admin/coupons?page=&size=`: every coupon, newest first, with how many copies
/// are used.
pub async fn admin_list(state: &State, parts: &Parts) -> Result<Response, AppError> {
    state.sessions.require(&state.store, parts, Role::Admin).await?;
    let paging = Paging::standard(parts.uri.query())?;
    let (items, total) = all(state, paging).await?;
    json_answer(StatusCode::OK, &paging.listing(total, items))
}

/// A coupon with its use, for admins.
#[derive(Debug, Clone, Serialize)]
pub struct AdminCoupon {
    #[serde(flatten)]
    pub coupon: Coupon,
    pub used: i64,
}

/// Every coupon, newest first.
pub async fn all(state: &State, paging: Paging) -> Result<(Vec<AdminCoupon>, i64), AppError> {
    let client = state.store.client().await?;
    let sql = format!(
        "SELECT {COUPON_COLUMNS},
                (SELECT count(*) FROM mall_user_coupons m WHERE m.coupon_id = c.id AND m.status = 'used')
           FROM mall_coupons c ORDER BY c.id DESC LIMIT $1 OFFSET $2"
    );
    let rows = client
        .query(&sql, &[&paging.limit(), &paging.offset()])
        .await
        .map_err(StoreError::from)?;
    let total: i64 = client
        .query_one("SELECT count(*) FROM mall_coupons", &[])
        .await
        .map_err(StoreError::from)?
        .get(0);
    Ok((
        rows.iter()
            .map(|r| AdminCoupon {
                coupon: coupon(r, 0),
                used: r.get(11),
            })
            .collect(),
        total,
    ))
}

const TAKE_ONE: &str = "UPDATE mall_coupons SET claimed = claimed + 1
  WHERE id = $1 AND claimed < total AND now() < valid_to RETURNING per_user";
const WHY_NOT: &str = "SELECT claimed >= total, now() >= valid_to FROM mall_coupons WHERE id = $1";
const NEXT_COPY: &str = "INSERT INTO mall_user_coupons (coupon_id, user_id, seq)
     SELECT $1, $2, coalesce(max(seq), 0) + 1 FROM mall_user_coupons WHERE coupon_id = $1 AND user_id = $2
     HAVING coalesce(max(seq), 0) < $3
     RETURNING id";

/// `POST /api/mall/coupons/{id}/claim` → `201` with the new copy (as `GET /api/me/coupons`
/// lists it). `409 coupon_sold_out`, `coupon_expired` or `coupon_limit_reached`.
pub async fn claim(state: &State, parts: &Parts, id: i64) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    let user = principal.user_id;
    // A unique violation means another claim of this user took the same copy number at the
    // same moment; the next try sees it.
    let mut tries = 0;
    let copy = loop {
        tries += 1;
        match claim_once(state, id, user).await {
            Err(ClaimError::Race) if tries < 5 => continue,
            Err(ClaimError::Race) => return Err(AppError::conflict("coupon_busy", "too many claims at once; retry")),
            Err(ClaimError::App(e)) => return Err(e),
            Ok(copy) => break copy,
        }
    };
    let mine = my_copies(state, user, Some(copy), Paging { page: 1, size: 1 }).await?;
    let item = mine.0.into_iter().next().ok_or(AppError::NotFound)?;
    json_answer(StatusCode::CREATED, &item)
}

enum ClaimError {
    Race,
    App(AppError),
}

impl From<AppError> for ClaimError {
    fn from(e: AppError) -> Self {
        ClaimError::App(e)
    }
}

impl From<StoreError> for ClaimError {
    fn from(e: StoreError) -> Self {
        ClaimError::App(e.into())
    }
}

async fn claim_once(state: &State, id: i64, user: i64) -> Result<i64, ClaimError> {
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let Some(taken) = tx.query_opt(TAKE_ONE, &[&id]).await.map_err(StoreError::from)? else {
        let why = tx
            .query_opt(WHY_NOT, &[&id])
            .await
            .map_err(StoreError::from)?
            .ok_or(AppError::NotFound)?;
        return Err(if why.get::<_, bool>(1) {
            AppError::conflict("coupon_expired", "this coupon can no longer be claimed")
        } else {
            AppError::conflict("coupon_sold_out", "every copy of this coupon has been claimed")
        }
        .into());
    };
    let per_user: i32 = taken.get(0);
    let inserted = match tx.query_opt(NEXT_COPY, &[&id, &user, &per_user]).await {
        Ok(row) => row,
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => return Err(ClaimError::Race),
        Err(e) => return Err(StoreError::from(e).into()),
    };
    let Some(row) = inserted else {
        return Err(AppError::conflict(
            "coupon_limit_reached",
            format!("you hold the most copies of this coupon one user may claim ({per_user})"),
        )
        .into());
    };
    tx.commit().await.map_err(StoreError::from)?;
    Ok(row.get(0))
}

/// A claimed copy as its owner sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimedCopy {
    /// What an order's `coupon_id` names.
    pub id: i64,
    pub coupon_id: i64,
    /// `unused`, `held` (by an unpaid order), `used` or `expired` (unused past valid_to).
    pub status: String,
    pub order_no: Option<String>,
    pub claimed_at: String,
    pub coupon: Coupon,
}

/// `user`'s copies (only `only`, when given), newest first, and how many there are.
pub async fn my_copies(
    state: &State,
    user: i64,
    only: Option<i64>,
    paging: Paging,
) -> Result<(Vec<ClaimedCopy>, i64), AppError> {
    let client = state.store.client().await?;
    let sql = format!(
        "SELECT m.id, m.coupon_id,
                CASE WHEN m.status = 'unused' AND c.valid_to <= now() THEN 'expired' ELSE m.status END,
                m.order_no, m.claimed_at, {COUPON_COLUMNS}
           FROM mall_user_coupons m JOIN mall_coupons c ON c.id = m.coupon_id
          WHERE m.user_id = $1 AND ($2::bigint IS NULL OR m.id = $2)
          ORDER BY m.id DESC LIMIT $3 OFFSET $4"
    );
    let rows = client
        .query(&sql, &[&user, &only, &paging.limit(), &paging.offset()])
        .await
        .map_err(StoreError::from)?;
    let total: i64 = client
        .query_one("SELECT count(*) FROM mall_user_coupons WHERE user_id = $1", &[&user])
        .await
        .map_err(StoreError::from)?
        .get(0);
    let items = rows
        .iter()
        .map(|r| ClaimedCopy {
            id: r.get(0),
            coupon_id: r.get(1),
            status: r.get(2),
            order_no: r.get(3),
            claimed_at: rfc3339(r.get(4)),
            coupon: coupon(r, 5),
        })
        .collect();
    Ok((items, total))
}

/// `GET /api/me/coupons?page=&size=`.
pub async fn mine(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    let paging = Paging::standard(parts.uri.query())?;
    let (items, total) = my_copies(state, principal.user_id, None, paging).await?;
    json_answer(StatusCode::OK, &paging.listing(total, items))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(kind: &str, value: Option<&str>, percent: Option<i64>) -> CreateBody {
        CreateBody {
            name: " 满100减10 ".into(),
            kind: kind.into(),
            value: value.map(str::to_string),
            percent,
            threshold: Some("100".into()),
            valid_from: "2030-01-01T00:00:00+08:00".into(),
            valid_to: "2030-02-01T00:00:00+08:00".into(),
            total: 100,
            per_user: 1,
        }
    }

    #[test]
    fn coupons_are_checked() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let made = check(body("amount_off", Some("10"), None), now).unwrap();
        assert_eq!(
            (made.name.as_str(), made.value_fen, made.threshold_fen),
            ("满100减10", Some(1000), 10000)
        );
        let made = check(body("percent_off", None, Some(15)), now).unwrap();
        assert_eq!((made.kind, made.percent), ("percent_off", Some(15)));
        let cases: Vec<(CreateBody, &str)> = vec![
            (body("half_off", None, Some(50)), "invalid_kind"),
            (body("amount_off", None, Some(5)), "invalid_kind"),
            (body("percent_off", Some("1"), None), "invalid_kind"),
            (body("percent_off", None, Some(100)), "invalid_percent"),
            (body("percent_off", None, Some(0)), "invalid_percent"),
            (body("amount_off", Some("0"), None), "invalid_value"),
            (
                CreateBody {
                    threshold: Some("-1".into()),
                    ..body("amount_off", Some("1"), None)
                },
                "invalid_threshold",
            ),
            (
                CreateBody {
                    valid_to: "2029-01-01T00:00:00Z".into(),
                    ..body("amount_off", Some("1"), None)
                },
                "invalid_window",
            ),
            (
                CreateBody {
                    valid_from: "yesterday".into(),
                    ..body("amount_off", Some("1"), None)
                },
                "invalid_window",
            ),
            (
                CreateBody {
                    total: 0,
                    ..body("amount_off", Some("1"), None)
                },
                "invalid_total",
            ),
            (
                CreateBody {
                    per_user: 101,
                    total: 1000,
                    ..body("amount_off", Some("1"), None)
                },
                "invalid_per_user",
            ),
            (
                CreateBody {
                    per_user: 2,
                    total: 1,
                    ..body("amount_off", Some("1"), None)
                },
                "invalid_per_user",
            ),
        ];
        for (input, code) in cases {
            assert_eq!(check(input, now).unwrap_err().code(), code);
        }
        let past =
            OffsetDateTime::parse("2031-01-01T00:00:00Z", &time::format_description::well_known::Rfc3339).unwrap();
        assert_eq!(
            check(body("amount_off", Some("1"), None), past).unwrap_err().code(),
            "invalid_window"
        );
    }
}
