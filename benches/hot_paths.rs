//! Micro-benchmarks of the hot paths' pure parts: money parse/format, WeChat Pay callback
//! verification and decryption, Alipay callback verification, QR rendering and ranking
//! serialization. Run with `cargo bench --bench hot_paths`. Keys are generated per run.

use std::sync::Arc;

use bytes::Bytes;
use divan::black_box;
use zhifu::donate::rankings::{Range, RankingItem, RankingKey, RankingPage, ranking_json};
use zhifu::pay::alipay::{notify as alipay_notify, sign as alipay_sign};
use zhifu::pay::keys::PrivateKey;
use zhifu::pay::money::{format_yuan, parse_yuan};
use zhifu::pay::qr::{Format, render};
use zhifu::pay::wechat::crypto::EncryptedResource;
use zhifu::pay::wechat::notify::{Merchant, interpret};
use zhifu::pay::wechat::sign::{KeyRing, sign_answer, unix_now};

fn main() {
    divan::main();
}

#[divan::bench(args = ["0.01", "12.3", "49999.99"])]
fn money_parse(text: &str) -> i64 {
    parse_yuan(black_box(text)).unwrap_or_default()
}

#[divan::bench]
fn money_format() -> String {
    format_yuan(black_box(4_999_999))
}

const MCHID: &str = "1900000109";
const APPID: &str = "wxd678efh567hg6787";
const API_V3_KEY: &[u8; 32] = b"bench-apiv3-key-0123456789abcdef";
const SERIAL: &str = "PUB_KEY_ID_0119000001090000000000000000";

/// A TRANSACTION.SUCCESS notification as WeChat Pay sends it: signed headers and body.
fn wechat_notification() -> (http::HeaderMap, Vec<u8>, KeyRing) {
    let platform = PrivateKey::generate();
    let ring = KeyRing::new();
    ring.insert(SERIAL, platform.public_key());
    let transaction = serde_json::json!({
        "mchid": MCHID, "appid": APPID, "out_trade_no": "0123456789abcdef0123456789abcdef",
        "transaction_id": "4200000000202611210000000001", "trade_type": "NATIVE",
        "trade_state": "SUCCESS", "trade_state_desc": "支付成功", "bank_type": "OTHERS",
        "success_time": "2026-11-21T22:15:00+08:00", "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {"total": 1234, "payer_total": 1234, "currency": "CNY", "payer_currency": "CNY"}
    });
    let sealed = EncryptedResource::encrypt(
        API_V3_KEY,
        "transaction",
        "transaction",
        transaction.to_string().as_bytes(),
    );
    let body = serde_json::json!({
        "id": "EV-2018022511223320873", "create_time": "2026-11-21T22:15:01+08:00",
        "resource_type": "encrypt-resource", "event_type": "TRANSACTION.SUCCESS",
        "summary": "支付成功", "resource": sealed,
    })
    .to_string()
    .into_bytes();
    let headers = sign_answer(&platform, SERIAL, &body, unix_now(), "5K8264ILTKCH16CQ2502SI8ZNMTM67VS");
    (headers, body, ring)
}

#[divan::bench]
fn wechat_verify(bencher: divan::Bencher) {
    let (headers, body, ring) = wechat_notification();
    let now = unix_now();
    bencher.bench_local(|| ring.verify(black_box(&headers), black_box(&body), now).is_ok());
}

#[divan::bench]
fn wechat_decrypt_and_interpret(bencher: divan::Bencher) {
    let (_, body, _) = wechat_notification();
    let merchant = Merchant {
        mchid: MCHID,
        appid: APPID,
        api_v3_key: API_V3_KEY,
    };
    bencher.bench_local(|| interpret(black_box(&body), merchant).is_ok());
}

#[divan::bench]
fn alipay_verify(bencher: divan::Bencher) {
    let key = PrivateKey::generate();
    let public = key.public_key();
    let mut params: Vec<(&str, &str)> = vec![
        ("gmt_create", "2026-11-21 22:15:00"),
        ("charset", "utf-8"),
        ("gmt_payment", "2026-11-21 22:15:06"),
        ("notify_time", "2026-11-21 22:15:07"),
        ("subject", "捐赠 · 综合"),
        ("buyer_id", "2088102177846880"),
        ("invoice_amount", "12.34"),
        ("version", "1.0"),
        ("notify_id", "2026112100222070816000000001"),
        ("notify_type", "trade_status_sync"),
        ("out_trade_no", "0123456789abcdef0123456789abcdef"),
        ("total_amount", "12.34"),
        ("trade_status", "TRADE_SUCCESS"),
        ("trade_no", "2026112122001400000000000001"),
        ("auth_app_id", "2021000000000000"),
        ("receipt_amount", "12.34"),
        ("buyer_pay_amount", "12.34"),
        ("app_id", "2021000000000000"),
        ("seller_id", "2088000000000000"),
        ("sign_type", "RSA2"),
    ];
    let sign = key.sign_base64(alipay_sign::notify_sign_content(params.iter().copied()).as_bytes());
    params.push(("sign", &sign));
    let body = alipay_sign::encode_form(params.iter().copied()).into_bytes();
    assert!(alipay_notify::verify(&body, Some(&public), "2021000000000000", "2088000000000000").is_ok());
    bencher.bench_local(|| {
        alipay_notify::verify(black_box(&body), Some(&public), "2021000000000000", "2088000000000000").is_ok()
    });
}

const CODE_URL: &str = "weixin://wxpay/bizpayurl?pr=p4lpSuKzz";

#[divan::bench]
fn qr_png() -> Option<Bytes> {
    render(black_box(CODE_URL), Format::Png)
}

#[divan::bench]
fn qr_svg() -> Option<Bytes> {
    render(black_box(CODE_URL), Format::Svg)
}

#[divan::bench(args = [10, 50, 100])]
fn ranking_serialize(bencher: divan::Bencher, size: u32) {
    let key = RankingKey {
        category_id: Some(1),
        range: Range::Week,
        page: 1,
        size,
    };
    let page = RankingPage {
        total: 1000,
        items: (0..u64::from(size))
            .map(|i| RankingItem {
                rank: i + 1,
                donor: format!("捐赠者{i}"),
                amount_fen: 1_000_000 - i as i64 * 997,
                count: 1 + i as i64 % 7,
            })
            .collect(),
        valid_until: None,
    };
    let page = Arc::new(page);
    bencher.bench_local(|| ranking_json(black_box(key), black_box(&page)));
}
