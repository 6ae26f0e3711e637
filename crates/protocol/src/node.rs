//! The node protocol: what a gateway sends a device node, and what comes back. Same framing as
//! the gateway WebSocket (`req` / `res` / `event`); the node opens with `connect.challenge`.

use serde::{Deserialize, Serialize};

/// Default port a node listens on.
pub const NODE_PORT: u16 = 18790;

pub mod method {
    pub const PAIR_START: &str = "pair.start";
    pub const PAIR_CONFIRM: &str = "pair.confirm";
    pub const CONNECT: &str = "connect";
    pub const DESCRIBE: &str = "node.describe";
}

/// `connect` from a paired gateway: it proves its key by signing the node's challenge, and
/// sends a nonce of its own for the node to sign in return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeConnect {
    /// Hex SHA-256 of the gateway's public key.
    pub device_id: String,
    /// Signature over the node's `connect.challenge`, base64url.
    pub signature: String,
    pub nonce: String,
    /// Milliseconds since the Unix epoch.
    pub ts: i64,
}

/// The node's answer to `connect`: its signature over the gateway's nonce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeConnected {
    pub device_id: String,
    pub signature: String,
}

/// `node.describe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDescription {
    pub id: String,
    pub name: String,
    pub platform: String,
    pub version: String,
    pub capabilities: Vec<String>,
}
