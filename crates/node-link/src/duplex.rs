//! Transport: an in-process link, for a node inside the same program as the gateway (the tray
//! app's own node). A `tokio::io::duplex` pipe under a WebSocket on each end, so the session
//! on it is byte for byte the one a remote node has: no second code path to keep right.

use tokio::io::DuplexStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// One end of an in-process link.
pub type InProcess = WebSocketStream<DuplexStream>;

/// Bytes buffered in each direction of the pipe before a writer waits for the reader.
const PIPE_BYTES: usize = 64 * 1024;

/// Both ends of a new in-process link: `(dialer, acceptor)`. Each end takes messages up to the
/// limit in its own config (the dialer's receives answers, the acceptor's requests).
pub async fn pair(dialer: WebSocketConfig, acceptor: WebSocketConfig) -> (InProcess, InProcess) {
    let (a, b) = tokio::io::duplex(PIPE_BYTES);
    // No HTTP upgrade: both ends are ours, the WebSocket starts at once.
    let dialer = WebSocketStream::from_raw_socket(a, Role::Client, Some(dialer)).await;
    let acceptor = WebSocketStream::from_raw_socket(b, Role::Server, Some(acceptor)).await;
    (dialer, acceptor)
}
