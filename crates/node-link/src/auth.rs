//! The mutual signed-nonce authentication of a node link, by role (`gateway` or `node`), not by
//! who opened the connection. The side that accepted the connection is the *challenger*: it
//! opens with a `connect.challenge` event `{nonce, ts}`. The side that dialed is the *prover*:
//! its first request is `connect` with its device id, its signature over the challenge and a
//! nonce of its own; the challenger checks it against the key it paired with and answers with
//! its own signature over the prover's nonce. Each signature names the signer's role and both
//! device ids, so it is good for one role, one pair of devices and one connection only.
//!
//! [`Challenger`] and [`Prover`] do no I/O (the node's connection rules wrap them and are
//! fuzzed); [`accept`] and [`connect`] run them over a WebSocket.

use crate::codec::{self, Read};
use crate::peer::{CallError, Handler, LinkEnd, Peer, PeerConfig};
use openclaw_pairing::identity::{Challenge, DeviceKey, device_id_of, verify_challenge};
use openclaw_protocol::node::{NodeConnect, NodeConnected, method};
use openclaw_protocol::{ConnectChallenge, ErrorCode, ErrorShape, Event, Frame, Response};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// The event the challenger opens with.
pub const CHALLENGE_EVENT: &str = "connect.challenge";

/// Who a side of a link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Gateway,
    Node,
}

impl Role {
    /// As it is signed and shown: `gateway`, `node`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gateway => "gateway",
            Self::Node => "node",
        }
    }

    /// The role at the other end of a link.
    pub fn peer(self) -> Self {
        match self {
            Self::Gateway => Self::Node,
            Self::Node => Self::Gateway,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No paired device has the id the prover gave.
    #[error("this {peer} is not paired with this {me} (or was removed): pair again")]
    NotPaired { me: Role, peer: Role },
    /// The signature is not the paired key's over this connection's nonce (a stranger's key,
    /// or a proof replayed from another connection).
    #[error("the signature does not match the paired {peer}'s key")]
    BadSignature { peer: Role },
    /// The challenger answered for another device than the one dialed.
    #[error("the {peer} answered with another device id")]
    WrongDevice { peer: Role },
    /// A public key that is not one (a damaged pairing record).
    #[error("the paired {peer}'s public key is unusable: {reason}")]
    BadKey { peer: Role, reason: String },
    /// The other side broke the handshake (no challenge first, not a `connect`, bad params).
    #[error("{0}")]
    Protocol(String),
}

impl AuthError {
    /// The error code the challenger answers `connect` with.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotPaired { .. } => ErrorCode::NotPaired,
            Self::BadSignature { .. } | Self::WrongDevice { .. } => ErrorCode::Unauthorized,
            Self::BadKey { .. } => ErrorCode::Internal,
            Self::Protocol(_) => ErrorCode::InvalidRequest,
        }
    }

    pub fn shape(&self) -> ErrorShape {
        ErrorShape::new(self.code(), self.to_string())
    }
}

/// A peer that proved it holds a paired key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub device_id: String,
    pub public_key: String,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn fresh_nonce() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The accepting side's half: a fresh challenge per connection, and the check of `connect`.
#[derive(Debug, Clone)]
pub struct Challenger {
    role: Role,
    challenge: ConnectChallenge,
    /// Sent with the challenge when set, so that a prover paired with several peers knows
    /// whose key to expect (the answer's signature proves it).
    announce: Option<String>,
}

impl Challenger {
    /// A new challenge (random nonce, the time now) for a side of `role`.
    pub fn new(role: Role) -> Self {
        Self {
            role,
            challenge: ConnectChallenge {
                nonce: fresh_nonce(),
                ts: now_ms(),
            },
            announce: None,
        }
    }

    /// Names this side's device id in the challenge (an extra `device_id` field, which a peer
    /// that does not look for it ignores). A gateway accepting nodes does; a node does not,
    /// which keeps its challenge to strangers as it always was.
    pub fn announcing(mut self, device_id: String) -> Self {
        self.announce = Some(device_id);
        self
    }

