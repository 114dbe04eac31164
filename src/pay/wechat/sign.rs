//! WeChat Pay API v3 signatures over exact bytes. Requests: `Authorization: WECHATPAY2-SHA256-RSA2048
//! mchid=…,nonce_str=…,timestamp=…,serial_no=…,signature=…` over `METHOD\nPATH?QUERY\nTS\nNONCE\nBODY\n`.
//! Answers and notifications: `Wechatpay-Timestamp/-Nonce/-Signature/-Serial` over `TS\nNONCE\nBODY\n`,
//! checked with the key `Wechatpay-Serial` names in a [`KeyRing`]. Keys themselves live in `pay::keys`.
//! https://pay.weixin.qq.com/doc/v3/merchant/4012365336 (签名生成; 验签: see [`KeyRing`])

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::pay::keys::{PrivateKey, PublicKey};

/// The authentication scheme of requests and the signature type of answers.
pub const SCHEME: &str = "WECHATPAY2-SHA256-RSA2048";
/// Answers and notifications whose timestamp is this far from now (or further) are refused.
pub const MAX_SKEW_SECS: i64 = 300;
/// The prefix of a WeChat Pay public key id (public-key mode) in `Wechatpay-Serial`.
pub const PUBLIC_KEY_ID_PREFIX: &str = "PUB_KEY_ID_";

/// `Wechatpay-Timestamp`: seconds since the epoch, as decimal text.
pub const TIMESTAMP: HeaderName = HeaderName::from_static("wechatpay-timestamp");
/// `Wechatpay-Nonce`.
pub const NONCE: HeaderName = HeaderName::from_static("wechatpay-nonce");
/// `Wechatpay-Signature`: base64 SHA256withRSA.
pub const SIGNATURE: HeaderName = HeaderName::from_static("wechatpay-signature");
/// `Wechatpay-Serial`: which key signed.
pub const SERIAL: HeaderName = HeaderName::from_static("wechatpay-serial");
/// `Wechatpay-Signature-Type`, always [`SCHEME`].
pub const SIGNATURE_TYPE: HeaderName = HeaderName::from_static("wechatpay-signature-type");

/// Seconds since the Unix epoch (0 if the clock is before 1970).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The request signing string `METHOD\nPATH?QUERY\nTIMESTAMP\nNONCE\nBODY\n` (empty body for GET).
pub fn request_message(method: &str, path_and_query: &str, timestamp: i64, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(method.len() + path_and_query.len() + nonce.len() + body.len() + 24);
    for part in [
        method.as_bytes(),
        path_and_query.as_bytes(),
        timestamp.to_string().as_bytes(),
        nonce.as_bytes(),
        body,
    ] {
        message.extend_from_slice(part);
        message.push(b'\n');
    }
    message
}

/// The answer / notification signing string `TIMESTAMP\nNONCE\nBODY\n`, with the timestamp
/// exactly as the header spells it and the body exactly as received.
pub fn answer_message(timestamp: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(timestamp.len() + nonce.len() + body.len() + 3);
    for part in [timestamp.as_bytes(), nonce.as_bytes(), body] {
        message.extend_from_slice(part);
        message.push(b'\n');
    }
    message
}

/// The parts of a request's `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub mchid: String,
    pub nonce_str: String,
    /// Seconds since the epoch.
    pub timestamp: i64,
    /// The serial number of the merchant API certificate whose key signed.
    pub serial_no: String,
    /// Base64 SHA256withRSA of [`request_message`].
    pub signature: String,
}

impl Authorization {
    /// Signs a request with the merchant key.
    #[allow(clippy::too_many_arguments)]
    pub fn sign(
        key: &PrivateKey,
        mchid: &str,
        serial_no: &str,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        timestamp: i64,
        nonce: &str,
    ) -> Self {
        let message = request_message(method, path_and_query, timestamp, nonce, body);
        Authorization {
            mchid: mchid.to_string(),
            nonce_str: nonce.to_string(),
            timestamp,
            serial_no: serial_no.to_string(),
            signature: key.sign_base64(&message),
        }
    }

