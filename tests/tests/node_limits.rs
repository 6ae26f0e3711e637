//! The real `openclaw-node` binary against clients that do not play by the rules: parallel
//! pairing tries, oversized frames, silent and stalled connections, more connections than its
//! budget, strangers asking it to describe itself. Everything on loopback; strangers connect
//! from other 127.0.0.x addresses (all of 127/8 is loopback on Linux), the gateway from
//! 127.0.0.1. The deadlines are the node's real ones (5 s handshake, 5 s pre-auth idle, 10 s per
//! pairing attempt), so these tests take about 10 s each, run side by side.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures_util::{SinkExt, StreamExt};
use openclaw_pairing::GatewayStart;
use openclaw_tests::NodeProcess;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn loopback(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, n)
}

/// A TCP connection to `addr` from `from`.
async fn tcp_from(from: Ipv4Addr, addr: SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from.into(), 0)).unwrap();
    socket.connect(addr).await.unwrap()
}

/// TLS (no pin, as while pairing) and the WebSocket upgrade, from `from`; returns the socket
/// and the node's first frame.
async fn ws_from(from: Ipv4Addr, addr: SocketAddr) -> (Ws, Value) {
    let tcp = tcp_from(from, addr).await;
    let (config, _) = openclaw_gateway::node_tls::client_config(None).unwrap();
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from("openclaw-node").unwrap();
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(format!("wss://{addr}/"), tls)
        .await
        .unwrap();
    let first = next(&mut ws, Duration::from_secs(5)).await;
    (ws, first)
}

/// What the node sent next, within `limit`.
#[derive(Debug)]
enum Got {
    Frame(Value),
    Closed(Option<(CloseCode, String)>),
    Nothing,
}

async fn got(ws: &mut Ws, limit: Duration) -> Got {
    loop {
        match tokio::time::timeout(limit, ws.next()).await {
            Err(_) => return Got::Nothing,
            Ok(Some(Ok(Message::Text(t)))) => {
                return Got::Frame(serde_json::from_str(t.as_str()).unwrap());
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                return Got::Closed(frame.map(|f| (f.code, f.reason.to_string())));
            }
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_)) | None) => return Got::Closed(None),
        }
    }
}

async fn next(ws: &mut Ws, limit: Duration) -> Value {
    match got(ws, limit).await {
        Got::Frame(v) => v,
        other => panic!("expected a frame, got {other:?}"),
    }
}

async fn call(ws: &mut Ws, method: &str, params: Value) -> Value {
    let req = json!({"type": "req", "id": "1", "method": method, "params": params});
    ws.send(Message::text(req.to_string())).await.unwrap();
    next(ws, Duration::from_secs(10)).await
}

fn gateway_identity() -> openclaw_pairing::PeerIdentity {
    openclaw_pairing::PeerIdentity {
        name: "intruder".into(),
        public_key: openclaw_pairing::identity::DeviceKey::generate().public_key(),
        cert_fingerprint: None,
        capabilities: vec![],
    }
}

/// One round: `n` connections (each from its own address) send `pair.start` with `code` at the
/// same moment, before any confirms; the ones the node lets proceed then confirm. Returns how
/// many proceeded, and the errors of the rest and of the confirmations.
async fn parallel_round(addr: SocketAddr, n: u8, code: &str) -> (usize, Vec<Value>) {
    let mut conns = Vec::new();
    for i in 0..n {
        conns.push(ws_from(loopback(10 + i), addr).await.0);
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(usize::from(n)));
    let mut tasks = Vec::new();
    for mut ws in conns {
        let (barrier, code) = (barrier.clone(), code.to_owned());
        tasks.push(tokio::spawn(async move {
            let (state, start) = GatewayStart::new(&code, "intruder").unwrap();
            barrier.wait().await;
            let res = call(&mut ws, "pair.start", json!(start)).await;
            (ws, state, res)
        }));
    }
    let mut started = Vec::new();
    let mut errors = Vec::new();
    for t in tasks {
        let (ws, state, res) = t.await.unwrap();
        if res["ok"] == true {
            started.push((ws, state, res));
        } else {
            errors.push(res["error"].clone());
        }
    }
    // Every start has been answered before the first confirmation goes out.
    let proceeded = started.len();
    for (mut ws, state, res) in started {
        let reply = serde_json::from_value(res["payload"].clone()).unwrap();
        let (_, confirm) = state.confirm(&reply, &gateway_identity()).unwrap();
        let res = call(&mut ws, "pair.confirm", json!(confirm)).await;
        assert_eq!(res["ok"], false, "a wrong code paired: {res}");
        errors.push(res["error"].clone());
    }
    (proceeded, errors)
}

