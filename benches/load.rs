//! The load benchmark's helper processes (`scripts/bench.sh` runs them; not a divan bench):
//!
//! - `load hello ADDR [multi_thread|per_core]`: the stack's floor — a minimal hyper server with
//!   the server's listener, HTTP/1.1 settings and allocator (mimalloc), answering every
//!   request with `/healthz`'s body — or, with `HELLO_MIRROR=FILE` (lines `PATH?QUERY`, a tab,
//!   a file of body bytes, a tab, the content type), a listed request with the same bytes the
//!   server answered it with (found by a scan of the list: the floor of each read serves its
//!   bytes);
//!   a request with `wait=N` in its query parks N seconds first (the request dropped before it
//!   parks: hyper's own cost of a parked long-poll). `HELLO_HALF_CLOSE=1`,
//!   `HELLO_WRITEV=0|1` and `HELLO_MAX_BUF=N` (8192 at least) try hyper's builder options.
//! - `load rsa SECONDS`: RSA-2048 PKCS#1 v1.5 SHA-256 signatures one thread makes per second.
//! - `load refcreate PGHOST CONNECTIONS SECONDS`: the create-donation reference — a minimal
//!   program on one thread doing what a create does and nothing else: one RSA-2048 signature
//!   of a WeChat request and the create statement, prepared, over CONNECTIONS connections;
//!   prints creates per second, the mean and p99 latency in ms.
//! - `load provider DIR`: a fake WeChat Pay + Alipay (the built-in emulators) on a port of their
//!   own, with fresh keys written to DIR and the server's settings to `DIR/server.env`; it also
//!   drives the scenarios that need the provider's keys, on request:
//!   `POST /bench/callbacks?server=URL&orders=N&concurrency=C` (signed WeChat payment callbacks)
//!   and `POST /bench/longpoll?server=URL&orders=N&per_order=K&pid=PID` (parked long-polls, their
//!   RSS, and a burst of payments that must wake them all), and
//!   `POST /bench/park?server=URL&pid=PID&n=N&path=P[&orders=K][&token=T]` (N requests for P
//!   parked on their own connections, `{order}` in P standing for K fresh orders in turn: the
//!   server's RSS before and while they are parked; see `load/park.rs`).

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use zhifu::pay::alipay::AlipayEmulator;
use zhifu::pay::keys::PrivateKey;
use zhifu::pay::outbound::HttpClient;
use zhifu::pay::wechat::WechatEmulator;

#[path = "load/park.rs"]
mod park;

/// The server's allocator: the floor must not differ from the server by its allocator (each
/// parked connection's buffers cost what the allocator makes of them).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

static HEALTHZ: &[u8] = b"{\"status\":\"ok\"}";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
    match arg(0) {
        "hello" => hello(arg(1).parse().expect("hello ADDR"), arg(2)),
        "rsa" => rsa(arg(1).parse().unwrap_or(2.0)),
        "refcreate" => current_thread().block_on(refcreate(
            arg(1),
            arg(2).parse().unwrap_or(32),
            arg(3).parse().unwrap_or(5.0),
        )),
        "provider" => current_thread().block_on(provider(PathBuf::from(arg(1)))),
        // `cargo bench` runs every bench target with `--bench`: nothing to do here.
        _ => eprintln!(
            "usage: load hello ADDR [multi_thread|per_core] | rsa SECONDS | refcreate PGHOST CONNECTIONS SECONDS | provider DIR"
        ),
    }
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

// ---------------------------------------------------------------------------------------------
// hello

/// A request's path and query, and the body and content type to answer it with.
type Mirrored = (String, Bytes, http::HeaderValue);

/// The answers `HELLO_MIRROR` lists; empty without it.
fn mirror() -> &'static [Mirrored] {
    static MIRROR: std::sync::OnceLock<Vec<Mirrored>> = std::sync::OnceLock::new();
    MIRROR.get_or_init(|| {
        let Some(list) = std::env::var("HELLO_MIRROR").ok().filter(|list| !list.is_empty()) else {
            return Vec::new();
        };
        let list = std::fs::read_to_string(&list).unwrap_or_else(|e| panic!("HELLO_MIRROR {list}: {e}"));
        list.lines()
            .filter(|line| !line.is_empty())
            .map(|line| {
                let mut fields = line.split('\t');
                let (Some(target), Some(file), Some(content_type)) = (fields.next(), fields.next(), fields.next())
                else {
                    panic!("HELLO_MIRROR: not PATH<tab>FILE<tab>TYPE: {line}");
                };
                let body = std::fs::read(file).unwrap_or_else(|e| panic!("HELLO_MIRROR {file}: {e}"));
                let content_type = http::HeaderValue::from_str(content_type).expect("a content type");
                (target.to_string(), Bytes::from(body), content_type)
            })
            .collect()
    })
}