    /// The header value, in the order WeChat's documentation shows.
    pub fn header_value(&self) -> String {
        format!(
            "{SCHEME} mchid=\"{}\",nonce_str=\"{}\",timestamp=\"{}\",serial_no=\"{}\",signature=\"{}\"",
            self.mchid, self.nonce_str, self.timestamp, self.serial_no, self.signature
        )
    }

    /// Parses a header value; `None` unless the scheme is right and all five fields are there
    /// (in any order, as the documentation allows).
    pub fn parse(value: &str) -> Option<Self> {
        let rest = value.strip_prefix(SCHEME)?.strip_prefix(' ')?;
        let mut fields: HashMap<&str, &str> = HashMap::new();
        let mut rest = rest.trim_start();
        while !rest.is_empty() {
            let (name, after) = rest.split_once('=')?;
            let after = after.strip_prefix('"')?;
            let (value, after) = after.split_once('"')?;
            if fields.insert(name.trim(), value).is_some() {
                return None;
            }
            rest = after.trim_start();
            rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        }
        Some(Authorization {
            mchid: fields.get("mchid")?.to_string(),
            nonce_str: fields.get("nonce_str")?.to_string(),
            timestamp: fields.get("timestamp")?.parse().ok()?,
            serial_no: fields.get("serial_no")?.to_string(),
            signature: fields.get("signature")?.to_string(),
        })
    }

    /// True when the signature is `key`'s over this request.
    pub fn verify(&self, key: &PublicKey, method: &str, path_and_query: &str, body: &[u8]) -> bool {
        let message = request_message(method, path_and_query, self.timestamp, &self.nonce_str, body);
        key.verify_base64(&message, &self.signature)
    }
}

/// The `Wechatpay-*` headers of an answer or notification signed by `key` (the emulator's side).
pub fn sign_answer(key: &PrivateKey, serial: &str, body: &[u8], timestamp: i64, nonce: &str) -> HeaderMap {
    let timestamp = timestamp.to_string();
    let signature = key.sign_base64(&answer_message(&timestamp, nonce, body));
    let mut headers = HeaderMap::new();
    for (name, value) in [
        (TIMESTAMP, timestamp.as_str()),
        (NONCE, nonce),
        (SIGNATURE, signature.as_str()),
        (SERIAL, serial),
        (SIGNATURE_TYPE, SCHEME),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    }
    headers
}

/// Why an answer or notification did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A `Wechatpay-*` header is absent, not ASCII, or the timestamp is not a number.
    #[error("the Wechatpay-Timestamp/-Nonce/-Signature/-Serial headers are missing or malformed")]
    Missing,
    /// The timestamp is [`MAX_SKEW_SECS`] or more away from now.
    #[error("the Wechatpay-Timestamp is outside the accepted window")]
    Stale,
    /// No key is known under this `Wechatpay-Serial`.
    #[error("no key is known for Wechatpay-Serial {0}")]
    UnknownSerial(String),
    /// The signature is not the named key's over `TIMESTAMP\nNONCE\nBODY\n`.
    #[error("the signature does not verify")]
    BadSignature,
}

fn header<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// True when the answer carries any signature header at all (unsigned error answers from a
/// proxy in front of WeChat carry none).
pub fn is_signed(headers: &HeaderMap) -> bool {
    headers.contains_key(SIGNATURE) || headers.contains_key(SERIAL)
}

/// The `Wechatpay-Serial` of an answer, if present.
pub fn serial_of(headers: &HeaderMap) -> Option<&str> {
    header(headers, &SERIAL)
}

/// WeChat Pay's verification keys by `Wechatpay-Serial`: the public key (`PUB_KEY_ID_…`) when
/// configured, plus platform certificates' keys by serial once downloaded. Both may coexist
/// while a merchant switches modes. A `std` lock: it is never held across an `.await`.
/// https://pay.weixin.qq.com/wiki/doc/apiv3/wechatpay/wechatpay4_1.shtml (签名验证)
#[derive(Default)]
pub struct KeyRing {
    keys: RwLock<HashMap<String, Arc<PublicKey>>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut serials = self.serials();
        serials.sort();
        f.debug_struct("KeyRing").field("serials", &serials).finish()
    }
}

