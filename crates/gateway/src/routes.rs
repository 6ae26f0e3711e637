//! HTTP routes. `/health`, `/ready`, `/metrics` and the WebChat files are open (health checks
//! and Prometheus scrape without credentials); `/api/*`, `/v1/*` and the WebSocket need the
//! gateway token. Every request first passes the `Host` and `Origin` rules of [`crate::access`].

use crate::access::OriginCheck;
use crate::{GatewayState, health, ws};
use axum::Json;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use openclaw_protocol::status::{ChannelStatus, RateLimits, SecurityStatus, TokenOrigin};
use openclaw_protocol::{CheckStatus, ErrorCode, ErrorShape, StatusReport, WS_PATH};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Largest `/v1/chat/completions` body: the whole conversation an OpenAI client keeps.
pub const MAX_COMPLETION_BODY: usize = 2 * 1024 * 1024;
/// Largest `/api/nodes/invoke` body: a command and its parameters.
pub const MAX_INVOKE_BODY: usize = 64 * 1024;
/// A request body must arrive within this time once its head has.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

pub fn router(state: Arc<GatewayState>) -> axum::Router {
    let api = axum::Router::new()
        .route("/api/status", get(status))
        .route(
            "/api/nodes/invoke",
            axum::routing::post(invoke_node).layer(DefaultBodyLimit::max(MAX_INVOKE_BODY)),
        )
        .route("/v1/models", get(crate::openai_api::models))
        .route(
            "/v1/chat/completions",
            axum::routing::post(crate::openai_api::chat_completions)
                .layer(DefaultBodyLimit::max(MAX_COMPLETION_BODY)),
        );
    axum::Router::new()
        .route("/", get(crate::webchat::index))
        .route("/ui/{name}", get(crate::webchat::asset))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route(WS_PATH, get(ws::upgrade))
        .merge(api)
        .fallback(not_found)
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
    if !state.access.host_ok(headers) && !state.access.token_ok(bearer(headers)) {
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

/// The `openclaw status` document, shared by HTTP and the WebSocket `status` method.
pub async fn status_report(state: &GatewayState) -> Result<StatusReport, String> {
    let store = state.store.clone();
    let totals = tokio::task::spawn_blocking(move || store.totals())
        .await
        .map_err(|e| format!("store task failed: {e}"))?
        .map_err(|e| e.to_string())?;
    let channels = state
        .channels
        .read()
        .map(|c| {
            c.iter()
                .map(|c| ChannelStatus {
                    name: c.name.clone(),
                    connected: c.connected,
                    detail: c.detail.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(StatusReport {
        version: env!("CARGO_PKG_VERSION").into(),
        pid: std::process::id(),
        uptime_seconds: state.uptime().as_secs_f64(),
        bind: state.local_addr.to_string(),
        data_dir: state.data_dir.display().to_string(),
        database: state
            .store
            .path()
            .map_or(":memory:".into(), |p| p.display().to_string()),
        database_size_bytes: totals.size_bytes,
        sessions: totals.sessions,
        memories: totals.memories,
        nodes: totals.nodes,
        connections: state.connections.load(Ordering::Relaxed),
        max_connections: u64::from(state.config.gateway.max_connections),
        channels,
        security: Some(security_status(state)),
    })
}

/// The protections this process enforces (not what a config file on disk says).
fn security_status(state: &GatewayState) -> SecurityStatus {
    let rl = &state.config.security.rate_limiting;
    SecurityStatus {
        token: match state.access.source() {
            crate::access::TokenSource::Configured => TokenOrigin::Configured,
            crate::access::TokenSource::Generated(_) => TokenOrigin::Generated,
        },
        rate_limits: (rl.enabled
            && (rl.default_messages_per_minute > 0 || rl.default_tool_calls_per_minute > 0))
            .then_some(RateLimits {
                messages_per_minute: rl.default_messages_per_minute,
                tool_calls_per_minute: rl.default_tool_calls_per_minute,
            }),
        audit_log: state.audit.path().is_some(),
        // No tool of this build runs code (the sandbox and its tools come in a later issue):
        // this is a fact of the build, not of the config.
        code_execution_tools: Vec::new(),
        // No chat-platform driver is built in yet (WebChat is served, not paired).
        channel_drivers: Vec::new(),
    }
}

#[derive(serde::Deserialize)]
struct InvokeBody {
    command: String,
    #[serde(default)]
    params: serde_json::Value,
}

/// `POST /api/nodes/invoke {command, params}`: runs a node capability the way the agent's tools
/// do (the connected node with the lowest priority number, falling back on timeout or
/// disconnect) and answers `{node, payload}`.
async fn invoke_node(State(state): State<Arc<GatewayState>>, req: Request) -> Response {
    let bytes = match read_json_body(req, MAX_INVOKE_BODY).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let body: InvokeBody = match serde_json::from_slice(&bytes) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidRequest,
                format!("the body must be {{\"command\": \"…\", \"params\": {{…}}}}: {e}"),
            );
        }
    };
    use crate::node_router::RouteError;
    match state.nodes.invoke(&body.command, body.params).await {
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
            StatusCode::BAD_GATEWAY,
            Json(json!({"error": ErrorShape::new(code, message), "node": node})),
        )
            .into_response(),
        Err(e @ RouteError::Failed(_)) => error(
            StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::Unavailable,
            e.to_string(),
        ),
    }
}

async fn not_found(req: Request) -> Response {
    error(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        format!("no route for {} {}", req.method(), req.uri().path()),
    )
}

pub fn error(status: StatusCode, code: ErrorCode, message: impl ToString) -> Response {
    (
        status,
        Json(json!({ "error": ErrorShape::new(code, message.to_string()) })),
    )
        .into_response()
}

/// Why a JSON body was not read.
#[derive(Debug)]
pub enum BodyError {
    /// Not `application/json` (or `…+json`).
    NotJson,
    TooLarge(usize),
    TimedOut,
    /// The client broke off, or sent a malformed body encoding.
    Unreadable(String),
}

impl BodyError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotJson => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TimedOut => StatusCode::REQUEST_TIMEOUT,
            Self::Unreadable(_) => StatusCode::BAD_REQUEST,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::NotJson => "this route takes JSON: send `Content-Type: application/json`".into(),
            Self::TooLarge(max) => {
                format!("the body is larger than this route takes ({max} bytes)")
            }
            Self::TimedOut => format!(
                "the body did not arrive within {} s",
                BODY_READ_TIMEOUT.as_secs()
            ),
            Self::Unreadable(e) => format!("the body could not be read: {e}"),
        }
    }

    fn code(&self) -> ErrorCode {
        match self {
            Self::NotJson => ErrorCode::UnsupportedMediaType,
            Self::TooLarge(_) => ErrorCode::PayloadTooLarge,
            Self::TimedOut | Self::Unreadable(_) => ErrorCode::InvalidRequest,
        }
    }
}

