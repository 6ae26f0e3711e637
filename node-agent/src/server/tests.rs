use super::*;
use crate::capabilities::CapabilityError;
use openclaw_pairing::GatewayStart;
use openclaw_pairing::identity::{Challenge, DeviceKey};
use openclaw_protocol::ConnectChallenge;
use std::io::Read;

fn node() -> Arc<Node> {
    Node::ephemeral("macbook".into(), Capabilities::none("test node")).unwrap()
}

fn req(id: &str, method: &str, params: Value) -> String {
    json!({"type": "req", "id": id, "method": method, "params": params}).to_string()
}

fn error_of(step: &Step) -> (ErrorCode, String) {
    let res = match step {
        Step::Reply(r) | Step::Close(r, _) | Step::Authenticated(r) => r,
        Step::Invoke(r) => panic!("expected an answer, got a call of {}", r.method),
    };
    let e = res.error.clone().expect("an error answer");
    (e.code, e.message)
}

fn ok_payload(step: &Step) -> Value {
    match step {
        Step::Reply(r) | Step::Close(r, _) | Step::Authenticated(r) if r.ok => {
            r.payload.clone().unwrap()
        }
        other => panic!("expected a success, got {other:?}"),
    }
}

/// A gateway's pair.start for `code`, sent on `c`; returns the gateway's state and the step.
fn start(c: &mut Conversation, code: &str) -> (GatewayStart, Step) {
    let (g, start) = GatewayStart::new(code, "home").unwrap();
    (g, c.on_text(&req("1", method::PAIR_START, json!(start))))
}

fn gateway_identity(key: &DeviceKey) -> PeerIdentity {
    PeerIdentity {
        name: "home".into(),
        public_key: key.public_key(),
        cert_fingerprint: None,
        capabilities: vec![],
    }
}

/// Finishes the pairing begun with `g` on `c`; returns the confirm step.
fn confirm(c: &mut Conversation, g: GatewayStart, start_step: &Step, key: &DeviceKey) -> Step {
    let reply: StartReply = serde_json::from_value(ok_payload(start_step)).unwrap();
    let (_, confirm) = g.confirm(&reply, &gateway_identity(key)).unwrap();
    c.on_text(&req("2", method::PAIR_CONFIRM, json!(confirm)))
}

fn wrong_code(code: &str) -> &'static str {
    if code == "000000" { "000001" } else { "000000" }
}

#[test]
fn a_stranger_may_pair_or_connect_and_nothing_else() {
    let node = node();
    for (text, closing) in [
        (req("1", method::DESCRIBE, Value::Null), Closing::NotPaired),
        (
            req("1", method::SYSTEM_NOTIFY, json!({"title": "x"})),
            Closing::NotPaired,
        ),
        (req("1", "no.such.method", Value::Null), Closing::NotPaired),
        ("{not json".to_owned(), Closing::Malformed),
        (
            json!({"type": "event", "event": "x"}).to_string(),
            Closing::Malformed,
        ),
        (
            req("1", method::PAIR_CONFIRM, json!({})),
            Closing::PairingRefused,
        ),
    ] {
        let mut c = Conversation::new(node.clone());
        let step = c.on_text(&text);
        assert!(
            matches!(step, Step::Close(_, ref why) if *why == closing),
            "{text}: {step:?}"
        );
    }
    let mut c = Conversation::new(node.clone());
    let (code, message) = error_of(&c.on_text(&req("1", method::DESCRIBE, Value::Null)));
    assert_eq!(code, ErrorCode::NotPaired);
    assert!(message.contains("pair first"), "{message}");
}

#[test]
fn describe_is_answered_during_pairing() {
    let node = node();
    let code = node.new_pairing_code(Duration::from_secs(60));
    let mut c = Conversation::new(node.clone());
    let (_g, step) = start(&mut c, &code);
    ok_payload(&step);
    let d = ok_payload(&c.on_text(&req("2", method::DESCRIBE, Value::Null)));
    assert_eq!(d["name"], "macbook");
    assert_eq!(d["id"], node.identity().device_id());
}

