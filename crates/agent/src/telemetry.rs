//! What the agent reports about itself. The gateway turns these into Prometheus metrics and
//! store counters; the agent knows nothing of either.

use std::time::Duration;

pub trait Telemetry: Send + Sync {
    /// One call to a provider and how it ended (`ok` or an error label).
    fn provider_attempt(&self, _provider: &str, _outcome: &str) {}
    /// The chain moved from one provider to the next.
    fn failover(&self, _from: &str, _to: &str) {}
    /// A provider's circuit breaker opened (`open`) or closed again (`!open`).
    fn breaker(&self, _provider: &str, _open: bool) {}
    fn tokens(&self, _provider: &str, _input: u64, _output: u64) {}
    fn tool_call(&self, _tool: &str, _ok: bool, _elapsed: Duration) {}
}

/// Reports nothing.
#[derive(Debug, Default)]
pub struct NoTelemetry;

impl Telemetry for NoTelemetry {}
