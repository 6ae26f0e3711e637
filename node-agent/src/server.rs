//! The node's listener: TLS, then the WebSocket framing of the gateway protocol. A connection
//! either pairs (`pair.start` / `pair.confirm` with the code the node shows) or authenticates as
//! a paired gateway (`connect`: mutual signed nonces), then calls node methods.

use crate::capabilities::{Capabilities, CapabilityError};
use crate::identity::NodeIdentity;
use futures_util::{SinkExt, StreamExt};
use openclaw_pairing::identity::{Challenge, device_id_of, verify_challenge};
use openclaw_pairing::{Confirm, NodeConfirming, PairingError, PeerIdentity, PendingCode, Start};
use openclaw_protocol::node::{NodeConnect, NodeConnected, NodeDescription, method};
use openclaw_protocol::{
    ConnectChallenge, ErrorCode, ErrorShape, Event, Frame, Request, Response, close,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

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
    state_dir: PathBuf,
    capabilities: Capabilities,
    pending: Mutex<Option<PendingCode>>,
    paired: Mutex<Vec<PairedGateway>>,
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
    /// Loads (or creates) the node in `state_dir`.
    pub fn open(
        state_dir: PathBuf,
        name: String,
        capabilities: Capabilities,
    ) -> Result<Arc<Self>, crate::NodeError> {
        let identity = NodeIdentity::load_or_create(&state_dir)?;
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
            state_dir,
            capabilities,
            pending: Mutex::new(None),
            paired: Mutex::new(paired),
        }))
    }

    pub fn identity(&self) -> &NodeIdentity {
        &self.identity
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// Shows a fresh pairing code, valid for `valid_for`; returns it.
    pub fn new_pairing_code(&self, valid_for: Duration) -> String {
        let code = openclaw_pairing::new_code();
        *lock(&self.pending) = Some(PendingCode::new(code.clone(), Instant::now(), valid_for));
        code
    }

    pub fn paired_gateways(&self) -> Vec<PairedGateway> {
        lock(&self.paired).clone()
    }

    fn remember(&self, gateway: PairedGateway) -> std::io::Result<()> {
        let mut paired = lock(&self.paired);
        paired.retain(|g| g.device_id != gateway.device_id);
        paired.push(gateway);
        let tmp = self.state_dir.join(format!("{PAIRED_FILE}.tmp"));
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(&*paired).unwrap_or_default(),
        )?;
        std::fs::rename(&tmp, self.state_dir.join(PAIRED_FILE))
    }

    fn describe(&self) -> NodeDescription {
        NodeDescription {
            id: self.identity.device_id(),
            name: self.name.clone(),
            platform: std::env::consts::OS.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            capabilities: self.capabilities.advertised(),
            unavailable: self.capabilities.unavailable(),
        }
    }

    fn my_identity(&self) -> PeerIdentity {
        PeerIdentity {
            name: self.name.clone(),
            public_key: self.identity.key().public_key(),
            cert_fingerprint: Some(self.identity.cert_fingerprint()),
            capabilities: self.capabilities.advertised(),
        }
    }
}

/// Serves `node` on `listener` until `shutdown` completes, without tailnet checks.
pub async fn serve(
    listener: TcpListener,
    node: Arc<Node>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), crate::NodeError> {
    serve_guarded(listener, node, crate::PeerGuard::off(), shutdown).await
}

/// Serves `node`, letting in only the peers `guard` accepts.
pub async fn serve_guarded(
    listener: TcpListener,
    node: Arc<Node>,
    guard: crate::PeerGuard,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), crate::NodeError> {
    let guard = Arc::new(guard);
    let acceptor = tokio_rustls::TlsAcceptor::from(node.identity.tls_server_config()?);
    tokio::pin!(shutdown);
    loop {
        let (tcp, remote) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing_warn(&format!("accept failed: {e}"));
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, node, guard) = (acceptor.clone(), node.clone(), guard.clone());
        tokio::spawn(async move {
            if let Err(why) = guard.check(remote).await {
                tracing_warn(&format!("refused a connection: {why}"));
                return;
            }
            let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
            else {
                return;
            };
            let Ok(ws) = tokio_tungstenite::accept_async(tls).await else {
                return;
            };
            session(ws, node, remote).await;
        });
    }
}

