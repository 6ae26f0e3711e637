//! The node core through its FFI (release build): a Kotlin node on the JVM (the JVM shell over
//! the generated bindings and JNA) against the same core called from Rust (the desktop node's
//! code path, in this process), both pairing with and dialing a real release `openclaw`
//! gateway, and both called through the gateway's control API; and the release cdylib's size.
//!
//! 1. Pairing: each round the gateway shows a fresh code (`POST /api/nodes/pairing-code`, not
//!    timed), then the node pairs by it: `pair HOST:PORT CODE` to the JVM shell (timed from
//!    the command to its answer line) or `openclaw_node::pair_with_gateway`.
//! 2. 1 KB round trip: `POST /api/nodes/invoke` `system.notify` with a 1 KB body over a fresh
//!    loopback connection, routed by the gateway over the link the node dialed, answered by the
//!    Kotlin notifier (it prints one short line) or an in-memory Rust one.
//!
//! Measured 2026-12-01 (2 cores, the other one busy at times): release cdylib 3.07 MB (2.25 MB
//! fully stripped); pairing p50 2.60 ms through the JVM against 0.92 ms from Rust (the FFI
//! call also makes a runtime per pairing); a 1 KB call p50 0.64 ms against 0.20 ms, p99 5.5 ms
//! against 0.27 ms (JNA's callback into the JVM and the shell's stdout line).
//!
//! Run: `cargo build --release -p openclaw-server --bin openclaw && cargo bench -p openclaw-tests --bench mobile`
//! Knobs: BENCH_ROUNDS (default 300 calls; pairing uses a tenth).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openclaw_node::capabilities::Notifier;
use openclaw_node::{Backend, Capabilities, CapabilityError, DialOut, Node};
use openclaw_protocol::node::NotifyParams;
use openclaw_tests::mobile::{Gateway, Shell, build};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn rounds() -> usize {
    std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

fn report(what: &str, mut lat: Vec<Duration>) {
    lat.sort();
    let pct = |p: f64| lat[(((lat.len() - 1) as f64) * p).round() as usize].as_secs_f64() * 1e3;
    println!(
        "{what:<36} n={:<5} p50 {:>8.3} ms   p99 {:>8.3} ms   min {:>8.3} ms",
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

/// `rounds` 1 KB `system.notify` calls through the gateway's control API.
fn calls(gateway: &Gateway, rounds: usize) -> Vec<Duration> {
    let body = "x".repeat(1024);
    (0..rounds)
        .map(|_| {
            let t = Instant::now();
            let (status, v) =
                gateway.invoke("system.notify", json!({"title": "bench", "body": body}));
            let took = t.elapsed();
            assert_eq!(status, 200, "{v}");
            took
        })
        .collect()
}

fn main() {
    let n = rounds();
    let built = build(true).unwrap_or_else(|e| panic!("{e}"));
    let size = std::fs::metadata(&built.lib).unwrap().len();
    println!(
        "release cdylib {}: {:.2} MB",
        built.lib.display(),
        size as f64 / 1e6
    );
    let data = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(data.path());
    let at = gateway.addr.to_string();

    // The Kotlin node on the JVM.
    let state = tempfile::tempdir().unwrap();
    let mut shell = Shell::jvm(&built, state.path(), "phone-jvm", None);
    let mut pairing = Vec::new();
    for _ in 0..(n / 10).max(3) {
        let code = gateway.code("phone-jvm");
        let t = Instant::now();
        let said = shell.ask(&format!("pair {at} {code}"), "paired ");
        pairing.push(t.elapsed());
        assert!(said.starts_with("paired "), "{said}");
    }
    report("pairing, Kotlin node (JVM, FFI)", pairing);
    shell.ask("start", "started");
    gateway.wait_connected("phone-jvm", true);
    calls(&gateway, 20);
    report("1 KB call, Kotlin node (JVM, FFI)", calls(&gateway, n));
    shell.ask("stop", "stopped");
    gateway.wait_connected("phone-jvm", false);
    shell.ask("quit", "bye");

    // The same core from Rust, as the desktop node runs it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut caps = Capabilities::none("bench node");
    caps.notifier = Backend::Ready(Arc::new(Discard));
    let node = Node::open(state.path().to_owned(), "desktop".into(), caps).unwrap();
    let mut pairing = Vec::new();
    for _ in 0..(n / 10).max(3) {
        let code = gateway.code("desktop");
        let t = Instant::now();
        rt.block_on(openclaw_node::pair_with_gateway(&node, &at, &code))
            .unwrap();
        pairing.push(t.elapsed());
    }
    report("pairing, Rust node (desktop path)", pairing);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let dialer = {
        let (node, at) = (node.clone(), at.clone());
        std::thread::spawn(move || {
            rt.block_on(openclaw_node::run_dial_out(node, DialOut::new(at), async {
                let _ = stopped.await;
            }))
        })
    };
    gateway.wait_connected("desktop", true);
    calls(&gateway, 20);
    report("1 KB call, Rust node (desktop path)", calls(&gateway, n));
    let _ = stop.send(());
    dialer.join().unwrap();
}
