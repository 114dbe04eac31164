//! Real mode (no sandbox): credentials loaded from key files as ops configure them, the
//! provider emulators served on their own ports standing in for WeChat Pay and Alipay, and the
//! callbacks coming back to `server.public_url`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use zhifu::config::Settings;
use zhifu::pay::alipay::AlipayEmulator;
use zhifu::pay::outbound::HttpClient;
use zhifu::pay::wechat::WechatEmulator;

use crate::helpers::{TestApp, fresh_database, scratch_dir, spawn_app_on};

/// A real-mode app and the emulators it talks to.
pub struct RealMode {
    pub app: TestApp,
    pub wechat: Arc<WechatEmulator>,
    pub alipay: Arc<AlipayEmulator>,
    /// Keeps the key files until the test ends.
    _providers: FakeProviders,
}

/// What a provider's gateway does with requests: lets them through, never answers, or drops
/// the connection (a gateway down). Checked per request.
#[derive(Debug, Default)]
pub struct Gate(AtomicU8);

impl Gate {
    pub const OPEN: u8 = 0;
    pub const HANG: u8 = 1;
    pub const DOWN: u8 = 2;

    pub fn set(&self, mode: u8) {
        self.0.store(mode, Ordering::SeqCst);
    }
}

/// Serves `handle` on a port of its own behind `gate`; returns the base URL.
pub async fn serve<F, Fut>(gate: Arc<Gate>, handle: F) -> String
where
    F: Fn(http::Method, String, http::HeaderMap, bytes::Bytes) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = http::Response<Full<bytes::Bytes>>> + Send,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handle = handle.clone();
            let gate = Arc::clone(&gate);
            tokio::spawn(async move {
                let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let handle = handle.clone();
                    let gate = Arc::clone(&gate);
                    async move {
                        match gate.0.load(Ordering::SeqCst) {
                            Gate::HANG => tokio::time::sleep(Duration::from_secs(3600)).await,
                            // An error from the service makes hyper drop the connection unanswered.
                            Gate::DOWN => return Err(std::io::Error::other("gateway down")),
                            _ => {}
                        }
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
                        Ok::<_, std::io::Error>(handle(parts.method, path, parts.headers, body).await)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    base
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// Both provider emulators on ports of their own, and the key files and settings a zhifu
/// instance needs to talk to them as to the real providers.
pub struct FakeProviders {
    pub wechat: Arc<WechatEmulator>,
    pub alipay: Arc<AlipayEmulator>,
    /// Holds the key files.
    pub dir: std::path::PathBuf,
    /// `payments.*` keys as `(section path, value)`, e.g. `("wechat.mchid", "1900000109")`.
    settings: Vec<(&'static str, String)>,
}

impl FakeProviders {
    /// Fresh keys, key files under a scratch folder, and both emulators served. Notifications
    /// go out once (`pay` answers whether that one attempt was acknowledged); callers that
    /// want retries make them.
    pub async fn start() -> FakeProviders {
        Self::start_gated(Arc::default()).await
    }

    /// [`start`](Self::start), both gateways behind `gate`.
    pub async fn start_gated(gate: Arc<Gate>) -> FakeProviders {
        let dir = scratch_dir(&format!("keys-{}", rand_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        let http = HttpClient::new(Duration::from_secs(5));

        let (wechat_credentials, mut wechat_config) = WechatEmulator::sandbox_pair();
        wechat_config.api_v3_key = *b"fake-apiv3-key-for-tests-0123456";
        wechat_config.notify_schedule = vec![Duration::ZERO];
        let merchant_key = write(
            &dir,
            "apiclient_key.pem",
            &wechat_credentials.merchant_key.to_pkcs8_pem(),
        );
        let platform_key = write(&dir, "pub_key.pem", &wechat_config.platform_key.public_key_pem());
        let mut settings = vec![
            ("wechat.mchid", wechat_config.mchid.clone()),
            ("wechat.appid", wechat_config.appid.clone()),
            ("wechat.merchant_serial_no", wechat_config.merchant_serial_no.clone()),
            ("wechat.merchant_private_key_path", merchant_key),
            ("wechat.api_v3_key", "fake-apiv3-key-for-tests-0123456".to_string()),
            ("wechat.platform_public_key_path", platform_key),
            ("wechat.platform_public_key_id", wechat_config.platform_serial.clone()),
        ];
        let wechat = WechatEmulator::new(wechat_config, http.clone());

        let (alipay_credentials, mut alipay_config) = AlipayEmulator::sandbox_pair();
        alipay_config.notify_delays = vec![Duration::ZERO];
        let app_key = write(&dir, "app_private_key.pem", &alipay_credentials.app_key.to_pkcs8_pem());
        // The bare base64 body, as the Alipay console hands it out.
        let alipay_public: String = alipay_config
            .alipay_key
            .public_key_pem()
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let alipay_key = write(&dir, "alipay_public_key.txt", &alipay_public);
        settings.extend([
            ("alipay.app_id", alipay_config.app_id.clone()),
            ("alipay.seller_id", alipay_config.seller_id.clone()),
            ("alipay.app_private_key_path", app_key),
            ("alipay.alipay_public_key_path", alipay_key),
        ]);
        let alipay = AlipayEmulator::new(alipay_config, http);

        let wechat_base = {
            let wechat = Arc::clone(&wechat);
            serve(Arc::clone(&gate), move |m, p, h, b| {
                let wechat = Arc::clone(&wechat);
                async move { wechat.handle(&m, &p, &h, b).await }
            })
            .await
        };
        let alipay_base = {
            let alipay = Arc::clone(&alipay);
            serve(Arc::clone(&gate), move |m, p, h, b| {
                let alipay = Arc::clone(&alipay);
                async move { alipay.handle(&m, &p, &h, b).await }
            })
            .await
        };
        settings.push(("wechat.api_base", wechat_base));
        settings.push(("alipay.gateway", format!("{alipay_base}/gateway.do")));
        FakeProviders {
            wechat,
            alipay,
            dir,
            settings,
        }
    }

    /// Real mode against these providers, in `settings`.
    pub fn apply(&self, s: &mut Settings) {
        s.payments.sandbox = false;
        for (key, value) in &self.settings {
            let value = value.clone();
            let (w, a) = (&mut s.payments.wechat, &mut s.payments.alipay);
            match *key {
                "wechat.mchid" => w.mchid = value,
                "wechat.appid" => w.appid = value,
                "wechat.merchant_serial_no" => w.merchant_serial_no = value,
                "wechat.merchant_private_key_path" => w.merchant_private_key_path = value.into(),
                "wechat.api_v3_key" => w.api_v3_key = serde_json::from_value(serde_json::json!(value)).unwrap(),
                "wechat.platform_public_key_path" => w.platform_public_key_path = value.into(),
                "wechat.platform_public_key_id" => w.platform_public_key_id = value,
                "wechat.api_base" => w.api_base = value,
                "alipay.app_id" => a.app_id = value,
                "alipay.seller_id" => a.seller_id = value,
                "alipay.app_private_key_path" => a.app_private_key_path = value.into(),
                "alipay.alipay_public_key_path" => a.alipay_public_key_path = value.into(),
                "alipay.gateway" => a.gateway = value,
                other => unreachable!("unhandled provider setting {other}"),
            }
        }
    }

    /// The value of one `payments.*` setting, e.g. `setting("wechat.api_v3_key")`.
    pub fn setting(&self, key: &str) -> &str {
        self.settings
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no provider setting {key}"))
    }

    /// The same as `ZHIFU__…` environment variables, for the binary.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![("ZHIFU__PAYMENTS__SANDBOX".to_string(), "false".to_string())];
        for (key, value) in &self.settings {
            let name = format!("ZHIFU__PAYMENTS__{}", key.replace('.', "__").to_uppercase());
            env.push((name, value.clone()));
        }
        env
    }
}

impl Drop for FakeProviders {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A real-mode app on a port chosen beforehand (its notify URLs name it), over a fresh database.
pub async fn spawn_real_mode_app_with(providers: &FakeProviders, customize: impl FnOnce(&mut Settings)) -> TestApp {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let db = fresh_database().await;
    spawn_app_on(db, |s| {
        s.server.listen = format!("127.0.0.1:{port}");
        s.server.public_url = format!("http://127.0.0.1:{port}");
        providers.apply(s);
        customize(s);
    })
    .await
}

pub async fn spawn_real_mode_app() -> RealMode {
    let providers = FakeProviders::start().await;
    let app = spawn_real_mode_app_with(&providers, |_| {}).await;
    RealMode {
        app,
        wechat: Arc::clone(&providers.wechat),
        alipay: Arc::clone(&providers.alipay),
        _providers: providers,
    }
}

pub fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0)
}

#[tokio::test]
async fn with_key_files_both_channels_pay_through_the_providers_callbacks() {
    let real = spawn_real_mode_app().await;
    for channel in ["wechat", "alipay"] {
        let order = real.app.donate("18.88", channel).await;
        let no = order["order_no"].as_str().unwrap().to_string();
        let delivered = match channel {
            "wechat" => real.wechat.pay(&no).await,
            _ => real.alipay.pay(&no).await,
        };
        delivered.unwrap_or_else(|e| panic!("{channel}: the callback was not acknowledged: {e}"));
        let status = real.app.get(&format!("/api/payments/{no}")).await.json();
        assert_eq!(status["status"], "paid", "{channel}");
    }
}

#[tokio::test]
async fn without_sandbox_mode_the_sandbox_routes_do_not_exist() {
    let real = spawn_real_mode_app().await;
    let created = real.app.donate("2", "wechat").await;
    let no = created["order_no"].as_str().unwrap();
    assert_eq!(real.app.sandbox_pay(no).await.status, StatusCode::NOT_FOUND);
    let page = real.app.get(created["pay_url"].as_str().unwrap()).await.text();
    assert!(page.contains("id=\"payment-status\""));
    assert!(
        !page.contains("simulate-payment"),
        "the sandbox button shows outside sandbox mode"
    );
    let emulator = real
        .app
        .post_json("/sandbox/alipay/gateway.do", serde_json::json!({}))
        .await;
    assert_eq!(emulator.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_missing_merchant_key_stops_start_up_with_the_key_named() {
    let db = fresh_database().await;
    let mut settings = crate::helpers::test_settings();
    settings.payments.sandbox = false;
    settings.payments.alipay.enabled = false;
    settings.payments.wechat.mchid = "1900000109".into();
    settings.payments.wechat.merchant_private_key_path = "/nonexistent/apiclient_key.pem".into();
    let config = crate::helpers::test_config(settings);
    let store = zhifu::store::Store::connect(db, 2, Duration::from_secs(2), None).unwrap();
    let err = zhifu::app::Application::build(config, store).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("payments.wechat."), "{text}");
}
