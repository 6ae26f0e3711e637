//! Chat turns as the gateway sees them: counted, timed and queued around the agent, and the
//! WebSocket `chat.send` method that streams `chat.delta` / `chat.final` events.

use crate::GatewayState;
use crate::ws::Conn;
use openclaw_agent::{AgentError, AgentEvent, Inbound, Reply, ReplyKind};
use openclaw_protocol::{ErrorCode, ErrorShape, Request};
use serde_json::{Value, json};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Longest message a client may send, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;

/// Runs one agent turn with the gateway's bookkeeping: received/processed metrics, response
/// time, the queued-messages gauge and the 24 h counters.
pub async fn tracked(
    state: &GatewayState,
    channel: &str,
    turn: impl Future<Output = Result<Reply, AgentError>>,
) -> Result<Reply, AgentError> {
    state.metrics.message_received(channel);
    let mut guard = InFlight::new(state, channel);
    let result = turn.await;
    let started = guard.finish();
    let status = match &result {
        Ok(r) if r.kind == ReplyKind::Answer => "success",
        Ok(r) if r.kind == ReplyKind::RateLimited => "rate_limited",
        _ => "error",
    };
    state
        .record_message(channel, status, started.elapsed())
        .await;
    result
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
        state.queued_messages.fetch_add(1, Ordering::Relaxed);
        Self {
            state,
            channel,
            started: Instant::now(),
            done: false,
        }
    }

    fn finish(&mut self) -> Instant {
        self.done = true;
        self.state.queued_messages.fetch_sub(1, Ordering::Relaxed);
        self.started
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.state.queued_messages.fetch_sub(1, Ordering::Relaxed);
            self.state
                .metrics
                .message_processed(self.channel, "cancelled", self.started.elapsed());
        }
    }
}

/// A WebChat session key from the client: short, printable, or a default.
fn session_key(params: &Value) -> Result<String, ErrorShape> {
    match params.get("session") {
        None | Some(Value::Null) => Ok("default".into()),
        Some(Value::String(s))
            if !s.is_empty()
                && s.len() <= 128
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c)) =>
        {
            Ok(s.clone())
        }
        Some(_) => Err(ErrorShape::new(
            ErrorCode::InvalidRequest,
            "`session` must be 1-128 characters of letters, digits, - _ . :",
        )),
    }
}

/// `chat.send {text, session?}`: acknowledges with a run id, streams the reply as events, and
/// ends with `chat.final` (or `chat.error`). Returns false when the socket is gone.
pub async fn send(conn: &mut Conn, state: &GatewayState, req: &Request) -> bool {
    let text = req.params.get("text").and_then(Value::as_str).unwrap_or("");
    let invalid = |m: &str| Err(ErrorShape::new(ErrorCode::InvalidRequest, m));
    let check = if text.trim().is_empty() {
        invalid("`text` is required")
    } else if text.len() > MAX_MESSAGE_BYTES {
        invalid("message too long (32 KiB at most)")
    } else {
        session_key(&req.params)
    };
    let peer = match check {
        Ok(peer) => peer,
        Err(e) => return conn.reply(&req.id, Err(e)).await,
    };
    let Some(_slot) = state.chat_slot() else {
        return conn
            .reply(
                &req.id,
                Err(ErrorShape::new(
                    ErrorCode::Unavailable,
                    "the assistant is answering too many messages at once; try again in a moment",
                )),
            )
            .await;
    };
    let run_id = format!("run-{:016x}", rand::random::<u64>());
    if !conn.reply(&req.id, Ok(json!({ "runId": run_id }))).await {
        return false;
    }

    let inbound = Inbound {
        channel: "webchat".into(),
        peer,
        text: text.to_owned(),
        source: Some(conn.remote.ip().to_string()),
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<AgentEvent>();
    let mut on_event = move |ev| {
        let _ = tx.send(ev);
    };
    let turn = tracked(state, "webchat", state.agent.handle(inbound, &mut on_event));
    tokio::pin!(turn);
    let mut stop = state.stop.clone();
    let result = loop {
        tokio::select! {
            Some(ev) = rx.recv() => {
                if !forward(conn, &run_id, ev).await {
                    // The client left: dropping the turn cancels the provider request.
                    return false;
                }
            }
            incoming = crate::ws::next_request(conn) => match incoming {
                // Closed mid-reply: dropping the turn cancels the provider request.
                None => return false,
                Some(Err((id, e))) => {
                    if !conn.reply(&id, Err(e)).await {
                        return false;
                    }
                }
                Some(Ok(other)) => {
                    let busy = ErrorShape::new(
                        ErrorCode::Unavailable,
                        "a reply is still streaming on this connection; send again after its chat.final",
                    );
                    if !conn.reply(&other.id, Err(busy)).await {
                        return false;
                    }
                }
            },
            result = &mut turn => break result,
            () = crate::stopped(&mut stop) => return false,
        }
    };
    while let Ok(ev) = rx.try_recv() {
        if !forward(conn, &run_id, ev).await {
            return false;
        }
    }
    match result {
        Ok(reply) => {
            let kind = match reply.kind {
                ReplyKind::Answer => "answer",
                ReplyKind::RateLimited => "rate_limited",
                ReplyKind::NotConfigured => "not_configured",
            };
            conn.event(
                "chat.final",
                json!({
                    "runId": run_id,
                    "text": reply.text,
                    "kind": kind,
                    "provider": reply.provider,
                    "usage": reply.usage,
                }),
            )
            .await
        }
        Err(e) => {
            conn.event(
                "chat.error",
                json!({"runId": run_id, "message": e.to_string()}),
            )
            .await
        }
    }
}

async fn forward(conn: &mut Conn, run_id: &str, ev: AgentEvent) -> bool {
    match ev {
        AgentEvent::Delta(delta) => {
            conn.event("chat.delta", json!({"runId": run_id, "delta": delta}))
                .await
        }
        AgentEvent::Reset => conn.event("chat.reset", json!({"runId": run_id})).await,
        AgentEvent::Tool { name, ok } => {
            conn.event(
                "chat.tool",
                json!({"runId": run_id, "tool": name, "ok": ok}),
            )
            .await
        }
    }
}