impl IntoResponse for BodyError {
    fn into_response(self) -> Response {
        error(self.status(), self.code(), self.message())
    }
}

/// True for `application/json` and `application/<anything>+json`, with any parameters.
pub fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

/// Reads a JSON route's body: JSON content type only (a browser's no-preflight `text/plain`
/// POST is not one), at most `limit` bytes, within [`BODY_READ_TIMEOUT`].
pub async fn read_json_body(req: Request, limit: usize) -> Result<axum::body::Bytes, BodyError> {
    if !is_json(req.headers()) {
        return Err(BodyError::NotJson);
    }
    let read = axum::body::to_bytes(req.into_body(), limit);
    match tokio::time::timeout(BODY_READ_TIMEOUT, read).await {
        Err(_) => Err(BodyError::TimedOut),
        Ok(Ok(bytes)) => Ok(bytes),
        // axum reports the limit as a length-limit error inside its own error type.
        Ok(Err(e))
            if std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>()) =>
        {
            Err(BodyError::TooLarge(limit))
        }
        Ok(Err(e)) => Err(BodyError::Unreadable(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(content_type: &str, body: Vec<u8>) -> Request {
        axum::http::Request::builder()
            .method(Method::POST)
            .header(header::CONTENT_TYPE, content_type)
            .body(axum::body::Body::from(body))
            .unwrap()
    }

    #[tokio::test]
    async fn json_bodies_are_read_within_their_limit_and_type() {
        let ok = read_json_body(request("application/json", b"{}".to_vec()), 16).await;
        assert_eq!(ok.unwrap().as_ref(), b"{}");
        let big = read_json_body(request("application/json", vec![b' '; 17]), 16).await;
        assert!(matches!(big, Err(BodyError::TooLarge(16))), "{big:?}");
        let plain = read_json_body(request("text/plain", b"{}".to_vec()), 16).await;
        assert!(matches!(plain, Err(BodyError::NotJson)), "{plain:?}");
        let vendor = read_json_body(
            request("application/vnd.x+json; charset=utf-8", b"{}".to_vec()),
            16,
        )
        .await;
        assert!(vendor.is_ok());
    }
}

pub use crate::access::bearer;

/// Why a request was refused, for the log, the metric and the audit line.
#[derive(Debug, Clone)]
pub enum Refusal {
    NoToken,
    WrongToken,
    WrongHost,
    Origin(String),
}

impl Refusal {
    pub fn reason(&self) -> String {
        match self {
            Self::NoToken => "no token".into(),
            Self::WrongToken => "wrong token".into(),
            Self::WrongHost => "host not ours".into(),
            Self::Origin(o) => format!("origin {o} refused"),
        }
    }
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
