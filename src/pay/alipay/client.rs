//! The Alipay client for one app: precreate (the QR), query, close, refund and refund query over
//! the classic gateway, with every answer verified over its raw `*_response` text; and the
//! entry point for payment notifications (verified in `notify`). The signing rules are in
//! `sign`, the emulator in `emulator`. Public-key mode only (no certificate mode).
//!
//! - precreate https://opendocs.alipay.com/open/02ekfg, query https://opendocs.alipay.com/open/02ekfh,
//!   close https://opendocs.alipay.com/open/02o6e7, refund https://opendocs.alipay.com/open/02ekfk,
//!   refund query https://opendocs.alipay.com/open/02ekfl
//! - notification https://opendocs.alipay.com/open/194/103296, verified as https://opendocs.alipay.com/common/02mse7

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use time::OffsetDateTime;

use super::sign::{self, SIGN_TYPE};
use super::{beijing, notify};
use crate::config;
use crate::pay::keys::{KeyError, PrivateKey, PublicKey};
use crate::pay::money;
use crate::pay::outbound::{HttpClient, HttpResponse, OutboundError};
use crate::pay::provider::{
    CreateOrder, Created, Notification, NotifyError, Paid, ProviderError, RefundOrder, RefundState, TradeState,
};

const PRECREATE: &str = "alipay.trade.precreate";
const QUERY: &str = "alipay.trade.query";
const CLOSE: &str = "alipay.trade.close";
const REFUND: &str = "alipay.trade.refund";
const REFUND_QUERY: &str = "alipay.trade.fastpay.refund.query";

/// The gateway's `code` of a successful call.
const SUCCESS: &str = "10000";
/// `sub_code` of a trade Alipay does not know: for a precreated QR, "not scanned yet".
const TRADE_NOT_EXIST: &str = "ACQ.TRADE_NOT_EXIST";

/// The app's credentials and the key that verifies Alipay.
#[derive(Debug)]
pub struct AlipayCredentials {
    /// The app's `app_id`.
    pub app_id: String,
    /// The merchant's Alipay user id (PID, `2088…`, 16 digits) checked against a
    /// notification's `seller_id`; empty = not checked.
    pub seller_id: String,
    /// The app's private key: signs every request.
    pub app_key: PrivateKey,
    /// Alipay's public key (支付宝公钥, not the app's own): verifies answers and notifications.
    pub alipay_public_key: PublicKey,
}

impl AlipayCredentials {
    /// Loads the key files named by `payments.alipay.*`; errors name the configuration key.
    pub fn from_config(c: &config::Alipay) -> Result<Self, KeyError> {
        let app_id = c.app_id.trim();
        if app_id.is_empty() {
            return Err(key_error(
                "payments.alipay.app_id",
                "is not set; copy the APPID of the app from the Alipay open platform console",
            ));
        }
        let seller_id = c.seller_id.trim();
        if !seller_id.is_empty() && !is_alipay_user_id(seller_id) {
            return Err(key_error(
                "payments.alipay.seller_id",
                "is not an Alipay PID (16 digits starting with 2088); leave it empty to skip the check",
            ));
        }
        let app_key = PrivateKey::load(&c.app_private_key_path, "payments.alipay.app_private_key_path")?;
        let alipay_key = PublicKey::load(&c.alipay_public_key_path, "payments.alipay.alipay_public_key_path")?;
        // A classic mix-up: the app's own public key where Alipay's belongs.
        let probe = b"zhifu: is this the app's own public key?";
        if alipay_key.verify(probe, &app_key.sign(probe)) {
            return Err(key_error(
                "payments.alipay.alipay_public_key_path",
                "holds the app's own public key; put Alipay's public key (支付宝公钥) from the console there",
            ));
        }
        Ok(AlipayCredentials {
            app_id: app_id.to_string(),
            seller_id: seller_id.to_string(),
            app_key,
            alipay_public_key: alipay_key,
        })
    }
}

fn key_error(key: &str, problem: &str) -> KeyError {
    KeyError {
        key: key.to_string(),
        problem: problem.to_string(),
    }
}

fn is_alipay_user_id(id: &str) -> bool {
    id.len() == 16 && id.starts_with("2088") && id.bytes().all(|b| b.is_ascii_digit())
}

