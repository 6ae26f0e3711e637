//! The gateway WebSocket: `connect.challenge` event, `connect` handshake with the gateway
//! token, then request/response frames. `gateway.max_connections` is enforced here: a client
//! past the limit is accepted only to be told why it is closed.

use crate::routes::{audit_auth_failure, bearer, status_report, token_ok};
use crate::{GatewayState, health};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;
use openclaw_protocol::{
    ConnectChallenge, ConnectParams, ErrorCode, ErrorShape, Event, Frame, HelloOk,
    PROTOCOL_VERSION, Request, ServerInfo, close,
};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A client must finish the `connect` handshake within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest frame a control client may send.
const MAX_FRAME_BYTES: usize = 1024 * 1024;

const METHODS: [&str; 4] = ["health", "status", "ping", "chat.send"];

/// Holds one of the `max_connections` slots; gives it back when dropped, whether or not the
/// upgrade ever completed.
struct Slot(Arc<GatewayState>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::SeqCst);
    }
}

pub async fn upgrade(
    State(state): State<Arc<GatewayState>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let max = u64::from(state.config.gateway.max_connections);
    let admitted = state
        .connections
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n < max).then_some(n + 1)
        })
        .is_ok();
    let header_token = bearer(&headers).map(str::to_owned);
    let ws = ws.max_message_size(MAX_FRAME_BYTES);
    if !admitted {
        state.metrics.connections_rejected.inc();
        tracing::warn!(%remote, max, "WebSocket client turned away: gateway.max_connections reached");
        return ws.on_upgrade(move |socket| async move {
            close_with(
                socket,
                close::TRY_AGAIN_LATER,
                format!("gateway full: max_connections ({max}) reached, try again later"),
            )
            .await;
        });
    }
    let slot = Slot(state.clone());
    ws.on_upgrade(move |socket| async move {
        session(socket, state, remote, header_token).await;
        drop(slot);
    })
}

async fn close_with(mut socket: WebSocket, code: u16, reason: String) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from(reason),
        })))
        .await;
    // Wait briefly for the client's close reply so the reason is delivered, not reset.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(msg)) = socket.recv().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

pub(crate) struct Conn {
    socket: WebSocket,
    seq: u64,
}

impl Conn {
    async fn send(&mut self, frame: &Frame) -> bool {
        match serde_json::to_string(frame) {
            Ok(text) => self.socket.send(Message::text(text)).await.is_ok(),
            Err(_) => false,
        }
    }

    pub(crate) async fn event(&mut self, event: &str, payload: Value) -> bool {
        let seq = self.seq;
        self.seq += 1;
        self.send(&Frame::Event(Event {
            event: event.into(),
            payload,
            seq: Some(seq),
        }))
        .await
    }

    pub(crate) async fn reply(&mut self, id: &str, result: Result<Value, ErrorShape>) -> bool {
        let res = match result {
            Ok(payload) => openclaw_protocol::Response::ok(id, payload),
            Err(e) => openclaw_protocol::Response::err(id, e),
        };
        self.send(&Frame::Res(res)).await
    }
}

async fn session(
    socket: WebSocket,
    state: Arc<GatewayState>,
    remote: SocketAddr,
    header_token: Option<String>,
) {
    let mut conn = Conn { socket, seq: 0 };
    let nonce = format!("{:032x}", rand::random::<u128>());
    let ts = jiff::Timestamp::now().as_millisecond();
    let challenge = serde_json::to_value(ConnectChallenge { nonce, ts }).unwrap_or(Value::Null);
    if !conn.event("connect.challenge", challenge).await {
        return;
    }

    let first = tokio::time::timeout(HANDSHAKE_TIMEOUT, next_request(&mut conn)).await;
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
    if !token_ok(&state, token.as_deref()) {
        let why = if token.is_some() {
            "wrong token"
        } else {
            "no token"
        };
        audit_auth_failure(&state, remote, "websocket", why);
        conn.reply(
            &req.id,
            Err(ErrorShape::new(
                ErrorCode::Unauthorized,
                "this gateway needs its token: pass params.auth.token in `connect`",
            )),
        )
        .await;
        return close_with(conn.socket, close::POLICY_VIOLATION, "unauthorized".into()).await;
    }
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
            next = next_request(conn) => next,
        };
        let ok = match next {
            None => return,
            Some(Err((id, e))) => conn.reply(&id, Err(e)).await,
            Some(Ok(req)) if req.method == "chat.send" => {
                crate::chat::send(conn, state, &req).await
            }
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
        "health" => serde_json::to_value(health::build_report(state).await)
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

/// The next request; `Err((id, error))` for a frame that is not one (answered, not fatal);
/// `None` when the socket is closed.
pub(crate) async fn next_request(conn: &mut Conn) -> Option<Result<Request, (String, ErrorShape)>> {
    loop {
        let msg = match conn.socket.recv().await? {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "WebSocket read failed");
                return None;
            }
        };
        let text = match msg {
            Message::Text(t) => t,
            Message::Close(_) => return None,
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Binary(_) => {
                return Some(Err((
                    String::new(),
                    ErrorShape::new(
                        ErrorCode::InvalidRequest,
                        "binary frames are not accepted; send JSON text frames",
                    ),
                )));
            }
        };
        return Some(match serde_json::from_str::<Frame>(text.as_str()) {
            Ok(Frame::Req(req)) => Ok(req),
            Ok(_) => Err((
                String::new(),
                ErrorShape::new(ErrorCode::InvalidRequest, "clients send `req` frames only"),
            )),
            Err(e) => {
                // Answer with the id if the frame carried one, so the client can match it.
                let id = serde_json::from_str::<Value>(text.as_str())
                    .ok()
                    .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_default();
                Err((
                    id,
                    ErrorShape::new(ErrorCode::InvalidRequest, format!("malformed frame: {e}")),
                ))
            }
        });
    }
}
