//! WeChat sign-in: a code from the mini program (`wx.login()`) or from the web OAuth
//! redirect is exchanged for the user's openid (and unionid, when the app is bound to an open
//! platform account) at `api.weixin.qq.com`:
//! - mini program: `GET /sns/jscode2session?appid&secret&js_code&grant_type=authorization_code`
//!   → `{"openid","session_key","unionid"}`;
//! - web: the browser is sent to the authorize URL (`/connect/qrconnect` for a website,
//!   `/connect/oauth2/authorize` inside WeChat) and comes back with `?code&state`; then
//!   `GET /sns/oauth2/access_token?appid&secret&code&grant_type=authorization_code`
//!   → `{"access_token","expires_in","refresh_token","openid","scope","unionid"}`.
//!
//! Failures answer `{"errcode":40029,"errmsg":"invalid code"}` (40163: code already used).
//! The AppSecret travels in the query string as WeChat requires, so URLs are never logged.
//! [`LoginEmulator`] speaks the same protocol for the sandbox; codes are single-use and
//! expire after five minutes, as WeChat's do.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use bytes::Bytes;
use http::request::Parts;
use http::{Method, Request, StatusCode};
use serde::Deserialize;

use crate::config::WechatLogin as LoginSettings;
use crate::error::AppError;
use crate::http::extract;
use crate::http::respond::{self, Response};
use crate::pay::outbound::HttpClient;
use crate::payments::Sandbox;

/// Which flow a code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    MiniProgram,
    Web,
}

/// Who WeChat says signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub openid: String,
    pub unionid: Option<String>,
}

/// Why a code was not exchanged.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("WeChat sign-in is not configured for this flow")]
    NotConfigured,
    #[error("the code is invalid, used or expired (WeChat errcode {0})")]
    BadCode(i64),
    #[error("WeChat answered errcode {0}: {1}")]
    Wechat(i64, String),
    #[error("WeChat could not be reached: {0}")]
    Transport(String),
}

impl From<LoginError> for AppError {
    fn from(e: LoginError) -> AppError {
        match e {
            LoginError::NotConfigured => AppError::invalid("wechat_login_unavailable", e.to_string()),
            LoginError::BadCode(_) => AppError::invalid(
                "invalid_code",
                "the WeChat code is invalid, used or expired; sign in again",
            ),
            LoginError::Wechat(..) | LoginError::Transport(_) => AppError::Provider(e.to_string()),
        }
    }
}

#[derive(Debug, Clone)]
struct App {
    appid: String,
    secret: String,
}

/// The client of WeChat's sign-in API.
#[derive(Debug, Clone)]
pub struct LoginClient {
    api_base: String,
    authorize_url: String,
    scope: String,
    mini: Option<App>,
    web: Option<App>,
    http: HttpClient,
}

#[derive(Deserialize)]
struct CodeAnswer {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
    openid: Option<String>,
    unionid: Option<String>,
}

impl LoginClient {
    /// The client for the configured apps; `None` when neither flow is configured.
    pub fn from_settings(settings: &LoginSettings, http: HttpClient) -> Option<LoginClient> {
        let app = |appid: &str, secret: &crate::config::Secret| {
            (!appid.is_empty()).then(|| App {
                appid: appid.to_string(),
                secret: secret.expose().to_string(),
            })
        };
        let mini = app(&settings.mini_appid, &settings.mini_secret);
        let web = app(&settings.web_appid, &settings.web_secret);
        (mini.is_some() || web.is_some()).then(|| LoginClient {
            api_base: settings.api_base.trim_end_matches('/').to_string(),
            authorize_url: settings.authorize_url.clone(),
            scope: settings.web_scope.clone(),
            mini,
            web,
            http,
        })
    }

