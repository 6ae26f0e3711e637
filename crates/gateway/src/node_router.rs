//! Paired device nodes as the gateway uses them: one supervised link per node (pinned TLS,
//! mutual signatures, a keep-alive, reconnect with backoff), and routing of a capability to the
//! connected node with the lowest `priority` that advertises it, falling back to the next one on
//! a timeout or a dropped connection. Each capability is also an agent tool. Calls to one node
//! share its link and run concurrently (the keep-alive too): no call waits for another.
//!
//! A node that says it is wakeable (a phone, in `node.describe`) and is away is asleep, not
//! gone: a call that no connected node can serve waits for it, in a bounded set of waiting
//! calls, until it dials back in (the call is then delivered) or the call's deadline passes
//! (`NODE_ASLEEP`). A connected node that can serve the call is always tried first.

use crate::events::{Events, GatewayEvent};
use crate::metrics::Metrics;
use crate::nodes::{NodeConnection, NodeLinkError};
use crate::tasks::Tasks;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use openclaw_agent::tools::{Tool, ToolContext, ToolError, ToolErrorCode, ToolOutput};
use openclaw_agent::types::{Image, ToolSpec};
use openclaw_config::Config;
use openclaw_node_link::Peer;
use openclaw_pairing::identity::DeviceKey;
use openclaw_protocol::node::method;
use openclaw_store::NodeRecord;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const KEEPALIVE: Duration = Duration::from_secs(20);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a call waits for a sleeping node when it names no deadline of its own.
pub const SLEEPING_WAIT: Duration = CALL_TIMEOUT;
/// The longest a call may ask to wait for a sleeping node: longer asks are cut to it.
pub const MAX_SLEEPING_WAIT: Duration = Duration::from_secs(300);
/// Calls that may wait for sleeping nodes at once; more are refused (`UNAVAILABLE`,
/// retryable) rather than queued without end.
pub const MAX_WAITING: usize = 64;

/// A node's state, as `/health` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeStatus {
    pub name: String,
    pub address: String,
    pub priority: i64,
    pub connected: bool,
    pub capabilities: Vec<String>,
    pub detail: String,
}

struct Link {
    record: NodeRecord,
    /// The authenticated link while there is one; cloned out for each call, never held across
    /// one.
    conn: RwLock<Option<Peer>>,
    status: RwLock<NodeStatus>,
    /// Cancelled when the node is removed (or paired again) while the gateway runs.
    removed: CancellationToken,
    /// What the node said in its last `node.describe`: it sleeps and comes back.
    wakeable: AtomicBool,
}

impl Link {
    /// The stored link, ended or not: a call on an ended one fails at once and takes the
    /// failover path, which is how a dead node is seen between keep-alives.
    fn peer(&self) -> Option<Peer> {
        self.conn.read().ok().and_then(|c| c.clone())
    }

    fn attach(&self, peer: Peer) {
        if let Ok(mut c) = self.conn.write() {
            *c = Some(peer);
        }
    }

    /// Drops `peer` if it is still this node's link (a call and the supervisor may both see it
    /// fail) and closes it. True when it was.
    fn forget(&self, peer: &Peer) -> bool {
        peer.close();
        let Ok(mut c) = self.conn.write() else {
            return false;
        };
        if c.as_ref().is_some_and(|p| p.same_link(peer)) {
            *c = None;
            return true;
        }
        false
    }
}

/// What the router calls with the capability specs of a node that connected.
pub type SpecSink = Arc<dyn Fn(&[openclaw_protocol::node::CapabilitySpec]) + Send + Sync>;

