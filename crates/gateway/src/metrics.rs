//! Prometheus metrics with the guide's families and labels, plus the process metrics the alert
//! rules use. Handles are cheap clones; recording never blocks.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// Buckets of `openclaw_response_time_seconds`, as in the guide.
pub const RESPONSE_TIME_BUCKETS: [f64; 7] = [0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabels {
    pub channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProcessedLabels {
    pub channel: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToolLabels {
    pub tool: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModeLabels {
    pub mode: String,
}

/// Labels `{provider, type}`; `type` is a Rust keyword, so the set is encoded by hand.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct TokenLabels {
    pub provider: String,
    pub kind: String,
}

impl EncodeLabelSet for TokenLabels {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelSetEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeLabel;
        ("provider", self.provider.as_str()).encode(encoder.encode_label())?;
        ("type", self.kind.as_str()).encode(encoder.encode_label())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    pub provider: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailoverLabels {
    pub from: String,
    pub to: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabels {
    pub provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeLabels {
    pub node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeCallLabels {
    pub node: String,
    pub method: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabels {
    pub version: String,
}

/// Modes of `openclaw_active_sessions`: live chat-platform connections, open WebChat sockets,
/// and control clients (CLI, tray app).
pub const SESSION_MODES: [&str; 3] = ["channel", "webchat", "control"];

pub struct Metrics {
    registry: Registry,
    pub messages_received: Family<ChannelLabels, Counter>,
    pub messages_processed: Family<ProcessedLabels, Counter>,
    pub response_time: Family<ChannelLabels, Histogram>,
    pub tool_executions: Family<ToolLabels, Counter>,
    pub active_sessions: Family<ModeLabels, Gauge>,
    pub tokens_used: Family<TokenLabels, Counter>,
    pub connections_rejected: Counter,
    pub auth_failures: Counter,
    pub provider_requests: Family<AttemptLabels, Counter>,
    pub provider_failovers: Family<FailoverLabels, Counter>,
    pub breaker_trips: Family<ProviderLabels, Counter>,
    pub breaker_open: Family<ProviderLabels, Gauge>,
    pub backup_last_success: Gauge<f64, AtomicU64>,
    pub backup_last_failure: Gauge<f64, AtomicU64>,
    pub backup_failures: Counter,
    pub node_connected_gauge: Family<NodeLabels, Gauge>,
    pub node_invocations: Family<NodeCallLabels, Counter>,
    resident_memory: Gauge<f64, AtomicU64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn response_histogram() -> Histogram {
    Histogram::new(RESPONSE_TIME_BUCKETS)
}

impl Metrics {
    /// Families with their known series at zero: one per enabled `channels` and configured
    /// `providers`, so dashboards and alerts see a 0 rather than nothing.
    pub fn new(start_time_unix: f64, channels: &[&str], providers: &[&str]) -> Self {
        let mut registry = Registry::default();
        let messages_received = Family::<ChannelLabels, Counter>::default();
        registry.register(
            "openclaw_messages_received",
            "Total messages received",
            messages_received.clone(),
        );
        let messages_processed = Family::<ProcessedLabels, Counter>::default();
        registry.register(
            "openclaw_messages_processed",
            "Total messages processed",
            messages_processed.clone(),
        );
        let response_time = Family::<ChannelLabels, Histogram>::new_with_constructor(
            response_histogram as fn() -> Histogram,
        );
        registry.register(
            "openclaw_response_time_seconds",
            "Response time in seconds",
            response_time.clone(),
        );
        let tool_executions = Family::<ToolLabels, Counter>::default();
        registry.register(
            "openclaw_tool_executions",
            "Total tool executions",
            tool_executions.clone(),
        );
        let active_sessions = Family::<ModeLabels, Gauge>::default();
        registry.register(
            "openclaw_active_sessions",
            "Currently active sessions",
            active_sessions.clone(),
        );
        // Every mode exists from the start, so an alert on `{mode="channel"} < 1` can fire.
        for mode in SESSION_MODES {
            let _ = active_sessions.get_or_create(&ModeLabels { mode: mode.into() });
        }
        let tokens_used = Family::<TokenLabels, Counter>::default();
        registry.register(
            "openclaw_tokens_used",
            "Total LLM tokens consumed",
            tokens_used.clone(),
        );
        let connections_rejected = Counter::default();
        registry.register(
            "openclaw_gateway_connections_rejected",
            "WebSocket clients turned away at gateway.max_connections",
            connections_rejected.clone(),
        );
        let auth_failures = Counter::default();
        registry.register(
            "openclaw_auth_failures",
            "Requests refused for a missing or wrong gateway token",
            auth_failures.clone(),
        );
        let provider_requests = Family::<AttemptLabels, Counter>::default();
        registry.register(
            "openclaw_provider_requests",
            "LLM provider calls by outcome (ok, rate_limited, overloaded, timeout, …)",
            provider_requests.clone(),
        );
        let provider_failovers = Family::<FailoverLabels, Counter>::default();
        registry.register(
            "openclaw_provider_failovers",
            "Moves from a failing provider to the next one",
            provider_failovers.clone(),
        );
        let breaker_trips = Family::<ProviderLabels, Counter>::default();
        registry.register(
            "openclaw_provider_breaker_trips",
            "Times a provider was put in cooldown after repeated failures",
            breaker_trips.clone(),
        );
        let breaker_open = Family::<ProviderLabels, Gauge>::default();
        registry.register(
            "openclaw_provider_breaker_open",
            "1 while a provider is in cooldown",
            breaker_open.clone(),
        );
        let backup_last_success = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "openclaw_backup_last_success_timestamp_seconds",
            "When the last scheduled backup succeeded (Unix time; 0 = never)",
            backup_last_success.clone(),
        );
        let backup_last_failure = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "openclaw_backup_last_failure_timestamp_seconds",
            "When the last scheduled backup failed (Unix time; 0 = never)",
            backup_last_failure.clone(),
        );
        let backup_failures = Counter::default();
        registry.register(
            "openclaw_backup_failures",
            "Scheduled backups that failed",
            backup_failures.clone(),
        );
        let node_connected_gauge = Family::<NodeLabels, Gauge>::default();
        registry.register(
            "openclaw_node_connected",
            "1 while a paired device node is connected",
            node_connected_gauge.clone(),
        );
        let node_invocations = Family::<NodeCallLabels, Counter>::default();
        registry.register(
            "openclaw_node_invocations",
            "Capability calls to device nodes by node, method and outcome",
            node_invocations.clone(),
        );
        let build_info = Family::<VersionLabels, Gauge>::default();
        build_info
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION").into(),
            })
            .set(1);
        registry.register("openclaw_build_info", "Version of openclaw", build_info);

        let resident_memory = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            resident_memory.clone(),
        );
        let start_time = Gauge::<f64, AtomicU64>::default();
        start_time.set(start_time_unix);
        registry.register(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            start_time,
        );
        for channel in channels {
            let c = || ChannelLabels {
                channel: (*channel).to_owned(),
            };
            let _ = messages_received.get_or_create(&c());
            let _ = response_time.get_or_create(&c());
            for status in ["success", "error"] {
                let _ = messages_processed.get_or_create(&ProcessedLabels {
                    channel: (*channel).to_owned(),
                    status: status.into(),
                });
            }
        }
        for provider in providers {
            let _ = breaker_open.get_or_create(&ProviderLabels {
                provider: (*provider).to_owned(),
            });
            for kind in ["input", "output"] {
                let _ = tokens_used.get_or_create(&TokenLabels {
                    provider: (*provider).to_owned(),
                    kind: kind.into(),
                });
            }
        }
        Self {
            registry,
            messages_received,
            messages_processed,
            response_time,
            tool_executions,
            active_sessions,
            tokens_used,
            connections_rejected,
            auth_failures,
            provider_requests,
            provider_failovers,
            breaker_trips,
            breaker_open,
            backup_last_success,
            backup_last_failure,
            backup_failures,
            node_connected_gauge,
            node_invocations,
            resident_memory,
        }
    }

    pub fn node_connected(&self, node: &str, connected: bool) {
        self.node_connected_gauge
            .get_or_create(&NodeLabels { node: node.into() })
            .set(i64::from(connected));
    }

    pub fn node_invocation(&self, node: &str, method: &str, status: &str) {
        self.node_invocations
            .get_or_create(&NodeCallLabels {
                node: node.into(),
                method: method.into(),
                status: status.into(),
            })
            .inc();
    }

    pub fn provider_attempt(&self, provider: &str, outcome: &str) {
        self.provider_requests
            .get_or_create(&AttemptLabels {
                provider: provider.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    pub fn failover(&self, from: &str, to: &str) {
        self.provider_failovers
            .get_or_create(&FailoverLabels {
                from: from.into(),
                to: to.into(),
            })
            .inc();
    }

    pub fn breaker(&self, provider: &str, open: bool) {
        let labels = ProviderLabels {
            provider: provider.into(),
        };
        if open {
            self.breaker_trips.get_or_create(&labels).inc();
        }
        self.breaker_open
            .get_or_create(&labels)
            .set(i64::from(open));
    }

    pub fn message_received(&self, channel: &str) {
        self.messages_received
            .get_or_create(&ChannelLabels {
                channel: channel.into(),
            })
            .inc();
    }

    pub fn message_processed(&self, channel: &str, status: &str, elapsed: Duration) {
        self.messages_processed
            .get_or_create(&ProcessedLabels {
                channel: channel.into(),
                status: status.into(),
            })
            .inc();
        self.response_time
            .get_or_create(&ChannelLabels {
                channel: channel.into(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Series for each tool at zero, so dashboards see tools before their first call.
    pub fn register_tools(&self, names: &[String]) {
        for tool in names {
            for status in ["success", "error"] {
                let _ = self.tool_executions.get_or_create(&ToolLabels {
                    tool: tool.clone(),
                    status: status.into(),
                });
            }
        }
    }

    pub fn tool_executed(&self, tool: &str, ok: bool) {
        let status = if ok { "success" } else { "error" };
        self.tool_executions
            .get_or_create(&ToolLabels {
                tool: tool.into(),
                status: status.into(),
            })
            .inc();
    }

    pub fn tokens(&self, provider: &str, kind: &str, n: u64) {
        self.tokens_used
            .get_or_create(&TokenLabels {
                provider: provider.into(),
                kind: kind.into(),
            })
            .inc_by(n);
    }

    pub fn session_gauge(&self, mode: &str) -> Gauge {
        self.active_sessions
            .get_or_create(&ModeLabels { mode: mode.into() })
            .clone()
    }

    /// The Prometheus text format 0.0.4 (what `promtool check metrics` and older scrapers
    /// read), with process metrics read now. prometheus-client writes OpenMetrics, which
    /// names a counter family without `_total` in HELP/TYPE while its samples carry it, and
    /// ends with `# EOF`; 0.0.4 names the family as its samples do and has no EOF or UNIT.
    pub fn encode_text(&self) -> String {
        openmetrics_to_text(&self.encode())
    }

    /// The OpenMetrics exposition, with process metrics read now.
    pub fn encode(&self) -> String {
        if let Some(rss) = crate::sys::resident_memory_bytes() {
            self.resident_memory.set(rss as f64);
        }
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Rewrites an OpenMetrics exposition as text format 0.0.4 (see [`Metrics::encode_text`]).
pub fn openmetrics_to_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 64 * counters.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(l) => out.push_str(l.trim_end()),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_names_counter_families_as_their_samples() {
        let m = Metrics::new(1.0, &["webchat"], &["local"]);
        m.message_received("webchat");
        let text = m.encode_text();
        assert!(
            text.contains("# HELP openclaw_messages_received_total Total messages received"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE openclaw_messages_received_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("openclaw_messages_received_total{channel=\"webchat\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE openclaw_response_time_seconds histogram\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE openclaw_active_sessions gauge\n"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
        assert!(
            !text.contains("# TYPE openclaw_messages_received counter"),
            "{text}"
        );
        // OpenMetrics keeps its own spelling.
        let om = m.encode();
        assert!(
            om.contains("# TYPE openclaw_messages_received counter"),
            "{om}"
        );
        assert!(om.trim_end().ends_with("# EOF"), "{om}");
    }

    #[test]
    fn families_and_labels_are_the_guides() {
        let m = Metrics::new(1_700_000_000.0, &["webchat"], &["openai"]);
        m.message_received("telegram");
        m.message_processed("telegram", "success", Duration::from_millis(700));
        m.message_processed("telegram", "error", Duration::from_secs(3));
        m.tool_executed("memory_search", true);
        m.tokens("anthropic", "input", 120);
        let text = m.encode();
        for needle in [
            "openclaw_messages_received_total{channel=\"telegram\"} 1",
            "openclaw_messages_processed_total{channel=\"telegram\",status=\"success\"} 1",
            "openclaw_messages_processed_total{channel=\"telegram\",status=\"error\"} 1",
            "openclaw_response_time_seconds_bucket{le=\"0.5\",channel=\"telegram\"} 0",
            "openclaw_response_time_seconds_bucket{le=\"1.0\",channel=\"telegram\"} 1",
            "openclaw_response_time_seconds_bucket{le=\"5.0\",channel=\"telegram\"} 2",
            "openclaw_response_time_seconds_bucket{le=\"60.0\",channel=\"telegram\"} 2",
            "openclaw_response_time_seconds_count{channel=\"telegram\"} 2",
            "openclaw_tool_executions_total{tool=\"memory_search\",status=\"success\"} 1",
            "openclaw_active_sessions{mode=\"channel\"} 0",
            "openclaw_tokens_used_total{provider=\"anthropic\",type=\"input\"} 120",
            "process_start_time_seconds 1700000000",
            "process_resident_memory_bytes ",
            "openclaw_messages_received_total{channel=\"webchat\"} 0",
            "openclaw_messages_processed_total{channel=\"webchat\",status=\"error\"} 0",
            "openclaw_response_time_seconds_count{channel=\"webchat\"} 0",
            "openclaw_tokens_used_total{provider=\"openai\",type=\"output\"} 0",
            "# TYPE openclaw_response_time_seconds histogram",
        ] {
            assert!(text.contains(needle), "missing `{needle}` in\n{text}");
        }
    }
}
