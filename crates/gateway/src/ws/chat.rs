//! The WebSocket's `chat.send`: a message in, the reply streamed back as `chat.delta` /
//! `chat.final` events, through the conversation service like every way in.

use super::conn::{Conn, next_request};
use crate::GatewayState;
use crate::conversation::{InboundMessage, Refusal, TurnInput};
use openclaw_agent::{AgentEvent, ReplyKind};
use openclaw_protocol::{ErrorCode, ErrorShape, Request};
use serde_json::{Value, json};

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
/// ends with `chat.final` (or `chat.error`). Returns false when the socket is gone. The socket
/// then also receives `chat.message` events the assistant starts for that session.
pub(crate) async fn send(conn: &mut Conn, state: &GatewayState, req: &Request) -> bool {
    let text = req.params.get("text").and_then(Value::as_str).unwrap_or("");
    let peer = match session_key(&req.params) {
        Ok(peer) => peer,
        Err(e) => return conn.reply(&req.id, Err(e)).await,
    };
    let msg = InboundMessage {
        source: Some(conn.remote.ip().to_string()),
        ..InboundMessage::text("webchat", &peer, text)
    };
    if let Err(refused) = crate::conversation::check(&msg) {
        return conn.reply(&req.id, Err(refusal_shape(&refused))).await;
    }
    let slot = match state.reserve_turn() {
        Ok(slot) => slot,
        Err(refused) => return conn.reply(&req.id, Err(refusal_shape(&refused))).await,
    };
    conn.pushes.watch(&state.webchat, &peer);
    let run_id = format!("run-{:016x}", rand::random::<u64>());
    if !conn.reply(&req.id, Ok(json!({ "runId": run_id }))).await {
        return false;
    }

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<AgentEvent>();
    let mut on_event = move |ev| {
        let _ = tx.send(ev);
    };
    let turn = state.run_turn(slot, TurnInput::Message(msg), &mut on_event);
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
            incoming = next_request(&mut conn.socket) => match incoming {
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

/// A refusal as the WebSocket's error shape.
fn refusal_shape(refused: &Refusal) -> ErrorShape {
    let code = match refused {
        Refusal::Empty | Refusal::TooLong | Refusal::AttachmentsTooLarge => {
            ErrorCode::InvalidRequest
        }
        Refusal::Busy | Refusal::ShuttingDown => ErrorCode::Unavailable,
        Refusal::Paused => ErrorCode::Paused,
    };
    ErrorShape::new(code, refused.to_string())
}

async fn forward(conn: &mut Conn, run_id: &str, ev: AgentEvent) -> bool {
    match ev {
        AgentEvent::Delta(delta) => {
            conn.event("chat.delta", json!({"runId": run_id, "delta": delta}))
                .await
        }
        AgentEvent::Reset => conn.event("chat.reset", json!({"runId": run_id})).await,
        AgentEvent::Tool { name, ok, images } => {
            // Pictures the tool returned (a node's screenshot) are the user's to see too.
            let images: Vec<Value> = images
                .iter()
                .map(|i| json!({"mediaType": i.media_type, "data": i.data}))
                .collect();
            conn.event(
                "chat.tool",
                json!({"runId": run_id, "tool": name, "ok": ok, "images": images}),
            )
            .await
        }
    }
}
