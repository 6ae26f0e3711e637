//! How many connections the node holds, and for how long, before and after a peer proves who it
//! is.
//!
//! Anyone who can reach the port can open a connection, so everything a stranger can make the
//! node hold is bounded: a small budget of connections that have not authenticated yet (per peer
//! address and in all), each with deadlines ([`Limits`]). A connection that authenticates as a
//! paired gateway moves to a budget of its own, which strangers cannot fill; and an address a
//! gateway has authenticated (or paired) from gets its own pre-auth lane, so that strangers who
//! fill the shared budget do not lock that gateway out when it reconnects.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The node's time and connection limits. [`Limits::default`] is what `openclaw-node` uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// From TCP accept to a finished WebSocket upgrade (tailnet check, TLS, HTTP request).
    pub handshake: Duration,
    /// From TCP accept to the peer being authenticated (`connect`) or paired.
    pub auth_deadline: Duration,
    /// Longest wait for the next request before authentication.
    pub pre_auth_idle: Duration,
    /// Longest wait for the next request from an authenticated gateway.
    pub idle: Duration,
    /// Longest time one answer to an authenticated gateway may take to be sent.
    pub send_timeout: Duration,
    /// Connections not yet authenticated, from one peer address.
    pub pre_auth_per_peer: usize,
    /// Connections not yet authenticated, from addresses no gateway has authenticated from.
    pub pre_auth_total: usize,
    /// Authenticated gateway connections.
    pub authenticated: usize,
    /// Calls one authenticated gateway may have running at once; more wait for a turn (up to
    /// the link's queue, then they are answered `UNAVAILABLE`, retryable).
    pub in_flight: usize,
}

impl Default for Limits {
    /// - handshake 5 s: TLS and the upgrade are three round trips, well under a second even
    ///   across a continent on a tailnet;
    /// - auth deadline 15 s: the handshake, then a `connect` (one round trip) or a pairing
    ///   (two, and [`openclaw_pairing::SESSION_TIMEOUT`] = 10 s at most for the second);
    /// - pre-auth idle 5 s: a gateway sends each request as soon as it has the previous answer;
    /// - idle 120 s: the gateway's keep-alive calls `node.describe` every 20 s, so six missed
    ///   in a row mean the gateway (or the path to it) is gone;
    /// - send 60 s: a 16 MiB screenshot over a 2.5 Mbit/s link;
    /// - 4 pre-auth connections per address, 16 in all, 16 authenticated: a gateway uses one
    ///   connection (plus one per CLI call), and each pre-auth connection costs about 200 KiB at
    ///   most (TLS and WebSocket buffers, one [`openclaw_protocol::node::MAX_REQUEST_BYTES`]
    ///   message);
    /// - 8 calls in flight per gateway: a screenshot, a photo, a notification and speech at
    ///   once, twice over; each holds at most one answer (16 MiB) until it is sent.
    fn default() -> Self {
        Self {
            handshake: Duration::from_secs(5),
            auth_deadline: Duration::from_secs(15),
            pre_auth_idle: Duration::from_secs(5),
            idle: Duration::from_secs(120),
            send_timeout: Duration::from_secs(60),
            pre_auth_per_peer: 4,
            pre_auth_total: 16,
            authenticated: 16,
            in_flight: 8,
        }
    }
}

/// Why a connection was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// This address already holds [`Limits::pre_auth_per_peer`] unauthenticated connections.
    PeerBudget,
    /// Strangers hold [`Limits::pre_auth_total`] unauthenticated connections.
    PreAuthBudget,
    /// [`Limits::authenticated`] gateway connections are open.
    Authenticated,
}

impl Refusal {
    pub fn describe(self, limits: &Limits) -> String {
        match self {
            Self::PeerBudget => format!(
                "{} connections from this address are still authenticating; close some first",
                limits.pre_auth_per_peer
            ),
            Self::PreAuthBudget => format!(
                "{} connections are still authenticating; try again in a few seconds",
                limits.pre_auth_total
            ),
            Self::Authenticated => format!(
                "this node already serves {} gateway connections; close one (or stop a gateway) and retry",
                limits.authenticated
            ),
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    /// Unauthenticated connections per (canonical) peer address, both lanes.
    per_peer: HashMap<IpAddr, usize>,
    /// Unauthenticated connections from addresses not in `known`.
    strangers: usize,
    authenticated: usize,
    /// Addresses a gateway authenticated or paired from since the node started.
    known: HashSet<IpAddr>,
    last_refusal_log: Option<Instant>,
}

/// The node's connection budgets (one per listener).
#[derive(Debug)]
pub struct Gate {
    limits: Limits,
    counts: Mutex<Counts>,
}

fn canonical(ip: IpAddr) -> IpAddr {
    // An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d; it is the same peer.
    ip.to_canonical()
}

impl Gate {
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            counts: Mutex::new(Counts::default()),
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A pre-auth slot for a connection from `peer`, or why there is none.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<PreAuthSlot, Refusal> {
        let peer = canonical(peer);
        let mut c = self.counts();
        let known = c.known.contains(&peer);
        let from_peer = c.per_peer.get(&peer).copied().unwrap_or(0);
        if from_peer >= self.limits.pre_auth_per_peer {
            return Err(Refusal::PeerBudget);
        }
        if !known && c.strangers >= self.limits.pre_auth_total {
            return Err(Refusal::PreAuthBudget);
        }
        *c.per_peer.entry(peer).or_insert(0) += 1;
        if !known {
            c.strangers += 1;
        }
        Ok(PreAuthSlot {
            gate: self.clone(),
            peer,
            stranger: !known,
        })
    }

    /// Moves an authenticated connection from its pre-auth slot to an authenticated one, and
    /// remembers its address as a gateway's.
    pub fn promote(self: &Arc<Self>, slot: PreAuthSlot) -> Result<AuthSlot, Refusal> {
        let peer = slot.peer;
        drop(slot);
        let mut c = self.counts();
        c.known.insert(peer);
        if c.authenticated >= self.limits.authenticated {
            return Err(Refusal::Authenticated);
        }
        c.authenticated += 1;
        Ok(AuthSlot { gate: self.clone() })
    }

    /// A gateway paired from `peer`: its later connections use the known lane.
    pub fn learn(&self, peer: IpAddr) {
        self.counts().known.insert(canonical(peer));
    }

    /// Whether a refusal should be logged now: at most one line per 10 s, so a flood of
    /// connections cannot flood the log too.
    pub fn should_log_refusal(&self, now: Instant) -> bool {
        let mut c = self.counts();
        let due = c
            .last_refusal_log
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10));
        if due {
            c.last_refusal_log = Some(now);
        }
        due
    }

