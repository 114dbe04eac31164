//! zhifu behind a real nginx running the shipped site, `scripts/deploy/nginx-zhifu.conf`, with
//! only its ports and certificate paths changed (and its IPv6 listens dropped): the client
//! address nginx passes on is believed because nginx is in `server.trusted_proxies`, so rate
//! limits apply per real client; long-polls wake through it; big bodies are refused. Clients
//! come from distinct loopback addresses (127.0.0.2, 127.0.0.3). Needs Debian's `nginx`;
//! `.ci/run` installs it. Elsewhere these tests say they were skipped.

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::json;
use zhifu::pay::keys::PrivateKey;
use zhifu::pay::wechat::cert;

use crate::helpers::{Answer, TestApp, free_port, scratch_dir, spawn_app, spawn_app_with};

const SITE: &str = include_str!("../../scripts/deploy/nginx-zhifu.conf");

fn nginx_binary() -> Option<&'static str> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|path| Path::new(path).exists())
}

/// nginx, or `None` outside CI when it is not installed (the caller skips).
fn nginx_or_skip() -> Option<&'static str> {
    let found = nginx_binary();
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "nginx is required in CI (apt-get install nginx)"
        );
        eprintln!("SKIPPED: nginx is not installed (apt-get install nginx)");
    }
    found
}

/// `text` with `from` replaced, which must be there: a changed shipped config fails loudly
/// instead of being tested half-adapted.
fn replace(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "the shipped nginx site no longer contains {from:?}"
    );
    text.replace(from, to)
}

/// nginx in the foreground (`daemon off`, one process: `master_process off`) with everything
/// under its own folder, stopped when dropped.
struct Nginx {
    child: Child,
    dir: PathBuf,
    https: u16,
    http: u16,
    /// The certificate nginx presents (self-issued, made for this run).
    cert_der: Vec<u8>,
}

