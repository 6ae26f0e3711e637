//! Tools the model can call: the [`Tool`] trait (typed errors, results of text and images, a
//! context that says whose conversation it is, how far it is trusted, and when to give up), a
//! registry the host fills (memory here; node capabilities, and next sandbox and browser, from
//! the gateway) with per-tool timeouts, and the built-in memory tools.

use crate::types::{Image, ToolSpec};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use openclaw_store::Store;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How far the sender of a conversation is trusted; tools that act on the owner's devices or
/// run code decide by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// The gateway's owner: WebChat and the APIs, which need the gateway token.
    Owner,
    /// Someone the owner paired on a chat channel.
    PairedSender,
    /// A group chat: anyone in it may be speaking.
    Group,
}

/// Whose turn a tool runs in.
#[derive(Debug, Clone)]
pub struct ToolContext {
    pub channel: String,
    pub peer: String,
    /// The conversation, `channel:peer`.
    pub session: String,
    /// Where the conversation's messages come from when the peer is the client's own choice
    /// (see `Inbound::source`).
    pub source: Option<String>,
    pub trust: Trust,
    /// Cancelled when the turn is abandoned (the client left, the gateway stops): long work
    /// should stop then, not only when its future is dropped.
    pub cancel: CancellationToken,
}

impl ToolContext {
    pub fn new(channel: &str, peer: &str, source: Option<String>, trust: Trust) -> Self {
        Self {
            channel: channel.to_owned(),
            peer: peer.to_owned(),
            session: format!("{channel}:{peer}"),
            source,
            trust,
            cancel: CancellationToken::new(),
        }
    }
}

/// What a tool answers: text for the model, and pictures it may see.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ToolOutput {
    pub text: String,
    pub images: Vec<Image>,
}

impl From<String> for ToolOutput {
    fn from(text: String) -> Self {
        Self {
            text,
            images: Vec::new(),
        }
    }
}

impl From<&str> for ToolOutput {
    fn from(text: &str) -> Self {
        text.to_owned().into()
    }
}

/// Why a tool call failed: told to the model (it can react) and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolErrorCode {
    /// The arguments do not fit the tool's schema.
    InvalidArguments,
    /// No such tool.
    UnknownTool,
    /// What the tool needs is not there now (no node connected, no camera).
    Unavailable,
    /// Not for this conversation's trust level.
    Denied,
    TimedOut,
    /// The tool ran and failed.
    Failed,
}

impl ToolErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidArguments => "invalid_arguments",
            Self::UnknownTool => "unknown_tool",
            Self::Unavailable => "unavailable",
            Self::Denied => "denied",
            Self::TimedOut => "timed_out",
            Self::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ToolError {
    pub code: ToolErrorCode,
    pub message: String,
}

impl ToolError {
    pub fn new(code: ToolErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ToolErrorCode::InvalidArguments, message)
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(ToolErrorCode::Failed, message)
    }
}

pub trait Tool: Send + Sync {
    fn spec(&self) -> ToolSpec;
    /// Overrides `agent.tool_timeout_seconds` for this tool.
    fn timeout(&self) -> Option<Duration> {
        None
    }
    /// Runs the tool. An error is shown to the model, which sees failures and can react.
    fn call<'a>(
        &'a self,
        args: Value,
        ctx: &'a ToolContext,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>>;
}

/// The outcome of one call, as fed back to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutcome {
    pub content: String,
    pub images: Vec<Image>,
    /// Why it failed; `None` when it did not.
    pub error: Option<ToolErrorCode>,
    pub elapsed: Duration,
}

impl ToolOutcome {
    pub fn is_error(&self) -> bool {
        self.error.is_some()
    }
}

/// The tools a model may call. Tools can be added while turns run (a device node paired
/// while the gateway runs brings its capabilities): a turn sees the list as it was when it
/// asked for it.
#[derive(Default)]
pub struct ToolRegistry {
    tools: std::sync::RwLock<Vec<Arc<dyn Tool>>>,
    default_timeout: Duration,
}

