//! `POST /api/donations` (contract: "Donor-facing HTTP API"): validate, then the engine
//! creates the QR order at the provider and stores payment + event + donation in one
//! statement (`Engine::create`, the donation's row from `donate::purpose`). A JSON body
//! answers 201 with the order; a form post answers 303 to the pay page. An `Idempotency-Key`
//! makes it once per key (`http::idempotent`).

use std::net::IpAddr;

use http::StatusCode;
use http::request::Parts;

use super::catalog::Catalog;
use crate::error::AppError;
use crate::http::extract::{self, BodyKind};
use crate::http::idempotent;
use crate::http::respond::{self, Response};
use crate::pay::create::{Created, Order};
use crate::pay::engine::{Engine, EngineError};
use crate::pay::money::{self, format_yuan};
use crate::pay::provider::Channel;
use crate::store::StoreError;

/// Longest donor name and message, in characters.
const MAX_NAME: usize = 32;
const MAX_MESSAGE: usize = 200;

/// A donation request, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Donation {
    pub amount_fen: i64,
    pub channel: Channel,
    pub category_id: i64,
    pub donor_name: String,
    pub message: String,
    pub anonymous: bool,
}

/// The fields as they arrived, before validation.
#[derive(Debug, Default)]
struct Fields {
    amount: Option<String>,
    channel: Option<String>,
    category_id: Option<String>,
    donor_name: Option<String>,
    message: Option<String>,
    anonymous: Option<bool>,
}

fn from_json(body: &[u8]) -> Result<Fields, AppError> {
    let value: serde_json::Value = extract::json(body)?;
    let serde_json::Value::Object(map) = value else {
        return Err(AppError::Malformed("the body must be a JSON object".into()));
    };
    let mut fields = Fields::default();
    for (key, value) in map {
        let text = || match &value {
            serde_json::Value::String(s) => Ok(Some(s.clone())),
            serde_json::Value::Null => Ok(None),
            _ => Err(AppError::invalid(field_code(&key), format!("{key} must be a string"))),
        };
        match key.as_str() {
            "amount" => {
                fields.amount = match &value {
                    serde_json::Value::String(s) => Some(s.clone()),
                    _ => {
                        return Err(AppError::invalid(
                            "invalid_amount",
                            "amount must be a yuan string such as \"12.34\"",
                        ));
                    }
                }
            }
            "channel" => fields.channel = text()?,
            "category_id" => {
                fields.category_id = match &value {
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    serde_json::Value::String(s) => Some(s.clone()),
                    _ => return Err(AppError::invalid("invalid_category", "category_id must be a number")),
                }
            }
            "donor_name" => fields.donor_name = text()?,
            "message" => fields.message = text()?,
            "anonymous" => {
                fields.anonymous = match value {
                    serde_json::Value::Bool(b) => Some(b),
                    serde_json::Value::Null => None,
                    _ => {
                        return Err(AppError::invalid(
                            "invalid_anonymous",
                            "anonymous must be true or false",
                        ));
                    }
                }
            }
            other => return Err(AppError::Malformed(format!("unknown field {other:?}").into())),
        }
    }
    Ok(fields)
}

fn field_code(key: &str) -> &'static str {
    match key {
        "channel" => "invalid_channel",
        "donor_name" => "invalid_donor_name",
        "message" => "invalid_message",
        _ => "invalid_field",
    }
}

fn from_form(body: &[u8]) -> Result<Fields, AppError> {
    let mut fields = Fields::default();
    for (key, value) in extract::pairs(body)? {
        match key.as_str() {
            "amount" => fields.amount = Some(value),
            "channel" => fields.channel = Some(value),
            "category_id" => fields.category_id = Some(value),
            "donor_name" => fields.donor_name = Some(value),
            "message" => fields.message = Some(value),
            "anonymous" => fields.anonymous = Some(matches!(value.as_str(), "on" | "true" | "1" | "yes")),
            // Browsers send submit buttons and the like: ignore what we do not know.
            _ => {}
        }
    }
    Ok(fields)
}

