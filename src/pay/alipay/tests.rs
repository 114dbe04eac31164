//! Round trips between the real client and the emulator over loopback HTTP: a tiny hyper
//! server on 127.0.0.1:0 routes to `AlipayEmulator::handle`, another one stands in for our
//! notification endpoint. Also the client against canned gateway answers the emulator never
//! sends (unsigned refusals, HTML, nothing listening).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::client::refund_key;
use super::{AlipayClient, AlipayEmulator, sign};
use crate::pay::outbound::{HttpClient, OutboundError};
use crate::pay::provider::{CreateOrder, Created, Notification, ProviderError, RefundOrder, RefundState, TradeState};
use crate::pay::sandbox::Fault;
use crate::pay::sandbox::serve_loopback as serve;

const ORDER: &str = "0123456789abcdef0123456789abcdef";

/// An emulator behind a loopback gateway, a client of it, and a notification endpoint
/// that answers `success` after refusing `refusals` deliveries.
struct Harness {
    emulator: Arc<AlipayEmulator>,
    client: AlipayClient,
    /// The emulator's gateway URL.
    gateway: String,
    notify_url: String,
    /// Every body delivered to the notification endpoint, in order.
    delivered: mpsc::UnboundedReceiver<Vec<u8>>,
    refusals: Arc<AtomicUsize>,
}

impl Harness {
    async fn new(client_timeout: Duration) -> Harness {
        let (credentials, mut config) = AlipayEmulator::sandbox_pair();
        config.notify_delays = vec![Duration::ZERO, Duration::from_millis(10), Duration::from_millis(10)];
        let emulator = AlipayEmulator::new(config, HttpClient::new(Duration::from_secs(2)));
        let gateway = {
            let emulator = emulator.clone();
            serve(move |req| {
                let emulator = emulator.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                    emulator.handle(&parts.method, path, &parts.headers, body).await
                }
            })
            .await
        };
        let (sender, delivered) = mpsc::unbounded_channel();
        let refusals = Arc::new(AtomicUsize::new(0));
        let notify = {
            let refusals = refusals.clone();
            serve(move |req| {
                let sender = sender.clone();
                let refusals = refusals.clone();
                async move {
                    let body = req
                        .into_body()
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    let _ = sender.send(body.to_vec());
                    let refuse = refusals
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    http::Response::new(Full::new(Bytes::from_static(if refuse { b"fail" } else { b"success" })))
                }
            })
            .await
        };
        let gateway = format!("http://{gateway}/gateway.do");
        let client = AlipayClient::new(credentials, gateway.clone(), HttpClient::new(client_timeout));
        Harness {
            emulator,
            client,
            gateway,
            notify_url: format!("http://{notify}/notify/alipay"),
            delivered,
            refusals,
        }
    }

    async fn create(&self, order_no: &str, amount_fen: i64) -> Result<Created, ProviderError> {
        self.client
            .create(&CreateOrder {
                order_no,
                amount_fen,
                description: "捐赠 donation & thanks",
                expires_at: OffsetDateTime::now_utc() + time::Duration::minutes(15),
                notify_url: &self.notify_url,
            })
            .await
    }

    async fn refund(&self, refund_no: &str, amount_fen: i64) -> Result<RefundState, ProviderError> {
        self.client
            .refund(&RefundOrder {
                order_no: ORDER,
                refund_no,
                amount_fen,
                total_fen: 1000,
                reason: "退款 refund",
                notify_url: "",
            })
            .await
    }
}

async fn harness() -> Harness {
    Harness::new(Duration::from_secs(2)).await
}

fn succeeded(refund_no: &str) -> RefundState {
    RefundState::Succeeded {
        refund_id: refund_no.into(),
    }
}

