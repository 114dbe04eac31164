//! `POST /api/projects/{id}/backings` (contract: "Crowdfunding"): a backing is a purchase on
//! the payment engine (purpose `backing`). The body is checked first (a 4xx writes nothing);
//! then, in the one transaction the engine's `begin` opens, the project is held live (`FOR
//! SHARE`, so the settlement cannot end it under the create), a reward unit reserved by a
//! conditional UPDATE (never over-sold: the row lock serializes creates, and the table's
//! CHECK stands behind it), the backing written with the address it ships to; `submit`
//! commits and makes the provider order. With an `Idempotency-Key` the backing is made once
//! per key and user.

use deadpool_postgres::GenericClient;
use http::StatusCode;
use http::request::Parts;
use serde_json::{Value, json};
use tokio_postgres::types::ToSql;

use super::handlers::db;
use super::projects::changed_payload;
use crate::account::addresses::Address;
use crate::account::{Principal, Role};
use crate::app::State;
use crate::error::AppError;
use crate::http::extract::{self, BodyKind};
use crate::http::idempotent;
use crate::http::respond::{self, Response};
use crate::pay::create::{Created, Order, Purchase};
use crate::pay::money::{self, format_yuan};
use crate::pay::provider::Channel;

/// `payments.purpose` of a backing.
pub const NAME: &str = "backing";

/// Most characters of a backer's message.
const MAX_MESSAGE: usize = 200;

/// A backing as asked for, its fields checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    pub amount_fen: i64,
    pub channel: Channel,
    pub reward_id: Option<i64>,
    pub address_id: Option<i64>,
    pub message: String,
    pub anonymous: bool,
}

/// The body's fields as text (JSON strings, numbers and booleans, or form fields).
#[derive(Debug, Default)]
struct Fields {
    amount: Option<String>,
    channel: Option<String>,
    reward_id: Option<String>,
    address_id: Option<String>,
    message: Option<String>,
    anonymous: Option<bool>,
}

fn from_json(body: &[u8]) -> Result<Fields, AppError> {
    let Value::Object(map) = extract::json::<Value>(body)? else {
        return Err(AppError::Malformed("the body must be a JSON object".into()));
    };
    let mut fields = Fields::default();
    for (key, value) in map {
        let bad = |code: &'static str, what: &str| AppError::invalid(code, format!("{key} must be {what}"));
        let id = |code| match &value {
            Value::Null => Ok(None),
            Value::Number(n) => Ok(Some(n.to_string())),
            _ => Err(bad(code, "a number or null")),
        };
        match key.as_str() {
            "amount" => match &value {
                Value::String(s) => fields.amount = Some(s.clone()),
                _ => return Err(bad("invalid_amount", "a yuan string such as \"12.34\"")),
            },
            "channel" => match &value {
                Value::String(s) => fields.channel = Some(s.clone()),
                _ => return Err(bad("invalid_channel", "wechat or alipay")),
            },
            "reward_id" => fields.reward_id = id("invalid_reward")?,
            "address_id" => fields.address_id = id("invalid_address")?,
            "message" => match &value {
                Value::String(s) => fields.message = Some(s.clone()),
                Value::Null => {}
                _ => return Err(bad("invalid_message", "a string")),
            },
            "anonymous" => match &value {
                Value::Bool(b) => fields.anonymous = Some(*b),
                Value::Null => {}
                _ => return Err(bad("invalid_anonymous", "true or false")),
            },
            _ => {
                return Err(AppError::invalid(
                    "unknown_field",
                    format!("unknown field {key}: amount, channel, reward_id, address_id, message, anonymous"),
                ));
            }
        }
    }
    Ok(fields)
}

fn from_form(body: &[u8]) -> Result<Fields, AppError> {
    let mut fields = Fields::default();
    for (key, value) in extract::pairs(body)? {
        let value = Some(value).filter(|v| !v.trim().is_empty());
        match key.as_str() {
            "amount" => fields.amount = value,
            "channel" => fields.channel = value,
            "reward_id" => fields.reward_id = value,
            "address_id" => fields.address_id = value,
            "message" => fields.message = value,
            "anonymous" => {
                fields.anonymous = Some(matches!(value.as_deref(), Some("on" | "true" | "1" | "yes")));
            }
            // Browsers send submit buttons and the like.
            _ => {}
        }
    }
    Ok(fields)
}

