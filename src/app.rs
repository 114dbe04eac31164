//! The only wiring point: builds the shared state (store, event bus, caches, metrics), applies
//! migrations, binds the listener, routes events to caches and runs until a shutdown signal.
//! `run` is what `zhifu` (serve) does; tests use [`Application`] directly on port 0.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use http::header::HeaderValue;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};

use crate::account::Sessions;
use crate::account::wechat::LoginClient;
use crate::config::Config;
use crate::donate::{Catalog, Rankings};
use crate::http::limit::Limits;
use crate::http::metrics::HttpMetrics;
use crate::pay::alipay::{AlipayClient, AlipayCredentials};
use crate::pay::engine::{Engine, EngineSettings, Providers, Purposes};
use crate::pay::outbound::HttpClient;
use crate::pay::policy::{PaymentPolicy, Policy};
use crate::pay::reconcile;
use crate::pay::wechat::{WechatClient, WechatCredentials};
use crate::payments::Sandbox;
use crate::store::events::{Event, EventBus};
use crate::store::{Store, migrate};

/// What every request handler can reach.
#[derive(Debug)]
pub struct State {
    pub config: Config,
    pub store: Store,
    pub events: Arc<EventBus>,
    pub metrics: HttpMetrics,
    pub catalog: Catalog,
    pub rankings: Arc<Rankings>,
    /// The access log, when `log.access` is on.
    pub access: Option<Arc<crate::http::access::AccessLog>>,
    /// Per-client-IP rate limits.
    pub limits: Limits,
    /// Signed-in sessions, cached.
    pub sessions: Sessions,
    /// Images: upload limits, the decode gate and the serving cache.
    pub media: crate::media::Media,
    /// Unread notification counts and their long-poll waiters.
    pub notices: crate::notify::Board,
    /// Public profiles, pre-serialized.
    pub profiles: crate::account::Profiles,
    /// The mall's cached catalog.
    pub mall: crate::mall::Mall,
    /// The community: moderation, cached posts and lists, view counts.
    pub community: Arc<crate::community::Community>,
    /// WeChat sign-in, when configured (or emulated in the sandbox).
    pub wechat_login: Option<LoginClient>,
    /// Crowdfunding: its settings and cached public answers.
    pub crowdfunding: crate::crowdfunding::Crowdfunding,
    pub engine: Arc<Engine>,
    /// The provider emulators, when `payments.sandbox` is on.
    pub sandbox: Option<Sandbox>,
    /// Figures operators alert on (flagged orders, failed refunds…), for `/metrics`.
    pub attention: crate::ops::Attention,
    /// When the last scheduled (or any recorded) backup completed, for `/metrics`.
    pub last_backup: Arc<crate::backup::LastBackup>,
    /// Turns true when shutdown begins (parked long-polls answer then).
    pub shutdown: watch::Receiver<bool>,
    /// Request ids are `<instance>-<sequence>` unless a valid `X-Request-Id` came in.
    instance: u32,
    /// The next block of sequence numbers a thread takes (see [`State::next_sequence`]).
    sequence: AtomicU64,
    /// Which state a thread's block belongs to: unique in the process, never an address a
    /// later state could reuse.
    sequence_owner: u64,
}

impl State {
    /// The request's id: a sane `X-Request-Id` the client `sent`, else a new one. Written without
    /// `format!`: this runs on every request.
    pub fn request_id(&self, sent: Option<&HeaderValue>) -> HeaderValue {
        if let Some(id) = sent {
            let bytes = id.as_bytes();
            let sane = !bytes.is_empty()
                && bytes.len() <= 64
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if sane {
                return id.clone();
            }
        }
        let n = self.next_sequence();
        // `{instance:08x}-{n:x}`: 8 + 1 + at most 16 hex digits.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut id = [0u8; 25];
        for (i, slot) in id[..8].iter_mut().enumerate() {
            *slot = HEX[(self.instance >> (28 - 4 * i) & 0xf) as usize];
        }
        id[8] = b'-';
        let digits = (16 - n.leading_zeros() as usize / 4).max(1);
        for (i, slot) in id[9..9 + digits].iter_mut().enumerate() {
            *slot = HEX[(n >> (4 * (digits - 1 - i)) & 0xf) as usize];
        }
        HeaderValue::from_bytes(&id[..9 + digits]).expect("hex digits and a dash make a header value")
    }
}

/// How many sequence numbers a thread takes at once: the shared counter's cache line moves
/// between cores once per this many requests, not on every one.
const SEQUENCE_BLOCK: u64 = 1024;

