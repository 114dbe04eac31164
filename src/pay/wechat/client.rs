//! The WeChat Pay API v3 client for one merchant: Native orders, queries, close, refunds and
//! notification verification. Requests are signed; answers are believed only once their signature
//! verifies over the raw body, with the `PUB_KEY_ID_…` public key and/or platform certificates
//! downloaded from `/v3/certificates` when an unknown serial shows up. No business rules here.
//! https://pay.weixin.qq.com/doc/v3/merchant/4012791874

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::cert;
pub use super::credentials::WechatCredentials;
use super::crypto::random_string;
use super::notify::{self, Merchant};
use super::sign::{self, Authorization, KeyRing, PUBLIC_KEY_ID_PREFIX, VerifyError};
use super::types::{
    Certificates, CloseOrder, ErrorBody, NativeAnswer, NativeOrder, OrderAmount, Refund, RefundAmount, RefundRequest,
    Transaction,
};
use crate::pay::keys::{PrivateKey, PublicKey};
use crate::pay::outbound::{HttpClient, OutboundError};
use crate::pay::provider::{
    CreateOrder, Created, Notification, NotifyError, ProviderError, RefundOrder, RefundState, TradeState,
};

/// Sent on every request, as WeChat asks.
const USER_AGENT: &str = concat!("zhifu/", env!("CARGO_PKG_VERSION"), " (WeChat Pay API v3)");
/// An unknown certificate serial triggers at most one `/v3/certificates` download this often.
const CERTIFICATE_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// WeChat's limits on `description` and refund `reason`, bytes.
const DESCRIPTION_MAX: usize = 127;
const REASON_MAX: usize = 80;

/// A WeChat Pay v3 client for one merchant. Cheap to clone.
#[derive(Clone)]
pub struct WechatClient {
    inner: Arc<Inner>,
}

struct Inner {
    mchid: String,
    appid: String,
    merchant_serial_no: String,
    merchant_key: PrivateKey,
    api_v3_key: [u8; 32],
    /// Without a trailing slash.
    api_base: String,
    http: HttpClient,
    keys: KeyRing,
    /// When `/v3/certificates` was last asked; held across the download so concurrent
    /// refreshes queue instead of stampeding (a tokio lock, held across `.await`).
    last_refresh: tokio::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for WechatClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatClient")
            .field("mchid", &self.inner.mchid)
            .field("api_base", &self.inner.api_base)
            .field("keys", &self.inner.keys)
            .finish_non_exhaustive()
    }
}

/// A 2xx answer whose signature verified.
struct Answer {
    status: StatusCode,
    body: Bytes,
}