#[test]
fn parallel_starts_get_one_attempt_and_never_more_than_three_guesses() {
    let node = node();
    let code = node.new_pairing_code(Duration::from_secs(60));
    let wrong = wrong_code(&code);
    // Ten connections all send pair.start before anyone confirms: one proceeds.
    let mut conns: Vec<Conversation> = (0..10).map(|_| Conversation::new(node.clone())).collect();
    let mut started = Vec::new();
    let mut refused = 0;
    for c in &mut conns {
        let (g, step) = start(c, wrong);
        match &step {
            Step::Reply(r) if r.ok => started.push((g, step)),
            Step::Close(r, Closing::PairingRefused) => {
                let e = r.error.as_ref().unwrap();
                assert_eq!(e.code, ErrorCode::Unavailable);
                assert!(e.retryable);
                assert!(e.message.contains("in progress"), "{}", e.message);
                refused += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((started.len(), refused), (1, 9));
    // The refused starts cost no try: two are left after the one in flight.
    let left = lock(&node.pending).as_ref().unwrap().tries_left();
    assert_eq!(left, 2);
    // Its wrong guess fails and says how many tries are left.
    let key = DeviceKey::generate();
    let (g, step) = started.pop().unwrap();
    let (code_err, message) = error_of(&confirm(&mut conns[0], g, &step, &key));
    assert_eq!(code_err, ErrorCode::NotPaired);
    assert!(message.contains("2 tries left"), "{message}");
    // Two more wrong guesses burn it; a fourth start is refused, the right code too.
    for left in [1, 0] {
        let mut c = Conversation::new(node.clone());
        let (g, step) = start(&mut c, wrong);
        let (_, message) = error_of(&confirm(&mut c, g, &step, &key));
        assert_eq!(message.contains("burned"), left == 0, "{message}");
    }
    let mut c = Conversation::new(node.clone());
    let (_, step) = start(&mut c, &code);
    let (_, message) = error_of(&step);
    assert!(message.contains("used up"), "{message}");
    assert!(node.paired_gateways().is_empty());
}

#[test]
fn a_dropped_connection_frees_the_pairing_slot_but_keeps_its_try_counted() {
    let node = node();
    let code = node.new_pairing_code(Duration::from_secs(60));
    let mut first = Conversation::new(node.clone());
    let (_g, step) = start(&mut first, &code);
    ok_payload(&step);
    let mut second = Conversation::new(node.clone());
    let (_, step) = start(&mut second, &code);
    assert_eq!(error_of(&step).0, ErrorCode::Unavailable);
    drop(first);
    let mut third = Conversation::new(node.clone());
    let (g, step) = start(&mut third, &code);
    ok_payload(&step);
    assert_eq!(lock(&node.pending).as_ref().unwrap().tries_left(), 1);
    // And the right code pairs on the try it started.
    let key = DeviceKey::generate();
    let step = confirm(&mut third, g, &step, &key);
    assert!(
        matches!(step, Step::Close(ref r, Closing::Paired) if r.ok),
        "{step:?}"
    );
    assert_eq!(node.paired_gateways()[0].device_id, key.device_id());
}

#[test]
fn a_second_start_on_the_same_connection_ends_its_attempt() {
    let node = node();
    let code = node.new_pairing_code(Duration::from_secs(60));
    let mut c = Conversation::new(node.clone());
    let (_g, step) = start(&mut c, &code);
    ok_payload(&step);
    let (_, step) = start(&mut c, &code);
    assert!(matches!(step, Step::Close(_, Closing::PairingRefused)));
    assert_eq!(lock(&node.pending).as_ref().unwrap().tries_left(), 2);
}

#[test]
fn a_confirm_after_the_code_was_replaced_or_expired_fails() {
    let key = DeviceKey::generate();
    // Replaced: a new code (even with the same digits) while the attempt is in flight.
    let node = node();
    let code = node.new_pairing_code(Duration::from_secs(60));
    let mut c = Conversation::new(node.clone());
    let (g, step) = start(&mut c, &code);
    *lock(&node.pending) = Some(PendingCode::new(
        code.clone(),
        Instant::now(),
        Duration::from_secs(60),
    ));
    let (_, message) = error_of(&confirm(&mut c, g, &step, &key));
    assert!(message.contains("newer pairing code"), "{message}");
    assert!(node.paired_gateways().is_empty());

    // Expired: the attempt's deadline is the code's expiry at the latest.
    let code = node.new_pairing_code(Duration::from_millis(300));
    let mut c = Conversation::new(node.clone());
    let (g, step) = start(&mut c, &code);
    let deadline = c.pairing_deadline().unwrap();
    assert!(deadline <= Instant::now() + Duration::from_millis(300));
    std::thread::sleep(Duration::from_millis(350));
    let (_, message) = error_of(&confirm(&mut c, g, &step, &key));
    assert!(message.contains("expired"), "{message}");
    assert!(node.paired_gateways().is_empty());
}

#[test]
fn pairing_then_connect_authenticates_and_opens_the_capabilities() {
    let node = node();
    let code = node.new_pairing_code(Duration::from_secs(60));
    let key = DeviceKey::generate();
    let mut c = Conversation::new(node.clone());
    let (g, step) = start(&mut c, &code);
    assert!(matches!(
        confirm(&mut c, g, &step, &key),
        Step::Close(_, Closing::Paired)
    ));
    // The code was single use.
    let mut c = Conversation::new(node.clone());
    let (_, step) = start(&mut c, &code);
    assert!(error_of(&step).1.contains("used up"));

    let mut c = Conversation::new(node.clone());
    let challenge = c.challenge();
    let Frame::Event(ev) = challenge else {
        panic!("the node opens with an event")
    };
    let ch: ConnectChallenge = serde_json::from_value(ev.payload).unwrap();
    let mine = Challenge {
        role: "gateway",
        signer_id: key.device_id(),
        peer_id: node.identity().device_id(),
        nonce: ch.nonce,
        ts: ch.ts,
    };
    // A stranger's key (signing the same challenge) is refused and the connection closed.
    let stranger = DeviceKey::generate();
    let mut other = Conversation::new(node.clone());
    let forged = NodeConnect {
        device_id: stranger.device_id(),
        signature: stranger.sign_challenge(&mine),
        nonce: "n".into(),
        ts: 1,
    };
    assert!(matches!(
        other.on_text(&req("1", method::CONNECT, json!(forged))),
        Step::Close(_, Closing::NotPaired)
    ));
    let connect = NodeConnect {
        device_id: key.device_id(),
        signature: key.sign_challenge(&mine),
        nonce: "n".into(),
        ts: 1,
    };
    let step = c.on_text(&req("1", method::CONNECT, json!(connect)));
    assert!(
        matches!(step, Step::Authenticated(ref r) if r.ok),
        "{step:?}"
    );
    assert!(c.is_authenticated());
    assert_eq!(
        ok_payload(&c.on_text(&req("2", method::DESCRIBE, Value::Null)))["name"],
        "macbook"
    );
    assert!(matches!(
        c.on_text(&req("3", method::SYSTEM_NOTIFY, json!({"title": "x"}))),
        Step::Invoke(_)
    ));
    // Junk from an authenticated gateway is answered, not a reason to drop it.
    assert!(matches!(c.on_text("{junk"), Step::Reply(_)));
    assert!(matches!(
        c.on_text(&req("4", method::PAIR_START, json!({}))),
        Step::Reply(_)
    ));
}

/// A tiny deterministic generator (xorshift), so the mutation test below is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn arbitrary_frames_never_panic_and_never_open_anything_to_a_stranger() {
    let node = node();
    let code = node.new_pairing_code(Duration::from_secs(3600));
    let (_, good_start) = GatewayStart::new(&code, "home").unwrap();
    let seeds: Vec<String> = vec![
        req("1", method::PAIR_START, json!(good_start)),
        req(
            "1",
            method::PAIR_CONFIRM,
            json!({"session": "x", "mac": "!!", "sealed": ""}),
        ),
        req("1", method::PAIR_START, json!({"spake": "AAAA", "gateway_name": 7})),
        req(
            "1",
            method::CONNECT,
            json!({"device_id": "ab", "signature": "%%", "nonce": "", "ts": -1}),
        ),
        req("1", method::DESCRIBE, json!([1, 2, 3])),
        req("1", method::SCREEN_SNAPSHOT, json!({"display": 4_294_967_296u64})),
        r#"{"type":"req","id":"1","method":"pair.start","params":{"spake":"____________________________________________","gateway_name":""}}"#.into(),
        format!("{}{}", "[".repeat(200), "]".repeat(200)),
        r#"{"type":"req","id":1e999,"method":null}"#.into(),
        String::new(),
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut inputs: Vec<Vec<u8>> = seeds.iter().map(|s| s.as_bytes().to_vec()).collect();
    for _ in 0..3000 {
        let mut bytes = seeds[rng.below(seeds.len())].as_bytes().to_vec();
        for _ in 0..=rng.below(4) {
            match rng.below(3) {
                0 if !bytes.is_empty() => {
                    let i = rng.below(bytes.len());
                    bytes[i] = rng.next() as u8;
                }
                1 if !bytes.is_empty() => {
                    let i = rng.below(bytes.len());
                    bytes.truncate(i);
                }
                _ => {
                    let i = rng.below(bytes.len() + 1);
                    bytes.insert(i, b"{}[]\",:0aZ\\"[rng.below(11)]);
                }
            }
        }
        inputs.push(bytes);
    }
    for chunk in inputs.chunks(3) {
        let steps = run_frames(&node, chunk.iter().map(Vec::as_slice));
        for step in &steps {
            // Nobody here holds a paired key: no capability call, no authentication.
            assert!(
                !matches!(step, Step::Invoke(_) | Step::Authenticated(_)),
                "{step:?}"
            );
        }
        // Each run is one connection; the one attempt it may have started ends with it.
        assert_eq!(
            lock(&node.pending)
                .as_ref()
                .unwrap()
                .in_flight(Instant::now()),
            None
        );
    }
    assert!(node.paired_gateways().is_empty());
    // Over-long and non-UTF-8 payloads never reach the dispatcher, as on the wire.
    assert!(run_frames(&node, [vec![b'x'; MAX_REQUEST_BYTES + 1].as_slice()]).is_empty());
    assert!(run_frames(&node, [&[0xff, 0xfe][..]]).is_empty());
}

fn small_limits() -> Limits {
    Limits {
        handshake: Duration::from_millis(400),
        pre_auth_per_peer: 2,
        pre_auth_total: 3,
        ..Limits::default()
    }
}

async fn serve_small(node: Arc<Node>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_with_limits(
        listener,
        node,
        crate::PeerGuard::off(),
        small_limits(),
        std::future::pending(),
    ));
    addr
}

/// How long after `since` the node closed a plain TCP connection that never started TLS
/// (`None`: not within `limit` of now).
fn closed_after(
    stream: &mut std::net::TcpStream,
    since: Instant,
    limit: Duration,
) -> Option<Duration> {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => Some(since.elapsed()),
        Ok(n) => panic!("the node sent {n} bytes to a client that sent nothing"),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Some(since.elapsed()),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_cut_after_the_handshake_deadline_and_the_budget_holds() {
    let addr = serve_small(node()).await;
    let checked = tokio::task::spawn_blocking(move || {
        let connect = || (std::net::TcpStream::connect(addr).unwrap(), Instant::now());
        // Two silent connections fill this address's budget (2); a third is closed at once.
        let (mut a, a_at) = connect();
        let (mut b, b_at) = connect();
        std::thread::sleep(Duration::from_millis(50));
        let (mut c, c_at) = connect();
        let refused = closed_after(&mut c, c_at, Duration::from_secs(2));
        // The first two are cut at the handshake deadline (400 ms), not before.
        let cut_a = closed_after(&mut a, a_at, Duration::from_secs(3));
        let cut_b = closed_after(&mut b, b_at, Duration::from_secs(3));
        // Their slots are free again.
        let (mut d, d_at) = connect();
        let cut_d = closed_after(&mut d, d_at, Duration::from_secs(3));
        (refused, [cut_a, cut_b, cut_d])
    });
    let (refused, cuts) = tokio::time::timeout(Duration::from_secs(20), checked)
        .await
        .unwrap()
        .unwrap();
    let refused = refused.expect("over budget: closed");
    assert!(refused < Duration::from_millis(300), "{refused:?}");
    for cut in cuts {
        let cut = cut.expect("cut at the deadline");
        assert!(
            cut >= Duration::from_millis(400) && cut < Duration::from_millis(1500),
            "{cut:?}"
        );
    }
}

// ---------- the node link after authentication (in-process, over a duplex pipe) ----------

/// A notifier for `title`s: "both" waits (5 s at most) until two such calls are running at
/// once, "hold" waits until `release` is set; anything else returns at once.
#[derive(Default)]
struct Rendezvous {
    state: std::sync::Mutex<(usize, bool)>,
    changed: std::sync::Condvar,
}

impl crate::capabilities::Notifier for Rendezvous {
    fn notify(&self, p: &openclaw_protocol::node::NotifyParams) -> Result<(), CapabilityError> {
        let wait = Duration::from_secs(5);
        let mut state = lock(&self.state);
        match p.title.as_str() {
            "both" => {
                state.0 += 1;
                self.changed.notify_all();
                let (state, timeout) = self
                    .changed
                    .wait_timeout_while(state, wait, |s| s.0 < 2)
                    .unwrap_or_else(|p| p.into_inner());
                drop(state);
                if timeout.timed_out() {
                    return Err(CapabilityError::Failed(
                        "the other call never ran meanwhile: calls were serialized".into(),
                    ));
                }
            }
            "hold" => {
                let _ = self
                    .changed
                    .wait_timeout_while(state, wait, |s| !s.1)
                    .unwrap_or_else(|p| p.into_inner());
            }
            _ => {}
        }
        Ok(())
    }
}

fn rendezvous_node() -> (Arc<Node>, Arc<Rendezvous>) {
    let notes = Arc::new(Rendezvous::default());
    let mut caps = Capabilities::none("test node");
    caps.notifier = crate::Backend::Ready(notes.clone());
    (Node::ephemeral("macbook".into(), caps).unwrap(), notes)
}

fn pair_in_memory(node: &Node, key: &DeviceKey) {
    node.remember(PairedGateway {
        device_id: key.device_id(),
        name: "home".into(),
        public_key: key.public_key(),
        paired_at: 0,
    })
    .unwrap();
}

/// An in-process link to `node`, authenticated with `key` as a gateway.
async fn in_process(
    node: &Arc<Node>,
    key: &DeviceKey,
) -> (
    Result<openclaw_node_link::Peer, openclaw_node_link::HandshakeError>,
    tokio::task::JoinHandle<()>,
) {
    let (gateway_ws, node_ws) = openclaw_node_link::duplex::pair(
        codec::websocket_config(openclaw_protocol::node::MAX_RESPONSE_BYTES),
        websocket_config(),
    )
    .await;
    let serving = tokio::spawn(serve_stream(node_ws, node.clone(), Limits::default()));
    let config = PeerConfig {
        max_outgoing: Some(MAX_REQUEST_BYTES),
        ..PeerConfig::new(
            "in-process node",
            openclaw_protocol::node::MAX_RESPONSE_BYTES,
        )
    };
    let peer = openclaw_node_link::connect(
        gateway_ws,
        Role::Gateway,
        key,
        &node.identity().key().public_key(),
        config,
        Arc::new(openclaw_node_link::NoRequests),
        Duration::from_secs(5),
    )
    .await;
    (peer, serving)
}

const CALL: Duration = Duration::from_secs(10);

#[tokio::test]
async fn an_in_process_node_serves_two_calls_at_the_same_time() {
    let (node, _) = rendezvous_node();
    let key = DeviceKey::generate();
    pair_in_memory(&node, &key);
    let (peer, _serving) = in_process(&node, &key).await;
    let peer = peer.unwrap();
    let d = peer
        .call(method::DESCRIBE, Value::Null, CALL)
        .await
        .unwrap();
    assert_eq!(d["id"], node.identity().device_id());
    assert_eq!(d["capabilities"], json!(["system.notify"]));
    // Each call returns only once the other one is running too: served one after the other,
    // both would fail (after 5 s) instead.
    let started = Instant::now();
    let both = json!({"title": "both"});
    let (a, b) = tokio::join!(
        peer.call(method::SYSTEM_NOTIFY, both.clone(), CALL),
        peer.call(method::SYSTEM_NOTIFY, both, CALL),
    );
    assert_eq!(a.unwrap()["delivered"], true);
    assert_eq!(b.unwrap()["delivered"], true);
    assert!(started.elapsed() < Duration::from_secs(4));
    // An authenticated gateway is still refused a second `connect` or a pairing.
    let err = peer
        .call(method::PAIR_START, json!({}), CALL)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, openclaw_node_link::CallError::Refused(e) if e.code == ErrorCode::InvalidRequest && e.message.contains("already authenticated")),
        "{err}"
    );
    // A capability the node lacks: its typed code.
    let err = peer
        .call(method::CAMERA_SNAP, Value::Null, CALL)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, openclaw_node_link::CallError::Refused(e) if e.code == ErrorCode::CameraUnavailable),
        "{err}"
    );
}

