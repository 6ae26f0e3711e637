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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelStatus {
    pub name: String,
    pub connected: bool,
    pub detail: String,
}
