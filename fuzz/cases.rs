//! What each fuzz target does with its input, shared by the targets (`fuzz_targets/`) and by
//! the plain `cargo test` that replays every kept input (`tests/tests/fuzz_regressions.rs`),
//! so a crash found once stays a test.

/// `config.yaml` as the gateway reads it: any text, `${VAR}` expanded from a fixed
/// environment. Gives a config or a list of problems, never a panic.
pub fn config_loader(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = |name: &str| match name {
        "ANTHROPIC_API_KEY" => Some("sk-fuzz".to_owned()),
        "EMPTY" => Some(String::new()),
        _ => None,
    };
    if let Err(e) = openclaw_config::parse(text, "fuzz.yaml", &env) {
        // The report renders too (it quotes the file).
        let _ = e.to_string();
    }
}

/// A WebSocket text frame from a client, read as the gateway reads it: the frame, then the
/// `connect` parameters it may carry, and the answer to it.
pub fn ws_frames(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match openclaw_protocol::parse_request(text) {
        Ok(req) => {
            let _ = serde_json::from_value::<openclaw_protocol::ConnectParams>(req.params.clone());
            let _ = serde_json::to_string(&openclaw_protocol::Response::ok(&req.id, req.params));
        }
        Err((id, error)) => {
            let _ = serde_json::to_string(&openclaw_protocol::Response::err(id, error));
        }
    }
}

fn identity(name: &str) -> openclaw_pairing::PeerIdentity {
    openclaw_pairing::PeerIdentity {
        name: name.to_owned(),
        public_key: "AAAA".to_owned(),
        cert_fingerprint: None,
        capabilities: Vec::new(),
    }
}

/// The pairing messages each side receives: a node gets `pair.start` then `pair.confirm`, a
/// gateway gets the node's two replies. The messages are separated by a 0xFF byte.
pub fn pairing_messages(data: &[u8]) {
    use openclaw_pairing::{
        Confirm, ConfirmReply, GatewayStart, NodeConfirming, Start, StartReply,
    };
    let mut parts = data.split(|b| *b == 0xFF);
    let first = parts.next().unwrap_or_default();
    let second = parts.next().unwrap_or_default();
    if let Ok(start) = serde_json::from_slice::<Start>(first)
        && let Ok((node, _reply)) = NodeConfirming::new("123456", &start)
        && let Ok(confirm) = serde_json::from_slice::<Confirm>(second)
    {
        let _ = node.finish(&confirm, &identity("node"));
    }
    if let Ok((gateway, _start)) = GatewayStart::new("123456", "gateway")
        && let Ok(reply) = serde_json::from_slice::<StartReply>(first)
        && let Ok((confirming, _confirm)) = gateway.confirm(&reply, &identity("gateway"))
        && let Ok(reply) = serde_json::from_slice::<ConfirmReply>(second)
    {
        let _ = confirming.finish(&reply);
    }
}

/// A backup archive as `backup verify` and `restore` read it: any bytes, unpacked into a
/// scratch dir under small limits.
pub fn backup_reader(data: &[u8]) {
    static SCRATCH: std::sync::OnceLock<Option<tempfile::TempDir>> = std::sync::OnceLock::new();
    let Some(scratch) = SCRATCH.get_or_init(|| tempfile::tempdir().ok()) else {
        return;
    };
    let limits = openclaw_backup::Limits {
        max_files: 64,
        max_total_bytes: 1 << 20,
        ..openclaw_backup::Limits::DEFAULT
    };
    let _ = openclaw_backup::verify_reader(
        data,
        std::path::Path::new("fuzz.tar.gz"),
        scratch.path(),
        &limits,
    );
}

/// A connection to a device node before (and while) it authenticates: the frames a stranger
/// or a pairing gateway sends, separated by 0xFF, through the node's own request handling
/// (pairing with a shown code, `connect`, `node.describe`, capability calls).
pub fn node_protocol(data: &[u8]) {
    use std::sync::{Arc, OnceLock};
    static NODE: OnceLock<Option<Arc<openclaw_node::Node>>> = OnceLock::new();
    let Some(node) = NODE.get_or_init(|| {
        openclaw_node::Node::ephemeral("fuzz".into(), openclaw_node::Capabilities::none("fuzzing"))
            .ok()
    }) else {
        return;
    };
    // A fresh code each time, so pairing is reachable however the last input ended.
    node.new_pairing_code(std::time::Duration::from_secs(300));
    let _ = openclaw_node::server::run_frames(node, data.split(|b| *b == 0xFF));
}
