//! The shapes every HTTP route shares: the error body, reading a JSON body within its limits,
//! and why a request was refused. Transport-neutral: routes, the WebSocket upgrade and the
//! OpenAI-compatible API use it; it uses none of them.

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use openclaw_protocol::{ErrorCode, ErrorShape};
use serde_json::json;
use std::time::Duration;

pub use crate::access::bearer;

/// A request body must arrive within this time once its head has.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

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
    use axum::http::Method;

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

/// Why a request was refused, for the log, the metric and the audit line.
#[derive(Debug, Clone)]
pub enum Refusal {
    NoToken,
    WrongToken,
    WrongHost,
    Origin(String),
    /// A device node that dialed in did not prove itself (not paired, a bad signature).
    NodeNotProved(String),
}

impl Refusal {
    pub fn reason(&self) -> String {
        match self {
            Self::NoToken => "no token".into(),
            Self::WrongToken => "wrong token".into(),
            Self::WrongHost => "host not ours".into(),
            Self::Origin(o) => format!("origin {o} refused"),
            Self::NodeNotProved(why) => format!("node not authenticated: {why}"),
        }
    }
}