/// States made in this process, for [`State::sequence_owner`].
static STATES: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's block of request sequence numbers: whose (a `sequence_owner`), the next
    /// one, and the end.
    static SEQUENCES: std::cell::Cell<(u64, u64, u64)> = const { std::cell::Cell::new((0, 0, 0)) };
}

impl State {
    /// A sequence number no other request of this state has had.
    fn next_sequence(&self) -> u64 {
        take_sequence(&self.sequence, self.sequence_owner)
    }
}

/// The next number of `counter` (owned by `owner`) from this thread's block; a new block when
/// it is spent, or was another owner's.
fn take_sequence(counter: &AtomicU64, owner: u64) -> u64 {
    SEQUENCES.with(|cell| {
        let (whose, next, end) = cell.get();
        let (next, end) = if whose == owner && next < end {
            (next, end)
        } else {
            let start = counter.fetch_add(SEQUENCE_BLOCK, Ordering::Relaxed);
            (start, start + SEQUENCE_BLOCK)
        };
        cell.set((owner, next + 1, end));
        next
    })
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Catalog")
    }
}

impl std::fmt::Debug for HttpMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpMetrics")
    }
}

/// A built server: state made, migrations applied, listener bound, not yet serving.
#[derive(Debug)]
pub struct Application {
    state: Arc<State>,
    listener: TcpListener,
    shutdown: watch::Sender<bool>,
}

