//! LLM providers: the Anthropic Messages API and OpenAI Chat Completions (which also serves
//! Ollama, llama.cpp server, vLLM and OpenRouter through `base_url`), both streamed over SSE.

mod anthropic;
mod openai;

pub use anthropic::Anthropic;
pub use openai::OpenAi;

use crate::error::{ErrorKind, ProviderError, parse_retry_after};
use crate::types::{ChatRequest, Completion, StreamEvent};
use eventsource_stream::{Event, Eventsource};
use futures_util::future::BoxFuture;
use futures_util::{Stream, StreamExt};
use openclaw_config::{NamedProvider, ProviderKind};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Receives stream events while a provider answers.
pub type EventSink<'a> = &'a mut (dyn FnMut(StreamEvent) + Send);

pub trait Provider: Send + Sync {
    /// The name from config (`anthropic`, `openai`, `ollama`, …).
    fn name(&self) -> &str;
    fn kind(&self) -> ProviderKind;
    fn model(&self) -> &str;
    /// Streams one completion, calling `on_event` as text arrives.
    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
        on_event: EventSink<'a>,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>>;
    /// Checks that the provider answers and accepts the key, without spending tokens (lists its
    /// models).
    fn check_access(&self) -> BoxFuture<'_, Result<(), ProviderError>>;
}

/// `GET url` with the given headers; Ok on 2xx, the classified error otherwise.
pub(crate) async fn get_ok(
    provider: &str,
    url: String,
    headers: Vec<(&'static str, String)>,
) -> Result<(), ProviderError> {
    let client =
        http_client().map_err(|e| ProviderError::new(provider, ErrorKind::Config, None, e))?;
    let mut req = client.get(url).timeout(Duration::from_secs(15));
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = req.send().await.map_err(|e| transport(provider, &e))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let body = resp.text().await.unwrap_or_default();
    Err(ProviderError::from_status(
        provider,
        status.as_u16(),
        None,
        &body,
    ))
}

/// Limits shared by the HTTP providers.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    pub max_tokens: u32,
    /// Whole request, first byte to last.
    pub timeout: Duration,
    /// Longest silence between two stream events.
    pub idle_timeout: Duration,
}

/// A provider named in config that this build cannot run: `(name, why)`.
pub type Unavailable = (String, String);

/// Builds the providers named in config, in failover order, and lists those this build cannot run.
pub fn from_config(providers: &[NamedProvider]) -> (Vec<Arc<dyn Provider>>, Vec<Unavailable>) {
    let mut built: Vec<Arc<dyn Provider>> = Vec::new();
    let mut skipped = Vec::new();
    for p in providers {
        let c = &p.config;
        let timeout = Duration::from_secs(c.timeout_seconds.unwrap_or(120));
        let settings = |default_url: &str, default_model: &str| HttpSettings {
            base_url: c
                .base_url
                .clone()
                .unwrap_or_else(|| default_url.to_owned())
                .trim_end_matches('/')
                .to_owned(),
            model: c.model.clone().unwrap_or_else(|| default_model.to_owned()),
            api_key: c
                .api_key
                .as_ref()
                .map(|k| k.expose().to_owned())
                .filter(|k| !k.is_empty()),
            max_tokens: c.max_tokens.unwrap_or(4096),
            timeout,
            idle_timeout: timeout.min(Duration::from_secs(60)),
        };
        match p.kind {
            ProviderKind::Anthropic => built.push(Arc::new(Anthropic::new(
                &p.name,
                settings("https://api.anthropic.com", "claude-sonnet-4-20250514"),
            ))),
            ProviderKind::Openai => built.push(Arc::new(OpenAi::new(
                &p.name,
                settings("https://api.openai.com/v1", "gpt-4o"),
            ))),
            ProviderKind::Local => skipped.push((
                p.name.clone(),
                "the embedded llama.cpp provider is not part of this build yet".to_owned(),
            )),
        }
    }
    (built, skipped)
}

/// The process-wide HTTP client, built on first use (never at start-up).
pub(crate) fn http_client() -> Result<&'static reqwest::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            // Several crates may race to install the provider; the first one wins, which is fine.
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .user_agent(concat!("openclaw/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| format!("cannot build the HTTP client: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

type EventStream = Pin<Box<dyn Stream<Item = Result<Event, ProviderError>> + Send>>;

/// Sends a streaming request; returns the SSE events, or the classified HTTP error.
pub(crate) async fn send_sse(
    provider: &str,
    request: reqwest::RequestBuilder,
) -> Result<EventStream, ProviderError> {
    let response = request.send().await.map_err(|e| transport(provider, &e))?;
    let status = response.status();
    if !status.is_success() {
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = response.text().await.unwrap_or_default();
        return Err(ProviderError::from_status(
            provider,
            status.as_u16(),
            retry_after,
            &body,
        ));
    }
    let name = provider.to_owned();
    Ok(Box::pin(response.bytes_stream().eventsource().map(
        move |item| {
            item.map_err(|e| {
                ProviderError::new(
                    &name,
                    ErrorKind::Connection,
                    None,
                    format!("the stream broke: {e}"),
                )
            })
        },
    )))
}

/// The next SSE event, or an error if the provider goes quiet for too long.
pub(crate) async fn next_event(
    provider: &str,
    stream: &mut EventStream,
    idle: Duration,
) -> Result<Option<Event>, ProviderError> {
    match tokio::time::timeout(idle, stream.next()).await {
        Err(_) => Err(ProviderError::new(
            provider,
            ErrorKind::Timeout,
            None,
            format!("no data for {} s while streaming", idle.as_secs()),
        )),
        Ok(None) => Ok(None),
        Ok(Some(Err(e))) => Err(e),
        Ok(Some(Ok(event))) => Ok(Some(event)),
    }
}

pub(crate) fn transport(provider: &str, e: &reqwest::Error) -> ProviderError {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Connection
    };
    // reqwest's Display omits the cause ("error sending request"); the chain says why.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    ProviderError::new(provider, kind, None, message)
}

pub(crate) fn malformed(provider: &str, what: impl std::fmt::Display) -> ProviderError {
    ProviderError::new(
        provider,
        ErrorKind::Malformed,
        None,
        format!("malformed response: {what}"),
    )
}