#[tokio::test]
async fn an_order_is_pending_until_paid_then_the_notification_verifies_and_query_says_paid() {
    let mut h = harness().await;
    let created = h.create(ORDER, 1234).await.unwrap();
    assert!(created.code_url.starts_with("https://qr.alipay.com/bax"), "{created:?}");
    assert_eq!(h.emulator.notify_url(ORDER).as_deref(), Some(h.notify_url.as_str()));

    assert_eq!(h.client.query(ORDER).await.unwrap(), TradeState::Pending);

    h.emulator.pay(ORDER).await.unwrap();
    let body = h.delivered.recv().await.unwrap();
    let Notification::Payment { paid, refunded_fen } = h.client.verify_notification(&body).unwrap() else {
        panic!("not a payment");
    };
    assert_eq!(
        (paid.order_no.as_str(), paid.amount_fen, refunded_fen),
        (ORDER, 1234, 0)
    );
    let TradeState::Paid(queried) = h.client.query(ORDER).await.unwrap() else {
        panic!("not paid");
    };
    assert_eq!(queried, paid);
}

#[tokio::test]
async fn a_scanned_order_waits_for_the_buyer_and_closes_for_good() {
    let h = harness().await;
    h.create(ORDER, 500).await.unwrap();
    h.emulator.scan(ORDER).unwrap();
    assert_eq!(h.client.query(ORDER).await.unwrap(), TradeState::Pending);
    h.client.close(ORDER).await.unwrap();
    assert_eq!(h.client.query(ORDER).await.unwrap(), TradeState::Closed);
    assert!(h.emulator.pay(ORDER).await.is_err());
}

#[tokio::test]
async fn closing_before_any_scan_succeeds_and_only_a_racing_payment_still_pays() {
    let h = harness().await;
    h.create(ORDER, 500).await.unwrap();
    h.client.close(ORDER).await.unwrap();
    assert_eq!(
        h.client.query(ORDER).await.unwrap(),
        TradeState::Pending,
        "still no trade at Alipay"
    );
    assert!(h.emulator.pay(ORDER).await.unwrap_err().contains("closed"));

    h.emulator.force_pay(ORDER).await.unwrap();
    assert!(matches!(h.client.query(ORDER).await.unwrap(), TradeState::Paid(p) if p.amount_fen == 500));
    let refused = h.client.close(ORDER).await.unwrap_err();
    assert!(matches!(refused, ProviderError::Rejected { code, .. } if code == "ACQ.TRADE_STATUS_ERROR"));
}

#[tokio::test]
async fn partial_refunds_add_up_retry_idempotently_and_cannot_exceed_the_order() {
    let h = harness().await;
    h.create(ORDER, 1000).await.unwrap();
    h.emulator.pay(ORDER).await.unwrap();

    assert_eq!(h.refund("r1", 300).await.unwrap(), succeeded("r1"));
    assert_eq!(h.refund("r2", 200).await.unwrap(), succeeded("r2"));
    assert_eq!(
        h.refund("r1", 300).await.unwrap(),
        succeeded("r1"),
        "a retry is not a new refund"
    );
    assert_eq!(h.emulator.refunded_fen(ORDER), Some(500));

    let over = h.refund("r3", 501).await.unwrap_err();
    assert!(
        matches!(&over, ProviderError::Rejected { code, .. } if code == "ACQ.REASON_TRADE_REFUND_FEE_ERR"),
        "{over:?}"
    );
    let changed = h.refund("r1", 400).await.unwrap_err();
    assert!(matches!(changed, ProviderError::Rejected { .. }));
    assert_eq!(h.emulator.refunded_fen(ORDER), Some(500));

    assert_eq!(
        h.client.query_refund(&refund_key(ORDER, "r2")).await.unwrap(),
        Some(succeeded("r2"))
    );
    assert_eq!(
        h.client.query_refund_of(ORDER, "r9").await.unwrap(),
        None,
        "a refund Alipay does not know was not made"
    );
    let bad_key = h.client.query_refund("r2").await.unwrap_err();
    assert!(matches!(bad_key, ProviderError::Rejected { code, .. } if code == "zhifu.invalid_refund_key"));

    // Alipay's notification after a partial refund says TRADE_SUCCESS again, with refund_fee.
    let body = h.emulator.refund_notification(ORDER).unwrap();
    let Notification::Payment { paid, refunded_fen } = h.client.verify_notification(&body).unwrap() else {
        panic!("not a payment");
    };
    assert_eq!((paid.amount_fen, refunded_fen), (1000, 500));

    assert_eq!(h.refund("r3", 500).await.unwrap(), succeeded("r3"));
    let body = h.emulator.refund_notification(ORDER).unwrap();
    assert!(matches!(
        h.client.verify_notification(&body).unwrap(),
        Notification::Ignored { what, .. } if what == "TRADE_CLOSED"
    ));
    assert!(
        matches!(h.client.query(ORDER).await.unwrap(), TradeState::Paid(_)),
        "a fully refunded trade was still paid"
    );
}

