//! `POST /v1/chat/completions` and `GET /v1/models`: the assistant behind the OpenAI Chat
//! Completions API, so any OpenAI client can talk to it. `model` names the agent
//! (`agent.name`, or `openclaw`); the client keeps the conversation, the assistant keeps its
//! tools and memory. Streaming follows the API: `chat.completion.chunk` objects as `data:` lines,
//! then `data: [DONE]`.

use crate::GatewayState;
use crate::conversation::{ClientKept, MAX_MESSAGE_BYTES, Refusal, TurnError, TurnInput, TurnSlot};
use crate::http::read_json_body;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use openclaw_agent::{AgentEvent, Reply, ReplyKind, Turn};
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Deserialize)]
struct CompletionRequest {
    model: String,
    messages: Vec<InMessage>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    tools: Option<Value>,
    #[serde(default)]
    user: Option<String>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Deserialize)]
struct InMessage {
    role: String,
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

impl Content {
    fn text(&self) -> Result<String, String> {
        match self {
            Content::Text(t) => Ok(t.clone()),
            Content::Parts(parts) => parts
                .iter()
                .map(|p| match (p.kind.as_str(), &p.text) {
                    ("text", Some(t)) => Ok(t.as_str()),
                    (kind, _) => Err(format!(
                        "content parts of type `{kind}` are not supported; send text"
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|t| t.join("\n")),
        }
    }
}

/// An error in the OpenAI API's shape.
fn oai_error(
    status: StatusCode,
    kind: &str,
    code: Option<&str>,
    message: impl Into<String>,
) -> Response {
    (
        status,
        axum::Json(json!({"error": {"message": message.into(), "type": kind, "param": null, "code": code}})),
    )
        .into_response()
}

fn invalid(message: impl Into<String>) -> Response {
    oai_error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        None,
        message,
    )
}

/// Model ids this gateway answers to.
fn model_ids(state: &GatewayState) -> Vec<String> {
    let mut ids = vec!["openclaw".to_owned()];
    let name = state.config.agent.name.to_lowercase();
    if name != "openclaw" {
        ids.push(name);
    }
    ids
}

pub async fn models(State(state): State<Arc<GatewayState>>) -> Response {
    let data: Vec<Value> = model_ids(&state)
        .into_iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "openclaw"}))
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

fn completion_id() -> String {
    format!("chatcmpl-{:024x}", rand::random::<u128>() >> 32)
}

pub async fn chat_completions(
    State(state): State<Arc<GatewayState>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    request: axum::extract::Request,
) -> Response {
    let body = match read_json_body(request, MAX_COMPLETION_BODY).await {
        Ok(b) => b,
        Err(e) => return oai_error(e.status(), "invalid_request_error", None, e.message()),
    };
    let req: CompletionRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return invalid(format!(
                "request body is not a chat completion request: {e}"
            ));
        }
    };
    if !model_ids(&state)
        .iter()
        .any(|m| m.eq_ignore_ascii_case(&req.model))
    {
        return oai_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("model_not_found"),
            format!(
                "The model `{}` does not exist here; use one of: {}",
                req.model,
                model_ids(&state).join(", ")
            ),
        );
    }
    if req.tools.as_ref().is_some_and(|t| !t.is_null()) {
        return invalid("client-side `tools` are not supported: the assistant runs its own tools");
    }
    let mut system = Vec::new();
    let mut turns = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        let text = match m.content.as_ref().map(Content::text).transpose() {
            Ok(t) => t.unwrap_or_default(),
            Err(e) => return invalid(format!("messages[{i}]: {e}")),
        };
        if text.len() > MAX_MESSAGE_BYTES * 8 {
            return invalid(format!("messages[{i}] is too long"));
        }
        match m.role.as_str() {
            "system" | "developer" => system.push(text),
            "user" => turns.push(Turn::User(text)),
            "assistant" => turns.push(Turn::Assistant {
                text,
                tool_calls: Vec::new(),
            }),
            other => return invalid(format!("messages[{i}]: role `{other}` is not supported")),
        }
    }
    if !matches!(turns.last(), Some(Turn::User(t)) if !t.trim().is_empty()) {
        return invalid("the last message must be a non-empty `user` message");
    }
    let extra = (!system.is_empty()).then(|| system.join("\n"));
    let peer = req
        .user
        .clone()
        .filter(|u| !u.is_empty() && u.len() <= 128)
        .unwrap_or_else(|| "default".into());
    let slot = match state.reserve_turn() {
        Ok(slot) => slot,
        Err(Refusal::ShuttingDown) => {
            return oai_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                Some("shutting_down"),
                "the gateway is shutting down; retry against its replacement",
            );
        }
        Err(e @ Refusal::Paused) => {
            return oai_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                Some("paused"),
                &e.to_string(),
            );
        }
        Err(_) => {
            return oai_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                Some("overloaded"),
                "the assistant is answering too many requests at once; retry shortly",
            );
        }
    };
    let call = Call {
        peer,
        source: remote.ip().to_string(),
        turns,
        extra,
        slot,
    };
    if req.stream {
        let include_usage = req.stream_options.is_some_and(|o| o.include_usage);
        stream(state, req.model, call, include_usage).await
    } else {
        complete(state, req.model, call).await
    }
}

fn usage_json(u: &openclaw_agent::Usage) -> Value {
    json!({
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
    })
}

/// The largest completion request body: the whole conversation an OpenAI client keeps.
pub const MAX_COMPLETION_BODY: usize = 2 * 1024 * 1024;