fn wrong_code(code: &str) -> &'static str {
    if code == "000000" { "000001" } else { "000000" }
}

fn cli(data: &Path, args: &[&str]) -> (i32, Value, String) {
    openclaw_tests::cli(data, None, args)
}

#[test]
fn parallel_pairing_tries_get_one_attempt_at_a_time_and_three_guesses_in_all() {
    let rt = runtime();
    // Node A: a round of ten parallel wrong starts costs one try; the right code still pairs.
    let state = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(state.path(), 300, &[]);
    let (proceeded, errors) = rt.block_on(parallel_round(node.addr(), 10, wrong_code(&node.code)));
    assert_eq!(proceeded, 1, "{errors:?}");
    let busy = errors.iter().filter(|e| e["code"] == "UNAVAILABLE").count();
    assert_eq!(busy, 9, "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|e| e["message"].as_str().unwrap().contains("2 tries left")),
        "{errors:?}"
    );
    let gw = tempfile::tempdir().unwrap();
    let addr = node.addr().to_string();
    let (code, _, out) = cli(gw.path(), &["nodes", "pair", &addr, "--code", &node.code]);
    assert_eq!(code, 0, "the code is not burned after one guess: {out}");

    // Node B: round after round, never more than three guesses in all.
    let state = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(state.path(), 300, &[]);
    let mut guesses = 0;
    let mut last = Vec::new();
    for _ in 0..5 {
        let (proceeded, errors) =
            rt.block_on(parallel_round(node.addr(), 10, wrong_code(&node.code)));
        assert!(proceeded <= 1, "{errors:?}");
        guesses += proceeded;
        last = errors;
    }
    assert_eq!(guesses, 3);
    assert!(
        last.iter()
            .all(|e| e["message"].as_str().unwrap().contains("used up")),
        "{last:?}"
    );
    let addr = node.addr().to_string();
    let (code, _, out) = cli(gw.path(), &["nodes", "pair", &addr, "--code", &node.code]);
    assert_eq!(code, 1);
    assert!(out.contains("used up"), "{out}");
}

#[test]
fn describe_is_refused_to_strangers_and_answered_during_pairing() {
    let rt = runtime();
    let state = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(state.path(), 300, &[]);
    rt.block_on(async {
        let (mut ws, challenge) = ws_from(loopback(2), node.addr()).await;
        assert_eq!(challenge["event"], "connect.challenge");
        let res = call(&mut ws, "node.describe", Value::Null).await;
        assert_eq!(res["error"]["code"], "NOT_PAIRED", "{res}");
        assert!(res.get("payload").is_none(), "{res}");
        // And the connection is closed.
        assert!(
            matches!(got(&mut ws, Duration::from_secs(2)).await, Got::Closed(_)),
            "still open"
        );

        let (mut ws, _) = ws_from(loopback(2), node.addr()).await;
        let (_, start) = GatewayStart::new(&node.code, "gw").unwrap();
        let res = call(&mut ws, "pair.start", json!(start)).await;
        assert_eq!(res["ok"], true, "{res}");
        let res = call(&mut ws, "node.describe", Value::Null).await;
        assert_eq!(res["payload"]["name"], "macbook", "{res}");
    });
}

#[test]
fn a_web_page_gets_no_websocket_from_a_node() {
    let rt = runtime();
    let state = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(state.path(), 300, &[]);
    rt.block_on(async {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let addr = node.addr();
        let tcp = tcp_from(loopback(3), addr).await;
        let (config, _) = openclaw_gateway::node_tls::client_config(None).unwrap();
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from("openclaw-node").unwrap();
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .unwrap();
        let mut req = format!("wss://{addr}/").into_client_request().unwrap();
        req.headers_mut()
            .insert("origin", "https://evil.example".parse().unwrap());
        match tokio_tungstenite::client_async(req, tls).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status().as_u16(), 403);
            }
            Err(e) => panic!("expected a 403, got {e}"),
            Ok(_) => panic!("a page with an Origin got a WebSocket from the node"),
        }
        // A gateway (no Origin) still gets one.
        let (_, challenge) = ws_from(loopback(3), addr).await;
        assert_eq!(challenge["event"], "connect.challenge");
    });
}

