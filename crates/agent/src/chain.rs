//! Failover across providers in config order, with a circuit breaker per provider.
//!
//! A retryable failure (429, 529/5xx, timeout, dropped connection, malformed stream) moves on to
//! the next provider when the failing one has failover enabled; a provider that keeps failing is
//! put in cooldown and skipped until the cooldown ends (then one trial call decides). A 429's
//! `retry-after` is honoured: the provider is not called again before it. Auth and bad-request
//! errors are surfaced at once: retrying cannot fix them.

use crate::error::{ErrorKind, ProviderError};
use crate::provider::Provider;
use crate::telemetry::Telemetry;
use crate::types::{ChatRequest, Completion, StreamEvent};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct ChainPolicy {
    pub breaker_threshold: u32,
    pub cooldown: Duration,
    /// Longest retry-after worth sleeping for when no other provider is left.
    pub max_retry_wait: Duration,
}

impl Default for ChainPolicy {
    fn default() -> Self {
        Self {
            breaker_threshold: 3,
            cooldown: Duration::from_secs(30),
            max_retry_wait: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Default)]
struct Breaker {
    consecutive_failures: u32,
    /// Not to be called before this instant.
    blocked_until: Option<Instant>,
    open: bool,
}

struct Entry {
    provider: Arc<dyn Provider>,
    /// Whether a failure of this provider may move on to the next one.
    failover: bool,
    breaker: Mutex<Breaker>,
}

/// Why the chain produced no completion.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ChainError {
    #[error(
        "no LLM provider is configured: add providers.anthropic.api_key (or providers.openai.api_key, \
         or an OpenAI-compatible base_url such as Ollama's) to config.yaml and restart the gateway"
    )]
    NoProviders,
    #[error("{0}")]
    Failed(ProviderError),
    #[error("every provider is cooling down after repeated failures; the next retry is in {} s", .0.as_secs().max(1))]
    AllCoolingDown(Duration),
}

impl ChainError {
    /// The provider error behind this, if one.
    pub fn provider_error(&self) -> Option<&ProviderError> {
        match self {
            Self::Failed(e) => Some(e),
            _ => None,
        }
    }
}

pub struct ProviderChain {
    entries: Vec<Entry>,
    policy: ChainPolicy,
    telemetry: Arc<dyn Telemetry>,
}

impl std::fmt::Debug for ProviderChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderChain")
            .field(
                "providers",
                &self
                    .entries
                    .iter()
                    .map(|e| e.provider.name().to_owned())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A provider's breaker as `/health` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderState {
    pub name: String,
    pub model: String,
    pub cooling_down_for: Option<Duration>,
    pub consecutive_failures: u32,
}