/// The key [`AlipayClient::query_refund`] takes: `"{order_no}/{refund_no}"`, because Alipay
/// finds a refund by its trade and `out_request_no` together.
pub fn refund_key(order_no: &str, refund_no: &str) -> String {
    format!("{order_no}/{refund_no}")
}

/// An Alipay client for one app.
#[derive(Debug)]
pub struct AlipayClient {
    app_id: String,
    /// Empty: notifications' `seller_id` is not checked.
    seller_id: String,
    app_key: PrivateKey,
    alipay_key: PublicKey,
    /// The full gateway URL, e.g. `https://openapi.alipay.com/gateway.do`.
    gateway: String,
    http: HttpClient,
}

/// A verified answer: the raw node of a success, or the gateway's refusal.
enum Reply {
    Success(String),
    Failure(Failure),
}

/// A refusal (`code` ≠ 10000). `signed`: its signature verified; an unsigned refusal is only
/// ever reported as an error, never read as "not scanned yet" or "already closed".
#[derive(Debug)]
struct Failure {
    code: String,
    msg: String,
    sub_code: String,
    sub_msg: String,
    signed: bool,
}

impl Failure {
    /// True for a signed refusal with this `sub_code`.
    fn is_signed(&self, sub_code: &str) -> bool {
        self.signed && self.sub_code == sub_code
    }
}

impl From<Failure> for ProviderError {
    fn from(f: Failure) -> Self {
        let (code, message) = if f.sub_code.is_empty() {
            (f.code, f.msg)
        } else {
            (f.sub_code, f.sub_msg)
        };
        if f.signed {
            ProviderError::Rejected { code, message }
        } else {
            ProviderError::Unsigned {
                status: 200,
                code,
                message,
            }
        }
    }
}

/// True when Alipay documents `code` (a `sub_code`) as a final refusal of
/// `alipay.trade.refund`: the request was wrong or the trade cannot be refunded, and
/// retrying the same request will not help. False for `ACQ.SYSTEM_ERROR` (documented:
/// "retry with the same parameters"), for every `isp.*` (gateway code 20000, the service
/// unavailable) and for codes it does not list. https://opendocs.alipay.com/open/02ekfk
pub fn refund_refusal_is_final(code: &str) -> bool {
    // isv.*: the request itself is invalid (signature, app, parameters), gateway code 4000x.
    code.starts_with("isv.")
        || matches!(
            code,
            "ACQ.INVALID_PARAMETER"
                | "ACQ.TRADE_NOT_EXIST"
                | "ACQ.TRADE_STATUS_ERROR"
                | "ACQ.TRADE_HAS_FINISHED"
                | "ACQ.TRADE_HAS_CLOSE"
                | "ACQ.TRADE_NOT_ALLOW_REFUND"
                | "ACQ.SELLER_BALANCE_NOT_ENOUGH"
                | "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
                | "ACQ.REASON_TRADE_BEEN_FREEZEN"
                | "ACQ.REASON_TRADE_REFUND_FEE_ERR"
                | "ACQ.REFUND_FEE_ERROR"
                | "ACQ.DISCORDANT_REPEAT_REQUEST"
                | "ACQ.BUYER_ERROR"
                | "ACQ.ONLINE_TRADE_VOUCHER_NOT_ALLOW_REFUND"
        )
}

/// The members every answer node has.
#[derive(Deserialize)]
struct Common {
    code: String,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    sub_code: String,
    #[serde(default)]
    sub_msg: String,
}

#[derive(Deserialize)]
struct PrecreateNode {
    out_trade_no: Option<String>,
    #[serde(default)]
    qr_code: String,
}

#[derive(Deserialize)]
struct QueryNode {
    out_trade_no: Option<String>,
    trade_no: Option<String>,
    #[serde(default)]
    trade_status: String,
    total_amount: Option<String>,
    send_pay_date: Option<String>,
}

#[derive(Deserialize)]
struct RefundNode {
    fund_change: Option<String>,
}

#[derive(Deserialize)]
struct RefundQueryNode {
    out_request_no: Option<String>,
    refund_status: Option<String>,
}

