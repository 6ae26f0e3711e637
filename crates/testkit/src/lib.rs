//! Loopback fakes of the outside services OpenClaw talks to, for tests and benchmarks only.
//!
//! [`FakeLlm`] serves both LLM wire formats on one port: the Anthropic Messages API
//! (`POST /v1/messages`, SSE events `message_start` … `message_stop`) and OpenAI Chat Completions
//! (`POST /v1/chat/completions`, `data:` chunks ending in `data: [DONE]`), exactly as their
//! documentation shows them, including error bodies, `retry-after`, mid-stream disconnects and
//! malformed JSON. Each test scripts the responses in order and inspects the requests it got.
//! Never a dependency of shipped code.

pub mod archive;
pub mod package_index;
pub mod tailscale;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Script {
    /// Streams `chunks` of text (with `delay` before each), then ends normally.
    Text {
        chunks: Vec<String>,
        delay: Duration,
    },
    /// Streams optional text, then one tool call whose arguments arrive in two fragments.
    ToolCall {
        text: Option<String>,
        name: String,
        arguments: Value,
    },
    /// An HTTP error with the provider's documented error body.
    Error {
        status: u16,
        error_type: String,
        message: String,
        retry_after: Option<String>,
    },
    /// Streams `chunks`, then drops the connection without finishing.
    Disconnect { chunks: Vec<String> },
    /// Streams a chunk whose JSON is cut off.
    Malformed,
    /// Anthropic only: an `error` event in the middle of a 200 stream.
    StreamError { error_type: String, message: String },
    /// Accepts the request and never answers.
    Hang,
}

impl Script {
    pub fn text<I: IntoIterator<Item = S>, S: Into<String>>(chunks: I) -> Self {
        Self::Text {
            chunks: chunks.into_iter().map(Into::into).collect(),
            delay: Duration::ZERO,
        }
    }

    pub fn slow_text<I: IntoIterator<Item = S>, S: Into<String>>(
        chunks: I,
        delay: Duration,
    ) -> Self {
        Self::Text {
            chunks: chunks.into_iter().map(Into::into).collect(),
            delay,
        }
    }

    pub fn tool_call(name: &str, arguments: Value) -> Self {
        Self::ToolCall {
            text: None,
            name: name.into(),
            arguments,
        }
    }

    /// 429 with `retry-after` (seconds).
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self::Error {
            status: 429,
            error_type: "rate_limit_error".into(),
            message: "Number of request tokens has exceeded your per-minute rate limit".into(),
            retry_after: Some(retry_after_secs.to_string()),
        }
    }

    /// 529, Anthropic's "overloaded".
    pub fn overloaded() -> Self {
        Self::Error {
            status: 529,
            error_type: "overloaded_error".into(),
            message: "Overloaded".into(),
            retry_after: None,
        }
    }

    pub fn unavailable() -> Self {
        Self::Error {
            status: 503,
            error_type: "server_error".into(),
            message: "The server is currently overloaded with other requests.".into(),
            retry_after: None,
        }
    }

    pub fn unauthorized() -> Self {
        Self::Error {
            status: 401,
            error_type: "authentication_error".into(),
            message: "invalid x-api-key".into(),
            retry_after: None,
        }
    }
}

/// A request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Default)]
struct Shared {
    /// When set, `GET /v1/models` accepts only this key.
    valid_key: Option<String>,
    queue: VecDeque<Script>,
    /// Answer when the queue is empty (benchmarks); `None` fails the request loudly.
    fallback: Option<Script>,
    requests: Vec<Recorded>,
}

#[derive(Clone)]
pub struct FakeLlm {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    _runtime: Option<Arc<RuntimeThread>>,
}

impl std::fmt::Debug for FakeLlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeLlm").field("addr", &self.addr).finish()
    }
}

