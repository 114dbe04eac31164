//! The emulator's books: one merchant's orders and refunds, and the API's answers about them
//! (status, JSON body, WeChat's error `code`s). Pure and synchronous: authentication, faults,
//! signing and notification delivery live in `emulator`. Answers are written from WeChat's
//! documentation with `json!`, not from the client's types, so the two check each other.
//! https://pay.weixin.qq.com/doc/v3/merchant/4012525171 (Native下单 and its error codes)

use std::collections::HashMap;

use http::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::pay::wechat::crypto::{random_digits, random_string};

/// What the API answers: a status and a JSON body (empty for 204).
#[derive(Debug)]
pub(super) struct Reply {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl Reply {
    fn ok(body: &Value) -> Self {
        Reply {
            status: StatusCode::OK,
            body: body.to_string().into_bytes(),
        }
    }

    fn no_content() -> Self {
        Reply {
            status: StatusCode::NO_CONTENT,
            body: Vec::new(),
        }
    }
}

/// WeChat's error answer `{"code","message"}`.
pub(super) fn error(status: StatusCode, code: &str, message: &str) -> Reply {
    Reply {
        status,
        body: json!({ "code": code, "message": message }).to_string().into_bytes(),
    }
}

fn param_error(message: &str) -> Reply {
    error(StatusCode::BAD_REQUEST, "PARAM_ERROR", message)
}

/// RFC 3339 in Beijing time, as WeChat writes every time.
pub(super) fn beijing(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]+08:00");
    at.to_offset(time::macros::offset!(+8))
        .format(&format)
        .unwrap_or_default()
}

#[derive(Debug, Clone)]
enum Payment {
    NotPaid,
    Paid {
        transaction_id: String,
        success_time: OffsetDateTime,
    },
    Closed,
}

#[derive(Debug, Clone)]
struct Order {
    out_trade_no: String,
    description: String,
    notify_url: String,
    /// Fen.
    total: i64,
    time_expire: Option<OffsetDateTime>,
    code_url: String,
    payment: Payment,
    openid: String,
}

#[derive(Debug, Clone)]
struct RefundRecord {
    out_refund_no: String,
    out_trade_no: String,
    transaction_id: String,
    refund_id: String,
    /// Fen.
    refund: i64,
    total: i64,
    notify_url: String,
    create_time: OffsetDateTime,
    outcome: Outcome,
}

/// Where a refund stands at WeChat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Processing,
    Success(OffsetDateTime),
    /// Closed: the money stayed with the merchant.
    Closed,
    /// Stuck (the payer's card was cancelled, …) until the merchant handles it by hand.
    Abnormal,
}

impl Outcome {
    fn status(self) -> &'static str {
        match self {
            Outcome::Processing => "PROCESSING",
            Outcome::Success(_) => "SUCCESS",
            Outcome::Closed => "CLOSED",
            Outcome::Abnormal => "ABNORMAL",
        }
    }
}

/// One merchant's orders and refunds.
#[derive(Debug)]
pub(super) struct Books {
    mchid: String,
    appid: String,
    orders: HashMap<String, Order>,
    refunds: HashMap<String, RefundRecord>,
}

/// A refund the books just accepted: complete it later.
pub(super) struct NewRefund {
    pub out_refund_no: String,
}

fn text<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str)
}

/// `out_trade_no`: 6–32 of `[0-9A-Za-z_-*]` (the v3 docs' charset; v2's minimum length).
fn valid_order_no(no: &str) -> bool {
    (6..=32).contains(&no.len()) && no.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-*".contains(&b))
}

/// `out_refund_no`: 1–64 of `[0-9A-Za-z_-|*@]`.
fn valid_refund_no(no: &str) -> bool {
    (1..=64).contains(&no.len()) && no.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-|*@".contains(&b))
}

/// A notify_url WeChat accepts: http(s), ≤ 255 bytes, no query string. (WeChat demands https
/// on the public internet; the emulator allows http for loopback tests.)
fn valid_notify_url(url: &str) -> bool {
    url.len() <= 255 && (url.starts_with("https://") || url.starts_with("http://")) && !url.contains('?')
}

impl Books {
    pub fn new(mchid: &str, appid: &str) -> Self {
        Books {
            mchid: mchid.to_string(),
            appid: appid.to_string(),
            orders: HashMap::new(),
            refunds: HashMap::new(),
        }
    }

