//! The agent loop: rate limits, sessions, context budget (compaction), model ↔ tool rounds.

use crate::chain::{ChainError, ChainPolicy, ProviderChain};
use crate::provider;
use crate::telemetry::Telemetry;
use crate::tools::{MemorySave, MemorySearch, ToolContext, ToolRegistry, Trust};
use crate::types::{Attachment, ChatRequest, Image, StreamEvent, Turn, Usage};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use openclaw_config::Config;
use openclaw_store::Store;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A message from someone on some channel.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub channel: String,
    /// The sender within the channel (chat id, user id, WebChat session key).
    pub peer: String,
    pub text: String,
    /// Where the message came from when `peer` is the client's own choice (a WebChat session
    /// key): rate limits and the new-conversation cap then hold per source, so a fresh key
    /// per message escapes neither. `None` for channels, whose platform names the sender.
    pub source: Option<String>,
    /// Files sent with it: pictures go to the model as images; other files are named in the
    /// text (this agent reads no documents yet), never silently dropped.
    pub attachments: Vec<Attachment>,
    pub trust: Trust,
}

impl Inbound {
    /// A plain text message from the owner.
    pub fn text(channel: &str, peer: &str, text: &str) -> Self {
        Self {
            channel: channel.to_owned(),
            peer: peer.to_owned(),
            text: text.to_owned(),
            source: None,
            attachments: Vec::new(),
            trust: Trust::Owner,
        }
    }

    /// The turn the model sees, and the text kept in the history (images are not kept: the
    /// history says one was there).
    fn turn(&self) -> (Turn, String) {
        use base64::Engine as _;
        let mut text = self.text.clone();
        let mut images = Vec::new();
        for a in &self.attachments {
            if crate::types::IMAGE_TYPES.contains(&a.media_type.as_str()) {
                images.push(Image {
                    media_type: a.media_type.clone(),
                    data: base64::engine::general_purpose::STANDARD.encode(&a.data),
                });
            } else {
                text.push_str(&format!(
                    "\n[attached file {} ({}, {} bytes): this assistant cannot read it]",
                    a.name.as_deref().unwrap_or("(unnamed)"),
                    a.media_type,
                    a.data.len()
                ));
            }
        }
        if images.is_empty() {
            return (Turn::User(text.clone()), text);
        }
        let kept = format!("{text}\n[{} image(s) attached]", images.len());
        (Turn::UserWithImages { text, images }, kept)
    }
}

/// The key rate limits count under: the source when the client picks its own peer name,
/// else the (channel, peer) sender.
fn limit_key(channel: &str, peer: &str, source: Option<&str>) -> String {
    match source {
        Some(source) => format!("{channel}@{source}"),
        None => format!("{channel}:{peer}"),
    }
}

/// New conversations one source may open per minute (WebChat session keys are the client's
/// choice; each one is a row in the sessions table).
pub const NEW_SESSIONS_PER_MINUTE: u32 = 10;

/// What the agent reports while it works on a message.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEvent {
    /// Text to append to the reply being shown.
    Delta(String),
    /// Forget the partial reply shown so far (a provider failed mid-stream; another restarts).
    Reset,
    /// A tool finished; `images` are the pictures it returned (a screenshot), for the user
    /// to see too.
    Tool {
        name: String,
        ok: bool,
        images: Vec<Image>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// The model's answer.
    Answer,
    /// The sender hit `security.rate_limiting`; the text says when to try again.
    RateLimited,
    /// No provider is configured; the text says what to configure.
    NotConfigured,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub text: String,
    pub kind: ReplyKind,
    pub usage: Usage,
    /// The provider that answered the last round.
    pub provider: Option<String>,
    /// Model calls made (tool rounds + the final answer).
    pub rounds: u32,
}