/// Keeps a background runtime alive for fakes used from synchronous tests.
struct RuntimeThread {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for RuntimeThread {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves `app` on 127.0.0.1 on the current tokio runtime, until that runtime ends.
pub(crate) async fn serve_here(what: &'static str, app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind {what}: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("{what} address: {e}"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// Serves `app` on 127.0.0.1 from a one-worker runtime on a thread of its own, until the
/// returned [`RuntimeThread`] is dropped.
pub(crate) fn serve_in_thread(what: &'static str, app: Router) -> (SocketAddr, RuntimeThread) {
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{what} runtime: {e}"));
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap_or_else(|e| panic!("bind {what}: {e}"));
            let _ = tx.send(listener.local_addr());
            tokio::select! {
                _ = axum::serve(listener, app) => {}
                _ = stop_rx => {}
            }
        });
    });
    let addr = rx
        .recv()
        .unwrap_or_else(|e| panic!("{what} did not start: {e}"))
        .unwrap_or_else(|e| panic!("{what} address: {e}"));
    (
        addr,
        RuntimeThread {
            stop: Some(stop_tx),
            thread: Some(thread),
        },
    )
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

impl FakeLlm {
    /// Serves on 127.0.0.1 on the current tokio runtime.
    pub async fn start() -> Self {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let addr = serve_here("fake LLM", router(shared.clone())).await;
        Self {
            addr,
            shared,
            _runtime: None,
        }
    }

    /// Serves on 127.0.0.1 from a thread of its own (for synchronous tests and other processes).
    pub fn start_in_thread() -> Self {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (addr, runtime) = serve_in_thread("fake LLM", router(shared.clone()));
        Self {
            addr,
            shared,
            _runtime: Some(Arc::new(runtime)),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `providers.<name>.base_url` for an Anthropic provider.
    pub fn anthropic_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `providers.<name>.base_url` for an OpenAI-compatible provider.
    pub fn openai_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Queues the next answer.
    pub fn push(&self, script: Script) {
        lock(&self.shared).queue.push_back(script);
    }

    /// The answer once the queue is empty.
    pub fn set_fallback(&self, script: Script) {
        lock(&self.shared).fallback = Some(script);
    }

    /// Makes `GET /v1/models` refuse any other key with 401, as the real APIs do.
    pub fn set_valid_key(&self, key: &str) {
        lock(&self.shared).valid_key = Some(key.to_owned());
    }

    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared).requests.clone()
    }

    pub fn request_count(&self) -> usize {
        lock(&self.shared).requests.len()
    }

    /// Scripts not consumed yet.
    pub fn pending(&self) -> usize {
        lock(&self.shared).queue.len()
    }
}

fn router(shared: Arc<Mutex<Shared>>) -> Router {
    Router::new()
        .route("/v1/messages", post(anthropic))
        .route("/v1/chat/completions", post(openai))
        .route("/v1/models", axum::routing::get(models))
        .with_state(shared)
}

fn take(
    shared: &Mutex<Shared>,
    path: &str,
    headers: HeaderMap,
    body: &Bytes,
) -> Result<Script, Box<Response>> {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut s = lock(shared);
    s.requests.push(Recorded {
        path: path.into(),
        headers,
        body: parsed.clone(),
    });
    if parsed.get("stream") != Some(&Value::Bool(true)) {
        return Err(Box::new(
            (StatusCode::BAD_REQUEST, "the fake serves stream: true only").into_response(),
        ));
    }
    match s.queue.pop_front().or_else(|| s.fallback.clone()) {
        Some(script) => Ok(script),
        None => Err(Box::new(
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "fake LLM: no scripted response left for this request",
            )
                .into_response(),
        )),
    }
}

type Chunk = Result<Bytes, std::io::Error>;

/// A streamed body from pieces, each after its delay; an `Err` piece drops the connection.
fn sse_body(pieces: Vec<(Duration, Chunk)>) -> Body {
    Body::from_stream(
        futures_util::stream::iter(pieces).then(|(delay, piece)| async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            piece
        }),
    )
}

fn sse_response(pieces: Vec<(Duration, Chunk)>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        sse_body(pieces),
    )
        .into_response()
}

