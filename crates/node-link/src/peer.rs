//! The RPC peer of a node link, the same on both sides once the link is authenticated: a
//! reader task, a writer task, and an id → pending-call map, so that several calls over one
//! link run at once and each waits for its own answer. Requests from the other side are served
//! by a [`Handler`], each in a task of its own; events flow both ways.
//!
//! The link ends once, for one reason ([`LinkEnd`]): the peer closed it, the transport failed,
//! a limit was hit, or every [`Peer`] handle of this side was dropped. Every call still waiting
//! then fails with that reason, and later calls fail at once.

use crate::codec::{self, Read};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use openclaw_protocol::{ErrorCode, ErrorShape, Event, Frame, Request, Response};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Serves what the other side of a link asks.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request. Each runs in a task of its own, so a slow one holds up no other;
    /// it is called when the request's turn comes ([`PeerConfig::max_in_flight`]).
    fn request(&self, request: Request) -> BoxFuture<'static, Result<Value, ErrorShape>>;

    /// An event the other side sent. Runs on the reader task: hand it on, do not wait.
    fn event(&self, event: Event) {
        tracing::debug!(event = %event.event, "event with no listener dropped");
    }
}

/// A side that serves no methods (a gateway that only calls its node): every request is
/// answered `NOT_FOUND`, events are dropped.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRequests;

impl Handler for NoRequests {
    fn request(&self, request: Request) -> BoxFuture<'static, Result<Value, ErrorShape>> {
        Box::pin(std::future::ready(Err(ErrorShape::new(
            ErrorCode::NotFound,
            format!(
                "`{}`: this side of the link serves no methods",
                request.method
            ),
        ))))
    }
}

/// Events to a channel, requests refused as [`NoRequests`] does: for a side that listens to
/// what the other one reports and serves nothing.
#[derive(Debug, Clone)]
pub struct EventSink(pub mpsc::UnboundedSender<Event>);

impl Handler for EventSink {
    fn request(&self, request: Request) -> BoxFuture<'static, Result<Value, ErrorShape>> {
        NoRequests.request(request)
    }

    fn event(&self, event: Event) {
        let _ = self.0.send(event);
    }
}

/// How one side runs its link.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// Who the other side is (an address, a name): for logs.
    pub label: String,
    /// The link ends when nothing arrives from the other side for this long.
    pub idle: Option<Duration>,
    /// Longest one frame may take to send; a peer that does not read ends the link.
    pub send_timeout: Duration,
    /// The largest message the other side accepts: a request over it is refused before it is
    /// sent, and the link lives on (the other side would close it).
    pub max_outgoing: Option<usize>,
    /// The largest message this side accepts, as set on its WebSocket (for the close reason).
    pub max_incoming: usize,
    /// Requests of the other side served at once; more wait for a turn.
    pub max_in_flight: usize,
    /// Requests that may wait for a turn (each holds one message at most); past that they are
    /// answered `UNAVAILABLE` (retryable) at once. A request keeps its place until its answer is
    /// queued for sending, so the answers this side holds are bounded by in flight + queued
    /// (+ 8 in the send queue), however slowly the other side reads.
    pub max_queued: usize,
    /// Where the link's reader and writer tasks are tracked, so an embedder that stops can wait
    /// for them (the gateway's shutdown does); `None` spawns them untracked.
    pub tasks: Option<tokio_util::task::TaskTracker>,
}

impl PeerConfig {
    /// Defaults: no idle limit, 60 s to send a frame, 16 requests in flight and 32 waiting.
    pub fn new(label: impl Into<String>, max_incoming: usize) -> Self {
        Self {
            label: label.into(),
            idle: None,
            send_timeout: Duration::from_secs(60),
            max_outgoing: None,
            max_incoming,
            max_in_flight: 16,
            max_queued: 32,
            tasks: None,
        }
    }
}

/// Why a link ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkEnd {
    #[error("the peer closed the connection{}", close_detail(.0))]
    ByPeer(Option<(u16, String)>),
    #[error("the peer sent a message over the {limit} bytes this side accepts")]
    TooBig { limit: usize },
    #[error("nothing came from the peer for {} s", .0.as_secs())]
    Idle(Duration),
    #[error("{0}")]
    Send(String),
    #[error("the connection failed: {0}")]
    Transport(String),
    #[error("closed by this side")]
    Local,
}

fn close_detail(frame: &Option<(u16, String)>) -> String {
    match frame {
        Some((code, reason)) if !reason.is_empty() => format!(" ({code}: {reason})"),
        Some((code, _)) => format!(" ({code})"),
        None => String::new(),
    }
}

