//! The one frame codec of node links, over any WebSocket stream (or either half of a split one):
//! read a text frame, decode it with the protocol's frame parser, send a frame by a deadline,
//! close with a code.
//!
//! The size limit is the WebSocket layer's ([`websocket_config`]): tungstenite refuses a frame
//! whose header announces more as soon as the header is read, before buffering its payload,
//! which a check after reading could not do.

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use openclaw_protocol::{ErrorShape, Frame};
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// How long a close frame may take to go out: a peer that does not read cannot hold the
/// connection open by not taking it.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// WebSocket limits for a side that accepts messages of at most `max_message` bytes, in one
/// frame or several.
pub fn websocket_config(max_message: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}

/// What one read brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    Text(String),
    /// Over the stream's message limit (refused by the WebSocket layer before it was buffered).
    TooBig,
    /// The peer closed the connection, with its close frame's code and reason when it sent one.
    Closed(Option<(u16, String)>),
    /// The transport failed (reset, a WebSocket protocol violation).
    Failed(String),
}

/// The next text frame. Pings are answered by the WebSocket layer and binary frames mean
/// nothing in this protocol: neither ends the read, and neither moves a caller's deadline,
/// which the caller set around the whole read.
pub async fn read_text<St>(stream: &mut St) -> Read
where
    St: Stream<Item = Result<Message, WsError>> + Unpin,
{
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(t))) => return Read::Text(t.as_str().to_owned()),
            Some(Ok(Message::Close(frame))) => {
                return Read::Closed(frame.map(|f| (u16::from(f.code), f.reason.to_string())));
            }
            Some(Ok(_)) => continue,
            Some(Err(WsError::Capacity(_))) => return Read::TooBig,
            Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) | None => {
                return Read::Closed(None);
            }
            Some(Err(e)) => return Read::Failed(e.to_string()),
        }
    }
}

/// Decodes a text frame. On failure, the id to answer with (the frame's own when it carried a
/// string id) and why: the protocol's parser, the one the gateway and the fuzzers use.
pub fn decode(text: &str) -> Result<Frame, (String, ErrorShape)> {
    openclaw_protocol::parse_frame(text)
}

/// A frame as the text that goes on the wire.
pub fn encode(frame: &Frame) -> Result<String, SendError> {
    serde_json::to_string(frame).map_err(|e| SendError::Encode(e.to_string()))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("the frame could not be encoded: {0}")]
    Encode(String),
    #[error("the peer did not take the frame in time")]
    TimedOut,
    #[error("sending failed: {0}")]
    Transport(String),
}

/// Sends `frame`, by `by` at the latest.
pub async fn send<Si>(sink: &mut Si, frame: &Frame, by: Instant) -> Result<(), SendError>
where
    Si: Sink<Message, Error = WsError> + Unpin,
{
    send_text(sink, encode(frame)?, by).await
}

/// Sends an already encoded frame, by `by` at the latest.
pub async fn send_text<Si>(sink: &mut Si, text: String, by: Instant) -> Result<(), SendError>
where
    Si: Sink<Message, Error = WsError> + Unpin,
{
    match tokio::time::timeout_at(by, sink.send(Message::text(text))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(SendError::Transport(e.to_string())),
        Err(_) => Err(SendError::TimedOut),
    }
}

/// Closes the connection with `code` and `reason`, waiting [`CLOSE_TIMEOUT`] at most.
pub async fn close<Si>(sink: &mut Si, code: CloseCode, reason: &str)
where
    Si: Sink<Message, Error = WsError> + Unpin,
{
    let frame = CloseFrame {
        code,
        reason: reason.to_owned().into(),
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(Message::Close(Some(frame)))).await;
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.close()).await;
}
