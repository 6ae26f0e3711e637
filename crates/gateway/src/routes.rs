//! HTTP routes. `/health`, `/ready`, `/metrics` and the WebChat files are open (health checks
//! and Prometheus scrape without credentials); `/api/*`, `/v1/*` and the WebSocket need the
//! gateway token. Every request first passes the `Host` and `Origin` rules of [`crate::access`].

use crate::access::OriginCheck;
use crate::http::{Refusal, bearer, error, read_json_body};
use crate::status::status_report;
use crate::{GatewayState, health, ws};
use axum::Json;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use openclaw_protocol::{CheckStatus, ErrorCode, ErrorShape, WS_PATH};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;

/// Largest `/api/nodes/invoke` body: a command and its parameters.
pub const MAX_INVOKE_BODY: usize = 64 * 1024;
/// Largest `/api/messages` body: a channel, a peer, a message.
pub const MAX_MESSAGE_BODY: usize = 64 * 1024;
/// Largest `/api/nodes/pair` body: an address, a code, a name.
pub const MAX_PAIR_BODY: usize = 4 * 1024;
/// Largest `/api/pause` body: `{"paused": true}`.
const MAX_PAUSE_BODY: usize = 1024;
/// Largest `/api/approvals/*` body: a channel and a code or a sender id.
const MAX_APPROVAL_BODY: usize = 4 * 1024;

pub fn router(state: Arc<GatewayState>, extra: Option<axum::Router>) -> axum::Router {
    let api = axum::Router::new()
        .route("/api/status", get(status))
        .route(
            "/api/nodes/invoke",
            axum::routing::post(invoke_node).layer(DefaultBodyLimit::max(MAX_INVOKE_BODY)),
        )
        .route("/api/nodes", get(list_nodes))
        .route(
            "/api/nodes/pair",
            axum::routing::post(pair_node).layer(DefaultBodyLimit::max(MAX_PAIR_BODY)),
        )
        .route("/api/nodes/{name}", axum::routing::delete(remove_node))
        .route(
            "/api/nodes/pairing-code",
            axum::routing::post(show_pairing_code).layer(DefaultBodyLimit::max(MAX_PAIR_BODY)),
        )
        .route(
            "/api/messages",
            axum::routing::post(send_message).layer(DefaultBodyLimit::max(MAX_MESSAGE_BODY)),
        )
        .route(
            "/api/settings",
            get(crate::settings::settings)
                .patch(crate::settings_edit::edit_settings)
                .layer(DefaultBodyLimit::max(
                    crate::settings_edit::MAX_SETTINGS_BODY,
                )),
        )
        .route(
            "/api/models/fetch",
            get(crate::model_fetch::status).post(crate::model_fetch::start),
        )
        .route(
            "/api/setup",
            get(crate::setup::status)
                .post(crate::setup::choose)
                .layer(DefaultBodyLimit::max(crate::setup::MAX_SETUP_BODY)),
        )
        .route(
            "/api/secrets/{name}",
            axum::routing::put(crate::settings::put_secret)
                .delete(crate::settings::delete_secret)
                .layer(DefaultBodyLimit::max(crate::settings::MAX_SECRET_BODY)),
        )
        .route(
            "/api/pause",
            get(pause_state)
                .post(set_pause)
                .layer(DefaultBodyLimit::max(MAX_PAUSE_BODY)),
        )
        .route("/api/approvals", get(list_approvals))
        .route(
            "/api/approvals/approve",
            axum::routing::post(approve_code).layer(DefaultBodyLimit::max(MAX_APPROVAL_BODY)),
        )
        .route(
            "/api/approvals/reject",
            axum::routing::post(reject_code).layer(DefaultBodyLimit::max(MAX_APPROVAL_BODY)),
        )
        .route(
            "/api/approvals/revoke",
            axum::routing::post(revoke_sender).layer(DefaultBodyLimit::max(MAX_APPROVAL_BODY)),
        )
        .route("/v1/models", get(crate::openai_api::models))
        .route(
            "/v1/chat/completions",
            axum::routing::post(crate::openai_api::chat_completions).layer(DefaultBodyLimit::max(
                crate::openai_api::MAX_COMPLETION_BODY,
            )),
        );
    let app = axum::Router::new()
        .route("/", get(crate::webchat::index))
        .route("/ui/{name}", get(crate::webchat::asset))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route(WS_PATH, get(ws::upgrade))
        .route(
            crate::node_route::NODE_PATH,
            get(crate::node_route::upgrade),
        )
        .route(
            crate::node_route::PAIR_PATH,
            get(crate::node_route::pair_upgrade),
        )
        .merge(api);
    // The embedder's routes under their own prefix: they cannot shadow ours.
    let app = match extra {
        Some(extra) => app.nest_service(crate::HOOKS_PATH, extra),
        None => app,
    };
    app.fallback(not_found)
        // One middleware for both jobs: each from_fn layer costs a boxed future per request.
        .layer(middleware::from_fn_with_state(state.clone(), front))
        .with_state(state)
}

