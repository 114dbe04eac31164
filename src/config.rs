//! Settings: `config.yaml` (or `--config PATH`), then `ZHIFU__SECTION__KEY` environment
//! overrides, then validation that reports every problem at once with the key and the fix.
//! Every key of the public contract lives here with its default; secrets are `Secret`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::pay::money;

pub mod community;
pub mod crowdfunding;
mod shape;

pub use community::Community;

/// A string that never shows up in logs, `Debug` output or error messages.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself: call only where it is used, never to print it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when no secret was configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Serialized only as a placeholder (the settings' shape is read from their serialized
/// defaults; a secret never leaves this way).
impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(if self.0.is_empty() { "" } else { "[redacted]" })
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "[redacted]" })
    }
}

/// All settings, as read from the file and the environment.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub server: Server,
    pub database: Database,
    pub payments: Payments,
    pub rankings: Rankings,
    pub accounts: Accounts,
    pub limits: Limits,
    pub media: Media,
    pub mail: Mail,
    pub mall: Mall,
    pub log: Log,
    pub backup: Backup,
    pub crowdfunding: crowdfunding::Crowdfunding,
    pub community: Community,
}

/// `server.*`: the listener, its limits and timeouts.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Server {
    /// `host:port` to listen on.
    pub listen: String,
    /// The externally visible base URL, used to build notify URLs.
    pub public_url: String,
    /// CIDRs (or single addresses) whose `X-Forwarded-For` / `X-Real-IP` are believed.
    pub trusted_proxies: Vec<String>,
    /// Open connections at most; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// Seconds a client may take to send a request head; also the keep-alive idle timeout.
    pub header_read_timeout_secs: u64,
    /// Seconds a client may take to send a request body.
    pub body_read_timeout_secs: u64,
    /// Largest accepted request body in bytes; larger ones answer 413.
    pub max_body_bytes: usize,
    /// Seconds in-flight requests get to finish after SIGTERM.
    pub shutdown_grace_secs: u64,
    /// Worker threads of the runtime; 0 = one per core.
    pub workers: usize,
    /// `multi_thread` (one work-stealing runtime) or `per_core` (one single-threaded runtime
    /// and `SO_REUSEPORT` listener per worker).
    pub runtime: String,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            listen: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            trusted_proxies: vec!["127.0.0.1/32".into(), "::1/128".into()],
            max_connections: 10_000,
            header_read_timeout_secs: 75,
            body_read_timeout_secs: 15,
            max_body_bytes: 64 * 1024,
            shutdown_grace_secs: 10,
            workers: 0,
            runtime: "per_core".into(),
        }
    }
}

/// `database.*`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Database {
    /// A PostgreSQL URL; empty = run the embedded private cluster.
    pub url: Secret,
    pub embedded: Embedded,
    /// Connections in the pool.
    pub pool_size: usize,
    /// Seconds to wait for a connection (or a new one to be made) before answering 503.
    pub connect_timeout_secs: u64,
    /// PEM certificates of the CA that signed the database server's certificate, trusted
    /// besides the public roots when `database.url` says `sslmode=require`.
    pub tls_ca_file: PathBuf,
}

impl Default for Database {
    fn default() -> Self {
        Database {
            url: Secret::default(),
            embedded: Embedded::default(),
            pool_size: 16,
            connect_timeout_secs: 2,
            tls_ca_file: PathBuf::new(),
        }
    }
}

/// `database.embedded.*`: the private cluster used when `database.url` is empty.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Embedded {
    /// Where the cluster lives; relative paths are relative to the config file's folder.
    pub data_dir: PathBuf,
    /// Folder of `initdb` and `postgres`; empty = search PATH, `pg_config`, `/usr/lib/postgresql`.
    pub bin_dir: PathBuf,
}

impl Default for Embedded {
    fn default() -> Self {
        Embedded {
            data_dir: PathBuf::from("data/pg"),
            bin_dir: PathBuf::new(),
        }
    }
}

/// `payments.*`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Payments {
    /// Serve the built-in provider emulator instead of the real gateways.
    pub sandbox: bool,
    /// How long an unpaid order stays payable, in seconds.
    pub order_ttl_secs: u64,
    /// Smallest donation, a yuan string.
    pub min_amount: String,
    /// Largest donation, a yuan string.
    pub max_amount: String,
    /// What to do with a payment that lands on a closed order: `keep` or `refund`.
    pub late_payment: String,
    /// Seconds a provider API call may take before it counts as failed.
    pub request_timeout_secs: u64,
    /// Seconds between passes of the reconcile job (missed callbacks, expiry, refunds).
    pub reconcile_interval_secs: u64,
    /// Days the raw bodies of provider callbacks are kept; then they are emptied (the
    /// callback's row — what arrived, when, what it did — stays).
    pub callback_retention_days: u32,
    pub wechat: Wechat,
    pub alipay: Alipay,
}

