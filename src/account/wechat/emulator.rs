//! The sandbox's WeChat sign-in server (`/sandbox/wxlogin/…`): `jscode2session` and the web
//! OAuth exchange with made-up appids and secrets, an approval page, and codes minted for
//! made-up users. Compiled with the `sandbox` feature only.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use http::{Method, StatusCode};

use super::*;
use crate::http::extract;
use crate::http::respond;

impl LoginClient {
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
}

/// The sandbox's WeChat sign-in server. Tests and the sandbox page mint codes for made-up
/// users; the exchange endpoints check appid, secret and code exactly as WeChat does.
#[derive(Debug)]
pub struct LoginEmulator {
    pub(super) mini: App,
    pub(super) web: App,
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
            // A known path with another method: 405 like every other route.
            (_, "sns/jscode2session" | "sns/oauth2/access_token" | "connect/qrconnect") => {
                Err(AppError::MethodNotAllowed { allow: "GET, HEAD" })
            }
            (_, "connect/approve" | "code") => Err(AppError::MethodNotAllowed { allow: "POST" }),
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