impl AlipayClient {
    /// A client for the app in `credentials`, calling `api_base`: the whole gateway URL
    /// (`payments.alipay.gateway`, e.g. `https://openapi.alipay.com/gateway.do`).
    pub fn new(credentials: AlipayCredentials, api_base: String, http: HttpClient) -> Self {
        AlipayClient {
            app_id: credentials.app_id,
            seller_id: credentials.seller_id,
            app_key: credentials.app_key,
            alipay_key: credentials.alipay_public_key,
            gateway: api_base,
            http,
        }
    }

    /// `alipay.trade.precreate`: the QR for `order`, payable until `order.expires_at`
    /// (`time_expire`, Beijing time). https://opendocs.alipay.com/open/02ekfg
    pub async fn create(&self, order: &CreateOrder<'_>) -> Result<Created, ProviderError> {
        let biz = json!({
            "out_trade_no": order.order_no,
            "total_amount": money::format_yuan(order.amount_fen),
            "subject": subject(order.description),
            "time_expire": beijing::format(order.expires_at),
        });
        let notify_url = Some(order.notify_url).filter(|u| !u.is_empty());
        let node: PrecreateNode = match self.call(PRECREATE, &biz.to_string(), notify_url).await? {
            Reply::Success(node) => parse_node(&node)?,
            Reply::Failure(f) => return Err(f.into()),
        };
        check_echo("out_trade_no", node.out_trade_no.as_deref(), order.order_no)?;
        if node.qr_code.is_empty() {
            return Err(malformed("the precreate answer has no qr_code"));
        }
        Ok(Created { code_url: node.qr_code })
    }

    /// `alipay.trade.query`. `ACQ.TRADE_NOT_EXIST` is `Pending`: the QR was not scanned yet.
    /// `TRADE_CLOSED` after a payment (fully refunded; `send_pay_date` set) is `Paid`.
    /// https://opendocs.alipay.com/open/02ekfh
    pub async fn query(&self, order_no: &str) -> Result<TradeState, ProviderError> {
        let biz = json!({ "out_trade_no": order_no });
        let node: QueryNode = match self.call(QUERY, &biz.to_string(), None).await? {
            Reply::Success(node) => parse_node(&node)?,
            Reply::Failure(f) if f.is_signed(TRADE_NOT_EXIST) => return Ok(TradeState::Pending),
            Reply::Failure(f) => return Err(f.into()),
        };
        check_echo("out_trade_no", node.out_trade_no.as_deref(), order_no)?;
        let paid_at = node.send_pay_date.as_deref().filter(|d| !d.is_empty());
        match node.trade_status.as_str() {
            "WAIT_BUYER_PAY" => Ok(TradeState::Pending),
            "TRADE_SUCCESS" | "TRADE_FINISHED" => Ok(TradeState::Paid(paid_from_query(order_no, &node)?)),
            "TRADE_CLOSED" if paid_at.is_some() => Ok(TradeState::Paid(paid_from_query(order_no, &node)?)),
            "TRADE_CLOSED" => Ok(TradeState::Closed),
            other => Err(malformed(&format!("unknown trade_status {other:?}"))),
        }
    }

    /// `alipay.trade.close`. `ACQ.TRADE_NOT_EXIST` (never scanned) is success: close locally.
    /// https://opendocs.alipay.com/open/02o6e7
    pub async fn close(&self, order_no: &str) -> Result<(), ProviderError> {
        let biz = json!({ "out_trade_no": order_no });
        match self.call(CLOSE, &biz.to_string(), None).await? {
            Reply::Success(_) => Ok(()),
            Reply::Failure(f) if f.is_signed(TRADE_NOT_EXIST) => Ok(()),
            Reply::Failure(f) => Err(f.into()),
        }
    }

