//! Pairing a gateway with a device node through the 6-digit code the node shows.
//!
//! Both sides run SPAKE2 keyed by the code, so a wrong code or a man in the middle learns nothing
//! about it (one guess per attempt; the node allows 3 attempts per code, counted when each
//! starts, one at a time, each within a short deadline: see [`PendingCode`]). The shared key
//! is confirmed in both directions with an HMAC over the transcript; only then do the sides
//! exchange their long-term identities (Ed25519 public key, the node's TLS certificate
//! fingerprint), sealed with ChaCha20-Poly1305 under a key derived from the same secret.
//!
//! This crate is the protocol alone: message types and state machines, no sockets, no clock of
//! its own (callers pass the time), no storage. The node (`node-agent`) and the gateway both use
//! it, so neither depends on the other.
//!
//! The code is shown by one side and typed on the other, either way round ([`Direction`]): the
//! node shows it and the gateway dials the node, or the gateway shows it and the node dials the
//! gateway (phones and laptops behind NAT). The side that typed it starts ([`Initiator`]).
//!
//! ```text
//! gateway (or the node, when it dials)       node (or the gateway, showing the code)
//!   Start { spake_a, gateway_name }   ──▶
//!                                     ◀──   StartReply { spake_b, session }
//!   Confirm { session, mac_g, sealed_g } ─▶  checks mac_g (a failure counts against the code)
//!                                     ◀──   ConfirmReply { mac_n, sealed_n }
//!   checks mac_n, opens sealed_n
//! ```

pub mod identity;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use spake2::{Ed25519Group, Identity as SpakeId, Password, Spake2};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// Digits in a pairing code.
pub const CODE_DIGITS: usize = 6;
/// Attempts a code allows, counted when each starts: after this many, the code is burned
/// (unless one of them paired, which uses it up). So an attacker gets at most this many guesses
/// at a code, one in a million each.
pub const MAX_TRIES: u32 = 3;
/// How long one attempt may take from `Start` to `Confirm` (and never past the code's expiry).
///
/// A gateway answers the node's `StartReply` at once (one SPAKE2 computation, well under a
/// millisecond, plus one round trip), so 10 s leaves room for a slow link while a stalled or
/// malicious attempt holds the single pairing slot for at most 10 s, not for the code's whole
/// life.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
const PROTOCOL: &[u8] = b"openclaw-pair-v1";
/// The transcript label of a pairing the other way round (see [`Direction`]): a pairing run
/// one way can never be completed as one run the other way.
const PROTOCOL_NODE_DIALS: &[u8] = b"openclaw-pair-v1-node-dials";

/// Who shows the code and who types it. The side that types the code starts the exchange
/// ([`Initiator`]); the side that shows it answers ([`Responder`]). Identities travel both
/// ways either way: the initiator's in `Confirm`, the responder's in `ConfirmReply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The node shows the code and the gateway dials it (`openclaw nodes pair HOST:PORT`).
    GatewayDials,
    /// The gateway shows the code and the node dials it (`openclaw nodes pair --listen`, then
    /// `openclaw-node pair --gateway HOST:PORT --code NNNNNN`): phones and laptops behind NAT.
    NodeDials,
}

impl Direction {
    fn protocol(self) -> &'static [u8] {
        match self {
            Self::GatewayDials => PROTOCOL,
            Self::NodeDials => PROTOCOL_NODE_DIALS,
        }
    }
}

/// The side that typed the code, whichever it is (see [`Direction`]).
pub type Initiator = GatewayStart;
/// The side that shows the code, whichever it is (see [`Direction`]).
pub type Responder = NodeConfirming;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairingError {
    #[error("the pairing code must be exactly {CODE_DIGITS} digits")]
    BadCode,
    #[error("malformed pairing message: {0}")]
    Malformed(String),
    #[error("key confirmation failed: the code was wrong, or someone is in the middle")]
    Mismatch,
    #[error("this pairing code has expired; show a new one on the node (openclaw-node pair)")]
    Expired,
    #[error(
        "this pairing code was used up (paired once, or all {MAX_TRIES} attempts spent); show a new one on the node (openclaw-node pair)"
    )]
    Burned,
    #[error("the pairing message belongs to another session")]
    WrongSession,
    #[error(
        "another pairing with this node is in progress; try again in {} s, when it has finished or timed out",
        SESSION_TIMEOUT.as_secs()
    )]
    Busy,
    #[error(
        "this pairing attempt timed out (it must be confirmed within {} s of its start); start again",
        SESSION_TIMEOUT.as_secs()
    )]
    SessionExpired,
    #[error(
        "the node now shows a newer pairing code than the one this attempt started with; pair again with the code it shows now"
    )]
    Replaced,
}

