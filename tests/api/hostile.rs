//! Hostile input on every public endpoint: oversized bodies, invalid UTF-8, deeply nested and
//! huge JSON, NUL bytes, SQL and HTML injection, negative and overflowing numbers, unknown
//! fields, wrong content types and bad query parameters. Each answers a 4xx in the contract's
//! JSON error shape (callbacks: the provider's failure format) and no table changes.

use bytes::Bytes;
use http::{Method, StatusCode};
use tokio_postgres::NoTls;

use crate::helpers::{Answer, TestApp, spawn_app};

/// What a hostile request must get back.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// The contract's `{"error":{"code","message"}}` with this status and code.
    Error(u16, &'static str),
    /// WeChat Pay's failure: a 4xx/5xx with `{"code":"FAIL","message":…}`.
    WechatFail,
    /// Alipay's failure: the body `fail`.
    AlipayFail,
    /// The WeChat Pay emulator's API error: a 4xx with `{"code":…,"message":…}`.
    WechatApiError,
    /// The Alipay emulator's gateway error: `{"error_response":{"code":…}}` (Alipay answers 200).
    AlipayGatewayError,
}

struct Case {
    name: &'static str,
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Bytes,
    expect: Expect,
}

fn case(name: &'static str, method: Method, path: impl Into<String>, expect: Expect) -> Case {
    Case {
        name,
        method,
        path: path.into(),
        content_type: None,
        body: Bytes::new(),
        expect,
    }
}

fn get(name: &'static str, path: impl Into<String>, expect: Expect) -> Case {
    case(name, Method::GET, path, expect)
}

fn post(name: &'static str, path: &str, content_type: &'static str, body: impl Into<Bytes>, expect: Expect) -> Case {
    Case {
        content_type: Some(content_type),
        body: body.into(),
        ..case(name, Method::POST, path, expect)
    }
}

const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";
const SQL: &str = "1'; DROP TABLE payments; --";
const HTML: &str = "<script>alert(1)</script>";

fn donation(change: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) -> String {
    let mut body = serde_json::json!({"amount": "12.34", "channel": "wechat", "category_id": 1});
    change(body.as_object_mut().expect("an object"));
    body.to_string()
}

fn bad(code: &'static str) -> Expect {
    Expect::Error(422, code)
}

const MALFORMED: Expect = Expect::Error(400, "malformed_request");
const NOT_FOUND: Expect = Expect::Error(404, "not_found");

