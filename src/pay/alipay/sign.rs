//! RSA2 (SHA256withRSA) rules of the classic Alipay gateway, as pure functions over text:
//! the string a request or a notification signs, form encoding, and finding the exact raw
//! text of an answer's `*_response` node that Alipay signed. No I/O and no key loading here.
//!
//! - Signing a request: https://opendocs.alipay.com/common/02kf5q (自行实现签名): every
//!   non-empty parameter except `sign`, `sign_type` included, sorted by key, `k=v` joined
//!   by `&` with raw (not url-encoded) values.
//! - Verifying answers and notifications: https://opendocs.alipay.com/common/02mse7
//!   (自行实现验签): a notification drops `sign` **and** `sign_type`; an answer's signature
//!   covers the exact JSON text of `"<method with dots as underscores>_response"`.

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::pay::keys::{PrivateKey, PublicKey};

/// The only signature type zhifu sends and accepts.
pub const SIGN_TYPE: &str = "RSA2";

/// The node an answer carries when the gateway refused before reaching the API (e.g. an
/// unknown method).
pub const ERROR_NODE: &str = "error_response";

/// `k=v` pairs sorted by key (byte order), joined by `&`, skipping empty values and the keys
/// in `skip`. Values are raw: no url-encoding.
pub fn sign_content<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>, skip: &[&str]) -> String {
    let mut kept: Vec<(&str, &str)> = params
        .into_iter()
        .filter(|(k, v)| !k.is_empty() && !v.is_empty() && !skip.contains(k))
        .collect();
    kept.sort_unstable();
    let mut out = String::with_capacity(kept.iter().map(|(k, v)| k.len() + v.len() + 2).sum());
    for (i, (k, v)) in kept.into_iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// What a request signs: everything but `sign` (`sign_type` included).
pub fn request_sign_content<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    sign_content(params, &["sign"])
}

/// What a notification signs: everything but `sign` and `sign_type`.
pub fn notify_sign_content<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    sign_content(params, &["sign", "sign_type"])
}

/// The base64 `sign` of a request's parameters, made with the app's private key.
pub fn sign_request<'a>(key: &PrivateKey, params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    key.sign_base64(request_sign_content(params).as_bytes())
}

/// True when `params` (decoded form fields) carry a `sign` that Alipay's key made over the
/// notification rule. A `sign_type` other than `RSA2` is refused rather than guessed at.
pub fn verify_notification(key: &PublicKey, params: &[(String, String)]) -> bool {
    let field = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    if field("sign_type").is_some_and(|t| t != SIGN_TYPE) {
        return false;
    }
    let Some(sign) = field("sign").filter(|s| !s.is_empty()) else {
        return false;
    };
    let content = notify_sign_content(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    key.verify_base64(content.as_bytes(), sign)
}

/// Decodes an `application/x-www-form-urlencoded` body (`+` is a space). A key given twice
/// is refused: which of the two a signature covered would be a guess.
pub fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in form_urlencoded::parse(body) {
        if out.iter().any(|(seen, _)| *seen == k) {
            return Err(format!("the field {k:?} appears twice"));
        }
        out.push((k.into_owned(), v.into_owned()));
    }
    Ok(out)
}

/// Encodes `params` as `application/x-www-form-urlencoded` (UTF-8).
pub fn encode_form<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        form.append_pair(k, v);
    }
    form.finish()
}

/// The answer node of `method`: `alipay.trade.query` → `alipay_trade_query_response`.
pub fn response_node(method: &str) -> String {
    format!("{}_response", method.replace('.', "_"))
}

/// A gateway answer taken apart without re-serializing anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAnswer<'a> {
    /// The exact text of the `*_response` (or `error_response`) value, as Alipay signed it.
    pub node: &'a str,
    /// True when the node was `error_response` rather than the method's own.
    pub is_error_node: bool,
    /// The top-level `sign`, when present and non-empty.
    pub sign: Option<String>,
}

