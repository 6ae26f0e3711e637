//! A real `openclaw-node run --gateway HOST:PORT` dials out to a gateway's node route (here
//! node-link's gateway-role acceptor on loopback, the code such a route runs), is called over
//! the link it opened, and dials again when the gateway drops it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openclaw_node::{NodeIdentity, PairedGateway};
use openclaw_node_link::dial_out::{accept_node, gateway_config, gateway_websocket_config};
use openclaw_node_link::{NoRequests, Peer};
use openclaw_pairing::identity::DeviceKey;
use openclaw_protocol::node::method;
use openclaw_tests::workspace_bin;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(10);

/// The gateway's side of the node's next connection.
async fn next_link(listener: &TcpListener, key: &DeviceKey, node: &NodeIdentity) -> Peer {
    let (tcp, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("the node dialed the gateway")
        .unwrap();
    let ws = tokio_tungstenite::accept_async_with_config(tcp, Some(gateway_websocket_config()))
        .await
        .unwrap();
    let (id, public) = (node.device_id(), node.key().public_key());
    let (peer, verified) = accept_node(
        ws,
        key,
        |claimed| (claimed == id).then_some(public),
        gateway_config("phone"),
        Arc::new(NoRequests),
        WAIT,
    )
    .await
    .unwrap();
    assert_eq!(verified.device_id, node.device_id());
    peer
}

#[test]
fn a_node_that_dials_out_is_served_over_its_own_link_and_comes_back_after_a_drop() {
    let state = tempfile::tempdir().unwrap();
    // The node's identity and its paired gateway, as pairing left them in its state dir.
    let identity = NodeIdentity::load_or_create(state.path()).unwrap();
    let gateway = DeviceKey::generate();
    let paired = vec![PairedGateway {
        device_id: gateway.device_id(),
        name: "home".into(),
        public_key: gateway.public_key(),
        paired_at: 0,
    }];
    std::fs::write(
        state.path().join("gateways.json"),
        serde_json::to_vec(&paired).unwrap(),
    )
    .unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut child = Command::new(workspace_bin("openclaw-node"))
        .arg("--state-dir")
        .arg(state.path())
        .args(["--name", "phone", "run", "--gateway", &addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    rt.block_on(async {
        let peer = next_link(&listener, &gateway, &identity).await;
        let d = peer
            .call(method::DESCRIBE, Value::Null, WAIT)
            .await
            .unwrap();
        assert_eq!(d["name"], "phone");
        assert_eq!(d["id"], identity.device_id());

        // The gateway goes away (a restart): the node dials again within its first backoff
        // (1 s, plus up to a quarter).
        peer.close();
        let dropped = Instant::now();
        let again = next_link(&listener, &gateway, &identity).await;
        assert!(
            dropped.elapsed() < Duration::from_secs(4),
            "{:?}",
            dropped.elapsed()
        );
        let d = again
            .call(method::DESCRIBE, Value::Null, WAIT)
            .await
            .unwrap();
        assert_eq!(d["id"], identity.device_id());
    });
    let _ = child.kill();
    let _ = child.wait();
}
