//! The node core as a phone's shell drives it, through uniffi (feature `ffi`): one
//! [`MobileNode`] object made from a state dir and [`NodeSettings`], with the shell's
//! capabilities (camera, location, notifications, speech, device info) as foreign traits, its
//! keychain as a [`SecretStore`], and its events through a [`NodeEventListener`].
//!
//! It is a thin layer over the library: pairing is [`crate::pair_with_gateway`] (the phone
//! dials the gateway and types the code the gateway shows), the link is
//! [`crate::run_dial_out`] (its backoff, jitter and network gate), the capabilities go into the
//! library's [`crate::Capabilities`] registry. Protocol, TLS, pairing, reconnects and routing
//! stay in Rust; the shell only does what only the phone can.
//!
//! The object owns its runtime: [`MobileNode::start`] makes a current-thread tokio runtime on a
//! thread of its own, [`MobileNode::stop`] ends every link, waits for that thread and the
//! runtime's blocking threads (the shell calls), and leaves no thread behind. Calls into the
//! object block the caller (the shell calls them off its UI thread); they never run on the
//! node's thread, so a shell's event callback must not call back into the object
//! synchronously (it is refused with [`NodeError::Runtime`]).

pub mod secrets;
pub mod shell;
pub mod types;

pub use secrets::SecretStore;
pub use shell::{
    CameraDevice, CameraProvider, DeviceInfo, DeviceInfoProvider, Location, LocationProvider,
    NodeEventListener, NotificationProvider, Photo, SpeechProvider,
};
pub use types::{
    GatewayInfo, GatewayStatus, LinkState, NodeError, NodeEvent, NodeSettings, NodeStatus,
    ShellError,
};

use crate::dial_out::{DialEvents, DialOut, run_dial_out};
use crate::server::Node;
use shell::Events;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// Where the gateways' addresses are kept (device id → `host:port`): pairing learns them, and
/// [`MobileNode::start`] dials each.
const ADDRESSES_FILE: &str = "gateway-addresses.json";
/// How long [`MobileNode::stop`] waits for a shell call still running on a blocking thread.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);
/// The name of the node's threads (its runtime and its blocking pool), so a leak is visible
/// in a thread list.
const THREAD_NAME: &str = "openclaw-node";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the shell implements; each is optional (a capability without one is not advertised).
#[derive(uniffi::Record)]
pub struct ShellCapabilities {
    pub camera: Option<Arc<dyn CameraProvider>>,
    pub location: Option<Arc<dyn LocationProvider>>,
    pub notifications: Option<Arc<dyn NotificationProvider>>,
    pub speech: Option<Arc<dyn SpeechProvider>>,
    pub device_info: Option<Arc<dyn DeviceInfoProvider>>,
}

impl std::fmt::Debug for ShellCapabilities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShellCapabilities")
            .field("camera", &self.camera.is_some())
            .field("location", &self.location.is_some())
            .field("notifications", &self.notifications.is_some())
            .field("speech", &self.speech.is_some())
            .field("device_info", &self.device_info.is_some())
            .finish()
    }
}

/// One gateway's link as the dial loop reports it.
#[derive(Debug, Clone)]
struct Link {
    state: LinkState,
    last_error: Option<String>,
}

type Links = Arc<Mutex<BTreeMap<String, Link>>>;

/// The dial loops' reports: into the status table and on to the shell.
#[derive(Debug)]
struct LinkEvents {
    events: Events,
    links: Links,
}

impl LinkEvents {
    fn set(&self, gateway: &str, state: LinkState, error: Option<&str>) {
        let mut links = lock(&self.links);
        let link = links.entry(gateway.to_owned()).or_insert(Link {
            state,
            last_error: None,
        });
        link.state = state;
        if let Some(e) = error {
            link.last_error = Some(e.to_owned());
        }
    }
}

impl DialEvents for LinkEvents {
    fn connecting(&self, gateway: &str) {
        self.set(gateway, LinkState::Connecting, None);
        self.events.send(NodeEvent::Connecting {
            gateway: gateway.to_owned(),
        });
    }

