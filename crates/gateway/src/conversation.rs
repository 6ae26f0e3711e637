//! The conversation service: the one way a message reaches the agent and a reply leaves it,
//! whatever carried it (WebChat, the OpenAI-compatible API, and next the chat channels).
//!
//! In: [`Conversations::accept`] checks an [`InboundMessage`], takes one of the gateway's turn
//! slots, runs the agent with the turn's events going to the caller, and keeps the books
//! (received and processed counts, response time, queue depth, the 24 h counters, the
//! embedder's chat event). Out: [`Conversations::send`] delivers a message the assistant or the
//! owner starts (a reminder, a notice) to a channel's [`Outlet`] and keeps it in the
//! conversation's history. It knows no transport: each way in maps its own frames to these
//! types and these errors to its own shapes.

use crate::GatewayState;
use crate::events::{GatewayEvent, MessageOutcome};
use futures_util::future::BoxFuture;
use openclaw_agent::{AgentError, AgentEvent, Inbound, Reply, ReplyKind, Trust, Turn};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// Longest message text a client may send, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;
/// Attachments one message may carry, and their total size.
pub const MAX_ATTACHMENTS: usize = 8;
pub const MAX_ATTACHMENT_BYTES: usize = 8 * 1024 * 1024;

pub use openclaw_agent::Attachment;

/// A message arriving from any way in.
#[derive(Debug, Clone)]
pub struct InboundMessage {
    /// `webchat`, `api`, `telegram`, …
    pub channel: String,
    /// The sender within the channel (chat id, user id, WebChat session key).
    pub peer: String,
    /// The platform's id for the message, when it has one (for replies and de-duplication).
    pub message_id: Option<String>,
    pub text: String,
    pub attachments: Vec<Attachment>,
    /// Where it came from when the client picks its own `peer` (see [`Inbound::source`]).
    pub source: Option<String>,
    /// WebChat and the APIs need the gateway token: their sender is the owner.
    pub trust: Trust,
}

impl InboundMessage {
    /// A text message from the owner on `channel`.
    pub fn text(channel: &str, peer: &str, text: &str) -> Self {
        Self {
            channel: channel.to_owned(),
            peer: peer.to_owned(),
            message_id: None,
            text: text.to_owned(),
            attachments: Vec::new(),
            source: None,
            trust: Trust::Owner,
        }
    }
}

/// Why a message was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the message is empty")]
    Empty,
    #[error("message too long ({max} bytes at most)", max = MAX_MESSAGE_BYTES)]
    TooLong,
    #[error("too many attachments or too large ({MAX_ATTACHMENTS} files, {} MiB in all, at most)", MAX_ATTACHMENT_BYTES / (1024 * 1024))]
    AttachmentsTooLarge,
    #[error("the assistant is answering too many messages at once; try again in a moment")]
    Busy,
    #[error("the gateway is shutting down")]
    ShuttingDown,
    #[error("{}", crate::pause::PAUSED_MESSAGE)]
    Paused,
}

#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    #[error("{0}")]
    Refused(#[from] Refusal),
    #[error("{0}")]
    Agent(#[from] AgentError),
}

/// A message the assistant or the owner starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMessage {
    pub channel: String,
    pub peer: String,
    pub text: String,
}

/// Where an outbound message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// To this many live connections of the peer (a WebChat tab, a chat app).
    Live(usize),
    /// Nobody of the peer is connected now: it is in the conversation's history, read at the
    /// next visit.
    Kept,
}

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error(
        "no way to reach `{0}`: that channel has no driver in this gateway (WebChat always has)"
    )]
    NoChannel(String),
    #[error("the message is empty or too long ({MAX_MESSAGE_BYTES} bytes at most)")]
    BadText,
    #[error("could not keep the message in the conversation: {0}")]
    Store(String),
    #[error("{channel} did not take the message: {reason}")]
    Delivery { channel: String, reason: String },
}

/// A channel's way out: a chat driver's send, or WebChat's open sockets.
pub trait Outlet: Send + Sync {
    /// Delivers `text` to `peer`; the number of live recipients (0: nobody connected now).
    fn deliver<'a>(&'a self, peer: &'a str, text: &'a str) -> BoxFuture<'a, Result<usize, String>>;
}