impl Default for Payments {
    fn default() -> Self {
        Payments {
            sandbox: false,
            order_ttl_secs: 900,
            min_amount: "0.01".into(),
            max_amount: "50000.00".into(),
            late_payment: "keep".into(),
            request_timeout_secs: 10,
            reconcile_interval_secs: 5,
            callback_retention_days: 180,
            wechat: Wechat::default(),
            alipay: Alipay::default(),
        }
    }
}

/// `payments.wechat.*`: WeChat Pay API v3, Native pay, public-key mode.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Wechat {
    pub enabled: bool,
    pub api_base: String,
    pub mchid: String,
    pub appid: String,
    pub merchant_serial_no: String,
    pub merchant_private_key_path: PathBuf,
    pub api_v3_key: Secret,
    pub platform_public_key_path: PathBuf,
    pub platform_public_key_id: String,
}

impl Default for Wechat {
    fn default() -> Self {
        Wechat {
            enabled: true,
            api_base: "https://api.mch.weixin.qq.com".into(),
            mchid: String::new(),
            appid: String::new(),
            merchant_serial_no: String::new(),
            merchant_private_key_path: PathBuf::new(),
            api_v3_key: Secret::default(),
            platform_public_key_path: PathBuf::new(),
            platform_public_key_id: String::new(),
        }
    }
}

impl Wechat {
    fn has_credentials(&self) -> bool {
        !self.mchid.is_empty()
            || !self.merchant_serial_no.is_empty()
            || !self.api_v3_key.is_empty()
            || !self.merchant_private_key_path.as_os_str().is_empty()
            || !self.platform_public_key_path.as_os_str().is_empty()
    }
}

/// `payments.alipay.*`: Alipay face-to-face QR (precreate), RSA2 public-key mode.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Alipay {
    pub enabled: bool,
    pub gateway: String,
    pub app_id: String,
    pub app_private_key_path: PathBuf,
    pub alipay_public_key_path: PathBuf,
    pub seller_id: String,
}

impl Default for Alipay {
    fn default() -> Self {
        Alipay {
            enabled: true,
            gateway: "https://openapi.alipay.com/gateway.do".into(),
            app_id: String::new(),
            app_private_key_path: PathBuf::new(),
            alipay_public_key_path: PathBuf::new(),
            seller_id: String::new(),
        }
    }
}

impl Alipay {
    fn has_credentials(&self) -> bool {
        !self.app_id.is_empty()
            || !self.app_private_key_path.as_os_str().is_empty()
            || !self.alipay_public_key_path.as_os_str().is_empty()
    }
}

/// `rankings.*`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rankings {
    /// IANA zone for day/week/month boundaries; checked against the database at start.
    pub timezone: String,
}

impl Default for Rankings {
    fn default() -> Self {
        Rankings {
            timezone: "Asia/Shanghai".into(),
        }
    }
}

/// `accounts.*`: sessions, password lockout and WeChat sign-in.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Accounts {
    /// How long a session lasts after sign-in.
    pub session_ttl_secs: u64,
    /// Failed password attempts on one account before it is locked.
    pub lockout_after: u32,
    /// How long a locked account stays locked.
    pub lockout_secs: u64,
    pub wechat: WechatLogin,
}

impl Default for Accounts {
    fn default() -> Self {
        Accounts {
            session_ttl_secs: 7 * 24 * 3600,
            lockout_after: 5,
            lockout_secs: 900,
            wechat: WechatLogin::default(),
        }
    }
}

/// `accounts.wechat.*`: WeChat sign-in. The mini program exchanges `wx.login()` codes through
/// `jscode2session`; the web flow (official account or website QR) through OAuth. A flow is
/// on when its appid is set; in sandbox mode with neither set, the built-in emulator serves both.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WechatLogin {
    /// `https://api.weixin.qq.com` unless testing.
    pub api_base: String,
    /// Where browsers are sent to approve a web sign-in.
    pub authorize_url: String,
    pub mini_appid: String,
    pub mini_secret: Secret,
    pub web_appid: String,
    pub web_secret: Secret,
    /// `snsapi_base` (silent, in WeChat's browser) or `snsapi_login` (website QR).
    pub web_scope: String,
}

impl Default for WechatLogin {
    fn default() -> Self {
        WechatLogin {
            api_base: "https://api.weixin.qq.com".into(),
            authorize_url: "https://open.weixin.qq.com/connect/qrconnect".into(),
            mini_appid: String::new(),
            mini_secret: Secret::default(),
            web_appid: String::new(),
            web_secret: Secret::default(),
            web_scope: "snsapi_login".into(),
        }
    }
}