    fn connected(&self, gateway: &str) {
        self.set(gateway, LinkState::Connected, None);
        self.events.send(NodeEvent::Connected {
            gateway: gateway.to_owned(),
        });
    }

    fn disconnected(&self, gateway: &str, reason: &str) {
        self.set(gateway, LinkState::Waiting, Some(reason));
        self.events.send(NodeEvent::Disconnected {
            gateway: gateway.to_owned(),
            reason: reason.to_owned(),
        });
    }
}

/// The runtime while the node runs.
struct Running {
    handle: tokio::runtime::Handle,
    /// `true` ends the runtime's thread.
    stop: watch::Sender<bool>,
    thread: std::thread::JoinHandle<()>,
    /// One dial loop per gateway (by device id); dropping its sender ends it.
    dials: BTreeMap<String, oneshot::Sender<()>>,
}

/// The node, as the shell holds it.
#[derive(uniffi::Object)]
pub struct MobileNode {
    node: Arc<Node>,
    state_dir: PathBuf,
    settings: NodeSettings,
    events: Events,
    /// Device id → `host:port`, as [`ADDRESSES_FILE`] keeps it.
    addresses: Mutex<BTreeMap<String, String>>,
    links: Links,
    /// What the shell last said about the network; every dial loop watches it.
    network: watch::Sender<bool>,
    running: Mutex<Option<Running>>,
}

impl std::fmt::Debug for MobileNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MobileNode")
            .field("name", &self.settings.name)
            .finish()
    }
}

impl Drop for MobileNode {
    fn drop(&mut self) {
        self.stop();
    }
}

fn runtime_error(what: &str, e: impl std::fmt::Display) -> NodeError {
    NodeError::Runtime {
        reason: format!("cannot {what}: {e}"),
    }
}

/// Refuses a blocking call from inside a runtime (the node's own thread, from an event
/// callback): it would block that runtime on itself.
fn not_on_a_runtime(what: &str) -> Result<(), NodeError> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(NodeError::Runtime {
            reason: format!(
                "{what} blocks until done and cannot be called from the node's own thread (an event callback): call it from another thread"
            ),
        });
    }
    Ok(())
}

#[uniffi::export]
impl MobileNode {
    /// Opens (or creates on first run) the node kept in `state_dir`. Its device key is kept
    /// by `secrets` when given; else, on a desktop, in the OS keyring (the `keyring` crates),
    /// and where there is none in `state_dir/device.key` (mode 0600).
    #[uniffi::constructor]
    pub fn new(
        state_dir: String,
        settings: NodeSettings,
        capabilities: ShellCapabilities,
        secrets: Option<Arc<dyn SecretStore>>,
        events: Option<Arc<dyn NodeEventListener>>,
    ) -> Result<Arc<Self>, NodeError> {
        if settings.name.trim().is_empty() {
            return Err(NodeError::InvalidSettings {
                reason: "the node needs a name (what gateways show for it)".into(),
            });
        }
        if settings.min_backoff_ms == 0 || settings.min_backoff_ms > settings.max_backoff_ms {
            return Err(NodeError::InvalidSettings {
                reason: format!(
                    "the backoff must be 0 < min ({} ms) <= max ({} ms)",
                    settings.min_backoff_ms, settings.max_backoff_ms
                ),
            });
        }
        let events = Events(events);
        let shell = shell::Shell {
            camera: capabilities.camera,
            location: capabilities.location,
            notifications: capabilities.notifications,
            speech: capabilities.speech,
            device_info: capabilities.device_info,
        };
        let caps = shell::capabilities(shell, &events).map_err(|e| NodeError::InvalidSettings {
            reason: e.to_string(),
        })?;
        let state_dir = PathBuf::from(state_dir);
        let node = match secrets {
            Some(store) => Node::open_with_keys(
                state_dir.clone(),
                settings.name.clone(),
                caps,
                &secrets::ShellKeys(store),
            )?,
            None => Node::open(state_dir.clone(), settings.name.clone(), caps)?,
        };
        node.set_wakeable(settings.wakeable);
        let addresses = read_addresses(&state_dir)?;
        Ok(Arc::new(Self {
            node,
            state_dir,
            settings,
            events,
            addresses: Mutex::new(addresses),
            links: Links::default(),
            network: watch::Sender::new(true),
            running: Mutex::new(None),
        }))
    }