impl LinkEnd {
    /// The close frame this side sends when the link ends for this reason (none when the peer
    /// closed or the transport is gone).
    fn close_frame(&self, config: &PeerConfig) -> Option<(CloseCode, String)> {
        match self {
            Self::TooBig { .. } => Some((
                CloseCode::Size,
                format!("a message here is at most {} bytes", config.max_incoming),
            )),
            Self::Idle(d) => Some((
                CloseCode::Policy,
                format!("no request for {} s", d.as_secs()),
            )),
            Self::Local => Some((CloseCode::Normal, String::new())),
            Self::ByPeer(_) | Self::Send(_) | Self::Transport(_) => None,
        }
    }
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    #[error("the `{method}` request is {size} bytes, over the {limit} bytes the peer accepts")]
    TooLarge {
        method: String,
        size: usize,
        limit: usize,
    },
    #[error("no answer to `{method}` within {} s", after.as_secs_f32())]
    TimedOut { method: String, after: Duration },
    /// The peer answered with an error: that is its answer.
    #[error("{} ({})", .0.message, .0.code.as_str())]
    Refused(ErrorShape),
    /// The link ended before the answer came.
    #[error("the link closed: {0}")]
    Closed(LinkEnd),
    #[error("the request could not be encoded: {0}")]
    Encode(String),
}

type Reply = oneshot::Sender<Result<Value, CallError>>;

#[derive(Default)]
struct Pending {
    calls: HashMap<String, Reply>,
    ended: Option<LinkEnd>,
}

struct Shared {
    config: PeerConfig,
    pending: Mutex<Pending>,
    next_id: AtomicU64,
    seq: AtomicU64,
    out: mpsc::Sender<String>,
    end: watch::Sender<Option<LinkEnd>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// Ends the link for `why` (the first reason wins) and fails every waiting call with it.
    fn finish(&self, why: LinkEnd) {
        let calls = {
            let mut p = lock(&self.pending);
            if p.ended.is_some() {
                return;
            }
            p.ended = Some(why.clone());
            std::mem::take(&mut p.calls)
        };
        tracing::debug!(peer = %self.config.label, reason = %why, "node link ended");
        for (_, reply) in calls {
            let _ = reply.send(Err(CallError::Closed(why.clone())));
        }
        self.end.send_replace(Some(why));
    }

    fn ended(&self) -> Option<LinkEnd> {
        lock(&self.pending).ended.clone()
    }

    fn resolve(&self, res: Response) {
        let Some(reply) = lock(&self.pending).calls.remove(&res.id) else {
            // An answer to a call that timed out meanwhile, or to nothing: nobody waits.
            tracing::debug!(peer = %self.config.label, id = %res.id, "answer to no pending call");
            return;
        };
        let result = match (res.ok, res.payload, res.error) {
            (true, payload, _) => Ok(payload.unwrap_or(Value::Null)),
            (false, _, Some(e)) => Err(CallError::Refused(e)),
            (false, _, None) => Err(CallError::Refused(ErrorShape::new(
                ErrorCode::Internal,
                "the peer answered with an error without detail",
            ))),
        };
        let _ = reply.send(result);
    }

    async fn respond(&self, id: String, result: Result<Value, ErrorShape>) {
        let res = match result {
            Ok(p) => Response::ok(id, p),
            Err(e) => Response::err(id, e),
        };
        match codec::encode(&Frame::Res(res)) {
            Ok(text) => {
                let _ = self.out.send(text).await;
            }
            Err(e) => tracing::warn!(peer = %self.config.label, error = %e, "answer not sent"),
        }
    }
}

/// Removes a call's entry when its caller stops waiting (timed out, or its future dropped).
struct Waiting<'a> {
    shared: &'a Shared,
    id: String,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        lock(&self.shared.pending).calls.remove(&self.id);
    }
}

/// Ends the link when the last handle of this side is dropped.
struct Owner(Arc<Shared>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.finish(LinkEnd::Local);
    }
}

/// One side of a running link; clone it freely (every clone is the same link). The link ends
/// when the other side goes, or when [`Peer::close`] is called or the last clone is dropped.
#[derive(Clone)]
pub struct Peer {
    shared: Arc<Shared>,
    _owner: Arc<Owner>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("label", &self.shared.config.label)
            .field("ended", &self.shared.ended())
            .finish()
    }
}