#[test]
fn an_oversized_frame_before_auth_is_refused_without_being_buffered() {
    let rt = runtime();
    let state = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(state.path(), 300, &[]);
    let rss_before = openclaw_tests::rss_kib(node.child.id()).unwrap();
    rt.block_on(async {
        // A frame header announcing 1 GiB, then 1 KiB of it: the node refuses at the header
        // (close 1009) instead of waiting for, or making room for, the rest.
        let (mut ws, _) = ws_from(loopback(3), node.addr()).await;
        let mut header = vec![0x81u8, 0x80 | 127];
        header.extend_from_slice(&(1u64 << 30).to_be_bytes());
        header.extend_from_slice(&[1, 2, 3, 4]);
        header.extend_from_slice(&[b'x'; 1024]);
        let raw = ws.get_mut();
        tokio::io::AsyncWriteExt::write_all(raw, &header)
            .await
            .unwrap();
        tokio::io::AsyncWriteExt::flush(raw).await.unwrap();
        let t = Instant::now();
        match got(&mut ws, Duration::from_secs(3)).await {
            Got::Closed(Some((code, reason))) => {
                assert_eq!(code, CloseCode::Size, "{reason}");
                assert!(reason.contains("65536"), "{reason}");
            }
            other => panic!("expected a 1009 close, got {other:?}"),
        }
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());

        // A whole message over the limit (one frame of 100 KiB) is refused the same way.
        let (mut ws, _) = ws_from(loopback(3), node.addr()).await;
        let big = json!({"type": "req", "id": "1", "method": "pair.start", "params": {"spake": "x".repeat(100 * 1024), "gateway_name": "g"}});
        let _ = ws.send(Message::text(big.to_string())).await;
        // The close frame (1009) may be lost to the reset a socket closed with unread data
        // sends; either way the message gets no answer and the connection ends.
        let answer = got(&mut ws, Duration::from_secs(3)).await;
        assert!(
            matches!(answer, Got::Closed(None | Some((CloseCode::Size, _)))),
            "over-limit message: {answer:?}"
        );
    });
    let rss_after = openclaw_tests::rss_kib(node.child.id()).unwrap();
    assert!(
        rss_after < rss_before + 8 * 1024,
        "the node grew from {rss_before} to {rss_after} KiB"
    );
    // The node still serves, and the code was not touched.
    let gw = tempfile::tempdir().unwrap();
    let addr = node.addr().to_string();
    let (code, _, out) = cli(gw.path(), &["nodes", "pair", &addr, "--code", &node.code]);
    assert_eq!(code, 0, "{out}");
}

/// How long after `since` the node closed `stream` (`None`: still open after `limit`).
fn closed_after(stream: &mut TcpStream, since: Instant, limit: Duration) -> Option<Duration> {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(since.elapsed()),
            // A stalled TLS handshake may get an alert first; the close is what counts.
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(since.elapsed());
            }
            Err(_) => return None,
        }
    }
}

fn std_tcp_from(from: Ipv4Addr, addr: SocketAddr) -> (TcpStream, Instant) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stream = rt.block_on(tcp_from(from, addr)).into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    (stream, Instant::now())
}

