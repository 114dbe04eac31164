//! Fuzz target bodies: each `target_*` takes arbitrary bytes, runs one parser the way the
//! server does, and checks what must hold of the result. None may panic on any input. The
//! cargo-fuzz crate in `tests/fuzz` calls them under libFuzzer; `smoke` runs them on stable
//! Rust over the checked-in corpus plus seeded mutations, as part of `cargo test`.
//! Keys and merchant ids here are generated or fake, for fuzzing only.

use std::sync::{Arc, OnceLock};

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use crate::config;
use crate::donate;
use crate::error::AppError;
use crate::http::extract::{self, BodyKind};
use crate::http::route::{self, ROUTE_COUNT, Route};
use crate::pay::alipay;
use crate::pay::keys::{PrivateKey, PublicKey};
use crate::pay::money::{self, MoneyError};
use crate::pay::provider::{Notification, NotifyError};
use crate::pay::wechat::crypto::EncryptedResource;
use crate::pay::wechat::notify::{self, Merchant};
use crate::pay::wechat::sign;

#[cfg(test)]
mod smoke;

/// A fuzz target: arbitrary bytes in, a panic only on a bug.
pub type Target = fn(&[u8]);

/// Every target by name, as the fuzz crate and the smoke test know them.
pub const TARGETS: &[(&str, Target)] = &[
    ("route", target_route),
    ("query_form", target_query_form),
    ("amount", target_amount),
    ("wechat_notify", target_wechat_notify),
    ("alipay_notify", target_alipay_notify),
    ("config", target_config),
];

/// A fake APIv3 key (32 bytes) and merchant for the WeChat target.
const API_V3_KEY: &[u8; 32] = b"fuzzApiV3KeyNotARealSecret32byte";
const MCHID: &str = "1900000109";
const APPID: &str = "wxd678efh567hg6787";
const WECHAT_KEY_ID: &str = "PUB_KEY_ID_0000000000000000000000000001";
/// The Alipay app and seller the notifications must be for.
const APP_ID: &str = "2021000000000000";
const SELLER_ID: &str = "2088000000000000";
/// The "now" of signature checks (Unix seconds), fixed so runs repeat.
const NOW: i64 = 1_795_000_000;

/// One RSA key pair made per process: signing stands in for the provider, verifying for us.
fn provider_key() -> &'static (PrivateKey, Arc<PublicKey>) {
    static KEY: OnceLock<(PrivateKey, Arc<PublicKey>)> = OnceLock::new();
    KEY.get_or_init(|| {
        let key = PrivateKey::generate();
        let public = Arc::new(key.public_key());
        (key, public)
    })
}

/// Every error a request parser returns must be the client's fault: a 4xx.
fn assert_client_error(err: &AppError) {
    let status = err.status();
    assert!(
        status.is_client_error() && status != StatusCode::NOT_FOUND,
        "a parser answered {status} ({})",
        err.code()
    );
}

/// Route parsing: the first byte picks the method, the rest is the request target.
pub fn target_route(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let method = match pick % 5 {
        0 => Method::GET,
        1 => Method::HEAD,
        2 => Method::POST,
        3 => Method::DELETE,
        _ => Method::OPTIONS,
    };
    // What hyper hands over: a URI that parsed; and the raw text for good measure.
    if let Ok(uri) = http::Uri::try_from(rest) {
        check_route(&method, uri.path());
    }
    if let Ok(text) = std::str::from_utf8(rest) {
        check_route(&method, text);
    }
}

fn check_route(method: &Method, path: &str) {
    let parsed = route::parse(method, path);
    assert!(parsed.index() < ROUTE_COUNT);
    match parsed {
        Route::PayPage(no) | Route::PaymentStatus(no) | Route::PaymentQr(no, _) | Route::SandboxPay(no) => {
            assert!(route::is_order_no(no), "{no:?} routed as an order number");
            assert!(path.ends_with(no) || path.contains(&format!("/{no}/")));
        }
        Route::Static(name) => {
            assert!(
                !name.is_empty() && !name.starts_with('.') && !name.contains('/'),
                "{name:?}"
            );
        }
        Route::SandboxWechat(api) => assert_eq!(path.strip_prefix("/sandbox/wechat/"), Some(api)),
        _ => {}
    }
    if matches!(parsed, Route::NotFound | Route::MethodNotAllowed { .. }) {
        return;
    }
    assert!(path.starts_with('/'));
}

