//! An in-memory Alipay gateway for one app, speaking the real wire protocol with its own keys:
//! it verifies the app's RSA2 request signatures, answers precreate / query / close / refund /
//! refund query with signed `*_response` nodes, and delivers signed payment notifications.
//! The trade rules (what exists when, error codes) live in `emulator_trade`; fault injection
//! comes from `pay::sandbox`. Behaviour follows https://opendocs.alipay.com/open/02ekfg and
//! the pages linked from `client`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, Method, StatusCode};
use http_body_util::Full;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::client::AlipayCredentials;
use super::emulator_trade::{self as trade, Order, Stage};
use super::{beijing, sign};
use crate::pay::keys::{PrivateKey, PublicKey};
use crate::pay::money;
use crate::pay::outbound::HttpClient;
use crate::pay::sandbox::{Api, Fault, Faults};

/// The app id [`AlipayEmulator::sandbox_pair`] uses: clearly not a real app.
pub const SANDBOX_APP_ID: &str = "2021000000000000";
/// The seller PID [`AlipayEmulator::sandbox_pair`] uses: clearly not a real merchant.
pub const SANDBOX_SELLER_ID: &str = "2088000000000000";

/// What the emulator needs: the app's public key and Alipay's private key.
#[derive(Debug)]
pub struct AlipayEmulatorConfig {
    /// The one app the gateway serves.
    pub app_id: String,
    /// The merchant's PID, sent as `seller_id` in notifications.
    pub seller_id: String,
    /// Verifies the app's request signatures.
    pub app_public_key: PublicKey,
    /// "Alipay's" key: signs answers and notifications.
    pub alipay_key: PrivateKey,
    /// Pause before each delivery attempt of a notification (the first is usually zero);
    /// delivery stops at the first answer that is exactly `success`. Empty = one attempt.
    pub notify_delays: Vec<Duration>,
}

/// Emulates Alipay's gateway (`/gateway.do`) for one app.
#[derive(Debug)]
pub struct AlipayEmulator {
    config: AlipayEmulatorConfig,
    http: HttpClient,
    faults: Faults,
    state: Mutex<State>,
    /// Signs answers when a `Fault::BadSignature` is queued; made on first use.
    wrong_key: OnceLock<PrivateKey>,
}

/// Every order the app precreated, by `out_trade_no`.
#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) orders: HashMap<String, Order>,
    /// Makes trade numbers and QR codes unique.
    pub(super) serial: u64,
}

/// One answer before it is signed.
struct Answer {
    node_name: String,
    node: Map<String, Value>,
    /// False for the few refusals Alipay sends unsigned (an unknown app_id, a bad method).
    signed: bool,
}

/// A request past the gateway's checks.
struct Admitted {
    /// e.g. `alipay.trade.query`.
    api: String,
    /// e.g. `alipay_trade_query_response`.
    node_name: String,
    notify_url: Option<String>,
    biz: Map<String, Value>,
}

const METHODS: &[&str] = &[
    "alipay.trade.precreate",
    "alipay.trade.query",
    "alipay.trade.close",
    "alipay.trade.refund",
    "alipay.trade.fastpay.refund.query",
];

impl AlipayEmulator {
    /// Matching credentials (for the client) and emulator configuration, with fresh keys, the
    /// fake [`SANDBOX_APP_ID`] and [`SANDBOX_SELLER_ID`], and quick notification retries.
    pub fn sandbox_pair() -> (AlipayCredentials, AlipayEmulatorConfig) {
        let app_key = PrivateKey::generate();
        let alipay_key = PrivateKey::generate();
        let config = AlipayEmulatorConfig {
            app_id: SANDBOX_APP_ID.into(),
            seller_id: SANDBOX_SELLER_ID.into(),
            app_public_key: app_key.public_key(),
            alipay_key,
            notify_delays: [0, 500, 2_000, 5_000, 15_000]
                .into_iter()
                .map(Duration::from_millis)
                .collect(),
        };
        let credentials = AlipayCredentials {
            app_id: SANDBOX_APP_ID.into(),
            seller_id: SANDBOX_SELLER_ID.into(),
            app_key,
            alipay_public_key: config.alipay_key.public_key(),
        };
        (credentials, config)
    }

    /// An emulator with no orders; `http` delivers the notifications.
    pub fn new(config: AlipayEmulatorConfig, http: HttpClient) -> Arc<Self> {
        Arc::new(AlipayEmulator {
            config,
            http,
            faults: Faults::default(),
            state: Mutex::new(State::default()),
            wrong_key: OnceLock::new(),
        })
    }

