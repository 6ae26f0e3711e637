//! The gateway's side of device nodes: its own device key, pairing with a node through the code
//! it shows, and authenticated sessions with paired nodes (pinned TLS + mutual signed nonces).
//!
//! A node is a peer on the network, so what it can make the gateway wait for or hold is
//! bounded: one deadline for opening a connection (TCP, TLS, WebSocket, challenge), one for each
//! request however many unrelated frames arrive meanwhile, and WebSocket limits sized for the
//! largest answer a node legitimately sends ([`MAX_RESPONSE_BYTES`]: a screenshot).

use openclaw_node_link::auth::read_challenge;
use openclaw_node_link::dial::dial_node;
use openclaw_node_link::{
    AuthError, CallError, HandshakeError, LinkEnd, NoRequests, Peer, PeerConfig, Prover, Role,
};
use openclaw_pairing::identity::{DeviceKey, device_id_of};
use openclaw_pairing::{ConfirmReply, GatewayStart, PeerIdentity, StartReply};
use openclaw_protocol::node::{MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, NodeConnected, method};
use openclaw_protocol::{ConnectChallenge, ErrorCode};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub const KEY_FILE: &str = "gateway.key";
/// How long opening a connection may take in all, and the default deadline of one request.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// The WebSocket limits of a connection to a node: one answer of at most
/// [`MAX_RESPONSE_BYTES`] (a node sends each answer as a single frame, so the frame limit is
/// the same; the library's defaults, 64 MiB messages and 16 MiB frames, were both wrong: too
/// much to buffer from a peer, and too little for the largest screenshot a node may send).
pub fn websocket_config() -> WebSocketConfig {
    openclaw_node_link::codec::websocket_config(MAX_RESPONSE_BYTES)
}

#[derive(Debug, thiserror::Error)]
pub enum NodeLinkError {
    #[error("cannot reach the node at {addr}: {reason}")]
    Unreachable { addr: String, reason: String },
    #[error("the node at {addr} refused{}: {message}", code.map(|c| format!(" ({})", c.as_str())).unwrap_or_default())]
    Refused {
        addr: String,
        /// The node's error code, when it answered a request (not when it closed the socket).
        code: Option<ErrorCode>,
        message: String,
    },
    #[error("pairing with {addr} failed: {0}", addr = .1)]
    Pairing(openclaw_pairing::PairingError, String),
    #[error(
        "the TLS certificate seen at {addr} ({seen}) is not the one the node vouched for ({vouched}): someone is in the middle; pairing aborted"
    )]
    CertificateMismatch {
        addr: String,
        seen: String,
        vouched: String,
    },
    #[error("the node at {addr} broke the protocol: {reason}")]
    Protocol { addr: String, reason: String },
    #[error(
        "the node at {addr} did not answer `{method}` within {} s (it may be busy, asleep or gone); try again",
        after.as_secs_f32()
    )]
    TimedOut {
        addr: String,
        /// The request waited for (`open` while connecting).
        method: String,
        after: Duration,
    },
    #[error(
        "the `{method}` request is {size} bytes, over the {limit} bytes a node accepts; send less (e.g. a shorter text)"
    )]
    RequestTooLarge {
        method: String,
        size: usize,
        limit: usize,
    },
    #[error("gateway key {path}: {reason}")]
    Key { path: String, reason: String },
}