    /// Starts the node's runtime and dials every paired gateway whose address it knows, each
    /// again after a backoff when its link ends. Does nothing when it runs already.
    pub fn start(&self) -> Result<(), NodeError> {
        not_on_a_runtime("start")?;
        let mut running = lock(&self.running);
        if running.is_some() {
            return Ok(());
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name(THREAD_NAME)
            .build()
            .map_err(|e| runtime_error("start the node's runtime", e))?;
        let handle = runtime.handle().clone();
        let (stop, mut stopped) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || {
                runtime.block_on(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                });
                // Drops every task (each link's socket closes) and waits for the blocking
                // threads, a shell call still running included, up to the limit.
                runtime.shutdown_timeout(SHUTDOWN_WAIT);
            })
            .map_err(|e| runtime_error("start the node's thread", e))?;
        let mut run = Running {
            handle,
            stop,
            thread,
            dials: BTreeMap::new(),
        };
        let paired = self.node.paired_gateways();
        let addresses = lock(&self.addresses).clone();
        for (device_id, address) in addresses {
            if paired.iter().any(|g| g.device_id == device_id) {
                self.dial(&mut run, device_id, address);
            }
        }
        *running = Some(run);
        Ok(())
    }

    /// Ends every link and the node's runtime, and waits for its threads. Does nothing when it
    /// is not running.
    pub fn stop(&self) {
        let Some(run) = lock(&self.running).take() else {
            return;
        };
        drop(run.dials);
        let _ = run.stop.send(true);
        if run.thread.thread().id() == std::thread::current().id() {
            // Called from the node's own thread (an event callback): it ends by itself once
            // this callback returns; joining here would wait forever.
            return;
        }
        if run.thread.join().is_err() {
            tracing::warn!("the node's thread panicked while stopping");
        }
        for link in lock(&self.links).values_mut() {
            link.state = LinkState::Idle;
        }
    }

    /// Pairs with the gateway at `gateway` (`host:port`) by the 6-digit `code` it shows
    /// (`openclaw nodes pair --listen`), and, when the node runs, dials it at once. Blocks
    /// until done (10 s at most).
    pub fn pair(&self, gateway: String, code: String) -> Result<GatewayInfo, NodeError> {
        not_on_a_runtime("pair")?;
        // A runtime of its own, on this thread: pairing works whether the node runs or not.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| runtime_error("start a runtime for pairing", e))?;
        let paired =
            runtime.block_on(crate::pair_with_gateway(&self.node, &gateway, code.trim()))?;
        drop(runtime);
        {
            let mut addresses = lock(&self.addresses);
            addresses.insert(paired.device_id.clone(), gateway.clone());
            write_addresses(&self.state_dir, &addresses)?;
        }
        self.events.send(NodeEvent::Paired {
            gateway: gateway.clone(),
            name: paired.name.clone(),
            device_id: paired.device_id.clone(),
        });
        if let Some(run) = lock(&self.running).as_mut() {
            self.dial(run, paired.device_id.clone(), gateway.clone());
        }
        Ok(GatewayInfo {
            device_id: paired.device_id,
            name: paired.name,
            address: Some(gateway),
            paired_at: paired.paired_at,
        })
    }

    /// The gateways this node is paired with.
    pub fn paired_gateways(&self) -> Vec<GatewayInfo> {
        let addresses = lock(&self.addresses);
        self.node
            .paired_gateways()
            .into_iter()
            .map(|g| GatewayInfo {
                address: addresses.get(&g.device_id).cloned(),
                device_id: g.device_id,
                name: g.name,
                paired_at: g.paired_at,
            })
            .collect()
    }

    /// Forgets the gateway `device_id`: its link ends and it is refused from then on. False
    /// when it was not paired.
    pub fn forget_gateway(&self, device_id: String) -> Result<bool, NodeError> {
        let was = self.node.forget(&device_id).map_err(|e| NodeError::State {
            reason: format!("cannot forget the gateway in the state dir: {e}"),
        })?;
        let address = {
            let mut addresses = lock(&self.addresses);
            let address = addresses.remove(&device_id);
            write_addresses(&self.state_dir, &addresses)?;
            address
        };
        if let Some(run) = lock(&self.running).as_mut() {
            run.dials.remove(&device_id);
        }
        if let Some(address) = address {
            lock(&self.links).remove(&address);
        }
        Ok(was)
    }

    /// What the OS says about the network: while `available` is false the node does not
    /// dial; when it comes back every gateway is dialed at once.
    pub fn network_changed(&self, available: bool) {
        self.network.send_replace(available);
    }

    /// This node's device id (lowercase hex SHA-256 of its public key), as gateways list it.
    pub fn device_id(&self) -> String {
        self.node.identity().device_id()
    }

    pub fn status(&self) -> NodeStatus {
        let running = lock(&self.running).is_some();
        let links = lock(&self.links).clone();
        let gateways = self
            .paired_gateways()
            .into_iter()
            .map(|gateway| {
                let link = gateway.address.as_ref().and_then(|a| links.get(a));
                GatewayStatus {
                    state: match link {
                        Some(l) if running => l.state,
                        _ => LinkState::Idle,
                    },
                    last_error: link.and_then(|l| l.last_error.clone()),
                    gateway,
                }
            })
            .collect();
        NodeStatus {
            running,
            network_available: *self.network.borrow(),
            device_id: self.node.identity().device_id(),
            name: self.settings.name.clone(),
            capabilities: self.node.capabilities().advertised(),
            gateways,
        }
    }
}