/// Routes anyone may read without a token: probes, scrapes and the WebChat files.
fn is_open(path: &str) -> bool {
    matches!(path, "/" | "/health" | "/ready" | "/metrics") || path.starts_with("/ui/")
}

/// The first gate of every request: its `Host` must be ours (or a valid token vouches for
/// it: a client that knows the token is not a rebinding page), a browser request from a page
/// of another origin is refused (except plain reads of the open routes: a cross-origin page
/// cannot read those answers anyway), and `/api` and `/v1` need the token. `Some` is the
/// refusal.
fn guard(state: &GatewayState, remote: SocketAddr, req: &Request) -> Option<Response> {
    let headers = req.headers();
    let path = req.uri().path();
    // A node dials by whatever name reaches the gateway (a tailnet name, an address) and has
    // no token: its route refuses any page (`Origin`) itself, so rebinding cannot use it.
    let node_route = path == crate::node_route::NODE_PATH || path == crate::node_route::PAIR_PATH;
    if !node_route && !state.access.host_ok(headers) && !state.access.token_ok(bearer(headers)) {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("?");
        state.refused(remote, path, Refusal::WrongHost);
        return Some(error(
            StatusCode::MISDIRECTED_REQUEST,
            ErrorCode::MisdirectedRequest,
            format!(
                "this gateway does not answer to the host `{}`: use 127.0.0.1 or localhost, or add the name to gateway.allowed_hosts",
                crate::access::audit_path(host)
            ),
        ));
    }
    let read_only = matches!(*req.method(), Method::GET | Method::HEAD);
    if let OriginCheck::Refused(origin) = state.access.origin(headers)
        && !(read_only && is_open(path))
    {
        state.refused(remote, path, Refusal::Origin(origin.clone()));
        return Some(error(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            format!(
                "requests from pages of {origin} are refused: only this gateway's own pages (and gateway.allowed_origins) may use it from a browser"
            ),
        ));
    }
    // The control and OpenAI APIs, known routes or not, need the token. The WebSocket takes
    // it in its `connect` request (browsers cannot set headers on one).
    if (path.starts_with("/api/") || path.starts_with("/v1/"))
        && !state.access.token_ok(bearer(headers))
    {
        return Some(unauthorized(state, remote, req));
    }
    None
}

/// Every request: the access rules of [`guard`], then one debug line (method, path, status,
/// time taken) when debug logging is on.
async fn front(
    State(state): State<Arc<GatewayState>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return match guard(&state, remote, &req) {
            Some(refused) => refused,
            None => next.run(req).await,
        };
    }
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = std::time::Instant::now();
    let resp = match guard(&state, remote, &req) {
        Some(refused) => refused,
        None => next.run(req).await,
    };
    tracing::debug!(
        %method,
        path,
        status = resp.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    resp
}

async fn health(State(state): State<Arc<GatewayState>>, req: Request) -> Response {
    // Paths and addresses only for a client that has the token.
    let detail = if state.access.token_ok(bearer(req.headers())) {
        health::Detail::Full
    } else {
        health::Detail::Public
    };
    let report = health::build_report(&state, detail).await;
    let code = if report.status == CheckStatus::Unhealthy {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(report)).into_response()
}

async fn ready(State(state): State<Arc<GatewayState>>) -> Response {
    if state.is_draining() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ready": false, "reason": "shutting down"})),
        )
            .into_response()
    } else {
        Json(json!({"ready": true})).into_response()
    }
}

/// Prometheus text format 0.0.4 for a plain scrape (what `promtool check metrics` reads),
/// OpenMetrics when the scraper asks for it in `Accept`.
async fn metrics(State(state): State<Arc<GatewayState>>, headers: HeaderMap) -> Response {
    let wants_openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let (content_type, body) = if wants_openmetrics {
        (
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            state.metrics.encode(),
        )
    } else {
        (
            "text/plain; version=0.0.4; charset=utf-8",
            state.metrics.encode_text(),
        )
    };
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn status(State(state): State<Arc<GatewayState>>) -> Response {
    match status_report(&state).await {
        Ok(report) => Json(report).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable, e),
    }
}