    /// `alipay.trade.refund` with `out_request_no` = `refund.refund_no` (reusing it retries
    /// the same refund). `fund_change=Y` is `Succeeded`; otherwise (e.g. the retry of a refund
    /// already made) the refund query decides at once, as Alipay's documentation asks, and
    /// anything but `REFUND_SUCCESS` is `Processing`. `refund_id` is the `out_request_no`.
    /// https://opendocs.alipay.com/open/02ekfk
    pub async fn refund(&self, refund: &RefundOrder<'_>) -> Result<RefundState, ProviderError> {
        let mut biz = json!({
            "out_trade_no": refund.order_no,
            "refund_amount": money::format_yuan(refund.amount_fen),
            "out_request_no": refund.refund_no,
        });
        if !refund.reason.is_empty() {
            biz["refund_reason"] = refund.reason.into();
        }
        let node: RefundNode = match self.call(REFUND, &biz.to_string(), None).await? {
            Reply::Success(node) => parse_node(&node)?,
            Reply::Failure(f) => return Err(f.into()),
        };
        if node.fund_change.as_deref() == Some("Y") {
            return Ok(RefundState::Succeeded {
                refund_id: refund.refund_no.to_string(),
            });
        }
        match self.query_refund_of(refund.order_no, refund.refund_no).await {
            Ok(Some(state @ RefundState::Succeeded { .. })) => Ok(state),
            Ok(_) => Ok(RefundState::Processing),
            Err(e) => {
                tracing::info!(error = %e, "Alipay accepted a refund; its follow-up query failed");
                Ok(RefundState::Processing)
            }
        }
    }

    /// `alipay.trade.fastpay.refund.query` for the key made by [`refund_key`]
    /// (`"{order_no}/{refund_no}"`); Alipay needs the order to find a refund.
    pub async fn query_refund(&self, refund_no: &str) -> Result<Option<RefundState>, ProviderError> {
        match refund_no.split_once('/') {
            Some((order_no, refund_no)) if !order_no.is_empty() && !refund_no.is_empty() => {
                self.query_refund_of(order_no, refund_no).await
            }
            _ => Err(ProviderError::Rejected {
                code: "zhifu.invalid_refund_key".into(),
                message: "an Alipay refund is queried as \"{order_no}/{refund_no}\" (see alipay::client::refund_key)"
                    .into(),
            }),
        }
    }

    /// `alipay.trade.fastpay.refund.query`. Alipay answers the refund's details when it was
    /// made (`refund_status` `REFUND_SUCCESS`, or absent for a synchronous refund): that is
    /// `Succeeded`; another status is `Processing`; an answer without the refund means it was
    /// not made (`None`), and may be retried with the same `out_request_no`.
    /// https://opendocs.alipay.com/open/02ekfl
    pub async fn query_refund_of(&self, order_no: &str, refund_no: &str) -> Result<Option<RefundState>, ProviderError> {
        let biz = json!({
            "out_trade_no": order_no,
            "out_request_no": refund_no,
            "query_options": ["gmt_refund_pay"],
        });
        let node: RefundQueryNode = match self.call(REFUND_QUERY, &biz.to_string(), None).await? {
            Reply::Success(node) => parse_node(&node)?,
            Reply::Failure(f) => return Err(f.into()),
        };
        check_echo("out_request_no", node.out_request_no.as_deref(), refund_no)?;
        if node.out_request_no.as_deref().is_none_or(str::is_empty) {
            return Ok(None);
        }
        Ok(Some(match node.refund_status.as_deref() {
            None | Some("") | Some("REFUND_SUCCESS") => RefundState::Succeeded {
                refund_id: refund_no.to_string(),
            },
            Some(_) => RefundState::Processing,
        }))
    }

    /// Verifies a form-encoded notification (RSA2 over the sorted parameters without `sign`
    /// and `sign_type`) and checks app_id / seller_id.
    /// `TRADE_SUCCESS`/`TRADE_FINISHED` is a `Payment` (`refunded_fen` from `refund_fee`: a
    /// notification after a partial refund says `TRADE_SUCCESS` again); `TRADE_CLOSED` and
    /// `WAIT_BUYER_PAY` are `Ignored`. Whether the order exists and its amount matches is the
    /// engine's check. https://opendocs.alipay.com/open/194/103296
    pub fn verify_notification(&self, body: &[u8]) -> Result<Notification, NotifyError> {
        notify::verify(body, Some(&self.alipay_key), &self.app_id, &self.seller_id)
    }

    /// Sends one gateway call and verifies the answer.
    async fn call(&self, method: &str, biz_content: &str, notify_url: Option<&str>) -> Result<Reply, ProviderError> {
        let request = self.request(method, biz_content, notify_url)?;
        let response = self.http.send(request).await?;
        self.read_answer(method, &response)
    }