fn hello(addr: SocketAddr, shape: &str) {
    mirror();
    if shape == "per_core" {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                std::thread::spawn(move || {
                    current_thread().block_on(async move {
                        hello_serve(zhifu::http::server::bind(addr).expect("bind")).await;
                    })
                })
            })
            .collect();
        for handle in handles {
            let _ = handle.join();
        }
    } else {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move { hello_serve(zhifu::http::server::bind(addr).expect("bind")).await });
    }
}

fn env_number(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

async fn hello_serve(listener: TcpListener) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(75))
        .keep_alive(true)
        .max_buf_size(env_number("HELLO_MAX_BUF").unwrap_or(64 * 1024));
    if env_number("HELLO_HALF_CLOSE") == Some(1) {
        builder.half_close(true);
    }
    if let Some(on) = env_number("HELLO_WRITEV") {
        builder.writev(on == 1);
    }
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = builder.serve_connection(TokioIo::new(stream), service_fn(hello_answer));
        tokio::spawn(conn);
    }
}

/// `/healthz`'s body (or the mirrored answer), after `wait` seconds when the query has one.
/// The request is dropped here, before the answer's future exists.
fn hello_answer(req: Request<Incoming>) -> impl Future<Output = Result<Response<Full<Bytes>>, Infallible>> {
    let target = req.uri().path_and_query().map_or("", |t| t.as_str());
    let (body, content_type) = match mirror().iter().find(|(t, _, _)| t == target) {
        Some((_, body, content_type)) => (body.clone(), content_type.clone()),
        None => (
            Bytes::from_static(HEALTHZ),
            http::HeaderValue::from_static("application/json"),
        ),
    };
    let wait = req
        .uri()
        .query()
        .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "wait"))
        .and_then(|(_, v)| v.parse::<u64>().ok())
        .map(Duration::from_secs);
    drop(req);
    async move {
        if let Some(wait) = wait {
            tokio::time::sleep(wait).await;
        }
        let mut response = Response::new(Full::new(body));
        response.headers_mut().insert(http::header::CONTENT_TYPE, content_type);
        Ok::<_, Infallible>(response)
    }
}

// ---------------------------------------------------------------------------------------------
// rsa

fn rsa(seconds: f64) {
    let key = PrivateKey::generate();
    let message = b"POST\n/v3/pay/transactions/native\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n{}\n";
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed().as_secs_f64() < seconds {
        std::hint::black_box(key.sign(std::hint::black_box(message)));
        n += 1;
    }
    println!("{:.0}", n as f64 / started.elapsed().as_secs_f64());
}

// ---------------------------------------------------------------------------------------------
// refcreate

/// The statement the engine builds for a donation (`src/pay/purpose.rs` `CREATE_PREFIX` and
/// `src/donate/purpose.rs` `INSERT_DONATION`), with the same parameters.
const REF_CREATE: &str = "WITH p AS (
        INSERT INTO payments (order_no, purpose, channel, amount_fen, code_url, description, expires_at, next_check_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (order_no) DO NOTHING
        RETURNING order_no),
     e AS (
        INSERT INTO payment_events (order_no, kind, to_status, amount_fen, source)
        SELECT order_no, 'created', 'pending', $4, 'api' FROM p
        RETURNING order_no)
     INSERT INTO donations (order_no, category_id, donor_name, message, anonymous, user_id)
     SELECT order_no, $9, $10, $11, $12, $13 FROM p";

