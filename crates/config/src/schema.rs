//! The typed configuration, one struct per section of the guide's `config.yaml`.
//!
//! Every field has a default, so an empty file (or no file) is a working configuration, and a
//! key that fails validation can be dropped to keep looking for further problems.

use indexmap::IndexMap;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// A string that must never reach a log line: API keys, bot tokens, the gateway token.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("Secret(<empty>)")
        } else {
            f.write_str("Secret(<redacted>)")
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Providers in the order they are tried when failing over.
    pub providers: Providers,
    pub agent: AgentConfig,
    pub memory: MemoryConfig,
    pub gateway: GatewayConfig,
    pub channels: ChannelsConfig,
    pub security: SecurityConfig,
    pub logging: LoggingConfig,
    pub backup: BackupConfig,
    pub device_nodes: BTreeMap<String, DeviceNodeConfig>,
    pub update: UpdateConfig,
}

/// Where `openclaw update check` looks for releases.
///
/// There is no default feed on purpose: a built-in URL would make whoever controls that name
/// the update source of every install that never chose one.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpdateConfig {
    /// A release in the GitHub releases API format (`…/releases/latest`); unset: no checks.
    pub feed_url: Option<String>,
}

/// Named providers, kept in file order (that order is the failover order).
pub type Providers = IndexMap<String, ProviderConfig>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Anthropic,
    /// OpenAI Chat Completions, and every server that speaks it (Ollama, vLLM, llama.cpp, OpenRouter).
    Openai,
    /// llama.cpp built into the binary (in a child process of the gateway).
    Local,
}

impl ProviderKind {
    /// The kind implied by a provider's name when `type` is not given.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "anthropic" => Some(Self::Anthropic),
            "openai" => Some(Self::Openai),
            "local" => Some(Self::Local),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anthropic => "anthropic",
            Self::Openai => "openai",
            Self::Local => "local",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderConfig {
    /// Wire format; inferred from the provider's name for `anthropic`, `openai` and `local`.
    #[serde(rename = "type")]
    pub kind: Option<ProviderKind>,
    pub api_key: Option<Secret>,
    pub model: Option<String>,
    pub base_url: Option<String>,
    pub max_tokens: Option<u32>,
    /// Take part in failover (`failover` is accepted as the guide spells it for OpenAI).
    #[serde(alias = "failover")]
    pub failover_enabled: Option<bool>,
    pub timeout_seconds: Option<u64>,
    /// `local` only: path of a GGUF model.
    pub model_path: Option<String>,
    pub context_tokens: Option<u32>,
    pub threads: Option<u32>,
    pub idle_unload_seconds: Option<u64>,
}

/// A provider with its name and resolved kind.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedProvider {
    pub name: String,
    pub kind: ProviderKind,
    pub config: ProviderConfig,
}