impl Peer {
    /// Runs the link over `ws` (already authenticated, or about to be through [`Peer::call`]):
    /// spawns its reader and writer tasks on the current runtime.
    pub fn spawn<S>(ws: WebSocketStream<S>, config: PeerConfig, handler: Arc<dyn Handler>) -> Self
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sink, stream) = ws.split();
        // Room for a burst of frames; a full queue makes callers wait (within their deadline).
        // Small: each frame may be a 16 MiB answer.
        let (out, out_rx) = mpsc::channel(8);
        let (end, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            config,
            pending: Mutex::new(Pending::default()),
            next_id: AtomicU64::new(1),
            seq: AtomicU64::new(1),
            out,
            end,
        });
        let writer = write_loop(sink, out_rx, shared.clone());
        let reader = read_loop(stream, shared.clone(), handler);
        match &shared.config.tasks {
            Some(tasks) => {
                tasks.spawn(writer);
                tasks.spawn(reader);
            }
            None => {
                tokio::spawn(writer);
                tokio::spawn(reader);
            }
        }
        Self {
            _owner: Arc::new(Owner(shared.clone())),
            shared,
        }
    }

    /// Who the other side is, as configured.
    pub fn label(&self) -> &str {
        &self.shared.config.label
    }

    /// Calls `method` on the other side and waits for its answer, `limit` at most in all
    /// (queueing, sending and the answer). Other calls run meanwhile.
    pub async fn call(
        &self,
        method: &str,
        params: Value,
        limit: Duration,
    ) -> Result<Value, CallError> {
        let deadline = Instant::now() + limit;
        let id = self
            .shared
            .next_id
            .fetch_add(1, Ordering::Relaxed)
            .to_string();
        let text = codec::encode(&Frame::Req(Request {
            id: id.clone(),
            method: method.to_owned(),
            params,
        }))
        .map_err(|e| CallError::Encode(e.to_string()))?;
        if let Some(max) = self
            .shared
            .config
            .max_outgoing
            .filter(|max| text.len() > *max)
        {
            return Err(CallError::TooLarge {
                method: method.to_owned(),
                size: text.len(),
                limit: max,
            });
        }
        let (tx, rx) = oneshot::channel();
        {
            let mut p = lock(&self.shared.pending);
            if let Some(end) = &p.ended {
                return Err(CallError::Closed(end.clone()));
            }
            p.calls.insert(id.clone(), tx);
        }
        let _waiting = Waiting {
            shared: &self.shared,
            id,
        };
        let timed_out = || CallError::TimedOut {
            method: method.to_owned(),
            after: limit,
        };
        match tokio::time::timeout_at(deadline, self.shared.out.send(text)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(self.closed_error()),
            Err(_) => return Err(timed_out()),
        }
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(self.closed_error()),
            Err(_) => Err(timed_out()),
        }
    }

    fn closed_error(&self) -> CallError {
        CallError::Closed(self.shared.ended().unwrap_or(LinkEnd::Local))
    }

    /// Sends an event to the other side (numbered in order on this link).
    pub async fn emit(&self, event: &str, payload: Value) -> Result<(), CallError> {
        let seq = self.shared.seq.fetch_add(1, Ordering::Relaxed);
        let text = codec::encode(&Frame::Event(Event {
            event: event.to_owned(),
            payload,
            seq: Some(seq),
        }))
        .map_err(|e| CallError::Encode(e.to_string()))?;
        if let Some(end) = self.shared.ended() {
            return Err(CallError::Closed(end));
        }
        match tokio::time::timeout(self.shared.config.send_timeout, self.shared.out.send(text))
            .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(self.closed_error()),
            Err(_) => Err(CallError::TimedOut {
                method: event.to_owned(),
                after: self.shared.config.send_timeout,
            }),
        }
    }

    /// Whether the link has ended.
    pub fn is_closed(&self) -> bool {
        self.shared.ended().is_some()
    }

    /// Why the link ended, once it has.
    pub fn end(&self) -> Option<LinkEnd> {
        self.shared.ended()
    }

    /// Completes when the link ends, with the reason.
    pub async fn ended(&self) -> LinkEnd {
        let mut rx = self.shared.end.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(end) => end.clone().unwrap_or(LinkEnd::Local),
            Err(_) => self.shared.ended().unwrap_or(LinkEnd::Local),
        }
    }

    /// Ends the link now (a normal close frame goes to the other side).
    pub fn close(&self) {
        self.shared.finish(LinkEnd::Local);
    }

    /// Whether `other` is a handle of the same link.
    pub fn same_link(&self, other: &Peer) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

