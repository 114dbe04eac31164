//! What backers are owed once a project succeeded: the owner's list of backings (with the
//! addresses copied at create), `shipped` with a carrier and tracking number (the backer is
//! notified), `delivered` by the backer, or by the owner or an admin — and the settlement
//! job — once `crowdfunding.auto_deliver_days` passed since shipping.

use http::StatusCode;
use http::request::Parts;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use super::handlers::db;
use super::model::{self, Status};
use crate::account::{Principal, Role};
use crate::app::State;
use crate::error::AppError;
use crate::http::extract::{self, BodyKind};
use crate::http::list::Paging;
use crate::http::respond::{self, Response};
use crate::notify::{self, Actor, Kind, Notice, Target, TargetId};
use crate::pay::money::format_yuan;
use crate::pay::rfc3339;
use crate::store::Store;

const OWNER: &str = "SELECT owner_id, status FROM projects WHERE id = $1";

/// The project's owner and status, when `who` is its owner or an admin; else 404 (for a
/// public project: 403).
pub(super) async fn as_owner(
    client: &impl deadpool_postgres::GenericClient,
    who: &Principal,
    id: i64,
) -> Result<Status, AppError> {
    let row = client
        .query_opt(OWNER, &[&id])
        .await
        .map_err(db)?
        .ok_or(AppError::NotFound)?;
    let (owner_id, status): (i64, Status) = (row.get(0), row.try_get(1).map_err(db)?);
    if owner_id == who.user_id || who.role == Role::Admin {
        Ok(status)
    } else if status.is_public() {
        Err(AppError::Forbidden)
    } else {
        Err(AppError::NotFound)
    }
}

const BACKINGS: &str =
    "SELECT b.order_no, u.display_name, b.anonymous, b.amount_fen, p.refunded_fen, p.status, b.counted,
        r.title, b.shipping, b.ship_name, b.ship_phone, b.ship_region, b.ship_detail, b.carrier,
        b.tracking_no, b.shipped_at, b.delivered_at, p.paid_at, b.message, count(*) OVER ()
   FROM backings b JOIN payments p USING (order_no) JOIN users u ON u.id = b.user_id
   LEFT JOIN project_rewards r ON r.id = b.reward_id
  WHERE b.project_id = $1 AND ($2::text IS NULL OR b.shipping = $2) AND ($3 OR b.counted)
  ORDER BY b.created_at DESC, b.order_no DESC LIMIT $4 OFFSET $5";

/// `GET /api/projects/{id}/backings?shipping=pending|shipped|delivered&all=true`: the owner's
/// (or an admin's) view of the backings that count (all of them with `all=true`), with the
/// addresses to ship to.
pub async fn owner_backings(state: &State, parts: &Parts, id: i64) -> Result<Response, AppError> {
    let who = state.sessions.require(&state.store, parts, Role::User).await?;
    let query = parts.uri.query();
    let paging = Paging::standard(query)?;
    let shipping = match extract::query_param(query, "shipping")?.as_deref() {
        None | Some("") => None,
        Some(s @ ("pending" | "shipped" | "delivered")) => Some(s.to_string()),
        Some(_) => {
            return Err(AppError::invalid(
                "invalid_shipping",
                "shipping must be pending, shipped or delivered",
            ));
        }
    };
    let all = extract::query_param(query, "all")?.as_deref() == Some("true");
    let client = state.store.client().await?;
    as_owner(&client, &who, id).await?;
    let statement = client.prepare_cached(BACKINGS).await.map_err(db)?;
    let rows = client
        .query(&statement, &[&id, &shipping, &all, &paging.limit(), &paging.offset()])
        .await
        .map_err(db)?;
    let total = rows.first().map_or(0, |r| r.get::<_, i64>(19));
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let (amount, refunded): (i64, i64) = (r.get(3), r.get(4));
            let at = |i: usize| r.get::<_, Option<OffsetDateTime>>(i).map(rfc3339);
            let address = r.get::<_, Option<String>>(9).map(|name| {
                json!({"name": name, "phone": r.get::<_, Option<String>>(10),
                       "region": r.get::<_, Option<String>>(11), "detail": r.get::<_, Option<String>>(12)})
            });
            json!({
                "order_no": r.get::<_, String>(0),
                "backer": r.get::<_, String>(1), "anonymous": r.get::<_, bool>(2),
                "amount": format_yuan(amount), "amount_fen": amount,
                "refunded": format_yuan(refunded), "refunded_fen": refunded,
                "status": r.get::<_, String>(5), "counted": r.get::<_, bool>(6),
                "reward": r.get::<_, Option<String>>(7),
                "shipping": r.get::<_, Option<String>>(8),
                "address": address,
                "carrier": r.get::<_, Option<String>>(13), "tracking_no": r.get::<_, Option<String>>(14),
                "shipped_at": at(15), "delivered_at": at(16), "paid_at": at(17),
                "message": r.get::<_, String>(18),
            })
        })
        .collect();
    let body = serde_json::to_string(&paging.listing(total, items)).map_err(|e| AppError::Internal(e.into()))?;
    Ok(respond::json(StatusCode::OK, body))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "BackingShip")]
pub(crate) struct ShipBody {
    carrier: Option<String>,
    tracking_no: Option<String>,
}

/// A backing may ship once its project succeeded, while it counts and is not all refunded;
/// shipping again corrects the carrier or tracking number.
const SHIP: &str = "UPDATE backings b SET shipping = 'shipped', carrier = $3, tracking_no = $4,
        shipped_at = COALESCE(CASE WHEN b.shipping = 'shipped' THEN b.shipped_at END, now())
   FROM payments p
  WHERE b.order_no = $2 AND b.project_id = $1 AND p.order_no = b.order_no
    AND b.counted AND b.shipping IN ('pending', 'shipped') AND p.refunded_fen < b.amount_fen
  RETURNING b.user_id";