impl WechatClient {
    /// A client talking to `api_base` (`https://api.mch.weixin.qq.com`, or the emulator).
    /// `api_base` may end in a path prefix (a sandbox mount point): requests go to
    /// `api_base + /v3/…`, but only WeChat's own `/v3/…` path is signed, as
    /// `WechatEmulator::handle` expects it after the prefix is stripped.
    pub fn new(credentials: WechatCredentials, api_base: String, http: HttpClient) -> Self {
        let WechatCredentials {
            mchid,
            appid,
            merchant_serial_no,
            merchant_key,
            api_v3_key,
            platform_public_key_id,
            platform_public_key,
        } = credentials;
        let keys = KeyRing::new();
        if let Some(key) = platform_public_key {
            keys.insert(&platform_public_key_id, key);
        }
        WechatClient {
            inner: Arc::new(Inner {
                mchid,
                appid,
                merchant_serial_no,
                merchant_key,
                api_v3_key,
                api_base: api_base.trim_end_matches('/').to_string(),
                http,
                keys,
                last_refresh: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// `POST /v3/pay/transactions/native`: the `code_url` to show as a QR code.
    /// https://pay.weixin.qq.com/doc/v3/merchant/4012525171
    pub async fn create(&self, order: &CreateOrder<'_>) -> Result<Created, ProviderError> {
        let inner = &self.inner;
        let request = NativeOrder {
            appid: &inner.appid,
            mchid: &inner.mchid,
            description: truncate(order.description, DESCRIPTION_MAX),
            out_trade_no: order.order_no,
            time_expire: beijing_rfc3339(order.expires_at),
            notify_url: order.notify_url,
            amount: OrderAmount {
                total: order.amount_fen,
                currency: "CNY",
            },
        };
        let answer = inner
            .call(Method::POST, "/v3/pay/transactions/native", Some(&request))
            .await?;
        let answer: NativeAnswer = expect_json(answer)?;
        Ok(Created {
            code_url: answer.code_url,
        })
    }

    /// `GET /v3/pay/transactions/out-trade-no/{order_no}?mchid=…`. An order WeChat does not
    /// know (`ORDER_NOT_EXIST`) was never paid: `Pending`.
    /// https://pay.weixin.qq.com/doc/v3/merchant/4012556352
    pub async fn query(&self, order_no: &str) -> Result<TradeState, ProviderError> {
        let inner = &self.inner;
        let path = format!(
            "/v3/pay/transactions/out-trade-no/{}?mchid={}",
            path_segment(order_no),
            path_segment(&inner.mchid)
        );
        let answer = match inner.call::<()>(Method::GET, &path, None).await {
            Err(ProviderError::Rejected { code, .. }) if code == "ORDER_NOT_EXIST" => return Ok(TradeState::Pending),
            other => other?,
        };
        let transaction: Transaction = expect_json(answer)?;
        if transaction.out_trade_no != order_no || transaction.mchid != inner.mchid {
            return Err(unexpected(200, "the answer is about another order or merchant"));
        }
        match transaction.trade_state.as_str() {
            "SUCCESS" | "REFUND" => notify::paid_from(transaction)
                .map(TradeState::Paid)
                .map_err(|problem| unexpected(200, &problem)),
            "NOTPAY" | "USERPAYING" => Ok(TradeState::Pending),
            "CLOSED" | "REVOKED" | "PAYERROR" => Ok(TradeState::Closed),
            other => Err(unexpected(200, &format!("unknown trade_state {other:?}"))),
        }
    }

    /// `POST /v3/pay/transactions/out-trade-no/{order_no}/close`, answered 204 with an empty
    /// (still signed) body.
    /// https://pay.weixin.qq.com/docs/merchant/apis/jsapi-payment/close-order.html
    pub async fn close(&self, order_no: &str) -> Result<(), ProviderError> {
        let inner = &self.inner;
        let path = format!("/v3/pay/transactions/out-trade-no/{}/close", path_segment(order_no));
        inner
            .call(Method::POST, &path, Some(&CloseOrder { mchid: &inner.mchid }))
            .await
            .map(drop)
    }

    /// `POST /v3/refund/domestic/refunds`; reusing `refund_no` retries the same refund.
    /// https://github.com/wechatpay-apiv3/wechatpay-go/blob/main/services/refunddomestic/api_refunds.go
    pub async fn refund(&self, refund: &RefundOrder<'_>) -> Result<RefundState, ProviderError> {
        let request = RefundRequest {
            out_trade_no: refund.order_no,
            out_refund_no: refund.refund_no,
            reason: truncate(refund.reason, REASON_MAX),
            notify_url: refund.notify_url,
            amount: RefundAmount {
                refund: refund.amount_fen,
                total: refund.total_fen,
                currency: "CNY",
            },
        };
        let answer = self
            .inner
            .call(Method::POST, "/v3/refund/domestic/refunds", Some(&request))
            .await?;
        refund_state(expect_json(answer)?, refund.refund_no)
    }

    /// `GET /v3/refund/domestic/refunds/{refund_no}`; `None` when WeChat has no such refund
    /// (a signed `RESOURCE_NOT_EXISTS`).
    /// https://pay.weixin.qq.com/docs/merchant/apis/weixin-pay-score/refunds/query-by-out-refund-no.html
    pub async fn query_refund(&self, refund_no: &str) -> Result<Option<RefundState>, ProviderError> {
        let path = format!("/v3/refund/domestic/refunds/{}", path_segment(refund_no));
        let answer = match self.inner.call::<()>(Method::GET, &path, None).await {
            Err(ProviderError::Rejected { code, .. }) if code == "RESOURCE_NOT_EXISTS" => return Ok(None),
            other => other?,
        };
        refund_state(expect_json(answer)?, refund_no).map(Some)
    }

    /// Verifies (signature over the raw body, ±300 s around `now`), decrypts and checks
    /// mchid/appid of a notification.
    pub fn verify_notification(&self, headers: &HeaderMap, body: &[u8], now: i64) -> Result<Notification, NotifyError> {
        let inner = &self.inner;
        match inner.keys.verify(headers, body, now) {
            Ok(()) => {}
            Err(VerifyError::Stale) => return Err(NotifyError::Stale),
            Err(VerifyError::UnknownSerial(serial)) => {
                // WeChat retries the notification: fetch the new certificate for next time.
                if !serial.starts_with(PUBLIC_KEY_ID_PREFIX)
                    && let Ok(runtime) = tokio::runtime::Handle::try_current()
                {
                    let inner = Arc::clone(inner);
                    runtime.spawn(async move { inner.refresh_if_due().await });
                }
                return Err(NotifyError::BadSignature);
            }
            Err(VerifyError::Missing | VerifyError::BadSignature) => return Err(NotifyError::BadSignature),
        }
        let merchant = Merchant {
            mchid: &inner.mchid,
            appid: &inner.appid,
            api_v3_key: &inner.api_v3_key,
        };
        notify::interpret(body, merchant)
    }

    /// Downloads the platform certificates now (`GET /v3/certificates`) and uses them from
    /// then on; returns how many there are. Certificate mode calls this at start; answers and
    /// notifications signed under an unknown serial also trigger it (at most once a minute).
    /// https://wechatpay-api.gitbook.io/wechatpay-api-v3/qian-ming-zhi-nan-1/qian-ming-yan-zheng
    pub async fn refresh_certificates(&self) -> Result<usize, ProviderError> {
        let mut last = self.inner.last_refresh.lock().await;
        *last = Some(Instant::now());
        self.inner.download_certificates().await
    }

    /// The serials of every key that currently verifies WeChat Pay (public key id and
    /// certificate serials).
    pub fn known_serials(&self) -> Vec<String> {
        let mut serials = self.inner.keys.serials();
        serials.sort();
        serials
    }
}

impl Inner {
    /// Signs and sends a request; `path_and_query` is WeChat's (what gets signed), appended to
    /// `api_base`. 2xx answers must carry a valid signature; error answers are checked when
    /// signed (a proxy's bare 502 is not) and mapped to `Rejected` / `Unexpected`.
    async fn call<T: Serialize>(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&T>,
    ) -> Result<Answer, ProviderError> {
        let body = match body {
            Some(body) => {
                serde_json::to_vec(body).map_err(|e| unexpected(0, &format!("cannot encode the request: {e}")))?
            }
            None => Vec::new(),
        };
        let (status, headers, body) = self.send_signed(method, path_and_query, body).await?;
        let signed = sign::is_signed(&headers);
        if status.is_success() || signed {
            self.verify_answer(&headers, &body).await?;
        }
        if status.is_success() {
            Ok(Answer { status, body })
        } else if signed {
            Err(error_answer(status, &body))
        } else {
            Err(unsigned_error(status, &body))
        }
    }

    async fn send_signed(
        &self,
        method: Method,
        path_and_query: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, HeaderMap, Bytes), ProviderError> {
        let authorization = Authorization::sign(
            &self.merchant_key,
            &self.mchid,
            &self.merchant_serial_no,
            method.as_str(),
            path_and_query,
            &body,
            sign::unix_now(),
            &random_string(32),
        );
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path_and_query}", self.api_base))
            .header(header::AUTHORIZATION, authorization.header_value())
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, USER_AGENT);
        if !body.is_empty() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Bytes::from(body))
            .map_err(|e| OutboundError::Transport(format!("cannot build the request: {e}")))?;
        let response = self.http.send(request).await?;
        Ok((response.status, response.headers, response.body))
    }

    /// Checks an answer's signature; an unknown certificate serial first refreshes the
    /// certificates (rate-limited), then checks again.
    async fn verify_answer(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), ProviderError> {
        match self.keys.verify(headers, body, sign::unix_now()) {
            Ok(()) => Ok(()),
            Err(VerifyError::UnknownSerial(serial)) if !serial.starts_with(PUBLIC_KEY_ID_PREFIX) => {
                self.refresh_if_due().await;
                self.keys
                    .verify(headers, body, sign::unix_now())
                    .map_err(|_| ProviderError::BadSignature)
            }
            Err(problem) => {
                tracing::warn!(%problem, "a WeChat Pay answer failed verification");
                Err(ProviderError::BadSignature)
            }
        }
    }

    /// Downloads the certificates unless that happened less than a minute ago.
    async fn refresh_if_due(&self) {
        let mut last = self.last_refresh.lock().await;
        if last.is_some_and(|at| at.elapsed() < CERTIFICATE_REFRESH_INTERVAL) {
            return;
        }
        *last = Some(Instant::now());
        if let Err(error) = self.download_certificates().await {
            tracing::warn!(%error, "cannot download the WeChat Pay platform certificates");
        }
    }

    /// `GET /v3/certificates`: each certificate is sealed under the APIv3 key (which is what
    /// makes it authentic); the answer itself must verify under one of them or a known key.
    async fn download_certificates(&self) -> Result<usize, ProviderError> {
        let (status, headers, body) = self.send_signed(Method::GET, "/v3/certificates", Vec::new()).await?;
        if !status.is_success() {
            return Err(error_answer(status, &body));
        }
        let listing: Certificates =
            serde_json::from_slice(&body).map_err(|e| unexpected(status.as_u16(), &format!("certificates: {e}")))?;
        let now = OffsetDateTime::now_utc();
        let mut certificates = Vec::new();
        for entry in listing.data {
            let expired = entry
                .expire_time
                .as_deref()
                .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
                .is_some_and(|t| t <= now);
            if expired {
                continue;
            }
            let pem = entry
                .encrypt_certificate
                .decrypt(&self.api_v3_key)
                .map_err(|_| ProviderError::BadSignature)?;
            let info = std::str::from_utf8(&pem)
                .map_err(|_| cert::CertError("not UTF-8"))
                .and_then(cert::pem_to_der)
                .and_then(|der| cert::parse_der(&der))
                .map_err(|e| unexpected(status.as_u16(), &e.to_string()))?;
            if !info.serial_no.eq_ignore_ascii_case(&entry.serial_no) {
                return Err(unexpected(
                    status.as_u16(),
                    "a certificate's serial_no does not match its contents",
                ));
            }
            let key = PublicKey::from_der(&info.spki_der, "platform certificate")
                .map_err(|e| unexpected(status.as_u16(), &e.to_string()))?;
            certificates.push((info.serial_no, Arc::new(key)));
        }
        if certificates.is_empty() {
            return Err(unexpected(
                status.as_u16(),
                "no valid platform certificate in the answer",
            ));
        }
        sign::verify_with(&headers, &body, sign::unix_now(), |serial| {
            certificates
                .iter()
                .find(|(s, _)| s.eq_ignore_ascii_case(serial))
                .map(|(_, key)| Arc::clone(key))
                .or_else(|| self.keys.get(serial))
        })
        .map_err(|_| ProviderError::BadSignature)?;
        let count = certificates.len();
        self.keys.replace_certificates(certificates);
        tracing::info!(count, "WeChat Pay platform certificates downloaded");
        Ok(count)
    }
}

fn unexpected(status: u16, message: &str) -> ProviderError {
    ProviderError::Unexpected {
        status,
        message: message.to_string(),
    }
}

/// A non-2xx answer: `{"code","message"}` on a 4xx is WeChat refusing; the rest may pass.
fn error_answer(status: StatusCode, body: &[u8]) -> ProviderError {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    match parsed {
        Some(error) if status.is_client_error() => ProviderError::Rejected {
            code: error.code,
            message: error.message,
        },
        Some(error) => unexpected(status.as_u16(), &format!("{}: {}", error.code, error.message)),
        None => {
            let text = String::from_utf8_lossy(body);
            unexpected(status.as_u16(), truncate(text.trim(), 200))
        }
    }
}

/// A non-2xx answer without a signature: never WeChat's word on anything. A 4xx naming a
/// code is `Unsigned` (shown, retried), the rest as for signed answers.
fn unsigned_error(status: StatusCode, body: &[u8]) -> ProviderError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(error) if status.is_client_error() => ProviderError::Unsigned {
            status: status.as_u16(),
            code: error.code,
            message: error.message,
        },
        _ => error_answer(status, body),
    }
}