#[derive(serde::Deserialize)]
struct InvokeBody {
    command: String,
    #[serde(default)]
    params: serde_json::Value,
    /// How long the call may wait for a sleeping (wakeable) node that is away; the router's
    /// default when absent.
    #[serde(default, rename = "timeoutMs", alias = "timeout_ms")]
    timeout_ms: Option<u64>,
    /// Only this node (by name); the preferred one that offers `command` when absent.
    #[serde(default)]
    node: Option<String>,
}

/// `POST /api/nodes/invoke {command, params, node?, timeoutMs?}`: runs a node capability the way
/// the agent's tools do (the connected node with the lowest priority number, falling back on
/// timeout or disconnect; only `node` when named) and answers `{node, payload}`.
async fn invoke_node(State(state): State<Arc<GatewayState>>, req: Request) -> Response {
    let body: InvokeBody = match read_json(
        req,
        MAX_INVOKE_BODY,
        "the body must be {\"command\": \"…\", \"params\": {…}}",
    )
    .await
    {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    use crate::node_router::RouteError;
    let wait = body.timeout_ms.map_or(
        crate::node_router::SLEEPING_WAIT,
        std::time::Duration::from_millis,
    );
    match state
        .nodes
        .invoke_on(body.node.as_deref(), &body.command, body.params, wait)
        .await
    {
        Ok((node, payload)) => Json(json!({"node": node, "payload": payload})).into_response(),
        Err(e @ RouteError::NoNode(_)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            e.to_string(),
        ),
        Err(RouteError::Node {
            node,
            code,
            message,
        }) => (
            // A sleeping node that did not come back by the deadline: a time-out, not a fault.
            if code == ErrorCode::NodeAsleep {
                StatusCode::GATEWAY_TIMEOUT
            } else {
                StatusCode::BAD_GATEWAY
            },
            Json(json!({"error": ErrorShape::new(code, message), "node": node})),
        )
            .into_response(),
        Err(e @ RouteError::Failed(_)) => error(
            StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::Unavailable,
            e.to_string(),
        ),
        Err(e @ RouteError::Paused) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Paused,
            e.to_string(),
        ),
    }
}

/// `GET /api/nodes`: paired nodes (and `device_nodes` never paired), preferred first.
async fn list_nodes(State(state): State<Arc<GatewayState>>) -> Response {
    let nodes: Vec<serde_json::Value> = state
        .nodes
        .statuses()
        .into_iter()
        .map(|n| {
            json!({
                "name": n.name, "address": n.address, "priority": n.priority,
                "connected": n.connected, "capabilities": n.capabilities, "detail": n.detail,
            })
        })
        .collect();
    Json(json!({ "nodes": nodes })).into_response()
}

/// `POST /api/nodes/pair {address, code, name?, priority?}`: pairs with the node showing the
/// code; it is connected, and its capabilities are tools, before the answer.
async fn pair_node(State(state): State<Arc<GatewayState>>, req: Request) -> Response {
    let body: crate::PairRequest = match read_json(req, MAX_PAIR_BODY, "the body must be {\"address\": \"HOST:PORT\", \"code\": \"NNNNNN\", \"name\": …, \"priority\": …}").await {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    use crate::HandleError;
    match state.pair_node(&body).await {
        Ok(n) => Json(json!({
            "ok": true, "name": n.name, "id": n.id, "address": n.address,
            "capabilities": n.capabilities,
        }))
        .into_response(),
        Err(HandleError::ShuttingDown) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "the gateway is shutting down",
        ),
        Err(HandleError::Pair(e)) if e.is_refusal() => {
            error(StatusCode::FORBIDDEN, ErrorCode::Forbidden, e.to_string())
        }
        Err(HandleError::Pair(e @ crate::PairError::Link(_))) => error(
            StatusCode::BAD_GATEWAY,
            ErrorCode::Unavailable,
            e.to_string(),
        ),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            e.to_string(),
        ),
    }
}

#[derive(serde::Deserialize)]
struct CodeBody {
    #[serde(default = "default_code_seconds")]
    valid_seconds: u64,
    #[serde(default)]
    name: Option<String>,
    #[serde(default = "default_node_priority")]
    priority: i64,
}

fn default_code_seconds() -> u64 {
    300
}

fn default_node_priority() -> i64 {
    1
}

