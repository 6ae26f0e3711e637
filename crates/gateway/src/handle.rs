//! [`GatewayHandle`]: what an embedder (the `openclaw` binary, the tray app, a test) holds of a
//! running gateway. Typed questions and commands instead of the gateway's state, and a
//! shutdown that returns only once everything the gateway started has ended.

use crate::events::GatewayEvent;
use crate::node_pairing::{self, PairError, PairRequest};
use crate::node_router::NodeStatus;
use crate::{GatewayState, health};
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use openclaw_protocol::{HealthReport, StatusReport};
use openclaw_store::NodeRecord;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::{broadcast, watch};

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error("the gateway is shutting down")]
    ShuttingDown,
    #[error("{0}")]
    Pair(#[from] PairError),
    #[error("{0}")]
    Unavailable(String),
}

/// A running gateway. Clones share it; [`GatewayHandle::shutdown`] from any of them stops it.
#[derive(Clone)]
pub struct GatewayHandle {
    inner: Arc<Inner>,
}

struct Inner {
    state: Arc<GatewayState>,
    stop_tx: watch::Sender<bool>,
    /// The serving task: done once the listener is closed and every task has ended.
    served: Shared<BoxFuture<'static, ()>>,
}

impl std::fmt::Debug for GatewayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayHandle")
            .field("local_addr", &self.inner.state.local_addr)
            .finish_non_exhaustive()
    }
}

impl GatewayHandle {
    pub(crate) fn new(
        state: Arc<GatewayState>,
        stop_tx: watch::Sender<bool>,
        server: tokio::task::JoinHandle<()>,
    ) -> Self {
        let served = async move {
            if let Err(e) = server.await {
                tracing::error!(error = %e, "the gateway's serving task failed");
            }
        }
        .boxed()
        .shared();
        Self {
            inner: Arc::new(Inner {
                state,
                stop_tx,
                served,
            }),
        }
    }

    fn state(&self) -> &GatewayState {
        &self.inner.state
    }