type HmacSha256 = Hmac<Sha256>;

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

fn unb64(field: &str, text: &str) -> Result<Vec<u8>, PairingError> {
    B64.decode(text)
        .map_err(|e| PairingError::Malformed(format!("`{field}` is not base64url ({e})")))
}

/// A fresh random code, as the node shows it.
pub fn new_code() -> String {
    let n: u32 = rand::random_range(0..1_000_000);
    format!("{n:06}")
}

fn check_code(code: &str) -> Result<(), PairingError> {
    if code.len() == CODE_DIGITS && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(PairingError::BadCode)
    }
}

/// What each side proves it is, exchanged once the key is confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerIdentity {
    pub name: String,
    /// Raw Ed25519 public key, base64url.
    pub public_key: String,
    /// Node only: hex SHA-256 of its TLS certificate (DER).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_fingerprint: Option<String>,
    /// Node only: the capabilities it serves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Start {
    pub spake: String,
    pub gateway_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartReply {
    pub spake: String,
    pub session: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirm {
    pub session: String,
    pub mac: String,
    pub sealed: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmReply {
    pub mac: String,
    pub sealed: String,
}

/// Keys both sides derive once SPAKE2 has finished.
struct Keys {
    mac: [u8; 32],
    seal: [u8; 32],
    transcript: [u8; 32],
}

fn derive(direction: Direction, shared: &[u8], start: &[u8], reply: &[u8], session: &str) -> Keys {
    let mut t = Sha256::new();
    t.update(direction.protocol());
    for part in [start, reply, session.as_bytes()] {
        t.update((part.len() as u64).to_be_bytes());
        t.update(part);
    }
    let transcript: [u8; 32] = t.finalize().into();
    let sub = |label: &[u8]| -> [u8; 32] {
        let mut m = <HmacSha256 as Mac>::new_from_slice(shared).expect("HMAC takes any key length");
        m.update(label);
        m.update(&transcript);
        m.finalize().into_bytes().into()
    };
    Keys {
        mac: sub(b"confirm"),
        seal: sub(b"seal"),
        transcript,
    }
}

impl Keys {
    fn tag(&self, role: &[u8]) -> [u8; 32] {
        let mut m =
            <HmacSha256 as Mac>::new_from_slice(&self.mac).expect("HMAC takes any key length");
        m.update(role);
        m.update(&self.transcript);
        m.finalize().into_bytes().into()
    }

    fn check(&self, role: &[u8], mac_b64: &str) -> Result<(), PairingError> {
        let got = unb64("mac", mac_b64)?;
        if bool::from(got.ct_eq(&self.tag(role))) {
            Ok(())
        } else {
            Err(PairingError::Mismatch)
        }
    }

    /// Each direction uses its own nonce; the key is fresh for every session.
    fn seal(&self, direction: u8, identity: &PeerIdentity) -> String {
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.seal));
        let mut nonce = [0u8; 12];
        nonce[0] = direction;
        let plain = serde_json::to_vec(identity).unwrap_or_default();
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), plain.as_slice())
            .unwrap_or_default();
        b64(&sealed)
    }

    fn open(&self, direction: u8, sealed_b64: &str) -> Result<PeerIdentity, PairingError> {
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.seal));
        let mut nonce = [0u8; 12];
        nonce[0] = direction;
        let sealed = unb64("sealed", sealed_b64)?;
        let plain = cipher
            .decrypt(Nonce::from_slice(&nonce), sealed.as_slice())
            .map_err(|_| PairingError::Mismatch)?;
        serde_json::from_slice(&plain)
            .map_err(|e| PairingError::Malformed(format!("sealed identity is not JSON ({e})")))
    }
}

const TO_NODE: u8 = 1;
const TO_GATEWAY: u8 = 2;

fn ids() -> (SpakeId, SpakeId) {
    (
        SpakeId::new(b"openclaw-gateway"),
        SpakeId::new(b"openclaw-node"),
    )
}

/// The side that typed the code (the gateway, unless the node dials: see [`Direction`]),
/// before the other has answered.
pub struct GatewayStart {
    spake: Spake2<Ed25519Group>,
    start: Vec<u8>,
    direction: Direction,
}

/// The gateway, waiting for the node's confirmation.
pub struct GatewayConfirming {
    keys: Keys,
}

impl GatewayStart {
    /// Starts pairing with the code the user typed on the gateway.
    pub fn new(code: &str, gateway_name: &str) -> Result<(Self, Start), PairingError> {
        Self::new_in(Direction::GatewayDials, code, gateway_name)
    }

