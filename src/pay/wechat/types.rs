//! The JSON the client writes and reads, field names as WeChat Pay API v3 spells them. Only
//! the fields zhifu uses are declared; serde skips the rest. The emulator does not use these
//! types: it writes its answers from WeChat's documentation independently, so a misspelt field
//! here fails the round-trip tests instead of agreeing with itself.

use serde::{Deserialize, Serialize};

use super::crypto::EncryptedResource;

/// `amount` of a Native order.
#[derive(Debug, Serialize)]
pub struct OrderAmount {
    /// Fen.
    pub total: i64,
    pub currency: &'static str,
}

/// `POST /v3/pay/transactions/native`.
/// https://pay.weixin.qq.com/doc/v3/merchant/4012525171
#[derive(Debug, Serialize)]
pub struct NativeOrder<'a> {
    pub appid: &'a str,
    pub mchid: &'a str,
    /// ≤ 127 bytes.
    pub description: &'a str,
    pub out_trade_no: &'a str,
    /// RFC 3339 in Beijing time, e.g. `2026-11-21T22:15:00+08:00`.
    pub time_expire: String,
    pub notify_url: &'a str,
    pub amount: OrderAmount,
}

/// The answer to a Native order.
#[derive(Debug, Deserialize)]
pub struct NativeAnswer {
    pub code_url: String,
}

/// The body of `POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close`.
#[derive(Debug, Serialize)]
pub struct CloseOrder<'a> {
    pub mchid: &'a str,
}

/// `amount` of a transaction, as queried or notified.
#[derive(Debug, Deserialize)]
pub struct TransactionAmount {
    /// The order amount, fen.
    pub total: Option<i64>,
}

/// A transaction: the answer of `GET /v3/pay/transactions/out-trade-no/{…}` and the
/// decrypted resource of a `TRANSACTION.*` notification.
/// https://pay.weixin.qq.com/doc/v3/merchant/4012556352
#[derive(Debug, Deserialize)]
pub struct Transaction {
    #[serde(default)]
    pub appid: Option<String>,
    pub mchid: String,
    pub out_trade_no: String,
    #[serde(default)]
    pub transaction_id: Option<String>,
    /// `SUCCESS | REFUND | NOTPAY | CLOSED | REVOKED | USERPAYING | PAYERROR`.
    pub trade_state: String,
    /// RFC 3339, present once paid.
    #[serde(default)]
    pub success_time: Option<String>,
    #[serde(default)]
    pub amount: Option<TransactionAmount>,
}

/// `amount` of a refund request.
#[derive(Debug, Serialize)]
pub struct RefundAmount {
    /// This refund, fen.
    pub refund: i64,
    /// The whole order, fen.
    pub total: i64,
    pub currency: &'static str,
}

/// `POST /v3/refund/domestic/refunds`.
/// https://github.com/wechatpay-apiv3/wechatpay-go/blob/main/services/refunddomestic/api_refunds.go
#[derive(Debug, Serialize)]
pub struct RefundRequest<'a> {
    pub out_trade_no: &'a str,
    pub out_refund_no: &'a str,
    /// ≤ 80 bytes; left out when empty.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub reason: &'a str,
    /// Left out when empty (then WeChat sends no refund notification).
    #[serde(skip_serializing_if = "str::is_empty")]
    pub notify_url: &'a str,
    pub amount: RefundAmount,
}

/// A refund: the answer of the refund request and of `GET /v3/refund/domestic/refunds/{…}`.
#[derive(Debug, Deserialize)]
pub struct Refund {
    pub refund_id: String,
    pub out_refund_no: String,
    /// `SUCCESS | CLOSED | PROCESSING | ABNORMAL`.
    pub status: String,
}

/// The decrypted resource of a `REFUND.*` notification (it has no `appid`).
#[derive(Debug, Deserialize)]
pub struct RefundResource {
    pub mchid: String,
    pub out_trade_no: String,
    pub out_refund_no: String,
    pub refund_id: String,
    /// `SUCCESS | CLOSED | ABNORMAL`.
    pub refund_status: String,
}

/// A notification as POSTed to a notify_url.
/// https://pay.weixin.qq.com/docs/merchant/apis/h5-payment/payment-notice.html
#[derive(Debug, Deserialize)]
pub struct NotificationBody {
    pub id: String,
    /// `TRANSACTION.SUCCESS`, `REFUND.SUCCESS`, `REFUND.ABNORMAL`, `REFUND.CLOSED`, …
    pub event_type: String,
    pub resource: EncryptedResource,
}

/// The error body of every non-2xx answer.
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// One entry of `GET /v3/certificates`.
#[derive(Debug, Deserialize)]
pub struct CertificateEntry {
    pub serial_no: String,
    /// RFC 3339.
    #[serde(default)]
    pub expire_time: Option<String>,
    pub encrypt_certificate: EncryptedResource,
}

/// The answer of `GET /v3/certificates`.
#[derive(Debug, Deserialize)]
pub struct Certificates {
    pub data: Vec<CertificateEntry>,
}
