//! The gateway's side of device nodes: its own device key, pairing with a node through the code
//! it shows, and authenticated sessions with paired nodes (pinned TLS + mutual signed nonces).
//!
//! A node is a peer on the network, so what it can make the gateway wait for or hold is
//! bounded: one deadline for opening a connection (TCP, TLS, WebSocket, challenge), one for each
//! request however many unrelated frames arrive meanwhile, and WebSocket limits sized for the
//! largest answer a node legitimately sends ([`MAX_RESPONSE_BYTES`]: a screenshot).

use crate::node_tls;
use futures_util::{SinkExt, StreamExt};
use openclaw_pairing::identity::{Challenge, DeviceKey, device_id_of, verify_challenge};
use openclaw_pairing::{ConfirmReply, GatewayStart, PeerIdentity, StartReply};
use openclaw_protocol::node::{
    MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, NodeConnect, NodeConnected, method,
};
use openclaw_protocol::{ConnectChallenge, ErrorCode, Frame, Request};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

const KEY_FILE: &str = "gateway.key";
/// How long opening a connection may take in all, and the default deadline of one request.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// The WebSocket limits of a connection to a node: one answer of at most
/// [`MAX_RESPONSE_BYTES`] (a node sends each answer as a single frame, so the frame limit is
/// the same; the library's defaults, 64 MiB messages and 16 MiB frames, were both wrong: too
/// much to buffer from a peer, and too little for the largest screenshot a node may send).
pub fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_RESPONSE_BYTES))
        .max_frame_size(Some(MAX_RESPONSE_BYTES))
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

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// A TLS + WebSocket connection to a node, after its `connect.challenge`.
pub struct NodeConnection {
    addr: String,
    ws: Ws,
    challenge: ConnectChallenge,
    next_id: u64,
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

impl NodeConnection {
    /// Dials `addr` (`host:port`); `pin` is the paired certificate fingerprint (none while pairing).
    pub async fn open(addr: &str, pin: Option<String>) -> Result<Self, NodeLinkError> {
        let unreachable = |reason: String| NodeLinkError::Unreachable {
            addr: addr.to_owned(),
            reason,
        };
        // One deadline for every step: a node that answers each step just in time cannot
        // stretch the whole to several times the limit.
        let deadline = Instant::now() + TIMEOUT;
        let late =
            |step: &str| unreachable(format!("{step} timed out ({} s in all)", TIMEOUT.as_secs()));
        let (config, seen) =
            node_tls::client_config(pin).map_err(|e| unreachable(e.to_string()))?;
        let tcp = tokio::time::timeout_at(deadline, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| late("connecting"))?
            .map_err(|e| unreachable(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let name = rustls::pki_types::ServerName::try_from("openclaw-node")
            .map_err(|e| unreachable(e.to_string()))?;
        let tls = tokio::time::timeout_at(
            deadline,
            tokio_rustls::TlsConnector::from(config).connect(name, tcp),
        )
        .await
        .map_err(|_| late("the TLS handshake"))?
        .map_err(|e| unreachable(format!("TLS: {e}")))?;
        let seen_fingerprint = seen.lock().ok().and_then(|s| s.clone()).unwrap_or_default();
        let (ws, _) = tokio::time::timeout_at(
            deadline,
            tokio_tungstenite::client_async_with_config(
                format!("wss://{addr}/"),
                tls,
                Some(websocket_config()),
            ),
        )
        .await
        .map_err(|_| late("the WebSocket handshake"))?
        .map_err(|e| unreachable(format!("WebSocket: {e}")))?;
        let mut conn = Self {
            addr: addr.to_owned(),
            ws,
            challenge: ConnectChallenge {
                nonce: String::new(),
                ts: 0,
            },
            next_id: 1,
            seen_fingerprint,
        };
        let first = conn.read_frame("open", deadline).await?;
        match first {
            Frame::Event(ev) if ev.event == "connect.challenge" => {
                conn.challenge = serde_json::from_value(ev.payload)
                    .map_err(|e| conn.protocol(format!("bad challenge: {e}")))?;
            }
            _ => return Err(conn.protocol("expected connect.challenge first".into())),
        }
        Ok(conn)
    }

    fn protocol(&self, reason: String) -> NodeLinkError {
        NodeLinkError::Protocol {
            addr: self.addr.clone(),
            reason,
        }
    }

    /// The next text frame, by `deadline` (the caller's, not one that restarts per frame).
    async fn read_frame(
        &mut self,
        waiting_for: &str,
        deadline: Instant,
    ) -> Result<Frame, NodeLinkError> {
        let started = Instant::now();
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .map_err(|_| NodeLinkError::TimedOut {
                    addr: self.addr.clone(),
                    method: waiting_for.to_owned(),
                    after: started.elapsed(),
                })?;
            match msg {
                Some(Ok(Message::Text(t))) => {
                    return serde_json::from_str(t.as_str())
                        .map_err(|e| self.protocol(format!("not a frame: {e}")));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(NodeLinkError::Refused {
                        addr: self.addr.clone(),
                        code: None,
                        message: frame
                            .map(|f| f.reason.to_string())
                            .unwrap_or_else(|| "closed".into()),
                    });
                }
                Some(Ok(_)) => continue,
                Some(Err(tokio_tungstenite::tungstenite::Error::Capacity(e))) => {
                    return Err(self.protocol(format!(
                        "it sent more than the {MAX_RESPONSE_BYTES} bytes an answer may have ({e})"
                    )));
                }
                Some(Err(e)) => return Err(self.protocol(e.to_string())),
                None => return Err(self.protocol("the connection closed".into())),
            }
        }
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
        let deadline = Instant::now() + limit;
        let id = self.next_id.to_string();
        self.next_id += 1;
        let req = Frame::Req(Request {
            id: id.clone(),
            method: method.to_owned(),
            params,
        });
        let text = serde_json::to_string(&req).map_err(|e| self.protocol(e.to_string()))?;
        // The node would close the connection on it: say so here, and keep the connection.
        if text.len() > MAX_REQUEST_BYTES {
            return Err(NodeLinkError::RequestTooLarge {
                method: method.to_owned(),
                size: text.len(),
                limit: MAX_REQUEST_BYTES,
            });
        }
        let timed_out = |addr: &str| NodeLinkError::TimedOut {
            addr: addr.to_owned(),
            method: method.to_owned(),
            after: limit,
        };
        tokio::time::timeout_at(deadline, self.ws.send(Message::text(text)))
            .await
            .map_err(|_| timed_out(&self.addr))?
            .map_err(|e| self.protocol(e.to_string()))?;
        loop {
            match self.read_frame(method, deadline).await? {
                Frame::Res(res) if res.id == id => {
                    return match (res.ok, res.payload, res.error) {
                        (true, Some(p), _) => Ok(p),
                        (true, None, _) => Ok(Value::Null),
                        (false, _, Some(e)) => Err(NodeLinkError::Refused {
                            addr: self.addr.clone(),
                            code: Some(e.code),
                            message: e.message,
                        }),
                        (false, _, None) => Err(self.protocol("error without detail".into())),
                    };
                }
                _ => continue,
            }
        }
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
        let node_id = device_id_of(node_public_key)
            .map_err(|e| NodeLinkError::Pairing(e, self.addr.clone()))?;
        let mine = Challenge {
            role: "gateway",
            signer_id: key.device_id(),
            peer_id: node_id.clone(),
            nonce: self.challenge.nonce.clone(),
            ts: self.challenge.ts,
        };
        let nonce = format!("{:032x}", rand::random::<u128>());
        let ts = jiff::Timestamp::now().as_millisecond();
        let params = NodeConnect {
            device_id: key.device_id(),
            signature: key.sign_challenge(&mine),
            nonce: nonce.clone(),
            ts,
        };
        let answer: NodeConnected = serde_json::from_value(
            self.request(method::CONNECT, serde_json::json!(params))
                .await?,
        )
        .map_err(|e| self.protocol(format!("bad connect reply: {e}")))?;
        let theirs = Challenge {
            role: "node",
            signer_id: node_id.clone(),
            peer_id: key.device_id(),
            nonce,
            ts,
        };
        if answer.device_id != node_id {
            return Err(self.protocol("the node answered with another device id".into()));
        }
        verify_challenge(node_public_key, &theirs, &answer.signature).map_err(|_| {
            NodeLinkError::Refused {
                addr: self.addr.clone(),
                code: None,
                message: "the node's signature does not match its paired key".into(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

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
