//! An in-memory WeChat Pay for one merchant, speaking the real API v3 wire protocol with its own
//! keys: it checks each request's signature, keeps orders and refunds (`books`), signs every answer,
//! and delivers signed notifications with sealed resources. Queued `Faults` break API calls on
//! purpose. For the sandbox and the tests only: no real money or keys come near it.
//! https://pay.weixin.qq.com/doc/v3/merchant/4012791874

mod books;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::Full;
use serde_json::{Value, json};
use time::OffsetDateTime;

use self::books::{Books, Outcome, Reply, beijing, error};
use super::cert;
use super::client::WechatCredentials;
use super::crypto::{EncryptedResource, random_bytes, random_digits, random_string};
use super::sign::{self, Authorization};
use crate::pay::keys::{PrivateKey, PublicKey};
use crate::pay::outbound::HttpClient;
use crate::pay::sandbox::{Api, Fault, Faults};

/// The sandbox's notification schedule: the first attempt at once, then quick retries
/// (WeChat's own is 15 s, 15 s, 30 s, 3 min, … over 24 h).
pub const SANDBOX_NOTIFY_SCHEDULE: [Duration; 4] = [
    Duration::ZERO,
    Duration::from_millis(200),
    Duration::from_secs(1),
    Duration::from_secs(3),
];
/// How long a sandbox refund stays PROCESSING.
pub const SANDBOX_REFUND_DELAY: Duration = Duration::from_millis(200);
/// The test merchant's mchid: WeChat's documentation's example, never a real one.
pub const SANDBOX_MCHID: &str = "1900000109";
/// The test merchant's appid: WeChat's documentation's example, never a real one.
pub const SANDBOX_APPID: &str = "wxd678efh567hg6787";

/// What the emulator needs: the merchant's public key and the platform's private key.
pub struct WechatEmulatorConfig {
    pub mchid: String,
    pub appid: String,
    /// The serial the merchant's `Authorization` must name.
    pub merchant_serial_no: String,
    /// Verifies the merchant's request signatures.
    pub merchant_public_key: PublicKey,
    /// Signs answers and notifications.
    pub platform_key: PrivateKey,
    /// `Wechatpay-Serial` of answers: `PUB_KEY_ID_…` (public-key mode) or the platform
    /// certificate's serial (certificate mode).
    pub platform_serial: String,
    /// The platform certificate (DER) served at `/v3/certificates`; `None` in public-key mode.
    pub platform_certificate: Option<Vec<u8>>,
    /// The APIv3 key that seals resources.
    pub api_v3_key: [u8; 32],
    /// The wait before each notification delivery attempt (the first entry before the first
    /// attempt); delivery stops at the first 2xx.
    pub notify_schedule: Vec<Duration>,
    /// How long a refund stays PROCESSING before it succeeds and is notified.
    pub refund_delay: Duration,
}

impl std::fmt::Debug for WechatEmulatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatEmulatorConfig")
            .field("mchid", &self.mchid)
            .field("appid", &self.appid)
            .field("platform_serial", &self.platform_serial)
            .field("api_v3_key", &"[redacted]")
            .field("notify_schedule", &self.notify_schedule)
            .finish_non_exhaustive()
    }
}

/// Emulates WeChat Pay's API for one merchant.
pub struct WechatEmulator {
    config: WechatEmulatorConfig,
    http: HttpClient,
    faults: Faults,
    /// Signs answers under `Fault::BadSignature`.
    wrong_key: PrivateKey,
    /// A `std` lock: never held across an `.await`.
    books: Mutex<Books>,
    /// True: new refunds stay PROCESSING until a test settles them.
    hold_refunds: AtomicBool,
}

impl std::fmt::Debug for WechatEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatEmulator")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A random upper-case hex serial of `bytes` bytes, high bit clear (a positive INTEGER).
fn random_serial(bytes: usize) -> (Vec<u8>, String) {
    let mut serial = random_bytes(bytes);
    if let Some(first) = serial.first_mut() {
        *first = (*first & 0x7f).max(1);
    }
    let hex = serial.iter().map(|b| format!("{b:02X}")).collect();
    (serial, hex)
}

