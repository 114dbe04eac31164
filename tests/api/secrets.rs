//! No key material in the logs: the real binary in real mode (key files, the APIv3 key in its
//! config file) at log level `debug` with the access log on, through full pay flows on both
//! channels, a forged callback and a shutdown; everything it prints is searched for every
//! secret the test knows. Also: a private key file others can read is warned about at start.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::helpers::{fresh_database, scratch_dir};
use crate::realmode::{FakeProviders, rand_suffix};

/// Every secret the test knows: whole values, and each line of every PEM body (a key leaked in
/// pieces is still leaked). Add to this list when the server learns a new secret.
fn known_secrets(providers: &FakeProviders) -> Vec<String> {
    let mut secrets = vec![providers.setting("wechat.api_v3_key").to_string()];
    for path in [
        providers.setting("wechat.merchant_private_key_path"),
        providers.setting("alipay.app_private_key_path"),
    ] {
        let pem = std::fs::read_to_string(path).expect("key file");
        let body: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        secrets.push(body.concat());
        secrets.extend(body.iter().filter(|l| l.len() >= 16).map(|l| l.to_string()));
    }
    secrets
}

fn config_yaml(providers: &FakeProviders, port: u16, database_url: &str) -> String {
    let p = providers;
    format!(
        "server:
  listen: 127.0.0.1:{port}
  public_url: http://127.0.0.1:{port}
database:
  url: \"{database_url}\"
  pool_size: 4
payments:
  sandbox: false
  wechat:
    api_base: {}
    mchid: \"{}\"
    appid: {}
    merchant_serial_no: {}
    merchant_private_key_path: {}
    api_v3_key: {}
    platform_public_key_path: {}
    platform_public_key_id: {}
  alipay:
    gateway: {}
    app_id: \"{}\"
    seller_id: \"{}\"
    app_private_key_path: {}
    alipay_public_key_path: {}
log:
  level: debug
  access: true
",
        p.setting("wechat.api_base"),
        p.setting("wechat.mchid"),
        p.setting("wechat.appid"),
        p.setting("wechat.merchant_serial_no"),
        p.setting("wechat.merchant_private_key_path"),
        p.setting("wechat.api_v3_key"),
        p.setting("wechat.platform_public_key_path"),
        p.setting("wechat.platform_public_key_id"),
        p.setting("alipay.gateway"),
        p.setting("alipay.app_id"),
        p.setting("alipay.seller_id"),
        p.setting("alipay.app_private_key_path"),
        p.setting("alipay.alipay_public_key_path"),
    )
}

fn chmod(path: impl AsRef<Path>, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The binary, its output going to `log`.
fn start(config: &Path, log: &Path) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zhifu"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("ZHIFU") || k == "RUST_LOG") {
        cmd.env_remove(key);
    }
    let out = std::fs::File::create(log).unwrap();
    cmd.arg("--config")
        .arg(config)
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .expect("the binary starts")
}

struct Http {
    base: String,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

impl Http {
    async fn send(&self, method: Method, path: &str, json: Option<serde_json::Value>) -> Option<(StatusCode, Bytes)> {
        let mut request = Request::builder().method(method).uri(format!("{}{path}", self.base));
        let body = match json {
            Some(json) => {
                request = request.header("content-type", "application/json");
                Bytes::from(json.to_string())
            }
            None => Bytes::new(),
        };
        let sent = tokio::time::timeout(
            Duration::from_secs(20),
            self.client.request(request.body(Full::new(body)).unwrap()),
        );
        let response = sent.await.ok()?.ok()?;
        let status = response.status();
        Some((status, response.into_body().collect().await.ok()?.to_bytes()))
    }

