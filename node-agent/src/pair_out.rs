//! Pairing by a code the gateway shows (`openclaw nodes pair --listen` on the gateway, then
//! `openclaw-node pair --gateway HOST:PORT --code NNNNNN` here): for a node that cannot be
//! dialed. The node dials the gateway's pairing route and runs the side that typed the code
//! (`pairing::Initiator` in `Direction::NodeDials`); both identities travel sealed under the
//! confirmed key, so the node learns the gateway's key (its `run --gateway` link proves the
//! gateway by it) and the gateway the node's key and capabilities. Then it hangs up.

use crate::server::{Node, PairedGateway};
use openclaw_node_link::dial_out::{DialGatewayError, dial_gateway_at};
use openclaw_node_link::exchange::{self, ExchangeError, PAIR_PATH};
use openclaw_pairing::identity::device_id_of;
use openclaw_pairing::{ConfirmReply, Direction, Initiator, PairingError, StartReply};
use openclaw_protocol::node::method;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The whole exchange must finish within this time (the gateway allows 10 s per attempt).
const LIMIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PairOutError {
    #[error(transparent)]
    Dial(#[from] DialGatewayError),
    #[error("{0}")]
    Code(#[from] PairingError),
    #[error("the gateway at {addr}: {source}")]
    Exchange { addr: String, source: ExchangeError },
    #[error("the gateway at {addr} answered something that is not a pairing message: {reason}")]
    Malformed { addr: String, reason: String },
    #[error("cannot keep the paired gateway in the state dir: {0}")]
    Store(String),
}

/// Pairs with the gateway at `addr` by the `code` it shows; keeps it as a paired gateway and
/// returns it.
pub async fn pair_with_gateway(
    node: &Arc<Node>,
    addr: &str,
    code: &str,
) -> Result<PairedGateway, PairOutError> {
    let deadline = Instant::now() + LIMIT;
    let (initiator, start) = Initiator::new_in(Direction::NodeDials, code, node.name())?;
    let mut ws = dial_gateway_at(addr, PAIR_PATH, LIMIT).await?;
    let exchange_error = |source| PairOutError::Exchange {
        addr: addr.to_owned(),
        source,
    };
    let malformed = |e: serde_json::Error| PairOutError::Malformed {
        addr: addr.to_owned(),
        reason: e.to_string(),
    };
    let params = serde_json::to_value(&start).map_err(malformed)?;
    let reply = exchange::request(&mut ws, "1", method::PAIR_START, params, deadline)
        .await
        .map_err(exchange_error)?;
    let reply: StartReply = serde_json::from_value(reply).map_err(malformed)?;
    let (confirming, confirm) = initiator.confirm(&reply, &node.my_identity())?;
    let params = serde_json::to_value(&confirm).map_err(malformed)?;
    let reply = exchange::request(&mut ws, "2", method::PAIR_CONFIRM, params, deadline)
        .await
        .map_err(exchange_error)?;
    let reply: ConfirmReply = serde_json::from_value(reply).map_err(malformed)?;
    let gateway = confirming.finish(&reply)?;
    let _ = ws.close(None).await;
    let paired = PairedGateway {
        device_id: device_id_of(&gateway.public_key)?,
        name: gateway.name,
        public_key: gateway.public_key,
        paired_at: unix_now(),
    };
    node.remember(paired.clone())
        .map_err(|e| PairOutError::Store(e.to_string()))?;
    tracing::info!(gateway = %paired.name, "paired with the gateway at {addr}");
    Ok(paired)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