impl Application {
    /// Applies pending migrations, checks settings against the database, starts the event
    /// bus and binds `server.listen` (port 0 picks a free port).
    pub async fn build(config: Config, store: Store) -> anyhow::Result<Application> {
        migrate_store(&store).await?;
        check_timezone(&store, &config.settings.rankings.timezone).await?;
        if crate::donate::rankings::ensure_totals(&store, &config.settings.rankings.timezone).await? {
            tracing::info!(timezone = %config.settings.rankings.timezone, "donation totals rebuilt for this time zone");
        }
        let (shutdown, shutdown_rx) = watch::channel(false);
        let events = EventBus::start(store.pg_config.clone(), store.tls.clone(), shutdown_rx.clone());
        // Serve only once changes from other instances reach us (caches rely on it).
        anyhow::ensure!(
            events.wait_connected(Duration::from_secs(10)).await,
            "the event listener could not connect to the database within 10 s"
        );
        let listener = crate::http::server::bind(config.listen)
            .with_context(|| format!("cannot listen on {} (server.listen)", config.listen))?;
        let local = listener.local_addr()?;
        let rankings = Arc::new(Rankings::new(&config.settings.rankings.timezone));
        let (engine, sandbox) = payment_engine(&config, &store, local, &rankings)?;
        let wechat_login = wechat_login_client(&config, sandbox.as_ref(), local);
        engine.policy.reload(&store).await?;
        let catalog = Catalog::new(Arc::clone(&engine.policy));
        let limits = Limits::new(&config.settings.limits);
        let log = &config.settings.log;
        let access = log
            .access
            .then(|| crate::http::access::AccessLog::start(log.format == "json"));
        if config.settings.mail.smtp_url.is_empty() && !config.settings.payments.sandbox {
            tracing::warn!("mail.smtp_url is empty: mail (verification links) is kept in the outbox table, not sent");
        }
        let media = crate::media::Media::new(&config.settings.media);
        let config_crowdfunding = config.settings.crowdfunding.clone();
        let mall = crate::mall::Mall::new(&config.settings.mall);
        let community = Arc::new(crate::community::Community::new(&config.settings.community));
        let state = Arc::new(State {
            media,
            config,
            store,
            events,
            metrics: HttpMetrics::default(),
            catalog,
            rankings,
            limits,
            access,
            sessions: Sessions::new(),
            notices: crate::notify::Board::default(),
            profiles: crate::account::Profiles::default(),
            mall,
            community,
            wechat_login,
            crowdfunding: crate::crowdfunding::Crowdfunding::new(config_crowdfunding),
            engine,
            sandbox,
            last_backup: Arc::default(),
            attention: crate::ops::Attention::default(),
            shutdown: shutdown_rx,
            instance: instance_id(),
            sequence: AtomicU64::new(0),
            sequence_owner: STATES.fetch_add(1, Ordering::Relaxed) + 1,
        });
        tokio::spawn(route_events(Arc::clone(&state)));
        tokio::spawn(crate::community::run_view_flusher(
            Arc::clone(&state.community),
            state.store.clone(),
            state.shutdown.clone(),
        ));
        tokio::spawn(forget_idle_clients(Arc::clone(&state)));
        tokio::spawn(crate::ops::Attention::watch(Arc::clone(&state)));
        tokio::spawn(crate::backup::schedule(
            Arc::new(state.config.clone()),
            state.store.clone(),
            Arc::clone(&state.last_backup),
            state.shutdown.clone(),
        ));
        tokio::spawn(crate::mail::run_sender(
            state.store.clone(),
            Arc::clone(&state.events),
            state.config.settings.mail.clone(),
            state.shutdown.clone(),
        ));
        tokio::spawn(crate::crowdfunding::settlement::run(Arc::clone(&state)));
        tokio::spawn(crate::mall::auto_complete(
            state.store.clone(),
            state.config.settings.mall.auto_complete_days,
            state.shutdown.clone(),
        ));
        tokio::spawn(reconcile::run(
            Arc::clone(&state.engine),
            Duration::from_secs(state.config.settings.payments.reconcile_interval_secs),
            state.shutdown.clone(),
        ));
        Ok(Application {
            state,
            listener,
            shutdown,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The shared state (tests read metrics and the store through it).
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Serves until `signal` completes, then drains and returns.
    pub async fn run_until(self, signal: impl Future<Output = ()>) {
        let Application {
            state,
            listener,
            shutdown,
        } = self;
        // The API description is built once, before the first request.
        crate::openapi::init();
        let stop = async move {
            signal.await;
            let _ = shutdown.send(true);
        };
        crate::http::server::serve(listener, Arc::clone(&state), stop).await;
        // The views counted while the last requests drained.
        if let Err(e) = state.community.flush_views(&state.store).await {
            tracing::warn!(error = %e, "cannot write the last view counts");
        }
        // Lines of the drained requests go out before the process does (SIGTERM loses none).
        if let Some(access) = &state.access {
            access.close();
        }
    }
}

/// The engine with its providers: the emulators in sandbox mode (reached over loopback, so
/// the real clients and their signatures run), else the configured merchants' keys.
fn payment_engine(
    config: &Config,
    store: &Store,
    local: SocketAddr,
    rankings: &Arc<Rankings>,
) -> anyhow::Result<(Arc<Engine>, Option<Sandbox>)> {
    let payments = &config.settings.payments;
    let http = HttpClient::new(Duration::from_secs(payments.request_timeout_secs));
    let loopback = loopback(local);
    crate::secret_files::warn_loose(config);
    let mut providers = Providers::default();
    let (sandbox, notify_base) = if payments.sandbox {
        let base = format!("http://{loopback}");
        (Some(emulated(config, &http, &base, &mut providers)?), base)
    } else {
        if payments.wechat.enabled {
            let credentials = WechatCredentials::from_config(&payments.wechat)?;
            providers.wechat = Some(WechatClient::new(
                credentials,
                payments.wechat.api_base.clone(),
                http.clone(),
            ));
        }
        if payments.alipay.enabled {
            let credentials = AlipayCredentials::from_config(&payments.alipay)?;
            providers.alipay = Some(AlipayClient::new(
                credentials,
                payments.alipay.gateway.clone(),
                http.clone(),
            ));
        }
        (
            None,
            config.settings.server.public_url.trim_end_matches('/').to_string(),
        )
    };
    let settings = EngineSettings {
        notify_base,
        purposes: purposes(config, rankings),
        provider_timeout: Duration::from_secs(payments.request_timeout_secs),
    };
    let policy = Policy::new(PaymentPolicy {
        wechat: providers.wechat.is_some(),
        alipay: providers.alipay.is_some(),
        min_amount_fen: config.min_amount_fen,
        max_amount_fen: config.max_amount_fen,
        order_ttl: Duration::from_secs(payments.order_ttl_secs),
        refund_late_payments: payments.late_payment == "refund",
    });
    Ok((
        Engine::new(store.clone(), providers, settings, Arc::new(policy)),
        sandbox,
    ))
}

/// What payments are for: each business module's purpose, registered by name. A new module
/// adds its line here (and its route prefix in `http::route`).
fn purposes(config: &Config, rankings: &Arc<Rankings>) -> Purposes {
    let timezone = &config.settings.rankings.timezone;
    let purposes = Purposes::default()
        .with(Arc::new(crate::donate::Donation::new(timezone, Arc::clone(rankings))))
        .with(Arc::new(crate::crowdfunding::Backing))
        .with(Arc::new(crate::mall::MallOrder));
    // The purpose the tests drive every hook with (its table exists only where they made it).
    #[cfg(feature = "sandbox")]
    let purposes = purposes.with(Arc::new(crate::probe::Probe));
    purposes
}

/// The sandbox: both providers' emulators, mounted under `/sandbox/…` at `base`, and clients
/// of them for the enabled channels (so the real clients and signatures run).
#[cfg(feature = "sandbox")]
fn emulated(config: &Config, http: &HttpClient, base: &str, providers: &mut Providers) -> anyhow::Result<Sandbox> {
    use crate::account::wechat::LoginEmulator;
    use crate::pay::alipay::AlipayEmulator;
    use crate::pay::wechat::WechatEmulator;
    let payments = &config.settings.payments;
    let (wechat_credentials, wechat_emulator) = WechatEmulator::sandbox_pair();
    let (alipay_credentials, alipay_emulator) = AlipayEmulator::sandbox_pair();
    let sandbox = Sandbox {
        wechat: WechatEmulator::new(wechat_emulator, http.clone()),
        alipay: AlipayEmulator::new(alipay_emulator, http.clone()),
        wechat_login: Arc::new(LoginEmulator::new()),
    };
    if payments.wechat.enabled {
        let api = format!("{base}/sandbox/wechat");
        providers.wechat = Some(WechatClient::new(wechat_credentials, api, http.clone()));
    }
    if payments.alipay.enabled {
        let gateway = format!("{base}/sandbox/alipay/gateway.do");
        providers.alipay = Some(AlipayClient::new(alipay_credentials, gateway, http.clone()));
    }
    Ok(sandbox)
}

/// A build without the `sandbox` feature has no emulators (configuration validation says
/// so first).
#[cfg(not(feature = "sandbox"))]
fn emulated(_: &Config, _: &HttpClient, _: &str, _: &mut Providers) -> anyhow::Result<Sandbox> {
    anyhow::bail!("payments.sandbox: this build has no sandbox (built without the `sandbox` feature)")
}

/// WeChat sign-in: the configured apps, else the sandbox's emulator (over loopback, so the
/// real client runs).
fn wechat_login_client(config: &Config, sandbox: Option<&Sandbox>, local: SocketAddr) -> Option<LoginClient> {
    let http = HttpClient::new(Duration::from_secs(config.settings.payments.request_timeout_secs));
    if let Some(client) = LoginClient::from_settings(&config.settings.accounts.wechat, http.clone()) {
        return Some(client);
    }
    #[cfg(feature = "sandbox")]
    {
        let sandbox = sandbox?;
        Some(LoginClient::sandbox(
            &sandbox.wechat_login,
            &format!("http://{}", loopback(local)),
            http,
        ))
    }
    #[cfg(not(feature = "sandbox"))]
    {
        let _ = (sandbox, local);
        None
    }
}

fn loopback(local: SocketAddr) -> SocketAddr {
    match local {
        SocketAddr::V4(a) if a.ip().is_unspecified() => SocketAddr::from(([127, 0, 0, 1], a.port())),
        SocketAddr::V6(a) if a.ip().is_unspecified() => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port())),
        other => other,
    }
}

/// `zhifu` / `zhifu serve`: opens the store (starting the embedded cluster if configured),
/// serves until SIGTERM or SIGINT, then stops the cluster.
pub fn run(config: Config) -> anyhow::Result<()> {
    let per_core = config.settings.server.runtime == "per_core";
    let runtime = if per_core {
        // One single-threaded runtime per worker: this one, plus siblings started below.
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?
    } else {
        runtime(config.settings.server.workers)?
    };
    let workers = match config.settings.server.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let result = runtime.block_on(async move {
        let started = Instant::now();
        tracing::info!(config = %describe_source(&config), "starting zhifu {}", env!("CARGO_PKG_VERSION"));
        // Before the database starts: a port in use is refused at once.
        crate::http::server::ensure_free(config.listen)
            .with_context(|| format!("cannot listen on {} (server.listen)", config.listen))?;
        let store = Store::open(&config).await?;
        let grace = Duration::from_secs(config.settings.server.shutdown_grace_secs);
        let app = Application::build(config, store.clone()).await?;
        let url = format!("http://{}", app.local_addr());
        let siblings = if per_core {
            crate::http::server::spawn_siblings(app.local_addr(), app.state(), workers - 1)
                .context("cannot start the per-core listeners (server.runtime)")?
        } else {
            Vec::new()
        };
        tracing::info!(%url, ready_ms = started.elapsed().as_millis() as u64, "zhifu is ready; open {url} in a browser");
        let state = Arc::clone(app.state());
        app.run_until(shutdown_signal()).await;
        for sibling in siblings {
            let _ = tokio::task::spawn_blocking(move || sibling.join()).await;
        }
        if let Some(access) = &state.access {
            // The siblings' last lines.
            access.close();
        }
        store.pool.close();
        if let Some(cluster) = store.cluster().cloned() {
            tracing::info!("stopping the embedded PostgreSQL");
            tokio::task::spawn_blocking(move || cluster.stop(grace)).await?;
        }
        tracing::info!("stopped");
        anyhow::Ok(())
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// `zhifu migrate`: applies pending migrations and exits.
pub fn migrate(config: Config) -> anyhow::Result<()> {
    let runtime = runtime(1)?;
    runtime.block_on(async move {
        let store = Store::open(&config).await?;
        migrate_store(&store).await?;
        store.pool.close();
        if let Some(cluster) = store.cluster().cloned() {
            tokio::task::spawn_blocking(move || cluster.stop(Duration::from_secs(10))).await?;
        }
        anyhow::Ok(())
    })
}

/// `zhifu check-config`: what the configuration amounts to, secrets left out.
pub fn describe(config: &Config) -> String {
    let s = &config.settings;
    let database = if s.database.url.is_empty() {
        format!("embedded, data in {}", config.data_dir.display())
    } else {
        "database.url (set)".to_string()
    };
    let payments = if s.payments.sandbox {
        "sandbox (built-in emulator)"
    } else {
        "real gateways"
    };
    format!(
        "configuration OK ({})\n  listen:   {}\n  database: {database}\n  payments: {payments}",
        describe_source(config),
        config.listen
    )
}

fn describe_source(config: &Config) -> String {
    match &config.file {
        Some(path) => format!("{} + environment", path.display()),
        None => "defaults + environment".to_string(),
    }
}

fn runtime(workers: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if workers > 0 {
        builder.worker_threads(workers);
    }
    builder
        .enable_all()
        .thread_name("zhifu")
        .build()
        .context("cannot start the async runtime")
}

async fn migrate_store(store: &Store) -> anyhow::Result<()> {
    let mut client = store
        .client()
        .await
        .context("cannot connect to the database to migrate")?;
    let applied = migrate::run(&mut client).await?;
    if !applied.is_empty() {
        tracing::info!(?applied, "applied migrations");
    }
    Ok(())
}

/// `rankings.timezone` must be a zone PostgreSQL knows, since the boundaries are computed there.
async fn check_timezone(store: &Store, zone: &str) -> anyhow::Result<()> {
    let client = store.client().await?;
    let known = client
        .query_opt("SELECT 1 FROM pg_timezone_names WHERE name = $1", &[&zone])
        .await?
        .is_some();
    anyhow::ensure!(
        known,
        "rankings.timezone: {zone:?} is not a time zone the database knows (fix: use an IANA name such as Asia/Shanghai)"
    );
    Ok(())
}

/// Drops cached state when an event says it changed, on every instance.
async fn route_events(state: Arc<State>) {
    let mut events = state.events.subscribe();
    let mut shutdown = state.shutdown.clone();
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        match event {
            Ok(Event::Message(payload)) => {
                if let Ok(message) = serde_json::from_str::<serde_json::Value>(&payload) {
                    apply_event(&state, &message).await;
                }
            }
            Ok(Event::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                state.sessions.invalidate_all();
                reload_policy(&state).await;
                state.catalog.invalidate();
                state.rankings.invalidate();
                let notices = Arc::clone(&state);
                tokio::spawn(async move { notices.notices.resync(&notices.store).await });
                state.profiles.changed_all();
                state.crowdfunding.cache.changed_all();
                state.mall.changed_all();
                state.community.changed_all();
                // One batched read for the parked polls, off this loop.
                let resync = Arc::clone(&state);
                tokio::spawn(async move { resync.engine.status.resync(&resync.store).await });
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// What one event (`{"kind": …}`) changes in this instance's memory. Run for every event
/// from the bus, and by a handler right after its own commit when its change must show on
/// this instance at once. A payment event goes to the order's waiters and to its purpose
/// (`Purpose::on_event`), which knows what it keeps in memory.
pub async fn apply_event(state: &State, message: &serde_json::Value) {
    let text = |name: &str| message.get(name).and_then(|v| v.as_str());
    match text("kind") {
        Some("categories") => state.catalog.invalidate(),
        Some("sessions") => state.sessions.invalidate_all(),
        // A donor renamed (rankings show current names), or any other reason to recompute.
        Some("rankings") => state.rankings.invalidate(),
        // Rankings and the mall show current display names.
        Some("user_renamed") => {
            state.rankings.invalidate();
            state.mall.changed_all();
        }
        Some("mall") => state.mall.apply_event(message),
        Some("payment_settings") => reload_policy(state).await,
        Some("notification") => {
            if let Some(user_id) = message.get("user_id").and_then(|u| u.as_i64()) {
                state.notices.changed(user_id);
            }
        }
        Some("project") => state.crowdfunding.on_event(message),
        Some("profile") => {
            if let Some(user_id) = message.get("user_id").and_then(|u| u.as_i64()) {
                state.profiles.changed(user_id);
            }
        }
        Some("community") => state.community.changed(message.get("post_id").and_then(|p| p.as_i64())),
        Some("community_boards") => state.community.boards_changed(),
        Some("payment") => {
            let status = text("status").and_then(crate::pay::status::Status::parse);
            let purpose = text("purpose").and_then(|p| state.engine.settings.purposes.get(p));
            if let (Some(status), Some(purpose)) = (status, purpose) {
                purpose.on_event(status);
            }
            if let Some(order_no) = text("order_no") {
                state.engine.status.changed(order_no).await;
            }
        }
        _ => {}
    }
}

/// Puts the payment settings in the database in force; the home page shows them.
pub async fn reload_policy(state: &State) {
    match state.engine.policy.reload(&state.store).await {
        Ok(true) => {
            tracing::info!("payment settings changed; now in force");
            state.catalog.invalidate();
        }
        Ok(false) => {}
        // The previous policy stays; the next event or resync retries.
        Err(e) => tracing::warn!(error = %e, "cannot reload the payment settings; keeping the previous ones"),
    }
}

/// Keeps the rate limiters' memory to the clients seen lately, and hourly the sessions table
/// to sessions that may still be used, callback bodies and finished purpose steps to their
/// retention period and idempotency keys to their day.
async fn forget_idle_clients(state: Arc<State>) {
    let mut shutdown = state.shutdown.clone();
    let mut minutes = 0u32;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {
                state.limits.retain_recent();
                state.media.retain_recent();
            }
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        minutes += 1;
        if minutes.is_multiple_of(60) {
            match crate::account::users::purge_sessions(&state.store).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sessions = n, "removed ended sessions"),
                Err(e) => tracing::warn!(error = %e, "cannot remove ended sessions; retrying in an hour"),
            }
            let days = state.config.settings.payments.callback_retention_days;
            match crate::pay::retention::run_once(&state.store, days).await {
                Ok(purged) if purged == Default::default() => {}
                Ok(purged) => tracing::info!(
                    ?purged,
                    "purged callback bodies and finished purpose steps past retention, and expired idempotency keys"
                ),
                Err(e) => tracing::warn!(error = %e, "housekeeping failed; retrying in an hour"),
            }
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received; shutting down"),
        _ = int.recv() => tracing::info!("SIGINT received; shutting down"),
    }
}

fn instance_id() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    nanos ^ std::process::id().rotate_left(16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn sequence_numbers_are_unique_across_threads_and_never_cross_owners() {
        let counter = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || (0..3000).map(|_| take_sequence(&counter, 1)).collect::<Vec<_>>())
            })
            .collect();
        let mut seen = HashSet::new();
        for thread in threads {
            for n in thread.join().expect("a thread") {
                assert!(seen.insert(n), "{n} twice");
            }
        }
        assert_eq!(seen.len(), 12_000);

        // Another owner on the same thread draws from its own counter; coming back takes a
        // fresh block of the first owner's, never a number handed out before.
        let other = AtomicU64::new(0);
        let first = take_sequence(&counter, 1);
        assert!(seen.insert(first));
        assert_eq!(take_sequence(&other, 2), 0);
        assert_eq!(take_sequence(&other, 2), 1);
        let back = take_sequence(&counter, 1);
        assert!(seen.insert(back), "{back} twice");
        assert_eq!(back % SEQUENCE_BLOCK, 0, "a new block");
    }
}
