//! The route a device node dials (`/node`): a phone cannot keep a listening socket in the
//! background and a laptop sits behind NAT, so they open a WebSocket to the gateway instead
//! (`openclaw-node run --gateway HOST:PORT`). The node proves itself with the key paired
//! (node-link's `accept_node`, the gateway naming its own device id), and the link then serves
//! the gateway's calls like one the gateway dialed: the router attaches it to the node's device
//! id, so priority routing and failover see one node whichever side dialed.
//!
//! No web page is ever a node's peer: an upgrade that carries `Origin` is refused. No gateway
//! token is asked for (a node has none); the signed nonces are the authentication. Sockets
//! upgraded but not yet authenticated have a small budget of their own, and a deadline.

use crate::GatewayState;
use crate::http::{Refusal, error};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use openclaw_node_link::dial_out::{accept_node, gateway_config, gateway_websocket_config};
use openclaw_node_link::{HandshakeError, NoRequests};
use openclaw_protocol::ErrorCode;
use openclaw_protocol::node::method;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

pub use openclaw_node_link::dial_out::NODE_PATH;
pub use openclaw_node_link::exchange::PAIR_PATH;

/// A node must prove itself within this time of its upgrade.
const AUTH_LIMIT: Duration = Duration::from_secs(10);
/// Its `node.describe` must come back within this time.
const DESCRIBE_LIMIT: Duration = Duration::from_secs(15);
/// Node sockets that may sit between upgrade and proof at once.
pub const PRE_AUTH_NODES: usize = 16;

/// The `Sec-WebSocket-Key` of a well-formed WebSocket upgrade request.
fn websocket_key(headers: &HeaderMap) -> Option<&str> {
    let has = |name: header::HeaderName, value: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|v| v.trim().eq_ignore_ascii_case(value))
    };
    let version_13 = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() == b"13");
    if !(has(header::CONNECTION, "upgrade") && has(header::UPGRADE, "websocket") && version_13) {
        return None;
    }
    headers
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|k| k.to_str().ok())
}

/// What both node routes do: refuse pages (`Origin`), take only a whole WebSocket upgrade,
/// refuse while draining or past [`PRE_AUTH_NODES`] unproved sockets, then answer 101 and run
/// `session` on the upgraded connection in a tracked task, with its pre-auth place (the session
/// drops it once the node is proved). `usage` says what the route is for.
fn upgrade_node_socket<F, Fut>(
    state: Arc<GatewayState>,
    remote: SocketAddr,
    mut req: Request,
    path: &str,
    usage: &str,
    session: F,
) -> Response
where
    F: FnOnce(Arc<GatewayState>, SocketAddr, TokioIo<Upgraded>, OwnedSemaphorePermit) -> Fut
        + Send
        + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("?").to_owned();
        state.refused(remote, path, Refusal::Origin(origin));
        return error(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "this route is for device nodes; no web page may open it",
        );
    }
    let Some(key) = websocket_key(req.headers()) else {
        return error(
            StatusCode::UPGRADE_REQUIRED,
            ErrorCode::InvalidRequest,
            format!("this route takes a device node's WebSocket ({usage})"),
        );
    };
    if state.is_draining() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "the gateway is shutting down; dial again",
        );
    }
    let Ok(place) = state.node_pre_auth.clone().try_acquire_owned() else {
        state.metrics.connections_rejected.inc();
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "too many device nodes are connecting at once; dial again in a moment",
        );
    };
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    let tasks = state.tasks.clone();
    tasks.spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => session(state, remote, TokioIo::new(upgraded), place).await,
            Err(e) => tracing::debug!(%remote, error = %e, "node upgrade failed"),
        }
    });
    switching_protocols(accept)
}

/// The 101 answer that hands the connection to the WebSocket.
fn switching_protocols(accept: String) -> Response {
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Body::empty())
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// `GET /node`: the upgrade, by hand (the link runs on tokio-tungstenite's stream, which
/// axum's WebSocket does not hand out), then the proof and the attach in a tracked task.
pub(crate) async fn upgrade(
    State(state): State<Arc<GatewayState>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    upgrade_node_socket(
        state,
        remote,
        req,
        NODE_PATH,
        "openclaw-node run --gateway HOST:PORT",
        serve,
    )
}