/// True when WeChat's refund page documents `code` as a final refusal of a refund request
/// (nothing was booked; retrying the same request will not help); false for the codes
/// whose documented handling is to retry (`SYSTEM_ERROR`, `FREQUENCY_LIMITED`) and for
/// codes it does not list. https://pay.weixin.qq.com/doc/v3/merchant/4012552567
pub fn refund_refusal_is_final(code: &str) -> bool {
    matches!(
        code,
        "PARAM_ERROR"
            | "INVALID_REQUEST"
            | "SIGN_ERROR"
            | "NOT_ENOUGH"
            | "NO_AUTH"
            | "USER_ACCOUNT_ABNORMAL"
            | "RESOURCE_NOT_EXISTS"
            | "MCH_NOT_EXISTS"
            | "APPID_MCHID_NOT_MATCH"
            | "REQUEST_BLOCKED"
    )
}

fn expect_json<T: DeserializeOwned>(answer: Answer) -> Result<T, ProviderError> {
    serde_json::from_slice(&answer.body)
        .map_err(|e| unexpected(answer.status.as_u16(), &format!("malformed answer: {e}")))
}

fn refund_state(refund: Refund, refund_no: &str) -> Result<RefundState, ProviderError> {
    if refund.out_refund_no != refund_no {
        return Err(unexpected(200, "the answer is about another refund"));
    }
    match refund.status.as_str() {
        "SUCCESS" => Ok(RefundState::Succeeded {
            refund_id: refund.refund_id,
        }),
        "PROCESSING" => Ok(RefundState::Processing),
        "ABNORMAL" => Ok(RefundState::Stuck {
            reason: notify::abnormal_reason(),
        }),
        "CLOSED" => Ok(RefundState::Failed { reason: refund.status }),
        other => Err(unexpected(200, &format!("unknown refund status {other:?}"))),
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// RFC 3339 in Beijing time, whole seconds: `2026-11-21T22:15:00+08:00`.
fn beijing_rfc3339(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::macros::offset!(+8));
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+08:00",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// Percent-encodes everything but `[A-Za-z0-9-_.~*]`, so an id can never change the path.
fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~*".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_are_cut_to_127_bytes_on_a_character_boundary() {
        let ascii = "a".repeat(200);
        assert_eq!(truncate(&ascii, 127).len(), 127);
        let chinese = "捐".repeat(50); // 3 bytes each: 150 bytes
        let cut = truncate(&chinese, 127);
        assert_eq!(cut.len(), 126);
        assert!(cut.chars().all(|c| c == '捐'));
        assert_eq!(truncate("short", 127), "short");
    }

    #[test]
    fn time_expire_is_rfc3339_in_beijing_time() {
        let at = time::macros::datetime!(2026-11-21 14:15:00.999 UTC);
        assert_eq!(beijing_rfc3339(at), "2026-11-21T22:15:00+08:00");
        let late = time::macros::datetime!(2026-12-31 20:00:00 UTC);
        assert_eq!(beijing_rfc3339(late), "2027-01-01T04:00:00+08:00");
    }

    #[test]
    fn path_segments_cannot_smuggle_slashes_or_queries() {
        assert_eq!(path_segment("0123abcDEF_-*"), "0123abcDEF_-*");
        assert_eq!(path_segment("../x?y=1"), "..%2Fx%3Fy%3D1");
    }

    #[test]
    fn error_answers_become_rejected_or_unexpected() {
        let rejected = error_answer(StatusCode::BAD_REQUEST, br#"{"code":"PARAM_ERROR","message":"bad"}"#);
        assert!(
            matches!(rejected, ProviderError::Rejected { ref code, ref message } if code == "PARAM_ERROR" && message == "bad")
        );
        let server = error_answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            br#"{"code":"SYSTEM_ERROR","message":"busy"}"#,
        );
        assert!(
            matches!(server, ProviderError::Unexpected { status: 500, ref message } if message.contains("SYSTEM_ERROR"))
        );
        let proxy = error_answer(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>");
        assert!(matches!(proxy, ProviderError::Unexpected { status: 502, .. }));
        let bare_4xx = error_answer(StatusCode::NOT_FOUND, b"");
        assert!(matches!(bare_4xx, ProviderError::Unexpected { status: 404, .. }));
        let unsigned = unsigned_error(StatusCode::FORBIDDEN, br#"{"code":"NOT_ENOUGH","message":"x"}"#);
        assert!(
            matches!(unsigned, ProviderError::Unsigned { status: 403, ref code, .. } if code == "NOT_ENOUGH"),
            "an unsigned refusal is never a Rejected: {unsigned:?}"
        );
    }

    #[test]
    fn only_refusals_documented_as_final_end_a_refund() {
        for code in [
            "NOT_ENOUGH",
            "INVALID_REQUEST",
            "PARAM_ERROR",
            "USER_ACCOUNT_ABNORMAL",
            "NO_AUTH",
        ] {
            assert!(refund_refusal_is_final(code), "{code}");
        }
        for code in [
            "SYSTEM_ERROR",
            "FREQUENCY_LIMITED",
            "BIZERR_NEED_RETRY",
            "SOMETHING_NEW",
            "",
        ] {
            assert!(
                !refund_refusal_is_final(code),
                "{code} may still be followed by the money moving"
            );
        }
    }
}