/// Free text: trimmed, at most `max` characters, no control characters (newlines allowed
/// where `multiline`).
fn text_field(
    value: Option<String>,
    max: usize,
    multiline: bool,
    code: &'static str,
    name: &str,
) -> Result<String, AppError> {
    let value = value.unwrap_or_default();
    let value = value.trim();
    if value.chars().count() > max {
        return Err(AppError::invalid(
            code,
            format!("{name} must be at most {max} characters"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\r')))
    {
        return Err(AppError::invalid(
            code,
            format!("{name} must not contain control characters"),
        ));
    }
    Ok(value.to_string())
}

fn validate(
    fields: Fields,
    min_fen: i64,
    max_fen: i64,
    catalog_has: impl Fn(i64) -> bool,
) -> Result<Donation, AppError> {
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
    let category_id = fields
        .category_id
        .as_deref()
        .and_then(|c| c.trim().parse::<i64>().ok())
        .filter(|id| *id > 0 && catalog_has(*id))
        .ok_or_else(|| AppError::invalid("invalid_category", "category_id must be an open donation category"))?;
    Ok(Donation {
        amount_fen,
        channel,
        category_id,
        donor_name: text_field(fields.donor_name, MAX_NAME, false, "invalid_donor_name", "donor_name")?,
        message: text_field(fields.message, MAX_MESSAGE, true, "invalid_message", "message")?,
        anonymous: fields.anonymous.unwrap_or(false),
    })
}

/// Reads and validates a donation `body` of `kind` as [`create`] does (fields first, then the
/// rules); `catalog_has` says which categories are open.
pub fn parse(
    kind: BodyKind,
    body: &[u8],
    min_fen: i64,
    max_fen: i64,
    catalog_has: impl Fn(i64) -> bool,
) -> Result<Donation, AppError> {
    let fields = match kind {
        BodyKind::Json => from_json(body)?,
        BodyKind::Form => from_form(body)?,
    };
    validate(fields, min_fen, max_fen, catalog_has)
}

/// Handles `POST /api/donations` with its already-read `body`; `user_id` is the signed-in
/// donor, if any, and `ip` the client's address. With an `Idempotency-Key` the donation is
/// made once per key (per signed-in donor, else per client address) and the first answer is
/// replayed.
pub async fn create(
    engine: &Engine,
    catalog: &Catalog,
    parts: &Parts,
    body: &[u8],
    user_id: Option<i64>,
    ip: IpAddr,
) -> Result<Response, AppError> {
    let caller = match user_id {
        Some(id) => format!("u:{id}"),
        None => format!("ip:{ip}"),
    };
    let lock = engine.idempotency_lock();
    idempotent::run(&engine.keys, &engine.store, parts, body, &caller, lock, |order_no| {
        create_once(engine, catalog, parts, body, user_id, order_no)
    })
    .await
}

/// Validates, creates the provider order as `order_no` (an idempotent request's number, or a
/// new one), stores it and answers. An order already stored under `order_no` (its request
/// died before its answer was kept) is answered as it stands.
async fn create_once(
    engine: &Engine,
    catalog: &Catalog,
    parts: &Parts,
    body: &[u8],
    user_id: Option<i64>,
    order_no: Option<String>,
) -> Result<Response, AppError> {
    let policy = engine.policy.current();
    let (min_fen, max_fen) = (policy.min_amount_fen, policy.max_amount_fen);
    let kind = extract::body_kind(&parts.headers, &[BodyKind::Json, BodyKind::Form])?;
    let fields = match kind {
        BodyKind::Json => from_json(body)?,
        BodyKind::Form => from_form(body)?,
    };
    let snapshot = crate::store::bounded(catalog.snapshot(&engine.store)).await?;
    let donation = validate(fields, min_fen, max_fen, |id| {
        snapshot.categories.iter().any(|c| c.id == id)
    })?;
    let category = snapshot
        .categories
        .iter()
        .find(|c| c.id == donation.category_id)
        .map(|c| c.name.as_str())
        .unwrap_or_default();
    let description = format!("捐赠 · {category}");
    let order = Order {
        purpose: super::purpose::NAME,
        channel: donation.channel,
        amount_fen: donation.amount_fen,
        description: &description,
        order_no,
    };
    let row: [&(dyn tokio_postgres::types::ToSql + Sync); 5] = [
        &donation.category_id,
        &donation.donor_name,
        &donation.message,
        &donation.anonymous,
        &user_id,
    ];
    let created = engine.create(order, &row).await.map_err(|e| match e {
        EngineError::Store(StoreError::Db(db))
            if db.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) =>
        {
            AppError::invalid("invalid_category", "category_id must be an open donation category")
        }
        other => AppError::from(other),
    })?;
    Ok(answer(kind, &created))
}

/// The created order: JSON (201), or for a form post a 303 to its pay page.
fn answer(kind: BodyKind, created: &Created) -> Response {
    if kind == BodyKind::Form {
        return respond::see_other(&created.pay_url());
    }
    respond::json(StatusCode::CREATED, created.json().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(amount: &str) -> Fields {
        Fields {
            amount: Some(amount.into()),
            channel: Some("wechat".into()),
            category_id: Some("1".into()),
            ..Fields::default()
        }
    }

    fn code(result: Result<Donation, AppError>) -> &'static str {
        result.unwrap_err().code()
    }

    #[test]
    fn a_valid_donation_is_accepted_in_fen() {
        let d = validate(fields("12.34"), 1, 5_000_000, |id| id == 1).unwrap();
        assert_eq!(d.amount_fen, 1234);
        assert_eq!(d.channel, Channel::Wechat);
        assert!(!d.anonymous);
    }

    #[test]
    fn amounts_outside_the_bounds_or_malformed_are_invalid_amount() {
        for bad in [
            "0",
            "0.00",
            "50000.01",
            "1e3",
            "-1",
            "1.234",
            "",
            "99999999999999999999",
        ] {
            assert_eq!(
                code(validate(fields(bad), 1, 5_000_000, |_| true)),
                "invalid_amount",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn channel_category_and_texts_are_checked() {
        let mut f = fields("1");
        f.channel = Some("paypal".into());
        assert_eq!(code(validate(f, 1, 100, |_| true)), "invalid_channel");
        assert_eq!(code(validate(fields("1"), 1, 100, |_| false)), "invalid_category");
        let mut f = fields("1");
        f.donor_name = Some("名".repeat(33));
        assert_eq!(code(validate(f, 1, 100, |_| true)), "invalid_donor_name");
        let mut f = fields("1");
        f.donor_name = Some("  名字\u{0}  ".into());
        assert_eq!(code(validate(f, 1, 100, |_| true)), "invalid_donor_name");
        let mut f = fields("1");
        f.message = Some("第一行\n第二行".into());
        f.donor_name = Some(format!("  {}  ", "名".repeat(32)));
        let d = validate(f, 1, 100, |_| true).unwrap();
        assert_eq!(d.donor_name.chars().count(), 32, "trimmed before counting");
        assert_eq!(d.message, "第一行\n第二行");
    }

    #[test]
    fn json_refuses_numbers_for_amount_and_unknown_fields() {
        assert_eq!(from_json(br#"{"amount": 12.34}"#).unwrap_err().code(), "invalid_amount");
        assert_eq!(
            from_json(br#"{"amount": "1", "evil": 1}"#).unwrap_err().code(),
            "malformed_request"
        );
        assert_eq!(from_json(b"[1]").unwrap_err().code(), "malformed_request");
        let f = from_json(br#"{"amount":"1","channel":"alipay","category_id":1,"anonymous":true}"#).unwrap();
        assert_eq!(f.category_id.as_deref(), Some("1"));
        assert_eq!(f.anonymous, Some(true));
    }
}
