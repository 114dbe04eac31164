//! What the payment engine asks of a provider and what it gets back, independent of the wire
//! protocol: WeChat Pay v3 (`pay::wechat`) and Alipay (`pay::alipay`) both map onto these types.

use time::OffsetDateTime;

use super::outbound::OutboundError;

/// A payment channel. Stored as text (`wechat`, `alipay`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Wechat,
    Alipay,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Wechat => "wechat",
            Channel::Alipay => "alipay",
        }
    }

    pub fn parse(text: &str) -> Option<Channel> {
        match text {
            "wechat" => Some(Channel::Wechat),
            "alipay" => Some(Channel::Alipay),
            _ => None,
        }
    }
}

/// Read from the database: an unknown value is an error, never silently one of the two.
impl<'a> tokio_postgres::types::FromSql<'a> for Channel {
    fn from_sql(
        ty: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let text = <&str as tokio_postgres::types::FromSql>::from_sql(ty, raw)?;
        Channel::parse(text).ok_or_else(|| format!("unknown payment channel {text:?}").into())
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        <&str as tokio_postgres::types::FromSql>::accepts(ty)
    }
}

/// A QR order to create at the provider.
#[derive(Debug, Clone)]
pub struct CreateOrder<'a> {
    /// Our `out_trade_no`: 32 hex characters.
    pub order_no: &'a str,
    /// Amount in fen, > 0.
    pub amount_fen: i64,
    /// What the payer sees (WeChat `description`, Alipay `subject`), ≤ 127 bytes.
    pub description: &'a str,
    /// When the order stops being payable (WeChat `time_expire`, Alipay `time_expire`).
    pub expires_at: OffsetDateTime,
    /// Where the provider sends the payment notification.
    pub notify_url: &'a str,
}

/// The provider's answer to a create: what goes into the QR code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// WeChat `code_url` / Alipay `qr_code`.
    pub code_url: String,
}

/// A confirmed payment, from a query or a verified notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paid {
    pub order_no: String,
    /// WeChat `transaction_id` / Alipay `trade_no`.
    pub transaction_id: String,
    /// The order amount the provider reports (WeChat `amount.total`, Alipay `total_amount`), fen.
    pub amount_fen: i64,
    /// WeChat `success_time` / Alipay `gmt_payment`.
    pub paid_at: OffsetDateTime,
}

/// The state of an order at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TradeState {
    /// Not paid yet (WeChat `NOTPAY`/`USERPAYING`; Alipay `WAIT_BUYER_PAY` or
    /// `ACQ.TRADE_NOT_EXIST`: the QR was not scanned yet).
    Pending,
    /// Paid (WeChat `SUCCESS`, also `REFUND` = paid then refunded; Alipay `TRADE_SUCCESS` /
    /// `TRADE_FINISHED`).
    Paid(Paid),
    /// Closed unpaid (WeChat `CLOSED`/`REVOKED`/`PAYERROR`; Alipay `TRADE_CLOSED`).
    Closed,
}

/// A refund to ask for.
#[derive(Debug, Clone)]
pub struct RefundOrder<'a> {
    pub order_no: &'a str,
    /// Our id of this refund: WeChat `out_refund_no`, Alipay `out_request_no`. Reusing it
    /// retries the same refund.
    pub refund_no: &'a str,
    /// This refund, fen.
    pub amount_fen: i64,
    /// The whole order, fen.
    pub total_fen: i64,
    pub reason: &'a str,
    /// Where WeChat sends the refund notification (Alipay sends none for refunds).
    pub notify_url: &'a str,
}

/// Where a refund stands at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundState {
    /// The money went back. `refund_id`: the provider's id of the refund.
    Succeeded { refund_id: String },
    /// Accepted, not finished: ask again later (or wait for the notification).
    Processing,
    /// Accepted but held up at the provider (WeChat `ABNORMAL`: the payer's account can no
    /// longer take it, until the merchant re-routes it by hand). The money may still move:
    /// keep asking, and show `reason` to operators.
    Stuck { reason: String },
    /// Refused or closed for good, as the provider says for certain; `reason` says why.
    Failed { reason: String },
}

/// A verified notification, reduced to what the engine acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// The order was paid. `id` is unique per delivery subject (for the inbox).
    Payment { paid: Paid, refunded_fen: i64 },
    /// A refund finished (WeChat `REFUND.*`).
    Refund {
        order_no: String,
        refund_no: String,
        state: RefundState,
    },
    /// Verified but nothing to do (e.g. Alipay `TRADE_CLOSED`, `WAIT_BUYER_PAY`).
    Ignored { order_no: String, what: String },
}

/// Why a provider call failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The request did not complete (timeout, connection refused, TLS).
    #[error(transparent)]
    Outbound(#[from] OutboundError),
    /// The provider answered with an error code (WeChat `code`, Alipay `sub_code`), and the
    /// answer's signature verified. Whether it is final depends on the code (see
    /// `Provider::refused_for_good`).
    #[error("provider refused: {code}: {message}")]
    Rejected { code: String, message: String },
    /// An error answer without a signature (from the provider's edge, or from something in
    /// between): shown to operators, retried, never taken as the provider's word.
    #[error("unsigned error answer (HTTP {status}): {code}: {message}")]
    Unsigned { status: u16, code: String, message: String },
    /// The provider answered 5xx or something unexpected; retrying may help.
    #[error("provider answered HTTP {status}: {message}")]
    Unexpected { status: u16, message: String },
    /// The answer's signature did not verify: never trust it.
    #[error("the provider's answer failed signature verification")]
    BadSignature,
}

/// Why a notification was refused (answered with the provider-format failure).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("signature invalid")]
    BadSignature,
    #[error("timestamp outside the accepted window")]
    Stale,
    #[error("cannot decrypt the resource")]
    Decrypt,
    #[error("malformed notification: {0}")]
    Malformed(String),
    /// Verified, but for someone else (wrong mchid/appid/app_id/seller_id).
    #[error("notification for another merchant: {0}")]
    WrongMerchant(String),
}

#[cfg(test)]
mod tests {
    use tokio_postgres::types::{FromSql, Type};

    use super::Channel;
    use crate::pay::status::Status;

    #[test]
    fn channels_and_statuses_from_the_database_are_known_values_or_errors() {
        assert_eq!(Channel::from_sql(&Type::TEXT, b"alipay").unwrap(), Channel::Alipay);
        assert!(
            Channel::from_sql(&Type::TEXT, b"paypal").is_err(),
            "never silently WeChat"
        );
        assert!(Channel::from_sql(&Type::TEXT, b"").is_err());
        assert_eq!(Status::from_sql(&Type::TEXT, b"refunded").unwrap(), Status::Refunded);
        assert!(
            Status::from_sql(&Type::TEXT, b"lost").is_err(),
            "never silently pending"
        );
        assert!(!<Channel as FromSql>::accepts(&Type::INT4));
    }
}
