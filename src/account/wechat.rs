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
//! `LoginEmulator` (in `emulator`, with the `sandbox` feature) speaks the same protocol for
//! the sandbox; codes are single-use and expire after five minutes, as WeChat's do.

use bytes::Bytes;
use http::Request;
use http::request::Parts;
use serde::Deserialize;

use crate::config::WechatLogin as LoginSettings;
use crate::error::AppError;
use crate::http::respond::Response;
use crate::pay::outbound::HttpClient;
use crate::payments::Sandbox;

#[cfg(feature = "sandbox")]
mod emulator;
#[cfg(feature = "sandbox")]
pub use emulator::{LoginEmulator, sandbox};

/// Without the sandbox there is no sign-in emulator to serve.
#[cfg(not(feature = "sandbox"))]
pub async fn sandbox(sandbox: &Sandbox, _path: &str, _parts: &Parts, _body: &[u8]) -> Result<Response, AppError> {
    match *sandbox {}
}

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

#[cfg(all(test, feature = "sandbox"))]
mod tests {
    use http::Method;

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