    /// `POST /v3/pay/transactions/native`.
    pub fn create(&mut self, body: &[u8]) -> Reply {
        let Ok(body) = serde_json::from_slice::<Value>(body) else {
            return param_error("请求体不是合法的JSON");
        };
        let (Some(appid), Some(mchid)) = (text(&body, "appid"), text(&body, "mchid")) else {
            return param_error("缺少参数 appid 或 mchid");
        };
        if mchid != self.mchid {
            return error(StatusCode::BAD_REQUEST, "MCH_NOT_EXISTS", "商户号不存在");
        }
        if appid != self.appid {
            return error(StatusCode::BAD_REQUEST, "APPID_MCHID_NOT_MATCH", "AppID和mch_id不匹配");
        }
        let description = text(&body, "description").unwrap_or("");
        if description.is_empty() || description.len() > 127 {
            return param_error("description 长度应为 1 到 127 字节");
        }
        let out_trade_no = text(&body, "out_trade_no").unwrap_or("");
        if !valid_order_no(out_trade_no) {
            return param_error("out_trade_no 只能是 6 到 32 位数字、大小写字母、_-*");
        }
        let notify_url = text(&body, "notify_url").unwrap_or("");
        if !valid_notify_url(notify_url) {
            return param_error("notify_url 格式错误");
        }
        let time_expire = match body.get("time_expire") {
            None => None,
            Some(value) => match value.as_str().map(|t| OffsetDateTime::parse(t, &Rfc3339)) {
                Some(Ok(at)) => Some(at),
                _ => return param_error("time_expire 不是 rfc3339 格式"),
            },
        };
        let amount = body.get("amount");
        let Some(total) = amount
            .and_then(|a| a.get("total"))
            .and_then(Value::as_i64)
            .filter(|t| *t >= 1)
        else {
            return param_error("amount.total 必须是大于 0 的整数");
        };
        if amount
            .and_then(|a| a.get("currency"))
            .is_some_and(|c| c.as_str() != Some("CNY"))
        {
            return param_error("amount.currency 只支持 CNY");
        }
        if let Some(order) = self.orders.get(out_trade_no) {
            return match order.payment {
                Payment::Paid { .. } => error(StatusCode::BAD_REQUEST, "ORDERPAID", "该订单已支付"),
                Payment::Closed => error(StatusCode::BAD_REQUEST, "ORDER_CLOSED", "订单已关闭"),
                Payment::NotPaid if order.total == total && order.description == description => {
                    Reply::ok(&json!({ "code_url": order.code_url }))
                }
                Payment::NotPaid => error(StatusCode::FORBIDDEN, "OUT_TRADE_NO_USED", "商户订单号重复"),
            };
        }
        let code_url = format!("weixin://wxpay/bizpayurl?pr={}", random_string(9));
        self.orders.insert(
            out_trade_no.to_string(),
            Order {
                out_trade_no: out_trade_no.to_string(),
                description: description.to_string(),
                notify_url: notify_url.to_string(),
                total,
                time_expire,
                code_url: code_url.clone(),
                payment: Payment::NotPaid,
                openid: format!("oUpF8uMuAJO_M2pxb1Q9zNjWeS{}", random_string(2)),
            },
        );
        Reply::ok(&json!({ "code_url": code_url }))
    }