/// Routes capability calls to paired nodes.
pub struct NodeRouter {
    /// Called with a node's capability specs when it connects (the gateway makes tools of
    /// those it has none for).
    on_specs: RwLock<Option<SpecSink>>,
    links: RwLock<Vec<Arc<Link>>>,
    /// `device_nodes` entries in config that were never paired: shown, never connected.
    unpaired: RwLock<Vec<NodeStatus>>,
    metrics: Arc<Metrics>,
    tasks: Tasks,
    events: Events,
    /// Counts nodes coming online: calls waiting for a sleeping node watch it.
    woke: watch::Sender<u64>,
    /// Calls waiting for a sleeping node now (at most [`MAX_WAITING`]).
    waiting: Arc<AtomicUsize>,
    /// While the owner has paused the assistant, no node is called.
    pause: crate::pause::Pause,
}

/// One of the [`MAX_WAITING`] places of a waiting call, given back when dropped.
struct WaitSlot(Arc<AtomicUsize>);

impl Drop for WaitSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl std::fmt::Debug for NodeRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeRouter").finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error(
        "no connected device node offers {0}: pair one (`openclaw nodes pair`) or check `openclaw health`"
    )]
    NoNode(String),
    /// The node answered with an error of its own (e.g. no camera): that is the answer.
    #[error("{node}: {message}")]
    Node {
        node: String,
        code: openclaw_protocol::ErrorCode,
        message: String,
    },
    /// Every node offering the method timed out or dropped the connection.
    #[error("{0}")]
    Failed(String),
    /// The owner paused the assistant: no node is called until it is resumed.
    #[error("{}", crate::pause::PAUSED_MESSAGE)]
    Paused,
}

impl NodeRouter {
    pub fn new(
        metrics: Arc<Metrics>,
        tasks: Tasks,
        events: Events,
        pause: crate::pause::Pause,
    ) -> Self {
        Self {
            on_specs: RwLock::new(None),
            links: RwLock::new(Vec::new()),
            unpaired: RwLock::new(Vec::new()),
            metrics,
            tasks,
            events,
            woke: watch::Sender::new(0),
            waiting: Arc::new(AtomicUsize::new(0)),
            pause,
        }
    }

    /// Installs what is called with a connecting node's capability specs.
    pub fn on_specs(&self, sink: SpecSink) {
        if let Ok(mut s) = self.on_specs.write() {
            *s = Some(sink);
        }
    }

    fn announce_specs(&self, description: &Value) {
        let specs: Vec<openclaw_protocol::node::CapabilitySpec> = description
            .get("specs")
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        if specs.is_empty() {
            return;
        }
        let sink = self.on_specs.read().ok().and_then(|s| s.clone());
        if let Some(sink) = sink {
            sink(&specs);
        }
    }

    /// The public key paired with the node of `device_id`, if one is paired (a node dialing in
    /// proves itself with it).
    pub fn paired_key(&self, device_id: &str) -> Option<String> {
        let links = self.links.read().ok()?;
        links
            .iter()
            .find(|l| l.record.id == device_id)
            .map(|l| l.record.public_key.clone())
    }

    /// A node that dialed in and proved itself: its link becomes the node's (replacing one the
    /// gateway dialed), described as `description`. `false` when no such node is paired.
    pub fn attach_dialed_in(&self, device_id: &str, peer: Peer, description: &Value) -> bool {
        self.attach_link(
            device_id,
            peer,
            description,
            "connected (the node dialed in)",
        )
    }

    /// A link made some other way (in-process) becomes the node's; see
    /// [`Self::attach_dialed_in`].
    pub fn attach_link(
        &self,
        device_id: &str,
        peer: Peer,
        description: &Value,
        detail: &str,
    ) -> bool {
        let link = self
            .links
            .read()
            .ok()
            .and_then(|l| l.iter().find(|l| l.record.id == device_id).cloned());
        let Some(link) = link else {
            peer.close();
            return false;
        };
        if let Some(old) = link.peer() {
            link.forget(&old);
        }
        link.wakeable
            .store(description["wakeable"] == true, Ordering::Relaxed);
        link.attach(peer);
        self.set(
            &link,
            true,
            Some(capabilities_of(description)),
            detail.into(),
        );
        self.announce_specs(description);
        true
    }

