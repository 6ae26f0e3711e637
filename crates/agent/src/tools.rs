//! Tools the model can call: a registry with per-tool timeouts, and the built-in memory tools.

use crate::types::ToolSpec;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use openclaw_store::Store;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Who a tool is acting for.
#[derive(Debug, Clone)]
pub struct ToolContext {
    pub channel: String,
    pub peer: String,
    /// Where the conversation's messages come from when the peer is the client's own choice
    /// (see `Inbound::source`).
    pub source: Option<String>,
}

pub trait Tool: Send + Sync {
    fn spec(&self) -> ToolSpec;
    /// Overrides `agent.tool_timeout_seconds` for this tool.
    fn timeout(&self) -> Option<Duration> {
        None
    }
    /// Runs the tool. `Err` carries a message for the model (it sees failures and can react).
    fn call<'a>(
        &'a self,
        args: Value,
        ctx: &'a ToolContext,
    ) -> BoxFuture<'a, Result<String, String>>;
}

/// The outcome of one call, as fed back to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutcome {
    pub content: String,
    pub is_error: bool,
    pub elapsed: Duration,
}

#[derive(Clone, Default)]
pub struct ToolRegistry {
    tools: Vec<Arc<dyn Tool>>,
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
            tools: Vec::new(),
            default_timeout,
        }
    }

    /// Adds a tool; a later tool with the same name replaces the earlier one.
    pub fn register(&mut self, tool: Arc<dyn Tool>) {
        let name = tool.spec().name;
        self.tools.retain(|t| t.spec().name != name);
        self.tools.push(tool);
    }

    pub fn len(&self) -> usize {
        self.tools.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    pub fn names(&self) -> Vec<String> {
        self.tools.iter().map(|t| t.spec().name).collect()
    }

    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools.iter().map(|t| t.spec()).collect()
    }

    /// Runs `name` with `args`, within its time limit. Unknown tools and time-outs are errors
    /// the model is told about, not failures of the turn.
    pub async fn execute(&self, name: &str, args: Value, ctx: &ToolContext) -> ToolOutcome {
        let started = Instant::now();
        let Some(tool) = self.tools.iter().find(|t| t.spec().name == name) else {
            return ToolOutcome {
                content: format!(
                    "there is no tool named `{name}`; available: {}",
                    self.names().join(", ")
                ),
                is_error: true,
                elapsed: started.elapsed(),
            };
        };
        let limit = tool.timeout().unwrap_or(self.default_timeout);
        let (content, is_error) = match tokio::time::timeout(limit, tool.call(args, ctx)).await {
            Ok(Ok(out)) => (out, false),
            Ok(Err(e)) => (e, true),
            Err(_) => (
                format!("`{name}` did not finish within {} s", limit.as_secs_f64()),
                true,
            ),
        };
        ToolOutcome {
            content,
            is_error,
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
) -> Result<T, String> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| format!("memory task failed: {e}"))?
        .map_err(|e| format!("could not {what}: {e}"))
}

fn str_arg<'a>(args: &'a Value, key: &str) -> Result<&'a str, String> {
    args.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| format!("missing string argument `{key}`"))
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
    ) -> BoxFuture<'a, Result<String, String>> {
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
            Ok(format!("saved as memory #{id}"))
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
    ) -> BoxFuture<'a, Result<String, String>> {
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
                .join("\n"))
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
        ) -> BoxFuture<'a, Result<String, String>> {
            async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok("late".into())
            }
            .boxed()
        }
    }

    fn ctx() -> ToolContext {
        ToolContext {
            channel: "test".into(),
            peer: "p".into(),
            source: None,
        }
    }

    #[tokio::test]
    async fn timeouts_and_unknown_tools_are_errors_for_the_model() {
        let mut reg = ToolRegistry::new(Duration::from_secs(1));
        reg.register(Arc::new(Slow));
        let out = reg.execute("slow", json!({}), &ctx()).await;
        assert!(
            out.is_error && out.content.contains("did not finish"),
            "{out:?}"
        );
        let out = reg.execute("nope", json!({}), &ctx()).await;
        assert!(
            out.is_error && out.content.contains("available: slow"),
            "{out:?}"
        );
    }

    #[tokio::test]
    async fn memory_tools_round_trip() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let mut reg = ToolRegistry::new(Duration::from_secs(5));
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
        assert!(!saved.is_error, "{saved:?}");
        let found = reg
            .execute("memory_search", json!({"query": "birthday"}), &ctx())
            .await;
        assert!(found.content.contains("3 May"), "{found:?}");
        let bad = reg.execute("memory_save", json!({}), &ctx()).await;
        assert!(bad.is_error && bad.content.contains("content"), "{bad:?}");
    }
}