    /// Where it listens (the real port when it was asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.state().local_addr
    }

    /// The token clients must send (configured, or generated in the data dir): for an
    /// embedder's own window.
    pub fn token(&self) -> &str {
        self.state().access.token()
    }

    /// The full health report (paths and addresses included), as `/health` with the token.
    pub async fn health(&self) -> HealthReport {
        health::build_report(self.state(), health::Detail::Full).await
    }

    /// The `openclaw status` document.
    pub async fn status(&self) -> Result<StatusReport, HandleError> {
        crate::status::status_report(self.state())
            .await
            .map_err(HandleError::Unavailable)
    }

    /// Paired nodes (and `device_nodes` entries never paired), preferred first.
    pub fn nodes(&self) -> Vec<NodeStatus> {
        self.state().nodes.statuses()
    }

    /// Pairs with the node showing `req.code` at `req.address`; it is connected and its
    /// capabilities are agent tools at once.
    pub async fn pair_node(&self, req: PairRequest) -> Result<NodeRecord, HandleError> {
        self.state().pair_node(&req).await
    }

    /// Shows a fresh 6-digit code, valid for `valid_for`, for a node to pair by from its side
    /// (`openclaw-node pair --gateway HOST:PORT --code NNNNNN`): for nodes that cannot be
    /// dialed. It replaces a code shown before. `name` and `priority` are how the node is kept.
    pub fn show_pairing_code(
        &self,
        valid_for: std::time::Duration,
        name: Option<String>,
        priority: i64,
    ) -> String {
        self.state().show_pairing_code(valid_for, name, priority)
    }

    /// This gateway's name, device id and public key: what a node trusts it by.
    pub async fn identity(&self) -> Result<(String, String, String), HandleError> {
        let key = self.state().gateway_key().await.map_err(PairError::from)?;
        Ok((
            self.state().config.agent.name.clone(),
            key.device_id(),
            key.public_key(),
        ))
    }

    /// Trusts a node inside the same program (the tray app's own node) without a code: the
    /// program holds both keys. It is kept like a node that dials in, and connected once its
    /// in-process link is attached ([`Self::attach_in_process_node`]). A node already kept
    /// with this key is left as it is (`Ok(None)`): the app trusts its node at every start, and
    /// that is no new pairing (no audit line, no "paired" event).
    pub async fn trust_local_node(
        &self,
        name: &str,
        public_key: &str,
        capabilities: Vec<String>,
        priority: i64,
    ) -> Result<Option<NodeRecord>, HandleError> {
        let device_id = openclaw_pairing::identity::device_id_of(public_key)
            .map_err(|e| PairError::BadKey(e.to_string()))?;
        if self.state().nodes.paired_key(&device_id).as_deref() == Some(public_key) {
            return Ok(None);
        }
        let identity = openclaw_pairing::PeerIdentity {
            name: name.to_owned(),
            public_key: public_key.to_owned(),
            cert_fingerprint: None,
            capabilities,
        };
        self.state()
            .keep_dialing_in_node(identity, None, priority)
            .await
            .map(Some)
    }

    /// Links a node running in this process over `link`, the gateway's end of
    /// `openclaw_node_link::duplex::pair` (the node serves the other end with
    /// `openclaw_node::serve_stream`): the same session a remote node has, authenticated the
    /// same way (the node challenges, the gateway proves its key), then routed like any node.
    pub async fn attach_in_process_node(
        &self,
        link: openclaw_node_link::duplex::InProcess,
        node_public_key: &str,
    ) -> Result<(), HandleError> {
        let state = self.state();
        let key = state.gateway_key().await.map_err(PairError::from)?;
        let mut config = openclaw_node_link::dial_out::gateway_config("in-process");
        config.tasks = Some(state.tasks.tracker());
        let peer = openclaw_node_link::connect(
            link,
            openclaw_node_link::Role::Gateway,
            &key,
            node_public_key,
            config,
            Arc::new(openclaw_node_link::NoRequests),
            std::time::Duration::from_secs(10),
        )
        .await
        .map_err(|e| HandleError::Unavailable(format!("the in-process node: {e}")))?;
        let described = crate::nodes::call(
            &peer,
            "in-process",
            openclaw_protocol::node::method::DESCRIBE,
            serde_json::Value::Null,
            std::time::Duration::from_secs(10),
        )
        .await
        .map_err(|e| HandleError::Unavailable(e.to_string()))?;
        let device_id = openclaw_pairing::identity::device_id_of(node_public_key)
            .map_err(|e| PairError::BadKey(e.to_string()))?;
        if state
            .nodes
            .attach_link(&device_id, peer, &described, "connected (in-process)")
        {
            Ok(())
        } else {
            Err(HandleError::Unavailable(
                "that node is not trusted: call trust_local_node first".into(),
            ))
        }
    }

    /// Forgets the node named `name` and closes its connection; `false` when there was none.
    pub async fn remove_node(&self, name: &str) -> Result<bool, HandleError> {
        self.state().remove_node(name).await
    }

    /// Health changes, nodes coming and going, chat activity. A health event follows soon
    /// after subscribing; ask [`Self::health`] for the whole report.
    pub fn subscribe(&self) -> broadcast::Receiver<GatewayEvent> {
        self.state().events.subscribe()
    }

    /// Runs a message through the agent like every way in (a channel driver inside the
    /// embedder uses this); the turn's events go to `on_event`.
    pub async fn accept(
        &self,
        msg: crate::InboundMessage,
        on_event: &mut (dyn FnMut(openclaw_agent::AgentEvent) + Send),
    ) -> Result<openclaw_agent::Reply, crate::conversation::TurnError> {
        self.state().accept(msg, on_event).await
    }

    /// Sends a message the assistant or the owner starts (see
    /// [`crate::conversation`]).
    pub async fn send_message(
        &self,
        msg: crate::OutboundMessage,
    ) -> Result<crate::Delivered, crate::OutboundError> {
        self.state().send(msg).await
    }

    /// Whether the first run's setup should be shown: no provider configured and no setup
    /// finished before (`GET /api/setup` says the same).
    pub fn setup_needed(&self) -> bool {
        crate::setup::needed(self.state())
    }

    /// A channel driver's report of its connection: health's `channels` check and `/api/status`
    /// show it, and a change is told as [`GatewayEvent::ChannelConnected`] or
    /// [`GatewayEvent::ChannelDisconnected`] (the tray app's notification). `false` when
    /// `channel` is not one config enables.
    pub fn report_channel(&self, channel: &str, connected: bool, detail: &str) -> bool {
        self.state().report_channel(channel, connected, detail)
    }

    /// Lets the gateway reach `channel`'s peers through `outlet` (a channel driver's send).
    pub fn add_outlet(&self, channel: &str, outlet: Arc<dyn crate::Outlet>) {
        self.state().conversations.add_outlet(channel, outlet);
    }

    /// Pauses the assistant (`true`: no message is answered on any way in, no device node is
    /// called, health says `paused`) or resumes it; `true` when that changed it.
    pub fn set_paused(&self, paused: bool) -> bool {
        self.state().set_paused(paused)
    }

    pub fn is_paused(&self) -> bool {
        self.state().pause.is_paused()
    }

    /// Whether a chat channel may answer `sender` (its platform id) on `channel`, under
    /// `security.pairing`: `open` (or pairing off) allows everyone; `allowlist` allows
    /// approved senders and refuses the rest without a code; `challenge` allows approved
    /// senders and hands anyone else a code for the owner to approve (the same code while it
    /// lives; none when the channel has 3 waiting). `name` is the platform's display name.
    pub async fn sender_access(
        &self,
        channel: &str,
        sender: &str,
        name: Option<&str>,
    ) -> Result<crate::SenderAccess, crate::ApprovalError> {
        self.state().sender_access(channel, sender, name).await
    }

    /// Codes waiting for the owner (expired ones are gone) and the approved senders.
    pub async fn approvals(&self) -> Result<crate::Approvals, crate::ApprovalError> {
        self.state().approvals().await
    }

    /// Approves the sender holding `code` on `channel`; it may talk from now on.
    pub async fn approve_sender(
        &self,
        channel: &str,
        code: &str,
    ) -> Result<openclaw_store::PairedSender, crate::ApprovalError> {
        self.state().approve_code(channel, code).await
    }

    /// Rejects `code` on `channel`: the code goes, its sender stays unknown.
    pub async fn reject_sender(
        &self,
        channel: &str,
        code: &str,
    ) -> Result<openclaw_store::PendingCode, crate::ApprovalError> {
        self.state().reject_code(channel, code).await
    }

    /// Forgets an approved sender: it is unknown again.
    pub async fn revoke_sender(
        &self,
        channel: &str,
        sender: &str,
    ) -> Result<openclaw_store::PairedSender, crate::ApprovalError> {
        self.state().revoke_sender(channel, sender).await
    }

    /// Tasks the gateway runs now (connections, node links, schedules): zero once stopped.
    pub fn running_tasks(&self) -> usize {
        self.state().tasks.len()
    }

    pub fn is_stopping(&self) -> bool {
        self.state().is_draining()
    }

    /// Stops accepting, lets open requests and sockets finish for at most
    /// `gateway.drain_timeout_seconds`, cuts the rest short, and returns when every task the
    /// gateway started has ended and the audit log is written: the port, the store and the
    /// data dir are free for the next gateway.
    pub async fn shutdown(&self) {
        let state = self.state();
        if !state.draining.swap(true, Ordering::Relaxed) {
            tracing::info!("shutting down: draining open requests and sockets");
            state.events.health_may_have_changed();
            let _ = self.inner.stop_tx.send(true);
        }
        self.inner.served.clone().await;
    }

    /// Completes once the gateway has stopped (by any clone's [`Self::shutdown`]).
    pub async fn stopped(&self) {
        self.inner.served.clone().await;
    }
}