impl std::fmt::Debug for ToolRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl ToolRegistry {
    pub fn new(default_timeout: Duration) -> Self {
        Self {
            tools: std::sync::RwLock::new(Vec::new()),
            default_timeout,
        }
    }

    /// The tools now (a poisoned lock still holds a whole list: registering cannot panic
    /// half-way).
    fn list(&self) -> Vec<Arc<dyn Tool>> {
        self.tools.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Adds a tool; a later tool with the same name replaces the earlier one.
    pub fn register(&self, tool: Arc<dyn Tool>) {
        let name = tool.spec().name;
        let mut tools = self.tools.write().unwrap_or_else(|p| p.into_inner());
        tools.retain(|t| t.spec().name != name);
        tools.push(tool);
    }

    /// Whether a tool named `name` is registered.
    pub fn has(&self, name: &str) -> bool {
        self.list().iter().any(|t| t.spec().name == name)
    }

    pub fn len(&self) -> usize {
        self.tools.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn names(&self) -> Vec<String> {
        self.list().iter().map(|t| t.spec().name).collect()
    }

    pub fn specs(&self) -> Vec<ToolSpec> {
        self.list().iter().map(|t| t.spec()).collect()
    }

    /// Runs `name` with `args`, within its time limit. Unknown tools and time-outs are errors
    /// the model is told about, not failures of the turn.
    pub async fn execute(&self, name: &str, args: Value, ctx: &ToolContext) -> ToolOutcome {
        let started = Instant::now();
        let Some(tool) = self.list().into_iter().find(|t| t.spec().name == name) else {
            return ToolOutcome {
                content: format!(
                    "there is no tool named `{name}`; available: {}",
                    self.names().join(", ")
                ),
                images: Vec::new(),
                error: Some(ToolErrorCode::UnknownTool),
                elapsed: started.elapsed(),
            };
        };
        let limit = tool.timeout().unwrap_or(self.default_timeout);
        let result = tokio::select! {
            r = tokio::time::timeout(limit, tool.call(args, ctx)) => r,
            () = ctx.cancel.cancelled() => Ok(Err(ToolError::new(
                ToolErrorCode::Failed,
                "the turn was abandoned",
            ))),
        };
        let (content, images, error) = match result {
            Ok(Ok(out)) => (out.text, out.images, None),
            Ok(Err(e)) => (e.message, Vec::new(), Some(e.code)),
            Err(_) => (
                format!("`{name}` did not finish within {} s", limit.as_secs_f64()),
                Vec::new(),
                Some(ToolErrorCode::TimedOut),
            ),
        };
        ToolOutcome {
            content,
            images,
            error,
            elapsed: started.elapsed(),
        }
    }
}

fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Runs a store call on the blocking pool; errors become messages for the model.
async fn on_store<T: Send + 'static>(
    store: &Arc<Store>,
    what: &str,
    f: impl FnOnce(&Store) -> openclaw_store::Result<T> + Send + 'static,
) -> Result<T, ToolError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| ToolError::failed(format!("memory task failed: {e}")))?
        .map_err(|e| ToolError::failed(format!("could not {what}: {e}")))
}

fn str_arg<'a>(args: &'a Value, key: &str) -> Result<&'a str, ToolError> {
    args.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ToolError::invalid(format!("missing string argument `{key}`")))
}

/// `memory_save`: keeps a note in long-term memory (SQLite FTS5).
pub struct MemorySave {
    pub store: Arc<Store>,
}

impl Tool for MemorySave {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "memory_save".into(),
            description: "Save a fact or note to long-term memory so it can be recalled in later conversations.".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "content": {"type": "string", "description": "The note to remember, self-contained."},
                    "tags": {"type": "string", "description": "Optional space-separated tags."}
                },
                "required": ["content"]
            }),
        }
    }

    fn call<'a>(
        &'a self,
        args: Value,
        _ctx: &'a ToolContext,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        async move {
            let content = str_arg(&args, "content")?.to_owned();
            let tags = args
                .get("tags")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let id = on_store(&self.store, "save", move |s| {
                s.save_memory(&content, &tags, unix_now())
            })
            .await?;
            Ok(format!("saved as memory #{id}").into())
        }
        .boxed()
    }
}