/// Loads the gateway's device key from the data dir, creating it on first use (mode 0600).
pub fn gateway_key(data_dir: &Path) -> Result<DeviceKey, NodeLinkError> {
    let path = data_dir.join(KEY_FILE);
    let fail = |reason: String| NodeLinkError::Key {
        path: path.display().to_string(),
        reason,
    };
    match std::fs::read(&path) {
        Ok(seed) => DeviceKey::from_seed(&seed).map_err(|e| {
            fail(format!(
                "{e}; move it away to make a new key (every node must then be paired again)"
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = DeviceKey::generate();
            use std::io::Write;
            openclaw_fs::create_new_private(&path)
                .and_then(|mut f| f.write_all(&key.seed()).and_then(|()| f.sync_all()))
                .map_err(|e| fail(e.to_string()))?;
            Ok(key)
        }
        Err(e) => Err(fail(e.to_string())),
    }
}

/// A TLS + WebSocket connection to a node, after its `connect.challenge`: a node link
/// ([`Peer`]) whose calls run concurrently, each with its own deadline.
pub struct NodeConnection {
    addr: String,
    peer: Peer,
    challenge: ConnectChallenge,
    /// Fingerprint of the certificate the TLS handshake showed.
    pub seen_fingerprint: String,
}

impl std::fmt::Debug for NodeConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeConnection")
            .field("addr", &self.addr)
            .finish()
    }
}

/// How the gateway runs its side of a link to the node at `addr`.
fn link_config(addr: &str, tasks: Option<&crate::tasks::Tasks>) -> PeerConfig {
    PeerConfig {
        tasks: tasks.map(crate::tasks::Tasks::tracker),
        // The node would close the connection on a larger request: refused here instead.
        max_outgoing: Some(MAX_REQUEST_BYTES),
        send_timeout: TIMEOUT,
        ..PeerConfig::new(addr, MAX_RESPONSE_BYTES)
    }
}

impl NodeConnection {
    /// Dials `addr` (`host:port`); `pin` is the paired certificate fingerprint (none while pairing).
    pub async fn open(addr: &str, pin: Option<String>) -> Result<Self, NodeLinkError> {
        Self::open_in(addr, pin, None).await
    }

    /// As [`Self::open`], with the link's tasks among the gateway's `tasks` (its shutdown
    /// waits for them).
    pub async fn open_in(
        addr: &str,
        pin: Option<String>,
        tasks: Option<&crate::tasks::Tasks>,
    ) -> Result<Self, NodeLinkError> {
        // One deadline for every step, the challenge included.
        let deadline = Instant::now() + TIMEOUT;
        let (mut ws, seen_fingerprint) = dial_node(addr, pin, TIMEOUT, websocket_config())
            .await
            .map_err(|e| NodeLinkError::Unreachable {
                addr: addr.to_owned(),
                reason: e.to_string(),
            })?;
        let challenge = read_challenge(&mut ws, deadline)
            .await
            .map_err(|e| handshake_error(addr, e))?;
        Ok(Self {
            addr: addr.to_owned(),
            peer: Peer::spawn(ws, link_config(addr, tasks), Arc::new(NoRequests)),
            challenge,
            seen_fingerprint,
        })
    }

    fn protocol(&self, reason: String) -> NodeLinkError {
        NodeLinkError::Protocol {
            addr: self.addr.clone(),
            reason,
        }
    }

    /// The link, for calls that run beside others (the router's).
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Sends a request and waits for its response, [`TIMEOUT`] at most.
    pub async fn request(&mut self, method: &str, params: Value) -> Result<Value, NodeLinkError> {
        self.request_within(method, params, TIMEOUT).await
    }

    /// Sends a request and waits for its response, `limit` at most in all: frames the node sends
    /// meanwhile (events, answers to older requests) do not extend it.
    pub async fn request_within(
        &mut self,
        method: &str,
        params: Value,
        limit: Duration,
    ) -> Result<Value, NodeLinkError> {
        call(&self.peer, &self.addr, method, params, limit).await
    }

    /// Pairs with the node showing `code`; returns the node's identity, whose certificate
    /// fingerprint matched the TLS handshake.
    pub async fn pair(
        mut self,
        code: &str,
        gateway_name: &str,
        key: &DeviceKey,
    ) -> Result<PeerIdentity, NodeLinkError> {
        let addr = self.addr.clone();
        let (start_state, start) = GatewayStart::new(code, gateway_name)
            .map_err(|e| NodeLinkError::Pairing(e, addr.clone()))?;
        let reply: StartReply = serde_json::from_value(
            self.request(method::PAIR_START, serde_json::json!(start))
                .await?,
        )
        .map_err(|e| self.protocol(format!("bad pair.start reply: {e}")))?;
        let me = PeerIdentity {
            name: gateway_name.to_owned(),
            public_key: key.public_key(),
            cert_fingerprint: None,
            capabilities: Vec::new(),
        };
        let (confirming, confirm) = start_state
            .confirm(&reply, &me)
            .map_err(|e| NodeLinkError::Pairing(e, addr.clone()))?;
        let reply: ConfirmReply = serde_json::from_value(
            self.request(method::PAIR_CONFIRM, serde_json::json!(confirm))
                .await?,
        )
        .map_err(|e| self.protocol(format!("bad pair.confirm reply: {e}")))?;
        let node = confirming
            .finish(&reply)
            .map_err(|e| NodeLinkError::Pairing(e, addr.clone()))?;
        let vouched = node.cert_fingerprint.clone().unwrap_or_default();
        if vouched != self.seen_fingerprint {
            return Err(NodeLinkError::CertificateMismatch {
                addr,
                seen: self.seen_fingerprint.clone(),
                vouched,
            });
        }
        Ok(node)
    }

    /// Proves this gateway's key to a paired node and checks the node's proof against its
    /// pinned public key.
    pub async fn authenticate(
        &mut self,
        key: &DeviceKey,
        node_public_key: &str,
    ) -> Result<(), NodeLinkError> {
        // A damaged record is a pairing error, as the store's other checks report it.
        device_id_of(node_public_key).map_err(|e| NodeLinkError::Pairing(e, self.addr.clone()))?;
        let (prover, params) = Prover::new(Role::Gateway, key, node_public_key, &self.challenge)
            .map_err(|e| self.protocol(e.to_string()))?;
        let answer: NodeConnected = serde_json::from_value(
            self.request(method::CONNECT, serde_json::json!(params))
                .await?,
        )
        .map_err(|e| self.protocol(format!("bad connect reply: {e}")))?;
        prover.check(&answer).map_err(|e| match e {
            AuthError::WrongDevice { .. } => {
                self.protocol("the node answered with another device id".into())
            }
            _ => NodeLinkError::Refused {
                addr: self.addr.clone(),
                code: None,
                message: "the node's signature does not match its paired key".into(),
            },
        })
    }
}

/// One call on the link to the node at `addr`, its failure in the gateway's terms.
pub async fn call(
    peer: &Peer,
    addr: &str,
    method: &str,
    params: Value,
    limit: Duration,
) -> Result<Value, NodeLinkError> {
    peer.call(method, params, limit)
        .await
        .map_err(|e| call_error(addr, e))
}

fn call_error(addr: &str, e: CallError) -> NodeLinkError {
    let addr = addr.to_owned();
    match e {
        CallError::TooLarge {
            method,
            size,
            limit,
        } => NodeLinkError::RequestTooLarge {
            method,
            size,
            limit,
        },
        CallError::TimedOut { method, after } => NodeLinkError::TimedOut {
            addr,
            method,
            after,
        },
        CallError::Refused(e) => NodeLinkError::Refused {
            addr,
            code: Some(e.code),
            message: e.message,
        },
        CallError::Closed(end) => link_ended(addr, end),
        CallError::Encode(reason) => NodeLinkError::Protocol { addr, reason },
    }
}

fn link_ended(addr: String, end: LinkEnd) -> NodeLinkError {
    match end {
        // The node closed the connection (no answer to the request): what it said, if anything.
        LinkEnd::ByPeer(frame) => NodeLinkError::Refused {
            addr,
            code: None,
            message: frame.map_or_else(|| "closed".into(), |(_, reason)| reason),
        },
        LinkEnd::TooBig { .. } => NodeLinkError::Protocol {
            addr,
            reason: format!("it sent more than the {MAX_RESPONSE_BYTES} bytes an answer may have"),
        },
        other => NodeLinkError::Protocol {
            addr,
            reason: other.to_string(),
        },
    }
}

fn handshake_error(addr: &str, e: HandshakeError) -> NodeLinkError {
    let addr = addr.to_owned();
    match e {
        HandshakeError::TimedOut(after) => NodeLinkError::TimedOut {
            addr,
            method: "open".into(),
            after,
        },
        HandshakeError::Link(end) => link_ended(addr, end),
        HandshakeError::Refused(e) => NodeLinkError::Refused {
            addr,
            code: Some(e.code),
            message: e.message,
        },
        HandshakeError::Auth(e) => NodeLinkError::Protocol {
            addr,
            reason: e.to_string(),
        },
        HandshakeError::TooBig => link_ended(addr, LinkEnd::TooBig { limit: 0 }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use openclaw_protocol::Frame;
    use tokio_tungstenite::tungstenite::Message;

    async fn start_node(dir: &Path) -> (String, Arc<openclaw_node::Node>) {
        let node = openclaw_node::Node::open(
            dir.to_owned(),
            "macbook".into(),
            openclaw_node::Capabilities::none("test node"),
        )
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let n = node.clone();
        tokio::spawn(async move {
            let _ = openclaw_node::serve(listener, n, std::future::pending()).await;
        });
        (addr, node)
    }

    #[tokio::test]
    async fn pair_then_authenticate_and_describe() {
        let node_dir = tempfile::tempdir().unwrap();
        let gw_dir = tempfile::tempdir().unwrap();
        let (addr, node) = start_node(node_dir.path()).await;
        let key = gateway_key(gw_dir.path()).unwrap();
        assert_eq!(
            gateway_key(gw_dir.path()).unwrap().device_id(),
            key.device_id(),
            "the key persists"
        );

        // Not showing a code: pairing is refused.
        let conn = NodeConnection::open(&addr, None).await.unwrap();
        let err = conn.pair("123456", "home", &key).await.unwrap_err();
        assert!(
            err.to_string().contains("not showing a pairing code"),
            "{err}"
        );

        let code = node.new_pairing_code(Duration::from_secs(300));
        let conn = NodeConnection::open(&addr, None).await.unwrap();
        let paired = conn.pair(&code, "home", &key).await.unwrap();
        assert_eq!(paired.name, "macbook");
        assert_eq!(
            paired.cert_fingerprint.as_deref(),
            Some(node.identity().cert_fingerprint().as_str())
        );
        assert_eq!(node.paired_gateways()[0].device_id, key.device_id());

        // Later connections: pinned TLS + mutual signatures, then node methods.
        let mut conn = NodeConnection::open(&addr, paired.cert_fingerprint.clone())
            .await
            .unwrap();
        conn.authenticate(&key, &paired.public_key).await.unwrap();
        let d = conn.request(method::DESCRIBE, Value::Null).await.unwrap();
        assert_eq!(d["name"], "macbook");
        assert_eq!(d["id"], node.identity().device_id());
        // A capability the node lacks: a typed error that says why.
        let err = conn
            .request(method::CAMERA_SNAP, Value::Null)
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("camera is not available on this node: test node"),
            "{err}"
        );

        // The code was single use.
        let conn = NodeConnection::open(&addr, None).await.unwrap();
        let err = conn.pair(&code, "home", &key).await.unwrap_err();
        assert!(err.to_string().contains("used up"), "{err}");
    }

    #[tokio::test]
    async fn wrong_codes_burn_the_code_after_three_attempts() {
        let node_dir = tempfile::tempdir().unwrap();
        let gw_dir = tempfile::tempdir().unwrap();
        let (addr, node) = start_node(node_dir.path()).await;
        let key = gateway_key(gw_dir.path()).unwrap();
        let code = node.new_pairing_code(Duration::from_secs(300));
        let wrong = if code == "000000" { "000001" } else { "000000" };
        for attempt in 1..=3 {
            let conn = NodeConnection::open(&addr, None).await.unwrap();
            let err = conn
                .pair(wrong, "home", &key)
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains("key confirmation failed"), "{err}");
            assert_eq!(err.contains("burned"), attempt == 3, "{err}");
        }
        // Now even the right code is refused.
        let conn = NodeConnection::open(&addr, None).await.unwrap();
        let err = conn.pair(&code, "home", &key).await.unwrap_err();
        assert!(err.to_string().contains("used up"), "{err}");
        assert!(node.paired_gateways().is_empty());
    }

    #[tokio::test]
    async fn expired_codes_and_unpaired_gateways_are_refused() {
        let node_dir = tempfile::tempdir().unwrap();
        let (addr, node) = start_node(node_dir.path()).await;
        let gw_dir = tempfile::tempdir().unwrap();
        let key = gateway_key(gw_dir.path()).unwrap();
        let code = node.new_pairing_code(Duration::from_millis(1));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let conn = NodeConnection::open(&addr, None).await.unwrap();
        let err = conn.pair(&code, "home", &key).await.unwrap_err();
        assert!(err.to_string().contains("expired"), "{err}");

        // Pair one gateway; a second one (another key) that knows the node's address and
        // public key still cannot get in.
        let code = node.new_pairing_code(Duration::from_secs(300));
        let paired = NodeConnection::open(&addr, None)
            .await
            .unwrap()
            .pair(&code, "home", &key)
            .await
            .unwrap();
        let stranger = DeviceKey::generate();
        let mut conn = NodeConnection::open(&addr, paired.cert_fingerprint.clone())
            .await
            .unwrap();
        let err = conn
            .authenticate(&stranger, &paired.public_key)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not paired"), "{err}");
        // Before authenticating, neither node.describe nor a capability is answered.
        for (method, params) in [
            (method::DESCRIBE, Value::Null),
            (method::SYSTEM_NOTIFY, serde_json::json!({"title": "x"})),
        ] {
            let mut conn = NodeConnection::open(&addr, paired.cert_fingerprint.clone())
                .await
                .unwrap();
            let err = conn.request(method, params).await.unwrap_err();
            assert!(
                matches!(
                    err,
                    NodeLinkError::Refused {
                        code: Some(ErrorCode::NotPaired),
                        ..
                    }
                ),
                "{err}"
            );
            assert!(err.to_string().contains("pair first"), "{err}");
        }
    }

    /// What a stand-in node does with the first request it reads.
    enum Fake {
        /// Sends unrelated frames (events, answers to other ids) every 50 ms, never the answer.
        Chatter,
        /// Answers with this payload.
        Answer(Value),
    }

    /// A stand-in node on loopback (TLS with a throwaway certificate, the challenge, then
    /// `behaviour`), for what a real node never does. Serves one connection.
    async fn fake_node(behaviour: Fake) -> String {
        use openclaw_protocol::{Event, Response};
        let identity = openclaw_node::NodeIdentity::ephemeral().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(identity.tls_server_config().unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let tls = acceptor.accept(tcp).await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tls).await.unwrap();
            let send = |frame: &Frame| Message::text(serde_json::to_string(frame).unwrap());
            let challenge = Frame::Event(Event {
                event: "connect.challenge".into(),
                payload: serde_json::json!({"nonce": "n", "ts": 1}),
                seq: Some(0),
            });
            ws.send(send(&challenge)).await.unwrap();
            // Every request of the connection gets the same treatment.
            while let Some(Ok(Message::Text(t))) = ws.next().await {
                let Ok(Frame::Req(req)) = serde_json::from_str::<Frame>(t.as_str()) else {
                    return;
                };
                match &behaviour {
                    Fake::Chatter => {
                        // 600 x 50 ms: longer than any test here waits, and bounded.
                        for seq in 0..600u64 {
                            let noise = if seq % 2 == 0 {
                                Frame::Event(Event {
                                    event: "tick".into(),
                                    payload: Value::Null,
                                    seq: Some(seq),
                                })
                            } else {
                                Frame::Res(Response::ok(format!("old-{seq}"), Value::Null))
                            };
                            if ws.send(send(&noise)).await.is_err() {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                    Fake::Answer(payload) => {
                        let res = Frame::Res(Response::ok(req.id.clone(), payload.clone()));
                        if ws.send(send(&res)).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_request_has_one_deadline_however_many_unrelated_frames_arrive() {
        let addr = fake_node(Fake::Chatter).await;
        let mut conn = NodeConnection::open(&addr, None).await.unwrap();
        let started = Instant::now();
        let err = conn
            .request_within(
                method::SYSTEM_NOTIFY,
                serde_json::json!({"title": "x"}),
                Duration::from_millis(800),
            )
            .await
            .unwrap_err();
        let took = started.elapsed();
        assert!(matches!(err, NodeLinkError::TimedOut { .. }), "{err}");
        assert!(
            err.to_string().contains("did not answer `system.notify`"),
            "{err}"
        );
        // Sixteen unrelated frames came meanwhile; none of them moved the deadline.
        assert!(
            took >= Duration::from_millis(800) && took < Duration::from_secs(3),
            "{took:?}"
        );
    }

    fn image(data_len: usize) -> Value {
        serde_json::json!({"format": "png", "width": 3840, "height": 2160, "data": "A".repeat(data_len)})
    }

    #[tokio::test]
    async fn the_largest_image_a_node_may_send_fits_and_a_larger_answer_is_refused() {
        use openclaw_protocol::node::MAX_IMAGE_DATA_BYTES;
        // Over the library's default 16 MiB frame limit: this failed before the limits were
        // sized for it.
        let addr = fake_node(Fake::Answer(image(MAX_IMAGE_DATA_BYTES))).await;
        let mut conn = NodeConnection::open(&addr, None).await.unwrap();
        let shot = conn
            .request(method::SCREEN_SNAPSHOT, serde_json::json!({}))
            .await
            .unwrap();
        assert_eq!(
            shot["data"].as_str().map(str::len),
            Some(MAX_IMAGE_DATA_BYTES)
        );

        let addr = fake_node(Fake::Answer(image(MAX_RESPONSE_BYTES))).await;
        let mut conn = NodeConnection::open(&addr, None).await.unwrap();
        let err = conn
            .request(method::SCREEN_SNAPSHOT, serde_json::json!({}))
            .await
            .unwrap_err();
        assert!(
            matches!(err, NodeLinkError::Protocol { .. }) && err.to_string().contains("more than"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_request_over_the_nodes_limit_is_refused_before_sending_and_the_connection_lives() {
        let addr = fake_node(Fake::Answer(serde_json::json!({"delivered": true}))).await;
        let mut conn = NodeConnection::open(&addr, None).await.unwrap();
        let body = "x".repeat(MAX_REQUEST_BYTES);
        let err = conn
            .request(
                method::SYSTEM_NOTIFY,
                serde_json::json!({"title": "t", "body": body}),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, NodeLinkError::RequestTooLarge { limit, .. } if limit == MAX_REQUEST_BYTES),
            "{err}"
        );
        let ok = conn
            .request(method::SYSTEM_NOTIFY, serde_json::json!({"title": "t"}))
            .await
            .unwrap();
        assert_eq!(ok["delivered"], true);
    }
}