async fn refcreate(host: &str, connections: usize, seconds: f64) {
    let key = Arc::new(PrivateKey::generate());
    let config = format!("host={host} user=postgres dbname=zhifu");
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::with_capacity(connections);
    let started = Instant::now();
    for c in 0..connections {
        let (client, connection) = tokio_postgres::connect(&config, tokio_postgres::NoTls)
            .await
            .expect("connect to the bench database");
        tokio::spawn(connection);
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let statement = client.prepare(REF_CREATE).await.expect("prepare");
            let mut latencies = Vec::new();
            let mut n = 0u64;
            while Instant::now() < deadline {
                let began = Instant::now();
                let order_no = format!("ref{c}_{n}_{}", started.elapsed().as_nanos());
                // What the WeChat create signs: method, path, time, nonce and the JSON body.
                let message = format!(
                    "POST\n/v3/pay/transactions/native\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\
                     {{\"appid\":\"wxd678efh567hg6787\",\"mchid\":\"1230000109\",\"description\":\"捐赠\",\
                     \"out_trade_no\":\"{order_no}\",\"notify_url\":\"https://example.com/notify/wechat\",\
                     \"amount\":{{\"total\":1234,\"currency\":\"CNY\"}}}}\n"
                );
                std::hint::black_box(key.sign(message.as_bytes()));
                let expires = time::OffsetDateTime::now_utc() + Duration::from_secs(900);
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 13] = [
                    &order_no,
                    &"donation",
                    &"wechat",
                    &1234i64,
                    &"weixin://wxpay/bizpayurl?pr=reference",
                    &"捐赠 · 综合",
                    &expires,
                    &expires,
                    &1i64,
                    &"bench",
                    &"",
                    &false,
                    &None::<i64>,
                ];
                client.execute(&statement, &params).await.expect("the create statement");
                latencies.push(began.elapsed());
                n += 1;
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("a reference task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let mean = latencies.iter().map(Duration::as_secs_f64).sum::<f64>() / latencies.len().max(1) as f64;
    let p99 = latencies
        .get(latencies.len() * 99 / 100)
        .map_or(0.0, Duration::as_secs_f64);
    println!(
        "{:.0} {:.3} {:.3}",
        latencies.len() as f64 / elapsed,
        mean * 1000.0,
        p99 * 1000.0
    );
}

// ---------------------------------------------------------------------------------------------
// provider

struct Provider {
    wechat: Arc<WechatEmulator>,
    alipay: Arc<AlipayEmulator>,
}

async fn provider(dir: PathBuf) {
    std::fs::create_dir_all(&dir).expect("the key folder");
    let http = HttpClient::new(Duration::from_secs(10));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("bound"));

    let (wechat_credentials, wechat_config) = WechatEmulator::sandbox_pair();
    let (alipay_credentials, alipay_config) = AlipayEmulator::sandbox_pair();
    let write = |name: &str, text: &str| -> String {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("a key file");
        path.to_string_lossy().into_owned()
    };
    let alipay_public: String = alipay_config
        .alipay_key
        .public_key_pem()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let settings = [
        ("PAYMENTS__SANDBOX", "false".to_string()),
        ("PAYMENTS__WECHAT__API_BASE", base.clone()),
        ("PAYMENTS__WECHAT__MCHID", wechat_config.mchid.clone()),
        ("PAYMENTS__WECHAT__APPID", wechat_config.appid.clone()),
        (
            "PAYMENTS__WECHAT__MERCHANT_SERIAL_NO",
            wechat_config.merchant_serial_no.clone(),
        ),
        (
            "PAYMENTS__WECHAT__MERCHANT_PRIVATE_KEY_PATH",
            write("apiclient_key.pem", &wechat_credentials.merchant_key.to_pkcs8_pem()),
        ),
        (
            "PAYMENTS__WECHAT__API_V3_KEY",
            String::from_utf8_lossy(&wechat_config.api_v3_key).into_owned(),
        ),
        (
            "PAYMENTS__WECHAT__PLATFORM_PUBLIC_KEY_PATH",
            write("pub_key.pem", &wechat_config.platform_key.public_key_pem()),
        ),
        (
            "PAYMENTS__WECHAT__PLATFORM_PUBLIC_KEY_ID",
            wechat_config.platform_serial.clone(),
        ),
        ("PAYMENTS__ALIPAY__GATEWAY", format!("{base}/gateway.do")),
        ("PAYMENTS__ALIPAY__APP_ID", alipay_config.app_id.clone()),
        ("PAYMENTS__ALIPAY__SELLER_ID", alipay_config.seller_id.clone()),
        (
            "PAYMENTS__ALIPAY__APP_PRIVATE_KEY_PATH",
            write("app_private_key.pem", &alipay_credentials.app_key.to_pkcs8_pem()),
        ),
        (
            "PAYMENTS__ALIPAY__ALIPAY_PUBLIC_KEY_PATH",
            write("alipay_public_key.txt", &alipay_public),
        ),
    ];
    let env: String = settings
        .iter()
        .map(|(key, value)| format!("export ZHIFU__{key}='{value}'\n"))
        .collect();
    // Written last and renamed: the script waits for this file.
    write("server.env.tmp", &env);
    std::fs::rename(dir.join("server.env.tmp"), dir.join("server.env")).expect("rename");

    let provider = Arc::new(Provider {
        wechat: WechatEmulator::new(wechat_config, http.clone()),
        alipay: AlipayEmulator::new(alipay_config, http),
    });
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let provider = Arc::clone(&provider);
        let service = service_fn(move |req: Request<Incoming>| {
            let provider = Arc::clone(&provider);
            async move { Ok::<_, Infallible>(provider_handle(provider, req).await) }
        });
        tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
    }
}