    /// (unauthenticated, of them strangers, authenticated) connections now.
    pub fn occupancy(&self) -> (usize, usize, usize) {
        let c = self.counts();
        (c.per_peer.values().sum(), c.strangers, c.authenticated)
    }
}

/// An unauthenticated connection's place in the budget; given back on drop.
#[derive(Debug)]
pub struct PreAuthSlot {
    gate: Arc<Gate>,
    peer: IpAddr,
    stranger: bool,
}

impl Drop for PreAuthSlot {
    fn drop(&mut self) {
        let mut c = self.gate.counts();
        if let Some(n) = c.per_peer.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_peer.remove(&self.peer);
            }
        }
        if self.stranger {
            c.strangers = c.strangers.saturating_sub(1);
        }
    }
}

/// An authenticated connection's place in the budget; given back on drop.
#[derive(Debug)]
pub struct AuthSlot {
    gate: Arc<Gate>,
}

impl Drop for AuthSlot {
    fn drop(&mut self) {
        let mut c = self.gate.counts();
        c.authenticated = c.authenticated.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Limits {
        Limits {
            pre_auth_per_peer: 2,
            pre_auth_total: 3,
            authenticated: 1,
            ..Limits::default()
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_address_cannot_take_more_than_its_share() {
        let gate = Gate::new(small());
        let a1 = gate.admit(ip("10.0.0.1")).unwrap();
        let _a2 = gate.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(gate.admit(ip("10.0.0.1")).err(), Some(Refusal::PeerBudget));
        // The same peer seen through a dual-stack socket is the same peer.
        assert_eq!(
            gate.admit(ip("::ffff:10.0.0.1")).err(),
            Some(Refusal::PeerBudget)
        );
        // Another address still gets in, and a closed connection gives its slot back.
        let _b = gate.admit(ip("10.0.0.2")).unwrap();
        drop(a1);
        let _a3 = gate.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(gate.occupancy(), (3, 3, 0));
    }

    #[test]
    fn strangers_filling_the_budget_do_not_lock_out_a_known_gateway() {
        let gate = Gate::new(small());
        // The gateway authenticates once from 10.0.0.9.
        let slot = gate.admit(ip("10.0.0.9")).unwrap();
        let auth = gate.promote(slot).unwrap();
        assert_eq!(gate.occupancy(), (0, 0, 1));
        let _s: Vec<_> = ["10.0.0.1", "10.0.0.1", "10.0.0.2"]
            .iter()
            .map(|a| gate.admit(ip(a)).unwrap())
            .collect();
        assert_eq!(
            gate.admit(ip("10.0.0.3")).err(),
            Some(Refusal::PreAuthBudget)
        );
        // The gateway reconnects: its own lane.
        let again = gate.admit(ip("10.0.0.9")).unwrap();
        // Authenticated slots are counted apart: the one it holds is full (limit 1).
        assert_eq!(gate.promote(again).err(), Some(Refusal::Authenticated));
        drop(auth);
        let again = gate.admit(ip("10.0.0.9")).unwrap();
        let _auth = gate.promote(again).unwrap();
        assert_eq!(gate.occupancy(), (3, 3, 1));
        // A paired address is known too.
        gate.learn(ip("10.0.0.8"));
        assert!(gate.admit(ip("10.0.0.8")).is_ok());
    }

    #[test]
    fn refusals_are_logged_at_most_every_ten_seconds() {
        let gate = Gate::new(small());
        let t0 = Instant::now();
        assert!(gate.should_log_refusal(t0));
        assert!(!gate.should_log_refusal(t0 + Duration::from_secs(9)));
        assert!(gate.should_log_refusal(t0 + Duration::from_secs(10)));
    }
}