impl WechatEmulator {
    /// Matching credentials (for the client) and emulator configuration, with fresh keys, in
    /// public-key mode (`PUB_KEY_ID_…`), the mode new merchants get.
    pub fn sandbox_pair() -> (WechatCredentials, WechatEmulatorConfig) {
        let merchant_key = PrivateKey::generate();
        let platform_key = PrivateKey::generate();
        let (_, merchant_serial_no) = random_serial(20);
        let key_id = format!("{}01{SANDBOX_MCHID}{}", sign::PUBLIC_KEY_ID_PREFIX, random_digits(16));
        let mut api_v3_key = [0u8; 32];
        api_v3_key.copy_from_slice(random_string(32).as_bytes());
        let config = WechatEmulatorConfig {
            mchid: SANDBOX_MCHID.to_string(),
            appid: SANDBOX_APPID.to_string(),
            merchant_serial_no: merchant_serial_no.clone(),
            merchant_public_key: merchant_key.public_key(),
            platform_serial: key_id.clone(),
            platform_certificate: None,
            api_v3_key,
            notify_schedule: SANDBOX_NOTIFY_SCHEDULE.to_vec(),
            refund_delay: SANDBOX_REFUND_DELAY,
            platform_key,
        };
        let credentials = WechatCredentials {
            mchid: SANDBOX_MCHID.to_string(),
            appid: SANDBOX_APPID.to_string(),
            merchant_serial_no,
            merchant_key,
            api_v3_key,
            platform_public_key_id: key_id,
            platform_public_key: Some(config.platform_key.public_key()),
        };
        (credentials, config)
    }

    /// [`sandbox_pair`](Self::sandbox_pair) in platform-certificate mode: the client holds no
    /// WeChat Pay key and must download the certificate from `/v3/certificates`.
    pub fn sandbox_pair_certificate_mode() -> (WechatCredentials, WechatEmulatorConfig) {
        let (mut credentials, mut config) = Self::sandbox_pair();
        let (serial, serial_hex) = random_serial(20);
        let not_before = OffsetDateTime::now_utc() - time::Duration::days(1);
        let der = cert::self_issued(
            &config.platform_key,
            &serial,
            "zhifu emulator platform certificate (not WeChat Pay)",
            not_before,
            5 * 365,
        );
        config.platform_serial = serial_hex;
        config.platform_certificate = Some(der);
        credentials.platform_public_key = None;
        credentials.platform_public_key_id = String::new();
        (credentials, config)
    }

    /// An emulator that delivers notifications through `http`.
    pub fn new(config: WechatEmulatorConfig, http: HttpClient) -> Arc<Self> {
        Arc::new(WechatEmulator {
            books: Mutex::new(Books::new(&config.mchid, &config.appid)),
            config,
            http,
            faults: Faults::default(),
            wrong_key: PrivateKey::generate(),
            hold_refunds: AtomicBool::new(false),
        })
    }

    /// Serves one API request; `path_and_query` as WeChat's (e.g. `/v3/pay/transactions/native`).
    /// Waits the scripted latency, then consumes the fault queued for this API, if any.
    pub async fn handle(
        self: &Arc<Self>,
        method: &Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> http::Response<Full<Bytes>> {
        let _in_flight = self.faults.enter();
        let latency = self.faults.latency();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let (fault, applied) = match self.faults.take(api_of(method, path_and_query)) {
            Some(Fault::AfterApplying(then)) => (Some(*then), Some(self.serve(method, path_and_query, headers, &body))),
            other => (other, None),
        };
        let mut wrong_key = false;
        match fault {
            Some(Fault::Reject { code, message }) => {
                return self.answer(error(documented_status(&code), &code, &message), false);
            }
            Some(Fault::ServerError) => {
                return self.answer(
                    error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "SYSTEM_ERROR",
                        "系统错误，请稍后重试",
                    ),
                    false,
                );
            }
            Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
            Some(Fault::BadSignature) => wrong_key = true,
            Some(Fault::AfterApplying(_)) | None => {}
        }
        let reply = match applied {
            Some(reply) => reply,
            None => self.serve(method, path_and_query, headers, &body),
        };
        self.answer(reply, wrong_key)
    }

    /// Authenticates and carries out one request.
    fn serve(self: &Arc<Self>, method: &Method, path_and_query: &str, headers: &HeaderMap, body: &[u8]) -> Reply {
        match self.authenticate(method, path_and_query, headers, body) {
            Err(reply) => reply,
            Ok(()) => self.route(method, path_and_query, body),
        }
    }