/// `limits.*`: per-client-IP rate limits; a rate of 0 turns that limit off.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Orders a client may create per minute, on average.
    pub create_per_minute: u32,
    /// Orders a client may create at once before the average applies.
    pub create_burst: u32,
    /// Status reads (polls) a client may make per minute, on average.
    pub status_per_minute: u32,
    /// Status reads a client may make at once.
    pub status_burst: u32,
    /// Sign-in attempts (password or WeChat) a client may make per minute, on average.
    pub login_per_minute: u32,
    /// Sign-in attempts a client may make at once.
    pub login_burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            create_per_minute: 20,
            create_burst: 10,
            status_per_minute: 300,
            status_burst: 60,
            login_per_minute: 10,
            login_burst: 5,
        }
    }
}

/// `backup.*`: scheduled backups (`zhifu backup` and `zhifu restore` work without them).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Backup {
    /// Folder of the backups (relative to the config file's folder); empty = no scheduled
    /// backups, and `zhifu backup` writes to the working directory.
    pub dir: PathBuf,
    /// Hours between scheduled backups; 0 = none.
    pub every_hours: u32,
    /// Scheduled backups kept in `dir` (the oldest are removed).
    pub keep: u32,
}

impl Default for Backup {
    fn default() -> Self {
        Backup {
            dir: PathBuf::new(),
            every_hours: 0,
            keep: 7,
        }
    }
}

/// `media.*`: uploaded images.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Media {
    /// Largest upload in bytes (the image itself; a multipart body may be a little larger).
    pub max_bytes: usize,
    /// Largest image in pixels (width × height, every frame of a GIF together), judged from
    /// the header before anything is decoded.
    pub max_pixels: u64,
    /// Uploads a user may make per minute, on average (per instance); 0 = unlimited.
    pub uploads_per_minute: u32,
    /// Uploads a user may make at once before the average applies.
    pub upload_burst: u32,
    /// Bytes of images and thumbnails kept in memory for serving.
    pub cache_bytes: u64,
    /// Seconds a client may take to send an upload's body.
    pub read_timeout_secs: u64,
}

impl Default for Media {
    fn default() -> Self {
        Media {
            max_bytes: 10 * 1024 * 1024,
            max_pixels: 40_000_000,
            uploads_per_minute: 20,
            upload_burst: 10,
            cache_bytes: 64 * 1024 * 1024,
            read_timeout_secs: 120,
        }
    }
}

/// `mail.*`: outgoing mail (verification links).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mail {
    /// `smtps://user:pass@host:465` or `smtp://user:pass@host:587?tls=required`; empty = mail
    /// is kept in the database outbox (shown at `/sandbox/mail` in sandbox mode), not sent.
    pub smtp_url: Secret,
    /// The sender, e.g. `zhifu <no-reply@example.org>`.
    pub from: String,
    /// Seconds an SMTP exchange may take before it counts as failed (and is retried).
    pub timeout_secs: u64,
}

impl Default for Mail {
    fn default() -> Self {
        Mail {
            smtp_url: Secret::default(),
            from: "zhifu <no-reply@localhost>".into(),
            timeout_secs: 30,
        }
    }
}

/// `mall.*`: the mall.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mall {
    /// Days after shipping that an order completes by itself (the buyer may confirm sooner).
    pub auto_complete_days: u32,
}

impl Default for Mall {
    fn default() -> Self {
        Mall { auto_complete_days: 10 }
    }
}

/// `log.*`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Log {
    /// A `tracing` filter, e.g. `info` or `zhifu=debug,info`; `RUST_LOG` wins when set.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
    /// One line per request (method, path, status, latency, request id).
    pub access: bool,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            level: "info".into(),
            format: "text".into(),
            access: true,
        }
    }
}

/// One thing wrong with the configuration: which key, what is wrong, how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (fix: {})", self.key, self.problem, self.fix)
    }
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration from {source_name}: {message}")]
    Load { source_name: String, message: String },
    #[error("the configuration has {} problem(s):\n{}", .0.len(), list(.0))]
    Invalid(Vec<Problem>),
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The loaded settings with what was derived from them while validating.
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    /// The file the settings came from, if any.
    pub file: Option<PathBuf>,
    /// The parsed listen address.
    pub listen: SocketAddr,
    /// The parsed trusted proxy networks.
    pub trusted_proxies: Vec<IpNet>,
    /// `database.embedded.data_dir`, made absolute.
    pub data_dir: PathBuf,
    /// `payments.min_amount` / `max_amount` in fen.
    pub min_amount_fen: i64,
    pub max_amount_fen: i64,
    /// `backup.dir`, made absolute; `None` when empty.
    pub backup_dir: Option<PathBuf>,
}

