//! The device node (`openclaw-node`): serves its capabilities — screen snapshot, camera,
//! notifications, speech — to the gateways it is paired with, over TLS on port 18790.
//!
//! It depends on `protocol`, `pairing` and `node-link` only, never on the gateway, because its core also ships
//! inside the iOS and Android shells (through uniffi). It owns the node's long-term identity (its
//! Ed25519 key and self-signed TLS certificate, kept in the node's state dir) and its server:
//! pairing with a 6-digit code, mutual signed-nonce authentication of paired gateways, and the
//! node methods. Capabilities (screen, camera, notifications, speech) plug in behind it. The
//! session itself (codec, concurrent calls, the signed-nonce proof) is `openclaw-node-link`'s,
//! shared with the gateway. The desktop backends, the binary's argument parsing and logging, and
//! the Tailscale client are cargo features, off in a phone's build; the library logs through
//! `tracing`. With feature `ffi`, [`ffi`] is the uniffi interface the iOS and Android shells
//! drive (and the JVM and Python tests); without it nothing of uniffi is built.

pub mod bind;
pub mod capabilities;
pub mod desktop;
pub mod device_keys;
pub mod dial_out;
#[cfg(feature = "ffi")]
pub mod ffi;
pub mod gate;
pub mod identity;
pub mod pair_out;
pub mod server;
pub mod tailnet;

pub use capabilities::{Backend, Capabilities, Capability, CapabilityError, RegisterError};
pub use dial_out::{DialOut, run_dial_out};
pub use gate::Limits;
pub use identity::{NodeError, NodeIdentity, host_name};
pub use pair_out::{PairOutError, pair_with_gateway};
pub use server::{Node, PairedGateway, serve, serve_guarded, serve_stream, serve_with_limits};
pub use tailnet::PeerGuard;

// The uniffi scaffolding (the C ABI and the metadata `uniffi-bindgen` reads out of the library).
#[cfg(feature = "ffi")]
uniffi::setup_scaffolding!();
