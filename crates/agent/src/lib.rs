//! The assistant's brain: LLM providers (Anthropic Messages, OpenAI Chat Completions and every
//! server that speaks it), failover with circuit breakers, the tool loop, sessions with a context
//! budget, and long-term memory tools.
//!
//! This is the only crate that talks to LLM providers. It keeps conversations through the store
//! and reports what it does through [`Telemetry`]; it opens no listening sockets, knows nothing
//! of HTTP routes, chat platforms or Prometheus, and never logs API keys.

pub mod chain;
pub mod error;
pub mod provider;
mod runtime;
pub mod telemetry;
pub mod tools;
pub mod types;

pub use chain::{ChainError, ChainPolicy, ProviderChain};
pub use error::{ErrorKind, ProviderError};
pub use runtime::{Agent, AgentError, AgentEvent, Inbound, Reply, ReplyKind};
pub use telemetry::{NoTelemetry, Telemetry};
pub use tools::{Tool, ToolContext, ToolError, ToolErrorCode, ToolOutput, Trust};
pub use types::{
    Attachment, ChatRequest, Completion, Image, StopReason, StreamEvent, ToolCall, ToolSpec, Turn,
    Usage,
};
