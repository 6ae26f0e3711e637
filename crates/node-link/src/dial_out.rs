//! Transport: the node dials the gateway (a phone or a laptop behind NAT cannot be dialed). The
//! node opens a WebSocket to the gateway's node route ([`NODE_PATH`]) and proves itself first
//! (it is the prover, the gateway the challenger); after that the session is the one the other
//! direction has: the gateway calls the node's capabilities over the link.
//!
//! Over plain `ws://` (loopback, or a tailnet, which encrypts) each side is known by the
//! Ed25519 key the other learned at pairing: the signed nonces prove both, so no certificate is
//! needed. [`accept_node`] is everything a gateway route needs once the HTTP upgrade is done.

use crate::auth::{self, HandshakeError, Role, Verified};
use crate::peer::{Handler, Peer, PeerConfig};
use openclaw_pairing::identity::DeviceKey;
use openclaw_protocol::node::{MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// The gateway's route a node dials.
pub const NODE_PATH: &str = "/node";

/// The WebSocket limits of the gateway's end of a node link: one answer of at most
/// [`MAX_RESPONSE_BYTES`] (a screenshot), whichever side dialed.
pub fn gateway_websocket_config() -> WebSocketConfig {
    crate::codec::websocket_config(MAX_RESPONSE_BYTES)
}

/// The WebSocket limits of the node's end: one request of at most [`MAX_REQUEST_BYTES`].
pub fn node_websocket_config() -> WebSocketConfig {
    crate::codec::websocket_config(MAX_REQUEST_BYTES)
}

/// How a gateway runs its end of a link to a node labelled `label`: answers up to
/// [`MAX_RESPONSE_BYTES`] in, requests over [`MAX_REQUEST_BYTES`] refused before sending.
pub fn gateway_config(label: impl Into<String>) -> PeerConfig {
    PeerConfig {
        max_outgoing: Some(MAX_REQUEST_BYTES),
        ..PeerConfig::new(label, MAX_RESPONSE_BYTES)
    }
}

/// Runs the gateway's side over a WebSocket a node opened (already upgraded), within `limit`:
/// the challenge (naming the gateway's device id), the node's `connect` checked against
/// `paired_key` (device id → the public key paired with), the gateway's proof back; then the
/// link. Refusals answer `NOT_PAIRED` / `UNAUTHORIZED` and close the connection (1008).
pub async fn accept_node<S>(
    mut ws: WebSocketStream<S>,
    key: &DeviceKey,
    paired_key: impl FnOnce(&str) -> Option<String>,
    config: PeerConfig,
    handler: Arc<dyn Handler>,
    limit: Duration,
) -> Result<(Peer, Verified), HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let deadline = Instant::now() + limit;
    let verified = auth::accept(&mut ws, Role::Gateway, key, paired_key, deadline).await?;
    Ok((Peer::spawn(ws, config, handler), verified))
}

/// A node's WebSocket to a gateway.
pub type GatewayStream = WebSocketStream<TcpStream>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialGatewayError {
    #[error("cannot reach the gateway at {addr}: {reason}")]
    Unreachable { addr: String, reason: String },
    #[error("the gateway at {addr} did not answer within {} s", limit.as_secs())]
    TimedOut { addr: String, limit: Duration },
    #[error("the gateway at {addr} refused the WebSocket: {reason}")]
    Refused { addr: String, reason: String },
}

/// Opens a WebSocket to the node route of the gateway at `addr` (`host:port`), within `limit`.
pub async fn dial_gateway(addr: &str, limit: Duration) -> Result<GatewayStream, DialGatewayError> {
    dial_gateway_at(addr, NODE_PATH, limit).await
}

/// Opens a WebSocket to `path` (the node route, or the pairing route) of the gateway at `addr`.
pub async fn dial_gateway_at(
    addr: &str,
    path: &str,
    limit: Duration,
) -> Result<GatewayStream, DialGatewayError> {
    let timed_out = || DialGatewayError::TimedOut {
        addr: addr.to_owned(),
        limit,
    };
    let deadline = Instant::now() + limit;
    let tcp = tokio::time::timeout_at(deadline, TcpStream::connect(addr))
        .await
        .map_err(|_| timed_out())?
        .map_err(|e| DialGatewayError::Unreachable {
            addr: addr.to_owned(),
            reason: e.to_string(),
        })?;
    let _ = tcp.set_nodelay(true);
    let (ws, _) = tokio::time::timeout_at(
        deadline,
        tokio_tungstenite::client_async_with_config(
            format!("ws://{addr}{path}"),
            tcp,
            Some(node_websocket_config()),
        ),
    )
    .await
    .map_err(|_| timed_out())?
    .map_err(|e| DialGatewayError::Refused {
        addr: addr.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(ws)
}