impl KeyRing {
    /// An empty ring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the key for `serial`.
    pub fn insert(&self, serial: &str, key: PublicKey) {
        if let Ok(mut keys) = self.keys.write() {
            keys.insert(serial.to_string(), Arc::new(key));
        }
    }

    /// Replaces every platform-certificate key with `certificates`, keeping public keys.
    pub fn replace_certificates(&self, certificates: Vec<(String, Arc<PublicKey>)>) {
        if let Ok(mut keys) = self.keys.write() {
            keys.retain(|serial, _| serial.starts_with(PUBLIC_KEY_ID_PREFIX));
            keys.extend(certificates);
        }
    }

    /// The key known under `serial`.
    pub fn get(&self, serial: &str) -> Option<Arc<PublicKey>> {
        self.keys.read().ok().and_then(|keys| keys.get(serial).cloned())
    }

    /// Every serial known, in no particular order.
    pub fn serials(&self) -> Vec<String> {
        self.keys
            .read()
            .map(|keys| keys.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Verifies the `Wechatpay-*` headers over the raw `body`, `now` in Unix seconds.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8], now: i64) -> Result<(), VerifyError> {
        verify_with(headers, body, now, |serial| self.get(serial))
    }
}

/// [`KeyRing::verify`] with any serial → key lookup.
pub fn verify_with(
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
    key_for: impl FnOnce(&str) -> Option<Arc<PublicKey>>,
) -> Result<(), VerifyError> {
    let timestamp = header(headers, &TIMESTAMP).ok_or(VerifyError::Missing)?;
    let nonce = header(headers, &NONCE).ok_or(VerifyError::Missing)?;
    let signature = header(headers, &SIGNATURE).ok_or(VerifyError::Missing)?;
    let serial = header(headers, &SERIAL).ok_or(VerifyError::Missing)?;
    let seconds: i64 = timestamp.parse().map_err(|_| VerifyError::Missing)?;
    if now.abs_diff(seconds) >= MAX_SKEW_SECS.unsigned_abs() {
        return Err(VerifyError::Stale);
    }
    let key = key_for(serial).ok_or_else(|| VerifyError::UnknownSerial(serial.to_string()))?;
    if key.verify_base64(&answer_message(timestamp, nonce, body), signature) {
        Ok(())
    } else {
        Err(VerifyError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pay::wechat::fixtures;

    fn fixture_key() -> PrivateKey {
        PrivateKey::from_text(fixtures::PRIVATE_KEY_PEM.as_bytes(), "fixture").unwrap()
    }

    fn signed_fixture_answer() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(TIMESTAMP, HeaderValue::from(fixtures::ANSWER_TIMESTAMP));
        headers.insert(NONCE, HeaderValue::from_static(fixtures::ANSWER_NONCE));
        headers.insert(SIGNATURE, HeaderValue::from_static(fixtures::ANSWER_SIGNATURE));
        headers.insert(
            SERIAL,
            HeaderValue::from_static("PUB_KEY_ID_0114232134912410000000000001"),
        );
        headers
    }

    fn fixture_ring() -> KeyRing {
        let ring = KeyRing::new();
        ring.insert("PUB_KEY_ID_0114232134912410000000000001", fixture_key().public_key());
        ring
    }

    #[test]
    fn the_request_signing_string_has_five_lines_each_ending_in_a_newline() {
        let message = request_message(
            "POST",
            "/v3/pay/transactions/native",
            fixtures::REQUEST_TIMESTAMP,
            fixtures::REQUEST_NONCE,
            fixtures::REQUEST_BODY.as_bytes(),
        );
        assert_eq!(message, fixtures::REQUEST_MESSAGE.as_bytes());
        assert_eq!(
            request_message("GET", "/v3/certificates", 1, "n", b""),
            b"GET\n/v3/certificates\n1\nn\n\n"
        );
    }

    #[test]
    fn requests_are_signed_exactly_as_openssl_signs_them() {
        let auth = Authorization::sign(
            &fixture_key(),
            "1900000109",
            "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
            "POST",
            "/v3/pay/transactions/native",
            fixtures::REQUEST_BODY.as_bytes(),
            fixtures::REQUEST_TIMESTAMP,
            fixtures::REQUEST_NONCE,
        );
        assert_eq!(auth.signature, fixtures::REQUEST_SIGNATURE);
        assert_eq!(
            auth.header_value(),
            format!(
                "WECHATPAY2-SHA256-RSA2048 mchid=\"1900000109\",nonce_str=\"{}\",timestamp=\"1554208460\",\
                 serial_no=\"5157F09EFDC096DE15EBE81A47057A7232F1B8E1\",signature=\"{}\"",
                fixtures::REQUEST_NONCE,
                fixtures::REQUEST_SIGNATURE
            )
        );
    }

    #[test]
    fn an_authorization_header_parses_in_any_field_order_and_verifies() {
        let value = format!(
            "WECHATPAY2-SHA256-RSA2048 signature=\"{}\", serial_no=\"ABC\",timestamp=\"{}\",mchid=\"1900000109\",nonce_str=\"{}\"",
            fixtures::REQUEST_SIGNATURE,
            fixtures::REQUEST_TIMESTAMP,
            fixtures::REQUEST_NONCE
        );
        let auth = Authorization::parse(&value).unwrap();
        assert_eq!(auth.mchid, "1900000109");
        assert_eq!(auth.serial_no, "ABC");
        let key = fixture_key().public_key();
        let path = "/v3/pay/transactions/native";
        assert!(auth.verify(&key, "POST", path, fixtures::REQUEST_BODY.as_bytes()));
        assert!(!auth.verify(&key, "POST", path, b"{}"), "another body");
        assert!(
            !auth.verify(&key, "GET", path, fixtures::REQUEST_BODY.as_bytes()),
            "another method"
        );
        assert!(!auth.verify(
            &key,
            "POST",
            "/v3/pay/transactions/jsapi",
            fixtures::REQUEST_BODY.as_bytes()
        ));
    }

    #[test]
    fn malformed_authorization_headers_do_not_parse() {
        for bad in [
            "",
            "Bearer x",
            "WECHATPAY2-SHA256-RSA2048",
            "WECHATPAY2-SHA256-RSA2048 mchid=\"1\",nonce_str=\"n\",timestamp=\"1\",serial_no=\"s\"",
            "WECHATPAY2-SHA256-RSA2048 mchid=\"1\",nonce_str=\"n\",timestamp=\"x\",serial_no=\"s\",signature=\"g\"",
            "WECHATPAY2-SHA256-RSA2048 mchid=1,nonce_str=\"n\",timestamp=\"1\",serial_no=\"s\",signature=\"g\"",
            "WECHATPAY2-SHA256-RSA2048 mchid=\"1\",mchid=\"2\",nonce_str=\"n\",timestamp=\"1\",serial_no=\"s\",signature=\"g\"",
            "WECHATPAY2-SHA256-RSA2048 mchid=\"1",
        ] {
            assert_eq!(Authorization::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn an_answer_signed_by_openssl_verifies_over_its_raw_body() {
        let ring = fixture_ring();
        let body = fixtures::ANSWER_BODY.as_bytes();
        assert_eq!(
            ring.verify(&signed_fixture_answer(), body, fixtures::ANSWER_TIMESTAMP + 10),
            Ok(())
        );
    }

    #[test]
    fn a_tampered_body_or_header_does_not_verify() {
        let ring = fixture_ring();
        let now = fixtures::ANSWER_TIMESTAMP;
        let body = fixtures::ANSWER_BODY.as_bytes();
        let reserialised = br#"{"code_url": "weixin://wxpay/bizpayurl?pr=p4lpSuKzz"}"#;
        assert_eq!(
            ring.verify(&signed_fixture_answer(), reserialised, now),
            Err(VerifyError::BadSignature)
        );

        let mut headers = signed_fixture_answer();
        headers.insert(NONCE, HeaderValue::from_static("c5ac7061fccab6bf3e254dcf98995b8d"));
        assert_eq!(ring.verify(&headers, body, now), Err(VerifyError::BadSignature));

        let mut headers = signed_fixture_answer();
        headers.insert(TIMESTAMP, HeaderValue::from(fixtures::ANSWER_TIMESTAMP + 1));
        assert_eq!(ring.verify(&headers, body, now), Err(VerifyError::BadSignature));
    }

    #[test]
    fn signtest_probes_fail_verification() {
        let ring = fixture_ring();
        let mut headers = signed_fixture_answer();
        let probe = format!("WECHATPAY/SIGNTEST/{}", &fixtures::ANSWER_SIGNATURE[19..]);
        headers.insert(SIGNATURE, HeaderValue::from_str(&probe).unwrap());
        let result = ring.verify(&headers, fixtures::ANSWER_BODY.as_bytes(), fixtures::ANSWER_TIMESTAMP);
        assert_eq!(result, Err(VerifyError::BadSignature));
    }

    #[test]
    fn timestamps_300_seconds_or_more_away_are_stale() {
        let ring = fixture_ring();
        let body = fixtures::ANSWER_BODY.as_bytes();
        let ts = fixtures::ANSWER_TIMESTAMP;
        assert_eq!(ring.verify(&signed_fixture_answer(), body, ts + 299), Ok(()));
        assert_eq!(ring.verify(&signed_fixture_answer(), body, ts - 299), Ok(()));
        assert_eq!(
            ring.verify(&signed_fixture_answer(), body, ts + 300),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            ring.verify(&signed_fixture_answer(), body, ts - 300),
            Err(VerifyError::Stale)
        );
    }

    #[test]
    fn an_unknown_serial_or_a_missing_header_is_refused() {
        let ring = fixture_ring();
        let body = fixtures::ANSWER_BODY.as_bytes();
        let now = fixtures::ANSWER_TIMESTAMP;
        let mut headers = signed_fixture_answer();
        headers.insert(
            SERIAL,
            HeaderValue::from_static("5157F09EFDC096DE15EBE81A47057A7232F1B8E1"),
        );
        assert_eq!(
            ring.verify(&headers, body, now),
            Err(VerifyError::UnknownSerial(
                "5157F09EFDC096DE15EBE81A47057A7232F1B8E1".into()
            ))
        );
        for name in [TIMESTAMP, NONCE, SIGNATURE, SERIAL] {
            let mut headers = signed_fixture_answer();
            headers.remove(&name);
            assert_eq!(ring.verify(&headers, body, now), Err(VerifyError::Missing), "{name}");
        }
        let mut headers = signed_fixture_answer();
        headers.insert(TIMESTAMP, HeaderValue::from_static("soon"));
        assert_eq!(ring.verify(&headers, body, now), Err(VerifyError::Missing));
    }

    #[test]
    fn sign_answer_produces_headers_the_ring_accepts_and_another_key_does_not() {
        let key = PrivateKey::generate();
        let ring = KeyRing::new();
        ring.insert("PUB_KEY_ID_1", key.public_key());
        let headers = sign_answer(&key, "PUB_KEY_ID_1", b"", 1_700_000_000, "nonce");
        assert_eq!(headers.get(SIGNATURE_TYPE).unwrap(), SCHEME);
        assert_eq!(
            ring.verify(&headers, b"", 1_700_000_000),
            Ok(()),
            "an empty 204 body is signed too"
        );
        let other = sign_answer(&fixture_key(), "PUB_KEY_ID_1", b"", 1_700_000_000, "nonce");
        assert_eq!(ring.verify(&other, b"", 1_700_000_000), Err(VerifyError::BadSignature));
    }

    #[test]
    fn replacing_certificates_keeps_the_public_key() {
        let ring = fixture_ring();
        ring.insert("OLDCERT", fixture_key().public_key());
        ring.replace_certificates(vec![("NEWCERT".into(), Arc::new(fixture_key().public_key()))]);
        let mut serials = ring.serials();
        serials.sort();
        assert_eq!(serials, ["NEWCERT", "PUB_KEY_ID_0114232134912410000000000001"]);
    }
}
