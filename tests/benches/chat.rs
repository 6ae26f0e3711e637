//! Gateway overhead per chat turn (release build), against a zero-latency fake provider.
//!
//! For 1, 10 and 50 concurrent clients, the same request is timed twice: straight to the fake
//! provider (its Chat Completions endpoint, streamed) and through the gateway's
//! `/v1/chat/completions` (which calls the same fake, then answers). The difference is what the
//! gateway adds: parsing, the agent loop, the provider client, metrics and counters. A WebChat
//! turn over the WebSocket (`chat.send` → `chat.final`, with its session writes to SQLite) is
//! timed at concurrency 1 as well.
//!
//! Run: `cargo build --release -p openclaw-server && cargo bench -p openclaw-tests --bench chat`
//! Knobs: BENCH_SECS (per phase, default 3).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openclaw_testkit::{FakeLlm, Script};
use openclaw_tests::GatewayProcess;
use serde_json::json;
use std::time::{Duration, Instant};

fn secs() -> u64 {
    std::env::var("BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Phase {
    p50: Duration,
    p99: Duration,
    per_sec: f64,
}

/// `clients` threads each posting `body` to `url` in a loop for the phase's duration.
fn load(url: &str, body: &serde_json::Value, clients: usize, token: Option<&str>) -> Phase {
    let dur = Duration::from_secs(secs());
    let until = Instant::now() + dur;
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let url = url.to_owned();
            let body = body.clone();
            let token = token.map(str::to_owned);
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(true)
                    .build()
                    .into();
                let mut lat = Vec::new();
                while Instant::now() < until && lat.len() < 1_000_000 {
                    let t = Instant::now();
                    let mut req = agent.post(&url);
                    if let Some(t) = &token {
                        req = req.header("Authorization", &format!("Bearer {t}"));
                    }
                    let mut resp = req.send_json(&body).expect("request");
                    let text = resp.body_mut().read_to_string().unwrap();
                    assert!(text.contains("ok"), "{text}");
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut all: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort();
    Phase {
        p50: pct(&all, 0.5),
        p99: pct(&all, 0.99),
        per_sec: all.len() as f64 / dur.as_secs_f64(),
    }
}

fn webchat_turns(addr: std::net::SocketAddr) -> Vec<Duration> {
    use tungstenite::Message;
    let tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_nodelay(true).unwrap();
    let (mut ws, _) = tungstenite::client(format!("ws://{addr}/ws"), tcp).unwrap();
    let read = |ws: &mut tungstenite::WebSocket<_>| loop {
        if let Message::Text(t) = ws.read().unwrap() {
            return serde_json::from_str::<serde_json::Value>(t.as_str()).unwrap();
        }
    };
    read(&mut ws);
    ws.send(Message::text(
        json!({"type":"req","id":"c","method":"connect","params":openclaw_tests::connect_params(openclaw_tests::token_of(addr).as_deref())}).to_string(),
    ))
    .unwrap();
    assert_eq!(read(&mut ws)["ok"], true);
    let until = Instant::now() + Duration::from_secs(secs());
    let mut lat = Vec::new();
    let mut i = 0u64;
    while Instant::now() < until && lat.len() < 1_000_000 {
        i += 1;
        let t = Instant::now();
        // A fresh session per turn: the cost of a turn, not of an ever longer history.
        let req = json!({"type":"req","id": i.to_string(),"method":"chat.send","params":{"text":"hi","session": format!("bench-{i}")}});
        ws.send(Message::text(req.to_string())).unwrap();
        loop {
            let v = read(&mut ws);
            if v["event"] == "chat.final" {
                break;
            }
            assert_ne!(v["event"], "chat.error", "{v}");
        }
        lat.push(t.elapsed());
    }
    lat.sort();
    lat
}

fn main() {
    let fake = FakeLlm::start_in_thread();
    fake.set_fallback(Script::text(["ok"]));
    let config = format!(
        "providers:\n  openai:\n    api_key: sk-bench\n    base_url: \"{}\"\nsecurity:\n  rate_limiting:\n    enabled: false\ngateway:\n  max_connections: 200\n",
        fake.openai_url()
    );
    let mut gw = GatewayProcess::start(Some(&config), &[]).unwrap();
    gw.wait_ready(Duration::from_secs(20)).unwrap();

    let direct_body =
        json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let gateway_body =
        json!({"model": "openclaw", "messages": [{"role": "user", "content": "hi"}]});
    let direct_url = format!("{}/chat/completions", fake.openai_url());
    let gateway_url = format!("http://{}/v1/chat/completions", gw.addr);
    let token = gw.token();

    // Warm both paths (connection pools, lazily built HTTP client).
    load(&direct_url, &direct_body, 1, None);
    load(&gateway_url, &gateway_body, 1, token.as_deref());

    println!(
        "{:<10} {:>28} {:>28} {:>22}",
        "clients",
        "fake alone p50/p99 (ms), /s",
        "via gateway p50/p99 (ms), /s",
        "overhead p50/p99 (ms)"
    );
    for clients in [1usize, 10, 50] {
        let d = load(&direct_url, &direct_body, clients, None);
        let g = load(&gateway_url, &gateway_body, clients, token.as_deref());
        println!(
            "{clients:<10} {:>10.3} / {:>7.3}, {:>6.0} {:>10.3} / {:>7.3}, {:>6.0} {:>10.3} / {:>7.3}",
            ms(d.p50),
            ms(d.p99),
            d.per_sec,
            ms(g.p50),
            ms(g.p99),
            g.per_sec,
            ms(g.p50) - ms(d.p50),
            ms(g.p99) - ms(d.p99),
        );
    }
    let turns = webchat_turns(gw.addr);
    println!(
        "webchat chat.send → chat.final (1 client, with session writes): {} turns, p50 {:.3} ms, p99 {:.3} ms",
        turns.len(),
        ms(pct(&turns, 0.5)),
        ms(pct(&turns, 0.99))
    );
    let pid = gw.child.id();
    println!(
        "gateway after load: RSS {} KiB, {} threads",
        openclaw_tests::rss_kib(pid).unwrap_or(0),
        openclaw_tests::thread_count(pid).unwrap_or(0)
    );
    gw.terminate(Duration::from_secs(15)).unwrap();
}