impl ProviderChain {
    /// `providers` in config order, each with its failover flag.
    pub fn new(
        providers: Vec<(Arc<dyn Provider>, bool)>,
        policy: ChainPolicy,
        telemetry: Arc<dyn Telemetry>,
    ) -> Self {
        Self {
            entries: providers
                .into_iter()
                .map(|(provider, failover)| Entry {
                    provider,
                    failover,
                    breaker: Mutex::new(Breaker::default()),
                })
                .collect(),
            policy,
            telemetry,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The providers in failover order.
    pub fn providers(&self) -> impl Iterator<Item = &Arc<dyn Provider>> {
        self.entries.iter().map(|e| &e.provider)
    }

    pub fn states(&self) -> Vec<ProviderState> {
        let now = Instant::now();
        self.entries
            .iter()
            .map(|e| {
                let b = lock(&e.breaker);
                ProviderState {
                    name: e.provider.name().to_owned(),
                    model: e.provider.model().to_owned(),
                    cooling_down_for: b.blocked_until.filter(|u| *u > now).map(|u| u - now),
                    consecutive_failures: b.consecutive_failures,
                }
            })
            .collect()
    }

    /// Runs `request` on the first provider that answers. `allow_reset`: whether a provider that
    /// fails after streaming some text may be replaced (the consumer gets [`StreamEvent::Reset`]);
    /// consumers that cannot take text back pass false and get the error instead.
    pub async fn complete(
        &self,
        request: &ChatRequest,
        allow_reset: bool,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<Completion, ChainError> {
        if self.entries.is_empty() {
            return Err(ChainError::NoProviders);
        }
        let mut last_error: Option<ProviderError> = None;
        let mut previous: Option<&str> = None;
        let mut i = 0;
        while i < self.entries.len() {
            let entry = &self.entries[i];
            let name = entry.provider.name();
            if let Some(wait) = self.blocked_for(entry) {
                let later_candidate = self.entries[i + 1..]
                    .iter()
                    .any(|e| self.blocked_for(e).is_none());
                let may_move_on = entry.failover || previous.is_some();
                if later_candidate && may_move_on {
                    tracing::debug!(provider = name, "skipping provider in cooldown");
                    i += 1;
                    continue;
                }
                if wait <= self.policy.max_retry_wait {
                    tracing::info!(
                        provider = name,
                        wait_ms = wait.as_millis() as u64,
                        "waiting out retry-after"
                    );
                    tokio::time::sleep(wait).await;
                } else {
                    return Err(match last_error {
                        Some(e) => ChainError::Failed(e),
                        None => ChainError::AllCoolingDown(wait),
                    });
                }
            }
            if let Some(prev) = previous {
                self.telemetry.failover(prev, name);
                tracing::warn!(from = prev, to = name, "failing over");
            }
            let mut streamed = false;
            let result = {
                let mut forward = |ev: StreamEvent| {
                    streamed = true;
                    on_event(ev);
                };
                entry.provider.complete(request, &mut forward).await
            };
            match result {
                Ok(completion) => {
                    self.telemetry.provider_attempt(name, "ok");
                    self.telemetry.tokens(
                        name,
                        completion.usage.input_tokens,
                        completion.usage.output_tokens,
                    );
                    self.record_success(entry);
                    return Ok(completion);
                }
                Err(e) => {
                    self.telemetry.provider_attempt(name, e.kind.label());
                    tracing::warn!(provider = name, error = %e, "provider call failed");
                    if !e.is_retryable() {
                        return Err(ChainError::Failed(e));
                    }
                    self.record_failure(entry, &e);
                    if streamed && !allow_reset {
                        return Err(ChainError::Failed(e));
                    }
                    let next_exists = i + 1 < self.entries.len();
                    if !entry.failover || !next_exists {
                        // Nowhere to go: one more try here if the provider asked for a short wait.
                        if let ErrorKind::RateLimited {
                            retry_after: Some(wait),
                        } = e.kind
                            && wait <= self.policy.max_retry_wait
                            && last_error.as_ref().is_none_or(|l| l.provider != e.provider)
                        {
                            if streamed {
                                on_event(StreamEvent::Reset);
                            }
                            last_error = Some(e);
                            continue;
                        }
                        return Err(ChainError::Failed(e));
                    }
                    if streamed {
                        on_event(StreamEvent::Reset);
                    }
                    previous = Some(name);
                    last_error = Some(e);
                    i += 1;
                }
            }
        }
        Err(match last_error {
            Some(e) => ChainError::Failed(e),
            None => ChainError::NoProviders,
        })
    }

    fn blocked_for(&self, entry: &Entry) -> Option<Duration> {
        let b = lock(&entry.breaker);
        let now = Instant::now();
        b.blocked_until.filter(|u| *u > now).map(|u| u - now)
    }

    fn record_success(&self, entry: &Entry) {
        let mut b = lock(&entry.breaker);
        let was_open = b.open;
        *b = Breaker::default();
        drop(b);
        if was_open {
            tracing::info!(
                provider = entry.provider.name(),
                "provider recovered; breaker closed"
            );
            self.telemetry.breaker(entry.provider.name(), false);
        }
    }

    fn record_failure(&self, entry: &Entry, e: &ProviderError) {
        let mut b = lock(&entry.breaker);
        b.consecutive_failures += 1;
        let now = Instant::now();
        if let ErrorKind::RateLimited {
            retry_after: Some(wait),
        } = e.kind
        {
            b.blocked_until = Some(b.blocked_until.map_or(now + wait, |u| u.max(now + wait)));
        }
        if b.consecutive_failures >= self.policy.breaker_threshold {
            let until = now + self.policy.cooldown;
            b.blocked_until = Some(b.blocked_until.map_or(until, |u| u.max(until)));
            if !b.open {
                b.open = true;
                drop(b);
                tracing::warn!(
                    provider = entry.provider.name(),
                    cooldown_s = self.policy.cooldown.as_secs(),
                    "breaker opened: provider keeps failing"
                );
                self.telemetry.breaker(entry.provider.name(), true);
            }
        }
    }
}

fn lock(m: &Mutex<Breaker>) -> std::sync::MutexGuard<'_, Breaker> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
