//! Pairing a gateway with a device node through the 6-digit code the node shows.
//!
//! Both sides run SPAKE2 keyed by the code, so a wrong code or a man in the middle learns nothing
//! about it (one guess per attempt, and the node burns the code after 3 failures). The shared key
//! is confirmed in both directions with an HMAC over the transcript; only then do the sides
//! exchange their long-term identities (Ed25519 public key, the node's TLS certificate
//! fingerprint), sealed with ChaCha20-Poly1305 under a key derived from the same secret.
//!
//! This crate is the protocol alone: message types and state machines, no sockets, no clock of
//! its own (callers pass the time), no storage. The node (`node-agent`) and the gateway both use
//! it, so neither depends on the other.
//!
//! ```text
//! gateway                                   node (shows the code)
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
/// Failed attempts after which a code is burned.
pub const MAX_FAILURES: u32 = 3;
const PROTOCOL: &[u8] = b"openclaw-pair-v1";

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
        "this pairing code was used up (paired once, or {MAX_FAILURES} wrong attempts); show a new one on the node"
    )]
    Burned,
    #[error("the pairing message belongs to another session")]
    WrongSession,
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

fn derive(shared: &[u8], start: &[u8], reply: &[u8], session: &str) -> Keys {
    let mut t = Sha256::new();
    t.update(PROTOCOL);
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

/// The gateway, before the node has answered.
pub struct GatewayStart {
    spake: Spake2<Ed25519Group>,
    start: Vec<u8>,
}

/// The gateway, waiting for the node's confirmation.
pub struct GatewayConfirming {
    keys: Keys,
}

impl GatewayStart {
    /// Starts pairing with the code the user typed.
    pub fn new(code: &str, gateway_name: &str) -> Result<(Self, Start), PairingError> {
        check_code(code)?;
        let (a, b) = ids();
        let (spake, msg) = Spake2::<Ed25519Group>::start_a(&Password::new(code.as_bytes()), &a, &b);
        let start = Start {
            spake: b64(&msg),
            gateway_name: gateway_name.to_owned(),
        };
        Ok((Self { spake, start: msg }, start))
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
        let keys = derive(&shared, &self.start, &theirs, &reply.session);
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
        check_code(code)?;
        let theirs = unb64("spake", &start.spake)?;
        let (a, b) = ids();
        let (spake, msg) = Spake2::<Ed25519Group>::start_b(&Password::new(code.as_bytes()), &a, &b);
        let shared = spake
            .finish(&theirs)
            .map_err(|e| PairingError::Malformed(format!("SPAKE2 message rejected ({e:?})")))?;
        let session = format!("{:032x}", rand::random::<u128>());
        let keys = derive(&shared, &theirs, &msg, &session);
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

/// The code a node shows: valid until it expires, used once, burned after too many failures.
#[derive(Debug, Clone)]
pub struct PendingCode {
    code: String,
    expires: Instant,
    failures: u32,
    used: bool,
}

impl PendingCode {
    pub fn new(code: String, now: Instant, valid_for: Duration) -> Self {
        Self {
            code,
            expires: now + valid_for,
            failures: 0,
            used: false,
        }
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    /// The code for a new attempt, or why there is none.
    pub fn attempt(&self, now: Instant) -> Result<&str, PairingError> {
        if self.used || self.failures >= MAX_FAILURES {
            Err(PairingError::Burned)
        } else if now >= self.expires {
            Err(PairingError::Expired)
        } else {
            Ok(&self.code)
        }
    }

    /// A confirmation failed (wrong code); returns true when that burned the code.
    pub fn failed(&mut self) -> bool {
        self.failures += 1;
        self.failures >= MAX_FAILURES
    }

    /// Pairing succeeded: the code cannot be used again.
    pub fn succeeded(&mut self) {
        self.used = true;
    }
}

#[cfg(test)]
mod tests;
