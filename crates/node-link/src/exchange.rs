//! One request and its answer over a WebSocket with no link running on it yet: what pairing
//! by a code the gateway shows needs (the node dials the gateway's pairing route, asks
//! `pair.start` and `pair.confirm`, and hangs up), before any key is known to authenticate a
//! link with.

use crate::codec::{self, Read};
use openclaw_protocol::{ErrorShape, Frame, Request, Response};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;

/// The gateway's route a node pairs through when the gateway shows the code.
pub const PAIR_PATH: &str = "/node/pair";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExchangeError {
    #[error("no answer in time")]
    TimedOut,
    #[error("the other side closed the connection{}", .0.as_ref().map(|(c, r)| format!(" ({c}: {r})")).unwrap_or_default())]
    Closed(Option<(u16, String)>),
    #[error("the message is larger than this side accepts")]
    TooBig,
    #[error("{0}")]
    Failed(String),
    #[error("refused: {} ({})", .0.message, .0.code.as_str())]
    Refused(ErrorShape),
    #[error("not this protocol: {0}")]
    Protocol(String),
}

async fn next_frame<S>(
    ws: &mut WebSocketStream<S>,
    deadline: Instant,
) -> Result<Frame, ExchangeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let read = tokio::time::timeout_at(deadline, codec::read_text(ws))
        .await
        .map_err(|_| ExchangeError::TimedOut)?;
    match read {
        Read::Text(text) => {
            codec::decode(&text).map_err(|(_, e)| ExchangeError::Protocol(e.message))
        }
        Read::Closed(c) => Err(ExchangeError::Closed(c)),
        Read::TooBig => Err(ExchangeError::TooBig),
        Read::Failed(e) => Err(ExchangeError::Failed(e)),
    }
}

/// Sends `method` with `params` and waits for its answer (other frames are not expected here).
pub async fn request<S>(
    ws: &mut WebSocketStream<S>,
    id: &str,
    method: &str,
    params: Value,
    deadline: Instant,
) -> Result<Value, ExchangeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = Frame::Req(Request {
        id: id.to_owned(),
        method: method.to_owned(),
        params,
    });
    codec::send(ws, &frame, deadline)
        .await
        .map_err(|e| ExchangeError::Failed(e.to_string()))?;
    match next_frame(ws, deadline).await? {
        Frame::Res(res) if res.id == id && res.ok => Ok(res.payload.unwrap_or(Value::Null)),
        Frame::Res(res) if res.id == id => {
            Err(ExchangeError::Refused(res.error.unwrap_or_else(|| {
                ErrorShape::new(
                    openclaw_protocol::ErrorCode::Internal,
                    "refused without a reason",
                )
            })))
        }
        other => Err(ExchangeError::Protocol(format!(
            "expected the answer to `{method}`, got {other:?}"
        ))),
    }
}

/// The next request the other side sends.
pub async fn next_request<S>(
    ws: &mut WebSocketStream<S>,
    deadline: Instant,
) -> Result<Request, ExchangeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match next_frame(ws, deadline).await? {
        Frame::Req(req) => Ok(req),
        other => Err(ExchangeError::Protocol(format!(
            "expected a request, got {other:?}"
        ))),
    }
}

/// Answers a request.
pub async fn reply<S>(
    ws: &mut WebSocketStream<S>,
    res: Response,
    deadline: Instant,
) -> Result<(), ExchangeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    codec::send(ws, &Frame::Res(res), deadline)
        .await
        .map_err(|e| ExchangeError::Failed(e.to_string()))
}