/// Where to look for `config.yaml` when `--config` is not given: the working directory,
/// then beside the binary.
pub fn default_path() -> Option<PathBuf> {
    let cwd = PathBuf::from("config.yaml");
    if cwd.is_file() {
        return Some(cwd);
    }
    let exe = std::env::current_exe().ok()?;
    let beside = exe.parent()?.join("config.yaml");
    beside.is_file().then_some(beside)
}

/// Loads `path` (required when given) and the `ZHIFU__…` environment, then validates.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    let env: Vec<(String, String)> = std::env::vars().filter(|(k, _)| k.starts_with("ZHIFU__")).collect();
    load_from(path, env)
}

/// [`load`] with the environment given explicitly (tests use this).
pub fn load_from(path: Option<&Path>, env: Vec<(String, String)>) -> Result<Config, ConfigError> {
    let file = path.map(|path| config::File::from(path).format(config::FileFormat::Yaml));
    let source_name = path.map_or_else(
        || "the environment".to_string(),
        |p| format!("{} and the environment", p.display()),
    );
    let (settings, problems) = read_settings(file, env, source_name)?;
    let base = path.and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default();
    validate_after(settings, path.map(Path::to_path_buf), &base, problems)
}

/// [`load_from`] over YAML text instead of a file; relative paths are relative to `base`.
pub fn load_text(yaml: &str, env: Vec<(String, String)>, base: &Path) -> Result<Config, ConfigError> {
    let file = config::File::from_str(yaml, config::FileFormat::Yaml);
    let (settings, problems) = read_settings(Some(file), env, "the given text and the environment".to_string())?;
    validate_after(settings, None, base, problems)
}

/// The settings from `file` (if any) overlaid with the `ZHIFU__…` pairs of `env`, with the
/// problems of their shape (unknown keys, wrong types): those keys keep their defaults.
fn read_settings(
    file: Option<impl config::Source + Send + Sync + 'static>,
    env: Vec<(String, String)>,
    source_name: String,
) -> Result<(Settings, Vec<Problem>), ConfigError> {
    let mut builder = config::Config::builder();
    if let Some(file) = file {
        builder = builder.add_source(file);
    }
    let env_source = config::Environment::with_prefix("ZHIFU")
        .prefix_separator("__")
        .separator("__")
        .list_separator(",")
        .with_list_parse_key("server.trusted_proxies")
        .with_list_parse_key("community.blocked_words")
        .try_parsing(true)
        .source(Some(env.into_iter().collect()));
    let tree = builder
        .add_source(env_source)
        .build()
        .and_then(|c| c.try_deserialize::<serde_json::Value>())
        .map_err(|e| ConfigError::Load {
            source_name,
            message: e.to_string(),
        })?;
    Ok(shape::check(&tree))
}

/// Checks every rule and derives the parsed values; all problems are reported together.
pub fn validate(settings: Settings, file: Option<PathBuf>, base: &Path) -> Result<Config, ConfigError> {
    validate_after(settings, file, base, Vec::new())
}