    pub fn challenge(&self) -> &ConnectChallenge {
        &self.challenge
    }

    /// The `connect.challenge` event to open with.
    pub fn frame(&self) -> Frame {
        let mut payload = json!(self.challenge);
        if let (Some(id), Some(fields)) = (&self.announce, payload.as_object_mut()) {
            fields.insert("device_id".into(), json!(id));
        }
        Frame::Event(Event {
            event: CHALLENGE_EVENT.into(),
            payload,
            seq: Some(0),
        })
    }

    /// Checks a prover's `connect`: `paired_key` gives the public key this side paired with
    /// for a device id (none: not paired). On success, who it is and the answer to send.
    pub fn verify(
        &self,
        key: &DeviceKey,
        connect: &NodeConnect,
        paired_key: impl FnOnce(&str) -> Option<String>,
    ) -> Result<(Verified, NodeConnected), AuthError> {
        let (me, peer) = (self.role, self.role.peer());
        let public_key = paired_key(&connect.device_id).ok_or(AuthError::NotPaired { me, peer })?;
        let my_id = key.device_id();
        let theirs = Challenge {
            role: peer.as_str(),
            signer_id: connect.device_id.clone(),
            peer_id: my_id.clone(),
            nonce: self.challenge.nonce.clone(),
            ts: self.challenge.ts,
        };
        verify_challenge(&public_key, &theirs, &connect.signature)
            .map_err(|_| AuthError::BadSignature { peer })?;
        let mine = Challenge {
            role: me.as_str(),
            signer_id: my_id.clone(),
            peer_id: connect.device_id.clone(),
            nonce: connect.nonce.clone(),
            ts: connect.ts,
        };
        let answer = NodeConnected {
            device_id: my_id,
            signature: key.sign_challenge(&mine),
        };
        Ok((
            Verified {
                device_id: connect.device_id.clone(),
                public_key,
            },
            answer,
        ))
    }
}

/// The dialing side's half, between sending `connect` and checking the answer.
#[derive(Debug, Clone)]
pub struct Prover {
    role: Role,
    my_id: String,
    peer_id: String,
    peer_public_key: String,
    nonce: String,
    ts: i64,
}

impl Prover {
    /// The `connect` params for `challenge`, proving `key` as a side of `role` to the peer
    /// paired with `peer_public_key`.
    pub fn new(
        role: Role,
        key: &DeviceKey,
        peer_public_key: &str,
        challenge: &ConnectChallenge,
    ) -> Result<(Self, NodeConnect), AuthError> {
        let peer_id = device_id_of(peer_public_key).map_err(|e| AuthError::BadKey {
            peer: role.peer(),
            reason: e.to_string(),
        })?;
        let mine = Challenge {
            role: role.as_str(),
            signer_id: key.device_id(),
            peer_id: peer_id.clone(),
            nonce: challenge.nonce.clone(),
            ts: challenge.ts,
        };
        let prover = Self {
            role,
            my_id: key.device_id(),
            peer_id,
            peer_public_key: peer_public_key.to_owned(),
            nonce: fresh_nonce(),
            ts: now_ms(),
        };
        let connect = NodeConnect {
            device_id: prover.my_id.clone(),
            signature: key.sign_challenge(&mine),
            nonce: prover.nonce.clone(),
            ts: prover.ts,
        };
        Ok((prover, connect))
    }

    /// Checks the challenger's answer: the device dialed, signing this connection's nonce.
    pub fn check(&self, answer: &NodeConnected) -> Result<(), AuthError> {
        let peer = self.role.peer();
        if answer.device_id != self.peer_id {
            return Err(AuthError::WrongDevice { peer });
        }
        let theirs = Challenge {
            role: peer.as_str(),
            signer_id: self.peer_id.clone(),
            peer_id: self.my_id.clone(),
            nonce: self.nonce.clone(),
            ts: self.ts,
        };
        verify_challenge(&self.peer_public_key, &theirs, &answer.signature)
            .map_err(|_| AuthError::BadSignature { peer })
    }
}

