//! One authenticated WebSocket: numbered events, replies, and reading the next request.

use super::outlet::{Pushed, Watch, WebChatOutlet};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use openclaw_protocol::{ErrorCode, ErrorShape, Event, Frame, Request};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

pub(crate) async fn close_with(mut socket: WebSocket, code: u16, reason: String) {
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
    pub(crate) socket: WebSocket,
    pub(crate) seq: u64,
    /// The client's address: the source its rate limits count under.
    pub(crate) remote: SocketAddr,
    /// Sessions this socket chatted on: messages the assistant starts for them come here.
    pub(crate) pushes: Pushes,
}

/// The sessions a socket watches and the messages pushed to them.
#[derive(Default)]
pub(crate) struct Pushes {
    watches: Vec<Watch>,
    rx: Option<broadcast::Receiver<Arc<Pushed>>>,
}

impl Pushes {
    /// From now on, messages the assistant starts for `session` come to this socket too.
    pub(crate) fn watch(&mut self, outlet: &Arc<WebChatOutlet>, session: &str) {
        if self.watches.iter().any(|w| w.session == session) {
            return;
        }
        if self.rx.is_none() {
            self.rx = Some(outlet.subscribe());
        }
        self.watches.push(outlet.watch(session));
    }

    /// The next pushed message for a watched session; never completes for a socket that
    /// watches none.
    pub(crate) async fn next(&mut self) -> Arc<Pushed> {
        let Some(rx) = self.rx.as_mut() else {
            return std::future::pending().await;
        };
        loop {
            match rx.recv().await {
                Ok(p) if self.watches.iter().any(|w| w.session == p.session) => return p,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => {
                    self.rx = None;
                    return std::future::pending().await;
                }
            }
        }
    }
}

impl Conn {
    pub(crate) fn new(socket: WebSocket, remote: SocketAddr) -> Self {
        Self {
            socket,
            seq: 0,
            remote,
            pushes: Pushes::default(),
        }
    }

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

/// The next request; `Err((id, error))` for a frame that is not one (answered, not fatal);
/// `None` when the socket is closed.
pub(crate) async fn next_request(
    socket: &mut WebSocket,
) -> Option<Result<Request, (String, ErrorShape)>> {
    loop {
        let msg = match socket.recv().await? {
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
        return Some(openclaw_protocol::parse_request(text.as_str()));
    }
}