    /// Starts pairing with the code the user typed, on whichever side `direction` says.
    /// `name` is this side's name (`Start::gateway_name` carries it either way).
    pub fn new_in(
        direction: Direction,
        code: &str,
        name: &str,
    ) -> Result<(Self, Start), PairingError> {
        check_code(code)?;
        let (a, b) = ids();
        let (spake, msg) = Spake2::<Ed25519Group>::start_a(&Password::new(code.as_bytes()), &a, &b);
        let start = Start {
            spake: b64(&msg),
            gateway_name: name.to_owned(),
        };
        Ok((
            Self {
                spake,
                start: msg,
                direction,
            },
            start,
        ))
    }

    /// Takes the node's reply; returns the confirmation (with the gateway's sealed identity).
    pub fn confirm(
        self,
        reply: &StartReply,
        me: &PeerIdentity,
    ) -> Result<(GatewayConfirming, Confirm), PairingError> {
        let theirs = unb64("spake", &reply.spake)?;
        let shared = self
            .spake
            .finish(&theirs)
            .map_err(|e| PairingError::Malformed(format!("SPAKE2 message rejected ({e:?})")))?;
        let keys = derive(
            self.direction,
            &shared,
            &self.start,
            &theirs,
            &reply.session,
        );
        let confirm = Confirm {
            session: reply.session.clone(),
            mac: b64(&keys.tag(b"gateway")),
            sealed: keys.seal(TO_NODE, me),
        };
        Ok((GatewayConfirming { keys }, confirm))
    }
}

impl GatewayConfirming {
    /// Checks the node's confirmation and returns its identity.
    pub fn finish(self, reply: &ConfirmReply) -> Result<PeerIdentity, PairingError> {
        self.keys.check(b"node", &reply.mac)?;
        self.keys.open(TO_GATEWAY, &reply.sealed)
    }
}

/// The node, after answering a `Start`.
pub struct NodeConfirming {
    keys: Keys,
    session: String,
    gateway_name: String,
}

impl NodeConfirming {
    /// Answers a gateway's `Start` with the code this node shows.
    pub fn new(code: &str, start: &Start) -> Result<(Self, StartReply), PairingError> {
        Self::new_in(Direction::GatewayDials, code, start)
    }

    /// Answers the other side's `Start` with the code this side shows, on whichever side
    /// `direction` says.
    pub fn new_in(
        direction: Direction,
        code: &str,
        start: &Start,
    ) -> Result<(Self, StartReply), PairingError> {
        check_code(code)?;
        let theirs = unb64("spake", &start.spake)?;
        let (a, b) = ids();
        let (spake, msg) = Spake2::<Ed25519Group>::start_b(&Password::new(code.as_bytes()), &a, &b);
        let shared = spake
            .finish(&theirs)
            .map_err(|e| PairingError::Malformed(format!("SPAKE2 message rejected ({e:?})")))?;
        let session = format!("{:032x}", rand::random::<u128>());
        let keys = derive(direction, &shared, &theirs, &msg, &session);
        Ok((
            Self {
                keys,
                session: session.clone(),
                gateway_name: start.gateway_name.clone(),
            },
            StartReply {
                spake: b64(&msg),
                session,
            },
        ))
    }

    /// The name the initiator gave (the gateway's, or the node's when the node dials).
    pub fn gateway_name(&self) -> &str {
        &self.gateway_name
    }

    /// Checks the gateway's confirmation; on success returns the gateway's identity and the
    /// node's own sealed reply. A failure means a wrong code (count it against the code).
    pub fn finish(
        self,
        confirm: &Confirm,
        me: &PeerIdentity,
    ) -> Result<(PeerIdentity, ConfirmReply), PairingError> {
        if confirm.session != self.session {
            return Err(PairingError::WrongSession);
        }
        self.keys.check(b"gateway", &confirm.mac)?;
        let gateway = self.keys.open(TO_NODE, &confirm.sealed)?;
        Ok((
            gateway,
            ConfirmReply {
                mac: b64(&self.keys.tag(b"node")),
                sealed: self.keys.seal(TO_GATEWAY, me),
            },
        ))
    }
}

/// Which code an attempt belongs to: every [`PendingCode`] gets a new one, so an attempt started
/// under a code that was since replaced (a new code shown) is told apart from one under the
/// current code even when the digits happen to be the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CodeId(u64);

fn next_code_id() -> CodeId {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    CodeId(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// One pairing attempt under a code: handed out by [`PendingCode::begin`], handed back to
/// [`PendingCode::confirm`] (or [`PendingCode::abandon`] when its connection goes away).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    code: CodeId,
    /// 1 for the code's first attempt, up to [`MAX_TRIES`].
    number: u32,
    deadline: Instant,
}

impl Attempt {
    /// Which try of its code this is (1-based).
    pub fn number(&self) -> u32 {
        self.number
    }

    /// When the attempt times out: [`SESSION_TIMEOUT`] after its start, or the code's expiry.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    pub fn code_id(&self) -> CodeId {
        self.code
    }
}