async fn serve<S>(state: Arc<GatewayState>, remote: SocketAddr, io: S, place: OwnedSemaphorePermit)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let ws =
        WebSocketStream::from_raw_socket(io, Role::Server, Some(gateway_websocket_config())).await;
    let key = match state.gateway_key().await {
        Ok(k) => k,
        Err(e) => {
            tracing::error!(error = %e, "a node dialed in, but the gateway's key is unusable");
            return;
        }
    };
    let label = remote.to_string();
    let mut config = gateway_config(label.clone());
    config.tasks = Some(state.tasks.tracker());
    let nodes = state.nodes.clone();
    let accepted = accept_node(
        ws,
        &key,
        |id| nodes.paired_key(id),
        config,
        Arc::new(NoRequests),
        AUTH_LIMIT,
    )
    .await;
    // Proved or not, it has left the pre-auth place.
    drop(place);
    let (peer, verified) = match accepted {
        Ok(ok) => ok,
        Err(e) => {
            tracing::info!(%remote, error = %e, "a node that dialed in was refused");
            if matches!(e, HandshakeError::Auth(_)) {
                state.refused(remote, NODE_PATH, Refusal::NodeNotProved(e.to_string()));
            }
            return;
        }
    };
    let described =
        crate::nodes::call(&peer, &label, method::DESCRIBE, Value::Null, DESCRIBE_LIMIT).await;
    match described {
        Ok(d) => {
            if state.nodes.attach_dialed_in(&verified.device_id, peer, &d) {
                tracing::info!(%remote, device = %verified.device_id, "a device node dialed in");
            }
        }
        Err(e) => {
            tracing::info!(%remote, error = %e, "a node dialed in but did not describe itself");
            peer.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_whole_websocket_upgrade_has_a_key() {
        let mut h = HeaderMap::new();
        assert_eq!(websocket_key(&h), None);
        h.insert(header::CONNECTION, "keep-alive, Upgrade".parse().unwrap());
        h.insert(header::UPGRADE, "websocket".parse().unwrap());
        h.insert(
            header::SEC_WEBSOCKET_KEY,
            "dGhlIHNhbXBsZSBub25jZQ==".parse().unwrap(),
        );
        assert_eq!(websocket_key(&h), None, "no version");
        h.insert(header::SEC_WEBSOCKET_VERSION, "13".parse().unwrap());
        assert_eq!(websocket_key(&h), Some("dGhlIHNhbXBsZSBub25jZQ=="));
        h.insert(header::UPGRADE, "h2c".parse().unwrap());
        assert_eq!(websocket_key(&h), None);
    }
}

/// The code the gateway shows for a node to pair with (`openclaw nodes pair --listen`), and
/// how to keep the node that pairs with it.
#[derive(Debug)]
pub(crate) struct ShownCode {
    pub(crate) pending: openclaw_pairing::PendingCode,
    pub(crate) name: Option<String>,
    pub(crate) priority: i64,
}

/// One pairing exchange must finish within this time of its upgrade.
const PAIR_LIMIT: Duration = openclaw_pairing::SESSION_TIMEOUT;

/// `GET /node/pair`: a node pairing by the code this gateway shows.
pub(crate) async fn pair_upgrade(
    State(state): State<Arc<GatewayState>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    upgrade_node_socket(
        state,
        remote,
        req,
        PAIR_PATH,
        "openclaw-node pair --gateway HOST:PORT --code NNNNNN",
        |state, remote, io, place| async move {
            let ws = WebSocketStream::from_raw_socket(
                io,
                Role::Server,
                Some(openclaw_node_link::codec::websocket_config(
                    openclaw_protocol::node::MAX_REQUEST_BYTES,
                )),
            )
            .await;
            serve_pairing(&state, remote, ws).await;
            drop(place);
        },
    )
}

fn lock_code(state: &GatewayState) -> std::sync::MutexGuard<'_, Option<ShownCode>> {
    state.pairing_code.lock().unwrap_or_else(|p| p.into_inner())
}

fn pair_refusal(e: &openclaw_pairing::PairingError) -> openclaw_protocol::ErrorShape {
    let code = match e {
        openclaw_pairing::PairingError::Busy => ErrorCode::Unavailable,
        _ => ErrorCode::NotPaired,
    };
    openclaw_protocol::ErrorShape::new(code, e.to_string())
}

