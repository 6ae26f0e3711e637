//! The gateway inside the app: the same host `openclaw gateway run` uses (data dir, config,
//! lock, logging), bound to loopback, on the app's one tokio runtime (which Tauri's own
//! async work shares), with this computer's node linked in-process.

use crate::local_node;
use anyhow::{Context, Result, anyhow};
use openclaw_host::{GatewayHandle, Host, HostError, HostOptions};
use std::path::PathBuf;

/// Where the app's gateway keeps its data: `OPENCLAW_DATA_DIR`, else the per-user data dir —
/// the one `openclaw gateway run` uses, so the CLI (`openclaw status`, `nodes`, `backup`)
/// works on the app's gateway too.
pub fn data_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("OPENCLAW_DATA_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    openclaw_host::paths::user_data_dir().ok_or_else(|| {
        anyhow!("cannot find a home directory for the data dir: set OPENCLAW_DATA_DIR")
    })
}

/// `OPENCLAW_CONFIG`, else the per-user config file when it exists (as `openclaw`).
pub fn config_file() -> Option<PathBuf> {
    std::env::var_os("OPENCLAW_CONFIG")
        .filter(|c| !c.is_empty())
        .map(PathBuf::from)
        .or_else(openclaw_host::paths::user_config_file)
}

/// The running gateway and this computer's node.
pub struct Embedded {
    host: Host,
    node_name: String,
    /// Links this computer's node, then serves it until the gateway's end closes. Off the
    /// start-up path: probing the desktop (speech-dispatcher is spawned on first contact) takes
    /// a second or more, and the window should not wait for it.
    node: tokio::task::JoinHandle<()>,
    /// Why the node could not be linked, once, for the tray to tell.
    node_error: Option<tokio::sync::oneshot::Receiver<String>>,
    /// Stops a link still being made when the gateway stops (it would wait on a gateway that
    /// is gone); a link made is served until the gateway's end closes.
    stop_linking: tokio::sync::oneshot::Sender<()>,
}

/// Why the app has no gateway, in words for its menu and notification.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "another OpenClaw gateway is using {0} (`openclaw gateway run`, or a restore): stop it, or set OPENCLAW_DATA_DIR to run the app on another data dir"
    )]
    DataDirInUse(String),
    #[error("the configuration is invalid ({0}); check it with `openclaw config validate`")]
    Config(String),
    #[error("{0}")]
    Other(String),
}

impl Embedded {
    /// Starts the host (on the current runtime) and links this computer's node to it.
    pub async fn start() -> Result<Self, StartError> {
        let data_dir = data_dir().map_err(|e| StartError::Other(format!("{e:#}")))?;
        let options = HostOptions {
            config_file: config_file(),
            // The app's gateway is for this computer: loopback whatever the config says
            // (a VPS runs `openclaw` for other machines).
            host: Some("127.0.0.1".into()),
            install_logging: true,
            // With no file yet, the first run's setup writes the per-user one, read from the
            // next start on.
            setup_config_file: openclaw_host::paths::user_config_path(),
            // The tray restarts its gateway on RestartNeeded (see tray.rs).
            restarts_itself: true,
            ..HostOptions::new(data_dir.clone())
        };
        let host = match openclaw_host::start(options) {
            Ok(h) => h,
            Err(HostError::Busy { path }) => {
                return Err(StartError::DataDirInUse(path.display().to_string()));
            }
            Err(e) if e.is_config() => return Err(StartError::Config(e.to_string())),
            Err(e) => return Err(StartError::Other(e.to_string())),
        };
        let node_name = local_node::host_name();
        let (error_tx, node_error) = tokio::sync::oneshot::channel();
        let (gateway, name) = (host.gateway().clone(), node_name.clone());
        let (stop_linking, stopped) = tokio::sync::oneshot::channel();
        let node = tokio::spawn(async move {
            let linked = tokio::select! {
                linked = local_node::link(&gateway, &data_dir, name) => linked,
                _ = stopped => return,
            };
            match linked {
                Ok(node) => node.stopped().await,
                Err(e) => {
                    let text = format!("cannot link this computer's node: {e:#}");
                    tracing::error!("{text}");
                    let _ = error_tx.send(text);
                }
            }
        });
        Ok(Self {
            host,
            node_name,
            node,
            node_error: Some(node_error),
            stop_linking,
        })
    }

    pub fn gateway(&self) -> &GatewayHandle {
        self.host.gateway()
    }

    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// Resolves with the reason when this computer's node could not be linked (a locked
    /// keyring holding its key, an unreadable state dir); given out once.
    pub fn take_node_error(&mut self) -> Option<tokio::sync::oneshot::Receiver<String>> {
        self.node_error.take()
    }

    /// The dashboard's address on loopback.
    pub fn dashboard_url(&self, page: &str) -> String {
        format!("http://{}/#{page}", self.gateway().local_addr())
    }

    /// Drains the gateway (answers in flight finish within `gateway.drain_timeout_seconds`),
    /// ends the node's link and lets the data dir go.
    pub async fn shutdown(self) {
        let _ = self.stop_linking.send(());
        self.host.shutdown().await;
        // A link made ends with the gateway's end.
        let _ = self.node.await;
    }
}

/// Makes the runtime the app runs on: one worker (the gateway is I/O-bound; the server runs on
/// one thread too) and a small blocking pool for SQLite and the node's captures.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(4)
        .thread_name("openclaw")
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
