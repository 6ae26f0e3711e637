//! LLM providers: the Anthropic Messages API and OpenAI Chat Completions (which also serves
//! Ollama, llama.cpp server, vLLM and OpenRouter through `base_url`), both streamed over SSE,
//! and (feature `local-model`) GGUF models run by the llama.cpp linked into this binary.

mod anthropic;
#[cfg(feature = "local-model")]
mod local;
mod local_types;
mod openai;

pub use anthropic::Anthropic;
#[cfg(feature = "local-model")]
pub use local::{Local, WorkerProcess, run_local_models_in, run_model_worker};
pub use local_types::{
    DEFAULT_MODEL_FILE, LocalModelStatus, LocalSettings, ModelState, default_model,
    resolve_model_path,
};
pub use openai::OpenAi;

use crate::error::{ErrorKind, ProviderError, parse_retry_after};
use crate::types::{ChatRequest, Completion, StreamEvent};
use eventsource_stream::{Event, Eventsource};
use futures_util::future::BoxFuture;
use futures_util::{Stream, StreamExt};
use openclaw_config::{NamedProvider, ProviderConfig, ProviderKind};
use std::path::Path;
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
    /// The model's state, for providers that run one in this process.
    fn local_status(&self) -> Option<LocalModelStatus> {
        None
    }
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
    /// Redacted in `Debug` (providers are logged with their settings).
    pub api_key: Option<openclaw_config::Secret>,
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
    from_config_in(providers, None)
}

/// The settings of a `local` provider: config values over the defaults. `models_dir`
/// (`<data dir>/models`) resolves a relative or missing `model_path`; `None` when neither tells
/// where the model is.
pub fn local_settings(c: &ProviderConfig, models_dir: Option<&Path>) -> Option<LocalSettings> {
    let path = resolve_model_path(c.model_path.as_deref(), models_dir)?;
    let mut s = LocalSettings::new(path);
    if let Some(n) = c.context_tokens {
        s.context_tokens = n;
    }
    if let Some(n) = c.threads {
        s.threads = n;
    }
    if let Some(n) = c.max_tokens {
        s.max_tokens = n;
    }
    if let Some(n) = c.idle_unload_seconds {
        s.idle_unload = Duration::from_secs(n);
    }
    Some(s)
}

/// [`from_config`], with the models directory that `local` providers resolve paths against.
pub fn from_config_in(
    providers: &[NamedProvider],
    models_dir: Option<&Path>,
) -> (Vec<Arc<dyn Provider>>, Vec<Unavailable>) {
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
            api_key: c.api_key.clone().filter(|k| !k.is_empty()),
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
            ProviderKind::Local => match local_settings(c, models_dir) {
                None => skipped.push((
                    p.name.clone(),
                    "it has no model_path (and no data dir to look in)".to_owned(),
                )),
                Some(settings) => local_provider(&p.name, settings, &mut built, &mut skipped),
            },
        }
    }
    (built, skipped)
}

#[cfg(feature = "local-model")]
fn local_provider(
    name: &str,
    settings: LocalSettings,
    built: &mut Vec<Arc<dyn Provider>>,
    _skipped: &mut Vec<Unavailable>,
) {
    built.push(Arc::new(Local::new(name, settings)));
}

#[cfg(not(feature = "local-model"))]
fn local_provider(
    name: &str,
    _settings: LocalSettings,
    _built: &mut Vec<Arc<dyn Provider>>,
    skipped: &mut Vec<Unavailable>,
) {
    skipped.push((
        name.to_owned(),
        "this build has no embedded llama.cpp (cargo feature `local-model` of openclaw-agent)"
            .to_owned(),
    ));
}

/// Whether this build can run `local` providers.
pub const LOCAL_MODEL_BUILT: bool = cfg!(feature = "local-model");

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
