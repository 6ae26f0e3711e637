use super::*;
use futures_util::future::BoxFuture;
use openclaw_pairing::identity::DeviceKey;
use openclaw_protocol::node::{NodeConnect, method};
use openclaw_protocol::{ErrorCode, ErrorShape, Event, Request};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

const LIMIT: usize = 64 * 1024;

fn config(label: &str) -> PeerConfig {
    PeerConfig::new(label, LIMIT)
}

/// Answers `echo` with its params, `wait_both` once two of them are in flight at the same time
/// (an error after 5 s alone: calls were serialized), never answers `hang`; events go to
/// `events`.
struct TestHandler {
    arrived: Arc<tokio::sync::Barrier>,
    events: mpsc::UnboundedSender<Event>,
}

impl Handler for TestHandler {
    fn request(&self, req: Request) -> BoxFuture<'static, Result<Value, ErrorShape>> {
        let arrived = self.arrived.clone();
        Box::pin(async move {
            match req.method.as_str() {
                "echo" => Ok(req.params),
                "wait_both" => tokio::time::timeout(Duration::from_secs(5), arrived.wait())
                    .await
                    .map(|_| json!({"overlapped": true}))
                    .map_err(|_| {
                        ErrorShape::new(ErrorCode::Internal, "the other call never came meanwhile")
                    }),
                "nap" => {
                    let ms = req.params["ms"].as_u64().unwrap_or(0);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    Ok(Value::Null)
                }
                "hang" => {
                    // Longer than any test waits; the link's end aborts it.
                    tokio::time::sleep(Duration::from_secs(600)).await;
                    Ok(Value::Null)
                }
                other => Err(ErrorShape::new(ErrorCode::NotFound, format!("no {other}"))),
            }
        })
    }

    fn event(&self, event: Event) {
        let _ = self.events.send(event);
    }
}

fn handler() -> (Arc<dyn Handler>, mpsc::UnboundedReceiver<Event>) {
    let (events, rx) = mpsc::unbounded_channel();
    let h = TestHandler {
        arrived: Arc::new(tokio::sync::Barrier::new(2)),
        events,
    };
    (Arc::new(h), rx)
}

/// An authenticated in-process link: the acceptor (`accepting` role) knows the dialer's key;
/// the dialer knows the acceptor's. Returns (dialer's peer, acceptor's peer, the acceptor's
/// events, the dialer's events).
struct Linked {
    dialer: Peer,
    acceptor: Peer,
    acceptor_events: mpsc::UnboundedReceiver<Event>,
    dialer_events: mpsc::UnboundedReceiver<Event>,
}