/// Every hostile request, for an app with a pending order `no`. One case per line: a table.
#[rustfmt::skip]
fn cases(no: &str) -> Vec<Case> {
    let create = "/api/donations";
    let huge = "x".repeat(70 * 1024);
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let nested_field = format!(
        r#"{{"amount":"1","channel":"wechat","category_id":1,"message":{}1{}}}"#,
        "[".repeat(5_000),
        "]".repeat(5_000)
    );
    let wide = format!("[{}]", vec!["1"; 25_000].join(","));
    vec![
        // POST /api/donations: size, encoding, structure.
        post("oversized JSON", create, JSON, donation(|b| { b.insert("message".into(), huge.clone().into()); }), Expect::Error(413, "payload_too_large")),
        post("oversized form", create, FORM, format!("amount=1&channel=wechat&category_id=1&message={huge}"), Expect::Error(413, "payload_too_large")),
        post("invalid UTF-8 in JSON", create, JSON, &b"{\"amount\":\"1\",\"channel\":\"wechat\",\"category_id\":1,\"donor_name\":\"\xff\xfe\"}"[..], MALFORMED),
        post("invalid UTF-8 in a form", create, FORM, &b"amount=1&channel=wechat&category_id=1&donor_name=\xff"[..], MALFORMED),
        post("percent-encoded invalid UTF-8", create, FORM, "amount=1&channel=wechat&category_id=1&donor_name=%C0%80", MALFORMED),
        post("deeply nested JSON", create, JSON, nested, MALFORMED),
        post("deeply nested field", create, JSON, nested_field, MALFORMED),
        post("a huge array", create, JSON, wide, MALFORMED),
        post("a name far over the limit", create, JSON, donation(|b| { b.insert("donor_name".into(), "名".repeat(20_000).into()); }), bad("invalid_donor_name")),
        post("empty JSON body", create, JSON, "", MALFORMED),
        post("JSON null", create, JSON, "null", MALFORMED),
        post("a raw NUL in JSON", create, JSON, &b"{\"amount\":\"1\0\"}"[..], MALFORMED),
        post("NUL in the name", create, JSON, donation(|b| { b.insert("donor_name".into(), "a\u{0}b".into()); }), bad("invalid_donor_name")),
        post("NUL in the amount", create, JSON, donation(|b| { b.insert("amount".into(), "1\u{0}".into()); }), bad("invalid_amount")),
        post("NUL in a form", create, FORM, "amount=1&channel=wechat&category_id=1&message=%00", bad("invalid_message")),
        post("SQL in the amount", create, JSON, donation(|b| { b.insert("amount".into(), SQL.into()); }), bad("invalid_amount")),
        post("SQL in the channel", create, JSON, donation(|b| { b.insert("channel".into(), SQL.into()); }), bad("invalid_channel")),
        post("SQL in the category", create, JSON, donation(|b| { b.insert("category_id".into(), "1 OR 1=1".into()); }), bad("invalid_category")),
        post("SQL in a form category", create, FORM, format!("amount=1&channel=wechat&category_id={}", urlencode(SQL)), bad("invalid_category")),
        post("HTML in the channel", create, JSON, donation(|b| { b.insert("channel".into(), HTML.into()); }), bad("invalid_channel")),
        post("HTML in the amount", create, FORM, format!("amount={}&channel=wechat&category_id=1", urlencode(HTML)), bad("invalid_amount")),
        post("a negative amount", create, JSON, donation(|b| { b.insert("amount".into(), "-1.00".into()); }), bad("invalid_amount")),
        post("a negative form amount", create, FORM, "amount=-0.01&channel=alipay&category_id=1", bad("invalid_amount")),
        post("an overflowing amount", create, JSON, donation(|b| { b.insert("amount".into(), "99999999999999999999999".into()); }), bad("invalid_amount")),
        post("an amount as a number", create, JSON, donation(|b| { b.insert("amount".into(), 12.34.into()); }), bad("invalid_amount")),
        post("an amount with an exponent", create, JSON, donation(|b| { b.insert("amount".into(), "1e3".into()); }), bad("invalid_amount")),
        post("a zero amount", create, JSON, donation(|b| { b.insert("amount".into(), "0.00".into()); }), bad("invalid_amount")),
        post("a negative category", create, JSON, donation(|b| { b.insert("category_id".into(), (-1).into()); }), bad("invalid_category")),
        post("an overflowing category", create, JSON, r#"{"amount":"1","channel":"wechat","category_id":9223372036854775808}"#, bad("invalid_category")),
        post("an out-of-range number", create, JSON, r#"{"amount":"1","channel":"wechat","category_id":1e400}"#, MALFORMED),
        post("a fractional category", create, JSON, r#"{"amount":"1","channel":"wechat","category_id":1.5}"#, bad("invalid_category")),
        post("an unknown field", create, JSON, donation(|b| { b.insert("status".into(), "paid".into()); }), MALFORMED),
        post("anonymous as a string", create, JSON, donation(|b| { b.insert("anonymous".into(), "yes".into()); }), bad("invalid_anonymous")),
        post("text/plain", create, "text/plain", donation(|_| {}), Expect::Error(415, "unsupported_media_type")),
        post("XML", create, "application/xml", "<donation amount=\"1\"/>", Expect::Error(415, "unsupported_media_type")),
        post("multipart", create, "multipart/form-data; boundary=x", "--x\r\n\r\n1\r\n--x--", Expect::Error(415, "unsupported_media_type")),
        case("no content type", Method::POST, create, Expect::Error(415, "unsupported_media_type")),
        // Query parameters.
        get("a range that is HTML", format!("/api/rankings?range={}", urlencode(HTML)), bad("invalid_range")),
        get("a range with NUL", "/api/rankings?range=all%00", bad("invalid_range")),
        get("a negative page", "/api/rankings?page=-1", bad("invalid_page")),
        get("an overflowing page", "/api/rankings?page=99999999999999999999", bad("invalid_page")),
        get("a zero size", "/api/rankings?size=0", bad("invalid_size")),
        get("a size over the limit", "/api/rankings?size=101", bad("invalid_size")),
        get("SQL in the category", format!("/api/rankings?category_id={}", urlencode(SQL)), bad("invalid_category")),
        get("a negative category", "/api/rankings?category_id=-5", bad("invalid_category")),
        get("invalid UTF-8 in a query", "/api/rankings?range=%FF%FE", MALFORMED),
        get("a negative limit", "/api/donations/recent?limit=-1", bad("invalid_limit")),
        get("a limit with an exponent", "/api/donations/recent?limit=1e2", bad("invalid_limit")),
        get("an overflowing category", "/api/donations/recent?category_id=9223372036854775808", bad("invalid_category")),
        get("a negative wait", format!("/api/payments/{no}?wait=-1"), bad("invalid_wait")),
        get("a wait over 30", format!("/api/payments/{no}?wait=31"), bad("invalid_wait")),
        get("an overflowing wait", format!("/api/payments/{no}?wait=99999999999999999999"), bad("invalid_wait")),
        get("a wait with NUL", format!("/api/payments/{no}?wait=1%00"), bad("invalid_wait")),
        get("a wait in invalid UTF-8", format!("/api/payments/{no}?wait=%FF"), MALFORMED),
        // Paths.
        get("SQL as an order number", format!("/api/payments/{}", urlencode(SQL)), NOT_FOUND),
        get("HTML as an order number", format!("/pay/{}", urlencode(HTML)), NOT_FOUND),
        get("an order number too long", format!("/pay/{}", "a".repeat(33)), NOT_FOUND),
        get("an unknown order", "/api/payments/0000000000000000000000000000000x", NOT_FOUND),
        get("an unknown order's QR", "/api/payments/0000000000000000000000000000000x/qr.png", NOT_FOUND),
        get("another QR format", format!("/api/payments/{no}/qr.gif"), NOT_FOUND),
        get("invalid UTF-8 in a path", "/pay/%FF%FE%FD%FC%FB%FA", NOT_FOUND),
        get("NUL in a path", "/api/payments/abcdef%00", NOT_FOUND),
        get("a traversal", "/static/..%2F..%2FCargo.toml", NOT_FOUND),
        case("a POST to a page", Method::POST, "/", Expect::Error(405, "method_not_allowed")),
        case("a DELETE of an order", Method::DELETE, format!("/api/payments/{no}"), Expect::Error(405, "method_not_allowed")),
        post("paying an unknown order", "/sandbox/pay/0000000000000000000000000000000x", JSON, "{}", NOT_FOUND),
        post("paying with an oversized body", &format!("/sandbox/pay/{no}"), JSON, huge.clone(), Expect::Error(413, "payload_too_large")),
        // Callbacks: the providers' own failure formats.
        post("WeChat: empty", "/notify/wechat", JSON, "", Expect::WechatFail),
        post("WeChat: unsigned JSON", "/notify/wechat", JSON, r#"{"id":"EV-1","event_type":"TRANSACTION.SUCCESS","resource":{}}"#, Expect::WechatFail),
        post("WeChat: invalid UTF-8", "/notify/wechat", JSON, &b"{\"id\":\"\xff\"}"[..], Expect::WechatFail),
        post("WeChat: NUL bytes", "/notify/wechat", JSON, &b"\0\0\0\0"[..], Expect::WechatFail),
        post("WeChat: deeply nested", "/notify/wechat", JSON, "[".repeat(10_000), Expect::WechatFail),
        post("WeChat: a form", "/notify/wechat", FORM, "trade_status=TRADE_SUCCESS", Expect::WechatFail),
        post("WeChat: oversized", "/notify/wechat", JSON, huge.clone(), Expect::WechatFail),
        post("Alipay: empty", "/notify/alipay", FORM, "", Expect::AlipayFail),
        post("Alipay: unsigned", "/notify/alipay", FORM, format!("out_trade_no={no}&trade_status=TRADE_SUCCESS&total_amount=12.34&app_id=1"), Expect::AlipayFail),
        post("Alipay: a bad signature", "/notify/alipay", FORM, format!("out_trade_no={no}&trade_status=TRADE_SUCCESS&sign=AAAA&sign_type=RSA2"), Expect::AlipayFail),
        post("Alipay: SQL", "/notify/alipay", FORM, format!("out_trade_no={}&sign=x", urlencode(SQL)), Expect::AlipayFail),
        post("Alipay: invalid UTF-8", "/notify/alipay", FORM, &b"out_trade_no=\xff&sign=\xfe"[..], Expect::AlipayFail),
        post("Alipay: NUL", "/notify/alipay", FORM, "out_trade_no=%00&sign=%00", Expect::AlipayFail),
        post("Alipay: a field twice", "/notify/alipay", FORM, "sign=a&sign=b", Expect::AlipayFail),
        post("Alipay: JSON", "/notify/alipay", JSON, r#"{"trade_status":"TRADE_SUCCESS"}"#, Expect::AlipayFail),
        post("Alipay: oversized", "/notify/alipay", FORM, format!("sign={huge}"), Expect::AlipayFail),
        // The mounted emulators refuse in their own formats.
        post("the WeChat emulator, unsigned", "/sandbox/wechat/v3/pay/transactions/native", JSON, nested_json(), Expect::WechatApiError),
        post("the Alipay emulator, garbage", "/sandbox/alipay/gateway.do", FORM, &b"method=\xff&sign=%00"[..], Expect::AlipayGatewayError),
    ]
}

fn nested_json() -> String {
    "{\"a\":".repeat(1_000) + "1" + &"}".repeat(1_000)
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Rows per table of the app's database (every table, so new ones are covered too).
async fn row_counts(app: &TestApp) -> Vec<(String, i64)> {
    let (client, conn) = app.db.connect(NoTls).await.expect("connect");
    let conn = tokio::spawn(conn);
    let rows = client
        .query(
            "SELECT c.relname::text, (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM public.%I', c.relname), false, true, '')))[1]::text::bigint
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1",
            &[],
        )
        .await
        .expect("row counts");
    drop(client);
    let _ = conn.await;
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

fn check(case: &Case, answer: &Answer) -> Result<(), String> {
    let status = answer.status;
    let text = answer.text();
    let fail = |why: &str| Err(format!("{why}: {status} {text:.300}"));
    match case.expect {
        Expect::Error(expected, code) => {
            if status.as_u16() != expected {
                return fail(&format!("expected {expected}"));
            }
            if answer.header("content-type") != Some("application/json") {
                return fail("not JSON");
            }
            let json: serde_json::Value = serde_json::from_slice(&answer.body).map_err(|e| format!("{e}: {text}"))?;
            if json["error"]["code"] != code || !json["error"]["message"].is_string() {
                return fail(&format!("expected the contract's error with code {code}"));
            }
        }
        Expect::WechatFail => {
            let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
            if !(status.is_client_error() || status.is_server_error())
                || json["code"] != "FAIL"
                || !json["message"].is_string()
            {
                return fail("expected WeChat's {\"code\":\"FAIL\"}");
            }
        }
        Expect::AlipayFail => {
            if &answer.body[..] != b"fail" {
                return fail("expected Alipay's fail");
            }
        }
        Expect::WechatApiError => {
            let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
            if !status.is_client_error() || !json["code"].is_string() || !json["message"].is_string() {
                return fail("expected WeChat Pay's API error");
            }
        }
        Expect::AlipayGatewayError => {
            let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
            if !json["error_response"]["code"].is_string() || json["error_response"]["code"] == "10000" {
                return fail("expected Alipay's error_response");
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn hostile_requests_on_every_endpoint_get_a_4xx_and_write_nothing() {
    let app = spawn_app().await;
    let order = app.donate("12.34", "wechat").await;
    let no = order["order_no"].as_str().unwrap().to_string();
    let before = row_counts(&app).await;
    let tables: Vec<&str> = before.iter().map(|(t, _)| t.as_str()).collect();
    for table in [
        "payments",
        "donations",
        "payment_events",
        "callback_inbox",
        "refunds",
        "donation_totals",
    ] {
        assert!(tables.contains(&table), "{table} is not counted: {tables:?}");
    }

    let mut failures = Vec::new();
    let cases = cases(&no);
    for case in &cases {
        let headers: Vec<(&str, &str)> = case.content_type.map(|t| ("content-type", t)).into_iter().collect();
        let answer = app
            .request(case.method.clone(), &case.path, &headers, case.body.clone())
            .await;
        if let Err(why) = check(case, &answer) {
            failures.push(format!("{} ({} {:.80}): {why}", case.name, case.method, case.path));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    assert_eq!(row_counts(&app).await, before, "a hostile request changed the database");
    let status = app.get(&format!("/api/payments/{no}")).await.json();
    assert_eq!(status["status"], "pending", "the order was touched");
    app.shutdown().await;
}

#[tokio::test]
async fn injection_strings_in_free_text_are_stored_as_text() {
    let app = spawn_app().await;
    let name = "Robert'); DROP TABLE payments;--";
    let answer = app
        .post_json(
            "/api/donations",
            serde_json::json!({"amount": "1", "channel": "alipay", "category_id": 1,
                               "donor_name": name, "message": "<img src=x onerror=alert(1)>"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    let no = answer.json()["order_no"].as_str().unwrap().to_string();
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM donations WHERE order_no = '{no}' AND donor_name = 'Robert''); DROP TABLE payments;--' AND message = '<img src=x onerror=alert(1)>'"
        ))
        .await,
        1
    );
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 1);
    app.shutdown().await;
}

#[tokio::test]
async fn a_chunked_callback_over_the_limit_is_refused_in_the_providers_format() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    for (path, expect) in [("/notify/wechat", "\"code\":\"FAIL\""), ("/notify/alipay", "fail")] {
        let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        let head =
            format!("POST {path} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        let chunk = vec![b'a'; 8192];
        for _ in 0..10 {
            let sent = async {
                stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await?;
                stream.write_all(&chunk).await?;
                stream.write_all(b"\r\n").await
            };
            if sent.await.is_err() {
                break; // the server answered and closed early
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n").await;
        let mut raw = Vec::new();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read_to_end(&mut raw)).await;
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains(expect), "{path}: {text}");
    }
    assert_eq!(app.count("SELECT count(*) FROM callback_inbox").await, 0);
    app.shutdown().await;
}

/// Bytes that are not HTTP never reach the router: hyper's parser answers an empty `400` and
/// closes the connection (the contract's JSON cannot be given to what is not a request).
#[tokio::test]
async fn raw_invalid_bytes_in_the_request_line_or_headers_are_refused_with_400() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let requests: [&[u8]; 3] = [
        b"GET /pay/\xff\xfe\xfd\xfc\xfb\xfa HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        b"GET /api/rankings?range=\0 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        b"POST /api/donations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: -1\r\nConnection: close\r\n\r\n{}",
    ];
    for request in requests {
        let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut raw = Vec::new();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read_to_end(&mut raw)).await;
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    }
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 0);
    app.shutdown().await;
}