/// [`validate`], reporting `problems` found earlier (the shape's) with the rules'.
fn validate_after(
    settings: Settings,
    file: Option<PathBuf>,
    base: &Path,
    mut problems: Vec<Problem>,
) -> Result<Config, ConfigError> {
    let mut bad = |key: &str, problem: String, fix: &str| {
        problems.push(Problem {
            key: key.to_string(),
            problem,
            fix: fix.to_string(),
        })
    };

    let s = &settings.server;
    let listen = s.listen.parse::<SocketAddr>().unwrap_or_else(|_| {
        bad(
            "server.listen",
            format!("{:?} is not a socket address", s.listen),
            "write host:port, e.g. 127.0.0.1:8080 or [::]:8080",
        );
        SocketAddr::from(([127, 0, 0, 1], 8080))
    });
    let public = s.public_url.trim_end_matches('/');
    if !(public.starts_with("http://") || public.starts_with("https://")) || public.len() < 10 {
        bad(
            "server.public_url",
            format!("{:?} is not an http(s) URL", s.public_url),
            "write the URL donors and providers reach, e.g. https://pay.example.org",
        );
    }
    let mut trusted_proxies = Vec::new();
    for p in &s.trusted_proxies {
        let p = p.trim();
        match p
            .parse::<IpNet>()
            .or_else(|_| p.parse::<std::net::IpAddr>().map(IpNet::from))
        {
            Ok(net) => trusted_proxies.push(net),
            Err(_) => bad(
                "server.trusted_proxies",
                format!("{p:?} is not a CIDR or an IP address"),
                "list networks like 127.0.0.1/32 or 10.0.0.0/8",
            ),
        }
    }
    if s.runtime != "multi_thread" && s.runtime != "per_core" {
        bad(
            "server.runtime",
            format!("{:?} is neither multi_thread nor per_core", s.runtime),
            "write per_core (one runtime per core) or multi_thread (one work-stealing runtime)",
        );
    }
    if s.max_connections == 0 {
        bad("server.max_connections", "must be at least 1".into(), "set e.g. 10000");
    }
    if !(1..=3600).contains(&s.header_read_timeout_secs) {
        bad(
            "server.header_read_timeout_secs",
            format!("{} is outside 1..=3600", s.header_read_timeout_secs),
            "set e.g. 75 (above nginx's upstream keepalive_timeout)",
        );
    }
    if !(1..=3600).contains(&s.body_read_timeout_secs) {
        bad(
            "server.body_read_timeout_secs",
            format!("{} is outside 1..=3600", s.body_read_timeout_secs),
            "set e.g. 15",
        );
    }
    if !(1024..=64 * 1024 * 1024).contains(&s.max_body_bytes) {
        bad(
            "server.max_body_bytes",
            format!("{} is outside 1024..=67108864", s.max_body_bytes),
            "set e.g. 65536",
        );
    }
    if s.shutdown_grace_secs > 600 {
        bad(
            "server.shutdown_grace_secs",
            format!("{} is over 600", s.shutdown_grace_secs),
            "set e.g. 10",
        );
    }

    let d = &settings.database;
    let url = d.url.expose();
    if !url.is_empty() && url.parse::<tokio_postgres::Config>().is_err() {
        bad(
            "database.url",
            "is not a PostgreSQL connection string".into(),
            "write postgres://user:password@host:5432/dbname, or leave it empty for the embedded database",
        );
    }
    if url.is_empty() && d.embedded.data_dir.as_os_str().is_empty() {
        bad(
            "database.embedded.data_dir",
            "is empty while database.url is empty".into(),
            "set a folder for the embedded cluster, e.g. data/pg",
        );
    }
    if !(1..=1000).contains(&d.pool_size) {
        bad(
            "database.pool_size",
            format!("{} is outside 1..=1000", d.pool_size),
            "set e.g. 16",
        );
    }
    if !(1..=60).contains(&d.connect_timeout_secs) {
        bad(
            "database.connect_timeout_secs",
            format!("{} is outside 1..=60", d.connect_timeout_secs),
            "set e.g. 2",
        );
    }
    let data_dir = beside_config(base, &d.embedded.data_dir);
    let b = &settings.backup;
    let backup_dir = (!b.dir.as_os_str().is_empty()).then(|| beside_config(base, &b.dir));
    if b.every_hours > 0 && backup_dir.is_none() {
        bad(
            "backup.dir",
            "is empty while backup.every_hours is set".into(),
            "set a folder for the backups, e.g. data/backups, or set backup.every_hours: 0",
        );
    }
    if b.every_hours > 24 * 365 {
        bad(
            "backup.every_hours",
            format!("{} is over a year", b.every_hours),
            "set e.g. 24 (daily), or 0 for no scheduled backups",
        );
    }
    if !(1..=10_000).contains(&b.keep) {
        bad("backup.keep", format!("{} is outside 1..=10000", b.keep), "set e.g. 7");
    }

    let p = &settings.payments;
    if !(60..=7 * 24 * 3600).contains(&p.order_ttl_secs) {
        bad(
            "payments.order_ttl_secs",
            format!("{} is outside 60..=604800", p.order_ttl_secs),
            "set e.g. 900 (15 minutes)",
        );
    }
    let mut amount = |key, text: &str| match money::parse_yuan(text) {
        Ok(fen) if fen > 0 => fen,
        _ => {
            bad(
                key,
                format!("{text:?} is not a positive yuan amount"),
                "write a yuan string with at most two decimals, e.g. \"0.01\"",
            );
            0
        }
    };
    let min_amount_fen = amount("payments.min_amount", &p.min_amount);
    let max_amount_fen = amount("payments.max_amount", &p.max_amount);
    if min_amount_fen > 0 && max_amount_fen > 0 && min_amount_fen > max_amount_fen {
        bad(
            "payments.max_amount",
            format!("{} is below payments.min_amount {}", p.max_amount, p.min_amount),
            "make max_amount at least min_amount",
        );
    }
    if p.late_payment != "keep" && p.late_payment != "refund" {
        bad(
            "payments.late_payment",
            format!("{:?} is neither keep nor refund", p.late_payment),
            "write keep (mark the order paid and late) or refund",
        );
    }
    if !(1..=60).contains(&p.request_timeout_secs) {
        bad(
            "payments.request_timeout_secs",
            format!("{} is outside 1..=60", p.request_timeout_secs),
            "set e.g. 10",
        );
    }
    if !(1..=3600).contains(&p.reconcile_interval_secs) {
        bad(
            "payments.reconcile_interval_secs",
            format!("{} is outside 1..=3600", p.reconcile_interval_secs),
            "set e.g. 5",
        );
    }
    if !(1..=3650).contains(&p.callback_retention_days) {
        bad(
            "payments.callback_retention_days",
            format!("{} is outside 1..=3650", p.callback_retention_days),
            "set e.g. 180 (disputes and audits look back months)",
        );
    }
    if p.sandbox && !cfg!(feature = "sandbox") {
        bad(
            "payments.sandbox",
            "is true, but this build has no sandbox (built without the `sandbox` feature)".into(),
            "set it to false and configure payments.wechat / payments.alipay, or run a build with the sandbox",
        );
    }
    if p.sandbox && (p.wechat.has_credentials() || p.alipay.has_credentials()) {
        bad(
            "payments.sandbox",
            "is true while real provider credentials are set".into(),
            "set payments.sandbox: false to use the real gateways, or remove the credentials",
        );
    }
    for (key, base_url) in [
        ("payments.wechat.api_base", &p.wechat.api_base),
        ("payments.alipay.gateway", &p.alipay.gateway),
    ] {
        if !is_https_or_loopback(base_url) {
            bad(
                key,
                format!("{base_url:?} is not an https URL"),
                "leave the default to use the real gateway (plain http is allowed only on loopback)",
            );
        }
    }

    let a = &settings.accounts;
    if !(300..=90 * 24 * 3600).contains(&a.session_ttl_secs) {
        bad(
            "accounts.session_ttl_secs",
            format!("{} is outside 300..=7776000", a.session_ttl_secs),
            "set e.g. 604800 (7 days)",
        );
    }
    if !(1..=100).contains(&a.lockout_after) {
        bad(
            "accounts.lockout_after",
            format!("{} is outside 1..=100", a.lockout_after),
            "set e.g. 5",
        );
    }
    if !(1..=86400).contains(&a.lockout_secs) {
        bad(
            "accounts.lockout_secs",
            format!("{} is outside 1..=86400", a.lockout_secs),
            "set e.g. 900 (15 minutes)",
        );
    }
    let w = &a.wechat;
    for (appid_key, appid, secret_key, secret) in [
        (
            "accounts.wechat.mini_appid",
            &w.mini_appid,
            "accounts.wechat.mini_secret",
            &w.mini_secret,
        ),
        (
            "accounts.wechat.web_appid",
            &w.web_appid,
            "accounts.wechat.web_secret",
            &w.web_secret,
        ),
    ] {
        if appid.is_empty() != secret.is_empty() {
            let (key, missing) = if appid.is_empty() {
                (appid_key, "appid")
            } else {
                (secret_key, "secret")
            };
            bad(
                key,
                format!(
                    "is empty while its {} is set",
                    if missing == "appid" { "secret" } else { "appid" }
                ),
                "set both the appid and its AppSecret from the WeChat console, or neither",
            );
        }
    }
    if w.web_scope != "snsapi_base" && w.web_scope != "snsapi_login" && w.web_scope != "snsapi_userinfo" {
        bad(
            "accounts.wechat.web_scope",
            format!("{:?} is not a WeChat OAuth scope", w.web_scope),
            "write snsapi_login (website QR sign-in) or snsapi_base (inside WeChat)",
        );
    }
    for (key, url) in [
        ("accounts.wechat.api_base", &w.api_base),
        ("accounts.wechat.authorize_url", &w.authorize_url),
    ] {
        if !is_https_or_loopback(url) {
            bad(
                key,
                format!("{url:?} is not an https URL"),
                "leave the default (plain http is allowed only on loopback)",
            );
        }
    }

    validate_media(&settings.media, &mut bad);
    validate_mail(&settings.mail, &mut bad);
    crowdfunding::validate(&settings.crowdfunding, &mut bad);
    validate_mall(&settings.mall, &mut bad);
    community::validate(&settings.community, &mut bad);

    if settings.rankings.timezone.trim().is_empty() {
        bad(
            "rankings.timezone",
            "is empty".into(),
            "set an IANA zone such as Asia/Shanghai",
        );
    }
    if settings.log.format != "text" && settings.log.format != "json" {
        bad(
            "log.format",
            format!("{:?} is neither text nor json", settings.log.format),
            "write text or json",
        );
    }
    if tracing_subscriber::EnvFilter::try_new(&settings.log.level).is_err() {
        bad(
            "log.level",
            format!("{:?} is not a log filter", settings.log.level),
            "write e.g. info, or zhifu=debug,info",
        );
    }

    if !problems.is_empty() {
        return Err(ConfigError::Invalid(problems));
    }
    Ok(Config {
        settings,
        file,
        listen,
        trusted_proxies,
        data_dir,
        min_amount_fen,
        max_amount_fen,
        backup_dir,
    })
}

