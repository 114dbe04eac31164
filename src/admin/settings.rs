//! Payment settings: the configured values, the overrides stored in `payment_settings` and
//! the effective result. A change is validated against the effective result, written with
//! its audit row in one transaction (which also tells every instance), and put in force
//! here before answering.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Actor, ok_json};
use crate::app::State;
use crate::error::AppError;
use crate::http::respond::Response;
use crate::pay::money::{format_yuan, parse_yuan};
use crate::pay::policy::{Overrides, PaymentPolicy};
use crate::store::StoreError;

/// A policy as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyView {
    pub wechat_enabled: bool,
    pub alipay_enabled: bool,
    pub min_amount: String,
    pub min_amount_fen: i64,
    pub max_amount: String,
    pub max_amount_fen: i64,
    pub order_ttl_secs: u64,
    pub late_payment: &'static str,
}

impl PolicyView {
    fn of(policy: &PaymentPolicy) -> PolicyView {
        PolicyView {
            wechat_enabled: policy.wechat,
            alipay_enabled: policy.alipay,
            min_amount: format_yuan(policy.min_amount_fen),
            min_amount_fen: policy.min_amount_fen,
            max_amount: format_yuan(policy.max_amount_fen),
            max_amount_fen: policy.max_amount_fen,
            order_ttl_secs: policy.order_ttl.as_secs(),
            late_payment: if policy.refund_late_payments { "refund" } else { "keep" },
        }
    }
}

/// The overrides as the API shows them: `null` = the configured value.
#[derive(Debug, Clone, Serialize)]
pub struct OverridesView {
    pub wechat_enabled: Option<bool>,
    pub alipay_enabled: Option<bool>,
    pub min_amount: Option<String>,
    pub min_amount_fen: Option<i64>,
    pub max_amount: Option<String>,
    pub max_amount_fen: Option<i64>,
    pub order_ttl_secs: Option<i32>,
    pub late_payment: Option<String>,
}

impl OverridesView {
    fn of(o: &Overrides) -> OverridesView {
        OverridesView {
            wechat_enabled: o.wechat_enabled,
            alipay_enabled: o.alipay_enabled,
            min_amount: o.min_amount_fen.map(format_yuan),
            min_amount_fen: o.min_amount_fen,
            max_amount: o.max_amount_fen.map(format_yuan),
            max_amount_fen: o.max_amount_fen,
            order_ttl_secs: o.order_ttl_secs,
            late_payment: o.late_payment.clone(),
        }
    }
}

/// `GET /api/admin/settings`'s answer.
#[derive(Debug, Clone, Serialize)]
pub struct SettingsView {
    pub configured: PolicyView,
    pub overrides: OverridesView,
    pub effective: PolicyView,
}

/// The settings as stored now.
pub async fn current(state: &State) -> Result<SettingsView, AppError> {
    let client = state.store.client().await?;
    let overrides = Overrides::read(&client, false).await.map_err(StoreError::from)?;
    Ok(view(state, &overrides))
}

fn view(state: &State, overrides: &Overrides) -> SettingsView {
    let policy = &state.engine.policy;
    SettingsView {
        configured: PolicyView::of(policy.base()),
        overrides: OverridesView::of(overrides),
        effective: PolicyView::of(&policy.effective(overrides)),
    }
}

/// `GET /api/admin/settings`
pub async fn show(state: &State) -> Result<Response, AppError> {
    ok_json(&current(state).await?)
}

/// Upper bound of an amount override (the parser's own is far higher).
const MAX_AMOUNT_FEN: i64 = 10_000_000_000;

fn amount(key: &'static str, value: &Value) -> Result<Option<i64>, AppError> {
    let bad = || {
        AppError::invalid(
            "invalid_amount",
            format!("{key} must be a yuan string such as \"12.34\", or null"),
        )
    };
    match value {
        Value::Null => Ok(None),
        Value::String(text) => {
            let fen = parse_yuan(text).map_err(|_| bad())?;
            if !(1..=MAX_AMOUNT_FEN).contains(&fen) {
                return Err(AppError::invalid(
                    "invalid_amount",
                    format!("{key} must be between 0.01 and {}", format_yuan(MAX_AMOUNT_FEN)),
                ));
            }
            Ok(Some(fen))
        }
        _ => Err(bad()),
    }
}

fn flag(key: &'static str, value: &Value) -> Result<Option<bool>, AppError> {
    match value {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        _ => Err(AppError::invalid(
            "invalid_setting",
            format!("{key} must be true, false or null"),
        )),
    }
}

/// Lays the changes in `input` over `overrides`; a key that is absent stays as it is, a
/// `null` clears the override.
fn apply_changes(mut overrides: Overrides, input: &Map<String, Value>) -> Result<Overrides, AppError> {
    for (key, value) in input {
        match key.as_str() {
            "wechat_enabled" => overrides.wechat_enabled = flag("wechat_enabled", value)?,
            "alipay_enabled" => overrides.alipay_enabled = flag("alipay_enabled", value)?,
            "min_amount" => overrides.min_amount_fen = amount("min_amount", value)?,
            "max_amount" => overrides.max_amount_fen = amount("max_amount", value)?,
            "order_ttl_secs" => {
                overrides.order_ttl_secs = match value {
                    Value::Null => None,
                    _ => Some(
                        value
                            .as_i64()
                            .filter(|s| (60..=604_800).contains(s))
                            .and_then(|s| i32::try_from(s).ok())
                            .ok_or_else(|| {
                                AppError::invalid(
                                    "invalid_order_ttl",
                                    "order_ttl_secs must be a whole number from 60 to 604800, or null",
                                )
                            })?,
                    ),
                }
            }
            "late_payment" => {
                overrides.late_payment = match value {
                    Value::Null => None,
                    Value::String(p) if p == "keep" || p == "refund" => Some(p.clone()),
                    _ => {
                        return Err(AppError::invalid(
                            "invalid_late_payment",
                            "late_payment must be keep, refund or null",
                        ));
                    }
                }
            }
            other => return Err(AppError::Malformed(format!("unknown setting {other:?}").into())),
        }
    }
    Ok(overrides)
}