    /// Whether any node is paired (connected or not).
    pub fn has_links(&self) -> bool {
        self.links.read().map(|l| !l.is_empty()).unwrap_or(false)
    }

    pub fn statuses(&self) -> Vec<NodeStatus> {
        let links = self.links.read().map(|l| l.clone()).unwrap_or_default();
        let mut all: Vec<NodeStatus> = links
            .iter()
            .filter_map(|l| l.status.read().ok().map(|s| s.clone()))
            .collect();
        if let Ok(unpaired) = self.unpaired.read() {
            all.extend(unpaired.iter().cloned());
        }
        all
    }

    /// Records the `device_nodes` entries of `config` that no paired node matches by name.
    pub fn note_unpaired(&self, config: &Config, paired: &[NodeRecord]) {
        let unpaired = config
            .device_nodes
            .iter()
            .filter(|(name, _)| !paired.iter().any(|p| &p.name == *name))
            .map(|(name, c)| {
                let address = c.address();
                NodeStatus {
                    name: name.clone(),
                    detail: format!(
                        "in device_nodes but not paired: run `openclaw-node pair` on it, then `openclaw nodes pair {address} --code NNNNNN --name {name}`"
                    ),
                    address,
                    priority: i64::from(c.priority),
                    connected: false,
                    capabilities: c.capabilities.clone(),
                }
            })
            .collect();
        if let Ok(mut u) = self.unpaired.write() {
            *u = unpaired;
        }
    }

    /// Starts one supervisor per paired node; `device_nodes` in config overrides address and
    /// priority by name. Stops when `stop` turns true.
    pub fn start(
        self: &Arc<Self>,
        nodes: Vec<NodeRecord>,
        config: &Config,
        key: Arc<DeviceKey>,
        stop: watch::Receiver<bool>,
    ) {
        self.note_unpaired(config, &nodes);
        for record in nodes {
            self.add(record, config, key.clone(), stop.clone());
        }
    }

    /// Starts supervising one paired node (a node paired while the gateway runs: connected
    /// now, not at the next start). A node already known by id or name is replaced.
    pub fn add(
        self: &Arc<Self>,
        mut record: NodeRecord,
        config: &Config,
        key: Arc<DeviceKey>,
        stop: watch::Receiver<bool>,
    ) {
        if let Some(c) = config.device_nodes.get(&record.name) {
            record.address = c.address();
            record.priority = i64::from(c.priority);
        }
        let status = NodeStatus {
            name: record.name.clone(),
            address: record.address.clone(),
            priority: record.priority,
            connected: false,
            capabilities: record.capabilities.clone(),
            detail: "connecting".into(),
        };
        let link = Arc::new(Link {
            record,
            conn: RwLock::new(None),
            status: RwLock::new(status),
            removed: CancellationToken::new(),
            wakeable: AtomicBool::new(false),
        });
        if let Ok(mut links) = self.links.write() {
            links.retain(|l| {
                let same = l.record.id == link.record.id || l.record.name == link.record.name;
                if same {
                    l.removed.cancel();
                }
                !same
            });
            links.push(link.clone());
            links.sort_by_key(|l| l.record.priority);
        }
        if let Ok(mut u) = self.unpaired.write() {
            u.retain(|n| n.name != link.record.name);
        }
        let router = self.clone();
        self.tasks
            .spawn(async move { router.supervise(link, key, stop).await });
    }

    /// Stops supervising the node named `name` and closes its connection; `false` when no
    /// such node is paired.
    pub fn remove(&self, name: &str) -> bool {
        let removed: Vec<Arc<Link>> = match self.links.write() {
            Ok(mut links) => {
                let (gone, kept) = links.drain(..).partition(|l| l.record.name == name);
                *links = kept;
                gone
            }
            Err(_) => Vec::new(),
        };
        for link in &removed {
            link.removed.cancel();
            self.metrics.node_connected(&link.record.name, false);
            self.events.send(GatewayEvent::NodeRemoved {
                name: link.record.name.clone(),
            });
        }
        if !removed.is_empty() {
            self.events.health_may_have_changed();
        }
        !removed.is_empty()
    }