/// `path` as given when absolute, else under the config file's folder (`base`; the working
/// directory when there is no file).
fn beside_config(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    let base = if base.as_os_str().is_empty() {
        std::env::current_dir().unwrap_or_default()
    } else {
        std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf())
    };
    base.join(path)
}

fn validate_media(m: &Media, bad: &mut impl FnMut(&'static str, String, &str)) {
    if !(1024..=256 * 1024 * 1024).contains(&m.max_bytes) {
        bad(
            "media.max_bytes",
            format!("{} is outside 1024..=268435456", m.max_bytes),
            "set e.g. 10485760 (10 MiB)",
        );
    }
    if !(1..=1_000_000_000).contains(&m.max_pixels) {
        bad(
            "media.max_pixels",
            format!("{} is outside 1..=1000000000", m.max_pixels),
            "set e.g. 40000000 (40 megapixels)",
        );
    }
    if !(1..=3600).contains(&m.read_timeout_secs) {
        bad(
            "media.read_timeout_secs",
            format!("{} is outside 1..=3600", m.read_timeout_secs),
            "set e.g. 120",
        );
    }
    if m.cache_bytes < 1024 * 1024 {
        bad(
            "media.cache_bytes",
            format!("{} is below 1 MiB", m.cache_bytes),
            "set e.g. 67108864 (64 MiB)",
        );
    }
}

fn validate_mall(m: &Mall, bad: &mut impl FnMut(&'static str, String, &str)) {
    if !(1..=365).contains(&m.auto_complete_days) {
        bad(
            "mall.auto_complete_days",
            format!("{} is outside 1..=365", m.auto_complete_days),
            "set e.g. 10",
        );
    }
}

fn validate_mail(m: &Mail, bad: &mut impl FnMut(&'static str, String, &str)) {
    let url = m.smtp_url.expose();
    if !url.is_empty()
        && let Err(problem) = check_smtp_url(url)
    {
        bad(
            "mail.smtp_url",
            problem.into(),
            "write smtps://user:password@host:465, or smtp://user:password@host:587?tls=required (plain smtp only to loopback)",
        );
    }
    if m.from.parse::<lettre::message::Mailbox>().is_err() {
        bad(
            "mail.from",
            format!("{:?} is not a mail address", m.from),
            "write e.g. zhifu <no-reply@example.org>",
        );
    }
    if !(1..=600).contains(&m.timeout_secs) {
        bad(
            "mail.timeout_secs",
            format!("{} is outside 1..=600", m.timeout_secs),
            "set e.g. 30",
        );
    }
}

/// An SMTP URL lettre understands, encrypted unless the server is on loopback. The problem
/// never repeats the URL (it may hold a password).
fn check_smtp_url(url: &str) -> Result<(), &'static str> {
    let (scheme, rest) = url.split_once("://").ok_or("is not a URL")?;
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        return Err("names no host");
    }
    let tls = rest
        .split_once('?')
        .map(|(_, q)| q.split('&').any(|p| p == "tls=required"))
        .unwrap_or(false);
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match scheme {
        "smtps" => {}
        "smtp" if tls || loopback => {}
        "smtp" => return Err("sends mail (and the password) unencrypted to another host"),
        _ => return Err("is neither smtps:// nor smtp://"),
    }
    lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url).map_err(|_| "is not an SMTP URL")?;
    Ok(())
}

