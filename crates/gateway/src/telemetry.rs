//! The agent's reports, turned into Prometheus metrics and the store's 24 h counters.

use crate::metrics::Metrics;
use openclaw_agent::Telemetry;
use openclaw_store::Store;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug)]
pub struct GatewayTelemetry {
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) store: Arc<Store>,
    pub(crate) tasks: crate::tasks::Tasks,
    pub(crate) events: crate::events::Events,
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
        self.events.health_may_have_changed();
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
        if tokio::runtime::Handle::try_current().is_ok() {
            self.tasks.spawn_blocking(record);
        } else {
            record();
        }
    }
}
