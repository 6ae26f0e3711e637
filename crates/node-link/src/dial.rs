//! Transport: the gateway dials the node (`host:port`, TLS pinned to the certificate learned at
//! pairing, then the WebSocket upgrade), under one deadline for every step, so that a node that
//! answers each step just in time cannot stretch the whole to several times the limit.

use crate::tls;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// A WebSocket to a node, over TLS.
pub type NodeStream = WebSocketStream<TlsStream<TcpStream>>;

/// The name a node's certificate is made out to (nodes are told apart by fingerprint).
pub const NODE_SERVER_NAME: &str = "openclaw-node";

/// A step of dialing, for the timeout's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialStep {
    Connecting,
    Tls,
    WebSocket,
}

impl std::fmt::Display for DialStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Connecting => "connecting",
            Self::Tls => "the TLS handshake",
            Self::WebSocket => "the WebSocket handshake",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Connect(String),
    #[error("{step} timed out ({} s in all)", limit.as_secs())]
    TimedOut { step: DialStep, limit: Duration },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("WebSocket: {0}")]
    WebSocket(String),
}

/// Dials the node at `addr` within `limit`; `pin` is the paired certificate fingerprint (none
/// while pairing). Returns the WebSocket and the fingerprint the TLS handshake showed.
pub async fn dial_node(
    addr: &str,
    pin: Option<String>,
    limit: Duration,
    config: WebSocketConfig,
) -> Result<(NodeStream, String), DialError> {
    let deadline = Instant::now() + limit;
    let late = |step| DialError::TimedOut { step, limit };
    let (tls_config, seen) =
        tls::client_config(pin).map_err(|e| DialError::Config(e.to_string()))?;
    let tcp = tokio::time::timeout_at(deadline, TcpStream::connect(addr))
        .await
        .map_err(|_| late(DialStep::Connecting))?
        .map_err(|e| DialError::Connect(e.to_string()))?;
    // Calls are small and answered at once: no Nagle delay on them.
    let _ = tcp.set_nodelay(true);
    let name = rustls::pki_types::ServerName::try_from(NODE_SERVER_NAME)
        .map_err(|e| DialError::Config(e.to_string()))?;
    let tls = tokio::time::timeout_at(
        deadline,
        tokio_rustls::TlsConnector::from(tls_config).connect(name, tcp),
    )
    .await
    .map_err(|_| late(DialStep::Tls))?
    .map_err(|e| DialError::Tls(e.to_string()))?;
    let seen = seen.lock().ok().and_then(|s| s.clone()).unwrap_or_default();
    let (ws, _) = tokio::time::timeout_at(
        deadline,
        tokio_tungstenite::client_async_with_config(format!("wss://{addr}/"), tls, Some(config)),
    )
    .await
    .map_err(|_| late(DialStep::WebSocket))?
    .map_err(|e| DialError::WebSocket(e.to_string()))?;
    Ok((ws, seen))
}