/// Outbound URLs must be https; plain http is for emulators on loopback only.
fn is_https_or_loopback(url: &str) -> bool {
    url.starts_with("https://")
        || ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|prefix| url.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_are_valid() {
        let config = load_from(None, vec![]).expect("defaults validate");
        assert_eq!(config.listen.port(), 8080);
        assert_eq!(config.min_amount_fen, 1);
        assert_eq!(config.max_amount_fen, 5_000_000);
        assert!(config.data_dir.is_absolute());
    }

    #[test]
    fn the_mall_completes_orders_after_1_to_365_days() {
        assert_eq!(load_from(None, vec![]).unwrap().settings.mall.auto_complete_days, 10);
        let config = load_from(None, env(&[("ZHIFU__MALL__AUTO_COMPLETE_DAYS", "3")])).unwrap();
        assert_eq!(config.settings.mall.auto_complete_days, 3);
        for bad in ["0", "366"] {
            let err = load_from(None, env(&[("ZHIFU__MALL__AUTO_COMPLETE_DAYS", bad)])).unwrap_err();
            let ConfigError::Invalid(problems) = &err else {
                panic!("expected a problem, got {err}");
            };
            assert_eq!(problems[0].key, "mall.auto_complete_days", "{bad}");
        }
        let err = load_from(None, env(&[("ZHIFU__MALL__AUTO_COMPLETE", "3")])).unwrap_err();
        assert!(err.to_string().contains("mall.auto_complete"), "{err}");
    }

    #[test]
    fn environment_overrides_nested_keys_and_lists() {
        let config = load_from(
            None,
            env(&[
                ("ZHIFU__SERVER__LISTEN", "0.0.0.0:9000"),
                ("ZHIFU__DATABASE__EMBEDDED__DATA_DIR", "/var/lib/zhifu/pg"),
                ("ZHIFU__DATABASE__POOL_SIZE", "4"),
                ("ZHIFU__SERVER__TRUSTED_PROXIES", "10.0.0.0/8,192.168.1.1"),
                (
                    "ZHIFU__PAYMENTS__SANDBOX",
                    if cfg!(feature = "sandbox") { "true" } else { "false" },
                ),
            ]),
        )
        .expect("valid");
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/zhifu/pg"));
        assert_eq!(config.settings.database.pool_size, 4);
        assert_eq!(config.trusted_proxies.len(), 2);
        assert_eq!(config.settings.payments.sandbox, cfg!(feature = "sandbox"));
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_key() {
        let err = load_from(
            None,
            env(&[
                ("ZHIFU__SERVER__LISTEN", "nowhere"),
                ("ZHIFU__DATABASE__POOL_SIZE", "0"),
                ("ZHIFU__PAYMENTS__MIN_AMOUNT", "1.234"),
                ("ZHIFU__LOG__FORMAT", "xml"),
            ]),
        )
        .unwrap_err();
        let ConfigError::Invalid(problems) = &err else {
            panic!("expected validation problems, got {err}");
        };
        let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "server.listen",
                "database.pool_size",
                "payments.min_amount",
                "log.format"
            ]
        );
        assert!(err.to_string().contains("fix:"));
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_it() {
        let err = load_from(None, env(&[("ZHIFU__SERVER__LISTN", "1.2.3.4:1")])).unwrap_err();
        assert!(err.to_string().contains("listn"), "{err}");
    }

    #[test]
    fn the_runtime_shape_is_one_of_two_names() {
        for shape in ["per_core", "multi_thread"] {
            let config = load_from(None, env(&[("ZHIFU__SERVER__RUNTIME", shape)])).expect("a known shape");
            assert_eq!(config.settings.server.runtime, shape);
        }
        let err = load_from(None, env(&[("ZHIFU__SERVER__RUNTIME", "threads")])).unwrap_err();
        assert!(err.to_string().contains("server.runtime"), "{err}");
    }

    #[test]
    fn callback_retention_is_days_and_named_when_wrong() {
        let config = load_from(None, vec![]).unwrap();
        assert_eq!(config.settings.payments.callback_retention_days, 180);
        let kept = load_from(None, env(&[("ZHIFU__PAYMENTS__CALLBACK_RETENTION_DAYS", "30")])).unwrap();
        assert_eq!(kept.settings.payments.callback_retention_days, 30);
        let err = load_from(None, env(&[("ZHIFU__PAYMENTS__CALLBACK_RETENTION_DAYS", "0")])).unwrap_err();
        assert!(err.to_string().contains("payments.callback_retention_days"), "{err}");
    }

    #[cfg(not(feature = "sandbox"))]
    #[test]
    fn a_build_without_the_sandbox_refuses_payments_sandbox() {
        let err = load_from(None, env(&[("ZHIFU__PAYMENTS__SANDBOX", "true")])).unwrap_err();
        assert!(err.to_string().contains("payments.sandbox"), "{err}");
        assert!(err.to_string().contains("feature"), "{err}");
    }

    #[test]
    fn sandbox_with_real_credentials_is_refused() {
        let err = load_from(
            None,
            env(&[
                ("ZHIFU__PAYMENTS__SANDBOX", "true"),
                ("ZHIFU__PAYMENTS__WECHAT__MCHID", "1900000001"),
            ]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("payments.sandbox"), "{err}");
    }

    #[test]
    fn smtp_urls_must_encrypt_unless_on_loopback() {
        assert!(check_smtp_url("smtps://u:p@mail.example.org:465").is_ok());
        assert!(check_smtp_url("smtp://u:p@mail.example.org:587?tls=required").is_ok());
        assert!(check_smtp_url("smtp://127.0.0.1:2525").is_ok());
        assert!(check_smtp_url("smtp://u:p@mail.example.org:25").is_err());
        assert!(check_smtp_url("http://mail.example.org").is_err());
        let err = load_from(
            None,
            env(&[("ZHIFU__MAIL__SMTP_URL", "smtp://u:hunter2@mail.example.org")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("mail.smtp_url"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = load_from(None, env(&[("ZHIFU__MAIL__FROM", "nobody")])).unwrap_err();
        assert!(err.to_string().contains("mail.from"), "{err}");
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret("postgres://u:hunter2@h/db".into());
        assert_eq!(format!("{s:?}"), "[redacted]");
    }
}