impl MobileNode {
    /// Starts the dial loop to `address` for `device_id`, ending the one before it, if any.
    fn dial(&self, run: &mut Running, device_id: String, address: String) {
        let (cancel, cancelled) = oneshot::channel::<()>();
        let options = DialOut {
            min_backoff: Duration::from_millis(self.settings.min_backoff_ms),
            max_backoff: Duration::from_millis(self.settings.max_backoff_ms),
            network: Some(self.network.subscribe()),
            events: Some(Arc::new(LinkEvents {
                events: self.events.clone(),
                links: self.links.clone(),
            })),
            ..DialOut::new(address)
        };
        // Ends when its sender is dropped (stop, forget, a new pairing with the same gateway)
        // as well as when one is sent.
        let shutdown = async move {
            let _ = cancelled.await;
        };
        run.handle
            .spawn(run_dial_out(self.node.clone(), options, shutdown));
        run.dials.insert(device_id, cancel);
    }
}

fn read_addresses(state_dir: &std::path::Path) -> Result<BTreeMap<String, String>, NodeError> {
    let path = state_dir.join(ADDRESSES_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| NodeError::State {
            reason: format!(
                "{} is damaged ({e}); move it away and pair again",
                path.display()
            ),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(NodeError::State {
            reason: format!("cannot read {}: {e}", path.display()),
        }),
    }
}

fn write_addresses(
    state_dir: &std::path::Path,
    addresses: &BTreeMap<String, String>,
) -> Result<(), NodeError> {
    let path = state_dir.join(ADDRESSES_FILE);
    let tmp = state_dir.join(format!("{ADDRESSES_FILE}.tmp"));
    let bytes = serde_json::to_vec_pretty(addresses).map_err(|e| NodeError::State {
        reason: e.to_string(),
    })?;
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| NodeError::State {
            reason: format!("cannot write {}: {e}", path.display()),
        })
}

#[cfg(test)]
mod tests;