fn dropped() -> (Duration, Chunk) {
    (
        // After a pause, so what was sent before is on the wire, as in a real mid-stream drop.
        Duration::from_millis(50),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "fake: connection dropped",
        )),
    )
}

fn now_piece(text: String) -> (Duration, Chunk) {
    (Duration::ZERO, Ok(Bytes::from(text)))
}

/// `GET /v1/models` in both APIs: Anthropic sends `x-api-key`, OpenAI `Authorization: Bearer`.
async fn models(State(shared): State<Arc<Mutex<Shared>>>, headers: HeaderMap) -> Response {
    let anthropic = headers.contains_key("x-api-key");
    let key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::to_owned)
        });
    let valid = lock(&shared).valid_key.clone();
    if let Some(valid) = valid
        && key.as_deref() != Some(valid.as_str())
    {
        let body = if anthropic {
            a_error_body("authentication_error", "invalid x-api-key")
        } else {
            o_error_body(401, "invalid_request_error", "Incorrect API key provided")
        };
        return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    }
    let body = if anthropic {
        json!({"data": [{"type": "model", "id": "claude-fake", "display_name": "Claude (fake)", "created_at": "2025-01-01T00:00:00Z"}], "has_more": false, "first_id": "claude-fake", "last_id": "claude-fake"})
    } else {
        json!({"object": "list", "data": [{"id": "gpt-fake", "object": "model", "created": 1_700_000_000, "owned_by": "fake"}]})
    };
    axum::Json(body).into_response()
}

// ---------- Anthropic ----------

fn a_event(kind: &str, data: Value) -> String {
    format!("event: {kind}\ndata: {data}\n\n")
}

fn a_error_body(error_type: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": error_type, "message": message}})
}

fn a_start(model: &str) -> String {
    a_event(
        "message_start",
        json!({"type": "message_start", "message": {
            "id": "msg_fake01", "type": "message", "role": "assistant", "content": [],
            "model": model, "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 25, "output_tokens": 1}
        }}),
    )
}

fn a_text_pieces(chunks: &[String], delay: Duration, index: usize) -> Vec<(Duration, Chunk)> {
    let mut out = vec![now_piece(a_event(
        "content_block_start",
        json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
    ))];
    out.push(now_piece(a_event("ping", json!({"type": "ping"}))));
    for c in chunks {
        out.push((
            delay,
            Ok(Bytes::from(a_event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": c}}),
            ))),
        ));
    }
    out
}

fn a_finish(stop_reason: &str, output_tokens: usize) -> Vec<(Duration, Chunk)> {
    vec![
        now_piece(a_event(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null}, "usage": {"output_tokens": output_tokens}}),
        )),
        now_piece(a_event("message_stop", json!({"type": "message_stop"}))),
    ]
}

