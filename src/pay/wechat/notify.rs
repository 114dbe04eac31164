//! What a notification says, once its signature has verified: open the AEAD_AES_256_GCM
//! resource, check it is for this merchant, and reduce it to a `provider::Notification`.
//! Signature and timestamp checks happen before, in `client` (through `sign::KeyRing`).
//! https://pay.weixin.qq.com/docs/merchant/apis/h5-payment/payment-notice.html

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::types::{NotificationBody, RefundResource, Transaction};
use crate::pay::provider::{Notification, NotifyError, Paid, RefundState};

/// Who the notifications must be for.
#[derive(Debug, Clone, Copy)]
pub struct Merchant<'a> {
    pub mchid: &'a str,
    pub appid: &'a str,
    pub api_v3_key: &'a [u8; 32],
}

/// Decrypts and interprets a notification whose signature already verified.
pub fn interpret(body: &[u8], merchant: Merchant<'_>) -> Result<Notification, NotifyError> {
    let notification: NotificationBody =
        serde_json::from_slice(body).map_err(|e| NotifyError::Malformed(format!("notification body: {e}")))?;
    let plaintext = notification
        .resource
        .decrypt(merchant.api_v3_key)
        .map_err(|_| NotifyError::Decrypt)?;
    match notification.event_type.as_str() {
        "TRANSACTION.SUCCESS" => payment(&plaintext, merchant, &notification.event_type),
        "REFUND.SUCCESS" | "REFUND.ABNORMAL" | "REFUND.CLOSED" => {
            refund(&plaintext, merchant, &notification.event_type)
        }
        other => {
            // Verified, but not an event zhifu acts on. Still refuse other merchants' data.
            let resource: serde_json::Value = serde_json::from_slice(&plaintext)
                .map_err(|e| NotifyError::Malformed(format!("resource of {other}: {e}")))?;
            let field = |name: &str| resource.get(name).and_then(|v| v.as_str()).unwrap_or("");
            if !field("mchid").is_empty() && field("mchid") != merchant.mchid {
                return Err(NotifyError::WrongMerchant(format!("mchid {}", field("mchid"))));
            }
            Ok(Notification::Ignored {
                order_no: field("out_trade_no").to_string(),
                what: other.to_string(),
            })
        }
    }
}

fn payment(plaintext: &[u8], merchant: Merchant<'_>, event: &str) -> Result<Notification, NotifyError> {
    let transaction: Transaction =
        serde_json::from_slice(plaintext).map_err(|e| NotifyError::Malformed(format!("resource of {event}: {e}")))?;
    if transaction.mchid != merchant.mchid {
        return Err(NotifyError::WrongMerchant(format!("mchid {}", transaction.mchid)));
    }
    let appid = transaction.appid.as_deref().unwrap_or("");
    if appid != merchant.appid {
        return Err(NotifyError::WrongMerchant(format!("appid {appid}")));
    }
    if transaction.trade_state != "SUCCESS" {
        return Ok(Notification::Ignored {
            order_no: transaction.out_trade_no,
            what: format!("{event} with trade_state {}", transaction.trade_state),
        });
    }
    let paid = paid_from(transaction).map_err(NotifyError::Malformed)?;
    Ok(Notification::Payment { paid, refunded_fen: 0 })
}

fn refund(plaintext: &[u8], merchant: Merchant<'_>, event: &str) -> Result<Notification, NotifyError> {
    let refund: RefundResource =
        serde_json::from_slice(plaintext).map_err(|e| NotifyError::Malformed(format!("resource of {event}: {e}")))?;
    if refund.mchid != merchant.mchid {
        return Err(NotifyError::WrongMerchant(format!("mchid {}", refund.mchid)));
    }
    let state = match event {
        "REFUND.SUCCESS" => RefundState::Succeeded {
            refund_id: refund.refund_id,
        },
        // The money may still reach the payer once the merchant re-routes it by hand.
        "REFUND.ABNORMAL" => RefundState::Stuck {
            reason: abnormal_reason(),
        },
        _ => RefundState::Failed {
            reason: refund.refund_status,
        },
    };
    Ok(Notification::Refund {
        order_no: refund.out_trade_no,
        refund_no: refund.out_refund_no,
        state,
    })
}

