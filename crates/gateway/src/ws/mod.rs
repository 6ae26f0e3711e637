//! The gateway WebSocket: `connect.challenge` event, `connect` handshake with the gateway
//! token, then request/response frames.
//!
//! Budgets: a socket that is upgraded but not yet past `connect` holds one of
//! [`PRE_AUTH_BUDGET`] pre-auth places (a newcomer past it closes the oldest, so idle
//! strangers cannot hold them), and `gateway.max_connections` counts only authenticated
//! clients. A wrong token or a foreign origin is refused before any upgrade. Frames are small
//! by design (a chat message is 32 KiB at most), and so are the limits.

mod chat;
mod conn;
pub(crate) mod outlet;

use crate::http::{Refusal, bearer, error};
use crate::status::status_report;
use crate::{GatewayState, health};
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use conn::{Conn, close_with, next_request};
use openclaw_protocol::{
    ConnectChallenge, ConnectParams, ErrorCode, ErrorShape, HelloOk, PROTOCOL_VERSION, Request,
    ServerInfo, close,
};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// A client must finish the `connect` handshake within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest message (and frame) a client may send: a 32 KiB chat message, JSON-escaped,
/// in its request frame.
pub const MAX_FRAME_BYTES: usize = 256 * 1024;
/// Read and write buffers per socket: most frames are far smaller, and an idle socket
/// should cost little.
const BUFFER_BYTES: usize = 8 * 1024;
/// Sockets that may sit between upgrade and `connect` at once.
pub const PRE_AUTH_BUDGET: u64 = 16;

const METHODS: [&str; 4] = ["health", "status", "ping", "chat.send"];

/// Holds one of the `max_connections` places; gives it back when dropped.
struct Slot(Arc<GatewayState>);