/// Reads `body` of `kind` and checks its fields against the amount bounds `min..=max` fen.
pub fn parse(kind: BodyKind, body: &[u8], min_fen: i64, max_fen: i64) -> Result<Ask, AppError> {
    let fields = match kind {
        BodyKind::Json => from_json(body)?,
        BodyKind::Form => from_form(body)?,
    };
    let bounds = || {
        format!(
            "amount must be between {} and {}",
            format_yuan(min_fen),
            format_yuan(max_fen)
        )
    };
    let amount = fields
        .amount
        .ok_or_else(|| AppError::invalid("invalid_amount", "amount is required, e.g. \"12.34\""))?;
    let amount_fen = match money::parse_yuan(amount.trim()) {
        Ok(fen) if (min_fen..=max_fen).contains(&fen) => fen,
        Ok(_) | Err(money::MoneyError::Overflow) => return Err(AppError::invalid("invalid_amount", bounds())),
        Err(_) => {
            return Err(AppError::invalid(
                "invalid_amount",
                "amount must be a yuan string with at most two decimals, e.g. \"12.34\"",
            ));
        }
    };
    let channel = fields
        .channel
        .as_deref()
        .and_then(Channel::parse)
        .ok_or_else(|| AppError::invalid("invalid_channel", "channel must be wechat or alipay"))?;
    let id = |text: Option<String>, code: &'static str, name: &str| match text {
        None => Ok(None),
        Some(t) => match t.trim().parse::<i64>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(AppError::invalid(code, format!("{name} must be a positive number"))),
        },
    };
    Ok(Ask {
        amount_fen,
        channel,
        reward_id: id(fields.reward_id, "invalid_reward", "reward_id")?,
        address_id: id(fields.address_id, "invalid_address", "address_id")?,
        message: super::model::text(
            fields.message.as_deref(),
            0,
            MAX_MESSAGE,
            true,
            "invalid_message",
            "message",
        )?,
        anonymous: fields.anonymous.unwrap_or(false),
    })
}

/// `POST /api/projects/{id}/backings`: signed in; JSON (→ `201`) or a form (→ `303` to the
/// pay page).
pub async fn back(state: &State, parts: &Parts, id: i64, body: &[u8]) -> Result<Response, AppError> {
    let who = state.sessions.require(&state.store, parts, Role::User).await?;
    let engine = &state.engine;
    let caller = format!("u:{}", who.user_id);
    let lock = engine.idempotency_lock();
    idempotent::run(&engine.keys, &engine.store, parts, body, &caller, lock, |order_no| {
        back_once(state, parts, &who, id, body, order_no)
    })
    .await
}

/// The project, the reward named (if it is the project's) and the address named (if it is
/// the backer's), in one read: `$1` project, `$2` reward, `$3` address, `$4` backer.
const PROJECT: &str = "SELECT p.title, p.status, p.deadline > now(), r.title, r.min_amount_fen, r.ships,
        a.name, a.phone, a.region, a.detail
   FROM projects p
   LEFT JOIN project_rewards r ON r.id = $2 AND r.project_id = p.id
   LEFT JOIN addresses a ON a.id = $3 AND a.user_id = $4
  WHERE p.id = $1";

/// What the create checked before its transaction: the project's title and the reward.
struct Checked {
    title: String,
    reward: Option<(i64, String)>,
    address: Option<Address>,
}

/// The project is open, the reward is the project's and the amount reaches it, a reward
/// that ships has one of the backer's addresses: read before the transaction (one
/// statement), so a refusal writes nothing (the transaction checks the project and the
/// units again).
async fn check(state: &State, who: &Principal, id: i64, ask: &Ask) -> Result<Checked, AppError> {
    let client = state.store.client().await?;
    let statement = client.prepare_cached(PROJECT).await.map_err(db)?;
    // The address matters only for a reward that ships.
    let address_id = ask.address_id.filter(|_| ask.reward_id.is_some());
    let row = client
        .query_opt(&statement, &[&id, &ask.reward_id, &address_id, &who.user_id])
        .await
        .map_err(db)?
        .ok_or(AppError::NotFound)?;
    let (title, status, open): (String, String, bool) = (row.get(0), row.get(1), row.get(2));
    if !matches!(status.as_str(), "live" | "succeeded" | "failed") {
        return Err(AppError::NotFound);
    }
    if status != "live" || !open {
        return Err(not_live());
    }
    let mut checked = Checked {
        title,
        reward: None,
        address: None,
    };
    let Some(reward_id) = ask.reward_id else {
        return Ok(checked);
    };
    let reward_title: String = row
        .get::<_, Option<String>>(3)
        .ok_or_else(|| AppError::invalid("invalid_reward", "reward_id is not a reward of this project"))?;
    let (min_fen, ships): (i64, bool) = (row.get(4), row.get(5));
    if ask.amount_fen < min_fen {
        return Err(AppError::invalid(
            "amount_below_reward",
            format!("this reward needs at least {}", format_yuan(min_fen)),
        ));
    }
    checked.reward = Some((reward_id, reward_title));
    if ships {
        if ask.address_id.is_none() {
            return Err(AppError::invalid(
                "address_required",
                "this reward ships: address_id must name one of your addresses",
            ));
        }
        let name: String = row
            .get::<_, Option<String>>(6)
            .ok_or_else(|| AppError::invalid("invalid_address", "address_id is not one of your addresses"))?;
        checked.address = Some(Address {
            name,
            phone: row.get(7),
            region: row.get(8),
            detail: row.get(9),
        });
    }
    Ok(checked)
}

