//! The `/api/status` document behind `openclaw status`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub version: String,
    pub pid: u32,
    pub uptime_seconds: f64,
    pub bind: String,
    pub data_dir: String,
    /// Path of `openclaw.db`, or `:memory:` when `memory.persistence` is off.
    pub database: String,
    pub database_size_bytes: u64,
    pub sessions: u64,
    pub memories: u64,
    pub nodes: u64,
    pub connections: u64,
    pub max_connections: u64,
    /// Channels enabled in config, with whether each is connected.
    pub channels: Vec<ChannelStatus>,
    /// The protections in force in this process (what `openclaw doctor` checks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<SecurityStatus>,
}

/// What the running gateway enforces, as opposed to what a config file says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecurityStatus {
    /// Where the token guarding `/api`, `/ws` and `/v1` came from.
    pub token: TokenOrigin,
    /// Messages and tool calls per sender per minute; `None` when rate limiting is off.
    pub rate_limits: Option<RateLimits>,
    /// Whether security events go to the audit log.
    pub audit_log: bool,
    /// Tools that run code (a sandbox applies to these); none in this build.
    pub code_execution_tools: Vec<String>,
    /// Chat channels this build can run (DM pairing applies to their senders).
    pub channel_drivers: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenOrigin {
    /// `gateway.auth.token` in config.
    Configured,
    /// Made by the gateway on first run, kept in its data dir.
    Generated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimits {
    pub messages_per_minute: u32,
    pub tool_calls_per_minute: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelStatus {
    pub name: String,
    pub connected: bool,
    pub detail: String,
}