async fn anthropic(
    State(shared): State<Arc<Mutex<Shared>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let script = match take(&shared, "/v1/messages", headers, &body) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let model = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["model"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "claude-fake".into());
    match script {
        Script::Text { chunks, delay } => {
            let mut pieces = vec![now_piece(a_start(&model))];
            pieces.extend(a_text_pieces(&chunks, delay, 0));
            pieces.push(now_piece(a_event(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            )));
            pieces.extend(a_finish("end_turn", chunks.len().max(1)));
            sse_response(pieces)
        }
        Script::ToolCall {
            text,
            name,
            arguments,
        } => {
            let mut pieces = vec![now_piece(a_start(&model))];
            let mut index = 0;
            if let Some(t) = text {
                pieces.extend(a_text_pieces(&[t], Duration::ZERO, 0));
                pieces.push(now_piece(a_event(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": 0}),
                )));
                index = 1;
            }
            pieces.push(now_piece(a_event(
                "content_block_start",
                json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": "toolu_fake01", "name": name, "input": {}}}),
            )));
            let args = arguments.to_string();
            let (a, b) = args.split_at(args.len() / 2);
            for part in [a, b] {
                pieces.push(now_piece(a_event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": part}}),
                )));
            }
            pieces.push(now_piece(a_event(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": index}),
            )));
            pieces.extend(a_finish("tool_use", 12));
            sse_response(pieces)
        }
        Script::Error {
            status,
            error_type,
            message,
            retry_after,
        } => {
            let mut resp = (
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                [(header::CONTENT_TYPE, "application/json")],
                a_error_body(&error_type, &message).to_string(),
            )
                .into_response();
            if let Some(r) = retry_after.and_then(|r| r.parse().ok()) {
                resp.headers_mut().insert(header::RETRY_AFTER, r);
            }
            resp
        }
        Script::Disconnect { chunks } => {
            let mut pieces = vec![now_piece(a_start(&model))];
            pieces.extend(a_text_pieces(&chunks, Duration::ZERO, 0));
            pieces.push(dropped());
            sse_response(pieces)
        }
        Script::Malformed => {
            let mut pieces = vec![now_piece(a_start(&model))];
            pieces.push(now_piece(
                "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_bl\n\n".into(),
            ));
            sse_response(pieces)
        }
        Script::StreamError {
            error_type,
            message,
        } => {
            let mut pieces = vec![now_piece(a_start(&model))];
            pieces.extend(a_text_pieces(&["partial".into()], Duration::ZERO, 0));
            pieces.push(now_piece(a_event(
                "error",
                a_error_body(&error_type, &message),
            )));
            sse_response(pieces)
        }
        Script::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}

// ---------- OpenAI ----------

fn o_chunk(model: &str, delta: Value, finish: Option<&str>) -> String {
    let chunk = json!({
        "id": "chatcmpl-fake01", "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": model, "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
    });
    format!("data: {chunk}\n\n")
}

fn o_usage(model: &str, completion_tokens: usize) -> String {
    let chunk = json!({
        "id": "chatcmpl-fake01", "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": model, "system_fingerprint": "fp_fake", "choices": [],
        "usage": {"prompt_tokens": 25, "completion_tokens": completion_tokens, "total_tokens": 25 + completion_tokens}
    });
    format!("data: {chunk}\n\n")
}

fn o_error_body(status: u16, error_type: &str, message: &str) -> Value {
    let code = match status {
        401 => json!("invalid_api_key"),
        429 => json!("rate_limit_exceeded"),
        _ => Value::Null,
    };
    json!({"error": {"message": message, "type": error_type, "param": null, "code": code}})
}

async fn openai(
    State(shared): State<Arc<Mutex<Shared>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let script = match take(&shared, "/v1/chat/completions", headers, &body) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let model = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["model"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "gpt-fake".into());
    let first = now_piece(o_chunk(
        &model,
        json!({"role": "assistant", "content": ""}),
        None,
    ));
    match script {
        Script::Text { chunks, delay } => {
            let mut pieces = vec![first];
            for c in &chunks {
                pieces.push((
                    delay,
                    Ok(Bytes::from(o_chunk(&model, json!({"content": c}), None))),
                ));
            }
            pieces.push(now_piece(o_chunk(&model, json!({}), Some("stop"))));
            pieces.push(now_piece(o_usage(&model, chunks.len().max(1))));
            pieces.push(now_piece("data: [DONE]\n\n".into()));
            sse_response(pieces)
        }
        Script::ToolCall {
            text,
            name,
            arguments,
        } => {
            let mut pieces = vec![first];
            if let Some(t) = text {
                pieces.push(now_piece(o_chunk(&model, json!({"content": t}), None)));
            }
            pieces.push(now_piece(o_chunk(
                &model,
                json!({"tool_calls": [{"index": 0, "id": "call_fake01", "type": "function", "function": {"name": name, "arguments": ""}}]}),
                None,
            )));
            let args = arguments.to_string();
            let (a, b) = args.split_at(args.len() / 2);
            for part in [a, b] {
                pieces.push(now_piece(o_chunk(
                    &model,
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}),
                    None,
                )));
            }
            pieces.push(now_piece(o_chunk(&model, json!({}), Some("tool_calls"))));
            pieces.push(now_piece(o_usage(&model, 12)));
            pieces.push(now_piece("data: [DONE]\n\n".into()));
            sse_response(pieces)
        }
        Script::Error {
            status,
            error_type,
            message,
            retry_after,
        } => {
            let mut resp = (
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                [(header::CONTENT_TYPE, "application/json")],
                o_error_body(status, &error_type, &message).to_string(),
            )
                .into_response();
            if let Some(r) = retry_after.and_then(|r| r.parse().ok()) {
                resp.headers_mut().insert(header::RETRY_AFTER, r);
            }
            resp
        }
        Script::Disconnect { chunks } => {
            let mut pieces = vec![first];
            for c in &chunks {
                pieces.push(now_piece(o_chunk(&model, json!({"content": c}), None)));
            }
            pieces.push(dropped());
            sse_response(pieces)
        }
        Script::Malformed => sse_response(vec![
            first,
            now_piece(
                "data: {\"id\":\"chatcmpl-fake01\",\"choices\":[{\"delta\":{\"content\":\"x\n\n"
                    .into(),
            ),
        ]),
        Script::StreamError { message, .. } => sse_response(vec![
            first,
            now_piece(format!(
                "data: {}\n\n",
                o_error_body(500, "server_error", &message)
            )),
        ]),
        Script::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}