#[tokio::test]
async fn when_the_node_goes_away_a_call_in_flight_fails_at_once() {
    let (node, notes) = rendezvous_node();
    let key = DeviceKey::generate();
    pair_in_memory(&node, &key);
    let (peer, serving) = in_process(&node, &key).await;
    let peer = peer.unwrap();
    let p = peer.clone();
    let held = tokio::spawn(async move {
        let started = Instant::now();
        let r = p
            .call(method::SYSTEM_NOTIFY, json!({"title": "hold"}), CALL)
            .await;
        (r, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The node's session ends (the tray app quits its node): its link closes.
    serving.abort();
    let (r, took) = tokio::time::timeout(Duration::from_secs(5), held)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(r, Err(openclaw_node_link::CallError::Closed(_))),
        "{r:?}"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
    lock(&notes.state).1 = true;
    notes.changed.notify_all();
}

#[tokio::test]
async fn connect_refusals_keep_their_codes_on_the_link() {
    let (node, _) = rendezvous_node();
    let key = DeviceKey::generate();
    pair_in_memory(&node, &key);
    // A gateway the node never paired with.
    let (peer, _) = in_process(&node, &DeviceKey::generate()).await;
    let err = peer.unwrap_err();
    assert!(
        matches!(&err, openclaw_node_link::HandshakeError::Refused(e) if e.code == ErrorCode::NotPaired),
        "{err}"
    );

    // A proof replayed from an earlier connection: refused as UNAUTHORIZED, and closed.
    let (mut first, first_node) = openclaw_node_link::duplex::pair(
        codec::websocket_config(openclaw_protocol::node::MAX_RESPONSE_BYTES),
        websocket_config(),
    )
    .await;
    tokio::spawn(serve_stream(first_node, node.clone(), Limits::default()));
    let by = tokio::time::Instant::now() + Duration::from_secs(5);
    let challenge = openclaw_node_link::auth::read_challenge(&mut first, by)
        .await
        .unwrap();
    let (_, proof) = openclaw_node_link::Prover::new(
        Role::Gateway,
        &key,
        &node.identity().key().public_key(),
        &challenge,
    )
    .unwrap();
    let (mut second, second_node) = openclaw_node_link::duplex::pair(
        codec::websocket_config(openclaw_protocol::node::MAX_RESPONSE_BYTES),
        websocket_config(),
    )
    .await;
    tokio::spawn(serve_stream(second_node, node.clone(), Limits::default()));
    openclaw_node_link::auth::read_challenge(&mut second, by)
        .await
        .unwrap();
    let replay = Frame::Req(Request {
        id: "1".into(),
        method: method::CONNECT.into(),
        params: json!(proof),
    });
    codec::send(&mut second, &replay, by).await.unwrap();
    let limit = Duration::from_secs(5);
    let Ok(codec::Read::Text(answer)) =
        tokio::time::timeout(limit, codec::read_text(&mut second)).await
    else {
        panic!("no answer to the replayed connect")
    };
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["error"]["code"], "UNAUTHORIZED", "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not match the paired gateway's key"),
        "{answer}"
    );
    assert!(
        matches!(
            tokio::time::timeout(limit, codec::read_text(&mut second)).await,
            Ok(codec::Read::Closed(Some((1008, _))))
        ),
        "closed as a policy violation"
    );
}

/// A capability no gateway knows of: `location.get`, answering a fixed place (or the error
/// its params ask for).
struct Location;

impl crate::capabilities::Capability for Location {
    fn spec(&self) -> openclaw_protocol::node::CapabilitySpec {
        openclaw_protocol::node::CapabilitySpec {
            name: "location.get".into(),
            description: "Where the device is.".into(),
            parameters: json!({"type": "object", "properties": {"fail": {"type": "boolean"}}}),
        }
    }

    fn call(&self, params: Value) -> BoxFuture<'_, Result<Value, CapabilityError>> {
        Box::pin(async move {
            // Asynchronous all the way: nothing here blocks the runtime.
            tokio::time::sleep(Duration::from_millis(10)).await;
            if params["fail"] == true {
                return Err(CapabilityError::Unavailable {
                    capability: "location.get".into(),
                    reason: "location services are off".into(),
                });
            }
            Ok(json!({"lat": 48.85, "lon": 2.35}))
        })
    }
}