/// Query strings and bodies: the first byte picks a reader, the rest is its input.
pub fn target_query_form(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    match pick % 4 {
        0 => match extract::pairs(rest) {
            Ok(pairs) => {
                for (k, v) in pairs {
                    assert!(!k.contains('\u{fffd}') && !v.contains('\u{fffd}'));
                }
            }
            Err(e) => assert_client_error(&e),
        },
        1 => {
            let Ok(query) = std::str::from_utf8(rest) else {
                return;
            };
            let query = Some(query);
            match donate::ranking_key(query) {
                Ok(key) => {
                    assert!((1..=100).contains(&key.size) && key.page >= 1);
                    assert!(key.category_id.is_none_or(|id| id > 0));
                }
                Err(e) => assert_client_error(&e),
            }
            match donate::recent_params(query) {
                Ok((category, limit)) => assert!(category.is_none_or(|id| id > 0) && (1..=100).contains(&limit)),
                Err(e) => assert_client_error(&e),
            }
            match crate::payments::wait_param(query) {
                Ok(wait) => assert!(wait.is_none_or(|w| (1..=30).contains(&w.as_secs()))),
                Err(e) => assert_client_error(&e),
            }
        }
        kind => {
            let kind = if kind == 2 { BodyKind::Json } else { BodyKind::Form };
            match donate::create::parse(kind, rest, 1, 5_000_000, |id| id == 1 || id == 2) {
                Ok(d) => {
                    assert!((1..=5_000_000).contains(&d.amount_fen));
                    assert!(d.category_id == 1 || d.category_id == 2);
                    assert!(d.donor_name.chars().count() <= 32 && !d.donor_name.chars().any(char::is_control));
                    assert!(d.message.chars().count() <= 200);
                    assert_eq!(d.donor_name.trim(), d.donor_name);
                }
                Err(e) => assert_client_error(&e),
            }
        }
    }
}

/// Yuan strings → fen: what parses is non-negative, bounded and formats back to itself;
/// any `i64` formats into something that parses back when it is in range.
pub fn target_amount(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        match money::parse_yuan(text) {
            Ok(fen) => {
                assert!(fen >= 0);
                assert_eq!(money::parse_yuan(&money::format_yuan(fen)), Ok(fen));
                assert_eq!(Some(fen), reference_fen(text), "{text:?}");
            }
            Err(MoneyError::Overflow) => assert!(reference_fen(text).is_none_or(|f| f > 100_000_000_000_000)),
            Err(_) => {}
        }
    }
    if let Some(bytes) = data.get(..8) {
        let fen = i64::from_le_bytes(bytes.try_into().expect("8 bytes"));
        let text = money::format_yuan(fen);
        if (0..=100_000_000_000_000).contains(&fen) {
            assert_eq!(money::parse_yuan(&text), Ok(fen));
        } else if fen < 0 {
            assert!(money::parse_yuan(&text).is_err());
        }
    }
}

/// An independent reading of a plain decimal: `digits[.d[d]]` as fen, in `i128`.
fn reference_fen(text: &str) -> Option<i64> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    // Leading zeros are allowed in any number; only significant digits can overflow.
    let significant = int.trim_start_matches('0');
    if int.is_empty() || significant.len() > 30 || frac.len() > 2 || (text.contains('.') && frac.is_empty()) {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int: i128 = if significant.is_empty() {
        0
    } else {
        significant.parse().ok()?
    };
    let frac: i128 = format!("{frac:0<2}").parse().ok()?;
    i64::try_from(int * 100 + frac).ok()
}

/// The WeChat Pay notification path (`verify_with`, then `notify::interpret`). The first byte
/// picks how far the input gets: raw headers and body (the signature check), a body signed
/// with the test key (JSON and resource handling), or a resource plaintext sealed with the
/// test APIv3 key (decryption and the transaction/refund fields).
pub fn target_wechat_notify(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (key, public) = provider_key();
    let merchant = Merchant {
        mchid: MCHID,
        appid: APPID,
        api_v3_key: API_V3_KEY,
    };
    let lookup = |serial: &str| (serial == WECHAT_KEY_ID).then(|| Arc::clone(public));
    match pick % 3 {
        0 => {
            let (headers, body) = split_headers(rest);
            if sign::verify_with(&headers, body, NOW, lookup).is_ok() {
                let _ = notify::interpret(body, merchant);
            }
        }
        1 => {
            let headers = signed_headers(key, rest);
            assert_eq!(sign::verify_with(&headers, rest, NOW, lookup), Ok(()));
            check_notification(notify::interpret(rest, merchant));
        }
        _ => {
            let (event, aad) = match rest.first().copied().unwrap_or(0) % 4 {
                0 => ("TRANSACTION.SUCCESS", "transaction"),
                1 => ("REFUND.SUCCESS", "refund"),
                2 => ("REFUND.ABNORMAL", "refund"),
                _ => ("TRANSACTION.CLOSED", "transaction"),
            };
            let plaintext = rest.get(1..).unwrap_or_default();
            let resource = EncryptedResource::encrypt(API_V3_KEY, aad, aad, plaintext);
            let body = serde_json::json!({
                "id": "EV-fuzz", "create_time": "2026-11-21T22:15:00+08:00",
                "resource_type": "encrypt-resource", "event_type": event, "summary": "fuzz",
                "resource": resource,
            })
            .to_string();
            let headers = signed_headers(key, body.as_bytes());
            assert_eq!(sign::verify_with(&headers, body.as_bytes(), NOW, lookup), Ok(()));
            let result = notify::interpret(body.as_bytes(), merchant);
            assert!(
                !matches!(result, Err(NotifyError::Decrypt)),
                "a sealed resource did not open"
            );
            check_notification(result);
        }
    }
}

