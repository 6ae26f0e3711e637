//! The `/health` document, shaped as the deployment guide's `HealthReport`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    // Order matters: the worst check decides the report's status. Paused is the owner's
    // choice, not a fault: any real problem outranks it.
    Healthy,
    /// The owner paused the assistant: it answers no messages and calls no device nodes.
    Paused,
    Degraded,
    Unhealthy,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Paused => "paused",
            Self::Degraded => "degraded",
            Self::Unhealthy => "unhealthy",
        }
    }
}

impl std::fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub status: CheckStatus,
    pub detail: String,
}

impl CheckResult {
    pub fn healthy(detail: impl Into<String>) -> Self {
        Self {
            status: CheckStatus::Healthy,
            detail: detail.into(),
        }
    }
    pub fn degraded(detail: impl Into<String>) -> Self {
        Self {
            status: CheckStatus::Degraded,
            detail: detail.into(),
        }
    }
    pub fn unhealthy(detail: impl Into<String>) -> Self {
        Self {
            status: CheckStatus::Unhealthy,
            detail: detail.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checks {
    pub gateway: CheckResult,
    pub agent: CheckResult,
    pub channels: CheckResult,
    pub memory: CheckResult,
    pub disk: CheckResult,
    /// Scheduled backups, when `backup.enabled` (beyond the guide's five checks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<CheckResult>,
    /// Paired device nodes, when there are any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<CheckResult>,
}

impl Checks {
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &CheckResult)> {
        [
            ("gateway", Some(&self.gateway)),
            ("agent", Some(&self.agent)),
            ("channels", Some(&self.channels)),
            ("memory", Some(&self.memory)),
            ("disk", Some(&self.disk)),
            ("backup", self.backup.as_ref()),
            ("nodes", self.nodes.as_ref()),
        ]
        .into_iter()
        .filter_map(|(name, check)| check.map(|c| (name, c)))
    }

    /// The report's status is that of its worst check.
    pub fn overall(&self) -> CheckStatus {
        self.iter()
            .map(|(_, c)| c.status)
            .max()
            .unwrap_or(CheckStatus::Healthy)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthMetrics {
    pub memory_usage_mb: f64,
    pub active_sessions: u64,
    pub queued_messages: u64,
    pub connected_channels: u64,
    pub registered_tools: u64,
    pub messages_processed_24h: u64,
    pub tool_calls_24h: u64,
    pub avg_response_time_ms: f64,
    pub error_rate_24h: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    pub status: CheckStatus,
    /// RFC 3339, UTC.
    pub timestamp: String,
    pub uptime_seconds: f64,
    pub checks: Checks,
    pub metrics: HealthMetrics,
    /// Models run by `local` providers (beyond the guide's shape; left out when
    /// there are none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub local_models: Vec<LocalModelHealth>,
}

/// One local model: where it is and whether it is in memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalModelHealth {
    /// The provider's name in config (`local` for the default model).
    pub provider: String,
    pub path: String,
    /// `absent` (no file), `unloaded` (on disk; loads on the next request), `loading`, `ready`,
    /// or `failed` (the last load failed; `error` says why).
    pub state: String,
    /// Memory held by the loaded weights, 0 unless ready.
    pub memory_mb: f64,
    /// Whether the model is offered tools: `false` when its chat template has no tool support;
    /// absent until the model has been loaded once (the template is inside the file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_seconds: Option<f64>,
    /// Requests waiting behind the one being generated.
    pub queued: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_check_wins() {
        let mut checks = Checks {
            gateway: CheckResult::healthy("ok"),
            agent: CheckResult::healthy("ok"),
            channels: CheckResult::healthy("ok"),
            memory: CheckResult::healthy("ok"),
            disk: CheckResult::healthy("ok"),
            backup: None,
            nodes: None,
        };
        assert_eq!(checks.overall(), CheckStatus::Healthy);
        checks.agent = CheckResult::degraded("no provider");
        assert_eq!(checks.overall(), CheckStatus::Degraded);
        checks.disk = CheckResult::unhealthy("full");
        assert_eq!(checks.overall(), CheckStatus::Unhealthy);
    }

    #[test]
    fn status_serialises_lowercase() {
        assert_eq!(
            serde_json::to_string(&CheckStatus::Degraded).unwrap(),
            "\"degraded\""
        );
    }
}