/// `POST /api/projects/{id}/backings/{order_no}/ship` `{"carrier","tracking_no"}`: the owner
/// or an admin; the backer is notified.
pub async fn ship(state: &State, parts: &Parts, id: i64, order_no: &str, body: &[u8]) -> Result<Response, AppError> {
    let who = state.sessions.require(&state.store, parts, Role::User).await?;
    extract::body_kind(&parts.headers, &[BodyKind::Json])?;
    let input: ShipBody = extract::json(body)?;
    let carrier = model::text(input.carrier.as_deref(), 1, 40, false, "invalid_carrier", "carrier")?;
    let tracking = model::text(
        input.tracking_no.as_deref(),
        1,
        64,
        false,
        "invalid_tracking_no",
        "tracking_no",
    )?;
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(db)?;
    let status = as_owner(&tx, &who, id).await?;
    if status != Status::Succeeded {
        return Err(AppError::conflict(
            "project_not_succeeded",
            "rewards ship once the project succeeded",
        ));
    }
    let backer: i64 = match tx
        .query_opt(SHIP, &[&id, &order_no, &carrier, &tracking])
        .await
        .map_err(db)?
    {
        Some(row) => row.get(0),
        None => return Err(not_shippable(&tx, id, order_no).await?),
    };
    let text = notify::bilingual(
        &format!("你支持的回报已发货：{carrier} {tracking}"),
        &format!("Your reward shipped: {carrier} {tracking}"),
    );
    let notice = Notice {
        recipient_id: backer,
        kind: Kind::OrderShipped,
        actor: Actor::User(who.user_id),
        target: Target {
            kind: "backing",
            id: TargetId::Key(order_no),
        },
        text: &text,
        dedupe_key: None,
    };
    notify::notify(&tx, &notice).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(respond::json(
        StatusCode::OK,
        json!({"order_no": order_no, "shipping": "shipped", "carrier": carrier, "tracking_no": tracking}).to_string(),
    ))
}

/// Why a backing of project `id` cannot ship: unknown (404) or not in a state to (409).
async fn not_shippable(
    client: &impl deadpool_postgres::GenericClient,
    id: i64,
    order_no: &str,
) -> Result<AppError, AppError> {
    let known = client
        .query_opt(
            "SELECT shipping FROM backings WHERE order_no = $1 AND project_id = $2",
            &[&order_no, &id],
        )
        .await
        .map_err(db)?;
    Ok(match known {
        None => AppError::NotFound,
        Some(row) => match row.get::<_, Option<String>>(0).as_deref() {
            None => AppError::conflict("nothing_to_ship", "this backing has no reward that ships"),
            Some("delivered") => AppError::conflict("already_delivered", "this backing was delivered"),
            _ => AppError::conflict("not_shippable", "this backing does not count (unpaid or refunded)"),
        },
    })
}

const BACKING_STATE: &str = "SELECT b.user_id, b.shipping, b.shipped_at, pr.owner_id
   FROM backings b JOIN projects pr ON pr.id = b.project_id WHERE b.order_no = $1 AND b.project_id = $2
   FOR UPDATE OF b";

const DELIVER: &str = "UPDATE backings SET shipping = 'delivered', delivered_at = now(), delivered_by = $2
  WHERE order_no = $1 AND shipping = 'shipped'";

/// `POST /api/projects/{id}/backings/{order_no}/deliver`: the backer once shipped; the owner
/// or an admin after `crowdfunding.auto_deliver_days`. Someone else's backing is 404.
pub async fn deliver(state: &State, parts: &Parts, id: i64, order_no: &str) -> Result<Response, AppError> {
    let who = state.sessions.require(&state.store, parts, Role::User).await?;
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(db)?;
    let row = tx
        .query_opt(BACKING_STATE, &[&order_no, &id])
        .await
        .map_err(db)?
        .ok_or(AppError::NotFound)?;
    let (backer, shipping, shipped_at, owner): (i64, Option<String>, Option<OffsetDateTime>, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let by = if who.user_id == backer {
        "backer"
    } else if who.user_id == owner {
        "owner"
    } else if who.role == Role::Admin {
        "admin"
    } else {
        return Err(AppError::NotFound);
    };
    if shipping.as_deref() != Some("shipped") {
        return Err(AppError::conflict(
            "not_shipped",
            "only a shipped reward can be delivered",
        ));
    }
    let days = i64::from(state.config.settings.crowdfunding.auto_deliver_days);
    let due = shipped_at.is_some_and(|at| at + time::Duration::days(days) <= OffsetDateTime::now_utc());
    if by != "backer" && !due {
        return Err(AppError::conflict(
            "too_early",
            format!("the backer confirms delivery; the owner may after {days} days from shipping"),
        ));
    }
    tx.execute(DELIVER, &[&order_no, &by]).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(respond::json(
        StatusCode::OK,
        json!({"order_no": order_no, "shipping": "delivered", "delivered_by": by}).to_string(),
    ))
}

const AUTO_DELIVER: &str = "UPDATE backings SET shipping = 'delivered', delivered_at = now(), delivered_by = 'auto'
  WHERE shipping = 'shipped' AND shipped_at <= now() - make_interval(days => $1)";

/// Marks delivered every reward shipped more than `days` ago; how many.
pub async fn auto_deliver(store: &Store, days: u32) -> Result<u64, crate::store::StoreError> {
    let client = store.job_client().await?;
    let days = i32::try_from(days).unwrap_or(i32::MAX);
    Ok(client.execute(AUTO_DELIVER, &[&days]).await?)
}