/// The conversation service of one gateway.
pub struct Conversations {
    outlets: RwLock<HashMap<String, Arc<dyn Outlet>>>,
}

impl std::fmt::Debug for Conversations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .outlets
            .read()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        f.debug_struct("Conversations")
            .field("outlets", &names)
            .finish()
    }
}

impl Conversations {
    pub(crate) fn new() -> Self {
        Self {
            outlets: RwLock::new(HashMap::new()),
        }
    }

    /// Lets the gateway reach `channel`'s peers (a channel driver registers here when it
    /// connects). A later outlet for the same channel replaces the earlier one.
    pub fn add_outlet(&self, channel: &str, outlet: Arc<dyn Outlet>) {
        if let Ok(mut o) = self.outlets.write() {
            o.insert(channel.to_owned(), outlet);
        }
    }

    fn outlet(&self, channel: &str) -> Option<Arc<dyn Outlet>> {
        self.outlets.read().ok()?.get(channel).cloned()
    }
}

/// Checks what any way in must check the same way.
pub fn check(msg: &InboundMessage) -> Result<(), Refusal> {
    if msg.text.trim().is_empty() && msg.attachments.is_empty() {
        return Err(Refusal::Empty);
    }
    if msg.text.len() > MAX_MESSAGE_BYTES {
        return Err(Refusal::TooLong);
    }
    let total: usize = msg.attachments.iter().map(|a| a.data.len()).sum();
    if msg.attachments.len() > MAX_ATTACHMENTS || total > MAX_ATTACHMENT_BYTES {
        return Err(Refusal::AttachmentsTooLarge);
    }
    Ok(())
}

/// A conversation the client keeps itself (the OpenAI-compatible API): its whole history
/// comes with each request and nothing is stored.
#[derive(Debug, Clone)]
pub struct ClientKept {
    pub channel: String,
    pub peer: String,
    pub source: Option<String>,
    pub turns: Vec<Turn>,
    /// The client's own system text, added to the assistant's.
    pub system: Option<String>,
    /// Whether the reply may start over on failover (a streamed one cannot take text back).
    pub allow_reset: bool,
}

/// What a turn answers.
#[derive(Debug, Clone)]
pub enum TurnInput {
    /// A message of a conversation the gateway keeps (WebChat, the channels).
    Message(InboundMessage),
    ClientKept(ClientKept),
}

impl TurnInput {
    fn channel(&self) -> &str {
        match self {
            Self::Message(m) => &m.channel,
            Self::ClientKept(c) => &c.channel,
        }
    }
}