/// Finds the node of `method` (or `error_response`) and the `sign` in an answer body. The node
/// is the byte range the JSON parser saw for that value, whatever the spacing or escaping.
pub fn split_answer<'a>(body: &'a str, method: &str) -> Result<RawAnswer<'a>, String> {
    let Members(members) =
        serde_json::from_str::<Members<'a>>(body).map_err(|e| format!("the answer is not a JSON object ({e})"))?;
    let wanted = response_node(method);
    let node_of = |name: &str| members.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
    let (node, is_error_node) = match (node_of(&wanted), node_of(ERROR_NODE)) {
        (Some(node), _) => (node, false),
        (None, Some(node)) => (node, true),
        (None, None) => return Err(format!("the answer has neither {wanted} nor {ERROR_NODE}")),
    };
    if !node.get().starts_with('{') {
        return Err("the answer node is not an object".into());
    }
    let sign = match node_of("sign") {
        None => None,
        Some(raw) => {
            let sign: String =
                serde_json::from_str(raw.get()).map_err(|_| "the answer's sign is not a string".to_string())?;
            Some(sign).filter(|s| !s.is_empty())
        }
    };
    Ok(RawAnswer {
        node: node.get(),
        is_error_node,
        sign,
    })
}

/// True when `sign` is Alipay's signature of the exact node text. Like Alipay's own SDKs, a
/// second try replaces `\/` by `/` (some of Alipay's serializers escape slashes after
/// signing); both texts parse to the same JSON, so nothing unsigned is let through.
pub fn verify_answer(key: &PublicKey, node: &str, sign: &str) -> bool {
    key.verify_base64(node.as_bytes(), sign)
        || (node.contains("\\/") && key.verify_base64(node.replace("\\/", "/").as_bytes(), sign))
}

/// A whole answer body `{"<node name>":<node>,"sign":"…"}` signed with `key` (the emulator's
/// side of [`split_answer`]); `node` must be a JSON object's text.
pub fn sign_answer(key: &PrivateKey, node_name: &str, node: &str) -> String {
    let sign = key.sign_base64(node.as_bytes());
    format!(
        "{{{}:{node},\"sign\":{}}}",
        serde_json::Value::from(node_name),
        serde_json::Value::from(sign)
    )
}