async fn provider_handle(provider: Arc<Provider>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let query = parts.uri.query().unwrap_or_default().to_string();
    let text = |status: StatusCode, text: String| {
        let mut response = Response::new(Full::new(Bytes::from(text)));
        *response.status_mut() = status;
        response
    };
    if parts.uri.path() == "/bench/callbacks" {
        match callbacks(&provider, &query).await {
            Ok(out) => text(StatusCode::OK, out),
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e),
        }
    } else if parts.uri.path() == "/bench/longpoll" {
        match longpoll(&provider, &query).await {
            Ok(out) => text(StatusCode::OK, out),
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e),
        }
    } else if parts.uri.path() == "/bench/park" {
        match park::park(&query).await {
            Ok(out) => text(StatusCode::OK, out),
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e),
        }
    } else if path.starts_with("/gateway.do") {
        provider.alipay.handle(&parts.method, &path, &parts.headers, body).await
    } else {
        provider.wechat.handle(&parts.method, &path, &parts.headers, body).await
    }
}

fn param<T: std::str::FromStr>(query: &str, name: &str, default: Option<T>) -> Result<T, String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.parse().ok())
        .or(default)
        .ok_or_else(|| format!("missing or bad {name}"))
}

/// One keep-alive HTTP/1.1 connection to the server.
struct Conn(hyper::client::conn::http1::SendRequest<Full<Bytes>>);

impl Conn {
    async fn open(addr: &str) -> Result<Conn, String> {
        let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        Ok(Conn(send))
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<(u16, Bytes), String> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, "127.0.0.1")
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        req.headers_mut().extend(headers.clone());
        self.0.ready().await.map_err(|e| e.to_string())?;
        let response = self.0.send_request(req).await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    }
}

fn host_of(server: &str) -> String {
    server.trim_start_matches("http://").trim_end_matches('/').to_string()
}

/// Creates `n` WeChat donations through the server, `concurrency` at a time; their order numbers.
async fn create_orders(server: &str, n: usize, concurrency: usize) -> Result<Vec<String>, String> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.min(n).max(1) {
        let (next, addr) = (Arc::clone(&next), host_of(server));
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&addr).await?;
            let mut headers = HeaderMap::new();
            headers.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            let mut orders = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let i = orders.len();
                let body = format!(
                    r#"{{"amount":"{}.00","channel":"wechat","category_id":1,"donor_name":"donor{}"}}"#,
                    1 + i % 50,
                    i % 40
                );
                let (status, answer) = conn.send(Method::POST, "/api/donations", &headers, body.into()).await?;
                if status != 201 {
                    // A busy machine times out now and then: note it and go on.
                    eprintln!("create answered {status}: {}", String::from_utf8_lossy(&answer));
                    continue;
                }
                let value: serde_json::Value = serde_json::from_slice(&answer).map_err(|e| e.to_string())?;
                orders.push(value["order_no"].as_str().unwrap_or_default().to_string());
            }
            Ok::<_, String>(orders)
        }));
    }
    let mut all = Vec::with_capacity(n);
    for task in tasks {
        all.extend(task.await.map_err(|e| e.to_string())??);
    }
    Ok(all)
}

/// Marks every order paid at the emulator and signs its TRANSACTION.SUCCESS notification.
fn signed_notifications(provider: &Provider, orders: &[String]) -> Result<Vec<(HeaderMap, Bytes)>, String> {
    orders
        .iter()
        .map(|no| {
            provider.wechat.mark_paid(no, false)?;
            let (headers, body) = provider.wechat.payment_notification(no)?;
            Ok((headers, Bytes::from(body)))
        })
        .collect()
}

/// Posts every notification to `/notify/wechat`, `concurrency` connections at a time; for each
/// (in order of completion) its index, latency and when its acknowledgement arrived.
async fn fire(
    server: &str,
    notes: Vec<(HeaderMap, Bytes)>,
    concurrency: usize,
) -> Result<Vec<(usize, Duration, Instant)>, String> {
    let notes = Arc::new(notes);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (notes, next, addr) = (Arc::clone(&notes), Arc::clone(&next), host_of(server));
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&addr).await?;
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((headers, body)) = notes.get(i) else {
                    return Ok::<_, String>(latencies);
                };
                let started = Instant::now();
                let (status, answer) = conn.send(Method::POST, "/notify/wechat", headers, body.clone()).await?;
                if status != 200 && status != 204 {
                    // Not acknowledged: a provider would retry; left out of the figures.
                    eprintln!("callback answered {status}: {}", String::from_utf8_lossy(&answer));
                    continue;
                }
                latencies.push((i, started.elapsed(), Instant::now()));
            }
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.map_err(|e| e.to_string())??);
    }
    Ok(all)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