impl GatewayState {
    /// [`GatewayHandle::set_paused`]: the switch, the audit line and the embedder's events.
    pub(crate) fn set_paused(&self, paused: bool) -> bool {
        let changed = self.pause.set(paused);
        if changed {
            let what = if paused {
                "assistant.paused"
            } else {
                "assistant.resumed"
            };
            self.audit.record(what, json!({}));
            tracing::info!(
                paused,
                "the owner {} the assistant",
                if paused { "paused" } else { "resumed" }
            );
            self.events.send(GatewayEvent::Paused { paused });
            self.events.health_may_have_changed();
        }
        changed
    }

    /// Pairs, keeps and connects a node (the control API and [`GatewayHandle::pair_node`]).
    pub(crate) async fn pair_node(&self, req: &PairRequest) -> Result<NodeRecord, HandleError> {
        if self.is_draining() {
            return Err(HandleError::ShuttingDown);
        }
        let key = self.gateway_key().await.map_err(PairError::from)?;
        let record = node_pairing::pair(
            self.store.clone(),
            &self.audit,
            &self.config.agent.name,
            &key,
            req,
            Some(&self.tasks),
        )
        .await?;
        self.serve_paired(&record, key);
        tracing::info!(name = %record.name, address = %record.address, "device node paired");
        Ok(record)
    }

