//! Wire types shared by the gateway, its clients (CLI, tray app, WebChat) and device nodes.
//!
//! This crate owns the JSON shapes that cross a process boundary: the request / response / event
//! frames spoken over WebSocket, the error codes inside them, and the documents served over HTTP
//! (`/health`, `/api/status`). It has no I/O and no behaviour beyond (de)serialisation, so that
//! `node-agent` (which ships to phones) and any client can depend on it without pulling in the
//! gateway.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod health;
pub mod node;
pub mod status;

pub use health::{CheckResult, CheckStatus, HealthMetrics, HealthReport, LocalModelHealth};
pub use status::StatusReport;

/// Protocol revision spoken on the gateway WebSocket (the upstream gateway's framing, v4).
pub const PROTOCOL_VERSION: u32 = 4;

/// Path of the gateway's WebSocket endpoint.
pub const WS_PATH: &str = "/ws";

/// WebSocket close codes the gateway uses, with the meaning a client should act on.
pub mod close {
    /// The gateway is shutting down; reconnect later.
    pub const GOING_AWAY: u16 = 1001;
    /// A frame could not be understood.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// The handshake failed (bad token, no `connect` first).
    pub const POLICY_VIOLATION: u16 = 1008;
    /// `gateway.max_connections` is reached; retry after a while.
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// One WebSocket text frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Frame {
    Req(Request),
    Res(Response),
    Event(Event),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub id: String,
    pub method: String,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub params: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub id: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorShape>,
}

impl Response {
    pub fn ok(id: impl Into<String>, payload: Value) -> Self {
        Self {
            id: id.into(),
            ok: true,
            payload: Some(payload),
            error: None,
        }
    }

    pub fn err(id: impl Into<String>, error: ErrorShape) -> Self {
        Self {
            id: id.into(),
            ok: false,
            payload: None,
            error: Some(error),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event: String,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub payload: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// Reads a text frame a client sent as a request. On failure, the id to answer with (the
/// frame's own when it carried a string id, so the client can match the error) and why.
/// Never panics, whatever the bytes (fuzzed: `fuzz/fuzz_targets/ws_frames.rs`).
pub fn parse_request(text: &str) -> Result<Request, (String, ErrorShape)> {
    match parse_frame(text)? {
        Frame::Req(req) => Ok(req),
        _ => Err((
            String::new(),
            ErrorShape::new(ErrorCode::InvalidRequest, "clients send `req` frames only"),
        )),
    }
}

/// Reads a text frame of any type (a peer that both calls and answers, e.g. a node link). On
/// failure, the id to answer with and why, as [`parse_request`] gives them.
pub fn parse_frame(text: &str) -> Result<Frame, (String, ErrorShape)> {
    match serde_json::from_str::<Frame>(text) {
        Ok(frame) => Ok(frame),
        Err(e) => {
            let id = serde_json::from_str::<Value>(text)
                .ok()
                .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_default();
            Err((
                id,
                ErrorShape::new(ErrorCode::InvalidRequest, format!("malformed frame: {e}")),
            ))
        }
    }
}

/// The error object inside a failed response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorShape {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default)]
    pub retryable: bool,
}

impl ErrorShape {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            retryable: code.is_retryable(),
            code,
            message: message.into(),
        }
    }
}

/// Error codes, spelled as the upstream gateway spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    InvalidRequest,
    Unauthorized,
    NotPaired,
    NotFound,
    RateLimited,
    Unavailable,
    Internal,
    /// A node has no camera (or no camera backend).
    CameraUnavailable,
    /// A node cannot serve this capability on this host (no display, no D-Bus, no speech).
    CapabilityUnavailable,
    /// A request or its result is over a size limit.
    PayloadTooLarge,
    /// The request came from a browser page of an origin the gateway does not serve.
    Forbidden,
    /// The request named a `Host` that is not this gateway's (DNS rebinding, a wrong proxy).
    MisdirectedRequest,
    /// The body is not of the media type the route takes (JSON routes take JSON only).
    UnsupportedMediaType,
    /// The device's own implementation of a capability failed: a phone app's handler threw,
    /// the OS refused. Not the node's protocol, not the gateway.
    CapabilityFailed,
    /// The call waited for a sleeping (wakeable) node that did not come back before the
    /// call's deadline.
    NodeAsleep,
    /// The owner paused the assistant (the tray app's Pause, `POST /api/pause`).
    Paused,
}