fn not_live() -> AppError {
    AppError::conflict("project_not_live", "this project no longer takes backing")
}

async fn back_once(
    state: &State,
    parts: &Parts,
    who: &Principal,
    id: i64,
    body: &[u8],
    order_no: Option<String>,
) -> Result<Response, AppError> {
    let kind = extract::body_kind(&parts.headers, &[BodyKind::Json, BodyKind::Form])?;
    let policy = state.engine.policy.current();
    let ask = parse(kind, body, policy.min_amount_fen, policy.max_amount_fen)?;
    let checked = check(state, who, id, &ask).await?;
    let description = format!("众筹 · {}", checked.title);
    let order = Order {
        purpose: NAME,
        channel: ask.channel,
        amount_fen: ask.amount_fen,
        description: &description,
        order_no,
    };
    let client = state.store.client().await?;
    let purchase = state.engine.open(client, order).await?;
    let created = if reserve(state, &purchase, who.user_id, id, &ask, &checked).await? {
        state.engine.submit(purchase).await?
    } else {
        state.engine.taken(purchase).await?
    };
    answer(state, kind, &created).await
}

/// The create's own rows in one statement, sent behind the payment's insert in the
/// purchase's transaction: the project held live (`FOR SHARE`: the settlement takes it `FOR
/// UPDATE`), then one unit more held if the reward's quantity allows it, then the backing
/// with the address it ships to, and for a reward the project event (a unit fewer left, on
/// every instance) — each only when what comes before it held. `$1` order_no, `$2` project,
/// `$3` backer, `$4` reward, `$5` amount, `$6` message, `$7` anonymous, `$8…$11` the
/// address, `$12`/`$13` the event bus channel and the event.
const RESERVE: &str = "WITH live AS MATERIALIZED (
        SELECT 1 FROM projects WHERE id = $2 AND status = 'live' AND deadline > now() FOR SHARE),
     unit AS (
        UPDATE project_rewards SET reserved = reserved + 1
         WHERE id = $4 AND project_id = $2 AND (quantity IS NULL OR reserved + taken < quantity)
           AND EXISTS (SELECT 1 FROM live)
        RETURNING 1),
     made AS (
        INSERT INTO backings (order_no, project_id, user_id, reward_id, amount_fen, message, anonymous,
               unit, ship_name, ship_phone, ship_region, ship_detail, shipping)
        SELECT $1, $2, $3, $4, $5, $6, $7, CASE WHEN $4::bigint IS NULL THEN NULL ELSE 'reserved' END,
               $8, $9, $10, $11, CASE WHEN $8::text IS NULL THEN NULL ELSE 'pending' END
         WHERE EXISTS (SELECT 1 FROM live) AND ($4::bigint IS NULL OR EXISTS (SELECT 1 FROM unit))
        RETURNING 1),
     told AS MATERIALIZED (
        SELECT pg_notify($12, $13) FROM made WHERE $4::bigint IS NOT NULL)
SELECT EXISTS (SELECT 1 FROM live), (SELECT count(*) FROM unit), (SELECT count(*) FROM made),
       (SELECT count(*) FROM told)";

/// Begins the purchase with the create's own rows ([`RESERVE`]) in its transaction, in one
/// round trip with `BEGIN` and the payment: any refusal rolls the payment back too.
/// `Ok(false)`: the order number was taken.
async fn reserve(
    state: &State,
    purchase: &Purchase,
    user_id: i64,
    id: i64,
    ask: &Ask,
    checked: &Checked,
) -> Result<bool, AppError> {
    let tx = purchase.tx();
    let statement = tx.prepare_cached(RESERVE).await.map_err(db)?;
    let reward_id = checked.reward.as_ref().map(|(reward_id, _)| *reward_id);
    let address = checked.address.as_ref();
    let event = changed_payload(id);
    let order_no = purchase.order_no();
    let params: [&(dyn ToSql + Sync); 13] = [
        &order_no,
        &id,
        &user_id,
        &reward_id,
        &ask.amount_fen,
        &ask.message,
        &ask.anonymous,
        &address.map(|a| a.name.as_str()),
        &address.map(|a| a.phone.as_str()),
        &address.map(|a| a.region.as_str()),
        &address.map(|a| a.detail.as_str()),
        &crate::store::events::CHANNEL,
        &event,
    ];
    let (started, reserved) = tokio::join!(biased; state.engine.start(purchase), tx.query_one(&statement, &params));
    if !started? {
        // The rows ran in a transaction that is rolled back: what they did is moot.
        return Ok(false);
    }
    let row = reserved.map_err(db)?;
    let (live, units, made, told): (bool, i64, i64, i64) = (row.get(0), row.get(1), row.get(2), row.get(3));
    if !live {
        return Err(not_live());
    }
    if reward_id.is_some() && units != 1 {
        return Err(AppError::conflict(
            "reward_sold_out",
            "every unit of this reward is taken or held by a payment in progress",
        ));
    }
    let told_expected = i64::from(reward_id.is_some());
    if made != 1 || told != told_expected {
        return Err(AppError::Internal(anyhow::anyhow!(
            "a backing written as {made} rows and {told} events"
        )));
    }
    Ok(true)
}