    /// Checks the merchant's `Authorization`: mchid, serial, ±5 min, and the signature over
    /// `METHOD\nPATH?QUERY\nTS\nNONCE\nBODY\n`; 401 `SIGN_ERROR` otherwise.
    fn authenticate(
        &self,
        method: &Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), Reply> {
        let sign_error = || error(StatusCode::UNAUTHORIZED, "SIGN_ERROR", "签名错误");
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(Authorization::parse)
            .ok_or_else(sign_error)?;
        let fresh = sign::unix_now().abs_diff(authorization.timestamp) < sign::MAX_SKEW_SECS.unsigned_abs();
        let ours =
            authorization.mchid == self.config.mchid && authorization.serial_no == self.config.merchant_serial_no;
        if fresh
            && ours
            && authorization.verify(&self.config.merchant_public_key, method.as_str(), path_and_query, body)
        {
            Ok(())
        } else {
            Err(sign_error())
        }
    }

    fn route(self: &Arc<Self>, method: &Method, path_and_query: &str, body: &[u8]) -> Reply {
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let Ok(mut books) = self.books.lock() else {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "SYSTEM_ERROR", "系统错误");
        };
        let decoded = |segment: &str| {
            percent_decode(segment).ok_or_else(|| error(StatusCode::BAD_REQUEST, "PARAM_ERROR", "路径参数格式错误"))
        };
        let reply = match (method.as_str(), segments.as_slice()) {
            ("POST", ["v3", "pay", "transactions", "native"]) => books.create(body),
            ("GET", ["v3", "pay", "transactions", "out-trade-no", no]) => match decoded(no) {
                Ok(no) => books.query(&no, query),
                Err(reply) => reply,
            },
            ("POST", ["v3", "pay", "transactions", "out-trade-no", no, "close"]) => match decoded(no) {
                Ok(no) => books.close(&no, body),
                Err(reply) => reply,
            },
            ("POST", ["v3", "refund", "domestic", "refunds"]) => {
                let (reply, new_refund) = books.refund(body, OffsetDateTime::now_utc());
                if let Some(new_refund) = new_refund
                    && !self.hold_refunds.load(Ordering::Relaxed)
                {
                    self.complete_later(new_refund.out_refund_no);
                }
                reply
            }
            ("GET", ["v3", "refund", "domestic", "refunds", no]) => match decoded(no) {
                Ok(no) => books.query_refund(&no),
                Err(reply) => reply,
            },
            ("GET", ["v3", "certificates"]) => self.certificates(),
            _ => error(StatusCode::NOT_FOUND, "NOT_FOUND", "请求的资源不存在"),
        };
        drop(books);
        reply
    }

    /// `GET /v3/certificates`, in certificate mode.
    fn certificates(&self) -> Reply {
        let Some(der) = &self.config.platform_certificate else {
            return error(StatusCode::NOT_FOUND, "RESOURCE_NOT_EXISTS", "商户未使用平台证书");
        };
        let pem = cert::der_to_pem(der);
        let sealed = EncryptedResource::encrypt(&self.config.api_v3_key, "certificate", "", pem.as_bytes());
        let now = OffsetDateTime::now_utc();
        let body = json!({
            "data": [{
                "serial_no": self.config.platform_serial,
                "effective_time": beijing(now - time::Duration::days(1)),
                "expire_time": beijing(now + time::Duration::days(5 * 365)),
                "encrypt_certificate": sealed,
            }]
        });
        Reply {
            status: StatusCode::OK,
            body: body.to_string().into_bytes(),
        }
    }

    /// Signs a reply (with the wrong key under `Fault::BadSignature`).
    fn answer(&self, reply: Reply, wrong_key: bool) -> http::Response<Full<Bytes>> {
        let key = if wrong_key {
            &self.wrong_key
        } else {
            &self.config.platform_key
        };
        let headers = sign::sign_answer(
            key,
            &self.config.platform_serial,
            &reply.body,
            sign::unix_now(),
            &random_string(32),
        );
        let has_body = !reply.body.is_empty();
        let mut response = http::Response::new(Full::new(Bytes::from(reply.body)));
        *response.status_mut() = reply.status;
        response.headers_mut().extend(headers);
        if has_body {
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
        }
        if let Ok(id) = HeaderValue::from_str(&random_string(32)) {
            response.headers_mut().insert("request-id", id);
        }
        response
    }

    /// After `refund_delay`, the refund succeeds and REFUND.SUCCESS goes to its notify_url.
    fn complete_later(self: &Arc<Self>, out_refund_no: String) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(this.config.refund_delay).await;
            let now = OffsetDateTime::now_utc();
            if let Err(problem) = this.settle_refund(&out_refund_no, Outcome::Success(now), true).await {
                tracing::warn!(%problem, out_refund_no, "the emulator's refund notification was not acknowledged");
            }
        });
    }

    /// Settles a refund as `outcome` and, with `notify`, delivers its notification
    /// (`REFUND.SUCCESS` / `REFUND.CLOSED` / `REFUND.ABNORMAL`) until acknowledged.
    async fn settle_refund(&self, out_refund_no: &str, outcome: Outcome, notify: bool) -> Result<(), String> {
        let settled = self
            .books
            .lock()
            .map_err(|_| "the emulator's books are poisoned".to_string())?
            .settle_refund(out_refund_no, outcome);
        let (notify_url, resource) = settled.ok_or_else(|| format!("refund {out_refund_no} is unknown or final"))?;
        if !notify || notify_url.is_empty() {
            return Ok(());
        }
        let (event_type, summary) = match outcome {
            Outcome::Success(_) => ("REFUND.SUCCESS", "退款成功"),
            Outcome::Closed => ("REFUND.CLOSED", "退款关闭"),
            Outcome::Abnormal | Outcome::Processing => ("REFUND.ABNORMAL", "退款异常"),
        };
        let body = self.notification_body(event_type, summary, "refund", &resource);
        self.deliver(&notify_url, body).await
    }

    /// With `true`, refunds accepted from now on stay PROCESSING until
    /// [`complete_refund`](Self::complete_refund) or [`close_refund`](Self::close_refund).
    pub fn hold_refunds(&self, hold: bool) {
        self.hold_refunds.store(hold, Ordering::Relaxed);
    }

    /// Finishes a held (or abnormal) refund successfully and delivers REFUND.SUCCESS.
    pub async fn complete_refund(&self, refund_no: &str) -> Result<(), String> {
        self.settle_refund(refund_no, Outcome::Success(OffsetDateTime::now_utc()), true)
            .await
    }

    /// Closes a held refund (the money stays with the merchant; `abnormal`: stuck instead,
    /// to be handled by hand); with `notify`, delivers REFUND.CLOSED / REFUND.ABNORMAL,
    /// else only a query tells.
    pub async fn close_refund(&self, refund_no: &str, abnormal: bool, notify: bool) -> Result<(), String> {
        let outcome = if abnormal { Outcome::Abnormal } else { Outcome::Closed };
        self.settle_refund(refund_no, outcome, notify).await
    }

    /// How many refunds WeChat booked for `order_no` (whatever became of them).
    pub fn refund_count(&self, order_no: &str) -> usize {
        self.books.lock().map_or(0, |books| books.refunds_of(order_no))
    }

    /// Fen WeChat refunded successfully on `order_no`.
    pub fn refunded_fen(&self, order_no: &str) -> i64 {
        self.books.lock().map_or(0, |books| books.refunded_fen(order_no))
    }

    /// How many orders were created at this emulator.
    pub fn order_count(&self) -> usize {
        self.books.lock().map_or(0, |books| books.order_count())
    }

    /// Pays `order_no` and delivers the signed TRANSACTION.SUCCESS notification to the
    /// order's notify_url until acknowledged. `Err` for an unknown, closed or expired order,
    /// or when no attempt was acknowledged. Paying a paid order delivers the notification again.
    pub async fn pay(&self, order_no: &str) -> Result<(), String> {
        self.mark_paid(order_no, false)?;
        self.deliver_payment(order_no).await
    }

    /// [`pay`](Self::pay) even a closed or expired order, as when a payment races the close.
    pub async fn force_pay(&self, order_no: &str) -> Result<(), String> {
        self.mark_paid(order_no, true)?;
        self.deliver_payment(order_no).await
    }

    /// Marks `order_no` paid without notifying anyone (a notification lost on the way): a
    /// query then answers SUCCESS. `force` pays closed or expired orders too.
    pub fn mark_paid(&self, order_no: &str, force: bool) -> Result<(), String> {
        self.books
            .lock()
            .map_err(|_| "the emulator's books are poisoned".to_string())?
            .mark_paid(order_no, force, OffsetDateTime::now_utc())
    }

    async fn deliver_payment(&self, order_no: &str) -> Result<(), String> {
        let (notify_url, resource) = self.payment_notice(order_no)?;
        let body = self.notification_body("TRANSACTION.SUCCESS", "支付成功", "transaction", &resource);
        self.deliver(&notify_url, body).await
    }

    fn payment_notice(&self, order_no: &str) -> Result<(String, Value), String> {
        self.books
            .lock()
            .map_err(|_| "the emulator's books are poisoned".to_string())?
            .payment_notice(order_no)
    }

    /// The exact signed TRANSACTION.SUCCESS request (headers, body) the emulator would POST
    /// now for a paid order, without sending it.
    pub fn payment_notification(&self, order_no: &str) -> Result<(HeaderMap, Vec<u8>), String> {
        let (_, resource) = self.payment_notice(order_no)?;
        let body = self.notification_body("TRANSACTION.SUCCESS", "支付成功", "transaction", &resource);
        let headers = self.sign_notification(&body, sign::unix_now(), &random_string(32));
        Ok((headers, body))
    }

    /// The headers WeChat puts on a notification: `Wechatpay-*` signed by the platform key
    /// over `timestamp\nnonce\nbody\n`, and `Content-Type`.
    pub fn sign_notification(&self, body: &[u8], timestamp: i64, nonce: &str) -> HeaderMap {
        let mut headers = sign::sign_answer(
            &self.config.platform_key,
            &self.config.platform_serial,
            body,
            timestamp,
            nonce,
        );
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers
    }

    /// A `resource` object sealing `plaintext` under the APIv3 key, with `associated_data`
    /// and `original_type` = `original_type` (`transaction` or `refund`).
    pub fn encrypt_resource(&self, original_type: &str, plaintext: &[u8]) -> Value {
        let sealed = EncryptedResource::encrypt(&self.config.api_v3_key, original_type, original_type, plaintext);
        serde_json::to_value(sealed).unwrap_or(Value::Null)
    }

    /// A notification body: `{id, create_time, resource_type, event_type, summary, resource}`.
    fn notification_body(&self, event_type: &str, summary: &str, original_type: &str, resource: &Value) -> Vec<u8> {
        json!({
            "id": uuid::Uuid::now_v7().to_string(),
            "create_time": beijing(OffsetDateTime::now_utc()),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": summary,
            "resource": self.encrypt_resource(original_type, resource.to_string().as_bytes()),
        })
        .to_string()
        .into_bytes()
    }

    /// POSTs `body` to `url` on the notify schedule, freshly signed each attempt, until a 2xx.
    async fn deliver(&self, url: &str, body: Vec<u8>) -> Result<(), String> {
        let body = Bytes::from(body);
        let mut last = String::from("no attempt was scheduled");
        for wait in &self.config.notify_schedule {
            tokio::time::sleep(*wait).await;
            let mut request = http::Request::new(body.clone());
            *request.method_mut() = Method::POST;
            *request.uri_mut() = url.parse().map_err(|_| format!("notify_url {url:?} is not a URL"))?;
            let headers = self.sign_notification(&body, sign::unix_now(), &random_string(32));
            request.headers_mut().extend(headers);
            request.headers_mut().insert(
                header::USER_AGENT,
                HeaderValue::from_static("Mozilla/4.0 (zhifu WeChat Pay emulator)"),
            );
            match self.http.send(request).await {
                Ok(response) if response.status.is_success() => return Ok(()),
                Ok(response) => last = format!("HTTP {}", response.status),
                Err(e) => last = e.to_string(),
            }
        }
        Err(format!("the notification to {url} was never acknowledged ({last})"))
    }

    /// The fault queue: each API call takes the next fault, if any.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The emulated merchant's mchid.
    pub fn mchid(&self) -> &str {
        &self.config.mchid
    }

    /// The emulated merchant's appid.
    pub fn appid(&self) -> &str {
        &self.config.appid
    }

    /// The `Wechatpay-Serial` the emulator signs under.
    pub fn platform_serial(&self) -> &str {
        &self.config.platform_serial
    }

    /// The notify_url `order_no` was created with.
    pub fn notify_url(&self, order_no: &str) -> Option<String> {
        self.books.lock().ok()?.notify_url(order_no)
    }

    /// The `trade_state` a query for `order_no` would answer now.
    pub fn trade_state(&self, order_no: &str) -> Option<&'static str> {
        self.books.lock().ok()?.trade_state_of(order_no)
    }

    /// The `status` a refund query for `refund_no` would answer now.
    pub fn refund_status(&self, refund_no: &str) -> Option<&'static str> {
        self.books.lock().ok()?.refund_status_of(refund_no)
    }
}