    /// A signed gateway request. The common parameters and `sign` go in the query string,
    /// `biz_content` in the form body, as Alipay's own SDKs send them.
    fn request(
        &self,
        method: &str,
        biz_content: &str,
        notify_url: Option<&str>,
    ) -> Result<http::Request<Bytes>, ProviderError> {
        let timestamp = beijing::format(OffsetDateTime::now_utc());
        let mut common: Vec<(&str, &str)> = vec![
            ("app_id", &self.app_id),
            ("method", method),
            ("format", "JSON"),
            ("charset", "utf-8"),
            ("sign_type", SIGN_TYPE),
            ("timestamp", &timestamp),
            ("version", "1.0"),
        ];
        if let Some(url) = notify_url {
            common.push(("notify_url", url));
        }
        let signature = sign::sign_request(
            &self.app_key,
            common.iter().copied().chain([("biz_content", biz_content)]),
        );
        let query = sign::encode_form(common.iter().copied().chain([("sign", signature.as_str())]));
        let separator = if self.gateway.contains('?') { '&' } else { '?' };
        http::Request::post(format!("{}{separator}{query}", self.gateway))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded;charset=utf-8")
            .header(ACCEPT, "application/json")
            .body(Bytes::from(sign::encode_form([("biz_content", biz_content)])))
            .map_err(|e| OutboundError::Transport(format!("cannot build a request to the gateway URL: {e}")).into())
    }

    /// Verifies an answer over its raw node. A success needs a valid signature; a refusal
    /// with a signature needs it valid; a refusal without one is kept, marked unsigned.
    fn read_answer(&self, method: &str, response: &HttpResponse) -> Result<Reply, ProviderError> {
        let status = response.status.as_u16();
        let unexpected = |message: String| ProviderError::Unexpected { status, message };
        if !response.status.is_success() {
            return Err(unexpected(excerpt(&response.body)));
        }
        let text = std::str::from_utf8(&response.body).map_err(|_| unexpected("the answer is not UTF-8".into()))?;
        let raw = sign::split_answer(text, method).map_err(unexpected)?;
        let common: Common =
            serde_json::from_str(raw.node).map_err(|e| unexpected(format!("the answer node has no code ({e})")))?;
        let signed = match &raw.sign {
            Some(signature) => {
                let good = sign::verify_answer(&self.alipay_key, raw.node, signature);
                if !good {
                    tracing::warn!(method, "an Alipay answer failed signature verification");
                    return Err(ProviderError::BadSignature);
                }
                true
            }
            None => false,
        };
        if common.code != SUCCESS {
            return Ok(Reply::Failure(Failure {
                code: common.code,
                msg: common.msg,
                sub_code: common.sub_code,
                sub_msg: common.sub_msg,
                signed,
            }));
        }
        if !signed {
            tracing::warn!(method, "an Alipay success answer came without a signature");
            return Err(ProviderError::BadSignature);
        }
        if raw.is_error_node {
            return Err(unexpected("an error_response with code 10000".into()));
        }
        Ok(Reply::Success(raw.node.to_string()))
    }
}

/// A verified success node the client cannot use: retrying will not help, but this is no
/// refusal either.
fn malformed(what: &str) -> ProviderError {
    ProviderError::Unexpected {
        status: 200,
        message: format!("malformed Alipay answer: {what}"),
    }
}

fn parse_node<T: DeserializeOwned>(node: &str) -> Result<T, ProviderError> {
    serde_json::from_str(node).map_err(|e| malformed(&e.to_string()))
}

/// An answer about another order or refund than the one asked for is not trusted.
fn check_echo(name: &str, echoed: Option<&str>, asked: &str) -> Result<(), ProviderError> {
    match echoed {
        Some(echoed) if !echoed.is_empty() && echoed != asked => {
            Err(malformed(&format!("{name} {echoed:?} instead of {asked:?}")))
        }
        _ => Ok(()),
    }
}

