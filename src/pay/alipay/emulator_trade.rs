//! The emulator's trade rules: what each API answers for an order in each stage, with
//! Alipay's own codes. Pure functions over the emulator's state; HTTP, signatures and
//! notifications are `emulator`'s. A precreated QR is not a trade until scanned or paid, so
//! query and close answer `ACQ.TRADE_NOT_EXIST` until then, as the real gateway does.
//!
//! - precreate https://opendocs.alipay.com/open/02ekfg, query https://opendocs.alipay.com/open/02ekfh,
//!   close https://opendocs.alipay.com/open/02o6e7, refund https://opendocs.alipay.com/open/02ekfk,
//!   refund query https://opendocs.alipay.com/open/02ekfl

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::beijing;
use super::emulator::State;
use crate::pay::money;

/// The emulator's only buyer: a fake Alipay user id.
pub const BUYER_ID: &str = "2088102000000001";
/// The masked login Alipay shows merchants for that buyer.
pub const BUYER_LOGON_ID: &str = "san***@sandbox.example";

/// Largest order Alipay takes: 100,000,000.00 yuan.
const MAX_TOTAL_FEN: i64 = 10_000_000_000;

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// QR issued, never scanned: no trade at Alipay yet.
    Issued,
    /// Closed by the merchant before any scan (close answered `ACQ.TRADE_NOT_EXIST`); the
    /// QR no longer pays, except by `force_pay`.
    Withdrawn,
    /// Scanned, not paid: `WAIT_BUYER_PAY`.
    Scanned,
    /// Paid: `TRADE_SUCCESS`, or `TRADE_CLOSED` once fully refunded.
    Paid,
    /// Closed unpaid after a scan: `TRADE_CLOSED`.
    Closed,
}

/// One refund, identified within its trade by `out_request_no`.
#[derive(Debug, Clone)]
pub struct Refund {
    pub out_request_no: String,
    /// Fen.
    pub fen: i64,
    pub at: OffsetDateTime,
}

/// One precreated order.
#[derive(Debug, Clone)]
pub struct Order {
    pub out_trade_no: String,
    /// Fen.
    pub total_fen: i64,
    pub subject: String,
    pub qr_code: String,
    pub notify_url: Option<String>,
    pub time_expire: Option<OffsetDateTime>,
    pub stage: Stage,
    /// Alipay's `trade_no`, from the first scan or payment.
    pub trade_no: Option<String>,
    /// When the trade came to exist (scan or payment).
    pub gmt_create: Option<OffsetDateTime>,
    pub gmt_payment: Option<OffsetDateTime>,
    /// The payment notification's id, the same on every retry.
    pub notify_id: String,
    pub refunds: Vec<Refund>,
}

impl Order {
    /// Makes the trade exist: a `trade_no` (28 digits, date first, like Alipay's) and
    /// `gmt_create`, unless it already has them.
    pub fn open_trade(&mut self, serial: u64, now: OffsetDateTime) {
        if self.trade_no.is_none() {
            let date: String = beijing::format(now)
                .chars()
                .take(10)
                .filter(char::is_ascii_digit)
                .collect();
            self.trade_no = Some(format!("{date}22001{:015}", serial % 1_000_000_000_000_000));
            self.gmt_create = Some(now);
        }
    }

    /// Fen refunded so far.
    pub fn refunded_fen(&self) -> i64 {
        self.refunds.iter().map(|r| r.fen).sum()
    }

    fn trade_status(&self) -> &'static str {
        match self.stage {
            Stage::Scanned => "WAIT_BUYER_PAY",
            Stage::Paid if self.refunded_fen() < self.total_fen => "TRADE_SUCCESS",
            Stage::Paid | Stage::Closed | Stage::Withdrawn | Stage::Issued => "TRADE_CLOSED",
        }
    }
}