impl ErrorCode {
    /// The wire spelling, e.g. `CAMERA_UNAVAILABLE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "INVALID_REQUEST",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::NotPaired => "NOT_PAIRED",
            Self::NotFound => "NOT_FOUND",
            Self::RateLimited => "RATE_LIMITED",
            Self::Unavailable => "UNAVAILABLE",
            Self::Internal => "INTERNAL",
            Self::CameraUnavailable => "CAMERA_UNAVAILABLE",
            Self::CapabilityUnavailable => "CAPABILITY_UNAVAILABLE",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::Forbidden => "FORBIDDEN",
            Self::MisdirectedRequest => "MISDIRECTED_REQUEST",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::CapabilityFailed => "CAPABILITY_FAILED",
            Self::NodeAsleep => "NODE_ASLEEP",
            Self::Paused => "PAUSED",
        }
    }

    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::RateLimited | Self::Unavailable | Self::NodeAsleep
        )
    }
}

/// Payload of the `connect.challenge` event the gateway sends first on every WebSocket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectChallenge {
    pub nonce: String,
    /// Milliseconds since the Unix epoch.
    pub ts: i64,
}

/// Params of the `connect` request, the first request a client must send.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectParams {
    #[serde(default)]
    pub auth: Option<ConnectAuth>,
    #[serde(default)]
    pub client: Option<ClientInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectAuth {
    #[serde(default)]
    pub token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientInfo {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
}

/// Payload of a successful `connect` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HelloOk {
    pub protocol: u32,
    pub server: ServerInfo,
    pub methods: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerInfo {
    pub name: String,
    pub version: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_code_as_str_is_its_wire_spelling() {
        use ErrorCode::*;
        for code in [
            InvalidRequest,
            Unauthorized,
            NotPaired,
            NotFound,
            RateLimited,
            Unavailable,
            Internal,
            CameraUnavailable,
            CapabilityUnavailable,
            PayloadTooLarge,
            Forbidden,
            MisdirectedRequest,
            UnsupportedMediaType,
        ] {
            assert_eq!(json!(code), json!(code.as_str()));
        }
    }

    #[test]
    fn frames_use_the_documented_shapes() {
        let req: Frame = serde_json::from_value(
            json!({"type":"req","id":"1","method":"health","params":{"a":1}}),
        )
        .unwrap();
        assert_eq!(
            req,
            Frame::Req(Request {
                id: "1".into(),
                method: "health".into(),
                params: json!({"a":1})
            })
        );

        let res = Frame::Res(Response::err(
            "7",
            ErrorShape::new(ErrorCode::InvalidRequest, "bad"),
        ));
        assert_eq!(
            serde_json::to_value(&res).unwrap(),
            json!({"type":"res","id":"7","ok":false,
                   "error":{"code":"INVALID_REQUEST","message":"bad","retryable":false}})
        );

        let ev = Frame::Event(Event {
            event: "connect.challenge".into(),
            payload: json!({"nonce":"n","ts":1}),
            seq: Some(3),
        });
        assert_eq!(
            serde_json::to_value(&ev).unwrap(),
            json!({"type":"event","event":"connect.challenge","payload":{"nonce":"n","ts":1},"seq":3})
        );
    }

    #[test]
    fn request_without_params_is_accepted() {
        let f: Frame =
            serde_json::from_str(r#"{"type":"req","id":"x","method":"status"}"#).unwrap();
        assert!(matches!(f, Frame::Req(r) if r.params.is_null()));
    }

    #[test]
    fn unknown_frame_type_is_an_error() {
        assert!(serde_json::from_str::<Frame>(r#"{"type":"bogus","id":"x"}"#).is_err());
    }

    #[test]
    fn retryable_follows_the_code() {
        assert!(ErrorShape::new(ErrorCode::Unavailable, "x").retryable);
        assert!(!ErrorShape::new(ErrorCode::Unauthorized, "x").retryable);
    }
}