impl Nginx {
    fn start(binary: &str, upstream: SocketAddr) -> Nginx {
        let (https, http) = (free_port(), free_port());
        let dir = scratch_dir(&format!("nginx-{https}"));
        std::fs::create_dir_all(&dir).unwrap();
        let key = PrivateKey::generate();
        let not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
        let cert_der = cert::self_issued(&key, &[0x01, 0x02, 0x03], "pay.example.org (test)", not_before, 2);
        std::fs::write(dir.join("fullchain.pem"), cert::der_to_pem(&cert_der)).unwrap();
        std::fs::write(dir.join("privkey.pem"), key.to_pkcs8_pem()).unwrap();

        let mut site = replace(SITE, "server 127.0.0.1:8080;", &format!("server {upstream};"));
        site = replace(&site, "listen 80;", &format!("listen 127.0.0.1:{http};"));
        site = replace(&site, "listen 443 ", &format!("listen 127.0.0.1:{https} "));
        for name in ["fullchain.pem", "privkey.pem"] {
            let shipped = format!("/etc/letsencrypt/live/pay.example.org/{name}");
            site = replace(&site, &shipped, &dir.join(name).to_string_lossy());
        }
        site = site
            .lines()
            .filter(|line| !line.trim_start().starts_with("listen [::]"))
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(dir.join("zhifu.conf"), site).unwrap();
        let d = dir.display();
        let main = format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
             include {d}/zhifu.conf;\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), main).unwrap();
        let mut child = Command::new(binary)
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        let started = Instant::now();
        let addr = SocketAddr::from(([127, 0, 0, 1], https));
        while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                panic!("nginx exited ({status}): {log}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nginx did not listen in 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx {
            child,
            dir,
            https,
            http,
            cert_der,
        }
    }

    /// A client connecting from `source` (a loopback address) that trusts only this nginx's
    /// certificate.
    fn client(&self, source: [u8; 4]) -> Browser {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                der: self.cert_der.clone(),
                provider,
            }))
            .with_no_client_auth();
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_local_address(Some(IpAddr::from(source)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        Browser {
            client: Client::builder(TokioExecutor::new()).build(https),
            base: format!("https://127.0.0.1:{}", self.https),
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Accepts exactly the certificate the test made for nginx; signatures are still checked.
#[derive(Debug)]
struct Pinned {
    der: Vec<u8>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.der.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("not the test's nginx certificate".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// One client machine talking to nginx.
struct Browser {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: String,
}

impl Browser {
    async fn request(&self, method: Method, url: &str, headers: &[(&str, &str)], body: Bytes) -> Answer {
        let mut builder = Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let response = tokio::time::timeout(
            Duration::from_secs(30),
            self.client.request(builder.body(Full::new(body)).unwrap()),
        )
        .await
        .expect("an answer within 30 s")
        .expect("the request goes through nginx");
        let (parts, body) = response.into_parts();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.expect("body").to_bytes(),
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.request(Method::GET, &format!("{}{path}", self.base), &[], Bytes::new())
            .await
    }

    async fn create(&self, headers: &[(&str, &str)]) -> Answer {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        let body = json!({"amount": "1.00", "channel": "wechat", "category_id": 1}).to_string();
        self.request(
            Method::POST,
            &format!("{}/api/donations", self.base),
            &all,
            Bytes::from(body),
        )
        .await
    }
}

async fn limited_app(trusted_proxies: Vec<String>) -> TestApp {
    spawn_app_with(|s| {
        s.server.trusted_proxies = trusted_proxies;
        s.limits.create_per_minute = 6;
        s.limits.create_burst = 2;
    })
    .await
}

#[tokio::test]
async fn behind_nginx_each_real_client_has_its_own_rate_limit_and_spoofed_headers_change_nothing() {
    let Some(binary) = nginx_or_skip() else { return };
    let wall = Instant::now();
    // nginx (127.0.0.1) is a trusted proxy, as shipped.
    let app = limited_app(vec!["127.0.0.1/32".into()]).await;
    let nginx = Nginx::start(binary, app.addr);
    let (first, second) = (nginx.client([127, 0, 0, 2]), nginx.client([127, 0, 0, 3]));
    assert_eq!(first.create(&[]).await.status, StatusCode::CREATED);
    assert_eq!(first.create(&[]).await.status, StatusCode::CREATED);
    let limited = first.create(&[]).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.error_code(), "rate_limited");
    assert!(limited.header("retry-after").is_some());
    // Forged forwarding headers from the client: nginx overwrites X-Real-IP and appends the
    // real address to X-Forwarded-For, and zhifu takes the rightmost untrusted hop.
    let spoofed = first
        .create(&[("x-forwarded-for", "198.51.100.1"), ("x-real-ip", "198.51.100.2")])
        .await;
    assert_eq!(
        spoofed.status,
        StatusCode::TOO_MANY_REQUESTS,
        "spoofed headers dodged the limit"
    );
    // Another client behind the same nginx has its own allowance.
    assert_eq!(second.create(&[]).await.status, StatusCode::CREATED);
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 3);
    drop(nginx);
    app.shutdown().await;

    // The same through an nginx zhifu does not trust: every client looks like nginx itself
    // and they all share one allowance.
    let app = limited_app(vec![]).await;
    let nginx = Nginx::start(binary, app.addr);
    let (first, second) = (nginx.client([127, 0, 0, 2]), nginx.client([127, 0, 0, 3]));
    assert_eq!(first.create(&[]).await.status, StatusCode::CREATED);
    assert_eq!(first.create(&[]).await.status, StatusCode::CREATED);
    assert_eq!(
        second.create(&[]).await.status,
        StatusCode::TOO_MANY_REQUESTS,
        "an untrusted proxy's client address was believed"
    );
    drop(nginx);
    app.shutdown().await;
    eprintln!("nginx rate limits: {:.1} s", wall.elapsed().as_secs_f64());
}

#[tokio::test]
async fn through_nginx_a_long_poll_wakes_on_payment_and_big_bodies_are_refused() {
    let Some(binary) = nginx_or_skip() else { return };
    let wall = Instant::now();
    let app = spawn_app().await;
    let nginx = Nginx::start(binary, app.addr);
    let browser = nginx.client([127, 0, 0, 2]);

    let created = browser.create(&[]).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let request_id = created.header("x-request-id").unwrap_or_default().to_string();
    assert!(
        request_id.len() == 32 && request_id.bytes().all(|b| b.is_ascii_hexdigit()),
        "nginx's $request_id is kept: {request_id:?}"
    );
    let no = created.json()["order_no"].as_str().unwrap().to_string();

    // The long-poll parks behind nginx and wakes on the payment.
    let poll = {
        let path = format!("/api/payments/{no}?wait=25");
        async move {
            let answer = browser.get(&path).await;
            (Instant::now(), answer)
        }
    };
    let pay = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let answer = app.sandbox_pay(&no).await;
        (Instant::now(), answer)
    };
    let ((woke, polled), (paid, pay_answer)) = tokio::join!(poll, pay);
    assert!(pay_answer.status.is_success(), "{}", pay_answer.text());
    assert_eq!(polled.status, StatusCode::OK);
    assert_eq!(polled.json()["status"], "paid");
    assert!(
        woke.saturating_duration_since(paid) < Duration::from_secs(1),
        "the long-poll woke {:?} after the payment",
        woke.saturating_duration_since(paid)
    );

    // Bodies over client_max_body_size (64k, zhifu's server.max_body_bytes) stop at nginx.
    let browser = nginx.client([127, 0, 0, 3]);
    let before = app.count("SELECT count(*) FROM payments").await;
    let big = format!(
        "{{\"amount\":\"1.00\",\"channel\":\"wechat\",\"category_id\":1,\"message\":\"{}\"}}",
        "x".repeat(100_000)
    );
    let refused = browser
        .request(
            Method::POST,
            &format!("{}/api/donations", browser.base),
            &[("content-type", "application/json")],
            Bytes::from(big),
        )
        .await;
    assert_eq!(refused.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.count("SELECT count(*) FROM payments").await, before);

    // Metrics stay internal; plain HTTP is redirected to HTTPS.
    assert_eq!(browser.get("/metrics").await.status, StatusCode::FORBIDDEN);
    let plain = browser
        .request(
            Method::GET,
            &format!("http://127.0.0.1:{}/", nginx.http),
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(plain.status, StatusCode::MOVED_PERMANENTLY);
    assert!(plain.header("location").unwrap_or_default().starts_with("https://"));
    drop(nginx);
    app.shutdown().await;
    eprintln!("nginx long-poll and limits: {:.1} s", wall.elapsed().as_secs_f64());
}