/// Why [`accept`] or [`connect`] did not end in an authenticated link.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HandshakeError {
    /// This side refused the other, or the other broke the handshake.
    #[error("{0}")]
    Auth(AuthError),
    /// The other side refused this one (its answer to `connect`).
    #[error("refused: {} ({})", .0.message, .0.code.as_str())]
    Refused(ErrorShape),
    #[error("the handshake did not finish within {} s", .0.as_secs_f32())]
    TimedOut(Duration),
    #[error("the peer sent a message over this side's limit during the handshake")]
    TooBig,
    /// The connection ended during the handshake.
    #[error("{0}")]
    Link(LinkEnd),
}

fn ended(read: Read) -> Result<String, HandshakeError> {
    match read {
        Read::Text(text) => Ok(text),
        Read::TooBig => Err(HandshakeError::TooBig),
        Read::Closed(frame) => Err(HandshakeError::Link(LinkEnd::ByPeer(frame))),
        Read::Failed(e) => Err(HandshakeError::Link(LinkEnd::Transport(e))),
    }
}

/// Runs the challenger's side over a fresh `ws`, by `deadline`: sends the challenge (naming
/// this side's device id), reads
/// `connect`, checks it against `paired_key`, answers. On a refusal the prover gets the error
/// (`NOT_PAIRED`, `UNAUTHORIZED`) and the connection is closed with a policy code.
pub async fn accept<S>(
    ws: &mut WebSocketStream<S>,
    role: Role,
    key: &DeviceKey,
    paired_key: impl FnOnce(&str) -> Option<String>,
    deadline: Instant,
) -> Result<Verified, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let started = Instant::now();
    let challenger = Challenger::new(role).announcing(key.device_id());
    codec::send(ws, &challenger.frame(), deadline)
        .await
        .map_err(|e| HandshakeError::Link(LinkEnd::Send(e.to_string())))?;
    let text = match tokio::time::timeout_at(deadline, codec::read_text(ws)).await {
        Err(_) => {
            codec::close(ws, CloseCode::Policy, "not authenticated in time").await;
            return Err(HandshakeError::TimedOut(started.elapsed()));
        }
        Ok(Read::TooBig) => {
            codec::close(ws, CloseCode::Size, "a `connect` request is small").await;
            return Err(HandshakeError::TooBig);
        }
        Ok(read) => ended(read)?,
    };
    let outcome = match openclaw_protocol::parse_request(&text) {
        Err((id, error)) => Err((id, AuthError::Protocol(error.message))),
        Ok(req) if req.method != method::CONNECT => Err((
            req.id,
            AuthError::Protocol(format!(
                "`{}` before `connect`: authenticate first",
                req.method
            )),
        )),
        Ok(req) => match serde_json::from_value::<NodeConnect>(req.params) {
            Err(e) => Err((
                req.id,
                AuthError::Protocol(format!("bad `connect` params: {e}")),
            )),
            Ok(c) => challenger
                .verify(key, &c, paired_key)
                .map_err(|e| (req.id.clone(), e))
                .map(|ok| (req.id, ok)),
        },
    };
    match outcome {
        Ok((id, (verified, answer))) => {
            let res = Frame::Res(Response::ok(id, json!(answer)));
            codec::send(ws, &res, deadline)
                .await
                .map_err(|e| HandshakeError::Link(LinkEnd::Send(e.to_string())))?;
            Ok(verified)
        }
        Err((id, e)) => {
            let _ = codec::send(ws, &Frame::Res(Response::err(id, e.shape())), deadline).await;
            let reason = match e {
                AuthError::NotPaired { .. } => "not paired",
                _ => "not authenticated",
            };
            codec::close(ws, CloseCode::Policy, reason).await;
            Err(HandshakeError::Auth(e))
        }
    }
}