impl Config {
    /// Providers in failover (config) order with their kinds resolved. [`crate::parse`] has
    /// already refused an entry whose kind cannot be told, so none is skipped here.
    pub fn providers(&self) -> Vec<NamedProvider> {
        self.providers
            .iter()
            .filter_map(|(name, config)| {
                let kind = config.kind.or_else(|| ProviderKind::from_name(name))?;
                Some(NamedProvider {
                    name: name.clone(),
                    kind,
                    config: config.clone(),
                })
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    pub name: String,
    pub personality: String,
    /// IANA zone name, e.g. `America/New_York`.
    pub timezone: String,
    /// Hard cap on model ↔ tool round trips for one message.
    pub max_tool_rounds: u32,
    /// Consecutive failures that put a provider in cooldown (circuit breaker).
    pub breaker_threshold: u32,
    /// How long a provider stays in cooldown before it is tried again.
    pub breaker_cooldown_seconds: u64,
    /// Longest `retry-after` worth waiting for when no other provider is left.
    pub max_retry_wait_seconds: u64,
    /// Time limit of one tool call.
    pub tool_timeout_seconds: u64,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            name: "Claw".into(),
            personality: "helpful, concise, proactive".into(),
            timezone: "UTC".into(),
            max_tool_rounds: 8,
            breaker_threshold: 3,
            breaker_cooldown_seconds: 30,
            max_retry_wait_seconds: 10,
            tool_timeout_seconds: 30,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryConfig {
    /// `false` keeps sessions and memories in RAM only.
    pub persistence: bool,
    /// Directory that holds `openclaw.db`; defaults to the data dir.
    pub storage_path: Option<String>,
    pub max_context_tokens: u32,
    pub prune_after_days: u32,
    pub backup_enabled: bool,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            persistence: true,
            storage_path: None,
            max_context_tokens: 128_000,
            prune_after_days: 90,
            backup_enabled: true,
        }
    }
}

pub const DEFAULT_HOST: &str = "127.0.0.1";
pub const DEFAULT_PORT: u16 = 18789;
pub const DEFAULT_NODE_PORT: u16 = 18790;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    pub host: String,
    pub port: u16,
    /// Concurrent WebSocket clients; more are closed with a reason.
    pub max_connections: u32,
    pub auth: GatewayAuth,
    /// How long SIGTERM waits for open requests and sockets before exiting.
    pub drain_timeout_seconds: u64,
    pub health: HealthThresholds,
    /// Browser origins (`https://chat.example.com`) allowed on the WebSocket and on
    /// state-changing routes besides the gateway's own pages and the tray app.
    pub allowed_origins: Vec<String>,
    /// Host names (`chat.example.com`, as a reverse proxy forwards them) the gateway answers to
    /// besides loopback names and its bind address.
    pub allowed_hosts: Vec<String>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            host: DEFAULT_HOST.into(),
            port: DEFAULT_PORT,
            max_connections: 50,
            auth: GatewayAuth::default(),
            drain_timeout_seconds: 10,
            health: HealthThresholds::default(),
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayAuth {
    /// Bearer token for the control API and WebSocket; required for a non-loopback bind.
    pub token: Option<Secret>,
}

impl GatewayAuth {
    pub fn token(&self) -> Option<&str> {
        self.token
            .as_ref()
            .map(Secret::expose)
            .filter(|t| !t.is_empty())
    }
}

/// Thresholds behind the `disk` and `memory` checks of `/health`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthThresholds {
    /// Below this much free space in the data dir the disk check is degraded.
    pub disk_warn_free_mb: u64,
    /// Below this much it is unhealthy (the gateway can no longer write safely).
    pub disk_critical_free_mb: u64,
    /// Above this resident memory the memory check is degraded (the guide alerts at 1.5 GB).
    pub memory_warn_mb: u64,
}

impl Default for HealthThresholds {
    fn default() -> Self {
        Self {
            disk_warn_free_mb: 1024,
            disk_critical_free_mb: 100,
            memory_warn_mb: 1536,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelsConfig {
    pub whatsapp: WhatsappConfig,
    pub telegram: TelegramConfig,
    pub slack: SlackConfig,
    pub discord: DiscordConfig,
    pub webchat: WebchatConfig,
}

impl ChannelsConfig {
    /// Names of the channels switched on, in a stable order.
    pub fn enabled(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.whatsapp.enabled {
            out.push("whatsapp");
        }
        if self.telegram.enabled {
            out.push("telegram");
        }
        if self.slack.enabled {
            out.push("slack");
        }
        if self.discord.enabled {
            out.push("discord");
        }
        if self.webchat.enabled {
            out.push("webchat");
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WhatsappConfig {
    pub enabled: bool,
    pub reconnect_delay_ms: u64,
    pub max_reconnect_attempts: u32,
    pub access_token: Option<Secret>,
    pub phone_number_id: Option<String>,
    pub verify_token: Option<Secret>,
    pub api_base_url: Option<String>,
}

impl Default for WhatsappConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            reconnect_delay_ms: 5000,
            max_reconnect_attempts: 10,
            access_token: None,
            phone_number_id: None,
            verify_token: None,
            api_base_url: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelegramConfig {
    pub enabled: bool,
    pub token: Option<Secret>,
    pub webhook_url: Option<String>,
    pub api_base_url: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackConfig {
    pub enabled: bool,
    pub bot_token: Option<Secret>,
    pub app_token: Option<Secret>,
    pub api_base_url: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscordConfig {
    pub enabled: bool,
    pub bot_token: Option<Secret>,
    pub api_base_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebchatConfig {
    pub enabled: bool,
}

impl Default for WebchatConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    pub pairing: PairingConfig,
    pub rate_limiting: RateLimitConfig,
    pub sandbox: SandboxConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PairingMode {
    /// Unknown senders get a code the owner must approve.
    Challenge,
    /// Only senders already approved may talk; no codes are handed out.
    Allowlist,
    /// Anyone may talk (not for production).
    Open,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PairingConfig {
    pub enabled: bool,
    pub mode: PairingMode,
    pub code_length: u8,
    pub code_expiry_seconds: u64,
}

impl Default for PairingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            mode: PairingMode::Challenge,
            code_length: 6,
            code_expiry_seconds: 300,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    pub enabled: bool,
    pub default_messages_per_minute: u32,
    pub default_tool_calls_per_minute: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            default_messages_per_minute: 20,
            default_tool_calls_per_minute: 10,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    pub enabled: bool,
    pub image: String,
    pub timeout_ms: u64,
    pub memory_mb: u64,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            image: "openclaw/sandbox:latest".into(),
            timeout_ms: 30_000,
            memory_mb: 256,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "trace" => Some(Self::Trace),
            "debug" => Some(Self::Debug),
            "info" => Some(Self::Info),
            "warn" | "warning" => Some(Self::Warn),
            "error" => Some(Self::Error),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    pub level: LogLevel,
    /// Log file; defaults to `<data dir>/logs/openclaw.log`.
    pub file: Option<String>,
    pub max_size_mb: u64,
    pub max_files: u32,
    pub audit: AuditConfig,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            level: LogLevel::Info,
            file: None,
            max_size_mb: 100,
            max_files: 10,
            audit: AuditConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    pub enabled: bool,
    /// Defaults to `<data dir>/logs/audit.log`.
    pub file: Option<String>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            file: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupPart {
    Memory,
    Sessions,
    Config,
    ChannelAuth,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    pub enabled: bool,
    /// Defaults to `<data dir>/backups`.
    pub path: Option<String>,
    /// Five-field cron expression in the agent's timezone.
    pub schedule: String,
    pub max_backups: u32,
    pub include: Vec<BackupPart>,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            path: None,
            schedule: "0 2 * * *".into(),
            max_backups: 30,
            include: vec![
                BackupPart::Memory,
                BackupPart::Sessions,
                BackupPart::Config,
                BackupPart::ChannelAuth,
            ],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceNodeConfig {
    pub tailscale_ip: std::net::IpAddr,
    #[serde(default = "default_node_port")]
    pub port: u16,
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Lower numbers are preferred.
    #[serde(default = "default_node_priority")]
    pub priority: u32,
}

impl DeviceNodeConfig {
    /// `ip:port` as the gateway dials it (IPv6 in brackets).
    pub fn address(&self) -> String {
        std::net::SocketAddr::new(self.tailscale_ip, self.port).to_string()
    }
}

fn default_node_port() -> u16 {
    DEFAULT_NODE_PORT
}

fn default_node_priority() -> u32 {
    100
}