/// One of the gateway's turn places ([`crate::MAX_CONCURRENT_TURNS`]), held for a turn.
#[derive(Debug)]
pub struct TurnSlot(#[allow(dead_code)] tokio::sync::OwnedSemaphorePermit);

impl GatewayState {
    /// A place for one turn, or why there is none. Taken before answering the client, so a
    /// busy gateway says so before a stream starts.
    pub fn reserve_turn(&self) -> Result<TurnSlot, Refusal> {
        if self.is_draining() {
            return Err(Refusal::ShuttingDown);
        }
        if self.pause.is_paused() {
            return Err(Refusal::Paused);
        }
        self.chat_slot().map(TurnSlot).ok_or(Refusal::Busy)
    }

    /// Runs one inbound message through the agent: checked, given a turn place, counted,
    /// timed and queued; the turn's events go to `on_event`.
    pub async fn accept(
        &self,
        msg: InboundMessage,
        on_event: &mut (dyn FnMut(AgentEvent) + Send),
    ) -> Result<Reply, TurnError> {
        check(&msg)?;
        let slot = self.reserve_turn()?;
        self.run_turn(slot, TurnInput::Message(msg), on_event).await
    }

    /// Runs a turn in a reserved place with the gateway's bookkeeping: received and processed
    /// counts, response time, the queue gauge, the 24 h counters, the embedder's chat event.
    /// Dropping the future cancels the turn (and its provider request), counted as
    /// `cancelled`.
    pub async fn run_turn(
        &self,
        _slot: TurnSlot,
        input: TurnInput,
        on_event: &mut (dyn FnMut(AgentEvent) + Send),
    ) -> Result<Reply, TurnError> {
        let channel = input.channel().to_owned();
        self.metrics.message_received(&channel);
        let mut in_flight = InFlight::new(self, &channel);
        let result = match input {
            TurnInput::Message(msg) => {
                let inbound = Inbound {
                    channel: msg.channel,
                    peer: msg.peer,
                    text: msg.text,
                    source: msg.source,
                    attachments: msg.attachments,
                    trust: msg.trust,
                };
                self.agent.handle(inbound, on_event).await
            }
            TurnInput::ClientKept(c) => {
                self.agent
                    .respond(
                        &c.peer,
                        c.source.as_deref(),
                        c.turns,
                        c.system.as_deref(),
                        c.allow_reset,
                        on_event,
                    )
                    .await
            }
        };
        let started = in_flight.finish();
        let outcome = match &result {
            Ok(r) if r.kind == ReplyKind::Answer => MessageOutcome::Success,
            Ok(r) if r.kind == ReplyKind::RateLimited => MessageOutcome::RateLimited,
            _ => MessageOutcome::Error,
        };
        self.record_message(&channel, outcome, started.elapsed())
            .await;
        Ok(result?)
    }

    /// Sends a message the assistant or the owner starts: kept in the conversation's history
    /// (so the next turn knows it was said), then delivered through the channel's outlet.
    pub async fn send(&self, msg: OutboundMessage) -> Result<Delivered, OutboundError> {
        if msg.text.trim().is_empty() || msg.text.len() > MAX_MESSAGE_BYTES {
            return Err(OutboundError::BadText);
        }
        let outlet = self
            .conversations
            .outlet(&msg.channel)
            .ok_or_else(|| OutboundError::NoChannel(msg.channel.clone()))?;
        self.agent
            .note_assistant_message(&msg.channel, &msg.peer, &msg.text)
            .await
            .map_err(|e| OutboundError::Store(e.to_string()))?;
        let live = outlet
            .deliver(&msg.peer, &msg.text)
            .await
            .map_err(|reason| OutboundError::Delivery {
                channel: msg.channel.clone(),
                reason,
            })?;
        Ok(if live > 0 {
            Delivered::Live(live)
        } else {
            Delivered::Kept
        })
    }
}

/// Counts a turn as queued while it runs; a turn dropped before it finished (the client left)
/// is counted as `cancelled`.
struct InFlight<'a> {
    state: &'a GatewayState,
    channel: &'a str,
    started: Instant,
    done: bool,
}

impl<'a> InFlight<'a> {
    fn new(state: &'a GatewayState, channel: &'a str) -> Self {
        let turns = state.queued_messages.fetch_add(1, Ordering::Relaxed) + 1;
        state.events.send(GatewayEvent::Working { turns });
        Self {
            state,
            channel,
            started: Instant::now(),
            done: false,
        }
    }

    fn finish(&mut self) -> Instant {
        self.done = true;
        self.one_less();
        self.started
    }

    fn one_less(&self) {
        let turns = self
            .state
            .queued_messages
            .fetch_sub(1, Ordering::Relaxed)
            .saturating_sub(1);
        self.state.events.send(GatewayEvent::Working { turns });
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.one_less();
            self.state.metrics.message_processed(
                self.channel,
                MessageOutcome::Cancelled.as_str(),
                self.started.elapsed(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(text: &str) -> InboundMessage {
        InboundMessage::text("webchat", "p", text)
    }

    #[test]
    fn every_way_in_gets_the_same_checks() {
        assert_eq!(check(&msg("  ")), Err(Refusal::Empty));
        assert_eq!(
            check(&msg(&"x".repeat(MAX_MESSAGE_BYTES + 1))),
            Err(Refusal::TooLong)
        );
        assert_eq!(check(&msg("hi")), Ok(()));
        let mut with_photo = msg("");
        with_photo.attachments.push(Attachment {
            media_type: "image/png".into(),
            name: None,
            data: vec![0; 10],
        });
        assert_eq!(check(&with_photo), Ok(()), "a photo alone is a message");
        with_photo.attachments[0].data = vec![0; MAX_ATTACHMENT_BYTES + 1];
        assert_eq!(check(&with_photo), Err(Refusal::AttachmentsTooLarge));
    }
}