#[tokio::test]
async fn a_registered_capability_is_described_with_its_schema_and_served_on_the_link() {
    let notes = Arc::new(Rendezvous::default());
    let mut caps = Capabilities::none("test node");
    caps.notifier = crate::Backend::Ready(notes);
    caps.register(Arc::new(Location)).unwrap();
    let node = Node::ephemeral("phone".into(), caps).unwrap();
    let key = DeviceKey::generate();
    pair_in_memory(&node, &key);
    let (peer, _serving) = in_process(&node, &key).await;
    let peer = peer.unwrap();
    let d: NodeDescription = serde_json::from_value(
        peer.call(method::DESCRIBE, Value::Null, CALL)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(d.capabilities, ["system.notify", "location.get"]);
    let names: Vec<&str> = d.specs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, d.capabilities);
    assert_eq!(d.specs[1].description, "Where the device is.");
    assert_eq!(
        d.specs[1].parameters["properties"]["fail"]["type"],
        "boolean"
    );
    assert_eq!(d.specs[0].parameters["required"], json!(["title"]));

    let here = peer.call("location.get", json!({}), CALL).await.unwrap();
    assert_eq!(here["lat"], 48.85);
    let err = peer
        .call("location.get", json!({"fail": true}), CALL)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, openclaw_node_link::CallError::Refused(e)
            if e.code == ErrorCode::CapabilityUnavailable && e.message.contains("location services are off")),
        "{err}"
    );
}