/// `POST /bench/callbacks`: creates `orders` pending orders (untimed), signs their payment
/// notifications (untimed), then times posting them all. Answers
/// `req/s p50_ms p99_ms acknowledged requested`.
async fn callbacks(provider: &Provider, query: &str) -> Result<String, String> {
    let server: String = param(query, "server", None)?;
    let n: usize = param(query, "orders", Some(2000))?;
    let concurrency: usize = param(query, "concurrency", Some(32))?;
    let orders = create_orders(&server, n, 32).await?;
    let notes = signed_notifications(provider, &orders)?;
    let started = Instant::now();
    let mut latencies: Vec<Duration> = fire(&server, notes, concurrency)
        .await?
        .into_iter()
        .map(|(_, latency, _)| latency)
        .collect();
    let elapsed = started.elapsed();
    latencies.sort();
    Ok(format!(
        "{:.0} {:.3} {:.3} {} {}\n",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.len(),
        n
    ))
}

fn rss_kb(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS".to_string())
}

/// One long-poll on its own connection: writes the request, then waits for the answer and
/// returns when it came and whether it said paid.
async fn poll_once(addr: String, order_no: String, sent: Arc<AtomicUsize>) -> Result<(Instant, bool), String> {
    let mut stream = TcpStream::connect(&addr).await.map_err(|e| e.to_string())?;
    let request = format!("GET /api/payments/{order_no}?wait=30 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    sent.fetch_add(1, Ordering::Relaxed);
    let mut buf = Vec::with_capacity(1024);
    loop {
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before an answer".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if buf.len() >= head_end + 4 + length {
            let body = &buf[head_end + 4..head_end + 4 + length];
            let paid = body.windows(15).any(|w| w == b"\"status\":\"paid\"");
            return Ok((Instant::now(), paid));
        }
    }
}

/// `POST /bench/longpoll`: creates `orders` orders, parks `per_order` long-polls on each (one
/// connection apiece), reads the server's RSS before and while they are parked, then pays
/// every order in one burst of callbacks and waits for every poller's answer. Answers
/// `pollers rss_before_kb rss_parked_kb burst_ms wake_all_ms all_paid max_lag_ms`.
async fn longpoll(provider: &Provider, query: &str) -> Result<String, String> {
    let server: String = param(query, "server", None)?;
    let n: usize = param(query, "orders", Some(1000))?;
    let per_order: usize = param(query, "per_order", Some(10))?;
    let pid: u32 = param(query, "pid", None)?;
    let concurrency: usize = param(query, "concurrency", Some(64))?;
    let orders = create_orders(&server, n, 32).await?;
    let notes = signed_notifications(provider, &orders)?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = rss_kb(pid)?;

    let sent = Arc::new(AtomicUsize::new(0));
    let mut pollers = Vec::with_capacity(n * per_order);
    for (i, order_no) in orders.iter().enumerate() {
        for _ in 0..per_order {
            let poll = poll_once(host_of(&server), order_no.clone(), Arc::clone(&sent));
            pollers.push((i, tokio::spawn(poll)));
        }
        // Let connects make progress instead of queueing 10,000 at once.
        tokio::task::yield_now().await;
    }
    let total = pollers.len();
    let deadline = Instant::now() + Duration::from_secs(20);
    while sent.load(Ordering::Relaxed) < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Every request written: give the server a moment to read and park them all.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let rss_parked = rss_kb(pid)?;

    let burst_started = Instant::now();
    let mut acked = vec![burst_started; n];
    for (i, _, at) in fire(&server, notes, concurrency).await? {
        acked[i] = at;
    }
    let burst = burst_started.elapsed();
    let mut last = burst_started;
    let mut paid = 0;
    // How long after its payment was acknowledged each poller still waited (0 when it was
    // answered before the acknowledgement reached the provider).
    let mut lag = Duration::ZERO;
    for (i, poller) in pollers {
        let (at, was_paid) = poller.await.map_err(|e| e.to_string())??;
        last = last.max(at);
        lag = lag.max(at.saturating_duration_since(acked[i]));
        paid += usize::from(was_paid);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{total} {rss_before} {rss_parked} {:.0} {:.0} {} {:.1}",
        burst.as_secs_f64() * 1000.0,
        (last - burst_started).as_secs_f64() * 1000.0,
        paid == total,
        lag.as_secs_f64() * 1000.0
    );
    Ok(out)
}