/// `POST /api/nodes/pairing-code {valid_seconds?, name?, priority?}`: shows a 6-digit code a
/// node pairs by from its side (`openclaw-node pair --gateway HOST:PORT --code NNNNNN`); it
/// replaces a code shown before.
async fn show_pairing_code(State(state): State<Arc<GatewayState>>, req: Request) -> Response {
    let body: CodeBody = match read_json(
        req,
        MAX_PAIR_BODY,
        "the body must be {\"valid_seconds\": 300, \"name\": …, \"priority\": …}",
    )
    .await
    {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    if !(10..=3600).contains(&body.valid_seconds) {
        return error(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            "valid_seconds must be between 10 and 3600",
        );
    }
    let valid_for = std::time::Duration::from_secs(body.valid_seconds);
    let code = state.show_pairing_code(valid_for, body.name, body.priority);
    Json(json!({
        "code": code,
        "valid_seconds": body.valid_seconds,
        "tries": openclaw_pairing::MAX_TRIES,
    }))
    .into_response()
}

/// `DELETE /api/nodes/{name}`: forgets the node and closes its connection.
async fn remove_node(
    State(state): State<Arc<GatewayState>>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    match state.remove_node(&name).await {
        Ok(true) => Json(json!({"ok": true, "removed": name})).into_response(),
        Ok(false) => error(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("no paired node named `{name}`"),
        ),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            e.to_string(),
        ),
    }
}

#[derive(serde::Deserialize)]
struct SendBody {
    channel: String,
    peer: String,
    text: String,
}

