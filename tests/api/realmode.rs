//! Real mode (no sandbox): credentials loaded from key files as ops configure them, the
//! provider emulators served on their own ports standing in for WeChat Pay and Alipay, and the
//! callbacks coming back to `server.public_url`.

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use zhifu::pay::alipay::AlipayEmulator;
use zhifu::pay::outbound::HttpClient;
use zhifu::pay::wechat::WechatEmulator;

use crate::helpers::{TestApp, fresh_database, scratch_dir, spawn_app_on};

/// A real-mode app and the emulators it talks to.
pub struct RealMode {
    pub app: TestApp,
    pub wechat: Arc<WechatEmulator>,
    pub alipay: Arc<AlipayEmulator>,
}

/// The provider emulators on ports of their own, and the key files and settings that let a
/// real-mode server talk to them.
pub struct Providers {
    pub wechat: Arc<WechatEmulator>,
    pub alipay: Arc<AlipayEmulator>,
    pub wechat_base: String,
    pub alipay_gateway: String,
    pub mchid: String,
    pub appid: String,
    pub merchant_serial_no: String,
    pub merchant_key_path: String,
    /// A FAKE APIv3 key.
    pub api_v3_key: &'static str,
    pub platform_key_path: String,
    pub platform_key_id: String,
    pub app_id: String,
    pub seller_id: String,
    pub app_key_path: String,
    pub alipay_key_path: String,
}

/// Serves `handle` on a port of its own; returns the base URL.
pub async fn serve<F, Fut>(handle: F) -> String
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
            tokio::spawn(async move {
                let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let handle = handle.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
                        Ok::<_, Infallible>(handle(parts.method, path, parts.headers, body).await)
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

/// Generates the merchant's and the providers' keys, writes the merchant's key files under
/// `dir` and serves both emulators.
pub async fn start_providers(dir: &Path) -> Providers {
    std::fs::create_dir_all(dir).unwrap();
    let http = HttpClient::new(Duration::from_secs(5));
    let api_v3_key = "fake-apiv3-key-for-tests-0123456";

    let (wechat_credentials, mut wechat_config) = WechatEmulator::sandbox_pair();
    wechat_config.api_v3_key = api_v3_key.as_bytes().try_into().unwrap();
    let merchant_key_path = write(
        dir,
        "apiclient_key.pem",
        &wechat_credentials.merchant_key.to_pkcs8_pem(),
    );
    let platform_key_path = write(dir, "pub_key.pem", &wechat_config.platform_key.public_key_pem());
    let (mchid, appid, merchant_serial_no, platform_key_id) = (
        wechat_config.mchid.clone(),
        wechat_config.appid.clone(),
        wechat_config.merchant_serial_no.clone(),
        wechat_config.platform_serial.clone(),
    );
    let wechat = WechatEmulator::new(wechat_config, http.clone());

    let (alipay_credentials, alipay_config) = AlipayEmulator::sandbox_pair();
    let app_key_path = write(dir, "app_private_key.pem", &alipay_credentials.app_key.to_pkcs8_pem());
    // The bare base64 body, as the Alipay console hands it out.
    let alipay_public: String = alipay_config
        .alipay_key
        .public_key_pem()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let alipay_key_path = write(dir, "alipay_public_key.txt", &alipay_public);
    let (app_id, seller_id) = (alipay_config.app_id.clone(), alipay_config.seller_id.clone());
    let alipay = AlipayEmulator::new(alipay_config, http);

    let wechat_base = {
        let wechat = Arc::clone(&wechat);
        serve(move |m, p, h, b| {
            let wechat = Arc::clone(&wechat);
            async move { wechat.handle(&m, &p, &h, b).await }
        })
        .await
    };
    let alipay_base = {
        let alipay = Arc::clone(&alipay);
        serve(move |m, p, h, b| {
            let alipay = Arc::clone(&alipay);
            async move { alipay.handle(&m, &p, &h, b).await }
        })
        .await
    };
    Providers {
        wechat,
        alipay,
        wechat_base,
        alipay_gateway: format!("{alipay_base}/gateway.do"),
        mchid,
        appid,
        merchant_serial_no,
        merchant_key_path,
        api_v3_key,
        platform_key_path,
        platform_key_id,
        app_id,
        seller_id,
        app_key_path,
        alipay_key_path,
    }
}

impl Providers {
    /// Real mode against these emulators.
    pub fn apply(&self, s: &mut zhifu::config::Settings) {
        s.payments.sandbox = false;
        let w = &mut s.payments.wechat;
        w.api_base = self.wechat_base.clone();
        w.mchid = self.mchid.clone();
        w.appid = self.appid.clone();
        w.merchant_serial_no = self.merchant_serial_no.clone();
        w.merchant_private_key_path = self.merchant_key_path.clone().into();
        w.api_v3_key = serde_json::from_value(serde_json::json!(self.api_v3_key)).unwrap();
        w.platform_public_key_path = self.platform_key_path.clone().into();
        w.platform_public_key_id = self.platform_key_id.clone();
        let a = &mut s.payments.alipay;
        a.gateway = self.alipay_gateway.clone();
        a.app_id = self.app_id.clone();
        a.seller_id = self.seller_id.clone();
        a.app_private_key_path = self.app_key_path.clone().into();
        a.alipay_public_key_path = self.alipay_key_path.clone().into();
    }
}

pub async fn spawn_real_mode_app() -> RealMode {
    let dir = scratch_dir(&format!("keys-{}", rand_suffix()));
    let providers = start_providers(&dir).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let db = fresh_database().await;
    let app = spawn_app_on(db, |s| {
        s.server.listen = format!("127.0.0.1:{port}");
        s.server.public_url = format!("http://127.0.0.1:{port}");
        providers.apply(s);
    })
    .await;
    RealMode {
        app,
        wechat: providers.wechat,
        alipay: providers.alipay,
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