fn paid_from_query(order_no: &str, node: &QueryNode) -> Result<Paid, ProviderError> {
    let trade_no = node.trade_no.as_deref().filter(|t| !t.is_empty());
    let trade_no = trade_no.ok_or_else(|| malformed("a paid trade without trade_no"))?;
    let amount = node.total_amount.as_deref().unwrap_or_default();
    let amount_fen = money::parse_yuan(amount).map_err(|_| malformed(&format!("total_amount {amount:?}")))?;
    let date = node.send_pay_date.as_deref().unwrap_or_default();
    let paid_at = beijing::parse(date).ok_or_else(|| malformed(&format!("send_pay_date {date:?}")))?;
    Ok(Paid {
        order_no: order_no.to_string(),
        transaction_id: trade_no.to_string(),
        amount_fen,
        paid_at,
    })
}

/// The precreate `subject`: Alipay's page on it says it may not contain `/`, `=` or `&`, so
/// those become their full-width forms; control characters become spaces.
fn subject(description: &str) -> String {
    description
        .chars()
        .map(|c| match c {
            '/' => '／',
            '=' => '＝',
            '&' => '＆',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

/// The start of a body for an error message: one line, at most 200 characters.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    if line.trim().is_empty() {
        "(empty body)".into()
    } else {
        line.trim().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pay::alipay::sign::tests::fixture_key;

    #[test]
    fn only_refusals_documented_as_final_end_a_refund() {
        for code in [
            "ACQ.TRADE_NOT_EXIST",
            "ACQ.SELLER_BALANCE_NOT_ENOUGH",
            "ACQ.REASON_TRADE_REFUND_FEE_ERR",
            "isv.invalid-signature",
        ] {
            assert!(refund_refusal_is_final(code), "{code}");
        }
        for code in [
            "ACQ.SYSTEM_ERROR",
            "AQC.SYSTEM_ERROR",
            "isp.unknow-error",
            "aop.unknown",
            "ACQ.NEW_CODE",
        ] {
            assert!(
                !refund_refusal_is_final(code),
                "{code} may still be followed by the money moving"
            );
        }
    }

    #[test]
    fn the_subject_keeps_its_text_without_the_characters_alipay_refuses() {
        assert_eq!(subject("捐赠 a/b=c&d\n"), "捐赠 a／b＝c＆d ");
        assert_eq!(subject("Donation 捐赠"), "Donation 捐赠");
    }

    fn write_temp(name: &str, text: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("zhifu-alipay-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn credentials_load_from_files_and_errors_name_the_configuration_key() {
        let app_key = fixture_key();
        let alipay_key = PrivateKey::generate();
        let mut c = config::Alipay {
            app_id: "2021000000000000".into(),
            app_private_key_path: write_temp("app.pem", sign::tests::FIXTURE_KEY),
            alipay_public_key_path: write_temp("alipay.pem", &alipay_key.public_key_pem()),
            seller_id: "2088000000000000".into(),
            ..config::Alipay::default()
        };
        let credentials = AlipayCredentials::from_config(&c).unwrap();
        assert_eq!(credentials.app_id, "2021000000000000");
        assert_eq!(credentials.seller_id, "2088000000000000");
        let probe = b"probe";
        let alipay = &credentials.alipay_public_key;
        assert!(alipay.verify(probe, &alipay_key.sign(probe)));
        assert!(app_key.public_key().verify(probe, &credentials.app_key.sign(probe)));

        c.alipay_public_key_path = write_temp("own.pem", &app_key.public_key_pem());
        let err = AlipayCredentials::from_config(&c).unwrap_err();
        assert_eq!(err.key, "payments.alipay.alipay_public_key_path");
        assert!(err.problem.contains("own public key"), "{err}");

        c.app_private_key_path = std::path::PathBuf::new();
        let err = AlipayCredentials::from_config(&c).unwrap_err();
        assert_eq!(err.key, "payments.alipay.app_private_key_path");

        c.seller_id = "12345".into();
        assert_eq!(
            AlipayCredentials::from_config(&c).unwrap_err().key,
            "payments.alipay.seller_id"
        );
        c.app_id = " ".into();
        assert_eq!(
            AlipayCredentials::from_config(&c).unwrap_err().key,
            "payments.alipay.app_id"
        );
        for name in ["app.pem", "alipay.pem", "own.pem"] {
            let _ = std::fs::remove_file(write_temp(name, ""));
        }
    }
}
