//! Pairing a real `openclaw-node` process with the `openclaw` CLI: right code, wrong code, a
//! stolen node address, removal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openclaw_testkit::tailscale::{FakeTailscaled, Peer};
use openclaw_tests::NodeProcess;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

fn start_node(state: &Path, expiry: u64) -> NodeProcess {
    NodeProcess::start(state, expiry, &[])
}

/// Starts a node with extra flags; returns it and every line it printed before its code.
fn start_node_with(state: &Path, expiry: u64, extra: &[&str]) -> (NodeProcess, Vec<String>) {
    let node = NodeProcess::start(state, expiry, extra);
    let banner = node.banner.clone();
    (node, banner)
}

fn cli(data: &Path, args: &[&str]) -> (i32, Value, String) {
    openclaw_tests::cli(data, None, args)
}

#[test]
fn pair_describe_list_and_remove_a_node() {
    let node_state = tempfile::tempdir().unwrap();
    let gw = tempfile::tempdir().unwrap();
    let node = start_node(node_state.path(), 300);
    let addr = format!("127.0.0.1:{}", node.port);

    let (code, v, out) = cli(
        gw.path(),
        &[
            "nodes",
            "pair",
            &addr,
            "--code",
            &node.code,
            "--priority",
            "1",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(v["name"], "macbook");
    let (_, v, _) = cli(gw.path(), &["nodes", "list", "--json"]);
    assert_eq!(v["nodes"][0]["name"], "macbook");
    assert_eq!(v["nodes"][0]["priority"], 1);
    let (code, v, out) = cli(gw.path(), &["nodes", "describe", "macbook", "--json"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(v["name"], "macbook");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    // A capability this node has no backend for: a clear, typed refusal.
    let (code, _, out) = cli(
        gw.path(),
        &[
            "nodes",
            "invoke",
            "--node",
            "macbook",
            "--command",
            "camera.snap",
        ],
    );
    assert_eq!(code, 1);
    assert!(
        out.contains("camera is not available on this node"),
        "{out}"
    );
    let (code, _, out) = cli(
        gw.path(),
        &[
            "nodes",
            "invoke",
            "--node",
            "macbook",
            "--command",
            "system.notify",
            "--params",
            "{not json",
        ],
    );
    assert_eq!(code, 1);
    assert!(out.contains("--params is not JSON"), "{out}");
    let audit = std::fs::read_to_string(gw.path().join("logs/audit.log")).unwrap();
    assert!(audit.contains("\"node.paired\""), "{audit}");

    // A second gateway that stole the node's address, key and pin (a copy of the first
    // gateway's database) but not its gateway key is refused by the node.
    let thief = tempfile::tempdir().unwrap();
    std::fs::copy(
        gw.path().join("openclaw.db"),
        thief.path().join("openclaw.db"),
    )
    .unwrap();
    let (code, _, out) = cli(thief.path(), &["nodes", "describe", "macbook"]);
    assert_eq!(code, 1);
    assert!(out.contains("not paired"), "{out}");

    let (code, _, _) = cli(gw.path(), &["nodes", "remove", "macbook"]);
    assert_eq!(code, 0);
    let (_, v, _) = cli(gw.path(), &["nodes", "list", "--json"]);
    assert!(v["nodes"].as_array().unwrap().is_empty());
}

#[test]
fn wrong_codes_fail_without_leaking_and_burn_the_code() {
    let node_state = tempfile::tempdir().unwrap();
    let gw = tempfile::tempdir().unwrap();
    let node = start_node(node_state.path(), 300);
    let addr = format!("127.0.0.1:{}", node.port);
    let wrong = if node.code == "000000" {
        "000001"
    } else {
        "000000"
    };
    let started = Instant::now();
    for attempt in 1..=3 {
        let (code, _, out) = cli(gw.path(), &["nodes", "pair", &addr, "--code", wrong]);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("key confirmation failed"), "{out}");
        assert!(!out.contains(&node.code), "the real code leaked: {out}");
        assert_eq!(out.contains("burned"), attempt == 3, "{out}");
    }
    let (code, _, out) = cli(gw.path(), &["nodes", "pair", &addr, "--code", &node.code]);
    assert_eq!(code, 1);
    assert!(out.contains("used up"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(30));
    let (code, _, out) = cli(gw.path(), &["nodes", "pair", &addr, "--code", "12345"]);
    assert_eq!(code, 1);
    assert!(out.contains("exactly 6 digits"), "{out}");
}

#[test]
fn an_expired_code_is_refused() {
    let node_state = tempfile::tempdir().unwrap();
    let gw = tempfile::tempdir().unwrap();
    let node = start_node(node_state.path(), 1);
    std::thread::sleep(Duration::from_millis(1200));
    let (code, _, out) = cli(
        gw.path(),
        &[
            "nodes",
            "pair",
            &format!("127.0.0.1:{}", node.port),
            "--code",
            &node.code,
        ],
    );
    assert_eq!(code, 1);
    assert!(out.contains("expired"), "{out}");
}

fn peer(host: &str, ip: &str, login: &str, online: bool) -> Peer {
    Peer {
        host_name: host.into(),
        ip: ip.into(),
        login: login.into(),
        online,
    }
}

#[test]
fn discover_lists_tailnet_peers_that_answer_as_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let tailscaled = FakeTailscaled::start(
        dir.path(),
        vec![
            peer("macbook", "127.0.0.1", "alice@example.com", true),
            peer("printer", "127.0.0.2", "bob@example.com", true),
            peer("old-laptop", "127.0.0.3", "carol@example.com", false),
        ],
    );
    let node_state = tempfile::tempdir().unwrap();
    let node = start_node(node_state.path(), 300);
    let gw = tempfile::tempdir().unwrap();
    let socket = tailscaled.socket().display().to_string();
    let port = node.port.to_string();
    let (code, v, out) = cli(
        gw.path(),
        &[
            "nodes",
            "discover",
            "--tailscale-socket",
            &socket,
            "--port",
            &port,
            "--json",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let found = v["nodes"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{v}");
    assert_eq!(found[0]["host"], "macbook");
    assert_eq!(found[0]["address"], format!("127.0.0.1:{port}"));
    assert_eq!(found[0]["paired"], false);
    // A node describes itself to paired gateways only: before pairing, discovery knows a node
    // answers there (its challenge, then its refusal), not what it is.
    assert_eq!(found[0]["name"], Value::Null, "{v}");
    assert!(
        found[0]["details"]
            .as_str()
            .unwrap()
            .contains("pair to see its details"),
        "{v}"
    );
    let (code, _, out) = cli(
        gw.path(),
        &[
            "nodes",
            "discover",
            "--tailscale-socket",
            &socket,
            "--port",
            &port,
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("an openclaw node answers here"), "{out}");

    // Once paired, discovery authenticates and shows the node in full.
    let addr = format!("127.0.0.1:{port}");
    let (code, _, out) = cli(gw.path(), &["nodes", "pair", &addr, "--code", &node.code]);
    assert_eq!(code, 0, "{out}");
    let (code, v, out) = cli(
        gw.path(),
        &[
            "nodes",
            "discover",
            "--tailscale-socket",
            &socket,
            "--port",
            &port,
            "--json",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let found = v["nodes"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{v}");
    assert_eq!(found[0]["name"], "macbook");
    assert_eq!(found[0]["paired"], true);

    // Without tailscaled, discovery says why and what to do instead.
    let (code, _, out) = cli(
        gw.path(),
        &[
            "nodes",
            "discover",
            "--tailscale-socket",
            "/nonexistent/tailscaled.sock",
        ],
    );
    assert_eq!(code, 1);
    assert!(
        out.contains("tailscaled is not running here") && out.contains("openclaw nodes pair"),
        "{out}"
    );
}

#[test]
fn tailnet_users_can_be_restricted_with_whois() {
    let dir = tempfile::tempdir().unwrap();
    // The gateway connects from 127.0.0.1, which the fake tailnet says is alice.
    let tailscaled = FakeTailscaled::start(
        dir.path(),
        vec![peer("gateway", "127.0.0.1", "alice@example.com", true)],
    );
    let socket = tailscaled.socket().display().to_string();
    let gw = tempfile::tempdir().unwrap();

    let state = tempfile::tempdir().unwrap();
    let (node, banner) = start_node_with(
        state.path(),
        300,
        &[
            "--tailscale-socket",
            &socket,
            "--allow-tailnet-user",
            "owner@example.com",
        ],
    );
    assert!(
        banner
            .iter()
            .any(|l| l.contains("only tailnet users owner@example.com")),
        "{banner:?}"
    );
    let (code, _, out) = cli(
        gw.path(),
        &[
            "nodes",
            "pair",
            &format!("127.0.0.1:{}", node.port),
            "--code",
            &node.code,
        ],
    );
    assert_eq!(code, 1, "alice is not allowed: {out}");
    drop(node);

    let state = tempfile::tempdir().unwrap();
    let (node, _) = start_node_with(
        state.path(),
        300,
        &[
            "--tailscale-socket",
            &socket,
            "--allow-tailnet-user",
            "alice@example.com",
        ],
    );
    let (code, _, out) = cli(
        gw.path(),
        &[
            "nodes",
            "pair",
            &format!("127.0.0.1:{}", node.port),
            "--code",
            &node.code,
        ],
    );
    assert_eq!(code, 0, "{out}");

    // No tailscaled at all: the node says peers are not checked, and plain IPs work.
    let state = tempfile::tempdir().unwrap();
    let (_node, banner) = start_node_with(
        state.path(),
        300,
        &["--tailscale-socket", "/nonexistent/tailscaled.sock"],
    );
    assert!(
        banner
            .iter()
            .any(|l| l.contains("tailscaled not found") && l.contains("peers are not checked")),
        "{banner:?}"
    );
}

/// `GET path` on the running gateway with its token: the JSON answer.
fn api(gw: &openclaw_tests::GatewayProcess, path: &str) -> Value {
    let token = gw.token();
    let (status, body) = openclaw_tests::http_get(gw.addr, path, token.as_deref())
        .unwrap_or_else(|| panic!("no answer to {path}"));
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn a_node_paired_while_the_gateway_runs_is_connected_and_a_tool_at_once() {
    let node_state = tempfile::tempdir().unwrap();
    let node = start_node(node_state.path(), 300);
    let addr = format!("127.0.0.1:{}", node.port);
    let mut gw = openclaw_tests::GatewayProcess::start(None, &[]).unwrap();
    gw.wait_ready(Duration::from_secs(20)).unwrap();
    let metrics = gw.get("/metrics").unwrap().1;
    assert!(
        !metrics.contains("tool=\"take_screenshot\""),
        "no node, no node tools"
    );

    let out = gw.cli(&["nodes", "pair", &addr, "--code", &node.code, "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(v["name"], "macbook");
    assert_eq!(v["connected_now"], true, "{v}");

    // No restart: the running gateway connects it and offers its tools.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let nodes = api(&gw, "/api/nodes");
        if nodes["nodes"][0]["connected"] == true {
            assert_eq!(nodes["nodes"][0]["name"], "macbook");
            break;
        }
        assert!(Instant::now() < deadline, "never connected: {nodes}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let metrics = gw.get("/metrics").unwrap().1;
    assert!(
        metrics.contains("openclaw_node_connected{node=\"macbook\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("tool=\"take_screenshot\""), "{metrics}");
    // And the store has it for the next start.
    let out = gw.cli(&["nodes", "list", "--json"]);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["nodes"][0]["name"], "macbook");

    // Removing it closes the link at once.
    let out = gw.cli(&["nodes", "remove", "macbook"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nodes = api(&gw, "/api/nodes");
    assert!(nodes["nodes"].as_array().unwrap().is_empty(), "{nodes}");
    let metrics = gw.get("/metrics").unwrap().1;
    assert!(
        metrics.contains("openclaw_node_connected{node=\"macbook\"} 0"),
        "{metrics}"
    );
    let out = gw.cli(&["nodes", "remove", "macbook"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no paired node named `macbook`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