/// `Name: value` lines up to an empty line, then the body.
fn split_headers(data: &[u8]) -> (HeaderMap, &[u8]) {
    let end = data.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match end {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (&data[..0], data),
    };
    let mut headers = HeaderMap::new();
    for line in head.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.append(name, value);
        }
    }
    (headers, body)
}

/// The `Wechatpay-*` headers WeChat Pay would send with `body`.
fn signed_headers(key: &PrivateKey, body: &[u8]) -> HeaderMap {
    let nonce = "fuzzNonce0123456789";
    let signature = key.sign_base64(&sign::answer_message(&NOW.to_string(), nonce, body));
    let mut headers = HeaderMap::new();
    headers.insert(sign::TIMESTAMP, HeaderValue::from(NOW));
    headers.insert(sign::NONCE, HeaderValue::from_static(nonce));
    headers.insert(
        sign::SIGNATURE,
        HeaderValue::from_str(&signature).expect("base64 is a header value"),
    );
    headers.insert(sign::SERIAL, HeaderValue::from_static(WECHAT_KEY_ID));
    headers
}

/// What any verified notification must satisfy before the engine sees it.
fn check_notification(result: Result<Notification, NotifyError>) {
    if let Ok(Notification::Payment { paid, refunded_fen }) = result {
        assert!(!paid.transaction_id.is_empty());
        assert!(refunded_fen >= 0);
    }
}

/// The Alipay notification path (`alipay::notify::verify`). The first byte picks whether the
/// body is checked as sent (the signature check) or re-signed with the test key over its own
/// fields first (the field, amount and time handling).
pub fn target_alipay_notify(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (key, public) = provider_key();
    let seller = if pick & 2 == 0 { SELLER_ID } else { "" };
    if pick % 2 == 0 {
        let _ = alipay::notify::verify(rest, Some(public), APP_ID, seller);
        return;
    }
    let Ok(mut fields) = alipay::sign::parse_form(rest) else {
        return;
    };
    fields.retain(|(k, _)| k != "sign");
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let signature = key.sign_base64(alipay::sign::notify_sign_content(pairs.iter().copied()).as_bytes());
    let body = alipay::sign::encode_form(pairs.iter().copied().chain([("sign", signature.as_str())]));
    let result = alipay::notify::verify(body.as_bytes(), Some(public), APP_ID, seller);
    let sign_type = fields.iter().find(|(k, _)| k == "sign_type").map(|(_, v)| v.as_str());
    if sign_type.is_none_or(|t| t == "RSA2") {
        assert!(
            !matches!(result, Err(NotifyError::BadSignature)),
            "a body re-signed over its own fields did not verify: {body:?}"
        );
    }
    check_notification(result);
}

/// Configuration loading: YAML text, then after a NUL byte `ZHIFU__…=value` lines standing in
/// for the environment. What validates must be usable.
pub fn target_config(data: &[u8]) {
    let (yaml, env) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &data[..0]),
    };
    let Ok(yaml) = std::str::from_utf8(yaml) else {
        return;
    };
    let env: Vec<(String, String)> = String::from_utf8_lossy(env)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .filter(|(k, _)| k.starts_with("ZHIFU__"))
        .collect();
    if let Ok(config) = config::load_text(yaml, env, std::path::Path::new("/srv/zhifu")) {
        assert!(config.min_amount_fen > 0 && config.min_amount_fen <= config.max_amount_fen);
        assert!(config.data_dir.is_absolute());
        assert!(config.settings.server.max_body_bytes >= 1024);
    }
}