    fn set(&self, link: &Link, connected: bool, capabilities: Option<Vec<String>>, detail: String) {
        let mut changed = false;
        if let Ok(mut s) = link.status.write() {
            changed = s.connected != connected;
            s.connected = connected;
            if let Some(c) = capabilities {
                s.capabilities = c;
            }
            s.detail = detail;
            if changed {
                let name = link.record.name.clone();
                self.events.send(if connected {
                    GatewayEvent::NodeConnected {
                        name,
                        capabilities: s.capabilities.clone(),
                    }
                } else {
                    GatewayEvent::NodeDisconnected {
                        name,
                        detail: s.detail.clone(),
                    }
                });
            }
        }
        self.metrics.node_connected(&link.record.name, connected);
        if changed {
            self.events.health_may_have_changed();
            if connected {
                // Wakes the calls waiting for a sleeping node.
                self.woke.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }

    async fn supervise(
        &self,
        link: Arc<Link>,
        key: Arc<DeviceKey>,
        mut stop: watch::Receiver<bool>,
    ) {
        let removed = link.removed.clone();
        tokio::select! {
            () = removed.cancelled() => {}
            () = self.keep_connected(&link, &key, &mut stop) => {}
        }
        // Removed or stopping: close the link now, not when the last clone goes.
        if let Some(peer) = link.peer() {
            link.forget(&peer);
        }
    }

    async fn keep_connected(
        &self,
        link: &Arc<Link>,
        key: &DeviceKey,
        stop: &mut watch::Receiver<bool>,
    ) {
        let mut backoff = Duration::from_secs(1);
        loop {
            let peer = match link.peer().filter(|p| !p.is_closed()) {
                Some(peer) => peer,
                // A node without an address only dials in: wait for it.
                None if link.record.address.is_empty() => {
                    self.set(
                        link,
                        false,
                        None,
                        "waiting for the node to dial in (openclaw-node run --gateway)".into(),
                    );
                    tokio::select! {
                        () = crate::stopped(stop) => return,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    continue;
                }
                None => {
                    let attempt = async {
                        let mut conn = NodeConnection::open_in(
                            &link.record.address,
                            Some(link.record.cert_fingerprint.clone()),
                            Some(&self.tasks),
                        )
                        .await?;
                        conn.authenticate(key, &link.record.public_key).await?;
                        let d = conn.request(method::DESCRIBE, Value::Null).await?;
                        Ok::<_, NodeLinkError>((conn, d))
                    };
                    match attempt.await {
                        // A node that dials in may have done so meanwhile: its link stays.
                        Ok(_) if link.peer().is_some_and(|p| !p.is_closed()) => continue,
                        Ok((conn, d)) => {
                            let peer = conn.peer().clone();
                            link.wakeable
                                .store(d["wakeable"] == true, Ordering::Relaxed);
                            link.attach(peer.clone());
                            self.set(link, true, Some(capabilities_of(&d)), "connected".into());
                            self.announce_specs(&d);
                            backoff = Duration::from_secs(1);
                            peer
                        }
                        Err(e) => {
                            self.set(
                                link,
                                false,
                                None,
                                format!("disconnected: {e}; retrying in {} s", backoff.as_secs()),
                            );
                            let wait = backoff;
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                            tokio::select! {
                                () = crate::stopped(stop) => return,
                                () = tokio::time::sleep(wait) => {}
                            }
                            continue;
                        }
                    }
                }
            };
            tokio::select! {
                () = crate::stopped(stop) => return,
                () = tokio::time::sleep(KEEPALIVE) => {}
            }
            // Keep-alive: a describe on the link, beside any calls in flight; a failure drops
            // the link and the next turn of the loop reconnects.
            let alive = crate::nodes::call(
                &peer,
                &link.record.address,
                method::DESCRIBE,
                Value::Null,
                CALL_TIMEOUT,
            )
            .await;
            if alive.is_err() && link.forget(&peer) {
                self.set(
                    link,
                    false,
                    None,
                    "disconnected: keep-alive failed; reconnecting".into(),
                );
            }
        }
    }

    /// Calls `method` on the preferred connected node that offers it, then on the next ones;
    /// when none can, waits up to [`SLEEPING_WAIT`] for a sleeping one.
    pub async fn invoke(&self, method: &str, params: Value) -> Result<(String, Value), RouteError> {
        self.invoke_within(method, params, SLEEPING_WAIT).await
    }

    /// [`Self::invoke`], waiting up to `wait` for a sleeping (wakeable, disconnected) node that
    /// offers `method` when no connected one can serve it: the call is delivered when such a
    /// node dials back in, or fails `NODE_ASLEEP` at the deadline.
    pub async fn invoke_within(
        &self,
        method: &str,
        params: Value,
        wait: Duration,
    ) -> Result<(String, Value), RouteError> {
        self.invoke_on(None, method, params, wait).await
    }

    /// [`Self::invoke_within`] on the node named `node` only (the dashboard's "Screenshot" of
    /// one device), or on any when `None`.
    pub async fn invoke_on(
        &self,
        node: Option<&str>,
        method: &str,
        params: Value,
        wait: Duration,
    ) -> Result<(String, Value), RouteError> {
        let wait = wait.min(MAX_SLEEPING_WAIT);
        let deadline = tokio::time::Instant::now() + wait;
        let mut woke = self.woke.subscribe();
        let mut slot: Option<WaitSlot> = None;
        loop {
            // Marked before trying, so a node that comes online during the try wakes the wait.
            woke.borrow_and_update();
            let refused = match self.invoke_connected(node, method, params.clone()).await {
                Err(e @ (RouteError::NoNode(_) | RouteError::Failed(_))) => e,
                answered => return answered,
            };
            let sleeping = self.sleeping_for(node, method);
            if sleeping.is_empty() {
                return Err(refused);
            }
            let names = sleeping.join(", ");
            if slot.is_none() {
                if self.waiting.fetch_add(1, Ordering::AcqRel) >= MAX_WAITING {
                    self.waiting.fetch_sub(1, Ordering::AcqRel);
                    return Err(RouteError::Node {
                        node: names,
                        code: openclaw_protocol::ErrorCode::Unavailable,
                        message: format!(
                            "{MAX_WAITING} calls are already waiting for sleeping nodes; try again later"
                        ),
                    });
                }
                slot = Some(WaitSlot(self.waiting.clone()));
            }
            tokio::select! {
                changed = woke.changed() => if changed.is_err() { return Err(refused) },
                () = tokio::time::sleep_until(deadline) => {
                    return Err(RouteError::Node {
                        node: names.clone(),
                        code: openclaw_protocol::ErrorCode::NodeAsleep,
                        message: format!(
                            "{names} is asleep (a wakeable node, not connected) and did not come back within {} ms; {method} was not delivered",
                            wait.as_millis()
                        ),
                    });
                }
            }
        }
    }

    /// Names of the wakeable nodes that are away and last offered `method` (only `node`, if
    /// named).
    fn sleeping_for(&self, node: Option<&str>, method: &str) -> Vec<String> {
        let links = self.links.read().map(|l| l.clone()).unwrap_or_default();
        links
            .iter()
            .filter(|l| node.is_none_or(|n| l.record.name == n))
            .filter(|l| l.wakeable.load(Ordering::Relaxed))
            .filter(|l| {
                l.status
                    .read()
                    .map(|s| !s.connected && s.capabilities.iter().any(|c| c == method))
                    .unwrap_or(false)
            })
            .map(|l| l.record.name.clone())
            .collect()
    }

    /// Calls `method` on the preferred connected node that offers it, then on the next ones.
    async fn invoke_connected(
        &self,
        node: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<(String, Value), RouteError> {
        if self.pause.is_paused() {
            return Err(RouteError::Paused);
        }
        let links = self.links.read().map(|l| l.clone()).unwrap_or_default();
        let candidates: Vec<Arc<Link>> = links
            .into_iter()
            .filter(|l| node.is_none_or(|n| l.record.name == n))
            .filter(|l| {
                l.status
                    .read()
                    .map(|s| s.connected && s.capabilities.iter().any(|c| c == method))
                    .unwrap_or(false)
            })
            .collect();
        if candidates.is_empty() {
            return Err(RouteError::NoNode(match node {
                Some(n) => format!("{method} by the name `{n}`"),
                None => method.to_owned(),
            }));
        }
        let mut last = String::new();
        for link in candidates {
            let name = link.record.name.clone();
            let Some(peer) = link.peer() else { continue };
            // One deadline for the whole call (frames the node sends meanwhile do not extend it).
            match crate::nodes::call(
                &peer,
                &link.record.address,
                method,
                params.clone(),
                CALL_TIMEOUT,
            )
            .await
            {
                Ok(v) => {
                    self.metrics.node_invocation(&name, method, "success");
                    return Ok((name, v));
                }
                Err(e @ NodeLinkError::RequestTooLarge { .. }) => {
                    // Refused before sending: the call is at fault, not the node or its
                    // connection, and no other node would take it either.
                    self.metrics.node_invocation(&name, method, "error");
                    return Err(RouteError::Node {
                        node: name,
                        code: openclaw_protocol::ErrorCode::PayloadTooLarge,
                        message: e.to_string(),
                    });
                }
                Err(NodeLinkError::Refused {
                    code: Some(code),
                    message,
                    ..
                }) => {
                    // The node answered: its error is the answer (e.g. no camera). A socket
                    // closed mid-call (no code) falls through to the next node.
                    self.metrics.node_invocation(&name, method, "error");
                    return Err(RouteError::Node {
                        node: name,
                        code,
                        message,
                    });
                }
                Err(e) => last = format!("{name}: {e}"),
            }
            // Timed out or dropped: forget this link (its supervisor reconnects) and fall back
            // to the next node.
            link.forget(&peer);
            self.metrics.node_invocation(&name, method, "failover");
            self.set(&link, false, None, format!("disconnected: {last}"));
        }
        Err(RouteError::Failed(format!(
            "every node offering {method} failed; last: {last}"
        )))
    }
}

/// One capability as an agent tool.
pub struct NodeTool {
    pub router: Arc<NodeRouter>,
    pub name: String,
    pub method: String,
    pub description: String,
    pub parameters: Value,
}

impl Tool for NodeTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: self.name.clone(),
            description: self.description.clone(),
            parameters: self.parameters.clone(),
        }
    }

    fn timeout(&self) -> Option<Duration> {
        Some(CALL_TIMEOUT * 3)
    }

    fn call<'a>(
        &'a self,
        args: Value,
        _ctx: &'a ToolContext,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        async move {
            let (node, v) = self
                .router
                .invoke(&self.method, args)
                .await
                .map_err(tool_error)?;
            Ok(node_output(&node, v))
        }
        .boxed()
    }
}