impl Reply {
    fn notice(kind: ReplyKind, text: String) -> Self {
        Self {
            text,
            kind,
            usage: Usage::default(),
            provider: None,
            rounds: 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    Model(#[from] ChainError),
    #[error("session store: {0}")]
    Store(#[from] openclaw_store::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

struct Limits {
    messages: Option<(DefaultKeyedRateLimiter<String>, u32)>,
    tool_calls: Option<(DefaultKeyedRateLimiter<String>, u32)>,
    new_sessions: Option<(DefaultKeyedRateLimiter<String>, u32)>,
}

impl Limits {
    /// Forgets keys whose buckets have refilled (a key per sender or source would otherwise
    /// stay forever).
    fn prune(&self) {
        for (limiter, _) in [&self.messages, &self.tool_calls, &self.new_sessions]
            .into_iter()
            .flatten()
        {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    fn keys(&self) -> usize {
        [&self.messages, &self.tool_calls, &self.new_sessions]
            .into_iter()
            .flatten()
            .map(|(l, _)| l.len())
            .sum()
    }
}

fn limiter(per_minute: u32) -> Option<(DefaultKeyedRateLimiter<String>, u32)> {
    NonZeroU32::new(per_minute).map(|n| (RateLimiter::keyed(Quota::per_minute(n)), per_minute))
}

/// `Some(wait)` when `key` is over its limit.
fn over_limit(
    l: &Option<(DefaultKeyedRateLimiter<String>, u32)>,
    key: &str,
) -> Option<(Duration, u32)> {
    let (limiter, n) = l.as_ref()?;
    match limiter.check_key(&key.to_owned()) {
        Ok(()) => None,
        Err(not_until) => Some((not_until.wait_time_from(DefaultClock::default().now()), *n)),
    }
}

pub struct Agent {
    config: Arc<Config>,
    chain: ProviderChain,
    tools: ToolRegistry,
    store: Arc<Store>,
    telemetry: Arc<dyn Telemetry>,
    limits: Limits,
    /// One conversation at a time per session; others wait their turn. Keyed by sender, which
    /// clients choose: [`Agent::prune_idle_state`] drops the locks no turn holds.
    session_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Providers named in config that this build cannot run, with why.
    unavailable: Vec<(String, String)>,
    /// Providers that are built but cannot answer as configured (no API key).
    misconfigured: Vec<String>,
    /// With no provider configured and no model in the models dir: where the default model
    /// would be (`/health` shows it as absent).
    absent_local_model: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("chain", &self.chain)
            .field("tools", &self.tools)
            .finish()
    }
}

/// Rough token count: about four characters per token, plus framing.
fn estimate_tokens(text: &str) -> usize {
    text.len() / 4 + 4
}

fn turn_tokens(t: &Turn) -> usize {
    match t {
        Turn::User(s) => estimate_tokens(s),
        // Providers bill a picture at roughly a thousand tokens.
        Turn::UserWithImages { text, images } => estimate_tokens(text) + images.len() * 1000,
        Turn::Assistant { text, tool_calls } => {
            estimate_tokens(text)
                + tool_calls
                    .iter()
                    .map(|c| estimate_tokens(&c.arguments.to_string()) + c.name.len() / 4)
                    .sum::<usize>()
        }
        Turn::ToolResult {
            content, images, ..
        } => estimate_tokens(content) + images.len() * 1000,
    }
}

/// Runs a store call on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> openclaw_store::Result<T> + Send + 'static,
) -> Result<T, AgentError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AgentError::Internal(format!("store task failed: {e}")))?
        .map_err(AgentError::from)
}

const COMPACTION_PROMPT: &str = "You compress chat histories. Summarise the conversation below so the assistant can continue it later: keep names, facts, preferences, decisions and open tasks; drop small talk. Answer with the summary only, in plain sentences.";

impl Agent {
    /// Builds the agent from config: providers in failover order, the built-in tools.
    pub fn new(config: Arc<Config>, store: Arc<Store>, telemetry: Arc<dyn Telemetry>) -> Self {
        Self::with_models_dir(config, store, telemetry, None)
    }

    /// [`Agent::new`], with the directory of local models (`<data dir>/models`): `local`
    /// providers resolve their `model_path` against it, and with no provider configured at all
    /// the default model there (when present) answers.
    pub fn with_models_dir(
        config: Arc<Config>,
        store: Arc<Store>,
        telemetry: Arc<dyn Telemetry>,
        models_dir: Option<&std::path::Path>,
    ) -> Self {
        let mut named = config.providers();
        let mut absent_local_model = None;
        if named.is_empty()
            && let Some(dir) = models_dir
        {
            match provider::default_model(dir) {
                Some(path) => named.push(openclaw_config::NamedProvider {
                    name: "local".into(),
                    kind: openclaw_config::ProviderKind::Local,
                    config: openclaw_config::ProviderConfig {
                        model_path: Some(path.to_string_lossy().into_owned()),
                        ..Default::default()
                    },
                }),
                None => absent_local_model = Some(dir.join(provider::DEFAULT_MODEL_FILE)),
            }
        }
        let (providers, unavailable) = provider::from_config_in(&named, models_dir);
        let misconfigured = named
            .iter()
            .filter(|p| {
                p.kind == openclaw_config::ProviderKind::Anthropic
                    && p.config.api_key.as_ref().is_none_or(|k| k.is_empty())
            })
            .map(|p| format!("{} has no api_key", p.name))
            .collect();
        let failover: HashMap<String, bool> = named
            .iter()
            .map(|p| (p.name.clone(), p.config.failover_enabled.unwrap_or(false)))
            .collect();
        let a = &config.agent;
        let chain = ProviderChain::new(
            providers
                .into_iter()
                .map(|p| {
                    let f = failover.get(p.name()).copied().unwrap_or(false);
                    (p, f)
                })
                .collect(),
            ChainPolicy {
                breaker_threshold: a.breaker_threshold,
                cooldown: Duration::from_secs(a.breaker_cooldown_seconds),
                max_retry_wait: Duration::from_secs(a.max_retry_wait_seconds),
            },
            telemetry.clone(),
        );
        let tools = ToolRegistry::new(Duration::from_secs(a.tool_timeout_seconds));
        tools.register(Arc::new(MemorySave {
            store: store.clone(),
        }));
        tools.register(Arc::new(MemorySearch {
            store: store.clone(),
        }));
        let rl = &config.security.rate_limiting;
        let limits = if rl.enabled {
            Limits {
                messages: limiter(rl.default_messages_per_minute),
                tool_calls: limiter(rl.default_tool_calls_per_minute),
                new_sessions: limiter(NEW_SESSIONS_PER_MINUTE),
            }
        } else {
            Limits {
                messages: None,
                tool_calls: None,
                new_sessions: None,
            }
        };
        Self {
            config,
            chain,
            tools,
            store,
            telemetry,
            limits,
            session_locks: Mutex::new(HashMap::new()),
            unavailable,
            misconfigured,
            absent_local_model,
        }
    }

    /// Whether no provider is configured and the default local model was absent when this
    /// agent was built: a model fetched since answers only from an agent built anew.
    pub fn awaits_default_model(&self) -> bool {
        self.absent_local_model.is_some()
    }

    /// Every local model in the chain, and the default one when it is absent.
    pub fn local_models(&self) -> Vec<provider::LocalModelStatus> {
        let mut out: Vec<_> = self
            .chain
            .providers()
            .filter_map(|p| p.local_status())
            .collect();
        if let Some(path) = &self.absent_local_model {
            let state = if provider::LOCAL_MODEL_BUILT {
                provider::ModelState::Absent
            } else {
                provider::ModelState::Unloaded
            };
            out.push(provider::LocalModelStatus {
                provider: "local".into(),
                path: path.clone(),
                state,
                memory_bytes: 0,
                tools: None,
                load_time: None,
                queued: 0,
                error: (!provider::LOCAL_MODEL_BUILT).then(|| {
                    "this build has no embedded llama.cpp (feature `local-model`)".to_owned()
                }),
            });
        }
        out
    }

    pub fn tools(&self) -> &ToolRegistry {
        &self.tools
    }

    /// Adds a tool (device-node capabilities, sandbox, browser register here), also while
    /// the agent serves turns.
    pub fn register_tool(&self, tool: Arc<dyn crate::tools::Tool>) {
        self.tools.register(tool);
    }

    pub fn chain(&self) -> &ProviderChain {
        &self.chain
    }

    pub fn unavailable_providers(&self) -> &[(String, String)] {
        &self.unavailable
    }

    /// Providers that will fail every call as configured, e.g. `anthropic has no api_key`.
    pub fn misconfigured_providers(&self) -> &[String] {
        &self.misconfigured
    }

    /// Answers one message in its (channel, peer) session, streaming through `on_event`.
    pub async fn handle(
        &self,
        msg: Inbound,
        on_event: &mut (dyn FnMut(AgentEvent) + Send),
    ) -> Result<Reply, AgentError> {
        let key = limit_key(&msg.channel, &msg.peer, msg.source.as_deref());
        if let Some((wait, n)) = over_limit(&self.limits.messages, &key) {
            return Ok(Reply::notice(
                ReplyKind::RateLimited,
                format!(
                    "You're sending messages faster than I can take them (limit: {n} per minute). Try again in {} s.",
                    wait.as_secs().max(1)
                ),
            ));
        }
        if self.chain.is_empty() {
            return Ok(Reply::notice(
                ReplyKind::NotConfigured,
                self.not_configured_text(),
            ));
        }

        if msg.source.is_some() && self.limits.new_sessions.is_some() {
            let (store, channel, peer) =
                (self.store.clone(), msg.channel.clone(), msg.peer.clone());
            let exists = blocking(move || store.session_exists(&channel, &peer)).await?;
            if !exists && let Some((wait, n)) = over_limit(&self.limits.new_sessions, &key) {
                return Ok(Reply::notice(
                    ReplyKind::RateLimited,
                    format!(
                        "Too many new conversations from here (limit: {n} per minute). Keep using one, or try again in {} s.",
                        wait.as_secs().max(1)
                    ),
                ));
            }
        }

        let lock = self.session_lock(&msg.channel, &msg.peer);
        let _turn = lock.lock().await;

        let now = jiff::Timestamp::now().as_second();
        let (turn, kept) = msg.turn();
        let (channel, peer, text) = (msg.channel.clone(), msg.peer.clone(), kept);
        let store = self.store.clone();
        let (session, summary, history) = blocking(move || {
            let session = store.upsert_session(&channel, &peer, now)?;
            let summary = store.session_summary(session)?;
            let history = store.session_context(session)?;
            store.append_message(session, "user", &text, estimate_tokens(&text) as i64, now)?;
            Ok((session, summary, history))
        })
        .await?;

        let mut turns: Vec<(Option<i64>, Turn)> = history
            .into_iter()
            .map(|m| {
                let turn = if m.role == "assistant" {
                    Turn::Assistant {
                        text: m.content,
                        tool_calls: Vec::new(),
                    }
                } else {
                    Turn::User(m.content)
                };
                (Some(m.id), turn)
            })
            .collect();
        turns.push((None, turn));

        let summary = self.compact_if_needed(session, summary, &mut turns).await?;
        let system = self.system_prompt(summary.as_deref(), None);
        let ctx = ToolContext::new(&msg.channel, &msg.peer, msg.source.clone(), msg.trust);
        // Dropped with this turn (the client left): tools still running hear of it.
        let _abandoned = ctx.cancel.clone().drop_guard();
        let turns = turns.into_iter().map(|(_, t)| t).collect();
        let reply = self.run_rounds(system, turns, &ctx, true, on_event).await?;

        if reply.kind == ReplyKind::Answer {
            let store = self.store.clone();
            let text = reply.text.clone();
            let tokens = reply.usage.output_tokens as i64;
            blocking(move || {
                store.append_message(
                    session,
                    "assistant",
                    &text,
                    tokens,
                    jiff::Timestamp::now().as_second(),
                )
            })
            .await?;
        }
        Ok(reply)
    }

    /// One conversation's lock: its turns run one after another.
    fn session_lock(&self, channel: &str, peer: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.session_locks.lock().unwrap_or_else(|p| p.into_inner());
        locks
            .entry(format!("{channel}:{peer}"))
            .or_default()
            .clone()
    }

    /// Keeps a message the assistant sent on its own (a reminder, the owner's notice) in the
    /// conversation's history, so the next turn knows it was said. A turn of the same
    /// conversation in progress finishes first.
    pub async fn note_assistant_message(
        &self,
        channel: &str,
        peer: &str,
        text: &str,
    ) -> Result<(), AgentError> {
        let lock = self.session_lock(channel, peer);
        let _turn = lock.lock().await;
        let store = self.store.clone();
        let (channel, peer, text) = (channel.to_owned(), peer.to_owned(), text.to_owned());
        blocking(move || {
            let now = jiff::Timestamp::now().as_second();
            let session = store.upsert_session(&channel, &peer, now)?;
            store.append_message(
                session,
                "assistant",
                &text,
                estimate_tokens(&text) as i64,
                now,
            )?;
            Ok(())
        })
        .await
    }

    /// Answers a conversation the caller keeps (the OpenAI-compatible endpoint): nothing is
    /// stored, `turns` is the whole history. `allow_reset`: see [`ProviderChain::complete`].
    ///
    /// `source` is where the request came from; the rate limit holds per source when given
    /// (the `user` a client names is its own choice).
    pub async fn respond(
        &self,
        peer: &str,
        source: Option<&str>,
        turns: Vec<Turn>,
        extra_system: Option<&str>,
        allow_reset: bool,
        on_event: &mut (dyn FnMut(AgentEvent) + Send),
    ) -> Result<Reply, AgentError> {
        let key = limit_key("api", peer, source);
        if let Some((wait, n)) = over_limit(&self.limits.messages, &key) {
            return Ok(Reply::notice(
                ReplyKind::RateLimited,
                format!(
                    "Rate limit reached ({n} messages per minute). Try again in {} s.",
                    wait.as_secs().max(1)
                ),
            ));
        }
        if self.chain.is_empty() {
            return Ok(Reply::notice(
                ReplyKind::NotConfigured,
                self.not_configured_text(),
            ));
        }
        let system = self.system_prompt(None, extra_system);
        // The OpenAI-compatible API needs the gateway token: its caller is the owner.
        let ctx = ToolContext::new("api", peer, source.map(str::to_owned), Trust::Owner);
        let _abandoned = ctx.cancel.clone().drop_guard();
        self.run_rounds(system, turns, &ctx, allow_reset, on_event)
            .await
    }

    fn not_configured_text(&self) -> String {
        let mut text = ChainError::NoProviders.to_string();
        if let Some(path) = &self.absent_local_model {
            text.push_str(&format!(
                "; or, to answer offline with no API key, put a GGUF chat model at {} (`openclaw models fetch` downloads the built-in one, `openclaw models add FILE` copies one in)",
                path.display()
            ));
        }
        for (name, why) in &self.unavailable {
            text.push_str(&format!(" (providers.{name} is configured, but {why})"));
        }
        text
    }

    fn system_prompt(&self, summary: Option<&str>, extra: Option<&str>) -> String {
        let a = &self.config.agent;
        let now = jiff::Timestamp::now();
        let local = match now.in_tz(&a.timezone) {
            Ok(z) => format!("{} ({})", z.strftime("%A %Y-%m-%d %H:%M"), a.timezone),
            Err(_) => format!(
                "{} (UTC; the timezone `{}` is unknown)",
                now.strftime("%A %Y-%m-%d %H:%M"),
                a.timezone
            ),
        };
        let mut s = format!(
            "You are {}, a personal AI assistant. Personality: {}.\nThe current local time is {local}.\n",
            a.name, a.personality
        );
        if !self.tools.is_empty() {
            s.push_str("Use memory_save to remember lasting facts the user tells you, and memory_search to recall them.\n");
        }
        if let Some(summary) = summary {
            s.push_str("\nSummary of the earlier conversation:\n");
            s.push_str(summary);
            s.push('\n');
        }
        if let Some(extra) = extra.filter(|e| !e.trim().is_empty()) {
            s.push('\n');
            s.push_str(extra);
            s.push('\n');
        }
        s
    }

    /// When the conversation would not fit `memory.max_context_tokens`, has the model summarise
    /// its oldest turns, stores the summary and marks those turns compacted.
    async fn compact_if_needed(
        &self,
        session: i64,
        summary: Option<String>,
        turns: &mut Vec<(Option<i64>, Turn)>,
    ) -> Result<Option<String>, AgentError> {
        let budget = self.config.memory.max_context_tokens as usize;
        let reserve = (budget / 4).min(4096);
        let fixed = estimate_tokens(&self.system_prompt(summary.as_deref(), None))
            + self
                .tools
                .specs()
                .iter()
                .map(|t| {
                    estimate_tokens(&t.parameters.to_string()) + estimate_tokens(&t.description)
                })
                .sum::<usize>();
        let total =
            |ts: &[(Option<i64>, Turn)]| ts.iter().map(|(_, t)| turn_tokens(t)).sum::<usize>();
        if fixed + total(turns) + reserve <= budget {
            return Ok(summary);
        }
        // Keep the newest turns that fit in half the budget (always the new message).
        let mut keep_from = turns.len() - 1;
        let mut kept = turn_tokens(&turns[keep_from].1);
        while keep_from > 0 && kept + turn_tokens(&turns[keep_from - 1].1) <= budget / 2 {
            keep_from -= 1;
            kept += turn_tokens(&turns[keep_from].1);
        }
        let Some(last_id) = turns[..keep_from].iter().rev().find_map(|(id, _)| *id) else {
            return Ok(summary);
        };
        let mut transcript = String::new();
        if let Some(s) = &summary {
            transcript.push_str("Earlier summary: ");
            transcript.push_str(s);
            transcript.push_str("\n\n");
        }
        for (_, t) in &turns[..keep_from] {
            match t {
                Turn::User(s) => transcript.push_str(&format!("User: {s}\n")),
                Turn::UserWithImages { text, images } => {
                    transcript.push_str(&format!("User: {text} [{} image(s)]\n", images.len()))
                }
                Turn::Assistant { text, .. } => {
                    transcript.push_str(&format!("Assistant: {text}\n"))
                }
                Turn::ToolResult { .. } => {}
            }
        }
        let request = ChatRequest {
            system: COMPACTION_PROMPT.into(),
            turns: vec![Turn::User(transcript)],
            tools: Vec::new(),
            max_tokens: Some((budget / 8).clamp(128, 1024) as u32),
        };
        let completion = self.chain.complete(&request, true, &mut |_| {}).await?;
        let new_summary = completion.text.trim().to_owned();
        let store = self.store.clone();
        let stored = new_summary.clone();
        let n = blocking(move || store.compact_session(session, &stored, last_id)).await?;
        tracing::info!(
            session,
            compacted = n,
            "conversation compacted into a summary"
        );
        turns.drain(..keep_from);
        Ok(Some(new_summary))
    }

    async fn run_rounds(
        &self,
        system: String,
        mut turns: Vec<Turn>,
        ctx: &ToolContext,
        allow_reset: bool,
        on_event: &mut (dyn FnMut(AgentEvent) + Send),
    ) -> Result<Reply, AgentError> {
        let max_rounds = self.config.agent.max_tool_rounds.max(1);
        let mut usage = Usage::default();
        let mut text = String::new();
        let key = limit_key(&ctx.channel, &ctx.peer, ctx.source.as_deref());
        for round in 1..=max_rounds {
            // The last round offers no tools, so the model must answer in words.
            let tools = if round < max_rounds {
                self.tools.specs()
            } else {
                Vec::new()
            };
            let request = ChatRequest {
                system: system.clone(),
                turns: turns.clone(),
                tools,
                max_tokens: None,
            };
            let before = text.len();
            if round > 1 && !text.is_empty() {
                text.push_str("\n\n");
                on_event(AgentEvent::Delta("\n\n".into()));
            }
            let mut round_text = String::new();
            let completion = {
                let mut forward = |ev: StreamEvent| match ev {
                    StreamEvent::TextDelta(d) => {
                        round_text.push_str(&d);
                        on_event(AgentEvent::Delta(d));
                    }
                    StreamEvent::Reset => {
                        round_text.clear();
                        on_event(AgentEvent::Reset);
                    }
                };
                self.chain
                    .complete(&request, allow_reset, &mut forward)
                    .await?
            };
            if round_text.is_empty() && text.len() > before {
                // Nothing said this round: take the separator back out of the final text.
                text.truncate(before);
            }
            text.push_str(&completion.text);
            usage += completion.usage;
            if completion.tool_calls.is_empty() {
                return Ok(Reply {
                    text,
                    kind: ReplyKind::Answer,
                    usage,
                    provider: Some(completion.provider),
                    rounds: round,
                });
            }
            turns.push(Turn::Assistant {
                text: completion.text.clone(),
                tool_calls: completion.tool_calls.clone(),
            });
            for call in completion.tool_calls {
                if let Some((wait, n)) = over_limit(&self.limits.tool_calls, &key) {
                    return Ok(Reply {
                        text: format!(
                            "I've reached the tool-call limit ({n} per minute) and stopped before running `{}`. Try again in {} s.",
                            call.name,
                            wait.as_secs().max(1)
                        ),
                        kind: ReplyKind::RateLimited,
                        usage,
                        provider: Some(completion.provider),
                        rounds: round,
                    });
                }
                let outcome = self
                    .tools
                    .execute(&call.name, call.arguments.clone(), ctx)
                    .await;
                self.telemetry
                    .tool_call(&call.name, !outcome.is_error(), outcome.elapsed);
                on_event(AgentEvent::Tool {
                    name: call.name.clone(),
                    ok: !outcome.is_error(),
                    images: outcome.images.clone(),
                });
                let is_error = outcome.is_error();
                turns.push(Turn::ToolResult {
                    call_id: call.id,
                    name: call.name,
                    content: outcome.content,
                    images: outcome.images,
                    is_error,
                });
            }
        }
        // Unreachable in practice: the last round offers no tools. Say so rather than loop.
        Ok(Reply {
            text: format!("{text}\n\n(stopped after {max_rounds} tool rounds)"),
            kind: ReplyKind::Answer,
            usage,
            provider: None,
            rounds: max_rounds,
        })
    }

    /// Deletes memories older than `memory.prune_after_days`; returns how many went.
    /// Drops state kept per client-chosen key that is no longer needed: rate-limit buckets
    /// that have refilled, and locks of conversations no turn is using. Returns how many
    /// entries are left (rate-limit keys, session locks).
    pub fn prune_idle_state(&self) -> (usize, usize) {
        self.limits.prune();
        let mut locks = self.session_locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        locks.shrink_to_fit();
        (self.limits.keys(), locks.len())
    }

    pub async fn prune_memories(&self) -> Result<usize, AgentError> {
        let days = i64::from(self.config.memory.prune_after_days);
        if days == 0 {
            return Ok(0);
        }
        let before = jiff::Timestamp::now().as_second() - days * 86_400;
        let store = self.store.clone();
        blocking(move || store.prune_memories(before)).await
    }
}