/// The code a node shows: valid until it expires, used once, [`MAX_TRIES`] attempts at most,
/// one at a time.
///
/// Rules, each enforced here rather than by the caller so that no server loop can get them
/// wrong:
/// - a try is counted when the attempt starts ([`begin`](Self::begin)), not when it fails: N
///   connections that all start before any confirms still get [`MAX_TRIES`] guesses in all;
/// - at most one attempt is in flight; a second `begin` meanwhile is refused with
///   [`PairingError::Busy`] and does not count a try (it gets no SPAKE2 reply, so it is no guess,
///   and counting it would let anyone burn the code without even trying one);
/// - an attempt ends at its deadline ([`SESSION_TIMEOUT`], at most the code's expiry), when it is
///   confirmed (either way), or when it is abandoned (its connection dropped);
/// - [`confirm`](Self::confirm) checks again that the attempt is the one in flight, under this
///   very code ([`CodeId`]), and that the code is neither used, burned nor expired.
#[derive(Debug, Clone)]
pub struct PendingCode {
    id: CodeId,
    code: String,
    expires: Instant,
    tries: u32,
    used: bool,
    in_flight: Option<Attempt>,
}

impl PendingCode {
    pub fn new(code: String, now: Instant, valid_for: Duration) -> Self {
        Self {
            id: next_code_id(),
            code,
            expires: now + valid_for,
            tries: 0,
            used: false,
            in_flight: None,
        }
    }

    pub fn id(&self) -> CodeId {
        self.id
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    /// Tries not yet started.
    pub fn tries_left(&self) -> u32 {
        MAX_TRIES.saturating_sub(self.tries)
    }

    /// The attempt in flight at `now`, if any (one past its deadline is over).
    pub fn in_flight(&self, now: Instant) -> Option<&Attempt> {
        self.in_flight.as_ref().filter(|a| now < a.deadline)
    }

    /// Starts an attempt (counting a try); returns it and the code to run SPAKE2 with.
    pub fn begin(&mut self, now: Instant) -> Result<(Attempt, &str), PairingError> {
        if self.in_flight.as_ref().is_some_and(|a| now >= a.deadline) {
            self.in_flight = None;
        }
        if self.used {
            return Err(PairingError::Burned);
        }
        if now >= self.expires {
            return Err(PairingError::Expired);
        }
        if self.in_flight.is_some() {
            return Err(PairingError::Busy);
        }
        if self.tries >= MAX_TRIES {
            return Err(PairingError::Burned);
        }
        self.tries += 1;
        let attempt = Attempt {
            code: self.id,
            number: self.tries,
            deadline: (now + SESSION_TIMEOUT).min(self.expires),
        };
        self.in_flight = Some(attempt.clone());
        Ok((attempt, &self.code))
    }

    /// Why `attempt` may not be confirmed now, if it may not.
    fn check(&self, attempt: &Attempt, now: Instant) -> Result<(), PairingError> {
        let current = self.in_flight.as_ref() == Some(attempt);
        if attempt.code != self.id {
            Err(PairingError::Replaced)
        } else if self.used || (!current && self.tries >= MAX_TRIES) {
            Err(PairingError::Burned)
        } else if now >= self.expires {
            Err(PairingError::Expired)
        } else if !current || now >= attempt.deadline {
            Err(PairingError::SessionExpired)
        } else {
            Ok(())
        }
    }

    /// Confirms `attempt`: checks it is still the live attempt under this code, then runs
    /// `key_confirmation` (the SPAKE2 side's `finish`). Either way the attempt is over: a success
    /// uses the code up, a failure leaves [`tries_left`](Self::tries_left) tries.
    pub fn confirm<T>(
        &mut self,
        attempt: &Attempt,
        now: Instant,
        key_confirmation: impl FnOnce() -> Result<T, PairingError>,
    ) -> Result<T, PairingError> {
        let checked = self.check(attempt, now);
        if self.in_flight.as_ref() == Some(attempt) {
            self.in_flight = None;
        }
        checked?;
        let outcome = key_confirmation();
        if outcome.is_ok() {
            self.used = true;
        }
        outcome
    }

    /// The attempt's connection went away before it confirmed: the pairing slot is free again
    /// (its try stays counted). An attempt of another code, or one already over, changes nothing.
    pub fn abandon(&mut self, attempt: &Attempt) {
        if self.in_flight.as_ref() == Some(attempt) {
            self.in_flight = None;
        }
    }
}

#[cfg(test)]
mod tests;
