//! The records, enums and errors that cross the FFI, and how the library's own errors map onto
//! them. Each error is a typed enum with the message the library wrote, so a shell can both
//! branch on the kind (a Kotlin `catch (e: NodeException.WrongCode)`) and show the text.

use crate::pair_out::PairOutError;
use openclaw_node_link::exchange::ExchangeError;
use openclaw_pairing::PairingError;

/// What the node does, as the shell's [`NodeEventListener`](super::NodeEventListener) hears it.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum NodeEvent {
    /// An attempt to reach the gateway at `gateway` (`host:port`) starts.
    Connecting { gateway: String },
    /// The link to `gateway` is up and authenticated both ways.
    Connected { gateway: String },
    /// Paired with a gateway by its code.
    Paired {
        gateway: String,
        name: String,
        device_id: String,
    },
    /// A gateway called `method`; `error` is what it was told when `ok` is false.
    Invoked {
        method: String,
        ok: bool,
        error: Option<String>,
    },
    /// The link (or an attempt) to `gateway` ended; the node dials again after a backoff,
    /// unless stopped or offline.
    Disconnected { gateway: String, reason: String },
}

/// What a shell's callback may throw. Any other exception it throws arrives as `Failed` with
/// the exception's text (uniffi's unexpected-callback-error path), so a bug in a shell's
/// handler is a typed error at the gateway, never a crash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum ShellError {
    /// The device has no such hardware, or it is off.
    #[error("{reason}")]
    Unavailable { reason: String },
    /// The user (or the OS) refused the permission.
    #[error("{reason}")]
    Denied { reason: String },
    /// It went wrong.
    #[error("{reason}")]
    Failed { reason: String },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for ShellError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Failed {
            reason: format!("the app's handler threw: {}", e.reason),
        }
    }
}

/// Why a call on the node failed; a Kotlin `NodeException.*` / Swift `NodeError.*`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum NodeError {
    #[error("{reason}")]
    InvalidSettings { reason: String },
    /// The state dir or the secret store cannot be used (unreadable, damaged).
    #[error("{reason}")]
    State { reason: String },
    /// Not a pairing code at all (not 6 digits): nothing was sent.
    #[error("{reason}")]
    InvalidCode { reason: String },
    /// The code was wrong (or someone is in the middle): key confirmation failed.
    #[error("{reason}")]
    WrongCode { reason: String },
    /// The code expired, or this attempt took too long: show a new code.
    #[error("{reason}")]
    CodeExpired { reason: String },
    /// The code was used up (paired once, or its tries spent): show a new code.
    #[error("{reason}")]
    CodeUsedUp { reason: String },
    /// Another pairing is in progress at the gateway, or it shows no code.
    #[error("{reason}")]
    Busy { reason: String },
    /// The gateway could not be reached (address, network, TLS, time-out).
    #[error("{reason}")]
    Unreachable { reason: String },
    /// The gateway answered something else than the protocol.
    #[error("{reason}")]
    Protocol { reason: String },
    /// The node's runtime or thread could not be started.
    #[error("{reason}")]
    Runtime { reason: String },
}

impl From<crate::NodeError> for NodeError {
    fn from(e: crate::NodeError) -> Self {
        Self::State {
            reason: e.to_string(),
        }
    }
}

fn pairing(e: &PairingError) -> NodeError {
    let reason = e.to_string();
    match e {
        PairingError::BadCode => NodeError::InvalidCode { reason },
        PairingError::Mismatch => NodeError::WrongCode { reason },
        PairingError::Expired | PairingError::SessionExpired | PairingError::Replaced => {
            NodeError::CodeExpired { reason }
        }
        PairingError::Burned => NodeError::CodeUsedUp { reason },
        PairingError::Busy => NodeError::Busy { reason },
        PairingError::Malformed(_) | PairingError::WrongSession => NodeError::Protocol { reason },
    }
}

/// The pairing refusal a gateway sends carries the text of its [`PairingError`] (the same
/// crate on both sides): it is matched back to its kind.
fn refusal(message: &str) -> Option<NodeError> {
    [
        PairingError::Mismatch,
        PairingError::Expired,
        PairingError::Burned,
        PairingError::Busy,
        PairingError::SessionExpired,
        PairingError::Replaced,
        PairingError::BadCode,
    ]
    .iter()
    .find(|e| e.to_string() == message)
    .map(pairing)
}

impl From<PairOutError> for NodeError {
    fn from(e: PairOutError) -> Self {
        let reason = e.to_string();
        match &e {
            PairOutError::Code(p) => pairing(p),
            PairOutError::Dial(_) => NodeError::Unreachable { reason },
            PairOutError::Exchange { source, .. } => match source {
                ExchangeError::Refused(shape) => {
                    refusal(&shape.message).unwrap_or(NodeError::Busy { reason })
                }
                ExchangeError::TimedOut | ExchangeError::Closed(_) | ExchangeError::Failed(_) => {
                    NodeError::Unreachable { reason }
                }
                ExchangeError::TooBig | ExchangeError::Protocol(_) => {
                    NodeError::Protocol { reason }
                }
            },
            PairOutError::Malformed { .. } => NodeError::Protocol { reason },
            PairOutError::Store(_) => NodeError::State { reason },
        }
    }
}

/// How the node runs.
#[derive(Debug, Clone, uniffi::Record)]
pub struct NodeSettings {
    /// The name gateways show for this node (e.g. "Alice's iPhone").
    pub name: String,
    /// The first wait before dialing again after a failure (default 1 s).
    #[uniffi(default = 1000)]
    pub min_backoff_ms: u64,
    /// The longest wait between attempts (default 60 s).
    #[uniffi(default = 60000)]
    pub max_backoff_ms: u64,
    /// Tell gateways this node sleeps and comes back (default true, a phone): a call for it
    /// while it is away waits at the gateway up to the call's deadline.
    #[uniffi(default = true)]
    pub wakeable: bool,
}

/// A gateway this node is paired with.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct GatewayInfo {
    pub device_id: String,
    pub name: String,
    /// Where the node dials it (`host:port`); `None` for one paired another way (it dialed the
    /// node), which this node then does not dial.
    pub address: Option<String>,
    pub paired_at: i64,
}

/// The state of the link to one gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum LinkState {
    /// Not dialed: the node is stopped, or the gateway has no address.
    Idle,
    Connecting,
    Connected,
    /// Between attempts (after a failure or a dropped link), or waiting for the network.
    Waiting,
}

/// One gateway's link.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct GatewayStatus {
    pub gateway: GatewayInfo,
    pub state: LinkState,
    /// Why the last attempt or link ended.
    pub last_error: Option<String>,
}

/// The node as a whole.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct NodeStatus {
    pub running: bool,
    /// What the shell last said with `network_changed` (true until it says otherwise).
    pub network_available: bool,
    pub device_id: String,
    pub name: String,
    /// The methods this node advertises to its gateways.
    pub capabilities: Vec<String>,
    pub gateways: Vec<GatewayStatus>,
}