fn tracing_warn(message: &str) {
    eprintln!("openclaw-node: {message}");
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>;

async fn send(ws: &mut Ws, frame: &Frame) -> bool {
    match serde_json::to_string(frame) {
        Ok(text) => ws.send(Message::text(text)).await.is_ok(),
        Err(_) => false,
    }
}

async fn reply(ws: &mut Ws, id: &str, result: Result<Value, ErrorShape>) -> bool {
    let res = match result {
        Ok(p) => Response::ok(id, p),
        Err(e) => Response::err(id, e),
    };
    send(ws, &Frame::Res(res)).await
}

async fn next_request(ws: &mut Ws) -> Option<Result<Request, String>> {
    loop {
        match ws.next().await? {
            Ok(Message::Text(t)) => {
                return Some(match serde_json::from_str::<Frame>(t.as_str()) {
                    Ok(Frame::Req(r)) => Ok(r),
                    _ => Err(String::new()),
                });
            }
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
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

async fn session(mut ws: Ws, node: Arc<Node>, remote: std::net::SocketAddr) {
    let nonce = format!("{:032x}", rand::random::<u128>());
    let ts = now_ms();
    let challenge = json!(ConnectChallenge {
        nonce: nonce.clone(),
        ts
    });
    if !send(
        &mut ws,
        &Frame::Event(Event {
            event: "connect.challenge".into(),
            payload: challenge,
            seq: Some(0),
        }),
    )
    .await
    {
        return;
    }
    let mut pairing: Option<NodeConfirming> = None;
    let mut gateway: Option<PairedGateway> = None;
    while let Some(next) = next_request(&mut ws).await {
        let Ok(req) = next else {
            if !reply(
                &mut ws,
                "",
                Err(err(ErrorCode::InvalidRequest, "send `req` frames of JSON")),
            )
            .await
            {
                return;
            }
            continue;
        };
        let result = match req.method.as_str() {
            method::PAIR_START => pair_start(&node, &req).map(|(state, value)| {
                pairing = Some(state);
                value
            }),
            method::PAIR_CONFIRM => match pairing.take() {
                None => Err(err(ErrorCode::InvalidRequest, "send pair.start first")),
                Some(state) => pair_confirm(&node, state, &req),
            },
            method::CONNECT => connect(&node, &req, &nonce, ts).map(|(g, value)| {
                gateway = Some(g);
                value
            }),
            // Public, so `openclaw nodes discover` can list nodes before pairing.
            method::DESCRIBE => Ok(json!(node.describe())),
            _ if gateway.is_some() => invoke(&node, &req).await,
            _ if gateway.is_none() => Err(err(
                ErrorCode::NotPaired,
                "this gateway is not paired with this node: pair first (openclaw nodes pair HOST:PORT --code NNNNNN)",
            )),
            other => Err(err(
                ErrorCode::InvalidRequest,
                format!("unknown method `{other}`"),
            )),
        };
        let refused = matches!(&result, Err(e) if e.code == ErrorCode::NotPaired || e.code == ErrorCode::Unauthorized);
        if !reply(&mut ws, &req.id, result).await {
            return;
        }
        if refused {
            tracing_warn(&format!("refused {remote}: {}", req.method));
            let _ = ws
                .close(Some(CloseFrame {
                    code: close::POLICY_VIOLATION.into(),
                    reason: "not paired".into(),
                }))
                .await;
            return;
        }
    }
}

/// A capability method, run on a blocking thread (capture, D-Bus and speech calls block).
async fn invoke(node: &Arc<Node>, req: &Request) -> Result<Value, ErrorShape> {
    let (node, name, params) = (node.clone(), req.method.clone(), req.params.clone());
    let result = tokio::task::spawn_blocking(move || node.capabilities.call(&name, params))
        .await
        .map_err(|e| err(ErrorCode::Internal, format!("capability task failed: {e}")))?;
    result.map_err(|e| {
        let code = match &e {
            CapabilityError::Unavailable {
                capability: "camera",
                ..
            } => ErrorCode::CameraUnavailable,
            CapabilityError::Unavailable { .. } => ErrorCode::CapabilityUnavailable,
            CapabilityError::TooLarge { .. } => ErrorCode::PayloadTooLarge,
            CapabilityError::InvalidParams(_) => ErrorCode::InvalidRequest,
            CapabilityError::Failed(_) => ErrorCode::Internal,
        };
        err(code, e.to_string())
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn pairing_error(e: &PairingError) -> ErrorShape {
    err(ErrorCode::NotPaired, e.to_string())
}

fn pair_start(node: &Node, req: &Request) -> Result<(NodeConfirming, Value), ErrorShape> {
    let start: Start = params(req)?;
    let pending = lock(&node.pending);
    let Some(pending) = pending.as_ref() else {
        return Err(err(
            ErrorCode::NotPaired,
            "this node is not showing a pairing code: run `openclaw-node pair` on it",
        ));
    };
    let code = pending
        .attempt(Instant::now())
        .map_err(|e| pairing_error(&e))?;
    let (state, reply) = NodeConfirming::new(code, &start).map_err(|e| pairing_error(&e))?;
    Ok((state, json!(reply)))
}

fn pair_confirm(node: &Node, state: NodeConfirming, req: &Request) -> Result<Value, ErrorShape> {
    let confirm: Confirm = params(req)?;
    let gateway_name = state.gateway_name().to_owned();
    match state.finish(&confirm, &node.my_identity()) {
        Ok((gateway, reply)) => {
            let device_id = device_id_of(&gateway.public_key).map_err(|e| pairing_error(&e))?;
            if let Some(p) = lock(&node.pending).as_mut() {
                p.succeeded();
            }
            node.remember(PairedGateway {
                device_id,
                name: gateway_name,
                public_key: gateway.public_key,
                paired_at: now_ms() / 1000,
            })
            .map_err(|e| {
                err(
                    ErrorCode::Internal,
                    format!("paired, but could not save it: {e}"),
                )
            })?;
            Ok(json!(reply))
        }
        Err(e) => {
            let burned = lock(&node.pending)
                .as_mut()
                .is_some_and(PendingCode::failed);
            let mut message = e.to_string();
            if burned {
                message.push_str(&format!(
                    "; that was the {}th wrong attempt, so the code is burned: show a new one",
                    openclaw_pairing::MAX_FAILURES
                ));
            }
            Err(err(ErrorCode::NotPaired, message))
        }
    }
}

fn connect(
    node: &Node,
    req: &Request,
    nonce: &str,
    ts: i64,
) -> Result<(PairedGateway, Value), ErrorShape> {
    let c: NodeConnect = params(req)?;
    let gateway = lock(&node.paired)
        .iter()
        .find(|g| g.device_id == c.device_id)
        .cloned()
        .ok_or_else(|| {
            err(
                ErrorCode::NotPaired,
                "this gateway is not paired with this node (or was removed): pair again",
            )
        })?;
    let my_id = node.identity.device_id();
    let theirs = Challenge {
        role: "gateway",
        signer_id: gateway.device_id.clone(),
        peer_id: my_id.clone(),
        nonce: nonce.to_owned(),
        ts,
    };
    verify_challenge(&gateway.public_key, &theirs, &c.signature).map_err(|_| {
        err(
            ErrorCode::Unauthorized,
            "the signature does not match the paired gateway's key",
        )
    })?;
    let mine = Challenge {
        role: "node",
        signer_id: my_id.clone(),
        peer_id: gateway.device_id.clone(),
        nonce: c.nonce.clone(),
        ts: c.ts,
    };
    let signature = node.identity.key().sign_challenge(&mine);
    Ok((
        gateway,
        json!(NodeConnected {
            device_id: my_id,
            signature
        }),
    ))
}
