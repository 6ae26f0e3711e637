//! The node dials its gateway (`openclaw-node run --gateway HOST:PORT`): for a node that
//! cannot be dialed (a phone in the background, a laptop behind NAT). One link at a time to the
//! gateway's node route, authenticated as a node (the gateway challenges, the node proves its
//! paired key and checks the gateway's), then served exactly as a link the gateway opened:
//! the same handler, the same limits. When the link ends or cannot be made, the node tries
//! again after a backoff that doubles up to a ceiling while attempts keep failing, and drops
//! back to the floor once a link has stayed up for a while (a gateway that accepts and
//! drops at once does not get a tight loop). Each wait has up to a quarter added at random, so
//! nodes that lost the same gateway do not all come back in the same instant.
//!
//! A phone's shell says when the OS has no network ([`DialOut::network`]): then the node does
//! not dial at all (each try would fail and wake the radio), and it dials at once, from the
//! floor of its backoff, when the network is back. [`DialEvents`] tells the shell what the
//! link is doing.

use crate::gate::Limits;
use crate::server::{Node, Serving};
use openclaw_node_link::dial_out::{DialGatewayError, dial_gateway};
use openclaw_node_link::{HandshakeError, LinkEnd, PeerConfig, Role, connect_to};
use openclaw_protocol::node::MAX_REQUEST_BYTES;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// What a dial-out loop tells its owner (a phone's shell shows it): each call is quick and must
/// not block, it runs on the loop's task.
pub trait DialEvents: Send + Sync + std::fmt::Debug {
    /// An attempt to reach `gateway` starts.
    fn connecting(&self, gateway: &str);
    /// The link to `gateway` is authenticated and served.
    fn connected(&self, gateway: &str);
    /// The link (or the attempt) ended; `reason` says why, for a person.
    fn disconnected(&self, gateway: &str, reason: &str);
}

/// Where and how to dial.
#[derive(Debug, Clone)]
pub struct DialOut {
    /// The gateway's `host:port`.
    pub gateway: String,
    /// The first wait after a failure, and the wait after a link that was up for `steady`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// A link up this long counts as good: the next wait is `min_backoff` again.
    pub steady: Duration,
    /// The session's limits (handshake, auth deadline, idle, send, calls in flight).
    pub limits: Limits,
    /// Whether the OS says there is a network (`None`: always assumed). While it is `false`
    /// the loop does not dial; a link already up is left to end by itself (its keep-alive sees
    /// a dead path), so a short flap does not drop a working link.
    pub network: Option<watch::Receiver<bool>>,
    /// Told of each attempt, link and end.
    pub events: Option<Arc<dyn DialEvents>>,
}