/// Refuses overrides that cannot be put in force as asked.
fn check(base: &PaymentPolicy, overrides: &Overrides, effective: &PaymentPolicy) -> Result<(), AppError> {
    if overrides.wechat_enabled == Some(true) && !base.wechat {
        return Err(AppError::invalid(
            "channel_not_configured",
            "WeChat Pay is not configured on this server; it cannot be switched on here",
        ));
    }
    if overrides.alipay_enabled == Some(true) && !base.alipay {
        return Err(AppError::invalid(
            "channel_not_configured",
            "Alipay is not configured on this server; it cannot be switched on here",
        ));
    }
    if effective.min_amount_fen > effective.max_amount_fen {
        return Err(AppError::invalid(
            "invalid_amount_range",
            format!(
                "the minimum amount {} would exceed the maximum {}",
                format_yuan(effective.min_amount_fen),
                format_yuan(effective.max_amount_fen)
            ),
        ));
    }
    Ok(())
}

/// `PATCH /api/admin/settings` with any of `wechat_enabled`, `alipay_enabled`, `min_amount`,
/// `max_amount`, `order_ttl_secs`, `late_payment` (`null` clears an override).
pub async fn update(state: &State, actor: &Actor, input: Map<String, Value>) -> Result<Response, AppError> {
    let policy = &state.engine.policy;
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let before = Overrides::read(&tx, true).await.map_err(StoreError::from)?;
    let after = apply_changes(before.clone(), &input)?;
    check(policy.base(), &after, &policy.effective(&after))?;
    if after != before {
        after.write(&tx).await.map_err(StoreError::from)?;
        let to_json = |o: &Overrides| serde_json::to_value(OverridesView::of(o)).unwrap_or_default();
        actor
            .audit(
                &tx,
                "settings.update",
                "payment_settings",
                Some(&to_json(&before)),
                Some(&to_json(&after)),
            )
            .await
            .map_err(StoreError::from)?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    crate::app::reload_policy(state).await;
    ok_json(&view(state, &after))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> PaymentPolicy {
        crate::pay::policy::sample()
    }

    fn changes(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn absent_keys_stay_and_null_clears() {
        let start = Overrides {
            wechat_enabled: Some(false),
            min_amount_fen: Some(100),
            ..Overrides::default()
        };
        let next = apply_changes(
            start,
            &changes(serde_json::json!({"min_amount": null, "max_amount": "200.5", "late_payment": "refund"})),
        )
        .unwrap();
        assert_eq!(next.wechat_enabled, Some(false), "absent: unchanged");
        assert_eq!(next.min_amount_fen, None, "null: cleared");
        assert_eq!(next.max_amount_fen, Some(20050));
        assert_eq!(next.late_payment.as_deref(), Some("refund"));
    }

    #[test]
    fn bad_values_are_refused_with_their_code() {
        for (input, code) in [
            (serde_json::json!({"min_amount": "0"}), "invalid_amount"),
            (serde_json::json!({"min_amount": 5}), "invalid_amount"),
            (serde_json::json!({"max_amount": "1.234"}), "invalid_amount"),
            (serde_json::json!({"order_ttl_secs": 59}), "invalid_order_ttl"),
            (serde_json::json!({"order_ttl_secs": "900"}), "invalid_order_ttl"),
            (serde_json::json!({"late_payment": "drop"}), "invalid_late_payment"),
            (serde_json::json!({"wechat_enabled": "yes"}), "invalid_setting"),
        ] {
            let err = apply_changes(Overrides::default(), &changes(input.clone())).unwrap_err();
            assert_eq!(err.code(), code, "{input}");
        }
        let err = apply_changes(Overrides::default(), &changes(serde_json::json!({"x": 1}))).unwrap_err();
        assert_eq!(err.code(), "malformed_request");
    }

    #[test]
    fn an_unconfigured_channel_or_crossed_bounds_are_refused() {
        let on = Overrides {
            alipay_enabled: Some(true),
            ..Overrides::default()
        };
        let policy = crate::pay::policy::Policy::new(base());
        assert_eq!(
            check(&base(), &on, &policy.effective(&on)).unwrap_err().code(),
            "channel_not_configured"
        );
        let crossed = Overrides {
            min_amount_fen: Some(6_000_000),
            ..Overrides::default()
        };
        assert_eq!(
            check(&base(), &crossed, &policy.effective(&crossed))
                .unwrap_err()
                .code(),
            "invalid_amount_range"
        );
        let fine = Overrides {
            wechat_enabled: Some(false),
            alipay_enabled: Some(false),
            ..Overrides::default()
        };
        assert!(check(&base(), &fine, &policy.effective(&fine)).is_ok());
    }
}
