//! Client ↔ emulator round trips over real loopback HTTP: a tiny hyper server routes to
//! `WechatEmulator::handle`, another one plays the merchant's notify_url. Every exchange is
//! signed, verified and (for notifications) encrypted exactly as on the wire.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::emulator::WechatEmulatorConfig;
use super::sign;
use super::{WechatClient, WechatCredentials, WechatEmulator};
use crate::pay::keys::PrivateKey;
use crate::pay::outbound::{HttpClient, OutboundError};
use crate::pay::provider::{
    CreateOrder, Notification, NotifyError, ProviderError, RefundOrder, RefundState, TradeState,
};
use crate::pay::sandbox::Fault;
use crate::pay::sandbox::serve_loopback as serve;

/// Where a sandbox may mount the emulator; stripped before `handle`.
const SANDBOX_PREFIX: &str = "/sandbox/wechat";

/// The emulator behind a loopback server; `strip_signatures` plays a proxy that drops the
/// `Wechatpay-*` headers.
struct Gateway {
    base: String,
    strip_signatures: Arc<AtomicBool>,
}

async fn gateway(emulator: &Arc<WechatEmulator>) -> Gateway {
    let strip = Arc::new(AtomicBool::new(false));
    let (emulator, strip_flag) = (Arc::clone(emulator), Arc::clone(&strip));
    let addr = serve(move |request: Request<Incoming>| {
        let (emulator, strip) = (Arc::clone(&emulator), Arc::clone(&strip_flag));
        async move {
            let (parts, body) = request.into_parts();
            let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            // The sandbox mounts the emulator under a prefix and strips it, as the app will.
            let path = path.strip_prefix(SANDBOX_PREFIX).unwrap_or(path);
            let mut response = emulator.handle(&parts.method, path, &parts.headers, body).await;
            if strip.load(Ordering::SeqCst) {
                for name in [sign::TIMESTAMP, sign::NONCE, sign::SIGNATURE, sign::SERIAL] {
                    response.headers_mut().remove(name);
                }
            }
            response
        }
    })
    .await;
    Gateway {
        base: format!("http://{addr}"),
        strip_signatures: strip,
    }
}

/// The merchant's notify_url: records each delivery, fails the first `fail_first` attempts.
struct NotifyListener {
    url: String,
    received: mpsc::UnboundedReceiver<(HeaderMap, Bytes)>,
    attempts: Arc<AtomicUsize>,
}