impl DialOut {
    /// 1 s doubling to 60 s; 30 s up resets it: a gateway restart is seen within a second or
    /// two, and an unreachable one costs a few connection attempts a minute.
    pub fn new(gateway: impl Into<String>) -> Self {
        Self {
            gateway: gateway.into(),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            steady: Duration::from_secs(30),
            limits: Limits::default(),
            network: None,
            events: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DialOutError {
    #[error(transparent)]
    Dial(#[from] DialGatewayError),
    #[error("the gateway at {addr}: {source}")]
    Handshake {
        addr: String,
        source: HandshakeError,
    },
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// A link was authenticated and served until it ended.
    Linked { lasted: Duration, end: LinkEnd },
    /// No link: the gateway was unreachable, or refused this node.
    Failed(DialOutError),
}

/// Dials, authenticates and serves one link until it ends.
pub async fn link_once(node: &Arc<Node>, options: &DialOut) -> Attempt {
    let addr = options.gateway.clone();
    let limits = &options.limits;
    let ws = match dial_gateway(&addr, limits.handshake).await {
        Ok(ws) => ws,
        Err(e) => return Attempt::Failed(e.into()),
    };
    let paired = node.paired_gateways();
    // The gateway names itself in its challenge; with a single paired gateway an older one
    // that does not is still found.
    let choose = |announced: Option<&str>| match announced {
        Some(id) => paired
            .iter()
            .find(|g| g.device_id == id)
            .map(|g| g.public_key.clone()),
        None if paired.len() == 1 => paired.first().map(|g| g.public_key.clone()),
        None => None,
    };
    let config = PeerConfig {
        idle: Some(limits.idle),
        send_timeout: limits.send_timeout,
        max_in_flight: limits.in_flight,
        ..PeerConfig::new(addr.clone(), MAX_REQUEST_BYTES)
    };
    let handler = Arc::new(Serving::new(node.clone()));
    let linked = connect_to(
        ws,
        Role::Node,
        node.identity().key(),
        choose,
        config,
        handler,
        limits.auth_deadline,
    )
    .await;
    let peer = match linked {
        Ok((peer, _)) => peer,
        Err(source) => return Attempt::Failed(DialOutError::Handshake { addr, source }),
    };
    let up = Instant::now();
    tracing::info!("linked to the gateway at {addr}");
    if let Some(e) = &options.events {
        e.connected(&addr);
    }
    let end = peer.ended().await;
    Attempt::Linked {
        lasted: up.elapsed(),
        end,
    }
}

/// The wait after `attempt`, given the previous wait.
pub fn next_backoff(previous: Duration, attempt: &Attempt, options: &DialOut) -> Duration {
    match attempt {
        Attempt::Linked { lasted, .. } if *lasted >= options.steady => options.min_backoff,
        _ => (previous * 2).clamp(options.min_backoff, options.max_backoff),
    }
}

/// Waits until `network` says the network is up; at once when there is no such signal. False
/// when its sender is gone (the shell stopped the node): the loop ends.
async fn network_up(network: &mut Option<watch::Receiver<bool>>) -> bool {
    match network {
        None => true,
        Some(rx) => rx.wait_for(|up| *up).await.is_ok(),
    }
}

/// Keeps a link to the gateway until `shutdown` completes: dial, serve, wait, again.
pub async fn run_dial_out(
    node: Arc<Node>,
    options: DialOut,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut network = options.network.clone();
    let events = options.events.clone();
    let gateway = options.gateway.as_str();
    // Half the floor, so that the first failure waits the floor itself.
    let mut backoff = options.min_backoff / 2;
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            up = network_up(&mut network) => if !up { return },
        }
        if let Some(e) = &events {
            e.connecting(gateway);
        }
        let attempt = tokio::select! {
            () = &mut shutdown => return,
            attempt = link_once(&node, &options) => attempt,
        };
        backoff = next_backoff(backoff, &attempt, &options);
        // Up to a quarter more, at random: nodes that lost the same gateway do not all come
        // back in the same instant.
        let wait = backoff + backoff.mul_f64(rand::random::<f64>() / 4.0);
        let reason = match &attempt {
            Attempt::Linked { end, .. } => format!("the link ended ({end})"),
            Attempt::Failed(e) => e.to_string(),
        };
        tracing::warn!(
            "{gateway}: {reason}; dialing again in {:.1} s",
            wait.as_secs_f32()
        );
        if let Some(e) = &events {
            e.disconnected(gateway, &reason);
        }
        let offline = async {
            match &mut network {
                Some(rx) => {
                    let _ = rx.wait_for(|up| !*up).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(wait) => {}
            // The network went away during the wait: the next attempt waits for it, and is made
            // from the floor, since the failures so far were likely the lost network's.
            () = offline => backoff = options.min_backoff / 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::{Capabilities, CapabilityError, Notifier};
    use crate::server::PairedGateway;
    use openclaw_node_link::dial_out::{accept_node, gateway_config, gateway_websocket_config};
    use openclaw_node_link::{NoRequests, Peer};
    use openclaw_pairing::identity::DeviceKey;
    use openclaw_protocol::node::{NotifyParams, method};
    use serde_json::{Value, json};
    use tokio::net::TcpListener;

    struct Quiet;

    impl Notifier for Quiet {
        fn notify(&self, _: &NotifyParams) -> Result<(), CapabilityError> {
            Ok(())
        }
    }

    fn node_paired_with(gateway: &DeviceKey) -> Arc<Node> {
        let mut caps = Capabilities::none("test node");
        caps.notifier = crate::Backend::Ready(Arc::new(Quiet));
        let node = Node::ephemeral("phone".into(), caps).unwrap();
        node.remember(PairedGateway {
            device_id: gateway.device_id(),
            name: "home".into(),
            public_key: gateway.public_key(),
            paired_at: 0,
        })
        .unwrap();
        node
    }

    fn quick(gateway: String) -> DialOut {
        DialOut {
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(800),
            ..DialOut::new(gateway)
        }
    }

    const WAIT: Duration = Duration::from_secs(5);

    /// The gateway's side of the next connection on `listener`, as its node route runs it:
    /// `knows` says whether it paired with `node`.
    async fn next_link(
        listener: &TcpListener,
        key: &DeviceKey,
        node: &Node,
        knows: bool,
    ) -> Result<Peer, openclaw_node_link::HandshakeError> {
        let (tcp, _) = tokio::time::timeout(WAIT, listener.accept())
            .await
            .expect("the node dialed")
            .unwrap();
        let ws = tokio_tungstenite::accept_async_with_config(tcp, Some(gateway_websocket_config()))
            .await
            .unwrap();
        let (id, public) = (
            node.identity().device_id(),
            node.identity().key().public_key(),
        );
        let (peer, verified) = accept_node(
            ws,
            key,
            |claimed| (knows && claimed == id).then_some(public),
            gateway_config("phone"),
            Arc::new(NoRequests),
            WAIT,
        )
        .await?;
        assert_eq!(verified.device_id, node.identity().device_id());
        Ok(peer)
    }

    #[tokio::test]
    async fn a_node_dials_its_gateway_serves_it_and_dials_again_when_the_link_drops() {
        let key = DeviceKey::generate();
        let node = node_paired_with(&key);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let dialing = tokio::spawn(run_dial_out(node.clone(), quick(addr), async {
            let _ = stopped.await;
        }));

        let peer = next_link(&listener, &key, &node, true).await.unwrap();
        let d = peer
            .call(method::DESCRIBE, Value::Null, WAIT)
            .await
            .unwrap();
        assert_eq!(d["name"], "phone");
        assert_eq!(d["capabilities"], json!(["system.notify"]));
        let ok = peer
            .call(method::SYSTEM_NOTIFY, json!({"title": "hi"}), WAIT)
            .await
            .unwrap();
        assert_eq!(ok["delivered"], true);

        // The gateway drops the link (a restart): the node is back within its backoff.
        peer.close();
        let again = next_link(&listener, &key, &node, true).await.unwrap();
        let d = again
            .call(method::DESCRIBE, Value::Null, WAIT)
            .await
            .unwrap();
        assert_eq!(d["id"], node.identity().device_id());

        let _ = stop.send(());
        tokio::time::timeout(WAIT, dialing).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_refused_node_keeps_trying_with_a_growing_backoff() {
        let key = DeviceKey::generate();
        let node = node_paired_with(&key);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let dialing = tokio::spawn(run_dial_out(node.clone(), quick(addr), async {
            let _ = stopped.await;
        }));
        // A gateway that does not know this node: refused each time, with NOT_PAIRED.
        let mut at = Vec::new();
        for _ in 0..4 {
            let err = next_link(&listener, &key, &node, false).await.unwrap_err();
            assert!(
                matches!(
                    err,
                    openclaw_node_link::HandshakeError::Auth(
                        openclaw_node_link::AuthError::NotPaired { .. }
                    )
                ),
                "{err}"
            );
            at.push(Instant::now());
        }
        let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
        // 100, 200, 400 ms (+ up to a quarter, + the attempt itself): a load can only stretch
        // them, so the floors show the doubling.
        for (gap, floor) in gaps.iter().zip([100, 200, 400]) {
            assert!(*gap >= Duration::from_millis(floor), "{gaps:?}");
        }
        // Once known, it gets in on its next try.
        let peer = next_link(&listener, &key, &node, true).await.unwrap();
        assert!(peer.call(method::DESCRIBE, Value::Null, WAIT).await.is_ok());
        let _ = stop.send(());
        tokio::time::timeout(WAIT, dialing).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn no_dialing_while_the_shell_says_there_is_no_network_and_at_once_when_it_is_back() {
        #[derive(Debug, Default)]
        struct Seen(std::sync::Mutex<Vec<String>>);
        impl DialEvents for Seen {
            fn connecting(&self, g: &str) {
                self.0.lock().unwrap().push(format!("connecting {g}"));
            }
            fn connected(&self, g: &str) {
                self.0.lock().unwrap().push(format!("connected {g}"));
            }
            fn disconnected(&self, g: &str, _: &str) {
                self.0.lock().unwrap().push(format!("disconnected {g}"));
            }
        }
        let key = DeviceKey::generate();
        let node = node_paired_with(&key);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (network, watching) = watch::channel(false);
        let seen = Arc::new(Seen::default());
        let options = DialOut {
            network: Some(watching),
            events: Some(seen.clone()),
            ..quick(addr.clone())
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let dialing = tokio::spawn(run_dial_out(node.clone(), options, async {
            let _ = stopped.await;
        }));
        // Offline: nothing dials, for several times the floor of the backoff.
        let quiet = tokio::time::timeout(Duration::from_millis(600), listener.accept()).await;
        assert!(quiet.is_err(), "the node dialed with no network");
        assert!(seen.0.lock().unwrap().is_empty());
        // Online again: dialed at once, not after a backoff.
        let back = Instant::now();
        network.send_replace(true);
        let peer = next_link(&listener, &key, &node, true).await.unwrap();
        assert!(
            back.elapsed() < Duration::from_millis(500),
            "{:?}",
            back.elapsed()
        );
        assert!(peer.call(method::DESCRIBE, Value::Null, WAIT).await.is_ok());
        // The network goes, then the link: no new attempt until the network is back.
        network.send_replace(false);
        peer.close();
        let quiet = tokio::time::timeout(Duration::from_millis(600), listener.accept()).await;
        assert!(quiet.is_err(), "the node dialed with no network");
        network.send_replace(true);
        let again = next_link(&listener, &key, &node, true).await.unwrap();
        assert!(
            again
                .call(method::DESCRIBE, Value::Null, WAIT)
                .await
                .is_ok()
        );
        let seen = seen.0.lock().unwrap().clone();
        assert_eq!(
            seen[..4],
            [
                format!("connecting {addr}"),
                format!("connected {addr}"),
                format!("disconnected {addr}"),
                format!("connecting {addr}"),
            ],
            "{seen:?}"
        );
        let _ = stop.send(());
        tokio::time::timeout(WAIT, dialing).await.unwrap().unwrap();
    }

    #[test]
    fn the_backoff_doubles_to_its_ceiling_and_drops_back_after_a_steady_link() {
        let options = quick("x".into());
        let failed = Attempt::Failed(DialOutError::Dial(DialGatewayError::TimedOut {
            addr: "x".into(),
            limit: Duration::ZERO,
        }));
        let mut b = options.min_backoff / 2;
        let mut seen = Vec::new();
        for _ in 0..6 {
            b = next_backoff(b, &failed, &options);
            seen.push(b.as_millis());
        }
        assert_eq!(seen, [100, 200, 400, 800, 800, 800]);
        let brief = Attempt::Linked {
            lasted: Duration::from_secs(1),
            end: LinkEnd::Local,
        };
        assert_eq!(next_backoff(b, &brief, &options), options.max_backoff);
        let steady = Attempt::Linked {
            lasted: options.steady,
            end: LinkEnd::Local,
        };
        assert_eq!(next_backoff(b, &steady, &options), options.min_backoff);
    }
}
