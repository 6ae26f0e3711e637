//! HTTP routes. `/health`, `/ready` and `/metrics` are open (health checks and Prometheus
//! scrape without credentials); `/api/*` and the WebSocket need the gateway token when one is set.

use crate::{GatewayState, health, ws};
use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use openclaw_protocol::status::ChannelStatus;
use openclaw_protocol::{CheckStatus, ErrorCode, ErrorShape, StatusReport, WS_PATH};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use subtle::ConstantTimeEq;

pub fn router(state: Arc<GatewayState>) -> axum::Router {
    let api = axum::Router::new()
        .route("/api/status", get(status))
        .route("/api/nodes/invoke", axum::routing::post(invoke_node))
        .route("/v1/models", get(crate::openai_api::models))
        .route(
            "/v1/chat/completions",
            axum::routing::post(crate::openai_api::chat_completions),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    axum::Router::new()
        .route("/", get(crate::webchat::index))
        .route("/ui/{name}", get(crate::webchat::asset))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route(WS_PATH, get(ws::upgrade))
        .merge(api)
        .fallback(not_found)
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// One debug line per request: method, path, status, time taken.
async fn log_request(req: Request, next: Next) -> Response {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return next.run(req).await;
    }
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    tracing::debug!(
        %method,
        path,
        status = resp.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    resp
}

async fn health(State(state): State<Arc<GatewayState>>) -> Response {
    let report = health::build_report(&state).await;
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

async fn metrics(State(state): State<Arc<GatewayState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
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
    })
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
async fn invoke_node(
    State(state): State<Arc<GatewayState>>,
    body: Result<Json<InvokeBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(body) = match body {
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

/// True when `presented` matches the configured token, or no token is configured.
pub fn token_ok(state: &GatewayState, presented: Option<&str>) -> bool {
    match state.config.gateway.auth.token() {
        None => true,
        Some(expected) => {
            presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(expected.as_bytes())))
        }
    }
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

pub fn audit_auth_failure(state: &GatewayState, remote: SocketAddr, surface: &str, why: &str) {
    state.metrics.auth_failures.inc();
    tracing::warn!(%remote, surface, why, "authentication failed");
    state.audit.record(
        "auth.failure",
        json!({ "remote": remote.to_string(), "surface": surface, "reason": why }),
    );
}

async fn require_token(
    State(state): State<Arc<GatewayState>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let presented = bearer(req.headers());
    if token_ok(&state, presented) {
        return next.run(req).await;
    }
    let why = if presented.is_some() {
        "wrong token"
    } else {
        "no token"
    };
    audit_auth_failure(&state, remote, req.uri().path(), why);
    let mut resp = error(
        StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthorized,
        "this gateway needs its token: send `Authorization: Bearer <gateway.auth.token>`",
    );
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    resp
}
