//! What a running gateway tells its embedder (the tray app's icon and menu, a test): health
//! changes, device nodes coming and going, chat activity, pending approvals. Sent on a
//! broadcast channel; a subscriber that falls behind misses the oldest events and is told how
//! many (tokio's `Lagged`), it never slows the gateway.

use openclaw_protocol::CheckStatus;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, broadcast};

/// Events kept for a subscriber that has not read them yet.
const BACKLOG: usize = 64;

/// How often a gateway with subscribers re-checks its health when nothing prompted it (the
/// disk filling up, memory growing): only while someone listens.
const HEALTH_RECHECK: Duration = Duration::from_secs(30);

/// How a handled message ended, for metrics, the 24 h counters and [`GatewayEvent::Chat`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageOutcome {
    Success,
    Error,
    RateLimited,
    /// The client left before the answer.
    Cancelled,
}

impl MessageOutcome {
    /// The `status` label of `openclaw_messages_processed_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Error => "error",
            Self::RateLimited => "rate_limited",
            Self::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum GatewayEvent {
    /// The overall health status changed (also sent once for the first check after a
    /// subscriber appears).
    Health {
        status: CheckStatus,
    },
    NodeConnected {
        name: String,
        capabilities: Vec<String>,
    },
    NodeDisconnected {
        name: String,
        detail: String,
    },
    NodePaired {
        name: String,
        id: String,
    },
    NodeRemoved {
        name: String,
    },
    /// A message was handled on `channel` (`webchat`, `api`, or a chat platform).
    Chat {
        channel: String,
        outcome: MessageOutcome,
    },
    /// The number of turns the agent is answering now changed (the tray's "working" icon).
    Working {
        turns: u64,
    },
    /// The owner paused or resumed the assistant.
    Paused {
        paused: bool,
    },
    /// A chat channel's driver reported its connection up (after being down or at start).
    ChannelConnected {
        channel: String,
    },
    /// A chat channel's connection went down (the driver says why in `detail`).
    ChannelDisconnected {
        channel: String,
        detail: String,
    },
    /// A scheduled backup failed (`/health`'s backup check says so too until one succeeds).
    BackupFailed {
        error: String,
    },
    /// Config was changed from the app (its setup) and takes effect after a restart: the tray
    /// app restarts its gateway; a server says so in its answer and log.
    RestartNeeded {
        reason: String,
    },
    /// The number of DM pairing codes waiting for the owner changed (a code was handed out,
    /// approved, rejected or expired); ask [`crate::GatewayHandle::approvals`] for the list.
    Approvals {
        pending: usize,
    },
}

/// The sending side, shared by everything in the gateway that has news.
#[derive(Debug, Clone)]
pub struct Events {
    tx: broadcast::Sender<GatewayEvent>,
    /// Something that feeds the health report changed: re-check it.
    health_changed: Arc<Notify>,
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

impl Events {
    pub fn new() -> Self {
        Self {
            tx: broadcast::channel(BACKLOG).0,
            health_changed: Arc::new(Notify::new()),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<GatewayEvent> {
        let rx = self.tx.subscribe();
        // A new subscriber gets the current status first.
        self.health_changed.notify_one();
        rx
    }

    /// Sends `event` to every subscriber (none: nothing is built or kept).
    pub fn send(&self, event: GatewayEvent) {
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(event);
        }
    }

    pub fn has_subscribers(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// A node, a provider's breaker, a backup or draining changed: health may have.
    pub fn health_may_have_changed(&self) {
        if self.has_subscribers() {
            self.health_changed.notify_one();
        }
    }

    /// Completes at the next prompt to re-check health, or after [`HEALTH_RECHECK`] while
    /// anyone listens (an idle gateway nobody watches is never woken for it).
    pub(crate) async fn next_health_check(&self) {
        if self.has_subscribers() {
            let _ = tokio::time::timeout(HEALTH_RECHECK, self.health_changed.notified()).await;
        } else {
            self.health_changed.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_get_events_and_none_costs_nothing() {
        let events = Events::new();
        events.send(GatewayEvent::NodeRemoved { name: "a".into() });
        let mut rx = events.subscribe();
        events.send(GatewayEvent::NodeRemoved { name: "b".into() });
        assert_eq!(
            rx.recv().await.unwrap(),
            GatewayEvent::NodeRemoved { name: "b".into() },
            "an event sent before subscribing is not replayed"
        );
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_told_what_it_missed() {
        let events = Events::new();
        let mut rx = events.subscribe();
        for i in 0..(BACKLOG + 5) {
            events.send(GatewayEvent::NodeRemoved {
                name: i.to_string(),
            });
        }
        assert!(matches!(
            rx.recv().await,
            Err(broadcast::error::RecvError::Lagged(5))
        ));
    }
}