async fn notify_listener(fail_first: usize) -> NotifyListener {
    let (tx, rx) = mpsc::unbounded_channel();
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&attempts);
    let addr = serve(move |request: Request<Incoming>| {
        let (tx, counter) = (tx.clone(), Arc::clone(&counter));
        async move {
            let (parts, body) = request.into_parts();
            let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let attempt = counter.fetch_add(1, Ordering::SeqCst);
            let _ = tx.send((parts.headers, body));
            let mut response = Response::new(Full::new(Bytes::new()));
            if attempt < fail_first {
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                *response.body_mut() = Full::new(Bytes::from(r#"{"code":"FAIL","message":"失败"}"#));
            } else {
                *response.status_mut() = StatusCode::NO_CONTENT;
            }
            response
        }
    })
    .await;
    NotifyListener {
        url: format!("http://{addr}/pay/wechat/notify"),
        received: rx,
        attempts,
    }
}

impl NotifyListener {
    async fn next(&mut self) -> (HeaderMap, Bytes) {
        tokio::time::timeout(Duration::from_secs(10), self.received.recv())
            .await
            .expect("a notification arrives within 10 s")
            .expect("the listener is running")
    }
}

struct Setup {
    client: WechatClient,
    emulator: Arc<WechatEmulator>,
    gateway: Gateway,
}

/// A quick notification schedule: 4 attempts within ~100 ms.
fn quick(config: &mut WechatEmulatorConfig) {
    config.notify_schedule = vec![
        Duration::ZERO,
        Duration::from_millis(20),
        Duration::from_millis(30),
        Duration::from_millis(50),
    ];
    config.refund_delay = Duration::from_millis(50);
}

async fn setup_with(pair: (WechatCredentials, WechatEmulatorConfig), client_timeout: Duration) -> Setup {
    let (credentials, mut config) = pair;
    quick(&mut config);
    let emulator = WechatEmulator::new(config, HttpClient::new(Duration::from_secs(2)));
    let gateway = gateway(&emulator).await;
    let client = WechatClient::new(
        credentials,
        format!("{}/", gateway.base),
        HttpClient::new(client_timeout),
    );
    Setup {
        client,
        emulator,
        gateway,
    }
}

async fn setup() -> Setup {
    setup_with(WechatEmulator::sandbox_pair(), Duration::from_secs(5)).await
}

fn order<'a>(order_no: &'a str, amount_fen: i64, notify_url: &'a str) -> CreateOrder<'a> {
    CreateOrder {
        order_no,
        amount_fen,
        description: "为 zhifu 捐赠",
        expires_at: OffsetDateTime::now_utc() + time::Duration::minutes(15),
        notify_url,
    }
}

fn order_no() -> String {
    super::crypto::random_string(32)
}

#[tokio::test]
async fn an_order_is_created_queried_paid_and_its_notification_verifies() {
    let Setup { client, emulator, .. } = setup().await;
    let mut listener = notify_listener(0).await;
    let no = order_no();

    let created = client.create(&order(&no, 1234, &listener.url)).await.unwrap();
    assert!(
        created.code_url.starts_with("weixin://wxpay/bizpayurl?pr="),
        "{}",
        created.code_url
    );
    assert_eq!(emulator.notify_url(&no).as_deref(), Some(listener.url.as_str()));
    assert_eq!(client.query(&no).await.unwrap(), TradeState::Pending);

    emulator.pay(&no).await.unwrap();
    let (headers, body) = listener.next().await;
    let notification = client.verify_notification(&headers, &body, sign::unix_now()).unwrap();
    let Notification::Payment { paid, refunded_fen } = notification else {
        panic!("{notification:?}")
    };
    assert_eq!(
        (paid.order_no.as_str(), paid.amount_fen, refunded_fen),
        (no.as_str(), 1234, 0)
    );
    assert!((OffsetDateTime::now_utc() - paid.paid_at).abs() < time::Duration::minutes(1));

    let TradeState::Paid(queried) = client.query(&no).await.unwrap() else {
        panic!("the query does not say paid")
    };
    assert_eq!(queried, paid, "query and notification agree");
}

#[tokio::test]
async fn repeating_a_create_is_idempotent_and_long_descriptions_are_cut_to_fit() {
    let Setup { client, emulator, .. } = setup().await;
    // Creating twice with the same parameters is allowed and returns the same code_url;
    // a different amount under the same out_trade_no is refused.
    let no = order_no();
    let first = client.create(&order(&no, 100, "https://example.com/n")).await.unwrap();
    let again = client.create(&order(&no, 100, "https://example.com/n")).await.unwrap();
    assert_eq!(first, again);
    let changed = client.create(&order(&no, 101, "https://example.com/n")).await;
    assert!(
        matches!(changed, Err(ProviderError::Rejected { ref code, .. }) if code == "OUT_TRADE_NO_USED"),
        "{changed:?}"
    );
    // A description over 127 bytes is cut by the client, so WeChat accepts it.
    let long = "捐".repeat(60);
    let mut long_order = order("longdescription01", 100, "https://example.com/n");
    long_order.description = &long;
    client.create(&long_order).await.unwrap();
    assert_eq!(emulator.trade_state("longdescription01"), Some("NOTPAY"));
}

#[tokio::test]
async fn a_client_whose_api_base_has_a_path_prefix_signs_wechats_path() {
    let (credentials, config) = WechatEmulator::sandbox_pair();
    let mut mounted_credentials = twin(&credentials);
    mounted_credentials.platform_public_key = Some(config.platform_key.public_key());
    let Setup { gateway, .. } = setup_with((credentials, config), Duration::from_secs(5)).await;
    let mounted = WechatClient::new(
        mounted_credentials,
        format!("{}{SANDBOX_PREFIX}", gateway.base),
        HttpClient::new(Duration::from_secs(5)),
    );
    let no = order_no();
    mounted.create(&order(&no, 100, "https://example.com/n")).await.unwrap();
    assert_eq!(mounted.query(&no).await.unwrap(), TradeState::Pending);
}

#[tokio::test]
async fn an_order_wechat_never_saw_is_pending() {
    let Setup { client, .. } = setup().await;
    assert_eq!(client.query("neverCreated0001").await.unwrap(), TradeState::Pending);
}

#[tokio::test]
async fn close_answers_204_then_the_order_is_closed_and_cannot_be_paid() {
    let Setup { client, emulator, .. } = setup().await;
    let no = order_no();
    client.create(&order(&no, 100, "https://example.com/n")).await.unwrap();
    client.close(&no).await.unwrap();
    assert_eq!(client.query(&no).await.unwrap(), TradeState::Closed);
    assert!(emulator.pay(&no).await.unwrap_err().contains("closed"));

    let paid = order_no();
    client
        .create(&order(&paid, 100, "https://example.com/n"))
        .await
        .unwrap();
    emulator.mark_paid(&paid, false).unwrap();
    let refused = client.close(&paid).await;
    assert!(
        matches!(refused, Err(ProviderError::Rejected { ref code, .. }) if code == "ORDERPAID"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_payment_that_races_the_close_still_notifies_a_payment() {
    let Setup { client, emulator, .. } = setup().await;
    let mut listener = notify_listener(0).await;
    let no = order_no();
    client.create(&order(&no, 500, &listener.url)).await.unwrap();
    client.close(&no).await.unwrap();
    emulator.force_pay(&no).await.unwrap();
    let (headers, body) = listener.next().await;
    let notification = client.verify_notification(&headers, &body, sign::unix_now()).unwrap();
    assert!(matches!(notification, Notification::Payment { ref paid, .. } if paid.amount_fen == 500));
    assert!(matches!(client.query(&no).await.unwrap(), TradeState::Paid(_)));
}

#[tokio::test]
async fn a_refund_is_processing_then_notified_and_queried_as_succeeded() {
    let Setup { client, emulator, .. } = setup().await;
    let mut pay_listener = notify_listener(0).await;
    let mut refund_listener = notify_listener(0).await;
    let refund_url = refund_listener.url.clone();
    let no = order_no();
    client.create(&order(&no, 1000, &pay_listener.url)).await.unwrap();
    emulator.pay(&no).await.unwrap();
    pay_listener.next().await;

    let refund = RefundOrder {
        order_no: &no,
        refund_no: "refund0001",
        amount_fen: 600,
        total_fen: 1000,
        reason: "捐赠退款",
        notify_url: &refund_url,
    };
    assert_eq!(client.refund(&refund).await.unwrap(), RefundState::Processing);
    assert_eq!(
        client.refund(&refund).await.unwrap(),
        RefundState::Processing,
        "the same refund_no is the same refund"
    );

    let (headers, body) = refund_listener.next().await;
    let notification = client.verify_notification(&headers, &body, sign::unix_now()).unwrap();
    let Notification::Refund {
        order_no,
        refund_no,
        state: RefundState::Succeeded { refund_id },
    } = notification
    else {
        panic!("{notification:?}")
    };
    assert_eq!((order_no.as_str(), refund_no.as_str()), (no.as_str(), "refund0001"));
    assert_eq!(
        client.query_refund("refund0001").await.unwrap(),
        Some(RefundState::Succeeded { refund_id })
    );
    assert!(
        matches!(client.query(&no).await.unwrap(), TradeState::Paid(_)),
        "REFUND is still paid"
    );

    let too_much = RefundOrder {
        refund_no: "refund0002",
        amount_fen: 401,
        ..refund.clone()
    };
    let refused = client.refund(&too_much).await;
    assert!(
        matches!(refused, Err(ProviderError::Rejected { ref code, .. }) if code == "INVALID_REQUEST"),
        "{refused:?}"
    );
    let unknown = client.query_refund("refund9999").await;
    assert!(
        matches!(unknown, Ok(None)),
        "a refund WeChat does not know: {unknown:?}"
    );
}

#[tokio::test]
async fn each_fault_becomes_the_matching_provider_error() {
    let Setup { client, emulator, .. } = setup().await;
    let no = order_no();
    let create_order = order(&no, 100, "https://example.com/n");
    let create = || client.create(&create_order);

    emulator.faults().push(Fault::Reject {
        code: "FREQUENCY_LIMITED".into(),
        message: "频率超限".into(),
    });
    let rejected = create().await;
    assert!(
        matches!(rejected, Err(ProviderError::Rejected { ref code, ref message }) if code == "FREQUENCY_LIMITED" && message == "频率超限"),
        "{rejected:?}"
    );

    emulator.faults().push(Fault::ServerError);
    assert!(matches!(
        create().await,
        Err(ProviderError::Unexpected { status: 500, .. })
    ));

    emulator.faults().push(Fault::BadSignature);
    assert!(matches!(create().await, Err(ProviderError::BadSignature)));

    emulator.faults().push(Fault::Delay(Duration::from_millis(50)));
    assert!(create().await.is_ok(), "a short delay is only slow");
}

#[tokio::test]
async fn a_delay_longer_than_the_client_timeout_is_an_outbound_timeout() {
    let Setup { client, emulator, .. } = setup_with(WechatEmulator::sandbox_pair(), Duration::from_millis(300)).await;
    emulator.faults().push(Fault::Delay(Duration::from_secs(2)));
    let result = client.query("timeoutOrder0001").await;
    assert!(
        matches!(result, Err(ProviderError::Outbound(OutboundError::Timeout(d))) if d == Duration::from_millis(300)),
        "{result:?}"
    );
}

#[tokio::test]
async fn answers_without_a_signature_are_refused_but_unsigned_errors_stay_errors() {
    let Setup {
        client,
        emulator,
        gateway,
    } = setup().await;
    gateway.strip_signatures.store(true, Ordering::SeqCst);
    let created = client.create(&order(&order_no(), 100, "https://example.com/n")).await;
    assert!(matches!(created, Err(ProviderError::BadSignature)), "{created:?}");
    let no = order_no();
    let closed = client.close(&no).await;
    assert!(
        matches!(closed, Err(ProviderError::BadSignature)),
        "an unsigned 204 is refused: {closed:?}"
    );
    emulator.faults().push(Fault::ServerError);
    let error = client.query(&no).await;
    assert!(
        matches!(error, Err(ProviderError::Unexpected { status: 500, .. })),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_request_signed_with_another_merchant_key_is_refused_with_sign_error() {
    let (mut credentials, config) = WechatEmulator::sandbox_pair();
    credentials.merchant_key = PrivateKey::generate();
    let Setup { client, .. } = setup_with((credentials, config), Duration::from_secs(5)).await;
    let result = client.create(&order(&order_no(), 100, "https://example.com/n")).await;
    assert!(
        matches!(result, Err(ProviderError::Rejected { ref code, .. }) if code == "SIGN_ERROR"),
        "{result:?}"
    );
}

#[tokio::test]
async fn notifications_are_retried_until_acknowledged_and_fail_when_never_acknowledged() {
    let Setup { client, emulator, .. } = setup().await;
    let mut flaky = notify_listener(2).await;
    let no = order_no();
    client.create(&order(&no, 100, &flaky.url)).await.unwrap();
    emulator.pay(&no).await.unwrap();
    assert_eq!(
        flaky.attempts.load(Ordering::SeqCst),
        3,
        "two failures, then the acknowledgement"
    );
    let (first_headers, first_body) = flaky.next().await;
    let (last_headers, last_body) = (flaky.next().await, flaky.next().await).1;
    assert_eq!(first_body, last_body, "every attempt carries the same notification");
    assert_ne!(
        first_headers.get(sign::NONCE),
        last_headers.get(sign::NONCE),
        "each attempt is signed afresh"
    );

    let mut broken = notify_listener(usize::MAX).await;
    let no = order_no();
    client.create(&order(&no, 100, &broken.url)).await.unwrap();
    let error = emulator.pay(&no).await.unwrap_err();
    assert!(error.contains("never acknowledged"), "{error}");
    assert_eq!(
        broken.attempts.load(Ordering::SeqCst),
        4,
        "one attempt per schedule entry"
    );
    broken.next().await;

    assert!(emulator.pay("noSuchOrder00001").await.unwrap_err().contains("no order"));
}

#[tokio::test]
async fn tampered_stale_and_probe_notifications_are_refused() {
    let Setup { client, emulator, .. } = setup().await;
    let no = order_no();
    client.create(&order(&no, 100, "https://example.com/n")).await.unwrap();
    emulator.mark_paid(&no, false).unwrap();
    let now = sign::unix_now();
    let (headers, body) = emulator.payment_notification(&no).unwrap();
    assert!(matches!(
        client.verify_notification(&headers, &body, now),
        Ok(Notification::Payment { .. })
    ));

    let mut tampered = body.clone();
    let at = tampered.iter().position(|b| *b == b'1').unwrap();
    tampered[at] = b'2';
    assert!(matches!(
        client.verify_notification(&headers, &tampered, now),
        Err(NotifyError::BadSignature)
    ));

    let reserialised = serde_json::to_vec_pretty(&serde_json::from_slice::<Value>(&body).unwrap()).unwrap();
    assert!(matches!(
        client.verify_notification(&headers, &reserialised, now),
        Err(NotifyError::BadSignature)
    ));

    let mut probe = headers.clone();
    probe.insert(sign::SIGNATURE, HeaderValue::from_static("WECHATPAY/SIGNTEST/aGVsbG8="));
    assert!(matches!(
        client.verify_notification(&probe, &body, now),
        Err(NotifyError::BadSignature)
    ));

    let stale = emulator.sign_notification(&body, now - 300, "nonce");
    assert!(matches!(
        client.verify_notification(&stale, &body, now),
        Err(NotifyError::Stale)
    ));
    let almost = emulator.sign_notification(&body, now - 299, "nonce");
    assert!(client.verify_notification(&almost, &body, now).is_ok());

    let mut unknown = headers.clone();
    unknown.insert(
        sign::SERIAL,
        HeaderValue::from_static("PUB_KEY_ID_0000000000000000000000000000"),
    );
    assert!(matches!(
        client.verify_notification(&unknown, &body, now),
        Err(NotifyError::BadSignature)
    ));
}

#[tokio::test]
async fn a_notification_for_another_merchant_is_refused_even_when_signed() {
    let Setup { client, emulator, .. } = setup().await;
    let plaintext = json!({
        "mchid": "1900000999", "appid": emulator.appid(), "out_trade_no": "someoneElse00001",
        "transaction_id": "4200000000000000000000000001", "trade_state": "SUCCESS",
        "success_time": "2026-11-21T22:15:00+08:00", "amount": {"total": 100, "currency": "CNY"},
    });
    let body = json!({
        "id": "EV-1", "create_time": "2026-11-21T22:15:00+08:00", "resource_type": "encrypt-resource",
        "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功",
        "resource": emulator.encrypt_resource("transaction", plaintext.to_string().as_bytes()),
    })
    .to_string();
    let now = sign::unix_now();
    let headers = emulator.sign_notification(body.as_bytes(), now, "n0nce");
    let result = client.verify_notification(&headers, body.as_bytes(), now);
    assert!(matches!(result, Err(NotifyError::WrongMerchant(_))), "{result:?}");
    assert_ne!(emulator.mchid(), "1900000999");
}

#[tokio::test]
async fn certificate_mode_downloads_the_platform_certificate_on_first_use() {
    let Setup { client, emulator, .. } =
        setup_with(WechatEmulator::sandbox_pair_certificate_mode(), Duration::from_secs(5)).await;
    assert!(client.known_serials().is_empty());
    let no = order_no();
    client.create(&order(&no, 100, "https://example.com/n")).await.unwrap();
    assert_eq!(client.known_serials(), [emulator.platform_serial().to_string()]);

    emulator.mark_paid(&no, false).unwrap();
    let (headers, body) = emulator.payment_notification(&no).unwrap();
    let notification = client.verify_notification(&headers, &body, sign::unix_now()).unwrap();
    assert!(matches!(notification, Notification::Payment { .. }));
    assert_eq!(client.refresh_certificates().await.unwrap(), 1);
}

/// A second set of the same credentials (keys are not `Clone`).
fn twin(c: &WechatCredentials) -> WechatCredentials {
    WechatCredentials {
        mchid: c.mchid.clone(),
        appid: c.appid.clone(),
        merchant_serial_no: c.merchant_serial_no.clone(),
        merchant_key: PrivateKey::from_text(c.merchant_key.to_pkcs8_pem().as_bytes(), "twin").unwrap(),
        api_v3_key: c.api_v3_key,
        platform_public_key_id: c.platform_public_key_id.clone(),
        platform_public_key: None,
    }
}

#[tokio::test]
async fn an_unknown_certificate_on_a_notification_refreshes_certificates_for_the_retry() {
    let (credentials, config) = WechatEmulator::sandbox_pair_certificate_mode();
    let second = twin(&credentials);
    let Setup {
        client,
        emulator,
        gateway,
    } = setup_with((credentials, config), Duration::from_secs(5)).await;
    let no = order_no();
    client.create(&order(&no, 100, "https://example.com/n")).await.unwrap();
    emulator.mark_paid(&no, false).unwrap();
    let (headers, body) = emulator.payment_notification(&no).unwrap();

    // A client that has not talked to WeChat yet knows no certificate.
    let fresh = WechatClient::new(second, gateway.base.clone(), HttpClient::new(Duration::from_secs(5)));
    assert!(fresh.known_serials().is_empty());
    let first = fresh.verify_notification(&headers, &body, sign::unix_now());
    assert!(matches!(first, Err(NotifyError::BadSignature)), "{first:?}");
    for _ in 0..250 {
        if !fresh.known_serials().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fresh.known_serials(), [emulator.platform_serial().to_string()]);
    assert!(
        fresh.verify_notification(&headers, &body, sign::unix_now()).is_ok(),
        "WeChat's retry verifies"
    );
}