/// One accepted completion request, holding its turn place until it is answered.
struct Call {
    peer: String,
    source: String,
    turns: Vec<Turn>,
    extra: Option<String>,
    slot: TurnSlot,
}

impl Call {
    /// The agent's turn for this request, through the conversation service like every turn.
    async fn respond(
        self,
        state: &GatewayState,
        allow_reset: bool,
        on_event: &mut (dyn FnMut(AgentEvent) + Send),
    ) -> Result<Reply, TurnError> {
        let input = TurnInput::ClientKept(ClientKept {
            channel: "api".into(),
            peer: self.peer,
            source: Some(self.source),
            turns: self.turns,
            system: self.extra,
            allow_reset,
        });
        state.run_turn(self.slot, input, on_event).await
    }
}

async fn complete(state: Arc<GatewayState>, model: String, call: Call) -> Response {
    let result = call.respond(&state, true, &mut |_| {}).await;
    match result {
        Ok(reply) if reply.kind == ReplyKind::RateLimited => oai_error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            Some("rate_limit_exceeded"),
            reply.text,
        ),
        Ok(reply) => axum::Json(json!({
            "id": completion_id(),
            "object": "chat.completion",
            "created": crate::sys::unix_now(),
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": reply.text},
                "logprobs": null,
                "finish_reason": "stop",
            }],
            "usage": usage_json(&reply.usage),
        }))
        .into_response(),
        Err(e) => oai_error(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            None,
            e.to_string(),
        ),
    }
}

/// What the streaming task hands the response.
enum Out {
    Chunk(Bytes),
    /// Settled before any text: answer with an HTTP error instead of a stream.
    Refused(Response),
}

fn chunk(id: &str, created: i64, model: &str, delta: Value, finish: Option<&str>) -> Bytes {
    let c = json!({
        "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
    });
    Bytes::from(format!("data: {c}\n\n"))
}

async fn stream(
    state: Arc<GatewayState>,
    model: String,
    call: Call,
    include_usage: bool,
) -> Response {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Out>();
    let id = completion_id();
    let created = crate::sys::unix_now();
    let task_tx = tx.clone();
    let tasks = state.tasks.clone();
    tasks.spawn(async move {
        let tx = task_tx;
        let started = AtomicBool::new(false);
        let mut on_event = {
            let tx = tx.clone();
            let (id, model) = (id.clone(), model.clone());
            let started = &started;
            move |ev: AgentEvent| {
                if let AgentEvent::Delta(d) = ev {
                    let mut out = Vec::new();
                    if !started.swap(true, Ordering::Relaxed) {
                        out.push(chunk(
                            &id,
                            created,
                            &model,
                            json!({"role": "assistant", "content": ""}),
                            None,
                        ));
                    }
                    out.push(chunk(&id, created, &model, json!({"content": d}), None));
                    for c in out {
                        let _ = tx.send(Out::Chunk(c));
                    }
                }
            }
        };
        // Mid-stream failover cannot take text back from an OpenAI client: allow_reset = false.
        let turn = call.respond(&state, false, &mut on_event);
        let result = tokio::select! {
            r = turn => r,
            // The client went away: dropping the turn cancels the provider request.
            () = tx.closed() => return,
        };
        drop(on_event);
        let streamed_any = started.load(Ordering::Relaxed);
        match result {
            Ok(reply) if reply.kind == ReplyKind::RateLimited && !streamed_any => {
                let _ = tx.send(Out::Refused(oai_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limit_error",
                    Some("rate_limit_exceeded"),
                    reply.text,
                )));
            }
            Ok(reply) => {
                if !streamed_any {
                    // A notice (e.g. what to configure) arrives whole; stream it as one piece.
                    let _ = tx.send(Out::Chunk(chunk(
                        &id,
                        created,
                        &model,
                        json!({"role": "assistant", "content": reply.text}),
                        None,
                    )));
                }
                let _ = tx.send(Out::Chunk(chunk(
                    &id,
                    created,
                    &model,
                    json!({}),
                    Some("stop"),
                )));
                if include_usage {
                    let u = json!({
                        "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                        "choices": [], "usage": usage_json(&reply.usage),
                    });
                    let _ = tx.send(Out::Chunk(Bytes::from(format!("data: {u}\n\n"))));
                }
                let _ = tx.send(Out::Chunk(Bytes::from_static(b"data: [DONE]\n\n")));
            }
            Err(e) if !streamed_any => {
                let _ = tx.send(Out::Refused(oai_error(
                    StatusCode::BAD_GATEWAY,
                    "upstream_error",
                    None,
                    e.to_string(),
                )));
            }
            Err(e) => {
                let err = json!({"error": {"message": e.to_string(), "type": "upstream_error", "param": null, "code": null}});
                let _ = tx.send(Out::Chunk(Bytes::from(format!("data: {err}\n\n"))));
            }
        }
    });
    drop(tx);

    // Headers wait for the first piece, so a refusal can still be a proper HTTP error.
    let first = match rx.recv().await {
        Some(Out::Refused(resp)) => return resp,
        Some(Out::Chunk(c)) => c,
        None => {
            return oai_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                None,
                "the reply ended before it started",
            );
        }
    };
    let rest = futures_util::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Some(Out::Chunk(c)) => return Some((Ok::<_, std::convert::Infallible>(c), rx)),
                Some(Out::Refused(_)) => continue,
                None => return None,
            }
        }
    });
    let body = futures_util::StreamExt::chain(
        futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(first) }),
        rest,
    );
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}
