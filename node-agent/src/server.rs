//! The node's listener: TLS, then the WebSocket framing of the gateway protocol. A connection
//! either pairs (`pair.start` / `pair.confirm` with the code the node shows) or authenticates as
//! a paired gateway (`connect`: mutual signed nonces), then calls node methods.
//!
//! What a connection may do before it authenticates is decided by [`Conversation`], which does
//! no I/O: it takes one text frame and says what to answer and whether to go on, so the rules
//! (what a stranger may ask, when a connection is closed) are tested, and fuzzed, without
//! sockets. The async loop around it owns the socket, the deadlines and the connection budgets
//! ([`crate::gate`]). Once a gateway has authenticated, the connection becomes a node link
//! (`openclaw-node-link`): its calls are served concurrently, each in a task of its own.

use crate::capabilities::Capabilities;
use crate::gate::{AuthSlot, Gate, Limits, PreAuthSlot};
use crate::identity::NodeIdentity;
use futures_util::future::BoxFuture;
use openclaw_node_link::codec::{self, Read};
use openclaw_node_link::{Challenger, Handler, Peer, PeerConfig, Role};
use openclaw_pairing::identity::device_id_of;
use openclaw_pairing::{
    Attempt, Confirm, ConfirmReply, NodeConfirming, PairingError, PeerIdentity, PendingCode, Start,
    StartReply,
};
use openclaw_protocol::node::{MAX_REQUEST_BYTES, NodeConnect, NodeDescription, method};
use openclaw_protocol::{ErrorCode, ErrorShape, Frame, Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const PAIRED_FILE: &str = "gateways.json";

/// A gateway this node is paired with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairedGateway {
    pub device_id: String,
    pub name: String,
    pub public_key: String,
    pub paired_at: i64,
}