/// Which API a request calls, for aimed faults.
fn api_of(method: &Method, path_and_query: &str) -> Api {
    let path = path_and_query.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["v3", "pay", "transactions", "native"]) => Api::Create,
        ("GET", ["v3", "pay", "transactions", "out-trade-no", _]) => Api::Query,
        ("POST", ["v3", "pay", "transactions", "out-trade-no", _, "close"]) => Api::Close,
        ("POST", ["v3", "refund", "domestic", "refunds"]) => Api::Refund,
        ("GET", ["v3", "refund", "domestic", "refunds", _]) => Api::RefundQuery,
        _ => Api::Other,
    }
}

/// The HTTP status WeChat Pay documents for an error `code` (the refund page's table:
/// https://pay.weixin.qq.com/doc/v3/merchant/4012552567).
fn documented_status(code: &str) -> StatusCode {
    match code {
        "FREQUENCY_LIMITED" => StatusCode::TOO_MANY_REQUESTS,
        "SYSTEM_ERROR" => StatusCode::INTERNAL_SERVER_ERROR,
        "SIGN_ERROR" => StatusCode::UNAUTHORIZED,
        "NO_AUTH" | "NOT_ENOUGH" | "USER_ACCOUNT_ABNORMAL" | "OUT_TRADE_NO_USED" | "REQUEST_BLOCKED" => {
            StatusCode::FORBIDDEN
        }
        "RESOURCE_NOT_EXISTS" | "ORDER_NOT_EXIST" => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// Decodes `%XX` escapes; `None` on a broken escape or non-UTF-8 result.
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_reverses_the_clients_encoding_and_refuses_broken_escapes() {
        assert_eq!(percent_decode("..%2Fx%3Fy%3D1").as_deref(), Some("../x?y=1"));
        assert_eq!(percent_decode("plain_-*").as_deref(), Some("plain_-*"));
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%ff"), None, "not UTF-8");
    }

    #[test]
    fn sandbox_pairs_match_and_look_fake() {
        let (credentials, config) = WechatEmulator::sandbox_pair();
        assert_eq!(credentials.mchid, "1900000109");
        assert!(credentials.platform_public_key_id.starts_with("PUB_KEY_ID_"));
        assert!(
            credentials.platform_public_key_id[11..]
                .bytes()
                .all(|b| b.is_ascii_digit())
        );
        assert_eq!(credentials.platform_public_key_id, config.platform_serial);
        assert_eq!(credentials.api_v3_key, config.api_v3_key);
        assert_eq!(credentials.merchant_serial_no.len(), 40);
        let signature = credentials.merchant_key.sign_base64(b"m");
        assert!(config.merchant_public_key.verify_base64(b"m", &signature));
        let signature = config.platform_key.sign_base64(b"p");
        assert!(credentials.platform_public_key.unwrap().verify_base64(b"p", &signature));
        assert!(!format!("{config:?}").contains(std::str::from_utf8(&config.api_v3_key).unwrap()));

        let (credentials, config) = WechatEmulator::sandbox_pair_certificate_mode();
        assert!(credentials.platform_public_key.is_none());
        let info = cert::parse_der(config.platform_certificate.as_deref().unwrap()).unwrap();
        assert_eq!(info.serial_no, config.platform_serial);
        assert_eq!(info.spki_der, config.platform_key.public_key_der());
    }
}