// ---------- release feed (GitHub releases API) ----------

/// A loopback GitHub releases API: `GET /repos/{owner}/{repo}/releases/latest` answers with
/// whatever was last set (a release in GitHub's format by default).
#[derive(Clone)]
pub struct ReleaseFeed {
    addr: SocketAddr,
    reply: Arc<Mutex<(u16, String)>>,
    _runtime: Arc<RuntimeThread>,
}

impl std::fmt::Debug for ReleaseFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReleaseFeed")
            .field("addr", &self.addr)
            .finish()
    }
}

impl ReleaseFeed {
    /// A release as GitHub's API returns it.
    pub fn github_release(tag: &str) -> String {
        json!({
            "url": format!("https://api.github.com/repos/openclaw-rs/openclaw-rs/releases/1"),
            "html_url": format!("https://github.com/openclaw-rs/openclaw-rs/releases/tag/{tag}"),
            "id": 1,
            "tag_name": tag,
            "target_commitish": "main",
            "name": format!("OpenClaw {tag}"),
            "draft": false,
            "prerelease": false,
            "created_at": "2026-11-01T10:00:00Z",
            "published_at": "2026-11-01T12:00:00Z",
            "assets": [],
            "body": "Release notes"
        })
        .to_string()
    }

    pub fn start_in_thread(tag: &str) -> Self {
        let reply = Arc::new(Mutex::new((200u16, Self::github_release(tag))));
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let shared = reply.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("release feed runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind release feed");
                let _ = tx.send(listener.local_addr().expect("address"));
                let app = Router::new()
                    .route(
                        "/repos/{owner}/{repo}/releases/latest",
                        axum::routing::get(
                            |State(reply): State<Arc<Mutex<(u16, String)>>>| async move {
                                let (status, body) =
                                    reply.lock().unwrap_or_else(|p| p.into_inner()).clone();
                                (
                                    StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                                    [(header::CONTENT_TYPE, "application/json")],
                                    body,
                                )
                            },
                        ),
                    )
                    .with_state(shared);
                tokio::select! {
                    _ = axum::serve(listener, app) => {}
                    _ = stop_rx => {}
                }
            });
        });
        let addr = rx.recv().expect("release feed started");
        Self {
            addr,
            reply,
            _runtime: Arc::new(RuntimeThread {
                stop: Some(stop_tx),
                thread: Some(thread),
            }),
        }
    }

    /// `update.feed_url` for this feed.
    pub fn url(&self) -> String {
        format!(
            "http://{}/repos/openclaw-rs/openclaw-rs/releases/latest",
            self.addr
        )
    }

    pub fn set(&self, status: u16, body: impl Into<String>) {
        *self.reply.lock().unwrap_or_else(|p| p.into_inner()) = (status, body.into());
    }
}