/// Everything the server needs, shared by its connections.
pub struct Node {
    identity: NodeIdentity,
    name: String,
    /// Where paired gateways are kept; `None` for a throwaway node ([`Node::ephemeral`]).
    state_dir: Option<PathBuf>,
    capabilities: Arc<Capabilities>,
    pending: Mutex<Option<PendingCode>>,
    paired: Mutex<Vec<PairedGateway>>,
    /// Told to gateways in `node.describe`: see [`Node::set_wakeable`].
    wakeable: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("name", &self.name).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Node {
    /// Loads (or creates) the node in `state_dir`, its device key in the OS keyring or in the
    /// state dir as `OPENCLAW_KEY_STORE` chooses ([`crate::device_keys`]). The keyring is only
    /// asked when there is no `device.key`, with a bounded wait: call it off an async runtime's
    /// worker.
    pub fn open(
        state_dir: PathBuf,
        name: String,
        capabilities: Capabilities,
    ) -> Result<Arc<Self>, crate::NodeError> {
        let keys = crate::device_keys::DesktopKeyStore::new(
            &state_dir,
            crate::device_keys::KeyStoreChoice::from_env()?,
            openclaw_secrets::OsKeyring::default(),
        );
        Self::open_with_keys(state_dir, name, capabilities, &keys)
    }

    /// Loads (or creates) the node in `state_dir`, its device key kept by `keys` (a phone's
    /// keychain) instead of a file.
    pub fn open_with_keys(
        state_dir: PathBuf,
        name: String,
        capabilities: Capabilities,
        keys: &dyn crate::identity::KeyStore,
    ) -> Result<Arc<Self>, crate::NodeError> {
        let identity = NodeIdentity::load_or_create_with(&state_dir, keys)?;
        let path = state_dir.join(PAIRED_FILE);
        let paired = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| crate::NodeError::Damaged {
                path: path.clone(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(crate::NodeError::Io {
                    what: "cannot read",
                    path,
                    source,
                });
            }
        };
        Ok(Arc::new(Self {
            identity,
            name,
            state_dir: Some(state_dir),
            capabilities: Arc::new(capabilities),
            pending: Mutex::new(None),
            paired: Mutex::new(paired),
            wakeable: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// A node that keeps nothing on disk: a fresh identity, paired gateways in memory only. For
    /// fuzz targets and tests that need a node but no state dir.
    pub fn ephemeral(
        name: String,
        capabilities: Capabilities,
    ) -> Result<Arc<Self>, crate::NodeError> {
        Ok(Arc::new(Self {
            identity: NodeIdentity::ephemeral()?,
            name,
            state_dir: None,
            capabilities: Arc::new(capabilities),
            pending: Mutex::new(None),
            paired: Mutex::new(Vec::new()),
            wakeable: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    pub fn identity(&self) -> &NodeIdentity {
        &self.identity
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// Shows a fresh pairing code, valid for `valid_for`; returns it. It replaces any code shown
    /// before: an attempt in flight under the old code can no longer confirm.
    pub fn new_pairing_code(&self, valid_for: Duration) -> String {
        let code = openclaw_pairing::new_code();
        *lock(&self.pending) = Some(PendingCode::new(code.clone(), Instant::now(), valid_for));
        code
    }

    pub fn paired_gateways(&self) -> Vec<PairedGateway> {
        lock(&self.paired).clone()
    }

    /// Trusts `gateway` without a pairing code: for a node inside the same program as its
    /// gateway (the tray app's own node), where the program holds both keys already.
    pub fn trust_gateway(&self, gateway: PairedGateway) -> std::io::Result<()> {
        self.remember(gateway)
    }

    pub(crate) fn remember(&self, gateway: PairedGateway) -> std::io::Result<()> {
        let mut paired = lock(&self.paired);
        paired.retain(|g| g.device_id != gateway.device_id);
        paired.push(gateway);
        self.save(&paired)
    }

    /// Forgets the paired gateway `device_id`: it is refused from its next connection on. True
    /// when it was paired.
    pub fn forget(&self, device_id: &str) -> std::io::Result<bool> {
        let mut paired = lock(&self.paired);
        let before = paired.len();
        paired.retain(|g| g.device_id != device_id);
        if paired.len() == before {
            return Ok(false);
        }
        self.save(&paired).map(|()| true)
    }

    fn save(&self, paired: &[PairedGateway]) -> std::io::Result<()> {
        let Some(dir) = &self.state_dir else {
            return Ok(());
        };
        let tmp = dir.join(format!("{PAIRED_FILE}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(paired).unwrap_or_default())?;
        std::fs::rename(&tmp, dir.join(PAIRED_FILE))
    }

    fn describe(&self) -> NodeDescription {
        NodeDescription {
            id: self.identity.device_id(),
            name: self.name.clone(),
            platform: std::env::consts::OS.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            capabilities: self.capabilities.advertised(),
            unavailable: self.capabilities.unavailable(),
            specs: self.capabilities.specs(),
            wakeable: self.wakeable.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Says the node sleeps and comes back (a phone): gateways then hold a call for it while
    /// it is away, up to the call's deadline, instead of failing it at once.
    pub fn set_wakeable(&self, wakeable: bool) {
        self.wakeable
            .store(wakeable, std::sync::atomic::Ordering::Relaxed);
    }

    /// The name this node shows gateways.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What this node tells a gateway it pairs with.
    pub(crate) fn my_identity(&self) -> PeerIdentity {
        PeerIdentity {
            name: self.name.clone(),
            public_key: self.identity.key().public_key(),
            cert_fingerprint: Some(self.identity.cert_fingerprint()),
            capabilities: self.capabilities.advertised(),
        }
    }
}

/// The WebSocket limits of the node's port: one message, in one frame or several, of at most
/// [`MAX_REQUEST_BYTES`]. A frame whose header announces more is refused as soon as the header
/// is read, before any of its payload is buffered; a message that grows past it in small frames
/// is refused when it does.
pub fn websocket_config() -> WebSocketConfig {
    codec::websocket_config(MAX_REQUEST_BYTES)
        // Requests are small: one TLS record's worth of read buffer per connection instead of
        // the default 128 KiB.
        .read_buffer_size(16 * 1024)
}

/// Serves `node` on `listener` until `shutdown` completes, without tailnet checks.
pub async fn serve(
    listener: TcpListener,
    node: Arc<Node>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), crate::NodeError> {
    serve_guarded(listener, node, crate::PeerGuard::off(), shutdown).await
}

/// Serves `node`, letting in only the peers `guard` accepts, with the default [`Limits`].
pub async fn serve_guarded(
    listener: TcpListener,
    node: Arc<Node>,
    guard: crate::PeerGuard,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), crate::NodeError> {
    serve_with_limits(listener, node, guard, Limits::default(), shutdown).await
}

/// Serves `node` with the given time and connection limits.
pub async fn serve_with_limits(
    listener: TcpListener,
    node: Arc<Node>,
    guard: crate::PeerGuard,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), crate::NodeError> {
    let guard = Arc::new(guard);
    let gate = Gate::new(limits);
    let acceptor = tokio_rustls::TlsAcceptor::from(node.identity.tls_server_config()?);
    tokio::pin!(shutdown);
    loop {
        let (tcp, remote) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    // Out of file descriptors, typically: retrying at once would spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let slot = match gate.admit(remote.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                if gate.should_log_refusal(Instant::now()) {
                    tracing::warn!(
                        "refused {remote}: {} (further refusals for 10 s are not logged)",
                        why.describe(gate.limits())
                    );
                }
                // Closed before anything is read: the refusal costs no buffer and no TLS.
                drop(tcp);
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, node, guard, gate) =
            (acceptor.clone(), node.clone(), guard.clone(), gate.clone());
        tokio::spawn(async move {
            connection(tcp, remote, acceptor, node, guard, gate, slot).await;
        });
    }
}

/// Serves `node` on one WebSocket that is already open: an in-process link (the tray app's own
/// node, `openclaw_node_link::duplex`), or a connection some other transport made. The session
/// is the one a remote gateway gets (challenge, pairing or `connect`, then the link) under
/// `limits`, with budgets of its own. Returns when the session ends.
pub async fn serve_stream<S>(ws: WebSocketStream<S>, node: Arc<Node>, limits: Limits)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let auth_deadline = tokio::time::Instant::now() + limits.auth_deadline;
    let gate = Gate::new(limits);
    // An in-process peer has no address; the loopback one stands for "this program".
    let here = SocketAddr::from(([127, 0, 0, 1], 0));
    let Ok(slot) = gate.admit(here.ip()) else {
        return;
    };
    session(ws, node, here, gate, slot, auth_deadline).await;
}

/// One accepted connection: tailnet check, TLS and WebSocket upgrade within
/// [`Limits::handshake`], then the session.
async fn connection(
    tcp: tokio::net::TcpStream,
    remote: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    node: Arc<Node>,
    guard: Arc<crate::PeerGuard>,
    gate: Arc<Gate>,
    slot: PreAuthSlot,
) {
    let accepted = tokio::time::Instant::now();
    let limits = gate.limits().clone();
    let upgrade = async {
        guard.check(remote).await.map_err(Some)?;
        let tls = acceptor.accept(tcp).await.map_err(|_| None::<String>)?;
        tokio_tungstenite::accept_hdr_async_with_config(
            tls,
            refuse_browsers,
            Some(websocket_config()),
        )
        .await
        .map_err(|_| None::<String>)
    };
    let ws = match tokio::time::timeout(limits.handshake, upgrade).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(Some(why))) => {
            tracing::warn!("refused a connection: {why}");
            return;
        }
        // A failed or stalled handshake: dropping the socket is all there is to do.
        Ok(Err(None)) | Err(_) => return,
    };
    session(
        ws,
        node,
        remote,
        gate,
        slot,
        accepted + limits.auth_deadline,
    )
    .await;
}

/// Refuses an upgrade that carries `Origin`: only browsers send it, and no web page is ever a
/// node's peer (gateways send none), so a page that got past TLS still gets no WebSocket.
#[allow(clippy::result_large_err)] // the callback's type is tungstenite's
fn refuse_browsers(
    req: &tokio_tungstenite::tungstenite::handshake::server::Request,
    res: tokio_tungstenite::tungstenite::handshake::server::Response,
) -> Result<
    tokio_tungstenite::tungstenite::handshake::server::Response,
    tokio_tungstenite::tungstenite::handshake::server::ErrorResponse,
> {
    if req.headers().contains_key("origin") {
        let mut refusal = tokio_tungstenite::tungstenite::handshake::server::ErrorResponse::new(
            Some("a device node takes no connections from web pages".into()),
        );
        *refusal.status_mut() = tokio_tungstenite::tungstenite::http::StatusCode::FORBIDDEN;
        return Err(refusal);
    }
    Ok(res)
}

/// Sends `frame` by `by`; false when the connection is gone or too slow.
async fn send_by<S>(ws: &mut WebSocketStream<S>, frame: &Frame, by: tokio::time::Instant) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    codec::send(ws, frame, by).await.is_ok()
}

async fn session<S>(
    mut ws: WebSocketStream<S>,
    node: Arc<Node>,
    remote: SocketAddr,
    gate: Arc<Gate>,
    slot: PreAuthSlot,
    auth_deadline: tokio::time::Instant,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = gate.limits().clone();
    let mut conversation = Conversation::new(node.clone());
    let mut pre_auth = Some(slot);
    if !send_by(&mut ws, &conversation.challenge(), auth_deadline).await {
        return;
    }
    // Until a gateway authenticates: one frame at a time, under the pre-auth deadlines.
    let authenticated: AuthSlot = loop {
        let now = tokio::time::Instant::now();
        let (until, why) = {
            let idle = now + limits.pre_auth_idle;
            let pairing = conversation
                .pairing_deadline()
                .map(tokio::time::Instant::from_std);
            if pairing.is_some_and(|p| p <= idle.min(auth_deadline)) {
                (
                    pairing.unwrap_or(idle),
                    "the pairing attempt timed out".to_owned(),
                )
            } else if auth_deadline <= idle {
                (
                    auth_deadline,
                    format!(
                        "not authenticated within {} s of connecting",
                        limits.auth_deadline.as_secs()
                    ),
                )
            } else {
                (
                    idle,
                    format!(
                        "no request for {} s before authenticating",
                        limits.pre_auth_idle.as_secs()
                    ),
                )
            }
        };
        let text = match tokio::time::timeout_at(until, codec::read_text(&mut ws)).await {
            Ok(Read::Text(t)) => t,
            Ok(Read::TooBig) => {
                codec::close(
                    &mut ws,
                    CloseCode::Size,
                    &format!("a message to this node is at most {MAX_REQUEST_BYTES} bytes"),
                )
                .await;
                return;
            }
            Ok(Read::Closed(_) | Read::Failed(_)) => return,
            Err(_) => {
                codec::close(&mut ws, CloseCode::Policy, &why).await;
                return;
            }
        };
        let send_deadline = auth_deadline;
        match conversation.on_text(&text) {
            Step::Reply(res) => {
                if !send_by(&mut ws, &Frame::Res(res), send_deadline).await {
                    return;
                }
            }
            Step::Close(res, closing) => {
                match closing {
                    Closing::Paired => gate.learn(remote.ip()),
                    // Every failed confirmation is logged (a code allows three); the other
                    // refusals cost a stranger nothing, so they are logged at a bounded rate.
                    Closing::PairingFailed => tracing::warn!(
                        "pairing from {remote} failed: {}",
                        res.error.as_ref().map_or("", |e| e.message.as_str())
                    ),
                    Closing::PairingRefused | Closing::NotPaired | Closing::Malformed => {
                        if gate.should_log_refusal(Instant::now()) {
                            tracing::warn!(
                                "refused {remote}: {} (further refusals for 10 s are not logged)",
                                res.error
                                    .as_ref()
                                    .map_or(closing.reason(), |e| e.message.as_str())
                            );
                        }
                    }
                }
                let _ = send_by(&mut ws, &Frame::Res(res), send_deadline).await;
                codec::close(&mut ws, closing.code(), closing.reason()).await;
                return;
            }
            Step::Authenticated(res) => {
                let Some(slot) = pre_auth.take() else {
                    return;
                };
                let slot = match gate.promote(slot) {
                    Ok(a) => a,
                    Err(why) => {
                        let message = why.describe(gate.limits());
                        let refusal = Response::err(&res.id, err(ErrorCode::Unavailable, &message));
                        let _ = send_by(&mut ws, &Frame::Res(refusal), send_deadline).await;
                        codec::close(&mut ws, CloseCode::Again, "too many gateway connections")
                            .await;
                        return;
                    }
                };
                if !send_by(&mut ws, &Frame::Res(res), send_deadline).await {
                    return;
                }
                break slot;
            }
            // Calls come only after authentication, which leaves this loop.
            Step::Invoke(_) => return,
        }
    };
    // A paired gateway: the connection is a node link now, its calls served concurrently.
    let config = PeerConfig {
        idle: Some(limits.idle),
        send_timeout: limits.send_timeout,
        max_in_flight: limits.in_flight,
        ..PeerConfig::new(remote.to_string(), MAX_REQUEST_BYTES)
    };
    let peer = Peer::spawn(ws, config, Arc::new(Serving { node }));
    let end = peer.ended().await;
    tracing::debug!("gateway link from {remote} ended: {end}");
    // The authenticated slot is held for as long as the link ran.
    drop(authenticated);
}

/// Serves an authenticated gateway's requests on its link, whichever side dialed.
pub(crate) struct Serving {
    node: Arc<Node>,
}

impl Serving {
    pub(crate) fn new(node: Arc<Node>) -> Self {
        Self { node }
    }
}

impl Handler for Serving {
    fn request(&self, req: Request) -> BoxFuture<'static, Result<Value, ErrorShape>> {
        match authenticated_answer(&self.node, &req) {
            Some(answer) => Box::pin(std::future::ready(answer)),
            None => {
                let node = self.node.clone();
                Box::pin(async move { invoke(&node, &req).await })
            }
        }
    }
}

/// What an authenticated gateway gets for `req` without running a capability: an answer, or
/// `None` for a capability call.
fn authenticated_answer(node: &Node, req: &Request) -> Option<Result<Value, ErrorShape>> {
    match req.method.as_str() {
        method::PAIR_START | method::PAIR_CONFIRM | method::CONNECT => Some(Err(err(
            ErrorCode::InvalidRequest,
            format!(
                "`{}`: this connection is already authenticated as a paired gateway",
                req.method
            ),
        ))),
        method::DESCRIBE => Some(Ok(json!(node.describe()))),
        _ => None,
    }
}

fn err(code: ErrorCode, message: impl Into<String>) -> ErrorShape {
    ErrorShape::new(code, message)
}

fn params<T: serde::de::DeserializeOwned>(req: &Request) -> Result<T, ErrorShape> {
    serde_json::from_value(req.params.clone()).map_err(|e| {
        err(
            ErrorCode::InvalidRequest,
            format!("bad `{}` params: {e}", req.method),
        )
    })
}

/// One connection's protocol state: what the peer has proven so far, and its pairing attempt.
/// No I/O: [`on_text`](Self::on_text) takes one text frame and says what to do.
pub struct Conversation {
    node: Arc<Node>,
    challenger: Challenger,
    stage: Stage,
}

impl std::fmt::Debug for Conversation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stage = match &self.stage {
            Stage::Stranger => "stranger",
            Stage::Pairing(_) => "pairing",
            Stage::Gateway(_) => "gateway",
        };
        f.debug_struct("Conversation")
            .field("stage", &stage)
            .finish()
    }
}

enum Stage {
    /// Nothing proven yet: only pairing and `connect` are open.
    Stranger,
    /// This connection's pairing attempt is in flight.
    Pairing(PairingSession),
    /// `connect` succeeded: a paired gateway.
    Gateway(PairedGateway),
}

/// What to do after one frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Send the answer and read the next request.
    Reply(Response),
    /// Send the answer, then close the connection.
    Close(Response, Closing),
    /// The peer proved it is a paired gateway: give it an authenticated slot, then send the
    /// answer (or refuse, when the slots are full).
    Authenticated(Response),
    /// A capability call from the authenticated gateway. The server never sees one here: an
    /// authenticated connection becomes a node link, which serves calls concurrently by the same
    /// rules ([`run_frames`] returns them, for the fuzzer).
    Invoke(Request),
}

/// Why a connection is closed after an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// Pairing succeeded: the gateway reconnects and authenticates with `connect`.
    Paired,
    /// A pairing attempt's confirmation failed (a try spent: at most three per code).
    PairingFailed,
    /// A `pair.start` was refused (busy, no code, code used up or expired), or a confirm came
    /// without one: no try spent.
    PairingRefused,
    /// A stranger asked for more than pairing or `connect`, or `connect` failed.
    NotPaired,
    /// Not a request frame, before authentication.
    Malformed,
}

impl Closing {
    pub fn code(self) -> CloseCode {
        match self {
            Self::Paired => CloseCode::Normal,
            Self::PairingFailed | Self::PairingRefused | Self::NotPaired | Self::Malformed => {
                CloseCode::Policy
            }
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            Self::Paired => "paired: reconnect and authenticate",
            Self::PairingFailed => "pairing failed",
            Self::PairingRefused => "pairing refused",
            Self::NotPaired => "not paired",
            Self::Malformed => "not a request frame",
        }
    }
}

const PAIR_FIRST: &str = "pair first (openclaw nodes pair HOST:PORT --code NNNNNN)";

impl Conversation {
    pub fn new(node: Arc<Node>) -> Self {
        Self {
            node,
            challenger: Challenger::new(Role::Node),
            stage: Stage::Stranger,
        }
    }

    /// The `connect.challenge` event the node opens with.
    pub fn challenge(&self) -> Frame {
        self.challenger.frame()
    }

    pub fn is_authenticated(&self) -> bool {
        matches!(self.stage, Stage::Gateway(_))
    }

    /// The paired gateway this connection authenticated as, once it has.
    pub fn gateway(&self) -> Option<&PairedGateway> {
        match &self.stage {
            Stage::Gateway(g) => Some(g),
            _ => None,
        }
    }

    /// When this connection's pairing attempt times out, while one is in flight.
    pub fn pairing_deadline(&self) -> Option<Instant> {
        match &self.stage {
            Stage::Pairing(p) => Some(p.attempt.deadline()),
            _ => None,
        }
    }

    /// Handles one text frame from the peer.
    pub fn on_text(&mut self, text: &str) -> Step {
        let req = match openclaw_protocol::parse_request(text) {
            Ok(r) => r,
            Err((id, error)) => {
                let res = Response::err(id, error);
                return if self.is_authenticated() {
                    Step::Reply(res)
                } else {
                    Step::Close(res, Closing::Malformed)
                };
            }
        };
        if self.is_authenticated() {
            // The rules a node link serves an authenticated gateway by.
            return match authenticated_answer(&self.node, &req) {
                Some(Ok(payload)) => Step::Reply(Response::ok(&req.id, payload)),
                Some(Err(e)) => Step::Reply(Response::err(&req.id, e)),
                None => Step::Invoke(req),
            };
        }
        match req.method.as_str() {
            method::PAIR_START => {
                if matches!(self.stage, Stage::Pairing(_)) {
                    // Its own attempt is in flight: a second start here gets no second guess.
                    let e = pairing_refusal(&PairingError::Busy, None);
                    return Step::Close(Response::err(&req.id, e), Closing::PairingRefused);
                }
                match params::<Start>(&req).and_then(|start| self.node.begin_pairing(&start)) {
                    Ok((session, reply)) => {
                        self.stage = Stage::Pairing(session);
                        Step::Reply(Response::ok(&req.id, json!(reply)))
                    }
                    Err(e) => Step::Close(Response::err(&req.id, e), Closing::PairingRefused),
                }
            }
            method::PAIR_CONFIRM => {
                let Stage::Pairing(session) = std::mem::replace(&mut self.stage, Stage::Stranger)
                else {
                    let e = err(ErrorCode::InvalidRequest, "send pair.start first");
                    return Step::Close(Response::err(&req.id, e), Closing::PairingRefused);
                };
                // Whatever happens now, this attempt is over (one guess per try): the session
                // is consumed, a bad params object included.
                match params::<Confirm>(&req)
                    .and_then(|confirm| self.node.finish_pairing(session, &confirm))
                {
                    Ok(reply) => Step::Close(Response::ok(&req.id, json!(reply)), Closing::Paired),
                    Err(e) => Step::Close(Response::err(&req.id, e), Closing::PairingFailed),
                }
            }
            method::CONNECT => match connect(&self.node, &req, &self.challenger) {
                Ok((gateway, value)) => {
                    // A pairing attempt of this connection, if any, ends here.
                    self.stage = Stage::Gateway(gateway);
                    Step::Authenticated(Response::ok(&req.id, value))
                }
                Err(e) => Step::Close(Response::err(&req.id, e), Closing::NotPaired),
            },
            method::DESCRIBE if matches!(self.stage, Stage::Pairing(_)) => {
                Step::Reply(Response::ok(&req.id, json!(self.node.describe())))
            }
            method::DESCRIBE => Step::Close(
                Response::err(
                    &req.id,
                    err(
                        ErrorCode::NotPaired,
                        format!(
                            "node.describe is answered to paired gateways only (and during pairing): {PAIR_FIRST}"
                        ),
                    ),
                ),
                Closing::NotPaired,
            ),
            _ => Step::Close(
                Response::err(
                    &req.id,
                    err(
                        ErrorCode::NotPaired,
                        format!("this gateway is not paired with this node: {PAIR_FIRST}"),
                    ),
                ),
                Closing::NotPaired,
            ),
        }
    }
}

/// Runs `frames` (text-frame payloads, as a peer would send them after the WebSocket upgrade)
/// through one connection's protocol handling on `node`, without sockets, and returns what the
/// node would do after each. Like the server, it skips payloads the WebSocket layer never lets
/// through (not UTF-8, over [`MAX_REQUEST_BYTES`]) and stops at the first step that closes the
/// connection; capability calls ([`Step::Invoke`]) are returned, not run. For fuzz targets: it
/// must not panic, whatever the input.
pub fn run_frames<'a>(node: &Arc<Node>, frames: impl IntoIterator<Item = &'a [u8]>) -> Vec<Step> {
    let mut conversation = Conversation::new(node.clone());
    let mut steps = Vec::new();
    for frame in frames {
        if frame.len() > MAX_REQUEST_BYTES {
            continue;
        }
        let Ok(text) = std::str::from_utf8(frame) else {
            continue;
        };
        let step = conversation.on_text(text);
        let closes = matches!(step, Step::Close(..));
        steps.push(step);
        if closes {
            break;
        }
    }
    steps
}

/// A connection's pairing attempt. Dropping it (the connection went away, or moved on) frees the
/// node's single pairing slot at once, rather than at the attempt's deadline.
struct PairingSession {
    node: Arc<Node>,
    attempt: Attempt,
    confirming: Option<NodeConfirming>,
}

impl Drop for PairingSession {
    fn drop(&mut self) {
        if let Some(p) = lock(&self.node.pending).as_mut() {
            p.abandon(&self.attempt);
        }
    }
}

/// A pairing refusal as the gateway sees it. `tries_left` is given after a key confirmation ran.
fn pairing_refusal(e: &PairingError, tries_left: Option<u32>) -> ErrorShape {
    let code = match e {
        // Not this peer's fault, and it goes away by itself.
        PairingError::Busy => ErrorCode::Unavailable,
        _ => ErrorCode::NotPaired,
    };
    let mut message = e.to_string();
    match tries_left {
        Some(0) => message.push_str(&format!(
            "; that was the last of the code's {} tries, so the code is burned: show a new one (openclaw-node pair)",
            openclaw_pairing::MAX_TRIES
        )),
        Some(1) => message.push_str("; 1 try left for this code"),
        Some(n) => message.push_str(&format!("; {n} tries left for this code")),
        None => {}
    }
    err(code, message)
}

impl Node {
    /// Starts a pairing attempt (counting a try) for `start`, or says why not.
    fn begin_pairing(
        self: &Arc<Self>,
        start: &Start,
    ) -> Result<(PairingSession, StartReply), ErrorShape> {
        let mut pending = lock(&self.pending);
        let Some(code) = pending.as_mut() else {
            return Err(err(
                ErrorCode::NotPaired,
                "this node is not showing a pairing code: run `openclaw-node pair` on it",
            ));
        };
        let (attempt, digits) = code
            .begin(Instant::now())
            .map_err(|e| pairing_refusal(&e, None))?;
        match NodeConfirming::new(digits, start) {
            Ok((confirming, reply)) => Ok((
                PairingSession {
                    node: self.clone(),
                    attempt,
                    confirming: Some(confirming),
                },
                reply,
            )),
            Err(e) => {
                // The try stays counted: a malformed start is a try like any other.
                code.abandon(&attempt);
                Err(pairing_refusal(&e, Some(code.tries_left())))
            }
        }
    }

    /// Confirms `session`'s attempt with the gateway's `confirm`; on success remembers the
    /// gateway and returns the node's sealed reply.
    fn finish_pairing(
        &self,
        mut session: PairingSession,
        confirm: &Confirm,
    ) -> Result<ConfirmReply, ErrorShape> {
        let me = self.my_identity();
        let confirming = session.confirming.take();
        let gateway_name = confirming
            .as_ref()
            .map(|c| c.gateway_name().to_owned())
            .unwrap_or_default();
        let outcome = {
            let mut pending = lock(&self.pending);
            match pending.as_mut() {
                None => Err(pairing_refusal(&PairingError::Replaced, None)),
                Some(code) => code
                    .confirm(&session.attempt, Instant::now(), || {
                        let confirming = confirming.ok_or(PairingError::SessionExpired)?;
                        let (gateway, reply) = confirming.finish(confirm, &me)?;
                        // A key that is not one fails here, before the code counts as used.
                        let device_id = device_id_of(&gateway.public_key)?;
                        Ok((gateway, reply, device_id))
                    })
                    .map_err(|e| {
                        let ran = !matches!(
                            e,
                            PairingError::Replaced
                                | PairingError::Burned
                                | PairingError::Expired
                                | PairingError::SessionExpired
                        );
                        pairing_refusal(&e, ran.then(|| code.tries_left()))
                    }),
            }
        };
        // The session's drop takes the lock: only after it is released.
        drop(session);
        let (gateway, reply, device_id) = outcome?;
        self.remember(PairedGateway {
            device_id,
            name: gateway_name,
            public_key: gateway.public_key,
            paired_at: now_ms() / 1000,
        })
        .map_err(|e| {
            err(
                ErrorCode::Internal,
                format!(
                    "paired, but the node could not save it ({e}): fix the node's state dir, show a new code and pair again"
                ),
            )
        })?;
        Ok(reply)
    }
}

/// A capability method (a built-in one on a blocking thread, a registered one on the runtime).
async fn invoke(node: &Arc<Node>, req: &Request) -> Result<Value, ErrorShape> {
    node.capabilities
        .invoke(&req.method, req.params.clone())
        .await
        .map_err(|e| err(e.code(), e.to_string()))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn connect(
    node: &Node,
    req: &Request,
    challenger: &Challenger,
) -> Result<(PairedGateway, Value), ErrorShape> {
    let c: NodeConnect = params(req)?;
    let paired = lock(&node.paired).clone();
    let (verified, answer) = challenger
        .verify(node.identity.key(), &c, |id| {
            paired
                .iter()
                .find(|g| g.device_id == id)
                .map(|g| g.public_key.clone())
        })
        .map_err(|e| e.shape())?;
    let gateway = paired
        .into_iter()
        .find(|g| g.device_id == verified.device_id)
        .ok_or_else(|| err(ErrorCode::NotPaired, "this gateway was removed meanwhile"))?;
    Ok((gateway, json!(answer)))
}

#[cfg(test)]
mod tests;