/// What an operator is told about a refund WeChat reports `ABNORMAL`.
pub fn abnormal_reason() -> String {
    "ABNORMAL: WeChat could not pay it back to the payer's account; re-route it in the merchant platform (交易中心 → 退款管理)".into()
}

/// A paid transaction (`SUCCESS` or `REFUND`) as `Paid`; `Err` names the missing field.
pub fn paid_from(transaction: Transaction) -> Result<Paid, String> {
    let transaction_id = transaction
        .transaction_id
        .filter(|id| !id.is_empty())
        .ok_or("a paid transaction without transaction_id")?;
    let success_time = transaction
        .success_time
        .ok_or("a paid transaction without success_time")?;
    let paid_at = OffsetDateTime::parse(&success_time, &Rfc3339)
        .map_err(|_| format!("success_time {success_time:?} is not RFC 3339"))?;
    let amount_fen = transaction
        .amount
        .and_then(|a| a.total)
        .ok_or("a paid transaction without amount.total")?;
    Ok(Paid {
        order_no: transaction.out_trade_no,
        transaction_id,
        amount_fen,
        paid_at,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::pay::wechat::crypto::EncryptedResource;
    use crate::pay::wechat::fixtures;

    const MERCHANT: Merchant<'static> = Merchant {
        mchid: "1900000109",
        appid: "wxd678efh567hg6787",
        api_v3_key: fixtures::API_V3_KEY,
    };

    fn body(event: &str, resource: serde_json::Value) -> Vec<u8> {
        json!({
            "id": "EV-2018022511223320873",
            "create_time": "2026-11-21T22:15:00+08:00",
            "resource_type": "encrypt-resource",
            "event_type": event,
            "summary": "支付成功",
            "resource": resource,
        })
        .to_string()
        .into_bytes()
    }

    fn sealed(plaintext: serde_json::Value, aad: &str) -> serde_json::Value {
        let resource = EncryptedResource::encrypt(fixtures::API_V3_KEY, aad, aad, plaintext.to_string().as_bytes());
        serde_json::to_value(resource).unwrap()
    }

    #[test]
    fn a_payment_sealed_by_python_cryptography_is_a_payment() {
        let resource = json!({
            "original_type": "transaction",
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": fixtures::GCM_CIPHERTEXT,
            "associated_data": fixtures::GCM_AAD,
            "nonce": fixtures::GCM_NONCE,
        });
        let notification = interpret(&body("TRANSACTION.SUCCESS", resource), MERCHANT).unwrap();
        let Notification::Payment { paid, refunded_fen } = notification else {
            panic!("{notification:?}")
        };
        assert_eq!(refunded_fen, 0);
        assert_eq!(paid.order_no, "1217752501201407033233368018");
        assert_eq!(paid.transaction_id, "4200000000202611210000000001");
        assert_eq!(paid.amount_fen, 100);
        assert_eq!(paid.paid_at, time::macros::datetime!(2026-11-21 14:15:00 UTC));
    }

    fn transaction(mchid: &str, appid: &str, state: &str) -> serde_json::Value {
        json!({
            "mchid": mchid, "appid": appid, "out_trade_no": "o1", "transaction_id": "4200001",
            "trade_state": state, "success_time": "2026-11-21T22:15:00+08:00",
            "amount": {"total": 5, "currency": "CNY"},
        })
    }

    #[test]
    fn another_merchants_payment_is_refused() {
        let other_mchid = sealed(
            transaction("1900000999", "wxd678efh567hg6787", "SUCCESS"),
            "transaction",
        );
        assert!(matches!(
            interpret(&body("TRANSACTION.SUCCESS", other_mchid), MERCHANT),
            Err(NotifyError::WrongMerchant(_))
        ));
        let other_appid = sealed(
            transaction("1900000109", "wx0000000000000000", "SUCCESS"),
            "transaction",
        );
        assert!(matches!(
            interpret(&body("TRANSACTION.SUCCESS", other_appid), MERCHANT),
            Err(NotifyError::WrongMerchant(_))
        ));
    }

    #[test]
    fn a_transaction_event_that_is_not_success_is_ignored() {
        let resource = sealed(transaction("1900000109", "wxd678efh567hg6787", "REFUND"), "transaction");
        let result = interpret(&body("TRANSACTION.SUCCESS", resource), MERCHANT).unwrap();
        assert!(
            matches!(result, Notification::Ignored { ref order_no, .. } if order_no == "o1"),
            "{result:?}"
        );
    }

    #[test]
    fn refund_events_map_to_refund_states() {
        let resource = |status: &str| {
            sealed(
                json!({
                    "mchid": "1900000109", "out_trade_no": "o1", "transaction_id": "4200001",
                    "out_refund_no": "r1", "refund_id": "50300001", "refund_status": status,
                    "success_time": "2026-11-21T22:15:00+08:00",
                    "amount": {"total": 5, "refund": 5, "payer_total": 5, "payer_refund": 5},
                }),
                "refund",
            )
        };
        let succeeded = interpret(&body("REFUND.SUCCESS", resource("SUCCESS")), MERCHANT).unwrap();
        assert_eq!(
            succeeded,
            Notification::Refund {
                order_no: "o1".into(),
                refund_no: "r1".into(),
                state: RefundState::Succeeded {
                    refund_id: "50300001".into()
                },
            }
        );
        let closed = interpret(&body("REFUND.CLOSED", resource("CLOSED")), MERCHANT).unwrap();
        assert!(
            matches!(closed, Notification::Refund { state: RefundState::Failed { ref reason }, .. } if reason == "CLOSED"),
            "{closed:?}"
        );
        let abnormal = interpret(&body("REFUND.ABNORMAL", resource("ABNORMAL")), MERCHANT).unwrap();
        assert!(
            matches!(abnormal, Notification::Refund { state: RefundState::Stuck { ref reason }, .. } if reason.starts_with("ABNORMAL")),
            "money may still move: {abnormal:?}"
        );
    }

    #[test]
    fn unknown_events_are_ignored_and_broken_resources_are_errors() {
        let resource = sealed(json!({"mchid": "1900000109", "out_trade_no": "o9"}), "transaction");
        let ignored = interpret(&body("TRANSACTION.CLOSED", resource), MERCHANT).unwrap();
        assert_eq!(
            ignored,
            Notification::Ignored {
                order_no: "o9".into(),
                what: "TRANSACTION.CLOSED".into()
            }
        );

        let mut wrong_key = *fixtures::API_V3_KEY;
        wrong_key[5] ^= 1;
        let foreign = EncryptedResource::encrypt(&wrong_key, "transaction", "transaction", b"{}");
        let result = interpret(
            &body("TRANSACTION.SUCCESS", serde_json::to_value(foreign).unwrap()),
            MERCHANT,
        );
        assert!(matches!(result, Err(NotifyError::Decrypt)), "{result:?}");

        let mut sm4 = sealed(
            transaction("1900000109", "wxd678efh567hg6787", "SUCCESS"),
            "transaction",
        );
        sm4["algorithm"] = json!("AEAD_SM4_GCM");
        assert!(matches!(
            interpret(&body("TRANSACTION.SUCCESS", sm4), MERCHANT),
            Err(NotifyError::Decrypt)
        ));

        let missing_time = sealed(
            json!({"mchid": "1900000109", "appid": "wxd678efh567hg6787", "out_trade_no": "o1",
                   "transaction_id": "4200001", "trade_state": "SUCCESS", "amount": {"total": 5}}),
            "transaction",
        );
        let result = interpret(&body("TRANSACTION.SUCCESS", missing_time), MERCHANT);
        assert!(matches!(result, Err(NotifyError::Malformed(_))), "{result:?}");

        assert!(matches!(
            interpret(b"not json", MERCHANT),
            Err(NotifyError::Malformed(_))
        ));
    }
}