async fn read_loop<St>(mut stream: St, shared: Arc<Shared>, handler: Arc<dyn Handler>)
where
    St: futures_util::Stream<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
{
    let mut end = shared.end.subscribe();
    let in_flight = Arc::new(Semaphore::new(shared.config.max_in_flight));
    // Admission: running or waiting to run. The reader never waits for a turn itself, so
    // answers to this side's own calls are read whatever the other side asks of it.
    let admitted = Arc::new(Semaphore::new(
        shared.config.max_in_flight + shared.config.max_queued,
    ));
    // The tasks serving the other side's requests: owned here, so they end with the link.
    let mut serving = JoinSet::new();
    loop {
        while serving.try_join_next().is_some() {}
        let idle = shared.config.idle;
        let read = async {
            match idle {
                Some(limit) => tokio::time::timeout(limit, codec::read_text(&mut stream))
                    .await
                    .ok(),
                None => Some(codec::read_text(&mut stream).await),
            }
        };
        let read = tokio::select! {
            read = read => read,
            _ = end.wait_for(Option::is_some) => return,
        };
        let text = match read {
            Some(Read::Text(text)) => text,
            Some(Read::TooBig) => {
                let limit = shared.config.max_incoming;
                return shared.finish(LinkEnd::TooBig { limit });
            }
            Some(Read::Closed(frame)) => return shared.finish(LinkEnd::ByPeer(frame)),
            Some(Read::Failed(e)) => return shared.finish(LinkEnd::Transport(e)),
            None => return shared.finish(LinkEnd::Idle(idle.unwrap_or_default())),
        };
        match codec::decode(&text) {
            Ok(Frame::Res(res)) => shared.resolve(res),
            Ok(Frame::Event(event)) => handler.event(event),
            Ok(Frame::Req(req)) => {
                let shared = shared.clone();
                match admitted.clone().try_acquire_owned() {
                    Ok(admission) => {
                        let (in_flight, handler) = (in_flight.clone(), handler.clone());
                        serving.spawn(async move {
                            let id = req.id.clone();
                            let result = match in_flight.acquire_owned().await {
                                Ok(_turn) => handler.request(req).await,
                                // Closed only when the link ends, which aborts this task.
                                Err(_) => return,
                            };
                            shared.respond(id, result).await;
                            // Held until the answer is queued for sending: a peer that asks
                            // and does not read gets no more answers made than its slots.
                            drop(admission);
                        });
                    }
                    Err(_) => {
                        let busy = ErrorShape::new(
                            ErrorCode::Unavailable,
                            format!(
                                "{} calls are already running or waiting on this link; retry when one has finished",
                                shared.config.max_in_flight + shared.config.max_queued
                            ),
                        );
                        serving.spawn(async move { shared.respond(req.id, Err(busy)).await });
                    }
                }
            }
            // Not a frame: answered (with its id when it had one), and the link lives on.
            Err((id, error)) => {
                let shared = shared.clone();
                serving.spawn(async move { shared.respond(id, Err(error)).await });
            }
        }
    }
}

async fn write_loop<Si>(mut sink: Si, mut out: mpsc::Receiver<String>, shared: Arc<Shared>)
where
    Si: futures_util::Sink<
            tokio_tungstenite::tungstenite::Message,
            Error = tokio_tungstenite::tungstenite::Error,
        > + Unpin,
{
    let mut end = shared.end.subscribe();
    let send_timeout = shared.config.send_timeout;
    loop {
        let text = tokio::select! {
            biased;
            _ = end.wait_for(Option::is_some) => break,
            text = out.recv() => match text {
                Some(text) => text,
                None => break,
            },
        };
        let by = Instant::now() + send_timeout;
        match codec::send_text(&mut sink, text, by).await {
            Ok(()) => {}
            Err(codec::SendError::TimedOut) => {
                shared.finish(LinkEnd::Send(format!(
                    "the peer did not take a frame within {} s",
                    send_timeout.as_secs()
                )));
                break;
            }
            Err(e) => {
                shared.finish(LinkEnd::Send(e.to_string()));
                break;
            }
        }
    }
    match shared
        .ended()
        .and_then(|why| why.close_frame(&shared.config))
    {
        Some((code, reason)) => codec::close(&mut sink, code, &reason).await,
        None => {
            let _ = tokio::time::timeout(
                codec::CLOSE_TIMEOUT,
                futures_util::SinkExt::close(&mut sink),
            )
            .await;
        }
    }
}