const BACKING: &str = "SELECT b.project_id, b.reward_id, r.title, b.amount_fen, b.message, b.anonymous, b.shipping
   FROM backings b LEFT JOIN project_rewards r ON r.id = b.reward_id WHERE b.order_no = $1";

/// The created backing with its payment: `201` JSON, or for a form a `303` to the pay page.
async fn answer(state: &State, kind: BodyKind, created: &Created) -> Result<Response, AppError> {
    if kind == BodyKind::Form {
        return Ok(respond::see_other(&created.pay_url()));
    }
    let client = state.store.client().await?;
    let statement = client.prepare_cached(BACKING).await.map_err(db)?;
    let row = client
        .query_opt(&statement, &[&created.order_no])
        .await
        .map_err(db)?
        .ok_or(AppError::NotFound)?;
    let amount: i64 = row.get(3);
    let backing = json!({
        "order_no": created.order_no,
        "project_id": row.get::<_, i64>(0),
        "reward_id": row.get::<_, Option<i64>>(1),
        "reward": row.get::<_, Option<String>>(2),
        "amount": format_yuan(amount),
        "amount_fen": amount,
        "message": row.get::<_, String>(4),
        "anonymous": row.get::<_, bool>(5),
        "shipping": row.get::<_, Option<String>>(6),
        "status": created.status.as_str(),
    });
    let body = json!({"backing": backing, "payment": created.json()});
    Ok(respond::json(StatusCode::CREATED, body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(body: Value) -> Result<Ask, AppError> {
        parse(BodyKind::Json, body.to_string().as_bytes(), 1, 5_000_000)
    }

    fn code(result: Result<Ask, AppError>) -> &'static str {
        result.unwrap_err().code()
    }

    #[test]
    fn a_backing_body_is_read_in_fen_from_json_or_a_form() {
        let ask = json(
            json!({"amount": "12.34", "channel": "wechat", "reward_id": 7, "address_id": null,
                              "message": " hi ", "anonymous": true}),
        )
        .unwrap();
        assert_eq!(
            ask,
            Ask {
                amount_fen: 1234,
                channel: Channel::Wechat,
                reward_id: Some(7),
                address_id: None,
                message: "hi".into(),
                anonymous: true
            }
        );
        let form = parse(
            BodyKind::Form,
            b"amount=5&channel=alipay&reward_id=&address_id=3&anonymous=on&go=",
            1,
            5_000_000,
        )
        .unwrap();
        assert_eq!((form.amount_fen, form.reward_id, form.address_id), (500, None, Some(3)));
        assert!(form.anonymous);
    }

    #[test]
    fn bad_fields_are_refused_by_name() {
        assert_eq!(code(json(json!({"channel": "wechat"}))), "invalid_amount");
        assert_eq!(code(json(json!({"amount": 12, "channel": "wechat"}))), "invalid_amount");
        assert_eq!(
            code(json(json!({"amount": "0.001", "channel": "wechat"}))),
            "invalid_amount"
        );
        assert_eq!(
            code(json(json!({"amount": "50000.01", "channel": "wechat"}))),
            "invalid_amount"
        );
        assert_eq!(
            code(json(json!({"amount": "1", "channel": "paypal"}))),
            "invalid_channel"
        );
        assert_eq!(
            code(json(json!({"amount": "1", "channel": "wechat", "reward_id": "x"}))),
            "invalid_reward"
        );
        assert_eq!(
            code(json(json!({"amount": "1", "channel": "wechat", "reward_id": -1}))),
            "invalid_reward"
        );
        assert_eq!(
            code(json(
                json!({"amount": "1", "channel": "wechat", "message": "x".repeat(201)})
            )),
            "invalid_message"
        );
        assert_eq!(
            code(json(json!({"amount": "1", "channel": "wechat", "tip": 1}))),
            "unknown_field"
        );
    }
}