/// `POST /api/messages {channel, peer, text}`: a message the owner starts, delivered to the
/// peer now if connected, and kept in the conversation either way.
async fn send_message(State(state): State<Arc<GatewayState>>, req: Request) -> Response {
    let body: SendBody = match read_json(
        req,
        MAX_MESSAGE_BODY,
        "the body must be {\"channel\": \"webchat\", \"peer\": \"…\", \"text\": \"…\"}",
    )
    .await
    {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    use crate::conversation::{Delivered, OutboundError, OutboundMessage};
    let msg = OutboundMessage {
        channel: body.channel,
        peer: body.peer,
        text: body.text,
    };
    match state.send(msg).await {
        Ok(Delivered::Live(n)) => {
            Json(json!({"ok": true, "delivered": "live", "connections": n})).into_response()
        }
        Ok(Delivered::Kept) => {
            Json(json!({"ok": true, "delivered": "kept", "connections": 0})).into_response()
        }
        Err(e @ OutboundError::NoChannel(_)) => {
            error(StatusCode::NOT_FOUND, ErrorCode::NotFound, e.to_string())
        }
        Err(e @ OutboundError::BadText) => error(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            e.to_string(),
        ),
        Err(e) => error(
            StatusCode::BAD_GATEWAY,
            ErrorCode::Unavailable,
            e.to_string(),
        ),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PauseBody {
    paused: bool,
}

/// `GET /api/pause`: `{paused}`.
async fn pause_state(State(state): State<Arc<GatewayState>>) -> Response {
    Json(json!({"paused": state.pause.is_paused()})).into_response()
}

/// `POST /api/pause {paused}`: pauses the assistant (no message answered, no node called,
/// health says `paused`) or resumes it; answers `{paused, changed}`.
async fn set_pause(State(state): State<Arc<GatewayState>>, req: Request) -> Response {
    let body: PauseBody = match read_json(
        req,
        MAX_PAUSE_BODY,
        "the body must be {\"paused\": true} or {\"paused\": false}",
    )
    .await
    {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    let changed = state.set_paused(body.paused);
    Json(json!({"paused": body.paused, "changed": changed})).into_response()
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeDecision {
    channel: String,
    code: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SenderRef {
    channel: String,
    sender: String,
}

fn sender_json(s: &openclaw_store::PairedSender) -> serde_json::Value {
    json!({"channel": s.channel, "sender": s.sender, "name": s.name, "approved_at": s.approved_at})
}

/// An approvals call that failed: 404 for a code or sender that is not there (with `reason`
/// saying which: `unknown_code`, `expired_code`, `unknown_sender`), 400 for bad input, 503
/// when the store cannot answer.
fn approval_error(e: crate::ApprovalError) -> Response {
    use crate::ApprovalError as E;
    let (status, code, reason) = match &e {
        E::UnknownCode { .. } => (StatusCode::NOT_FOUND, ErrorCode::NotFound, "unknown_code"),
        E::ExpiredCode { .. } => (StatusCode::NOT_FOUND, ErrorCode::NotFound, "expired_code"),
        E::UnknownSender { .. } => (StatusCode::NOT_FOUND, ErrorCode::NotFound, "unknown_sender"),
        E::BadInput { .. } => (
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            "bad_input",
        ),
        E::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "unavailable",
        ),
    };
    (
        status,
        Json(json!({"error": ErrorShape::new(code, e.to_string()), "reason": reason})),
    )
        .into_response()
}

/// `GET /api/approvals`: `{pending: [{channel, sender, name, code, created_at, expires_at,
/// expires_in_seconds}], approved: [{channel, sender, name, approved_at}]}`.
async fn list_approvals(State(state): State<Arc<GatewayState>>) -> Response {
    match state.approvals().await {
        Ok(a) => {
            let pending: Vec<serde_json::Value> = a
                .pending
                .iter()
                .map(|p| {
                    json!({
                        "channel": p.code.channel, "sender": p.code.sender, "name": p.code.name,
                        "code": p.code.code, "created_at": p.code.created_at,
                        "expires_at": p.code.expires_at, "expires_in_seconds": p.expires_in_seconds,
                    })
                })
                .collect();
            let approved: Vec<serde_json::Value> = a.approved.iter().map(sender_json).collect();
            Json(json!({"pending": pending, "approved": approved})).into_response()
        }
        Err(e) => approval_error(e),
    }
}

const CODE_SHAPE: &str = "the body must be {\"channel\": \"telegram\", \"code\": \"123456\"}";

/// `POST /api/approvals/approve {channel, code}`: the sender holding the code may talk from
/// now on; answers `{ok, channel, sender, name, approved_at}`.
async fn approve_code(State(state): State<Arc<GatewayState>>, req: Request) -> Response {
    let body: CodeDecision = match read_json(req, MAX_APPROVAL_BODY, CODE_SHAPE).await {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    match state.approve_code(&body.channel, &body.code).await {
        Ok(sender) => {
            let mut v = sender_json(&sender);
            v["ok"] = json!(true);
            Json(v).into_response()
        }
        Err(e) => approval_error(e),
    }
}

/// `POST /api/approvals/reject {channel, code}`: the code goes, its sender stays unknown;
/// answers `{ok, channel, sender, name}`.
async fn reject_code(State(state): State<Arc<GatewayState>>, req: Request) -> Response {
    let body: CodeDecision = match read_json(req, MAX_APPROVAL_BODY, CODE_SHAPE).await {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    match state.reject_code(&body.channel, &body.code).await {
        Ok(p) => {
            Json(json!({"ok": true, "channel": p.channel, "sender": p.sender, "name": p.name}))
                .into_response()
        }
        Err(e) => approval_error(e),
    }
}

/// `POST /api/approvals/revoke {channel, sender}`: forgets an approved sender; answers
/// `{ok, channel, sender, name, approved_at}`.
async fn revoke_sender(State(state): State<Arc<GatewayState>>, req: Request) -> Response {
    let body: SenderRef = match read_json(
        req,
        MAX_APPROVAL_BODY,
        "the body must be {\"channel\": \"telegram\", \"sender\": \"…\"}",
    )
    .await
    {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    match state.revoke_sender(&body.channel, &body.sender).await {
        Ok(sender) => {
            let mut v = sender_json(&sender);
            v["ok"] = json!(true);
            Json(v).into_response()
        }
        Err(e) => approval_error(e),
    }
}

/// A route's JSON body as `T`, or the answer saying why not: the body errors of
/// [`read_json_body`], or 400 naming the shape the route takes (`shape`, with the parser's
/// reason).
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
    req: Request,
    limit: usize,
    shape: &str,
) -> Result<T, Response> {
    let bytes = read_json_body(req, limit)
        .await
        .map_err(IntoResponse::into_response)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            format!("{shape}: {e}"),
        )
    })
}

async fn not_found(req: Request) -> Response {
    error(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        format!("no route for {} {}", req.method(), req.uri().path()),
    )
}

fn unauthorized(state: &GatewayState, remote: SocketAddr, req: &Request) -> Response {
    let why = if bearer(req.headers()).is_some() {
        Refusal::WrongToken
    } else {
        Refusal::NoToken
    };
    state.refused(remote, req.uri().path(), why);
    let mut resp = error(
        StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthorized,
        "this gateway needs its token: send `Authorization: Bearer <token>` (gateway.auth.token, or the generated one in <data dir>/gateway.token)",
    );
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    resp
}
