//! Alipay's asynchronous payment notifications (`notify_type=trade_status_sync`, a form
//! POST): verified with Alipay's key over the sorted fields without `sign` and `sign_type`,
//! checked against our app (and seller), and reduced to what the engine acts on. Answering
//! `success` is the HTTP handler's job. https://opendocs.alipay.com/open/194/103296,
//! verification https://opendocs.alipay.com/common/02mse7

use super::{beijing, sign};
use crate::pay::keys::PublicKey;
use crate::pay::money;
use crate::pay::provider::{Notification, NotifyError, Paid};

/// Verifies a notification `body` and checks its `app_id` (and `seller_id` unless
/// `expected_seller_id` is empty). `TRADE_SUCCESS`/`TRADE_FINISHED` is a `Payment`
/// (`refunded_fen` from `refund_fee`: after a partial refund Alipay notifies `TRADE_SUCCESS`
/// again); `TRADE_CLOSED`/`WAIT_BUYER_PAY` and other notify types are `Ignored`. Whether the
/// order exists and its amount matches is the engine's check. No key verifies nothing.
pub fn verify(
    body: &[u8],
    alipay_key: Option<&PublicKey>,
    expected_app_id: &str,
    expected_seller_id: &str,
) -> Result<Notification, NotifyError> {
    let params = sign::parse_form(body).map_err(NotifyError::Malformed)?;
    if !alipay_key.is_some_and(|key| sign::verify_notification(key, &params)) {
        return Err(NotifyError::BadSignature);
    }
    let field = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let required = |name: &str| field(name).ok_or_else(|| NotifyError::Malformed(format!("no {name}")));
    let app_id = required("app_id")?;
    if app_id != expected_app_id {
        return Err(NotifyError::WrongMerchant(format!("app_id {app_id}")));
    }
    if !expected_seller_id.is_empty() && field("seller_id") != Some(expected_seller_id) {
        let seller = field("seller_id").unwrap_or("(none)");
        return Err(NotifyError::WrongMerchant(format!("seller_id {seller}")));
    }
    let order_no = required("out_trade_no")?.to_string();
    if let Some(kind) = field("notify_type").filter(|t| *t != "trade_status_sync") {
        return Ok(Notification::Ignored {
            order_no,
            what: format!("notify_type {kind}"),
        });
    }
    match required("trade_status")? {
        "TRADE_SUCCESS" | "TRADE_FINISHED" => {
            let amount_fen = yuan_field(required("total_amount")?, "total_amount")?;
            let refunded_fen = field("refund_fee").map_or(Ok(0), |fee| yuan_field(fee, "refund_fee"))?;
            let gmt_payment = required("gmt_payment")?;
            let paid_at = beijing::parse(gmt_payment)
                .ok_or_else(|| NotifyError::Malformed(format!("gmt_payment {gmt_payment:?}")))?;
            Ok(Notification::Payment {
                paid: Paid {
                    order_no,
                    transaction_id: required("trade_no")?.to_string(),
                    amount_fen,
                    paid_at,
                },
                refunded_fen,
            })
        }
        status @ ("TRADE_CLOSED" | "WAIT_BUYER_PAY") => Ok(Notification::Ignored {
            order_no,
            what: status.to_string(),
        }),
        other => Err(NotifyError::Malformed(format!("unknown trade_status {other:?}"))),
    }
}