#[test]
fn silent_stalled_and_dawdling_clients_are_cut_at_their_deadlines() {
    let rt = runtime();
    let state = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(state.path(), 300, &[]);
    let addr = node.addr();
    std::thread::scope(|s| {
        // TCP, then nothing: cut at the 5 s handshake deadline.
        let silent = s.spawn(|| {
            let (mut tcp, at) = std_tcp_from(loopback(4), addr);
            closed_after(&mut tcp, at, Duration::from_secs(10))
        });
        // Half a TLS ClientHello, then nothing: the same deadline.
        let stalled = s.spawn(|| {
            let (mut tcp, at) = std_tcp_from(loopback(5), addr);
            tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc])
                .unwrap();
            closed_after(&mut tcp, at, Duration::from_secs(10))
        });
        let (silent, stalled) = (silent.join().unwrap(), stalled.join().unwrap());
        for cut in [silent, stalled] {
            let cut = cut.expect("the node closed it");
            assert!(
                cut >= Duration::from_millis(4900) && cut < Duration::from_secs(8),
                "{cut:?}"
            );
        }
    });
    rt.block_on(async {
        // Upgraded, then no request: cut at the 5 s pre-auth idle deadline, with the reason.
        let idle = async {
            let (mut ws, _) = ws_from(loopback(6), addr).await;
            let t = Instant::now();
            let got = got(&mut ws, Duration::from_secs(10)).await;
            (t.elapsed(), got)
        };
        // A pairing attempt that never confirms, kept busy with describes every 3 s (each
        // allowed during pairing): cut when the attempt's 10 s are up.
        let dawdle = async {
            let (mut ws, _) = ws_from(loopback(7), addr).await;
            let (_, start) = GatewayStart::new("123456", "gw").unwrap();
            let t = Instant::now();
            assert_eq!(call(&mut ws, "pair.start", json!(start)).await["ok"], true);
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_secs(3)).await;
                let req = json!({"type": "req", "id": "d", "method": "node.describe"});
                if ws.send(Message::text(req.to_string())).await.is_err() {
                    break;
                }
                match got(&mut ws, Duration::from_secs(5)).await {
                    Got::Frame(_) => continue,
                    other => return (t.elapsed(), other),
                }
            }
            (t.elapsed(), got(&mut ws, Duration::from_secs(5)).await)
        };
        let ((idle_after, idle_got), (dawdle_after, dawdle_got)) = tokio::join!(idle, dawdle);
        match idle_got {
            Got::Closed(Some((CloseCode::Policy, reason))) => {
                assert!(reason.contains("no request for 5 s"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(
            idle_after >= Duration::from_millis(4900) && idle_after < Duration::from_secs(8),
            "{idle_after:?}"
        );
        match dawdle_got {
            Got::Closed(Some((CloseCode::Policy, reason))) => {
                assert!(reason.contains("pairing attempt timed out"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(
            dawdle_after >= Duration::from_millis(9900) && dawdle_after < Duration::from_secs(14),
            "{dawdle_after:?}"
        );
    });
    // The timed-out attempt freed the pairing slot (and spent one try of three).
    let gw = tempfile::tempdir().unwrap();
    let (code, _, out) = cli(
        gw.path(),
        &["nodes", "pair", &addr.to_string(), "--code", &node.code],
    );
    assert_eq!(code, 0, "{out}");
}

#[test]
fn past_the_pre_auth_budget_strangers_are_refused_while_a_paired_gateway_connects() {
    let state = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(state.path(), 300, &[]);
    let addr = node.addr();
    let gw = tempfile::tempdir().unwrap();
    let (code, _, out) = cli(
        gw.path(),
        &["nodes", "pair", &addr.to_string(), "--code", &node.code],
    );
    assert_eq!(code, 0, "{out}");

    let refused_at_once = |from: Ipv4Addr| {
        let (mut tcp, at) = std_tcp_from(from, addr);
        closed_after(&mut tcp, at, Duration::from_secs(2))
            .is_some_and(|t| t < Duration::from_secs(1))
    };
    // Four silent connections from one address fill its share; a fifth is closed at once.
    let first_held = Instant::now();
    let mut held: Vec<TcpStream> = (0..4).map(|_| std_tcp_from(loopback(20), addr).0).collect();
    std::thread::sleep(Duration::from_millis(200));
    assert!(refused_at_once(loopback(20)));
    // Twelve more from three other addresses fill the 16 pre-auth slots of strangers.
    for n in 21..24 {
        held.extend((0..4).map(|_| std_tcp_from(loopback(n), addr).0));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(refused_at_once(loopback(24)), "a 17th stranger got in");
    // The paired gateway (it paired from 127.0.0.1) still connects, authenticates and calls.
    let (code, v, out) = cli(gw.path(), &["nodes", "describe", "macbook", "--json"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(v["name"], "macbook");
    // All of that while the strangers' slots were held (each is cut 5 s after it opened).
    assert!(
        refused_at_once(loopback(24)),
        "the strangers' slots were freed early"
    );
    assert!(
        first_held.elapsed() < Duration::from_millis(4800),
        "too slow to show the budget was full throughout: {:?}",
        first_held.elapsed()
    );
    drop(held);
}