    /// The client of the sandbox emulator mounted at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn sandbox(emulator: &LoginEmulator, base: &str, http: HttpClient) -> LoginClient {
        LoginClient {
            api_base: format!("{base}/sandbox/wxlogin"),
            authorize_url: "/sandbox/wxlogin/connect/qrconnect".to_string(),
            scope: "snsapi_login".to_string(),
            mini: Some(emulator.mini.clone()),
            web: Some(emulator.web.clone()),
            http,
        }
    }

    /// True when `flow` is configured.
    pub fn supports(&self, flow: Flow) -> bool {
        match flow {
            Flow::MiniProgram => self.mini.is_some(),
            Flow::Web => self.web.is_some(),
        }
    }

    /// Where to send a browser to approve a web sign-in that returns to `redirect_uri`.
    pub fn authorize_url(&self, redirect_uri: &str, state: &str) -> Result<String, LoginError> {
        let web = self.web.as_ref().ok_or(LoginError::NotConfigured)?;
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("appid", &web.appid)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("response_type", "code")
            .append_pair("scope", &self.scope)
            .append_pair("state", state)
            .finish();
        Ok(format!("{}?{query}#wechat_redirect", self.authorize_url))
    }

    /// Exchanges `code` for the user's identity.
    pub async fn exchange(&self, flow: Flow, code: &str) -> Result<Identity, LoginError> {
        let (app, path, code_name) = match flow {
            Flow::MiniProgram => (self.mini.as_ref(), "/sns/jscode2session", "js_code"),
            Flow::Web => (self.web.as_ref(), "/sns/oauth2/access_token", "code"),
        };
        let app = app.ok_or(LoginError::NotConfigured)?;
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("appid", &app.appid)
            .append_pair("secret", &app.secret)
            .append_pair(code_name, code)
            .append_pair("grant_type", "authorization_code")
            .finish();
        let request = Request::get(format!("{}{path}?{query}", self.api_base))
            .body(Bytes::new())
            .map_err(|e| LoginError::Transport(e.to_string()))?;
        let response = self
            .http
            .send(request)
            .await
            .map_err(|e| LoginError::Transport(e.to_string()))?;
        if !response.status.is_success() {
            return Err(LoginError::Transport(format!("HTTP {}", response.status)));
        }
        let answer: CodeAnswer = serde_json::from_slice(&response.body)
            .map_err(|e| LoginError::Transport(format!("unreadable answer: {e}")))?;
        match (answer.errcode, answer.openid) {
            (0, Some(openid)) if !openid.is_empty() && openid.len() <= 128 => Ok(Identity {
                openid,
                unionid: answer.unionid.filter(|u| !u.is_empty() && u.len() <= 128),
            }),
            (40029 | 40163 | 40125 | 41008, _) => Err(LoginError::BadCode(answer.errcode)),
            (code, _) => Err(LoginError::Wechat(code, answer.errmsg)),
        }
    }
}

/// The sandbox's WeChat sign-in server. Tests and the sandbox page mint codes for made-up
/// users; the exchange endpoints check appid, secret and code exactly as WeChat does.
#[derive(Debug)]
pub struct LoginEmulator {
    mini: App,
    web: App,
    /// code → (appid, identity, minted at)
    codes: Mutex<HashMap<String, (String, Identity, Instant)>>,
}