    /// A node just paired: supervised (dialed, or waited for), its capabilities tools, the
    /// embedder told.
    fn serve_paired(&self, record: &NodeRecord, key: Arc<openclaw_pairing::identity::DeviceKey>) {
        self.nodes
            .add(record.clone(), &self.config, key, self.stop.clone());
        self.register_node_tools();
        self.events.send(GatewayEvent::NodePaired {
            name: record.name.clone(),
            id: record.id.clone(),
        });
    }

    /// Node capabilities become agent tools with the first node (a gateway without nodes
    /// offers the model no tools that could only fail).
    pub(crate) fn register_node_tools(&self) {
        let tools = crate::node_router::tools(&self.nodes);
        if tools.iter().all(|t| self.agent.tools().has(&t.spec().name)) {
            return;
        }
        for tool in tools {
            self.agent.register_tool(tool);
        }
        self.metrics.register_tools(&self.agent.tools().names());
    }

    pub(crate) fn show_pairing_code(
        &self,
        valid_for: std::time::Duration,
        name: Option<String>,
        priority: i64,
    ) -> String {
        let code = openclaw_pairing::new_code();
        let shown = crate::node_route::ShownCode {
            pending: openclaw_pairing::PendingCode::new(
                code.clone(),
                std::time::Instant::now(),
                valid_for,
            ),
            name,
            priority,
        };
        *self.pairing_code.lock().unwrap_or_else(|p| p.into_inner()) = Some(shown);
        self.audit.record(
            "node.pairing_code_shown",
            json!({"valid_seconds": valid_for.as_secs()}),
        );
        code
    }

    /// Keeps a node that paired by the shown code: it dials in (no address), so it is
    /// connected when it does; its capabilities are tools from now on.
    pub(crate) async fn keep_dialing_in_node(
        &self,
        node: openclaw_pairing::PeerIdentity,
        name: Option<String>,
        priority: i64,
    ) -> Result<NodeRecord, HandleError> {
        let id = openclaw_pairing::identity::device_id_of(&node.public_key)
            .map_err(|e| PairError::BadKey(e.to_string()))?;
        let record = NodeRecord {
            id: id.clone(),
            name: name.unwrap_or(node.name),
            address: String::new(),
            public_key: node.public_key,
            cert_fingerprint: node.cert_fingerprint.unwrap_or_default(),
            priority,
            capabilities: node.capabilities,
            paired_at: jiff::Timestamp::now().as_second(),
        };
        let (store, audit, kept) = (self.store.clone(), self.audit.clone(), record.clone());
        self.tasks
            .spawn_blocking(move || {
                store.upsert_node(&kept)?;
                let _ = audit.record_now(
                    "node.paired",
                    json!({"name": kept.name, "id": kept.id, "dials_in": true}),
                );
                Ok::<_, openclaw_store::Error>(())
            })
            .await
            .map_err(|e| HandleError::Unavailable(format!("store task failed: {e}")))?
            .map_err(|e| PairError::Store(e.to_string()))?;
        let key = self.gateway_key().await.map_err(PairError::from)?;
        self.serve_paired(&record, key);
        tracing::info!(name = %record.name, "device node kept (it links to this gateway itself)");
        Ok(record)
    }

    pub(crate) async fn remove_node(&self, name: &str) -> Result<bool, HandleError> {
        let (store, owned) = (self.store.clone(), name.to_owned());
        let stored = self
            .tasks
            .spawn_blocking(move || store.remove_node(&owned))
            .await
            .map_err(|e| HandleError::Unavailable(format!("store task failed: {e}")))?
            .map_err(|e| HandleError::Unavailable(e.to_string()))?;
        let linked = self.nodes.remove(name);
        if stored || linked {
            self.audit.record("node.removed", json!({"name": name}));
        }
        Ok(stored || linked)
    }
}