/// `alipay.trade.precreate`: stores the order (with the request's `notify_url`) and answers
/// its QR. The same `out_trade_no` again answers the same QR if nothing changed.
pub fn precreate(state: &mut State, biz: &Map<String, Value>, notify_url: Option<&str>) -> Map<String, Value> {
    let Some(out_trade_no) = text(biz, "out_trade_no").filter(|n| n.len() <= 64) else {
        return invalid("out_trade_no");
    };
    let Some(total_fen) = amount(biz, "total_amount").filter(|f| *f > 0) else {
        return invalid("total_amount");
    };
    if total_fen > MAX_TOTAL_FEN {
        return failure("ACQ.TOTAL_FEE_EXCEED", "订单金额超过限额");
    }
    let Some(subject) = text(biz, "subject").filter(|s| s.chars().count() <= 256) else {
        return invalid("subject");
    };
    let time_expire = match text(biz, "time_expire").map(beijing::parse) {
        None => None,
        Some(Some(at)) => Some(at),
        Some(None) => return invalid("time_expire"),
    };
    if let Some(order) = state.orders.get(out_trade_no) {
        return match order.stage {
            Stage::Paid => failure("ACQ.TRADE_HAS_SUCCESS", "交易已被支付"),
            Stage::Withdrawn | Stage::Closed => failure("ACQ.TRADE_HAS_CLOSE", "交易已经关闭"),
            _ if order.total_fen != total_fen || order.subject != subject => {
                failure("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
            }
            _ => success([
                ("out_trade_no", out_trade_no.into()),
                ("qr_code", order.qr_code.clone().into()),
            ]),
        };
    }
    state.serial += 1;
    let qr_code = format!("https://qr.alipay.com/bax{:08}{}", state.serial, &uuid_tail()[..14]);
    state.orders.insert(
        out_trade_no.to_string(),
        Order {
            out_trade_no: out_trade_no.to_string(),
            total_fen,
            subject: subject.to_string(),
            qr_code: qr_code.clone(),
            notify_url: notify_url.map(str::to_string),
            time_expire,
            stage: Stage::Issued,
            trade_no: None,
            gmt_create: None,
            gmt_payment: None,
            notify_id: String::new(),
            refunds: Vec::new(),
        },
    );
    success([("out_trade_no", out_trade_no.into()), ("qr_code", qr_code.into())])
}

/// `alipay.trade.query` by `out_trade_no` or `trade_no`.
pub fn query(state: &State, biz: &Map<String, Value>) -> Map<String, Value> {
    let Some(order) = find(state, biz).filter(|o| o.trade_no.is_some()) else {
        let mut node = failure("ACQ.TRADE_NOT_EXIST", "交易不存在");
        if let Some(no) = text(biz, "out_trade_no") {
            node.insert("out_trade_no".into(), no.into());
        }
        for zero in ["buyer_pay_amount", "invoice_amount", "point_amount", "receipt_amount"] {
            node.insert(zero.into(), "0.00".into());
        }
        return node;
    };
    let total = money::format_yuan(order.total_fen);
    let paid = if order.stage == Stage::Paid {
        total.clone()
    } else {
        "0.00".into()
    };
    let mut node = success([
        ("trade_no", order.trade_no.clone().into()),
        ("out_trade_no", order.out_trade_no.clone().into()),
        ("buyer_logon_id", BUYER_LOGON_ID.into()),
        ("buyer_user_id", BUYER_ID.into()),
        ("trade_status", order.trade_status().into()),
        ("total_amount", total.into()),
        ("buyer_pay_amount", paid.clone().into()),
        ("invoice_amount", paid.clone().into()),
        ("receipt_amount", paid.into()),
        ("point_amount", "0.00".into()),
    ]);
    if let Some(at) = order.gmt_payment.filter(|_| order.stage == Stage::Paid) {
        node.insert("send_pay_date".into(), beijing::format(at).into());
    }
    node
}

/// `alipay.trade.close`: only a `WAIT_BUYER_PAY` trade closes; a QR never scanned answers
/// `ACQ.TRADE_NOT_EXIST` (and no longer pays here); a paid trade `ACQ.TRADE_STATUS_ERROR`.
pub fn close(state: &mut State, biz: &Map<String, Value>) -> Map<String, Value> {
    let Some(order) = find_mut(state, biz) else {
        return failure("ACQ.TRADE_NOT_EXIST", "交易不存在");
    };
    match order.stage {
        Stage::Issued | Stage::Withdrawn => {
            order.stage = Stage::Withdrawn;
            failure("ACQ.TRADE_NOT_EXIST", "交易不存在")
        }
        Stage::Scanned | Stage::Closed => {
            order.stage = Stage::Closed;
            success([
                ("trade_no", order.trade_no.clone().into()),
                ("out_trade_no", order.out_trade_no.clone().into()),
            ])
        }
        Stage::Paid => failure("ACQ.TRADE_STATUS_ERROR", "交易状态不合法"),
    }
}

/// `alipay.trade.refund`: idempotent by `out_request_no` (a retry answers `fund_change=N`);
/// the refunds of a trade may not exceed its total. `refund_fee` is the trade's total
/// refunded.
pub fn refund(state: &mut State, biz: &Map<String, Value>, now: OffsetDateTime) -> Map<String, Value> {
    let Some(fen) = amount(biz, "refund_amount").filter(|f| *f > 0) else {
        return invalid("refund_amount");
    };
    let Some(order) = find_mut(state, biz).filter(|o| o.trade_no.is_some()) else {
        return failure("ACQ.TRADE_NOT_EXIST", "交易不存在");
    };
    if order.stage != Stage::Paid {
        return failure("ACQ.TRADE_STATUS_ERROR", "交易状态不合法");
    }
    // Without out_request_no Alipay takes the refund to be the whole order.
    let explicit = text(biz, "out_request_no");
    let out_request_no = explicit.unwrap_or(&order.out_trade_no).to_string();
    if explicit.is_none() && fen != order.total_fen {
        return failure("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "撤销或退款金额与订单金额不一致");
    }
    let fund_change = match order.refunds.iter().find(|r| r.out_request_no == out_request_no) {
        Some(earlier) if earlier.fen == fen => "N",
        Some(_) => return failure("ACQ.DISCORDANT_REPEAT_REQUEST", "不一致的请求"),
        None if order.refunded_fen() + fen > order.total_fen => {
            return failure("ACQ.REASON_TRADE_REFUND_FEE_ERR", "退款金额无效");
        }
        None => {
            order.refunds.push(Refund {
                out_request_no,
                fen,
                at: now,
            });
            "Y"
        }
    };
    success([
        ("trade_no", order.trade_no.clone().into()),
        ("out_trade_no", order.out_trade_no.clone().into()),
        ("buyer_logon_id", BUYER_LOGON_ID.into()),
        ("buyer_user_id", BUYER_ID.into()),
        ("fund_change", fund_change.into()),
        ("refund_fee", money::format_yuan(order.refunded_fen()).into()),
        ("gmt_refund_pay", beijing::format(now).into()),
        (
            "send_back_fee",
            money::format_yuan(if fund_change == "Y" { fen } else { 0 }).into(),
        ),
    ])
}

/// `alipay.trade.fastpay.refund.query`: a refund it knows is `REFUND_SUCCESS` (refunds here
/// finish at once); one it does not know answers 10000 with no refund fields, as Alipay does.
pub fn refund_query(state: &State, biz: &Map<String, Value>) -> Map<String, Value> {
    let Some(out_request_no) = text(biz, "out_request_no") else {
        return invalid("out_request_no");
    };
    let Some(order) = find(state, biz).filter(|o| o.trade_no.is_some()) else {
        return failure("ACQ.TRADE_NOT_EXIST", "交易不存在");
    };
    let Some(refund) = order.refunds.iter().find(|r| r.out_request_no == out_request_no) else {
        return success([]);
    };
    let mut node = success([
        ("trade_no", order.trade_no.clone().into()),
        ("out_trade_no", order.out_trade_no.clone().into()),
        ("out_request_no", refund.out_request_no.clone().into()),
        ("total_amount", money::format_yuan(order.total_fen).into()),
        ("refund_amount", money::format_yuan(refund.fen).into()),
        ("refund_status", "REFUND_SUCCESS".into()),
    ]);
    let options = biz.get("query_options").and_then(Value::as_array);
    if options.is_some_and(|o| o.iter().any(|v| v == "gmt_refund_pay")) {
        node.insert("gmt_refund_pay".into(), beijing::format(refund.at).into());
    }
    node
}

fn find<'a>(state: &'a State, biz: &Map<String, Value>) -> Option<&'a Order> {
    match (text(biz, "out_trade_no"), text(biz, "trade_no")) {
        (Some(no), _) => state.orders.get(no),
        (None, Some(trade_no)) => state.orders.values().find(|o| o.trade_no.as_deref() == Some(trade_no)),
        (None, None) => None,
    }
}