fn yuan_field(text: &str, name: &str) -> Result<i64, NotifyError> {
    money::parse_yuan(text).map_err(|e| NotifyError::Malformed(format!("{name} {text:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::pay::alipay::sign::tests::fixture_key;
    use crate::pay::keys::PrivateKey;

    /// A payment notification built and signed by Python's `cryptography` with the fixture
    /// key (standing in for Alipay's) from the documented rule, independently of this crate.
    /// Its subject holds `&` and `=`, and `passback_params` is empty.
    const NOTIFY: &str = concat!(
        "gmt_create=2024-05-06+07%3A08%3A09",
        "&charset=utf-8",
        "&gmt_payment=2024-05-06+07%3A08%3A15",
        "&notify_time=2024-05-06+07%3A08%3A16",
        "&subject=%E6%8D%90%E8%B5%A0+a%26b%3Dc",
        "&buyer_id=2088102177846880",
        "&invoice_amount=12.34",
        "&version=1.0",
        "&notify_id=2024050600222070816000000001",
        "&fund_bill_list=%5B%7B%22amount%22%3A%2212.34%22%2C%22fundChannel%22%3A%22ALIPAYACCOUNT%22%7D%5D",
        "&notify_type=trade_status_sync",
        "&out_trade_no=0123456789abcdef0123456789abcdef",
        "&total_amount=12.34",
        "&trade_status=TRADE_SUCCESS",
        "&trade_no=2024050622001400000000000001",
        "&auth_app_id=2021000000000000",
        "&receipt_amount=12.34",
        "&point_amount=0.00",
        "&buyer_pay_amount=12.34",
        "&app_id=2021000000000000",
        "&seller_id=2088000000000000",
        "&passback_params=",
        "&sign=c1uPmHWJMz7xJAqfonZ7Ola69nt4I6llrHwkqLZsRCHRK%2FnBOJ3ZCVO%2BD%2FqyTWia0W7aHEyiTdVUa1FS8noT8DoM7LGLXgODPi%2Bh6%2FID374acwD41rqlLyCDBtfyauMSz%2BTijWK%2BGAojmdzpfA%2FBaMEEwgaYuuNlbHubRHquxml%2BtlOT8X9I%2FLJjyarjOfq5Oc55Ljvcr30nL65zXCeVR5TTBPTOXL0x44P982ryn2CKch1P5lROwj5mO5lUWV%2B%2FZGexzag5gO1uSD0WARwiF47HmhbbejSEwv2%2FzeIxcY6JzqKd5A0BaWnkzgMweWJcFk%2BH87d5GBFDkvLXx9JPvw%3D%3D",
        "&sign_type=RSA2"
    );

    /// What `AlipayClient::verify_notification` holds: Alipay's key, our app and seller.
    struct Verifier {
        key: Option<PublicKey>,
        app_id: &'static str,
        seller_id: &'static str,
    }

    impl Verifier {
        fn verify_notification(&self, body: &[u8]) -> Result<Notification, NotifyError> {
            verify(body, self.key.as_ref(), self.app_id, self.seller_id)
        }
    }

    fn client_with(key: Option<PublicKey>, app_id: &'static str, seller_id: &'static str) -> Verifier {
        Verifier { key, app_id, seller_id }
    }

    fn client() -> Verifier {
        client_with(Some(fixture_key().public_key()), "2021000000000000", "2088000000000000")
    }

    /// `NOTIFY`'s fields with `changes` applied (an empty value removes the field), re-signed
    /// by the fixture key with the notification rule.
    fn resigned(changes: &[(&str, &str)]) -> Vec<u8> {
        let mut fields = sign::parse_form(NOTIFY.as_bytes()).unwrap();
        fields.retain(|(k, _)| k != "sign");
        for (name, value) in changes {
            fields.retain(|(k, _)| k != name);
            if !value.is_empty() {
                fields.push((name.to_string(), value.to_string()));
            }
        }
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let signature = fixture_key().sign_base64(sign::notify_sign_content(pairs.iter().copied()).as_bytes());
        sign::encode_form(pairs.into_iter().chain([("sign", signature.as_str())])).into_bytes()
    }

    #[test]
    fn a_notification_signed_elsewhere_verifies_into_a_payment_with_exact_fen() {
        let notification = client().verify_notification(NOTIFY.as_bytes()).unwrap();
        assert_eq!(
            notification,
            Notification::Payment {
                paid: Paid {
                    order_no: "0123456789abcdef0123456789abcdef".into(),
                    transaction_id: "2024050622001400000000000001".into(),
                    amount_fen: 1234,
                    paid_at: datetime!(2024-05-06 07:08:15 +08:00),
                },
                refunded_fen: 0,
            }
        );
    }

    #[test]
    fn a_notification_with_a_changed_value_is_refused() {
        let tampered = NOTIFY.replace("total_amount=12.34", "total_amount=12.35");
        assert_ne!(tampered, NOTIFY);
        assert!(matches!(
            client().verify_notification(tampered.as_bytes()),
            Err(NotifyError::BadSignature)
        ));
    }

    #[test]
    fn a_notification_verified_with_another_key_or_no_key_is_refused() {
        let other = client_with(
            Some(PrivateKey::generate().public_key()),
            "2021000000000000",
            "2088000000000000",
        );
        assert!(matches!(
            other.verify_notification(NOTIFY.as_bytes()),
            Err(NotifyError::BadSignature)
        ));
        let keyless = client_with(None, "2021000000000000", "");
        assert!(matches!(
            keyless.verify_notification(NOTIFY.as_bytes()),
            Err(NotifyError::BadSignature)
        ));
    }

    #[test]
    fn a_notification_signed_with_sign_type_in_the_string_is_refused() {
        let mut fields = sign::parse_form(NOTIFY.as_bytes()).unwrap();
        fields.retain(|(k, _)| k != "sign");
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let wrong_rule = sign::request_sign_content(pairs.iter().copied());
        assert!(wrong_rule.contains("sign_type=RSA2"));
        let signature = fixture_key().sign_base64(wrong_rule.as_bytes());
        let body = sign::encode_form(pairs.into_iter().chain([("sign", signature.as_str())]));
        assert!(matches!(
            client().verify_notification(body.as_bytes()),
            Err(NotifyError::BadSignature)
        ));
    }

    #[test]
    fn a_notification_with_another_sign_type_or_no_sign_is_refused() {
        let rsa1 = NOTIFY.replace("sign_type=RSA2", "sign_type=RSA");
        let unsigned = resigned(&[])
            .split(|b| *b == b'&')
            .filter(|f| !f.starts_with(b"sign="))
            .collect::<Vec<_>>()
            .join(&b'&');
        for body in [rsa1.into_bytes(), unsigned] {
            assert!(matches!(
                client().verify_notification(&body),
                Err(NotifyError::BadSignature)
            ));
        }
    }

    #[test]
    fn a_verified_notification_for_another_app_or_seller_is_wrong_merchant() {
        let other_app = client_with(Some(fixture_key().public_key()), "2021009999999999", "");
        assert!(matches!(
            other_app.verify_notification(NOTIFY.as_bytes()),
            Err(NotifyError::WrongMerchant(m)) if m.contains("app_id")
        ));
        let other_seller = client_with(Some(fixture_key().public_key()), "2021000000000000", "2088999999999999");
        assert!(matches!(
            other_seller.verify_notification(NOTIFY.as_bytes()),
            Err(NotifyError::WrongMerchant(m)) if m.contains("seller_id")
        ));
        let no_seller_field = resigned(&[("seller_id", "")]);
        assert!(matches!(
            client().verify_notification(&no_seller_field),
            Err(NotifyError::WrongMerchant(_))
        ));
        let unchecked = client_with(Some(fixture_key().public_key()), "2021000000000000", "");
        assert!(unchecked.verify_notification(&no_seller_field).is_ok());
    }

    #[test]
    fn a_notification_after_a_partial_refund_carries_the_refunded_fen() {
        let body = resigned(&[
            ("refund_fee", "2.50"),
            ("gmt_refund", "2024-05-07 10:00:00.587"),
            ("out_biz_no", "refund-1"),
        ]);
        match client().verify_notification(&body).unwrap() {
            Notification::Payment { paid, refunded_fen } => {
                assert_eq!(refunded_fen, 250);
                assert_eq!(paid.amount_fen, 1234);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn closed_and_waiting_trades_are_ignored() {
        for status in ["TRADE_CLOSED", "WAIT_BUYER_PAY"] {
            let body = resigned(&[("trade_status", status)]);
            assert_eq!(
                client().verify_notification(&body).unwrap(),
                Notification::Ignored {
                    order_no: "0123456789abcdef0123456789abcdef".into(),
                    what: status.into(),
                }
            );
        }
        let finished = resigned(&[("trade_status", "TRADE_FINISHED")]);
        assert!(matches!(
            client().verify_notification(&finished),
            Ok(Notification::Payment { .. })
        ));
    }

    #[test]
    fn signed_but_malformed_amounts_times_and_statuses_are_malformed() {
        for changes in [
            [("total_amount", "12.345")],
            [("total_amount", "-1.00")],
            [("total_amount", "")],
            [("refund_fee", "1e2")],
            [("gmt_payment", "2024-05-06T07:08:15+08:00")],
            [("trade_no", "")],
            [("trade_status", "TRADE_MAYBE")],
        ] {
            assert!(
                matches!(
                    client().verify_notification(&resigned(&changes)),
                    Err(NotifyError::Malformed(_))
                ),
                "{changes:?}"
            );
        }
        let twice = format!("{NOTIFY}&trade_status=TRADE_SUCCESS");
        assert!(matches!(
            client().verify_notification(twice.as_bytes()),
            Err(NotifyError::Malformed(_))
        ));
    }
}
