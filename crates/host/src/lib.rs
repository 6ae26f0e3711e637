//! The embeddable host: everything that makes a gateway safe to run, in one library the
//! `openclaw` binary and the tray app both call. It claims the data dir (its lock, and the
//! roll-back of a restore that was killed half-way), loads the config with its environment
//! overrides, resolves the data layout (database, logs, audit log, models, backups), sets up
//! logging, sweeps what killed backups left, opens the store, binds the listener and starts the
//! gateway, handing back a [`Host`] whose [`GatewayHandle`] answers typed questions and whose
//! [`Host::shutdown`] returns once every task has ended and the data dir is free again.
//!
//! The binary keeps argument parsing, output and exit codes; this crate prints nothing (it
//! logs) and reads no arguments.

pub mod config_file;
pub mod layout;
pub mod logging;
pub mod paths;

pub use config_file::{LoadError, Loaded};
pub use layout::DataLayout;
pub use logging::LoggingError;
pub use openclaw_gateway::{
    AccessRefusal, ApprovalError, Approvals, GatewayEvent, GatewayHandle, HandleError,
    MessageOutcome, NodeStatus, PairError, PairRequest, PendingApproval, SenderAccess,
};

use openclaw_gateway::{AuditLog, BackupPlan, Options};
use openclaw_store::Store;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("cannot create data dir {}: {source}", path.display())]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("another gateway (or a restore) is using the data dir {}; see `openclaw status`", path.display())]
    Busy { path: PathBuf },
    #[error("cannot lock the data dir {}: {source}", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot roll back the interrupted restore in {}: {source}", path.display())]
    Recover {
        path: PathBuf,
        #[source]
        source: Box<openclaw_backup::Error>,
    },
    #[error("{0}")]
    Config(#[from] LoadError),
    #[error("gateway.host `{0}` is not an IP address")]
    BadHost(String),
    #[error("{0}")]
    Logging(#[from] LoggingError),
    #[error("cannot sweep the leftovers of interrupted backups: {0}")]
    Sweep(#[source] Box<openclaw_backup::Error>),
    #[error("cannot create database directory {}: {source}", path.display())]
    DatabaseDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Store(#[from] openclaw_store::Error),
    #[error(
        "cannot listen on {addr}: {source} (is another gateway running? try `openclaw status`, or pick another port with --port / OPENCLAW_PORT)"
    )]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Gateway(#[from] openclaw_gateway::Error),
}

impl HostError {
    /// The configuration is at fault (the binary exits with its config code, nothing started).
    pub fn is_config(&self) -> bool {
        matches!(self, Self::Config(_) | Self::BadHost(_))
    }
}

/// What to host.
#[derive(Debug, Clone)]
pub struct HostOptions {
    pub data_dir: PathBuf,
    /// The config file; `None` runs on the defaults (plus the environment's overrides).
    pub config_file: Option<PathBuf>,
    /// Replace `gateway.host` / `gateway.port` (the binary's `--host` / `--port`; the tray app
    /// and tests pass port 0 for a free one).
    pub host: Option<String>,
    pub port: Option<u16>,
    /// Install this crate's subscriber (stderr and the rotated log file); `false` when the
    /// embedder logs its own way. Once per process either way: see [`logging::init`].
    pub install_logging: bool,
    /// The embedder's routes (webhooks), served under `/hooks` (see
    /// [`openclaw_gateway::Options::routes`]).
    pub routes: Option<openclaw_gateway::Routes>,
    /// Where the first run's setup writes config when there is no `config_file` (the tray
    /// app's per-user file); `None` lets it write only to `config_file`.
    pub setup_config_file: Option<PathBuf>,
    /// The embedder restarts the gateway when config changes (see
    /// [`openclaw_gateway::Options::restarts_itself`]).
    pub restarts_itself: bool,
}

impl HostOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            config_file: None,
            host: None,
            port: None,
            install_logging: true,
            routes: None,
            setup_config_file: None,
            restarts_itself: false,
        }
    }
}

/// The data dir, claimed: created owner-only and locked for as long as this lives.
#[derive(Debug)]
pub struct Claim {
    data_dir: PathBuf,
    _lock: std::fs::File,
    rolled_back: bool,
    /// Why the data dir could not be made owner-only, if it could not (logged once logging
    /// is set up: claiming comes first).
    not_private: Option<std::io::Error>,
}

impl Claim {
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Whether an interrupted restore was found and rolled back while claiming.
    pub fn rolled_back_a_restore(&self) -> bool {
        self.rolled_back
    }
}

/// Creates and locks the data dir (one gateway per data dir, no restore under a running one),
/// then rolls back a restore that was killed half-way — before the config is read, since the
/// config file may be one it replaced.
pub fn claim_data_dir(data_dir: &Path) -> Result<Claim, HostError> {
    openclaw_fs::create_private_dirs(data_dir).map_err(|source| HostError::DataDir {
        path: data_dir.to_owned(),
        source,
    })?;
    // One made by an older version (or by hand) may be open to every user.
    let not_private = openclaw_fs::make_owner_only(data_dir).err();
    let lock = match paths::lock_data_dir(data_dir) {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            return Err(HostError::Busy {
                path: data_dir.to_owned(),
            });
        }
        Err(source) => {
            return Err(HostError::Lock {
                path: data_dir.join(".gateway.lock"),
                source,
            });
        }
    };
    let rolled_back =
        openclaw_backup::recover_interrupted(data_dir).map_err(|source| HostError::Recover {
            path: data_dir.to_owned(),
            source: Box::new(source),
        })?;
    Ok(Claim {
        data_dir: data_dir.to_owned(),
        _lock: lock,
        rolled_back,
        not_private,
    })
}