#[tokio::test]
async fn refunding_an_order_never_paid_is_refused() {
    let h = harness().await;
    h.create(ORDER, 1000).await.unwrap();
    let refused = h.refund("r1", 100).await.unwrap_err();
    assert!(matches!(refused, ProviderError::Rejected { code, .. } if code == "ACQ.TRADE_NOT_EXIST"));
}

#[tokio::test]
async fn precreating_again_returns_the_same_qr_unless_the_order_changed_or_was_paid() {
    let h = harness().await;
    let first = h.create(ORDER, 1000).await.unwrap();
    assert_eq!(h.create(ORDER, 1000).await.unwrap(), first);
    let changed = h.create(ORDER, 1001).await.unwrap_err();
    assert!(matches!(changed, ProviderError::Rejected { code, .. } if code == "ACQ.CONTEXT_INCONSISTENT"));
    h.emulator.pay(ORDER).await.unwrap();
    let paid = h.create(ORDER, 1000).await.unwrap_err();
    assert!(matches!(paid, ProviderError::Rejected { code, .. } if code == "ACQ.TRADE_HAS_SUCCESS"));
}

#[tokio::test]
async fn each_fault_becomes_the_matching_provider_error() {
    // Generous: the bad-signature fault makes a spare RSA key on first use, which can take
    // longer than a tight timeout on a loaded machine.
    let h = Harness::new(Duration::from_secs(3)).await;
    h.create(ORDER, 100).await.unwrap();
    let faults = h.emulator.faults();

    faults.push(Fault::Reject {
        code: "ACQ.SYSTEM_ERROR".into(),
        message: "系统错误".into(),
    });
    let rejected = h.client.query(ORDER).await.unwrap_err();
    assert!(
        matches!(&rejected, ProviderError::Rejected { code, message } if code == "ACQ.SYSTEM_ERROR" && message == "系统错误"),
        "{rejected:?}"
    );

    faults.push(Fault::ServerError);
    assert!(matches!(
        h.client.query(ORDER).await.unwrap_err(),
        ProviderError::Unexpected { status: 500, .. }
    ));

    faults.push(Fault::BadSignature);
    assert!(matches!(
        h.client.query(ORDER).await.unwrap_err(),
        ProviderError::BadSignature
    ));
    faults.push(Fault::BadSignature);
    assert!(matches!(
        h.client.close(ORDER).await.unwrap_err(),
        ProviderError::BadSignature
    ));

    faults.push(Fault::Delay(Duration::from_secs(5)));
    assert!(matches!(
        h.client.query(ORDER).await.unwrap_err(),
        ProviderError::Outbound(OutboundError::Timeout(_))
    ));

    faults.push(Fault::Delay(Duration::from_millis(20)));
    assert_eq!(h.client.query(ORDER).await.unwrap(), TradeState::Pending);
}