/// The responder's side: `pair.start` (a try of the shown code), `pair.confirm`, then the node
/// is kept (it dials in: no address), connected when it dials, and its capabilities are tools.
async fn serve_pairing<S>(state: &Arc<GatewayState>, remote: SocketAddr, mut ws: WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use openclaw_node_link::exchange::{next_request, reply};
    use openclaw_pairing::{Confirm, Direction, PeerIdentity, Responder, Start};
    use openclaw_protocol::Response;
    let deadline = tokio::time::Instant::now() + PAIR_LIMIT;
    let refuse = |id: &str, shape: openclaw_protocol::ErrorShape| Response::err(id, shape);
    let Ok(req) = next_request(&mut ws, deadline).await else {
        return;
    };
    let start: Start = match (req.method == method::PAIR_START)
        .then(|| serde_json::from_value(req.params.clone()))
    {
        Some(Ok(s)) => s,
        _ => {
            let shape = openclaw_protocol::ErrorShape::new(
                ErrorCode::InvalidRequest,
                "pair with `pair.start {spake, gateway_name}` first",
            );
            let _ = reply(&mut ws, refuse(&req.id, shape), deadline).await;
            return;
        }
    };
    // A try of the shown code, counted as it starts.
    let begun = {
        let mut shown = lock_code(state);
        match shown.as_mut() {
            None => Err(openclaw_protocol::ErrorShape::new(
                ErrorCode::NotPaired,
                "this gateway shows no pairing code: run `openclaw nodes pair --listen` on it first",
            )),
            Some(s) => s
                .pending
                .begin(std::time::Instant::now())
                .map(|(attempt, code)| (attempt, code.to_owned()))
                .map_err(|e| pair_refusal(&e)),
        }
    };
    let (attempt, code) = match begun {
        Ok(b) => b,
        Err(shape) => {
            // Anyone may reach this route: refusals are counted and audited under the throttle.
            state.refused(
                remote,
                PAIR_PATH,
                Refusal::NodeNotProved(shape.message.clone()),
            );
            let _ = reply(&mut ws, refuse(&req.id, shape), deadline).await;
            return;
        }
    };
    // From here every way out gives the attempt back.
    let outcome = async {
        let (responder, start_reply) = Responder::new_in(Direction::NodeDials, &code, &start)
            .map_err(|e| (req.id.clone(), pair_refusal(&e)))?;
        let payload = serde_json::to_value(&start_reply).unwrap_or(Value::Null);
        reply(&mut ws, Response::ok(&req.id, payload), deadline)
            .await
            .map_err(|_| {
                (
                    req.id.clone(),
                    pair_refusal(&openclaw_pairing::PairingError::SessionExpired),
                )
            })?;
        let confirm_req = next_request(&mut ws, deadline).await.map_err(|e| {
            (
                String::new(),
                openclaw_protocol::ErrorShape::new(ErrorCode::InvalidRequest, e.to_string()),
            )
        })?;
        let confirm: Confirm = match (confirm_req.method == method::PAIR_CONFIRM)
            .then(|| serde_json::from_value(confirm_req.params.clone()))
        {
            Some(Ok(c)) => c,
            _ => {
                return Err((
                    confirm_req.id.clone(),
                    openclaw_protocol::ErrorShape::new(
                        ErrorCode::InvalidRequest,
                        "after `pair.start` comes `pair.confirm {session, mac, sealed}`",
                    ),
                ));
            }
        };
        let key = state.gateway_key().await.map_err(|e| {
            (
                confirm_req.id.clone(),
                openclaw_protocol::ErrorShape::new(ErrorCode::Internal, e.to_string()),
            )
        })?;
        let me = PeerIdentity {
            name: state.config.agent.name.clone(),
            public_key: key.public_key(),
            cert_fingerprint: None,
            capabilities: Vec::new(),
        };
        let confirmed = {
            let mut shown = lock_code(state);
            match shown.as_mut() {
                Some(s) => s
                    .pending
                    .confirm(&attempt, std::time::Instant::now(), || {
                        responder.finish(&confirm, &me)
                    })
                    .map(|ok| (ok, s.name.clone(), s.priority)),
                None => Err(openclaw_pairing::PairingError::Replaced),
            }
        };
        let ((node, confirm_reply), name, priority) =
            confirmed.map_err(|e| (confirm_req.id.clone(), pair_refusal(&e)))?;
        // Kept before the node hears it is paired: a node that dials in at once must find
        // itself known (answering first let it be refused NOT_PAIRED once), and a node the
        // gateway could not keep must not believe it is paired.
        let response = match state.keep_dialing_in_node(node, name, priority).await {
            Ok(_) => Response::ok(
                &confirm_req.id,
                serde_json::to_value(&confirm_reply).unwrap_or(Value::Null),
            ),
            Err(e) => {
                tracing::error!(error = %e, "a node paired, but it could not be kept");
                refuse(
                    &confirm_req.id,
                    openclaw_protocol::ErrorShape::new(
                        openclaw_protocol::ErrorCode::Internal,
                        format!("the gateway could not keep this node: {e}"),
                    ),
                )
            }
        };
        let _ = reply(&mut ws, response, deadline).await;
        Ok::<_, (String, openclaw_protocol::ErrorShape)>(())
    }
    .await;
    if let Some(shown) = lock_code(state).as_mut() {
        shown.pending.abandon(&attempt);
    }
    if let Err((id, shape)) = outcome {
        state.refused(
            remote,
            PAIR_PATH,
            Refusal::NodeNotProved(shape.message.clone()),
        );
        let _ = reply(&mut ws, refuse(&id, shape), deadline).await;
        return;
    }
    let _ = ws.close(None).await;
}
