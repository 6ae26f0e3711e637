//! The agent's reports, turned into Prometheus metrics and the store's 24 h counters.

use crate::metrics::Metrics;
use openclaw_agent::Telemetry;
use openclaw_store::Store;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug)]
pub struct GatewayTelemetry {
    pub metrics: Arc<Metrics>,
    pub store: Arc<Store>,
}

impl Telemetry for GatewayTelemetry {
    fn provider_attempt(&self, provider: &str, outcome: &str) {
        self.metrics.provider_attempt(provider, outcome);
    }

    fn failover(&self, from: &str, to: &str) {
        self.metrics.failover(from, to);
    }

    fn breaker(&self, provider: &str, open: bool) {
        self.metrics.breaker(provider, open);
    }

    fn tokens(&self, provider: &str, input: u64, output: u64) {
        self.metrics.tokens(provider, "input", input);
        self.metrics.tokens(provider, "output", output);
    }

    fn tool_call(&self, tool: &str, ok: bool, _elapsed: Duration) {
        self.metrics.tool_executed(tool, ok);
        let store = self.store.clone();
        let now = crate::sys::unix_now();
        let record = move || {
            if let Err(e) = store.add_counter(openclaw_store::counter::TOOL_CALLS, 1.0, now) {
                tracing::warn!(error = %e, "could not record tool counter");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(record);
            }
            Err(_) => record(),
        }
    }
}