const CODE_TTL: Duration = Duration::from_secs(300);

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    let _ = SystemRandom::new().fill(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

impl Default for LoginEmulator {
    fn default() -> Self {
        LoginEmulator::new()
    }
}

impl LoginEmulator {
    /// An emulator with fresh made-up appids and secrets.
    pub fn new() -> LoginEmulator {
        LoginEmulator {
            mini: App {
                appid: format!("wx{}", random_hex(8)),
                secret: random_hex(16),
            },
            web: App {
                appid: format!("wx{}", random_hex(8)),
                secret: random_hex(16),
            },
            codes: Mutex::new(HashMap::new()),
        }
    }

    /// A single-use code for `identity` signing in through `flow`.
    pub fn mint(&self, flow: Flow, identity: Identity) -> String {
        let appid = match flow {
            Flow::MiniProgram => &self.mini.appid,
            Flow::Web => &self.web.appid,
        };
        let code = random_hex(16);
        let mut codes = self.codes.lock().unwrap_or_else(|e| e.into_inner());
        codes.retain(|_, (_, _, at)| at.elapsed() < CODE_TTL);
        codes.insert(code.clone(), (appid.clone(), identity, Instant::now()));
        code
    }

    fn redeem(&self, query: &HashMap<String, String>, code_name: &str, app: &App) -> serde_json::Value {
        let get = |k: &str| query.get(k).map(String::as_str).unwrap_or("");
        if get("appid") != app.appid || get("secret") != app.secret {
            return serde_json::json!({"errcode": 40125, "errmsg": "invalid appsecret"});
        }
        if get("grant_type") != "authorization_code" {
            return serde_json::json!({"errcode": 40002, "errmsg": "invalid grant_type"});
        }
        let mut codes = self.codes.lock().unwrap_or_else(|e| e.into_inner());
        match codes.remove(get(code_name)) {
            Some((appid, identity, at)) if appid == app.appid && at.elapsed() < CODE_TTL => {
                let mut answer = serde_json::json!({"openid": identity.openid});
                if let Some(unionid) = identity.unionid {
                    answer["unionid"] = unionid.into();
                }
                answer
            }
            _ => serde_json::json!({"errcode": 40029, "errmsg": "invalid code"}),
        }
    }

    /// Serves `/sandbox/wxlogin/{path}`.
    pub fn handle(&self, path: &str, parts: &Parts, body: &[u8]) -> Result<Response, AppError> {
        let query: HashMap<String, String> = form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
        let json = |value: serde_json::Value| Ok(respond::json(StatusCode::OK, value.to_string()));
        match (&parts.method, path) {
            (&Method::GET, "sns/jscode2session") => json(self.redeem(&query, "js_code", &self.mini)),
            (&Method::GET, "sns/oauth2/access_token") => {
                let mut answer = self.redeem(&query, "code", &self.web);
                if answer.get("openid").is_some() {
                    answer["access_token"] = random_hex(16).into();
                    answer["expires_in"] = 7200.into();
                    answer["refresh_token"] = random_hex(16).into();
                    answer["scope"] = "snsapi_login".into();
                }
                json(answer)
            }
            // The page WeChat shows to approve a web sign-in: here, a form naming a test user.
            (&Method::GET, "connect/qrconnect") => {
                let get = |k: &str| query.get(k).cloned().unwrap_or_default();
                if get("appid") != self.web.appid {
                    return Err(AppError::invalid("invalid_appid", "unknown appid"));
                }
                Ok(respond::html(
                    StatusCode::OK,
                    approve_page(&get("redirect_uri"), &get("state")),
                ))
            }
            // The approval: mints a code and sends the browser back.
            (&Method::POST, "connect/approve") => {
                let form: HashMap<String, String> = extract::pairs(body)?.into_iter().collect();
                let get = |k: &str| form.get(k).cloned().unwrap_or_default();
                let openid = get("openid");
                let redirect = get("redirect_uri");
                if openid.is_empty() || openid.len() > 64 || !redirect.starts_with('/') || redirect.starts_with("//") {
                    return Err(AppError::invalid(
                        "invalid_request",
                        "openid and a local redirect_uri are required",
                    ));
                }
                let code = self.mint(Flow::Web, Identity { openid, unionid: None });
                let state = get("state");
                let back = format!(
                    "{redirect}{}{}",
                    if redirect.contains('?') { "&" } else { "?" },
                    form_urlencoded::Serializer::new(String::new())
                        .append_pair("code", &code)
                        .append_pair("state", &state)
                        .finish()
                );
                Ok(crate::http::respond::see_other(&back))
            }
            // What `wx.login()` gives a mini program: a code for `{"openid": …}`.
            (&Method::POST, "code") => {
                #[derive(Deserialize)]
                struct Mint {
                    openid: String,
                    unionid: Option<String>,
                    #[serde(default)]
                    web: bool,
                }
                let mint: Mint = extract::json(body)?;
                if mint.openid.is_empty() || mint.openid.len() > 64 {
                    return Err(AppError::invalid("invalid_openid", "openid must be 1..=64 characters"));
                }
                let flow = if mint.web { Flow::Web } else { Flow::MiniProgram };
                let code = self.mint(
                    flow,
                    Identity {
                        openid: mint.openid,
                        unionid: mint.unionid,
                    },
                );
                json(serde_json::json!({ "code": code }))
            }
            _ => Err(AppError::NotFound),
        }
    }
}

fn approve_page(redirect_uri: &str, state: &str) -> String {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    format!(
        r#"<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>模拟微信登录 · Sandbox WeChat sign-in</title></head>
<body><main style="max-width:28rem;margin:3rem auto;font-family:sans-serif">
<h1>模拟微信登录</h1><p>Sandbox: this page stands in for WeChat's approval screen.</p>
<form method="post" action="/sandbox/wxlogin/connect/approve">
<label>openid <input name="openid" id="openid" value="sandbox-user-1" maxlength="64" required></label>
<input type="hidden" name="redirect_uri" value="{}"><input type="hidden" name="state" value="{}">
<button type="submit" id="approve">同意 · Approve</button></form></main></body></html>"#,
        escape(redirect_uri),
        escape(state)
    )
}

/// Serves the sign-in emulator of the sandbox.
pub async fn sandbox(sandbox: &Sandbox, path: &str, parts: &Parts, body: &[u8]) -> Result<Response, AppError> {
    sandbox.wechat_login.handle(path, parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: Method, uri: &str) -> Parts {
        Request::builder()
            .method(method)
            .uri(uri)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    fn answer(response: Response) -> serde_json::Value {
        let body = futures_util::FutureExt::now_or_never(http_body_util::BodyExt::collect(response.into_body()))
            .unwrap()
            .unwrap()
            .to_bytes();
        serde_json::from_slice(&body).unwrap()
    }

    #[test]
    fn a_code_is_redeemed_once_with_the_right_secret_only() {
        let emulator = LoginEmulator::new();
        let identity = Identity {
            openid: "o-test-1".into(),
            unionid: Some("u-1".into()),
        };
        let code = emulator.mint(Flow::MiniProgram, identity);
        let (appid, secret) = (&emulator.mini.appid, &emulator.mini.secret);
        let wrong =
            format!("/sns/jscode2session?appid={appid}&secret=nope&js_code={code}&grant_type=authorization_code");
        let wrong = answer(
            emulator
                .handle("sns/jscode2session", &parts(Method::GET, &wrong), b"")
                .unwrap(),
        );
        assert_eq!(wrong["errcode"], 40125);
        let uri =
            format!("/sns/jscode2session?appid={appid}&secret={secret}&js_code={code}&grant_type=authorization_code");
        let first = answer(
            emulator
                .handle("sns/jscode2session", &parts(Method::GET, &uri), b"")
                .unwrap(),
        );
        assert_eq!(first["openid"], "o-test-1");
        assert_eq!(first["unionid"], "u-1");
        let again = answer(
            emulator
                .handle("sns/jscode2session", &parts(Method::GET, &uri), b"")
                .unwrap(),
        );
        assert_eq!(again["errcode"], 40029, "a code is single-use");
    }

    #[test]
    fn a_mini_program_code_is_not_valid_for_the_web_app() {
        let emulator = LoginEmulator::new();
        let code = emulator.mint(
            Flow::MiniProgram,
            Identity {
                openid: "o-2".into(),
                unionid: None,
            },
        );
        let (appid, secret) = (&emulator.web.appid, &emulator.web.secret);
        let uri =
            format!("/sns/oauth2/access_token?appid={appid}&secret={secret}&code={code}&grant_type=authorization_code");
        let got = answer(
            emulator
                .handle("sns/oauth2/access_token", &parts(Method::GET, &uri), b"")
                .unwrap(),
        );
        assert_eq!(got["errcode"], 40029);
    }
}