/// The `capabilities` of a `node.describe` answer.
fn capabilities_of(description: &Value) -> Vec<String> {
    description["capabilities"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A node's answer as a tool's: an image (`{format, data, width, height}`, what
/// `screen.snapshot` and `camera.snap` return) goes to the model as a picture, not as base64
/// text that would flood its context; anything else is its JSON.
fn node_output(node: &str, v: Value) -> ToolOutput {
    if let (Some(format), Some(data)) = (v["format"].as_str(), v["data"].as_str()) {
        let media_type = match format {
            "jpg" | "jpeg" => "image/jpeg".to_owned(),
            other => format!("image/{other}"),
        };
        return ToolOutput {
            text: format!(
                "{node} returned a {}x{} {format} image",
                v["width"], v["height"]
            ),
            images: vec![Image {
                media_type,
                data: data.to_owned(),
            }],
        };
    }
    format!("{node}: {v}").into()
}

/// A routing failure as the model's tool error.
fn tool_error(e: RouteError) -> ToolError {
    use openclaw_protocol::ErrorCode;
    let code = match &e {
        RouteError::NoNode(_) => ToolErrorCode::Unavailable,
        RouteError::Node { code, .. } => match code {
            ErrorCode::InvalidRequest | ErrorCode::PayloadTooLarge => {
                ToolErrorCode::InvalidArguments
            }
            ErrorCode::Unavailable
            | ErrorCode::CameraUnavailable
            | ErrorCode::CapabilityUnavailable
            | ErrorCode::NodeAsleep => ToolErrorCode::Unavailable,
            ErrorCode::Forbidden | ErrorCode::Unauthorized | ErrorCode::NotPaired => {
                ToolErrorCode::Denied
            }
            _ => ToolErrorCode::Failed,
        },
        RouteError::Failed(_) => ToolErrorCode::Failed,
        RouteError::Paused => ToolErrorCode::Unavailable,
    };
    ToolError::new(code, e.to_string())
}

/// The agent tools for node capabilities.
pub fn tools(router: &Arc<NodeRouter>) -> Vec<Arc<dyn Tool>> {
    let tool = |name: &str, method: &str, description: &str, parameters| -> Arc<dyn Tool> {
        Arc::new(NodeTool {
            router: router.clone(),
            name: name.to_owned(),
            method: method.to_owned(),
            description: description.to_owned(),
            parameters,
        })
    };
    vec![
        tool(
            "take_screenshot",
            method::SCREEN_SNAPSHOT,
            "Take a screenshot on the user's preferred device (e.g. their Mac).",
            json!({"type": "object", "properties": {"display": {"type": "integer"}}}),
        ),
        tool(
            "take_photo",
            method::CAMERA_SNAP,
            "Take a photo with a camera on the user's device.",
            json!({"type": "object", "properties": {"index": {"type": "integer"}}}),
        ),
        tool(
            "send_notification",
            method::SYSTEM_NOTIFY,
            "Show a notification on the user's device.",
            json!({"type": "object", "properties": {"title": {"type": "string"}, "body": {"type": "string"}, "urgency": {"type": "string", "enum": ["low", "normal", "critical"]}}, "required": ["title"]}),
        ),
        tool(
            "speak",
            method::TTS_SPEAK,
            "Say something out loud on the user's device.",
            json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}),
        ),
    ]
}

/// The methods the gateway has tools of its own for (names and words chosen for models).
const BUILT_IN: [&str; 4] = [
    method::SCREEN_SNAPSHOT,
    method::CAMERA_SNAP,
    method::SYSTEM_NOTIFY,
    method::TTS_SPEAK,
];

/// The agent tool for a capability a node describes and the gateway knows nothing of (a
/// phone's `location.get`): named after its method (`location_get`: tool names take no dots),
/// with the node's description and schema. `None` for the built-in four (they have tools of
/// their own), and for a spec no provider would take (its schema must be a JSON object schema).
pub fn tool_for_spec(
    router: &Arc<NodeRouter>,
    spec: &openclaw_protocol::node::CapabilitySpec,
) -> Option<Arc<dyn Tool>> {
    if BUILT_IN.contains(&spec.name.as_str()) || spec.name.starts_with("node.") {
        return None;
    }
    let name = spec.name.replace('.', "_");
    let valid_name = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid_name || spec.parameters.get("type").and_then(Value::as_str) != Some("object") {
        tracing::warn!(capability = %spec.name, "a node's capability is not offered as a tool: its name or parameter schema does not fit a tool");
        return None;
    }
    Some(Arc::new(NodeTool {
        router: router.clone(),
        name,
        method: spec.name.clone(),
        description: format!("{} (on the user's device)", spec.description.trim()),
        parameters: spec.parameters.clone(),
    }))
}

#[cfg(test)]
mod sleeping_tests {
    //! Calls for a sleeping node without sockets: the router's waiting and its bound. A node
    //! coming back and being served is `tests/tests/mobile_ffi.rs` (a real phone shell).
    use super::*;

    fn router_with_sleeping(method: &str) -> Arc<NodeRouter> {
        let router = Arc::new(NodeRouter::new(
            Arc::new(Metrics::new(0.0, &[], &[])),
            Tasks::new(),
            Events::new(),
            crate::pause::Pause::default(),
        ));
        let record = NodeRecord {
            id: "ab".repeat(32),
            name: "phone".into(),
            address: String::new(),
            public_key: String::new(),
            cert_fingerprint: String::new(),
            priority: 1,
            capabilities: vec![method.to_owned()],
            paired_at: 0,
        };
        let link = Arc::new(Link {
            status: RwLock::new(NodeStatus {
                name: record.name.clone(),
                address: String::new(),
                priority: 1,
                connected: false,
                capabilities: vec![method.to_owned()],
                detail: "away".into(),
            }),
            record,
            conn: RwLock::new(None),
            removed: CancellationToken::new(),
            wakeable: AtomicBool::new(true),
        });
        router.links.write().unwrap().push(link);
        router
    }

    #[tokio::test]
    async fn a_call_for_a_sleeping_node_waits_its_deadline_then_fails_node_asleep() {
        let router = router_with_sleeping("camera.snap");
        let t = tokio::time::Instant::now();
        let err = router
            .invoke_within("camera.snap", Value::Null, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(t.elapsed() >= Duration::from_millis(300));
        assert!(
            matches!(&err, RouteError::Node { code: openclaw_protocol::ErrorCode::NodeAsleep, node, .. } if node == "phone"),
            "{err}"
        );
        // Nothing sleeping offers this one: no wait at all.
        let t = tokio::time::Instant::now();
        let err = router
            .invoke_within("screen.snapshot", Value::Null, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, RouteError::NoNode(_)), "{err}");
        assert!(t.elapsed() < Duration::from_secs(1));
        // A desktop node (not wakeable) that is away is gone, not asleep.
        router.links.read().unwrap()[0]
            .wakeable
            .store(false, Ordering::Relaxed);
        let err = router
            .invoke_within("camera.snap", Value::Null, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, RouteError::NoNode(_)), "{err}");
    }

    #[tokio::test]
    async fn at_most_max_waiting_calls_wait_and_the_next_is_refused_at_once() {
        let router = router_with_sleeping("location.get");
        let mut waiting = Vec::new();
        for _ in 0..MAX_WAITING {
            let router = router.clone();
            waiting.push(tokio::spawn(async move {
                router
                    .invoke_within("location.get", Value::Null, Duration::from_secs(2))
                    .await
            }));
        }
        while router.waiting.load(Ordering::Acquire) < MAX_WAITING {
            tokio::task::yield_now().await;
        }
        let t = tokio::time::Instant::now();
        let err = router
            .invoke_within("location.get", Value::Null, Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(t.elapsed() < Duration::from_millis(500));
        assert!(
            matches!(
                &err,
                RouteError::Node {
                    code: openclaw_protocol::ErrorCode::Unavailable,
                    ..
                }
            ),
            "{err}"
        );
        for w in waiting {
            let err = w.await.unwrap().unwrap_err();
            assert!(
                matches!(
                    &err,
                    RouteError::Node {
                        code: openclaw_protocol::ErrorCode::NodeAsleep,
                        ..
                    }
                ),
                "{err}"
            );
        }
        // Every place was given back.
        assert_eq!(router.waiting.load(Ordering::Acquire), 0);
    }
}