#[tokio::test]
async fn a_notification_is_retried_with_the_same_notify_id_until_acknowledged() {
    let mut h = harness().await;
    h.create(ORDER, 100).await.unwrap();
    h.refusals.store(2, Ordering::SeqCst);
    h.emulator.pay(ORDER).await.unwrap();
    let mut ids = Vec::new();
    while let Ok(body) = h.delivered.try_recv() {
        let fields = sign::parse_form(&body).unwrap();
        ids.extend(fields.into_iter().filter(|(k, _)| k == "notify_id").map(|(_, v)| v));
    }
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|id| *id == ids[0]));
}

#[tokio::test]
async fn a_notification_never_acknowledged_makes_pay_fail_and_the_trade_stays_paid() {
    let h = harness().await;
    h.create(ORDER, 100).await.unwrap();
    h.refusals.store(usize::MAX, Ordering::SeqCst);
    let err = h.emulator.pay(ORDER).await.unwrap_err();
    assert!(err.contains("not acknowledged"), "{err}");
    assert!(matches!(h.client.query(ORDER).await.unwrap(), TradeState::Paid(_)));
}

#[tokio::test]
async fn an_expired_or_unknown_order_cannot_be_paid() {
    let h = harness().await;
    h.client
        .create(&CreateOrder {
            order_no: ORDER,
            amount_fen: 100,
            description: "late",
            expires_at: OffsetDateTime::now_utc() - time::Duration::minutes(1),
            notify_url: &h.notify_url,
        })
        .await
        .unwrap();
    assert!(h.emulator.pay(ORDER).await.unwrap_err().contains("expired"));
    assert!(h.emulator.pay("ffffffffffffffffffffffffffffffff").await.is_err());
}

#[tokio::test]
async fn notifications_made_by_the_emulator_helpers_verify() {
    let h = harness().await;
    h.create(ORDER, 250).await.unwrap();
    assert!(h.emulator.payment_notification(ORDER).is_err(), "not paid yet");
    h.emulator.pay(ORDER).await.unwrap();
    let body = h.emulator.payment_notification(ORDER).unwrap();
    assert!(matches!(
        h.client.verify_notification(&body).unwrap(),
        Notification::Payment { refunded_fen: 0, .. }
    ));
    let crafted = h.emulator.sign_form(&[
        ("app_id", h.emulator.app_id()),
        ("seller_id", h.emulator.seller_id()),
        ("out_trade_no", ORDER),
        ("notify_type", "trade_status_sync"),
        ("trade_status", "WAIT_BUYER_PAY"),
    ]);
    assert!(matches!(
        h.client.verify_notification(&crafted).unwrap(),
        Notification::Ignored { what, .. } if what == "WAIT_BUYER_PAY"
    ));
}

#[tokio::test]
async fn a_request_signed_with_another_app_key_is_refused_by_the_gateway() {
    let h = harness().await;
    // Another pair's app key signs; this emulator's Alipay key still verifies the answers.
    let (mut credentials, _) = AlipayEmulator::sandbox_pair();
    credentials.alipay_public_key = h.emulator.alipay_public_key();
    let stranger = AlipayClient::new(credentials, h.gateway.clone(), HttpClient::new(Duration::from_secs(2)));
    let refused = stranger.query(ORDER).await.unwrap_err();
    assert!(matches!(refused, ProviderError::Rejected { code, .. } if code == "isv.invalid-signature"));
}

#[tokio::test]
async fn an_unknown_app_id_is_refused_unsigned_and_reported_as_an_unsigned_error() {
    let h = harness().await;
    let (mut credentials, _) = AlipayEmulator::sandbox_pair();
    credentials.app_id = "2021000000009999".into();
    credentials.alipay_public_key = h.emulator.alipay_public_key();
    let stranger = AlipayClient::new(credentials, h.gateway.clone(), HttpClient::new(Duration::from_secs(2)));
    let refused = stranger.close(ORDER).await.unwrap_err();
    assert!(
        matches!(&refused, ProviderError::Unsigned { code, .. } if code == "isv.invalid-app-id"),
        "{refused:?}"
    );
}