fn find_mut<'a>(state: &'a mut State, biz: &Map<String, Value>) -> Option<&'a mut Order> {
    let key = find(state, biz)?.out_trade_no.clone();
    state.orders.get_mut(&key)
}

/// A non-empty string member.
fn text<'a>(biz: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    biz.get(name).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// A yuan amount, sent as a string (`"12.34"`) or a JSON number (`12.34`), parsed strictly.
fn amount(biz: &Map<String, Value>, name: &str) -> Option<i64> {
    match biz.get(name)? {
        Value::String(s) => money::parse_yuan(s).ok(),
        Value::Number(n) => money::parse_yuan(&n.to_string()).ok(),
        _ => None,
    }
}

fn success<const N: usize>(fields: [(&str, Value); N]) -> Map<String, Value> {
    let mut node = Map::new();
    node.insert("code".into(), "10000".into());
    node.insert("msg".into(), "Success".into());
    for (k, v) in fields {
        node.insert(k.into(), v);
    }
    node
}

/// A business refusal (`40004 Business Failed`).
fn failure(sub_code: &str, sub_msg: &str) -> Map<String, Value> {
    let mut node = Map::new();
    node.insert("code".into(), "40004".into());
    node.insert("msg".into(), "Business Failed".into());
    node.insert("sub_code".into(), sub_code.into());
    node.insert("sub_msg".into(), sub_msg.into());
    node
}

fn invalid(what: &str) -> Map<String, Value> {
    failure("ACQ.INVALID_PARAMETER", &format!("参数无效: {what}"))
}

fn uuid_tail() -> String {
    let uuid = uuid::Uuid::now_v7().simple().to_string();
    uuid[uuid.len() - 16..].to_string()
}