#[test]
fn a_capability_cannot_take_a_protocol_method_or_a_name_in_use() {
    struct Named(&'static str);
    impl crate::capabilities::Capability for Named {
        fn spec(&self) -> openclaw_protocol::node::CapabilitySpec {
            openclaw_protocol::node::CapabilitySpec {
                name: self.0.into(),
                description: String::new(),
                parameters: Value::Null,
            }
        }
        fn call(&self, _: Value) -> BoxFuture<'_, Result<Value, CapabilityError>> {
            Box::pin(std::future::ready(Ok(Value::Null)))
        }
    }
    use crate::capabilities::RegisterError;
    let mut caps = Capabilities::none("test");
    caps.register(Arc::new(Named("location.get"))).unwrap();
    for (name, expected) in [
        ("location.get", RegisterError::Taken("location.get".into())),
        ("connect", RegisterError::Taken("connect".into())),
        (
            "node.describe",
            RegisterError::Taken("node.describe".into()),
        ),
        (
            "system.notify",
            RegisterError::Taken("system.notify".into()),
        ),
        ("Location", RegisterError::BadName("Location".into())),
        ("", RegisterError::BadName(String::new())),
        ("a b", RegisterError::BadName("a b".into())),
    ] {
        assert_eq!(
            caps.register(Arc::new(Named(name))),
            Err(expected),
            "{name}"
        );
    }
    assert_eq!(caps.advertised(), ["location.get"]);
}