/// A client of a gateway that always answers `status` with `body`, whatever was asked.
async fn canned(status: StatusCode, body: &'static str) -> (AlipayClient, Arc<AlipayEmulator>) {
    let (credentials, config) = AlipayEmulator::sandbox_pair();
    let emulator = AlipayEmulator::new(config, HttpClient::new(Duration::from_secs(1)));
    let addr = serve(move |_req| async move {
        let mut response = http::Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *response.status_mut() = status;
        response
    })
    .await;
    let client = AlipayClient::new(
        credentials,
        format!("http://{addr}/gateway.do"),
        HttpClient::new(Duration::from_secs(1)),
    );
    (client, emulator)
}

#[tokio::test]
async fn an_unsigned_trade_not_exist_is_an_error_not_a_pending_or_closed_order() {
    let body = r#"{"alipay_trade_query_response":{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST","sub_msg":"交易不存在"}}"#;
    let (client, _) = canned(StatusCode::OK, body).await;
    assert!(matches!(
        client.query(ORDER).await.unwrap_err(),
        ProviderError::Unsigned { code, .. } if code == "ACQ.TRADE_NOT_EXIST"
    ));
    let body = r#"{"alipay_trade_close_response":{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST","sub_msg":"交易不存在"}}"#;
    let (client, _) = canned(StatusCode::OK, body).await;
    assert!(client.close(ORDER).await.is_err());
}

#[tokio::test]
async fn an_unsigned_success_is_a_bad_signature() {
    let body = r#"{"alipay_trade_query_response":{"code":"10000","msg":"Success","trade_status":"TRADE_SUCCESS"}}"#;
    let (client, _) = canned(StatusCode::OK, body).await;
    assert!(matches!(
        client.query(ORDER).await.unwrap_err(),
        ProviderError::BadSignature
    ));
}

#[tokio::test]
async fn an_error_response_node_and_non_json_answers_are_reported_as_such() {
    let body = r#"{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-method","sub_msg":"不存在的方法名"}}"#;
    let (client, _) = canned(StatusCode::OK, body).await;
    assert!(matches!(
        client.query(ORDER).await.unwrap_err(),
        ProviderError::Unsigned { code, .. } if code == "isv.invalid-method"
    ));
    let (client, _) = canned(StatusCode::OK, "<html>maintenance</html>").await;
    assert!(matches!(
        client.query(ORDER).await.unwrap_err(),
        ProviderError::Unexpected { status: 200, .. }
    ));
    let (client, _) = canned(StatusCode::BAD_GATEWAY, "<html>502</html>").await;
    assert!(matches!(
        client.query(ORDER).await.unwrap_err(),
        ProviderError::Unexpected { status: 502, message } if message.contains("502")
    ));
}

#[tokio::test]
async fn a_gateway_nobody_listens_on_is_an_outbound_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let (credentials, _) = AlipayEmulator::sandbox_pair();
    let client = AlipayClient::new(
        credentials,
        format!("http://{addr}/gateway.do"),
        HttpClient::new(Duration::from_secs(1)),
    );
    assert!(matches!(
        client.query(ORDER).await.unwrap_err(),
        ProviderError::Outbound(OutboundError::Transport(_))
    ));
}

#[tokio::test]
async fn the_emulator_serves_only_its_gateway_path() {
    let (_, config) = AlipayEmulator::sandbox_pair();
    let emulator = AlipayEmulator::new(config, HttpClient::new(Duration::from_secs(1)));
    let response = emulator
        .handle(
            &Method::POST,
            "/v3/pay/transactions/native",
            &HeaderMap::new(),
            Bytes::new(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = emulator
        .handle(
            &Method::POST,
            "/gateway.do?charset=utf-8",
            &HeaderMap::new(),
            Bytes::new(),
        )
        .await;
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let text = std::str::from_utf8(&body).unwrap();
    assert!(text.contains("isv.missing-method"), "{text}");
}