/// `memory_search`: full-text search over long-term memory.
pub struct MemorySearch {
    pub store: Arc<Store>,
}

impl Tool for MemorySearch {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "memory_search".into(),
            description: "Search long-term memory for notes saved earlier. Every word of the query must match.".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "Words to look for."},
                    "limit": {"type": "integer", "description": "Most results to return (default 5)."}
                },
                "required": ["query"]
            }),
        }
    }

    fn call<'a>(
        &'a self,
        args: Value,
        _ctx: &'a ToolContext,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        async move {
            let query = str_arg(&args, "query")?.to_owned();
            let limit = args
                .get("limit")
                .and_then(Value::as_u64)
                .unwrap_or(5)
                .clamp(1, 50) as usize;
            let hits = on_store(&self.store, "search", move |s| {
                s.search_memories(&query, limit)
            })
            .await?;
            if hits.is_empty() {
                return Ok("no matching memories".into());
            }
            Ok(hits
                .iter()
                .map(|m| {
                    let when = jiff::Timestamp::from_second(m.created_at)
                        .map(|t| t.to_string())
                        .unwrap_or_default();
                    format!("#{} ({when}) {}", m.id, m.content)
                })
                .collect::<Vec<_>>()
                .join("\n")
                .into())
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Slow;
    impl Tool for Slow {
        fn spec(&self) -> ToolSpec {
            ToolSpec {
                name: "slow".into(),
                description: "sleeps".into(),
                parameters: json!({"type": "object"}),
            }
        }
        fn timeout(&self) -> Option<Duration> {
            Some(Duration::from_millis(50))
        }
        fn call<'a>(
            &'a self,
            _: Value,
            _: &'a ToolContext,
        ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
            async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok("late".into())
            }
            .boxed()
        }
    }

    fn ctx() -> ToolContext {
        ToolContext::new("test", "p", None, Trust::Owner)
    }

    #[tokio::test]
    async fn timeouts_and_unknown_tools_are_errors_for_the_model() {
        let reg = ToolRegistry::new(Duration::from_secs(1));
        reg.register(Arc::new(Slow));
        let out = reg.execute("slow", json!({}), &ctx()).await;
        assert_eq!(out.error, Some(ToolErrorCode::TimedOut), "{out:?}");
        assert!(out.content.contains("did not finish"), "{out:?}");
        let out = reg.execute("nope", json!({}), &ctx()).await;
        assert_eq!(out.error, Some(ToolErrorCode::UnknownTool), "{out:?}");
        assert!(out.content.contains("available: slow"), "{out:?}");
        // An abandoned turn stops its tool at once.
        let abandoned = ctx();
        abandoned.cancel.cancel();
        let reg = ToolRegistry::new(Duration::from_secs(30));
        reg.register(Arc::new(Slow));
        let started = Instant::now();
        let out = reg.execute("slow", json!({}), &abandoned).await;
        assert_eq!(out.error, Some(ToolErrorCode::Failed), "{out:?}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn memory_tools_round_trip() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let reg = ToolRegistry::new(Duration::from_secs(5));
        reg.register(Arc::new(MemorySave {
            store: store.clone(),
        }));
        reg.register(Arc::new(MemorySearch { store }));
        let saved = reg
            .execute(
                "memory_save",
                json!({"content": "Bob's birthday is 3 May"}),
                &ctx(),
            )
            .await;
        assert!(!saved.is_error(), "{saved:?}");
        let found = reg
            .execute("memory_search", json!({"query": "birthday"}), &ctx())
            .await;
        assert!(found.content.contains("3 May"), "{found:?}");
        let bad = reg.execute("memory_save", json!({}), &ctx()).await;
        assert!(bad.is_error() && bad.content.contains("content"), "{bad:?}");
    }
}