impl Slot {
    fn take(state: &Arc<GatewayState>, max: u64) -> Option<Self> {
        state
            .connections
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(state.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Sockets between upgrade and `connect`, oldest first. When [`PRE_AUTH_BUDGET`] are
/// waiting, a newcomer evicts the oldest: idle strangers can never hold the door shut for
/// the client that is about to authenticate (which takes milliseconds).
#[derive(Debug, Default)]
pub(crate) struct PreAuth {
    inner: Mutex<PreAuthInner>,
}

#[derive(Debug, Default)]
struct PreAuthInner {
    next_id: u64,
    waiting: VecDeque<(u64, Arc<Notify>)>,
}

impl PreAuth {
    fn lock(&self) -> std::sync::MutexGuard<'_, PreAuthInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().waiting.len()
    }
}

/// One socket's place among the pre-auth sockets; `evicted` fires if a newer one took it.
struct PreAuthTicket {
    state: Arc<GatewayState>,
    id: u64,
    evicted: Arc<Notify>,
}

impl PreAuthTicket {
    fn enter(state: &Arc<GatewayState>) -> (Self, bool) {
        let mut q = state.pre_auth.lock();
        let mut evicted_one = false;
        while q.waiting.len() >= PRE_AUTH_BUDGET as usize {
            if let Some((_, oldest)) = q.waiting.pop_front() {
                oldest.notify_one();
                evicted_one = true;
            }
        }
        let id = q.next_id;
        q.next_id += 1;
        let evicted = Arc::new(Notify::new());
        q.waiting.push_back((id, evicted.clone()));
        drop(q);
        (
            Self {
                state: state.clone(),
                id,
                evicted,
            },
            evicted_one,
        )
    }
}

impl Drop for PreAuthTicket {
    fn drop(&mut self) {
        self.state
            .pre_auth
            .lock()
            .waiting
            .retain(|(id, _)| *id != self.id);
    }
}

pub async fn upgrade(
    State(state): State<Arc<GatewayState>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    // A token sent with the upgrade must be right; one sent in `connect` is checked there.
    let header_token = bearer(&headers).map(str::to_owned);
    if header_token.is_some() && !state.access.token_ok(header_token.as_deref()) {
        state.refused(remote, "websocket", Refusal::WrongToken);
        return error(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "wrong gateway token",
        );
    }
    let (ticket, evicted_one) = PreAuthTicket::enter(&state);
    if evicted_one {
        state.metrics.connections_rejected.inc();
        tracing::warn!(%remote, "too many WebSocket clients still connecting: the oldest was closed");
    }
    ws.max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .read_buffer_size(BUFFER_BYTES)
        .write_buffer_size(BUFFER_BYTES)
        .on_upgrade(move |socket| {
            let tasks = state.tasks.clone();
            tasks.guard(session(socket, state, remote, header_token, ticket))
        })
        .into_response()
}

async fn session(
    socket: WebSocket,
    state: Arc<GatewayState>,
    remote: SocketAddr,
    header_token: Option<String>,
    ticket: PreAuthTicket,
) {
    let mut conn = Conn::new(socket, remote);
    let nonce = format!("{:032x}", rand::random::<u128>());
    let ts = jiff::Timestamp::now().as_millisecond();
    let challenge = serde_json::to_value(ConnectChallenge { nonce, ts }).unwrap_or(Value::Null);
    if !conn.event("connect.challenge", challenge).await {
        return;
    }

    let evicted = ticket.evicted.clone();
    let first = tokio::select! {
        first = tokio::time::timeout(HANDSHAKE_TIMEOUT, next_request(&mut conn.socket)) => first,
        () = evicted.notified() => {
            return close_with(
                conn.socket,
                close::TRY_AGAIN_LATER,
                "too many clients are connecting at once; try again".into(),
            )
            .await;
        }
    };
    let req = match first {
        Err(_) => {
            return close_with(
                conn.socket,
                close::POLICY_VIOLATION,
                "no `connect` request within 10 s".into(),
            )
            .await;
        }
        Ok(None) => return,
        Ok(Some(Err((id, e)))) => {
            conn.reply(&id, Err(e)).await;
            return close_with(
                conn.socket,
                close::PROTOCOL_ERROR,
                "the first frame must be a `connect` request".into(),
            )
            .await;
        }
        Ok(Some(Ok(req))) => req,
    };
    if req.method != "connect" {
        conn.reply(
            &req.id,
            Err(ErrorShape::new(
                ErrorCode::InvalidRequest,
                format!("the first request must be `connect`, not `{}`", req.method),
            )),
        )
        .await;
        return close_with(
            conn.socket,
            close::POLICY_VIOLATION,
            "handshake required".into(),
        )
        .await;
    }
    let params: ConnectParams = match serde_json::from_value(req.params.clone()) {
        Ok(p) => p,
        Err(e) if req.params.is_null() => {
            let _ = e;
            ConnectParams::default()
        }
        Err(e) => {
            conn.reply(
                &req.id,
                Err(ErrorShape::new(
                    ErrorCode::InvalidRequest,
                    format!("bad `connect` params: {e}"),
                )),
            )
            .await;
            return close_with(
                conn.socket,
                close::PROTOCOL_ERROR,
                "bad connect params".into(),
            )
            .await;
        }
    };
    let token = params
        .auth
        .as_ref()
        .and_then(|a| a.token.clone())
        .or(header_token);
    if !state.access.token_ok(token.as_deref()) {
        let why = if token.is_some() {
            Refusal::WrongToken
        } else {
            Refusal::NoToken
        };
        state.refused(remote, "websocket", why);
        conn.reply(
            &req.id,
            Err(ErrorShape::new(
                ErrorCode::Unauthorized,
                "this gateway needs its token: pass params.auth.token in `connect` (gateway.auth.token, or the generated one in <data dir>/gateway.token)",
            )),
        )
        .await;
        return close_with(conn.socket, close::POLICY_VIOLATION, "unauthorized".into()).await;
    }
    // Authenticated: leave the pre-auth sockets for one of `max_connections`.
    drop(ticket);
    let max = u64::from(state.config.gateway.max_connections);
    let Some(_slot) = Slot::take(&state, max) else {
        state.metrics.connections_rejected.inc();
        tracing::warn!(%remote, max, "WebSocket client turned away: gateway.max_connections reached");
        conn.reply(
            &req.id,
            Err(ErrorShape::new(
                ErrorCode::Unavailable,
                format!("gateway full: max_connections ({max}) reached, try again later"),
            )),
        )
        .await;
        return close_with(
            conn.socket,
            close::TRY_AGAIN_LATER,
            format!("gateway full: max_connections ({max}) reached, try again later"),
        )
        .await;
    };
    let mode = match params.client.as_ref().map(|c| c.name.as_str()) {
        Some("webchat") => "webchat",
        _ => "control",
    };
    let hello = HelloOk {
        protocol: PROTOCOL_VERSION,
        server: ServerInfo {
            name: "openclaw".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        methods: METHODS.iter().map(|m| m.to_string()).collect(),
    };
    if !conn
        .reply(
            &req.id,
            Ok(serde_json::to_value(hello).unwrap_or(Value::Null)),
        )
        .await
    {
        return;
    }
    let gauge = state.metrics.session_gauge(mode);
    gauge.inc();
    serve_requests(&mut conn, &state).await;
    gauge.dec();
    if state.is_draining() {
        close_with(
            conn.socket,
            close::GOING_AWAY,
            "gateway shutting down".into(),
        )
        .await;
    } else {
        // The client closed: flush the close reply tungstenite queued, so it sees a clean close.
        let _ = futures_util::SinkExt::close(&mut conn.socket).await;
    }
}

async fn serve_requests(conn: &mut Conn, state: &Arc<GatewayState>) {
    let mut stop = state.stop.clone();
    loop {
        let next = tokio::select! {
            () = crate::stopped(&mut stop) => return,
            next = next_request(&mut conn.socket) => next,
            pushed = conn.pushes.next() => {
                // A message the assistant started for a session this socket chats on.
                let payload = json!({"session": pushed.session, "text": pushed.text});
                if !conn.event("chat.message", payload).await {
                    return;
                }
                continue;
            }
        };
        let ok = match next {
            None => return,
            Some(Err((id, e))) => conn.reply(&id, Err(e)).await,
            Some(Ok(req)) if req.method == "chat.send" => chat::send(conn, state, &req).await,
            Some(Ok(req)) => {
                let result = dispatch(state, &req).await;
                conn.reply(&req.id, result).await
            }
        };
        if !ok {
            return;
        }
    }
}

async fn dispatch(state: &GatewayState, req: &Request) -> Result<Value, ErrorShape> {
    let internal = |e: String| ErrorShape::new(ErrorCode::Internal, e);
    match req.method.as_str() {
        "health" => serde_json::to_value(health::build_report(state, health::Detail::Full).await)
            .map_err(|e| internal(e.to_string())),
        "status" => {
            let report = status_report(state)
                .await
                .map_err(|e| ErrorShape::new(ErrorCode::Unavailable, e))?;
            serde_json::to_value(report).map_err(|e| internal(e.to_string()))
        }
        "ping" => Ok(json!({ "ts": jiff::Timestamp::now().as_millisecond() })),
        "connect" => Err(ErrorShape::new(
            ErrorCode::InvalidRequest,
            "already connected",
        )),
        other => Err(ErrorShape::new(
            ErrorCode::InvalidRequest,
            format!("unknown method `{other}`; methods: {}", METHODS.join(", ")),
        )),
    }
}
