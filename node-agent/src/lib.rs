//! The device node (`openclaw-node`): serves its capabilities — screen snapshot, camera,
//! notifications, speech — to the gateways it is paired with, over TLS on port 18790.
//!
//! It depends on `protocol` and `pairing` only, never on the gateway, because its core also ships
//! inside the iOS and Android shells (through uniffi). This first part owns the node's long-term
//! identity: its Ed25519 key and its self-signed TLS certificate, kept in the node's state dir.
//! The server, the capabilities and the pairing responder build on it.

pub mod identity;

pub use identity::{NodeError, NodeIdentity};