async fn linked(accepting: Role, acceptor_config: PeerConfig) -> Linked {
    let (dial_key, accept_key) = (DeviceKey::generate(), DeviceKey::generate());
    let (dial_ws, mut accept_ws) = duplex::pair(
        codec::websocket_config(LIMIT),
        codec::websocket_config(LIMIT),
    )
    .await;
    let dialer_key = (dial_key.device_id(), dial_key.public_key());
    let accept_public = accept_key.public_key();
    let (dialer_handler, dialer_events) = handler();
    let dialing = tokio::spawn(async move {
        connect(
            dial_ws,
            accepting.peer(),
            &dial_key,
            &accept_public,
            config("acceptor"),
            dialer_handler,
            Duration::from_secs(5),
        )
        .await
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    let verified = accept(
        &mut accept_ws,
        accepting,
        &accept_key,
        |id| (id == dialer_key.0).then(|| dialer_key.1.clone()),
        deadline,
    )
    .await
    .unwrap();
    assert_eq!(verified.device_id, dialer_key.0);
    let (acceptor_handler, acceptor_events) = handler();
    let acceptor = Peer::spawn(accept_ws, acceptor_config, acceptor_handler);
    let dialer = dialing.await.unwrap().unwrap();
    Linked {
        dialer,
        acceptor,
        acceptor_events,
        dialer_events,
    }
}

const CALL: Duration = Duration::from_secs(5);

#[tokio::test]
async fn an_in_process_link_authenticates_and_carries_calls_and_events_both_ways() {
    // The node accepts, as when the gateway dials it...
    let mut l = linked(Role::Node, config("dialer")).await;
    let got = l.dialer.call("echo", json!({"a": 1}), CALL).await.unwrap();
    assert_eq!(got, json!({"a": 1}));
    // ...and the side that accepted calls too: requests are served whichever side asks.
    let got = l.acceptor.call("echo", json!([2]), CALL).await.unwrap();
    assert_eq!(got, json!([2]));
    let err = l.dialer.call("nope", Value::Null, CALL).await.unwrap_err();
    assert!(
        matches!(&err, CallError::Refused(e) if e.code == ErrorCode::NotFound),
        "{err}"
    );
    l.dialer.emit("tick", json!({"n": 1})).await.unwrap();
    l.acceptor.emit("tock", json!({"n": 2})).await.unwrap();
    let (a, b) = tokio::time::timeout(CALL, async {
        (l.acceptor_events.recv().await, l.dialer_events.recv().await)
    })
    .await
    .unwrap();
    assert_eq!(
        a.map(|e| (e.event, e.payload)),
        Some(("tick".into(), json!({"n": 1})))
    );
    assert_eq!(
        b.map(|e| (e.event, e.payload)),
        Some(("tock".into(), json!({"n": 2})))
    );

    // The gateway accepts and the node dials (a phone dialing out): the same session.
    let l = linked(Role::Gateway, config("dialer")).await;
    assert_eq!(
        l.acceptor.call("echo", json!("x"), CALL).await.unwrap(),
        json!("x")
    );
}

#[tokio::test]
async fn two_calls_to_one_peer_run_at_the_same_time() {
    let l = linked(Role::Node, config("dialer")).await;
    // Each answer waits until the other call has arrived too: serialized calls would both
    // fail after 5 s instead.
    let started = Instant::now();
    let (a, b) = tokio::join!(
        l.dialer
            .call("wait_both", Value::Null, Duration::from_secs(10)),
        l.dialer
            .call("wait_both", Value::Null, Duration::from_secs(10)),
    );
    assert_eq!(a.unwrap(), json!({"overlapped": true}));
    assert_eq!(b.unwrap(), json!({"overlapped": true}));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_closed_link_fails_every_pending_call_at_once() {
    let l = linked(Role::Node, config("dialer")).await;
    let dialer = l.dialer.clone();
    let pending = tokio::spawn(async move {
        let started = Instant::now();
        let (a, b) = tokio::join!(
            dialer.call("hang", Value::Null, Duration::from_secs(60)),
            dialer.call("hang", json!(1), Duration::from_secs(60)),
        );
        (a, b, started.elapsed())
    });
    // Both calls are in flight; then the other side goes away.
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(l.acceptor);
    let (a, b, took) = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .unwrap()
        .unwrap();
    for r in [a, b] {
        assert!(
            matches!(r, Err(CallError::Closed(LinkEnd::ByPeer(Some((1000, _)))))),
            "{r:?}"
        );
    }
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(l.dialer.is_closed());
    // A later call fails at once, with the same reason.
    let err = l.dialer.call("echo", Value::Null, CALL).await.unwrap_err();
    assert!(
        matches!(err, CallError::Closed(LinkEnd::ByPeer(_))),
        "{err}"
    );
    assert!(matches!(l.dialer.ended().await, LinkEnd::ByPeer(_)));
}

#[tokio::test]
async fn a_call_has_a_deadline_and_a_request_over_the_peers_limit_is_refused_before_sending() {
    let mut cfg = config("acceptor");
    cfg.max_outgoing = Some(1024);
    let (dial_ws, accept_ws) = duplex::pair(
        codec::websocket_config(LIMIT),
        codec::websocket_config(LIMIT),
    )
    .await;
    let (h, _) = handler();
    let (h2, _) = handler();
    let dialer = Peer::spawn(dial_ws, cfg, h);
    let _acceptor = Peer::spawn(accept_ws, config("dialer"), h2);
    let err = dialer
        .call("echo", json!("x".repeat(2000)), CALL)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallError::TooLarge { limit: 1024, .. }),
        "{err}"
    );
    let started = Instant::now();
    let err = dialer
        .call("hang", Value::Null, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::TimedOut { .. }), "{err}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
    // The link lives on after both.
    assert_eq!(dialer.call("echo", json!(7), CALL).await.unwrap(), json!(7));
}

#[tokio::test]
async fn requests_past_the_in_flight_limit_wait_their_turn_and_past_the_queue_are_refused() {
    let mut cfg = config("dialer");
    cfg.max_in_flight = 1;
    cfg.max_queued = 1;
    let l = linked(Role::Node, cfg).await;
    let started = Instant::now();
    let (first, second) = (l.dialer.clone(), l.dialer.clone());
    // Two seconds: ample time for what follows, even on a loaded machine.
    let napping = tokio::spawn(async move { first.call("nap", json!({"ms": 2000}), CALL).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Its turn comes when the nap is over.
    let waiting = tokio::spawn(async move {
        let r = second.call("echo", json!("queued"), CALL).await;
        (r, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    // One running, one waiting: a third is refused at once, retryable.
    let err = l.dialer.call("echo", Value::Null, CALL).await.unwrap_err();
    assert!(
        matches!(&err, CallError::Refused(e) if e.code == ErrorCode::Unavailable && e.retryable),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    napping.await.unwrap().unwrap();
    let (r, at) = waiting.await.unwrap();
    assert_eq!(r.unwrap(), json!("queued"));
    assert!(at >= Duration::from_secs(2), "{at:?}");
}

#[tokio::test]
async fn an_idle_link_and_an_oversized_message_end_the_link_with_a_close_code() {
    let mut cfg = config("dialer");
    cfg.idle = Some(Duration::from_millis(300));
    let l = linked(Role::Node, cfg).await;
    let end = tokio::time::timeout(Duration::from_secs(5), l.dialer.ended())
        .await
        .unwrap();
    assert!(
        matches!(&end, LinkEnd::ByPeer(Some((1008, reason))) if reason.contains("no request")),
        "{end}"
    );
    assert!(matches!(l.acceptor.end(), Some(LinkEnd::Idle(_))));

    // The acceptor takes messages of 1 KiB at most: a larger one ends the link (1009).
    let (dial_ws, accept_ws) = duplex::pair(
        codec::websocket_config(LIMIT),
        codec::websocket_config(1024),
    )
    .await;
    let (h, _) = handler();
    let (h2, _) = handler();
    let dialer = Peer::spawn(dial_ws, config("acceptor"), h);
    let acceptor = Peer::spawn(accept_ws, PeerConfig::new("dialer", 1024), h2);
    let err = dialer
        .call("echo", json!("y".repeat(4096)), CALL)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallError::Closed(LinkEnd::ByPeer(Some((1009, _))))),
        "{err}"
    );
    assert_eq!(acceptor.end(), Some(LinkEnd::TooBig { limit: 1024 }));
}

/// What `accept` answers a `connect` made by `prove` (given the challenge), over the wire.
async fn accept_answer(
    node: &DeviceKey,
    paired: &DeviceKey,
    prove: impl FnOnce(&openclaw_protocol::ConnectChallenge) -> NodeConnect,
) -> (Result<Verified, HandshakeError>, Value) {
    let node_key = DeviceKey::from_seed(&node.seed()).unwrap();
    let (mut dial_ws, mut accept_ws) = duplex::pair(
        codec::websocket_config(LIMIT),
        codec::websocket_config(LIMIT),
    )
    .await;
    let paired = (paired.device_id(), paired.public_key());
    let accepting = tokio::spawn(async move {
        accept(
            &mut accept_ws,
            Role::Node,
            &node_key,
            |id| (id == paired.0).then(|| paired.1.clone()),
            Instant::now() + Duration::from_secs(5),
        )
        .await
    });
    let by = Instant::now() + Duration::from_secs(5);
    let challenge = auth::read_challenge(&mut dial_ws, by).await.unwrap();
    let req = openclaw_protocol::Frame::Req(Request {
        id: "1".into(),
        method: method::CONNECT.into(),
        params: json!(prove(&challenge)),
    });
    codec::send(&mut dial_ws, &req, by).await.unwrap();
    let limit = Duration::from_secs(5);
    let read = tokio::time::timeout(limit, codec::read_text(&mut dial_ws)).await;
    let codec::Read::Text(answer) = read.unwrap() else {
        panic!("no answer")
    };
    let answer: Value = serde_json::from_str(&answer).unwrap();
    // Refusals close the connection.
    let closed = tokio::time::timeout(limit, codec::read_text(&mut dial_ws))
        .await
        .unwrap();
    let result = accepting.await.unwrap();
    if result.is_err() {
        assert!(
            matches!(closed, codec::Read::Closed(Some((1008, _)))),
            "{closed:?}"
        );
    }
    (result, answer)
}

#[tokio::test]
async fn a_stranger_a_wrong_key_and_a_replayed_proof_are_refused_with_their_codes() {
    let (gateway, node) = (DeviceKey::generate(), DeviceKey::generate());
    // The paired key, signing this connection's challenge: accepted.
    let (ok, answer) = accept_answer(&node, &gateway, |ch| {
        Prover::new(Role::Gateway, &gateway, &node.public_key(), ch)
            .unwrap()
            .1
    })
    .await;
    assert_eq!(ok.unwrap().device_id, gateway.device_id());
    assert_eq!(answer["ok"], true, "{answer}");
    // The paired key, but its proof names another node as its peer (the signature covers
    // both device ids): refused.
    let (r, answer) = accept_answer(&node, &gateway, |ch| {
        Prover::new(
            Role::Gateway,
            &gateway,
            &DeviceKey::generate().public_key(),
            ch,
        )
        .unwrap()
        .1
    })
    .await;
    assert!(
        matches!(
            &r,
            Err(HandshakeError::Auth(AuthError::BadSignature { .. }))
        ),
        "{r:?}"
    );
    assert_eq!(answer["error"]["code"], "UNAUTHORIZED", "{answer}");

    // A device that was never paired.
    let stranger = DeviceKey::generate();
    let (r, answer) = accept_answer(&node, &gateway, |ch| NodeConnect {
        device_id: stranger.device_id(),
        signature: stranger.sign_challenge(&openclaw_pairing::identity::Challenge {
            role: "gateway",
            signer_id: stranger.device_id(),
            peer_id: String::new(),
            nonce: ch.nonce.clone(),
            ts: ch.ts,
        }),
        nonce: "n".into(),
        ts: 1,
    })
    .await;
    assert!(
        matches!(r, Err(HandshakeError::Auth(AuthError::NotPaired { .. }))),
        "{r:?}"
    );
    assert_eq!(answer["error"]["code"], "NOT_PAIRED", "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("this gateway is not paired with this node"),
        "{answer}"
    );

    // The paired device's id with another key's signature.
    let (r, answer) = accept_answer(&node, &gateway, |ch| NodeConnect {
        device_id: gateway.device_id(),
        signature: stranger.sign_challenge(&openclaw_pairing::identity::Challenge {
            role: "gateway",
            signer_id: gateway.device_id(),
            peer_id: String::new(),
            nonce: ch.nonce.clone(),
            ts: ch.ts,
        }),
        nonce: "n".into(),
        ts: 1,
    })
    .await;
    assert!(
        matches!(r, Err(HandshakeError::Auth(AuthError::BadSignature { .. }))),
        "{r:?}"
    );
    assert_eq!(answer["error"]["code"], "UNAUTHORIZED", "{answer}");
}

/// The node's answer on another connection (`first`): a valid signature over another nonce.
fn first_answer_of(
    first: &Challenger,
    gateway: &DeviceKey,
    node: &DeviceKey,
) -> openclaw_protocol::node::NodeConnected {
    let paired = |id: &str| (id == gateway.device_id()).then(|| gateway.public_key());
    let (_, connect) = Prover::new(
        Role::Gateway,
        gateway,
        &node.public_key(),
        first.challenge(),
    )
    .unwrap();
    first.verify(node, &connect, paired).unwrap().1
}

#[test]
fn a_proof_is_good_for_one_challenge_one_role_and_one_pair_of_devices() {
    let (gateway, node) = (DeviceKey::generate(), DeviceKey::generate());
    let paired = |id: &str| (id == gateway.device_id()).then(|| gateway.public_key());
    let first = Challenger::new(Role::Node);
    let (prover, connect) = Prover::new(
        Role::Gateway,
        &gateway,
        &node.public_key(),
        first.challenge(),
    )
    .unwrap();
    let (verified, answer) = first.verify(&node, &connect, paired).unwrap();
    assert_eq!(verified.device_id, gateway.device_id());
    prover.check(&answer).unwrap();

    // Replayed on a later connection (a new challenge): refused.
    let later = Challenger::new(Role::Node);
    assert_eq!(
        later.verify(&node, &connect, paired).unwrap_err(),
        AuthError::BadSignature {
            peer: Role::Gateway
        }
    );
    assert_eq!(
        later.verify(&node, &connect, paired).unwrap_err().code(),
        ErrorCode::Unauthorized
    );
    // The same proof offered to a gateway (roles swapped) is no node's proof.
    let as_gateway = Challenger::new(Role::Gateway);
    let (_, node_connect) = Prover::new(
        Role::Gateway,
        &gateway,
        &node.public_key(),
        as_gateway.challenge(),
    )
    .unwrap();
    let paired_node = |id: &str| (id == gateway.device_id()).then(|| gateway.public_key());
    assert!(matches!(
        as_gateway.verify(&node, &node_connect, paired_node),
        Err(AuthError::BadSignature { .. })
    ));

    // The prover checks the challenger: an answer signed by another key, or for another
    // device, or over another nonce, is refused.
    let other = DeviceKey::generate();
    let ch = Challenger::new(Role::Node);
    let (prover, connect) =
        Prover::new(Role::Gateway, &gateway, &node.public_key(), ch.challenge()).unwrap();
    let (_, mut answer) = ch.verify(&node, &connect, paired).unwrap();
    let good = answer.clone();
    let first_answer = first_answer_of(&first, &gateway, &node);
    answer.device_id = other.device_id();
    assert_eq!(
        prover.check(&answer).unwrap_err(),
        AuthError::WrongDevice { peer: Role::Node }
    );
    let replayed = first_answer;
    assert_ne!(replayed.signature, good.signature);
    assert!(matches!(
        prover.check(&replayed),
        Err(AuthError::BadSignature { .. })
    ));
    prover.check(&good).unwrap();
}

#[tokio::test]
async fn a_gateway_accepting_a_node_names_itself_and_the_node_proves_to_that_gateway() {
    let (home, office) = (DeviceKey::generate(), DeviceKey::generate());
    let node = DeviceKey::generate();
    let (node_ws, gateway_ws) = duplex::pair(
        dial_out::node_websocket_config(),
        dial_out::gateway_websocket_config(),
    )
    .await;
    let node_id = (node.device_id(), node.public_key());
    let office_key = DeviceKey::from_seed(&office.seed()).unwrap();
    let accepting = tokio::spawn(async move {
        accept_node(
            gateway_ws,
            &office_key,
            |id| (id == node_id.0).then(|| node_id.1.clone()),
            dial_out::gateway_config("node"),
            Arc::new(NoRequests),
            Duration::from_secs(5),
        )
        .await
    });
    // The node is paired with two gateways: the challenge says which one this is.
    let paired = [
        (home.device_id(), home.public_key()),
        (office.device_id(), office.public_key()),
    ];
    let mut announced = None;
    let (h, _) = handler();
    let (peer, key) = connect_to(
        node_ws,
        Role::Node,
        &node,
        |id| {
            announced = id.map(str::to_owned);
            paired
                .iter()
                .find(|(pid, _)| Some(pid.as_str()) == id)
                .map(|(_, k)| k.clone())
        },
        config("gateway"),
        h,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(announced, Some(office.device_id()));
    assert_eq!(key, office.public_key());
    let (gateway, verified) = accepting.await.unwrap().unwrap();
    assert_eq!(verified.device_id, node.device_id());
    // The gateway calls the node that dialed it.
    assert_eq!(
        gateway.call("echo", json!({"k": 1}), CALL).await.unwrap(),
        json!({"k": 1})
    );
    drop(peer);
}