    /// Serves one gateway request: `path_and_query` ends in `/gateway.do` with the common
    /// parameters in the query string, `biz_content` in the form body (either may hold any
    /// parameter, as at the real gateway). Consumes one queued [`Fault`].
    pub async fn handle(
        self: &Arc<Self>,
        method: &Method,
        path_and_query: &str,
        _headers: &HeaderMap,
        body: Bytes,
    ) -> http::Response<Full<Bytes>> {
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        if !path.ends_with("/gateway.do") {
            return plain(StatusCode::NOT_FOUND, "not found");
        }
        if method != Method::POST && method != Method::GET {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "use POST");
        }
        let _in_flight = self.faults.enter();
        let latency = self.faults.latency();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let (fault, applied) = match self.faults.take(api_of(query.as_bytes(), &body)) {
            Some(Fault::AfterApplying(then)) => (Some(*then), Some(self.answer(query.as_bytes(), &body, None))),
            other => (other, None),
        };
        if let Some(Fault::Delay(pause)) = &fault {
            tokio::time::sleep(*pause).await;
        }
        if fault == Some(Fault::ServerError) {
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "<html><body>500 Internal Server Error</body></html>",
            );
        }
        let answer = match applied {
            Some(real) if !matches!(fault, Some(Fault::Reject { .. })) => real,
            _ => self.answer(query.as_bytes(), &body, fault.as_ref()),
        };
        let node = Value::Object(answer.node).to_string();
        let text = if fault == Some(Fault::BadSignature) {
            let wrong = self.wrong_key.get_or_init(PrivateKey::generate);
            sign::sign_answer(wrong, &answer.node_name, &node)
        } else if answer.signed {
            sign::sign_answer(&self.config.alipay_key, &answer.node_name, &node)
        } else {
            format!("{{{}:{node}}}", Value::from(answer.node_name))
        };
        let mut response = http::Response::new(Full::new(Bytes::from(text)));
        // What the real gateway labels its JSON with.
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/html;charset=utf-8"));
        response
    }

    /// Pays `order_no` and delivers the signed TRADE_SUCCESS notification to the
    /// order's notify_url until acknowledged. Refuses an unknown, closed or expired order;
    /// paying a paid order delivers its notification again; an order precreated without a
    /// notify_url is paid with nothing to deliver.
    pub async fn pay(&self, order_no: &str) -> Result<(), String> {
        self.settle(order_no, false).await
    }

    /// [`pay`](Self::pay) even when the order was closed or expired, as when the buyer pays in
    /// the instant the merchant closes the trade.
    pub async fn force_pay(&self, order_no: &str) -> Result<(), String> {
        self.settle(order_no, true).await
    }

    /// The buyer scans the QR: the trade now exists at Alipay as `WAIT_BUYER_PAY`.
    pub fn scan(&self, order_no: &str) -> Result<(), String> {
        let mut state = self.lock();
        state.serial += 1;
        let serial = state.serial;
        let order = state.orders.get_mut(order_no).ok_or("unknown order")?;
        match order.stage {
            Stage::Issued => {
                order.open_trade(serial, OffsetDateTime::now_utc());
                order.stage = Stage::Scanned;
                Ok(())
            }
            Stage::Scanned => Ok(()),
            Stage::Withdrawn | Stage::Closed => Err("the order is closed".into()),
            Stage::Paid => Err("the order is paid".into()),
        }
    }

    /// Faults for the next API calls.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The app id this gateway serves.
    pub fn app_id(&self) -> &str {
        &self.config.app_id
    }

    /// Alipay's public key: what a client verifies this gateway's answers and notifications with.
    pub fn alipay_public_key(&self) -> PublicKey {
        self.config.alipay_key.public_key()
    }

    /// The seller PID notifications carry.
    pub fn seller_id(&self) -> &str {
        &self.config.seller_id
    }

    /// The `notify_url` the order was precreated with.
    pub fn notify_url(&self, order_no: &str) -> Option<String> {
        self.lock().orders.get(order_no).and_then(|o| o.notify_url.clone())
    }

    /// Fen refunded so far on the order.
    pub fn refunded_fen(&self, order_no: &str) -> Option<i64> {
        self.lock().orders.get(order_no).map(Order::refunded_fen)
    }

    /// How many refunds Alipay booked for the order.
    pub fn refund_count(&self, order_no: &str) -> usize {
        self.lock().orders.get(order_no).map_or(0, |o| o.refunds.len())
    }

    /// How many orders were precreated at this gateway.
    pub fn order_count(&self) -> usize {
        self.lock().orders.len()
    }

    /// The signed form body of the order's payment notification (the one [`pay`](Self::pay)
    /// delivers), without sending it.
    pub fn payment_notification(&self, order_no: &str) -> Result<Vec<u8>, String> {
        let state = self.lock();
        let order = state.orders.get(order_no).ok_or("unknown order")?;
        if order.stage != Stage::Paid {
            return Err("the order is not paid".into());
        }
        Ok(self.notification(order, false))
    }

    /// The signed notification Alipay sends after a refund: `TRADE_SUCCESS` (or
    /// `TRADE_CLOSED` once fully refunded) with `refund_fee` = all refunded so far,
    /// `gmt_refund` and `out_biz_no` = the last refund's `out_request_no`. Not sent.
    pub fn refund_notification(&self, order_no: &str) -> Result<Vec<u8>, String> {
        let state = self.lock();
        let order = state.orders.get(order_no).ok_or("unknown order")?;
        if order.refunds.is_empty() {
            return Err("the order has no refund".into());
        }
        Ok(self.notification(order, true))
    }

    /// A form body of `params` signed by "Alipay" with the notification rule (no `sign` or
    /// `sign_type` in the signed string); `sign_type=RSA2` is added when absent. For crafting
    /// arbitrary notifications in tests.
    pub fn sign_form(&self, params: &[(&str, &str)]) -> Vec<u8> {
        let signature = self
            .config
            .alipay_key
            .sign_base64(sign::notify_sign_content(params.iter().copied()).as_bytes());
        let has_sign_type = params.iter().any(|(k, _)| *k == "sign_type");
        let fields = params
            .iter()
            .copied()
            .filter(|(k, _)| *k != "sign")
            .chain((!has_sign_type).then_some(("sign_type", sign::SIGN_TYPE)))
            .chain([("sign", signature.as_str())]);
        sign::encode_form(fields).into_bytes()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Lets the request through the gateway's checks, applies a queued rejection, then hands
    /// `biz_content` to the trade rules.
    fn answer(&self, query: &[u8], body: &[u8], fault: Option<&Fault>) -> Answer {
        let request = match self.admit(query, body) {
            Ok(request) => request,
            Err(refusal) => return refusal,
        };
        if let Some(Fault::Reject { code, message }) = fault {
            let gateway_code = match code.split('.').next() {
                Some("isp") => "20000",
                Some("isv") => "40002",
                Some("aop") => "20001",
                _ => "40004",
            };
            return gateway_error(&request.node_name, gateway_code, code, message, true);
        }
        let now = OffsetDateTime::now_utc();
        let biz = &request.biz;
        let mut state = self.lock();
        let node = match request.api.as_str() {
            "alipay.trade.precreate" => trade::precreate(&mut state, biz, request.notify_url.as_deref()),
            "alipay.trade.query" => trade::query(&state, biz),
            "alipay.trade.close" => trade::close(&mut state, biz),
            "alipay.trade.refund" => trade::refund(&mut state, biz, now),
            _ => trade::refund_query(&state, biz),
        };
        Answer {
            node_name: request.node_name,
            node,
            signed: true,
        }
    }

    /// The gateway's checks, in its order: a known method, our app, the RSA2 signature with
    /// the app's key, then the common parameters and `biz_content`.
    fn admit(&self, query: &[u8], body: &[u8]) -> Result<Admitted, Answer> {
        let params = gather_params(query, body)?;
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
        };
        let Some(api) = param("method") else {
            return Err(gateway_error(
                sign::ERROR_NODE,
                "40001",
                "isv.missing-method",
                "缺少方法名参数",
                false,
            ));
        };
        if !METHODS.contains(&api) {
            return Err(gateway_error(
                sign::ERROR_NODE,
                "40002",
                "isv.invalid-method",
                "不存在的方法名",
                false,
            ));
        }
        let node_name = sign::response_node(api);
        let refuse = |code: &str, sub_code: &str, sub_msg: &str, signed: bool| {
            Err(gateway_error(&node_name, code, sub_code, sub_msg, signed))
        };
        match param("app_id") {
            None => return refuse("40001", "isv.missing-app-id", "缺少AppID参数", false),
            Some(app_id) if app_id != self.config.app_id => {
                return refuse("40002", "isv.invalid-app-id", "无效的AppID参数", false);
            }
            Some(_) => {}
        }
        let Some(signature) = param("sign") else {
            return refuse("40001", "isv.missing-signature", "缺少签名参数", true);
        };
        match param("sign_type") {
            None => return refuse("40001", "isv.missing-signature-type", "缺少签名类型参数", true),
            Some(t) if t != sign::SIGN_TYPE => {
                return refuse("40002", "isv.invalid-signature-type", "无效的签名类型参数", true);
            }
            Some(_) => {}
        }
        let content = sign::request_sign_content(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if !self.config.app_public_key.verify_base64(content.as_bytes(), signature) {
            // The real gateway also shows the string it verified.
            let message =
                format!("验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：{content}");
            return refuse("40002", "isv.invalid-signature", &message, true);
        }
        match param("timestamp").map(beijing::parse) {
            None => return refuse("40001", "isv.missing-timestamp", "缺少时间戳参数", true),
            Some(None) => return refuse("40002", "isv.invalid-timestamp", "非法的时间戳参数", true),
            Some(Some(_)) => {}
        }
        if param("charset").is_some_and(|c| !c.eq_ignore_ascii_case("utf-8")) {
            return refuse("40002", "isv.invalid-charset", "字符集错误", true);
        }
        if param("format").is_some_and(|f| !f.eq_ignore_ascii_case("json")) {
            return refuse("40002", "isv.invalid-format", "无效的数据格式参数", true);
        }
        if param("version") != Some("1.0") {
            return refuse("40002", "isv.invalid-version", "版本号错误", true);
        }
        let Some(Ok(Value::Object(biz))) = param("biz_content").map(serde_json::from_str::<Value>) else {
            return refuse("40004", "ACQ.INVALID_PARAMETER", "参数无效: biz_content", true);
        };
        Ok(Admitted {
            api: api.to_string(),
            notify_url: param("notify_url").map(str::to_string),
            node_name,
            biz,
        })
    }

    async fn settle(&self, order_no: &str, force: bool) -> Result<(), String> {
        let delivery = {
            let now = OffsetDateTime::now_utc();
            let mut state = self.lock();
            state.serial += 1;
            let serial = state.serial;
            let order = state.orders.get_mut(order_no).ok_or("unknown order")?;
            match order.stage {
                Stage::Withdrawn | Stage::Closed if !force => return Err("the order is closed".into()),
                Stage::Issued | Stage::Scanned if !force && order.time_expire.is_some_and(|t| t < now) => {
                    return Err("the order has expired".into());
                }
                _ => {}
            }
            if order.stage != Stage::Paid {
                order.open_trade(serial, now);
                order.stage = Stage::Paid;
                order.gmt_payment = Some(now);
                order.notify_id = notify_id(serial);
            }
            let body = self.notification(order, false);
            order.notify_url.clone().map(|url| (url, body))
        };
        match delivery {
            Some((url, body)) => self.deliver(&url, Bytes::from(body)).await,
            None => Ok(()),
        }
    }

    /// The form fields of a trade_status_sync notification about `order`, signed.
    fn notification(&self, order: &Order, after_refund: bool) -> Vec<u8> {
        let now = OffsetDateTime::now_utc();
        let time = |t: Option<OffsetDateTime>| t.map(beijing::format).unwrap_or_default();
        let total = money::format_yuan(order.total_fen);
        let refunded = order.refunded_fen();
        let fully_refunded = refunded >= order.total_fen;
        let fund_bill = json!([{ "amount": total, "fundChannel": "ALIPAYACCOUNT" }]).to_string();
        let (notify_id, status) = if after_refund {
            let status = if fully_refunded {
                "TRADE_CLOSED"
            } else {
                "TRADE_SUCCESS"
            };
            (notify_id(order.refunds.len() as u64 + 1_000_000), status)
        } else {
            (order.notify_id.clone(), "TRADE_SUCCESS")
        };
        let mut fields: Vec<(&str, String)> = vec![
            ("gmt_create", time(order.gmt_create)),
            ("charset", "utf-8".into()),
            ("gmt_payment", time(order.gmt_payment)),
            ("notify_time", beijing::format(now)),
            ("subject", order.subject.clone()),
            ("buyer_id", trade::BUYER_ID.into()),
            ("invoice_amount", total.clone()),
            ("version", "1.0".into()),
            ("notify_id", notify_id),
            ("fund_bill_list", fund_bill),
            ("notify_type", "trade_status_sync".into()),
            ("out_trade_no", order.out_trade_no.clone()),
            ("total_amount", total.clone()),
            ("trade_status", status.into()),
            ("trade_no", order.trade_no.clone().unwrap_or_default()),
            ("auth_app_id", self.config.app_id.clone()),
            ("receipt_amount", total.clone()),
            ("point_amount", "0.00".into()),
            ("buyer_pay_amount", total),
            ("app_id", self.config.app_id.clone()),
            ("seller_id", self.config.seller_id.clone()),
            ("buyer_logon_id", trade::BUYER_LOGON_ID.into()),
        ];
        if after_refund && let Some(last) = order.refunds.last() {
            fields.push(("refund_fee", money::format_yuan(refunded)));
            // Alipay's gmt_refund carries milliseconds, unlike every other time.
            fields.push((
                "gmt_refund",
                format!("{}.{:03}", beijing::format(last.at), last.at.millisecond()),
            ));
            fields.push(("out_biz_no", last.out_request_no.clone()));
            if fully_refunded {
                fields.push(("gmt_close", beijing::format(last.at)));
            }
        }
        let borrowed: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.sign_form(&borrowed)
    }

    /// POSTs `body` to `url` on the configured schedule until the answer is exactly `success`.
    async fn deliver(&self, url: &str, body: Bytes) -> Result<(), String> {
        let delays: &[Duration] = if self.config.notify_delays.is_empty() {
            &[Duration::ZERO]
        } else {
            &self.config.notify_delays
        };
        let mut last = String::new();
        for delay in delays {
            tokio::time::sleep(*delay).await;
            let request = http::Request::post(url)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded; charset=utf-8")
                .body(body.clone())
                .map_err(|e| format!("the notify_url {url:?} is unusable: {e}"))?;
            match self.http.send(request).await {
                Ok(r) if r.status == StatusCode::OK && r.body.as_ref() == b"success" => return Ok(()),
                Ok(r) => last = format!("HTTP {} {:?}", r.status, String::from_utf8_lossy(&r.body)),
                Err(e) => last = e.to_string(),
            }
        }
        Err(format!(
            "the notification to {url} was not acknowledged after {} attempts; last answer: {last}",
            delays.len()
        ))
    }
}