/// The top-level members of a JSON object, each value kept as its raw text. A member given
/// twice is refused.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor<'a>(std::marker::PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for MembersVisitor<'a> {
            type Value = Members<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut members: Vec<(String, &'a RawValue)> = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, &'de RawValue>()? {
                    if members.iter().any(|(k, _)| *k == key) {
                        return Err(serde::de::Error::custom(format!("the member {key:?} appears twice")));
                    }
                    members.push((key, value));
                }
                Ok(Members(members))
            }
        }

        deserializer.deserialize_map(MembersVisitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A throw-away RSA 2048 key made with `openssl genpkey` for these tests only; it signs
    /// nothing real. The expected signatures below were made with `openssl dgst -sha256 -sign`
    /// and Python's `cryptography`, not with this crate.
    pub(crate) const FIXTURE_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQDDMo81G3I0ocGd
4jE/xwFjmj7KjbKWUu1AhedPXS/BnlY6t+KcqLervkQzdj5wCgVlAdypmZ+0lW1+
ibA7CVDoQeO1r4jm/00a1e2MQjCobvSQZEYk4oTG6eA2BMz349Mxx3FFAIgYcSf8
iFCOXKyiIvcdSwaibX2EOmZKYsJpRmDPZf7k1W2efF361nXj0TGGbhNNX3kAU7BP
5qV0GtDmUcMRmD6dX++35O0JBQZrQEDUEyOh27HTuXxqGpmdWMe1QIIwRwCcTbAq
2dgpQLhFD/Ph90L4yZ5kQwqPuOElVEAV7cQpoNiSxUUn0m41mY2Y/m2MxRcznlxV
azYVoPrjAgMBAAECggEARj0mv/7w0RSVxbjTbPYwv0UNLDjh1urfOZUVf37yRNMz
hyyNLD8f3Hp6MyRs4kcQ2uBZJWREzifo/xwPoKbBCNpQ1JtmAW1DsxDgylQ1Cx7l
/SFABlzGV4dn6ThAA0FlSSfRz/kZf+YT8/CfQCMD8dHwJwfMytzoShDzpvezqkqJ
H4kG7Eadk+EXLDBEWmkoIMotrGnFYMiYJNuUsl7t3B5rnSwgN1oUnjKaT+pNYNFO
S5yuNQlyqbV4dQysO9oOjKgExWf1inIiVlwuI8PC8CC/SY00FaFwmse5ZSfKtdCr
HaiaxxchQ389z0xSJTUBouFPx4HUh6nANAOwvLjXYQKBgQD+2AGlHATNl0TOo99C
vNJGJ0jz4JN9x5xC5kO8tRHuu4QqofcRBHena1ZiMnyOmEjb/B8wyZly605bPpTM
QlOgqnJ3Nxv+V2Q/+h2TmhiSTYVlCt7rZijvVPRU4z6V71wQWZhb8UPNvryiA3xN
gtgMDBU1EKmjgwnl8yzXCu3O4QKBgQDEFUaMIQVc3X9bkReTbu4ALUQcNfST6Lpe
ucTvZrO6+Q4BC0znEFpK7xVDtmkPVUYd6L3BI/U9cjS7Fww6b9UYo9sdGlLaxb+h
b7rQLCfaXtLuvAmviAQiTg3cxWqMoWAMGrblS5LBxlWDPLdruzHDuhIL5dPssNT9
MKP7Q6yWQwKBgBS13Txb0JAcsPzSGHzF95i37JfVMmdQZ4SQTgTx+ikamB0W2ItL
f6XddUG5tKGqApHOJYLDf3L1aILFzTXkVgOClpbVpbK/y2ffnbO3HDQXlLWncoJS
5RS+JLUZWqa4sxSpE1a1frsjuxS3j8yEy6X+/WI4nnCpX46OeqBnRPhBAoGAdsY0
b5lo+DGrfbnLwCDHxg+lXDlKp3Wnvs1kf2eEo1NNqlBACw8awp1EEjoiNYl/6Yob
tyyi1s+hJVr2q0cmm8BVb7GMUrzKMW3OiV7V3S7nMnlwnIUVi/of54Ul3325AlwE
QayffwU2s0JKENXZdSf22oIi9xK+UYfvLLp3hqUCgYAf8CfUAERIZV6hsjlstCeK
hZiXCg+pw/IheO83k9M9ADzldzClwpww3DA8cpJLahcjcprPUDxspKFUlHfxaAVj
Makdh1ttA+ig748KPq3+/wGThaT0ml6ItRIRStCMZFXeB0kBTJoS1P7eyxXTR1Lx
BDlyQmRcy18l3o394//2Kg==
-----END PRIVATE KEY-----
";

    /// A precreate request's parameters (what `AlipayClient::create` sends for these values).
    pub(crate) const REQUEST: &[(&str, &str)] = &[
        ("method", "alipay.trade.precreate"),
        ("app_id", "2021000000000000"),
        ("charset", "utf-8"),
        ("format", "JSON"),
        ("sign_type", "RSA2"),
        ("timestamp", "2024-05-06 07:08:09"),
        ("version", "1.0"),
        ("notify_url", "https://zhifu.example/notify/alipay"),
        ("app_auth_token", ""),
        (
            "biz_content",
            r#"{"out_trade_no":"0123456789abcdef0123456789abcdef","subject":"捐赠 donation","total_amount":"12.34"}"#,
        ),
    ];

    /// `REQUEST`'s string to sign, written out by hand from the documented rule.
    const REQUEST_CONTENT: &str = concat!(
        "app_id=2021000000000000",
        r#"&biz_content={"out_trade_no":"0123456789abcdef0123456789abcdef","subject":"捐赠 donation","total_amount":"12.34"}"#,
        "&charset=utf-8&format=JSON&method=alipay.trade.precreate",
        "&notify_url=https://zhifu.example/notify/alipay&sign_type=RSA2",
        "&timestamp=2024-05-06 07:08:09&version=1.0",
    );

    /// `openssl dgst -sha256 -sign FIXTURE_KEY` of `REQUEST_CONTENT`, base64.
    const REQUEST_SIGN: &str = "oKOKYGK23in73iMBWZrEVVg/7tVo0D7qBHKr98yZM80lGh1iuhzNMwHIhWpAFRL8v83/Xqw3KFJU7Xvk4rBr/e2lR0urpoFngg3vutU8wUzHhLjlufKpyxnlwiH/yqIDxETXFNUN3tANzxVQQQSPFJNHAlbZ3kDCHD1+VJCqZ0I2xvQOeOq5DzK4whSi+MMLXESGfYz/r9jFYIfeECPSibVlMsr0xIbi4BEu3QuLLwRireG6Va6yNxkoKOBwJycawllg6dEOoiEoNIDABvWR8eVHbXxnSaSs8NHULQjLJ6nKCPtXHZJxLGexH8fMRF2YpkNFroXwV46aClng37iu7w==";

    /// An answer signed over its node by Python: odd spacing around the node and `sign`, `\/`
    /// escapes, `\u` escapes, raw UTF-8, an escaped quote, backslash and tab inside the node.
    pub(crate) const ANSWER: &str = r###"{ "alipay_trade_precreate_response" :  {"code":"10000","msg":"Success","out_trade_no":"0123456789abcdef0123456789abcdef","qr_code":"https:\/\/qr.alipay.com\/bax0000","subject":"捐赠 \u6350\u8d60 \"quoted\" \\ tab\t"} ,
  "sign" : "sZYN86ga4vJ7Dw+uu8Q4qT0hajh3TDN5/nNRZEMp7u1B7vDN/TqTsBvEjTe2HzUqJp7U/Bg5C3glLCaMpTsb8LMXlhtgupPac5CWwvY/kAy5Z+CVJmo/0noGpIkWfn3YYHSvUpsgTNDu7PxRPZ/9C42bXMMMrgQ/LHj5EONB7pwKsrwW7ZYlFwecIDz0ie2U4UymU8O+UuwNWdmHG12bUrIIRVrsDtZL1Y0EAqDWaTeD+wbsY7UOsmWjrCqrgcmAXu8xc3f9HriF5TYfcwuRH7PR2BRREzvuhN+ahHn8gPOxHQS3SzpuxGtkOGt3WJtvply3IEjS8A7wftci/iHcsQ==" }"###;

    pub(crate) fn fixture_key() -> PrivateKey {
        PrivateKey::from_text(FIXTURE_KEY.as_bytes(), "fixture").expect("the fixture key parses")
    }

    #[test]
    fn the_request_sign_string_sorts_keys_keeps_sign_type_and_drops_sign_and_empty_values() {
        let mut params = REQUEST.to_vec();
        params.push(("sign", "must not be signed"));
        assert_eq!(request_sign_content(params.iter().copied()), REQUEST_CONTENT);
    }

    #[test]
    fn the_notification_sign_string_also_drops_sign_type() {
        let params = [("b", "2"), ("sign_type", "RSA2"), ("a", "1"), ("sign", "x"), ("c", "")];
        assert_eq!(notify_sign_content(params), "a=1&b=2");
    }

    #[test]
    fn keys_sort_by_bytes_not_by_locale_or_case() {
        let params = [("b", "1"), ("B", "2"), ("a_b", "3"), ("ab", "4"), ("a", "5")];
        assert_eq!(sign_content(params, &[]), "B=2&a=5&a_b=3&ab=4&b=1");
    }

    #[test]
    fn request_signatures_match_openssl_on_the_fixed_vector() {
        let key = fixture_key();
        assert_eq!(sign_request(&key, REQUEST.iter().copied()), REQUEST_SIGN);
        assert!(key.public_key().verify_base64(REQUEST_CONTENT.as_bytes(), REQUEST_SIGN));
    }

    #[test]
    fn the_answer_node_is_the_exact_raw_text_whatever_the_spacing_and_escapes() {
        let answer = split_answer(ANSWER, "alipay.trade.precreate").unwrap();
        assert!(answer.node.starts_with(r#"{"code":"10000""#));
        assert!(answer.node.ends_with(r#"\\ tab\t"}"#), "{}", answer.node);
        assert!(answer.node.contains(r#"https:\/\/qr.alipay.com\/bax0000"#));
        assert!(answer.node.contains(r#"捐赠 \u6350\u8d60 \"quoted\""#));
        assert!(!answer.is_error_node);
        let sign = answer.sign.expect("the answer is signed");
        let alipay = fixture_key().public_key();
        assert!(verify_answer(&alipay, answer.node, &sign));
    }

    #[test]
    fn an_answer_re_serialized_or_tampered_no_longer_verifies() {
        let answer = split_answer(ANSWER, "alipay.trade.precreate").unwrap();
        let sign = answer.sign.clone().unwrap();
        let alipay = fixture_key().public_key();
        let reserialized = serde_json::from_str::<serde_json::Value>(answer.node)
            .unwrap()
            .to_string();
        assert_ne!(reserialized, answer.node);
        assert!(!verify_answer(&alipay, &reserialized, &sign));
        let tampered = answer.node.replace("10000", "10001");
        assert!(!verify_answer(&alipay, &tampered, &sign));
        let other_key = PrivateKey::generate().public_key();
        assert!(!verify_answer(&other_key, answer.node, &sign));
    }

    #[test]
    fn an_answer_signed_before_its_slashes_were_escaped_still_verifies() {
        let key = fixture_key();
        let node = r#"{"code":"10000","qr_code":"https://qr.alipay.com/bax1"}"#;
        let sign = key.sign_base64(node.as_bytes());
        let escaped = node.replace('/', "\\/");
        assert!(verify_answer(&key.public_key(), &escaped, &sign));
        assert!(!verify_answer(
            &key.public_key(),
            &escaped.replace("bax1", "bax2"),
            &sign
        ));
    }

    #[test]
    fn an_error_response_node_is_found_when_the_method_node_is_absent() {
        let body = r#"{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-method"}}"#;
        let answer = split_answer(body, "alipay.trade.query").unwrap();
        assert!(answer.is_error_node);
        assert_eq!(answer.sign, None);
        assert!(answer.node.contains("isv.invalid-method"));
    }

    #[test]
    fn answers_without_a_node_duplicated_members_or_non_json_are_refused() {
        for body in [
            "",
            "<html>502</html>",
            "[]",
            r#"{"other_response":{}}"#,
            r#"{"alipay_trade_query_response":"text"}"#,
            r#"{"alipay_trade_query_response":{"code":"10000"},"alipay_trade_query_response":{"code":"10000"}}"#,
            r#"{"alipay_trade_query_response":{"code":"10000"},"sign":7}"#,
        ] {
            assert!(split_answer(body, "alipay.trade.query").is_err(), "{body:?}");
        }
    }

    #[test]
    fn a_signed_answer_made_here_splits_back_into_its_node() {
        let key = fixture_key();
        let node = r#"{"code":"10000","msg":"Success"}"#;
        let body = sign_answer(&key, "alipay_trade_close_response", node);
        let answer = split_answer(&body, "alipay.trade.close").unwrap();
        assert_eq!(answer.node, node);
        assert!(verify_answer(&key.public_key(), answer.node, &answer.sign.unwrap()));
    }

    #[test]
    fn forms_round_trip_and_refuse_a_repeated_field() {
        let body = encode_form([("subject", "捐赠 a&b=c+d"), ("empty", "")]);
        assert_eq!(
            parse_form(body.as_bytes()).unwrap(),
            vec![
                ("subject".to_string(), "捐赠 a&b=c+d".to_string()),
                ("empty".to_string(), String::new())
            ]
        );
        assert!(parse_form(b"a=1&b=2&a=3").is_err());
    }
}