/// Runs the prover's side over a fresh `ws`: reads the challenge, starts the link, proves
/// `key` as `role` to the peer paired with `peer_public_key` and checks its answer, all within
/// `limit`. The link then serves `handler` and carries this side's calls.
pub async fn connect<S>(
    ws: WebSocketStream<S>,
    role: Role,
    key: &DeviceKey,
    peer_public_key: &str,
    config: PeerConfig,
    handler: Arc<dyn Handler>,
    limit: Duration,
) -> Result<Peer, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let peer_public_key = peer_public_key.to_owned();
    connect_to(
        ws,
        role,
        key,
        |_| Some(peer_public_key),
        config,
        handler,
        limit,
    )
    .await
    .map(|(peer, _)| peer)
}

/// As [`connect`], for a prover paired with several peers: `paired_key` gets the device id the
/// challenger announced (none from a node, or an older gateway) and gives the public key to
/// prove to; none ends the handshake as not paired. Returns the link and that public key.
pub async fn connect_to<S>(
    mut ws: WebSocketStream<S>,
    role: Role,
    key: &DeviceKey,
    paired_key: impl FnOnce(Option<&str>) -> Option<String>,
    config: PeerConfig,
    handler: Arc<dyn Handler>,
    limit: Duration,
) -> Result<(Peer, String), HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let deadline = Instant::now() + limit;
    let (challenge, announced) = read_announced_challenge(&mut ws, deadline).await?;
    let Some(peer_public_key) = paired_key(announced.as_deref()) else {
        codec::close(&mut ws, CloseCode::Policy, "not paired").await;
        return Err(HandshakeError::Auth(AuthError::NotPaired {
            me: role,
            peer: role.peer(),
        }));
    };
    let (prover, params) =
        Prover::new(role, key, &peer_public_key, &challenge).map_err(HandshakeError::Auth)?;
    let peer = Peer::spawn(ws, config, handler);
    let left = deadline.saturating_duration_since(Instant::now());
    let answer = match peer.call(method::CONNECT, json!(params), left).await {
        Ok(answer) => answer,
        Err(CallError::Refused(e)) => return Err(HandshakeError::Refused(e)),
        Err(CallError::TimedOut { .. }) => return Err(HandshakeError::TimedOut(limit)),
        Err(CallError::Closed(end)) => return Err(HandshakeError::Link(end)),
        Err(e @ (CallError::TooLarge { .. } | CallError::Encode(_))) => {
            return Err(HandshakeError::Auth(AuthError::Protocol(e.to_string())));
        }
    };
    let answer: NodeConnected = serde_json::from_value(answer).map_err(|e| {
        HandshakeError::Auth(AuthError::Protocol(format!("bad `connect` answer: {e}")))
    })?;
    prover.check(&answer).map_err(HandshakeError::Auth)?;
    Ok((peer, peer_public_key))
}

/// Reads the challenger's opening `connect.challenge`, by `deadline`.
pub async fn read_challenge<S>(
    ws: &mut WebSocketStream<S>,
    deadline: Instant,
) -> Result<ConnectChallenge, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    read_announced_challenge(ws, deadline).await.map(|(c, _)| c)
}

/// Reads the opening `connect.challenge` and the device id it announces, if any.
pub async fn read_announced_challenge<S>(
    ws: &mut WebSocketStream<S>,
    deadline: Instant,
) -> Result<(ConnectChallenge, Option<String>), HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let started = Instant::now();
    let read = tokio::time::timeout_at(deadline, codec::read_text(ws))
        .await
        .map_err(|_| HandshakeError::TimedOut(started.elapsed()))?;
    let text = ended(read)?;
    match codec::decode(&text) {
        Ok(Frame::Event(ev)) if ev.event == CHALLENGE_EVENT => {
            let announced = ev
                .payload
                .get("device_id")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned);
            serde_json::from_value(ev.payload)
                .map(|c| (c, announced))
                .map_err(|e| {
                    HandshakeError::Auth(AuthError::Protocol(format!("bad challenge: {e}")))
                })
        }
        Ok(_) => Err(HandshakeError::Auth(AuthError::Protocol(
            "expected connect.challenge first".into(),
        ))),
        Err((_, e)) => Err(HandshakeError::Auth(AuthError::Protocol(format!(
            "not a frame: {}",
            e.message
        )))),
    }
}