    async fn json(&self, method: Method, path: &str, json: Option<serde_json::Value>) -> serde_json::Value {
        let (status, body) = self.send(method, path, json).await.expect("an answer");
        assert!(
            status.is_success(),
            "{path}: {status} {}",
            String::from_utf8_lossy(&body)
        );
        serde_json::from_slice(&body).unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_logs_of_full_pay_flows_at_debug_level_hold_no_key_material() {
    let dir = scratch_dir(&format!("secrets-{}", rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let providers = FakeProviders::start().await;
    // The merchant key readable by others (the warning's case); the rest as they should be.
    chmod(providers.setting("wechat.merchant_private_key_path"), 0o644);
    chmod(providers.setting("alipay.app_private_key_path"), 0o600);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        config_yaml(&providers, port, &crate::helpers::database_url(&fresh_database().await)),
    )
    .unwrap();
    chmod(&config, 0o600);
    let log: PathBuf = dir.join("zhifu.log");
    let mut child = start(&config, &log);

    let http = Http {
        base: format!("http://127.0.0.1:{port}"),
        client: Client::builder(TokioExecutor::new()).build_http(),
    };
    let mut ready = false;
    for _ in 0..300 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "zhifu exited: {status}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        if http
            .send(Method::GET, "/readyz", None)
            .await
            .is_some_and(|(s, _)| s == StatusCode::OK)
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "not ready after 15 s");

    // Both channels: create, pay at the provider (which sends its signed callback), status.
    for channel in ["wechat", "alipay"] {
        let order = http
            .json(
                Method::POST,
                "/api/donations",
                Some(serde_json::json!({"amount": "8.88", "channel": channel, "category_id": 1, "donor_name": "日志"})),
            )
            .await;
        let no = order["order_no"].as_str().expect("order_no").to_string();
        let paid = match channel {
            "wechat" => providers.wechat.pay(&no).await,
            _ => providers.alipay.pay(&no).await,
        };
        paid.unwrap_or_else(|e| panic!("{channel}: {e}"));
        let status = http
            .json(Method::GET, &format!("/api/payments/{no}?wait=5"), None)
            .await;
        assert_eq!(status["status"], "paid", "{channel}");
        let page = http
            .send(Method::GET, &format!("/pay/{no}"), None)
            .await
            .expect("pay page");
        assert_eq!(page.0, StatusCode::OK);
    }
    // A forged callback on each channel is refused (and logged as such).
    let forged = http
        .send(Method::POST, "/notify/wechat", Some(serde_json::json!({"id": "x"})))
        .await;
    assert_eq!(forged.map(|(s, _)| s), Some(StatusCode::UNAUTHORIZED));

    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let exited = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exited.success(), "{exited}");
    let logs = std::fs::read_to_string(&log).unwrap();

    // The logs are the ones asked for: debug lines, the access log and the callbacks.
    assert!(logs.contains("DEBUG"), "no debug lines:\n{logs}");
    assert!(logs.contains("zhifu::access"), "no access log:\n{logs}");
    assert!(logs.contains("payment callback applied"), "{logs}");
    assert!(logs.contains("callback refused"), "{logs}");
    let secrets = known_secrets(&providers);
    assert!(secrets.len() > 20, "the PEM bodies were not read");
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "the logs hold a secret ({} chars)",
            secret.len()
        );
    }

    // Exactly one start-up warning: the merchant key, with its mode and the fix.
    let warnings: Vec<&str> = logs.lines().filter(|l| l.contains("chmod 600")).collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains("WARN"), "{}", warnings[0]);
    assert!(warnings[0].contains("0644"), "{}", warnings[0]);
    assert!(
        warnings[0].contains(&format!(
            "chmod 600 {}",
            providers.setting("wechat.merchant_private_key_path")
        )),
        "{}",
        warnings[0]
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Collects formatted log lines in memory.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Refunds go through the engine (no HTTP endpoint yet), so this one runs the app in-process:
/// on a current-thread runtime every task of the app runs on this thread, where a debug-level
/// subscriber writing to memory is the default.
#[tokio::test]
async fn the_logs_of_payments_and_refunds_through_the_engine_hold_no_key_material() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    // A callsite first hit by another test while this subscriber was being set may have
    // cached "never": recompute every callsite's interest now that it is set.
    tracing::callsite::rebuild_interest_cache();

    let providers = FakeProviders::start().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = crate::helpers::spawn_app_on(fresh_database().await, |s| {
        s.server.listen = format!("127.0.0.1:{port}");
        s.server.public_url = format!("http://127.0.0.1:{port}");
        s.log.access = true;
        providers.apply(s);
    })
    .await;
    for channel in ["wechat", "alipay"] {
        let no = app.donate("20.00", channel).await["order_no"]
            .as_str()
            .unwrap()
            .to_string();
        match channel {
            "wechat" => providers.wechat.pay(&no).await,
            _ => providers.alipay.pay(&no).await,
        }
        .unwrap_or_else(|e| panic!("{channel}: {e}"));
        app.state
            .engine
            .request_refund(&no, 500, "secrets test", "test")
            .await
            .unwrap_or_else(|e| panic!("{channel}: {e}"));
        let settled = crate::helpers::eventually(Duration::from_secs(5), || async {
            app.get(&format!("/api/payments/{no}")).await.json()["refunded_fen"] == 500
        })
        .await;
        assert!(settled, "{channel}: the refund never settled");
    }
    app.shutdown().await;

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("DEBUG"), "no debug lines:\n{text}");
    assert!(text.contains("zhifu::access"), "no access log:\n{text}");
    assert!(text.contains("payment callback applied"), "{text}");
    for secret in known_secrets(&providers) {
        assert!(
            !text.contains(secret.as_str()),
            "the logs hold a secret ({} chars)",
            secret.len()
        );
    }
}
