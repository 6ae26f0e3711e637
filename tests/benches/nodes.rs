//! Device node figures (release build): pairing time, a gateway → node round trip carrying 1 KB
//! (alone, 10 at once on one link, and over a link the node dialed), and a 1920x1080 screenshot
//! taken by a real `openclaw-node` under Xvfb.
//!
//! The gateway side is the gateway's own node client (`openclaw_gateway::nodes`): TLS with the
//! pinned certificate, SPAKE2 pairing, signed-nonce authentication, framed requests.
//! 1. Pairing: a node served in this process (its own runtime thread); each round asks it for a
//!    fresh code, then opens TLS and runs the whole exchange (SPAKE2, key confirmation, sealed
//!    identities).
//! 2. 1 KB round trip: on one authenticated connection to that node, `system.notify` with a 1 KB
//!    body, answered by an in-memory notifier (so the figure is transport + framing + dispatch);
//!    then 10 such calls at once on that one link (each call's latency), and the same 1 KB call
//!    over a link the node dialed out to a gateway-role acceptor (`openclaw_node_link::
//!    accept_node`, plain WebSocket on loopback: the other direction, without TLS).
//! 3. Screenshot: the release `openclaw-node` binary under `xvfb-run` at 1920x1080 with a
//!    plasma-fractal picture on the root window (ImageMagick `display`), so the PNG is not a
//!    trivially compressible black screen; each round is capture + PNG + base64 + TLS + JSON.
//!
//! Run: `cargo build --release --workspace --bins && cargo bench -p openclaw-tests --bench nodes`
//! Knobs: BENCH_ROUNDS (default 1000 for the 1 KB call; pairing and screenshots use a tenth).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openclaw_gateway::nodes::{NodeConnection, gateway_key};
use openclaw_node::capabilities::Notifier;
use openclaw_node::{Backend, Capabilities, CapabilityError, Node};
use openclaw_protocol::node::NotifyParams;
use openclaw_tests::workspace_bin;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn rounds() -> usize {
    std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

fn report(what: &str, mut lat: Vec<Duration>) {
    lat.sort();
    let pct = |p: f64| lat[(((lat.len() - 1) as f64) * p).round() as usize].as_secs_f64() * 1e3;
    println!(
        "{what:<34} n={:<5} p50 {:>8.3} ms   p99 {:>8.3} ms   min {:>8.3} ms",
        lat.len(),
        pct(0.5),
        pct(0.99),
        lat[0].as_secs_f64() * 1e3
    );
}

struct Discard;

impl Notifier for Discard {
    fn notify(&self, _: &NotifyParams) -> Result<(), CapabilityError> {
        Ok(())
    }
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let key = gateway_key(dir.path()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // The in-process node.
    let mut caps = Capabilities::none("bench node");
    caps.notifier = Backend::Ready(Arc::new(Discard));
    let node = Node::open(dir.path().join("node"), "bench".into(), caps).unwrap();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let served = node.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx
                .send(listener.local_addr().unwrap().to_string())
                .unwrap();
            let _ = openclaw_node::serve(listener, served, std::future::pending::<()>()).await;
        });
    });
    let addr: String = addr_rx.recv().unwrap();

    // 1. Pairing.
    let mut lat = Vec::new();
    let mut identity = None;
    for _ in 0..(rounds() / 10).max(10) {
        let code = node.new_pairing_code(Duration::from_secs(60));
        let t = Instant::now();
        let peer = rt.block_on(async {
            NodeConnection::open(&addr, None)
                .await
                .unwrap()
                .pair(&code, "bench-gateway", &key)
                .await
                .unwrap()
        });
        lat.push(t.elapsed());
        identity = Some(peer);
    }
    report("pairing (TLS + SPAKE2 + confirm)", lat);
    let peer = identity.unwrap();

    // 2. 1 KB round trip on one authenticated connection.
    let mut conn = rt.block_on(async {
        let mut c = NodeConnection::open(&addr, peer.cert_fingerprint.clone())
            .await
            .unwrap();
        c.authenticate(&key, &peer.public_key).await.unwrap();
        c
    });
    let params = json!({"title": "bench", "body": "x".repeat(1024)});
    let mut lat = Vec::new();
    let until = Instant::now() + Duration::from_secs(30);
    while lat.len() < rounds() && Instant::now() < until {
        let t = Instant::now();
        rt.block_on(conn.request("system.notify", params.clone()))
            .unwrap();
        lat.push(t.elapsed());
    }
    report("invoke round trip, 1 KB", lat);

    // 10 concurrent 1 KB calls on the same link: each call's own latency.
    let link = conn.peer().clone();
    let mut lat = Vec::new();
    let until = Instant::now() + Duration::from_secs(30);
    while lat.len() < rounds() && Instant::now() < until {
        let batch = rt.block_on(futures_util::future::join_all((0..10).map(|_| {
            let (link, params) = (link.clone(), params.clone());
            async move {
                let t = Instant::now();
                link.call("system.notify", params, Duration::from_secs(20))
                    .await
                    .unwrap();
                t.elapsed()
            }
        })));
        lat.extend(batch);
    }
    report("10 calls at once, 1 KB, one link", lat);

    // The node dials out: a gateway-role acceptor on loopback, the node's dial-out loop on the
    // node's runtime, then the 1 KB call over the link the node opened.
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let gateway_addr = listener.local_addr().unwrap().to_string();
    let dialing = node.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(openclaw_node::run_dial_out(
            dialing,
            openclaw_node::DialOut::new(gateway_addr),
            std::future::pending::<()>(),
        ));
    });
    let node_id = node.identity().device_id();
    let node_public = node.identity().key().public_key();
    let out = rt.block_on(async {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = tokio_tungstenite::accept_async_with_config(
            tcp,
            Some(openclaw_node_link::dial_out::gateway_websocket_config()),
        )
        .await
        .unwrap();
        openclaw_node_link::accept_node(
            ws,
            &key,
            |id| (id == node_id).then_some(node_public),
            openclaw_node_link::dial_out::gateway_config("bench node"),
            Arc::new(openclaw_node_link::NoRequests),
            Duration::from_secs(10),
        )
        .await
        .unwrap()
        .0
    });
    let mut lat = Vec::new();
    let until = Instant::now() + Duration::from_secs(30);
    while lat.len() < rounds() && Instant::now() < until {
        let t = Instant::now();
        rt.block_on(out.call("system.notify", params.clone(), Duration::from_secs(20)))
            .unwrap();
        lat.push(t.elapsed());
    }
    report("node dialed out: round trip, 1 KB", lat);

    // 3. A real node process under Xvfb, 1920x1080.
    let picture = dir.path().join("screen.png");
    let made = Command::new("convert")
        .args(["-size", "1920x1080", "plasma:fractal"])
        .arg(&picture)
        .status()
        .expect("ImageMagick `convert` (Debian imagemagick)");
    assert!(made.success());
    let script = dir.path().join("session.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/bash\ndisplay -window root '{picture}' &\nsleep 1\nexec '{node}' --state-dir '{state}' --bind 127.0.0.1 --port 0 --name screen pair\n",
            picture = picture.display(),
            node = workspace_bin("openclaw-node").display(),
            state = dir.path().join("screen-node").display(),
        ),
    )
    .unwrap();
    let mut session = Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1920x1080x24 -noreset"])
        .args(["timeout", "300", "bash"])
        .arg(&script)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("xvfb-run (Debian xvfb)");
    let (mut code, mut listen) = (None, None);
    for line in BufReader::new(session.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        if let Some(rest) = line.split(" listening on ").nth(1) {
            listen = Some(rest.trim().to_owned());
        } else if let Some(c) = line.strip_prefix("pairing code: ") {
            code = Some(c[..6].to_owned());
            break;
        }
    }
    let (code, listen) = (code.unwrap(), listen.unwrap());
    let mut conn = rt.block_on(async {
        let peer = NodeConnection::open(&listen, None)
            .await
            .unwrap()
            .pair(&code, "bench-gateway", &key)
            .await
            .unwrap();
        let mut c = NodeConnection::open(&listen, peer.cert_fingerprint.clone())
            .await
            .unwrap();
        c.authenticate(&key, &peer.public_key).await.unwrap();
        c
    });
    let mut lat = Vec::new();
    let mut size = 0;
    for _ in 0..(rounds() / 10).max(10) {
        let t = Instant::now();
        let shot = rt
            .block_on(conn.request("screen.snapshot", json!({})))
            .unwrap();
        lat.push(t.elapsed());
        assert_eq!(
            (shot["width"].as_u64(), shot["height"].as_u64()),
            (Some(1920), Some(1080))
        );
        size = shot["data"].as_str().map_or(0, str::len);
    }
    report("screenshot 1920x1080 round trip", lat);
    println!(
        "screenshot payload: {:.2} MB of base64 PNG",
        size as f64 / 1e6
    );
    drop(conn);
    let _ = Command::new("pkill")
        .args(["-f", &dir.path().join("screen-node").display().to_string()])
        .status();
    let _ = session.wait();
}