    fn trade_state(&self, order: &Order) -> &'static str {
        match order.payment {
            Payment::NotPaid => "NOTPAY",
            Payment::Closed => "CLOSED",
            Payment::Paid { .. }
                if self
                    .refunds
                    .values()
                    .any(|r| r.out_trade_no == order.out_trade_no && r.outcome != Outcome::Closed) =>
            {
                "REFUND"
            }
            Payment::Paid { .. } => "SUCCESS",
        }
    }

    /// The transaction as the query answers it and the payment notification carries it.
    fn transaction(&self, order: &Order) -> Value {
        let state = self.trade_state(order);
        let mut value = json!({
            "appid": self.appid,
            "mchid": self.mchid,
            "out_trade_no": order.out_trade_no,
            "trade_state": state,
            "trade_state_desc": match state {
                "NOTPAY" => "订单未支付",
                "CLOSED" => "订单已关闭",
                "REFUND" => "订单发生过退款",
                _ => "支付成功",
            },
            "attach": "",
            "amount": { "total": order.total, "currency": "CNY", "payer_currency": "CNY" },
        });
        if let Payment::Paid {
            transaction_id,
            success_time,
        } = &order.payment
        {
            value["transaction_id"] = json!(transaction_id);
            value["trade_type"] = json!("NATIVE");
            value["bank_type"] = json!("OTHERS");
            value["success_time"] = json!(beijing(*success_time));
            value["payer"] = json!({ "openid": order.openid });
            value["amount"]["payer_total"] = json!(order.total);
            value["promotion_detail"] = json!([]);
        }
        value
    }

    /// `GET /v3/pay/transactions/out-trade-no/{no}?mchid=…`.
    pub fn query(&self, out_trade_no: &str, query: &str) -> Reply {
        let mchid = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "mchid");
        match mchid {
            None => return param_error("缺少参数 mchid"),
            Some((_, mchid)) if mchid != self.mchid => {
                return error(StatusCode::BAD_REQUEST, "MCH_NOT_EXISTS", "商户号不存在");
            }
            Some(_) => {}
        }
        match self.orders.get(out_trade_no) {
            Some(order) => Reply::ok(&self.transaction(order)),
            None => error(StatusCode::NOT_FOUND, "ORDER_NOT_EXIST", "订单不存在"),
        }
    }

    /// `POST /v3/pay/transactions/out-trade-no/{no}/close`: 204, also for unknown and closed
    /// orders (WeChat checks the form, not the order); 400 `ORDERPAID` once paid.
    pub fn close(&mut self, out_trade_no: &str, body: &[u8]) -> Reply {
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        match text(&body, "mchid") {
            None => return param_error("缺少参数 mchid"),
            Some(mchid) if mchid != self.mchid => {
                return error(StatusCode::BAD_REQUEST, "MCH_NOT_EXISTS", "商户号不存在");
            }
            Some(_) => {}
        }
        if let Some(order) = self.orders.get_mut(out_trade_no) {
            match order.payment {
                Payment::Paid { .. } => return error(StatusCode::BAD_REQUEST, "ORDERPAID", "订单已支付"),
                Payment::NotPaid => order.payment = Payment::Closed,
                Payment::Closed => {}
            }
        }
        Reply::no_content()
    }

    /// Marks an order paid now. `force` pays a closed or expired order too (a payment that
    /// raced the close). An order already paid stays as it was.
    pub fn mark_paid(&mut self, out_trade_no: &str, force: bool, now: OffsetDateTime) -> Result<(), String> {
        let order = self
            .orders
            .get_mut(out_trade_no)
            .ok_or_else(|| format!("no order {out_trade_no}"))?;
        match order.payment {
            Payment::Paid { .. } => return Ok(()),
            Payment::Closed if !force => return Err(format!("order {out_trade_no} is closed")),
            _ if !force && order.time_expire.is_some_and(|at| at <= now) => {
                return Err(format!("order {out_trade_no} expired"));
            }
            _ => {}
        }
        order.payment = Payment::Paid {
            transaction_id: format!("4200{}", random_digits(24)),
            success_time: now,
        };
        Ok(())
    }

    /// The decrypted resource of the TRANSACTION.SUCCESS notification and where it goes;
    /// `Err` unless the order is paid.
    pub fn payment_notice(&self, out_trade_no: &str) -> Result<(String, Value), String> {
        let order = self
            .orders
            .get(out_trade_no)
            .ok_or_else(|| format!("no order {out_trade_no}"))?;
        match order.payment {
            Payment::Paid { .. } => Ok((order.notify_url.clone(), self.transaction(order))),
            _ => Err(format!("order {out_trade_no} is not paid")),
        }
    }

    /// The notify_url an order was created with.
    pub fn notify_url(&self, out_trade_no: &str) -> Option<String> {
        self.orders.get(out_trade_no).map(|o| o.notify_url.clone())
    }

    /// The `trade_state` a query would answer.
    pub fn trade_state_of(&self, out_trade_no: &str) -> Option<&'static str> {
        self.orders.get(out_trade_no).map(|o| self.trade_state(o))
    }

    fn refund_json(&self, record: &RefundRecord) -> Value {
        let mut value = json!({
            "refund_id": record.refund_id,
            "out_refund_no": record.out_refund_no,
            "transaction_id": record.transaction_id,
            "out_trade_no": record.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": beijing(record.create_time),
            "status": record.outcome.status(),
            "funds_account": "AVAILABLE",
            "amount": {
                "total": record.total,
                "refund": record.refund,
                "payer_total": record.total,
                "payer_refund": record.refund,
                "settlement_total": record.total,
                "settlement_refund": record.refund,
                "discount_refund": 0,
                "currency": "CNY",
                "refund_fee": 0,
            },
            "promotion_detail": [],
        });
        if let Outcome::Success(at) = record.outcome {
            value["success_time"] = json!(beijing(at));
        }
        value
    }

    /// `POST /v3/refund/domestic/refunds`: idempotent by `out_refund_no`; the refunds of an
    /// order never exceed its amount (`INVALID_REQUEST`, as WeChat answers then).
    pub fn refund(&mut self, body: &[u8], now: OffsetDateTime) -> (Reply, Option<NewRefund>) {
        let Ok(body) = serde_json::from_slice::<Value>(body) else {
            return (param_error("请求体不是合法的JSON"), None);
        };
        let out_refund_no = text(&body, "out_refund_no").unwrap_or("");
        if !valid_refund_no(out_refund_no) {
            return (param_error("out_refund_no 格式错误"), None);
        }
        let amount = body.get("amount");
        let refund = amount
            .and_then(|a| a.get("refund"))
            .and_then(Value::as_i64)
            .filter(|r| *r >= 1);
        let total = amount.and_then(|a| a.get("total")).and_then(Value::as_i64);
        let currency = amount.and_then(|a| a.get("currency")).and_then(Value::as_str);
        let (Some(refund), Some(total), Some("CNY")) = (refund, total, currency) else {
            return (
                param_error("amount.refund、amount.total、amount.currency(CNY) 必填"),
                None,
            );
        };
        if text(&body, "reason").is_some_and(|r| r.len() > 80) {
            return (param_error("reason 不能超过 80 字节"), None);
        }
        let notify_url = text(&body, "notify_url").unwrap_or("");
        if !notify_url.is_empty() && !valid_notify_url(notify_url) {
            return (param_error("notify_url 格式错误"), None);
        }
        let order = match (text(&body, "out_trade_no"), text(&body, "transaction_id")) {
            (Some(no), _) => self.orders.get(no),
            (None, Some(id)) => self
                .orders
                .values()
                .find(|o| matches!(&o.payment, Payment::Paid { transaction_id, .. } if transaction_id == id)),
            (None, None) => return (param_error("out_trade_no 与 transaction_id 必填其一"), None),
        };
        let Some(order) = order else {
            return (error(StatusCode::NOT_FOUND, "RESOURCE_NOT_EXISTS", "订单不存在"), None);
        };
        if let Some(existing) = self.refunds.get(out_refund_no) {
            return if existing.out_trade_no == order.out_trade_no && existing.refund == refund {
                (Reply::ok(&self.refund_json(existing)), None)
            } else {
                (
                    error(
                        StatusCode::BAD_REQUEST,
                        "INVALID_REQUEST",
                        "退款单号重复，请求参数与原退款单不一致",
                    ),
                    None,
                )
            };
        }
        let Payment::Paid { transaction_id, .. } = &order.payment else {
            return (
                error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "订单未支付，不能退款"),
                None,
            );
        };
        if total != order.total {
            return (param_error("amount.total 与原订单金额不一致"), None);
        }
        // A closed refund gave the money back to the merchant: it no longer counts.
        let refunded: i64 = self
            .refunds
            .values()
            .filter(|r| r.out_trade_no == order.out_trade_no && r.outcome != Outcome::Closed)
            .map(|r| r.refund)
            .sum();
        if refunded + refund > order.total {
            return (
                error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_REQUEST",
                    "申请退款金额超过订单可退金额",
                ),
                None,
            );
        }
        let record = RefundRecord {
            out_refund_no: out_refund_no.to_string(),
            out_trade_no: order.out_trade_no.clone(),
            transaction_id: transaction_id.clone(),
            refund_id: format!("503011{}", random_digits(23)),
            refund,
            total,
            notify_url: notify_url.to_string(),
            create_time: now,
            outcome: Outcome::Processing,
        };
        let reply = Reply::ok(&self.refund_json(&record));
        self.refunds.insert(out_refund_no.to_string(), record);
        (
            reply,
            Some(NewRefund {
                out_refund_no: out_refund_no.to_string(),
            }),
        )
    }

    /// `GET /v3/refund/domestic/refunds/{out_refund_no}`.
    pub fn query_refund(&self, out_refund_no: &str) -> Reply {
        match self.refunds.get(out_refund_no) {
            Some(record) => Reply::ok(&self.refund_json(record)),
            None => error(StatusCode::NOT_FOUND, "RESOURCE_NOT_EXISTS", "退款单不存在"),
        }
    }

    /// Finishes a refund that is PROCESSING (or ABNORMAL, handled by hand) with `outcome`;
    /// returns its notify_url and the resource of the notification (`REFUND.SUCCESS`,
    /// `REFUND.CLOSED`, `REFUND.ABNORMAL`). `None` when unknown or already final.
    pub fn settle_refund(&mut self, out_refund_no: &str, outcome: Outcome) -> Option<(String, Value)> {
        let record = self.refunds.get_mut(out_refund_no)?;
        if !matches!(record.outcome, Outcome::Processing | Outcome::Abnormal) || record.outcome == outcome {
            return None;
        }
        record.outcome = outcome;
        let mut resource = json!({
            "mchid": self.mchid,
            "out_trade_no": record.out_trade_no,
            "transaction_id": record.transaction_id,
            "out_refund_no": record.out_refund_no,
            "refund_id": record.refund_id,
            "refund_status": outcome.status(),
            "user_received_account": "支付用户零钱",
            "amount": {
                "total": record.total,
                "refund": record.refund,
                "payer_total": record.total,
                "payer_refund": record.refund,
            },
        });
        if let Outcome::Success(at) = outcome {
            resource["success_time"] = json!(beijing(at));
        }
        Some((record.notify_url.clone(), resource))
    }

    /// Finishes a PROCESSING refund successfully (see [`settle_refund`](Self::settle_refund)).
    #[cfg(test)]
    pub fn complete_refund(&mut self, out_refund_no: &str, now: OffsetDateTime) -> Option<(String, Value)> {
        self.settle_refund(out_refund_no, Outcome::Success(now))
    }

    /// The refund status a query would answer.
    pub fn refund_status_of(&self, out_refund_no: &str) -> Option<&'static str> {
        self.refunds.get(out_refund_no).map(|r| r.outcome.status())
    }

    /// The refunds booked for an order (whatever became of them).
    pub fn refunds_of(&self, out_trade_no: &str) -> usize {
        self.refunds.values().filter(|r| r.out_trade_no == out_trade_no).count()
    }

    /// Fen refunded successfully on an order.
    pub fn refunded_fen(&self, out_trade_no: &str) -> i64 {
        self.refunds
            .values()
            .filter(|r| r.out_trade_no == out_trade_no && matches!(r.outcome, Outcome::Success(_)))
            .map(|r| r.refund)
            .sum()
    }

    /// How many orders were created.
    pub fn order_count(&self) -> usize {
        self.orders.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn books_with_order(total: i64) -> Books {
        let mut books = Books::new("1900000109", "wxd678efh567hg6787");
        let reply = books.create(
            json!({
                "appid": "wxd678efh567hg6787", "mchid": "1900000109", "description": "捐赠",
                "out_trade_no": "order0001", "time_expire": "2099-01-01T00:00:00+08:00",
                "notify_url": "http://127.0.0.1:1/notify", "amount": {"total": total, "currency": "CNY"},
            })
            .to_string()
            .as_bytes(),
        );
        assert_eq!(reply.status, StatusCode::OK, "{}", String::from_utf8_lossy(&reply.body));
        books
    }

    fn code(reply: &Reply) -> String {
        let body: Value = serde_json::from_slice(&reply.body).unwrap();
        body["code"].as_str().unwrap().to_string()
    }

    #[test]
    fn native_create_validates_like_wechat() {
        let mut books = Books::new("1900000109", "wxd678efh567hg6787");
        let base = json!({
            "appid": "wxd678efh567hg6787", "mchid": "1900000109", "description": "d",
            "out_trade_no": "order0001", "notify_url": "https://example.com/n", "amount": {"total": 1},
        });
        let cases: [(&str, Value, &str); 8] = [
            ("mchid", json!("1900000999"), "MCH_NOT_EXISTS"),
            ("appid", json!("wx0000000000000000"), "APPID_MCHID_NOT_MATCH"),
            ("description", json!(""), "PARAM_ERROR"),
            ("out_trade_no", json!("has space"), "PARAM_ERROR"),
            ("notify_url", json!("https://example.com/n?x=1"), "PARAM_ERROR"),
            ("time_expire", json!("2026-11-21 22:15:00"), "PARAM_ERROR"),
            ("amount", json!({"total": 0}), "PARAM_ERROR"),
            ("amount", json!({"total": 1, "currency": "USD"}), "PARAM_ERROR"),
        ];
        for (field, value, expected) in cases {
            let mut body = base.clone();
            body[field] = value;
            let reply = books.create(body.to_string().as_bytes());
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{field}");
            assert_eq!(code(&reply), expected, "{field}");
        }
        assert_eq!(code(&books.create(b"{")), "PARAM_ERROR");
        assert_eq!(books.create(base.to_string().as_bytes()).status, StatusCode::OK);
    }

    #[test]
    fn repeating_a_create_returns_the_same_code_url_until_it_differs_or_is_paid() {
        let mut books = books_with_order(100);
        let again = |books: &mut Books, total: i64| {
            books.create(
                json!({
                    "appid": "wxd678efh567hg6787", "mchid": "1900000109", "description": "捐赠",
                    "out_trade_no": "order0001", "notify_url": "http://127.0.0.1:1/notify",
                    "amount": {"total": total},
                })
                .to_string()
                .as_bytes(),
            )
        };
        let first = books.orders["order0001"].code_url.clone();
        let reply = again(&mut books, 100);
        assert_eq!(
            serde_json::from_slice::<Value>(&reply.body).unwrap()["code_url"],
            json!(first)
        );
        assert_eq!(code(&again(&mut books, 200)), "OUT_TRADE_NO_USED");
        books.mark_paid("order0001", false, OffsetDateTime::now_utc()).unwrap();
        assert_eq!(code(&again(&mut books, 100)), "ORDERPAID");
    }

    #[test]
    fn refunds_are_idempotent_and_never_exceed_the_order() {
        let mut books = books_with_order(100);
        let now = OffsetDateTime::now_utc();
        let refund = |books: &mut Books, no: &str, amount: i64| {
            books.refund(
                json!({"out_trade_no": "order0001", "out_refund_no": no,
                       "amount": {"refund": amount, "total": 100, "currency": "CNY"}})
                .to_string()
                .as_bytes(),
                now,
            )
        };
        let (unpaid, _) = refund(&mut books, "r1", 10);
        assert_eq!(code(&unpaid), "INVALID_REQUEST");
        books.mark_paid("order0001", false, now).unwrap();
        let (first, new) = refund(&mut books, "r1", 60);
        assert_eq!(first.status, StatusCode::OK);
        assert!(new.is_some());
        let (repeat, new) = refund(&mut books, "r1", 60);
        assert_eq!(
            repeat.body, first.body,
            "the same out_refund_no answers the same refund"
        );
        assert!(new.is_none());
        let (too_much, _) = refund(&mut books, "r2", 41);
        assert_eq!(code(&too_much), "INVALID_REQUEST");
        let (rest, _) = refund(&mut books, "r2", 40);
        assert_eq!(rest.status, StatusCode::OK);
        assert_eq!(books.trade_state_of("order0001"), Some("REFUND"));
        assert_eq!(books.refund_status_of("r1"), Some("PROCESSING"));
        assert!(books.complete_refund("r1", now).is_some());
        assert!(books.complete_refund("r1", now).is_none(), "completes once");
        assert_eq!(books.refund_status_of("r1"), Some("SUCCESS"));
    }

    #[test]
    fn close_answers_204_until_paid_and_closed_orders_only_force_pay() {
        let mut books = books_with_order(100);
        let now = OffsetDateTime::now_utc();
        let close = |books: &mut Books, no: &str| books.close(no, br#"{"mchid":"1900000109"}"#);
        assert_eq!(close(&mut books, "unknown01").status, StatusCode::NO_CONTENT);
        assert_eq!(close(&mut books, "order0001").status, StatusCode::NO_CONTENT);
        assert_eq!(books.trade_state_of("order0001"), Some("CLOSED"));
        assert!(books.mark_paid("order0001", false, now).is_err());
        books.mark_paid("order0001", true, now).unwrap();
        assert_eq!(books.trade_state_of("order0001"), Some("SUCCESS"));
        assert_eq!(code(&close(&mut books, "order0001")), "ORDERPAID");
    }

    #[test]
    fn an_expired_order_cannot_be_paid_normally() {
        let mut books = books_with_order(100);
        let after = time::macros::datetime!(2099-01-01 00:00:01 +08:00);
        assert!(
            books
                .mark_paid("order0001", false, after)
                .unwrap_err()
                .contains("expired")
        );
        assert!(books.mark_paid("order0001", true, after).is_ok());
    }
}
