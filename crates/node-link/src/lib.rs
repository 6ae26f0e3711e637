//! Node links: the session between a gateway and a device node over any WebSocket stream,
//! whichever side dialed. This crate owns the one frame codec of node sessions ([`codec`]), the
//! multiplexed RPC peer (concurrent calls matched by id, events both ways, requests served by a
//! [`Handler`]; [`peer`]), the mutual signed-nonce authentication by role, gateway or node,
//! independent of who opened the connection ([`auth`]), and the transports: the gateway dialing
//! a node over pinned TLS ([`dial`], [`tls`]), the node dialing the gateway ([`dial_out`]) and an
//! in-process pipe ([`duplex`]).
//!
//! It depends on `protocol` and `pairing` only, never on the gateway or the node agent, since
//! both use it and the node agent ships to phones. It does not pair devices (the 6-digit
//! exchange runs before a link is authenticated, in the crates that show and type the code), keep
//! any state on disk, or decide which node serves a call.

pub mod auth;
pub mod codec;
pub mod dial;
pub mod dial_out;
pub mod duplex;
pub mod exchange;
pub mod peer;
pub mod tls;

pub use auth::{
    AuthError, Challenger, HandshakeError, Prover, Role, Verified, accept, connect, connect_to,
};
pub use dial_out::accept_node;
pub use peer::{CallError, EventSink, Handler, LinkEnd, NoRequests, Peer, PeerConfig};

#[cfg(test)]
mod tests;