/// The parameters of the query string and the form body together; a parameter given twice
/// (in one or across both) is refused.
fn gather_params(query: &[u8], body: &[u8]) -> Result<Vec<(String, String)>, Answer> {
    let invalid = |e: &str| gateway_error(sign::ERROR_NODE, "40002", "isv.invalid-parameter", e, false);
    let mut params = sign::parse_form(query).map_err(|e| invalid(&e))?;
    let more = sign::parse_form(body).map_err(|e| invalid(&e))?;
    if more.iter().any(|(k, _)| params.iter().any(|(seen, _)| seen == k)) {
        return Err(invalid("a parameter is both in the query string and in the body"));
    }
    params.extend(more);
    Ok(params)
}

/// Which API a gateway request calls (its `method` parameter), for aimed faults.
fn api_of(query: &[u8], body: &[u8]) -> Api {
    let method = form_urlencoded::parse(query)
        .chain(form_urlencoded::parse(body))
        .find(|(k, _)| k == "method")
        .map(|(_, v)| v);
    match method.as_deref() {
        Some("alipay.trade.precreate") => Api::Create,
        Some("alipay.trade.query") => Api::Query,
        Some("alipay.trade.close") => Api::Close,
        Some("alipay.trade.refund") => Api::Refund,
        Some("alipay.trade.fastpay.refund.query") => Api::RefundQuery,
        _ => Api::Other,
    }
}

/// A refusal node: `code`/`msg` of the gateway, `sub_code`/`sub_msg` of the cause.
fn gateway_error(node_name: &str, code: &str, sub_code: &str, sub_msg: &str, signed: bool) -> Answer {
    let msg = match code {
        "20000" => "Service Currently Unavailable",
        "20001" => "Insufficient Token Permissions",
        "40001" => "Missing Required Arguments",
        "40002" => "Invalid Arguments",
        "40004" => "Business Failed",
        _ => "Failed",
    };
    let mut node = Map::new();
    node.insert("code".into(), code.into());
    node.insert("msg".into(), msg.into());
    node.insert("sub_code".into(), sub_code.into());
    node.insert("sub_msg".into(), sub_msg.into());
    Answer {
        node_name: node_name.to_string(),
        node,
        signed,
    }
}

/// A notification id: fixed for one notification across its retries.
fn notify_id(serial: u64) -> String {
    let uuid = uuid::Uuid::now_v7().simple().to_string();
    format!("{serial:06}{}", &uuid[uuid.len() - 26..])
}

fn plain(status: StatusCode, text: &'static str) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}