/// Everything up to serving, done without a runtime: the data dir claimed, config loaded,
/// logging set up, the store open and the port bound. [`Prepared::start`] serves it.
#[derive(Debug)]
pub struct Prepared {
    claim: Claim,
    loaded: Loaded,
    layout: DataLayout,
    listener: std::net::TcpListener,
    options: Options,
}

/// Claims, loads, sets up and binds (see [`Prepared`]).
pub fn prepare(opts: HostOptions) -> Result<Prepared, HostError> {
    let claim = claim_data_dir(&opts.data_dir)?;
    let mut loaded = config_file::load(opts.config_file.as_deref())?;
    if let Some(h) = opts.host {
        loaded.config.gateway.host = h;
    }
    if let Some(p) = opts.port {
        loaded.config.gateway.port = p;
    }
    let config = &loaded.config;
    let layout = DataLayout::resolve(claim.data_dir(), config);
    if opts.install_logging {
        logging::init(&config.logging, &layout.log_file)?;
    }
    if let Some(e) = &claim.not_private {
        tracing::warn!(dir = %claim.data_dir.display(), error = %e, "cannot make the data dir private (0700)");
    }
    if claim.rolled_back {
        tracing::warn!(
            "an interrupted restore was found and rolled back; the data is as it was before it"
        );
    }
    let backup_layout = layout.backup(loaded.file.clone(), None);
    layout::sweep_leftovers(&backup_layout).map_err(|e| HostError::Sweep(Box::new(e)))?;

    let ip: IpAddr = match config.gateway.host.as_str() {
        "localhost" => IpAddr::from([127, 0, 0, 1]),
        h => h.parse().map_err(|_| HostError::BadHost(h.to_owned()))?,
    };
    let addr = SocketAddr::new(ip, config.gateway.port);
    // Refuse before binding, so a refused bind never accepts a connection.
    openclaw_gateway::check_bind(addr, config)?;

    let store = if config.memory.persistence {
        openclaw_fs::create_private_dirs(&layout.db_dir).map_err(|source| {
            HostError::DatabaseDir {
                path: layout.db_dir.clone(),
                source,
            }
        })?;
        Store::open_in_dir(&layout.db_dir)?
    } else {
        Store::open_in_memory()?
    };
    let listener =
        std::net::TcpListener::bind(addr).map_err(|source| HostError::Listen { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| HostError::Listen { addr, source })?;

    let audit =
        AuditLog::new(layout.audit_file.clone()).with_rotation(openclaw_gateway::audit::Rotation {
            max_bytes: config.logging.max_size_mb.saturating_mul(1024 * 1024),
            keep: config.logging.max_files as usize,
        });
    let backup = config.backup.enabled.then(|| BackupPlan {
        layout: backup_layout,
        include: layout::backup_include(config),
        keep: config.backup.max_backups as usize,
    });
    let options = Options {
        backup,
        config: Arc::new(loaded.config.clone()),
        store: Arc::new(store),
        data_dir: claim.data_dir().to_owned(),
        audit,
        config_digest: loaded.digest(),
        routes: opts.routes,
        config_file: opts
            .config_file
            .clone()
            .or_else(|| opts.setup_config_file.clone()),
        // Reached on the first Settings call only (a headless server has none: the routes
        // then say to use environment variables).
        secrets: Some(Arc::new(openclaw_secrets::OsKeyring::default())),
        // The environment's (OPENCLAW_MODEL_INDEX) or PyPI, read when a fetch starts.
        model_index: None,
        restarts_itself: opts.restarts_itself,
    };
    Ok(Prepared {
        claim,
        loaded,
        layout,
        listener,
        options,
    })
}

impl Prepared {
    /// The bound address (the real port when port 0 was asked for).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    pub fn loaded(&self) -> &Loaded {
        &self.loaded
    }

    pub fn layout(&self) -> &DataLayout {
        &self.layout
    }

    /// Starts serving on the current tokio runtime (any flavour: the binary's one thread, the
    /// tray app's pool).
    pub fn start(self) -> Result<Host, HostError> {
        let listener = tokio::net::TcpListener::from_std(self.listener)
            .map_err(openclaw_gateway::Error::Io)?;
        let gateway = openclaw_gateway::Gateway::new(listener, self.options)?.start();
        let local = gateway.local_addr();
        tracing::info!(
            bind = %local,
            data_dir = %self.claim.data_dir().display(),
            config = %self.loaded.file.as_ref().map_or_else(|| "(defaults)".into(), |f| f.display().to_string()),
            version = env!("CARGO_PKG_VERSION"),
            "openclaw gateway listening on http://{local}"
        );
        Ok(Host {
            gateway,
            claim: self.claim,
        })
    }
}

/// Prepares and starts in one step (see [`prepare`] and [`Prepared::start`]).
pub fn start(opts: HostOptions) -> Result<Host, HostError> {
    prepare(opts)?.start()
}

/// A running gateway and the data dir it holds.
#[derive(Debug)]
pub struct Host {
    gateway: GatewayHandle,
    claim: Claim,
}

impl Host {
    pub fn gateway(&self) -> &GatewayHandle {
        &self.gateway
    }

    pub fn data_dir(&self) -> &Path {
        self.claim.data_dir()
    }

    /// Stops the gateway (see [`GatewayHandle::shutdown`]), then lets the data dir go: a
    /// restore, or the next gateway, may take it.
    pub async fn shutdown(self) {
        self.gateway.shutdown().await;
        drop(self.claim);
    }
}
