//! This computer's node (screenshot, notifications, speech, camera where there is one),
//! inside the app: linked to the embedded gateway over an in-process duplex and trusted both
//! ways without a code, because the app holds both keys. The link is the same session a
//! remote node has (the node challenges, the gateway proves its key), then routed like any.

use anyhow::{Context, Result};
use openclaw_host::GatewayHandle;
use std::path::Path;

/// The node's priority: first choice for its capabilities (a phone paired later can be
/// preferred with a lower number).
const PRIORITY: i64 = 0;

pub struct LocalNode {
    serving: tokio::task::JoinHandle<()>,
}

impl LocalNode {
    /// Completes once the node's session has ended (the gateway's end closed at shutdown).
    pub async fn stopped(self) {
        let _ = self.serving.await;
    }
}

/// Opens the node's identity under `<data dir>/node`, trusts it and the gateway both ways
/// (kept as they are after the first run) and attaches the link.
pub async fn link(gateway: &GatewayHandle, data_dir: &Path, name: String) -> Result<LocalNode> {
    let state_dir = data_dir.join("node");
    let node = {
        let (dir, name) = (state_dir.clone(), name.clone());
        // Probing the desktop (D-Bus for notifications, the display, speech) blocks.
        tokio::task::spawn_blocking(move || {
            openclaw_node::Node::open(dir, name, openclaw_node::desktop::detect())
        })
        .await
        .context("the node's start-up task failed")?
        .with_context(|| format!("cannot open the node's identity in {}", state_dir.display()))?
    };
    let (gateway_name, device_id, public_key) = gateway
        .identity()
        .await
        .context("cannot read the gateway's identity")?;
    node.trust_gateway(openclaw_node::PairedGateway {
        device_id,
        name: gateway_name,
        public_key,
        paired_at: jiff::Timestamp::now().as_second(),
    })
    .context("cannot keep the gateway's key in the node's state")?;
    let node_key = node.identity().key().public_key();
    gateway
        .trust_local_node(&name, &node_key, node.capabilities().advertised(), PRIORITY)
        .await
        .context("cannot keep this computer's node")?;
    let (gateway_end, node_end) = openclaw_node_link::duplex::pair(
        openclaw_node_link::dial_out::gateway_websocket_config(),
        openclaw_node_link::dial_out::node_websocket_config(),
    )
    .await;
    let serving = tokio::spawn(openclaw_node::serve_stream(
        node_end,
        node,
        openclaw_node::Limits::default(),
    ));
    gateway
        .attach_in_process_node(gateway_end, &node_key)
        .await
        .context("cannot link this computer's node")?;
    Ok(LocalNode { serving })
}

/// The computer's name, as the node binary names itself.
pub fn host_name() -> String {
    openclaw_node::host_name().unwrap_or_else(|| "this computer".into())
}
