//! The health report: five checks and the guide's metrics, computed from live state.

use crate::{GatewayState, sys};
use openclaw_agent::provider::{LocalModelStatus, ModelState};
use openclaw_protocol::health::Checks;
use openclaw_protocol::{CheckResult, HealthMetrics, HealthReport, LocalModelHealth};
use std::path::Path;
use std::sync::atomic::Ordering;

const MB: f64 = 1024.0 * 1024.0;
/// A conversation counts as active if it saw a message within this window.
const ACTIVE_SESSION_WINDOW_SECS: i64 = 30 * 60;

/// What the store says, gathered in one blocking hop.
struct StoreFacts {
    stats: openclaw_store::WindowStats,
    active_sessions: u64,
}

/// How much a report may show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// For a client with the token: file paths and addresses included.
    Full,
    /// For anyone (`/health` is open): the same checks and figures, with the data dir, the
    /// database and model files, node addresses and the bind address replaced by names.
    Public,
}

/// How paths and addresses read in a report of a given [`Detail`]. Public reports are built
/// without them (nothing to scrub afterwards); only free text that may quote a path (a
/// model's or a backup's error) is scrubbed.
struct View<'a> {
    detail: Detail,
    data_dir: &'a Path,
}

impl View<'_> {
    fn public(&self) -> bool {
        self.detail == Detail::Public
    }

    /// A file or directory: as is, or `<data dir>/…` (its file name when elsewhere).
    fn path(&self, p: &Path) -> String {
        if !self.public() {
            return p.display().to_string();
        }
        match p.strip_prefix(self.data_dir) {
            Ok(rest) if rest.as_os_str().is_empty() => "<data dir>".into(),
            Ok(rest) => format!("<data dir>/{}", rest.display()),
            Err(_) => p
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| "<file>".into()),
        }
    }

    /// Text that may quote `paths` or the data dir.
    fn text(&self, text: &str, paths: &[&Path]) -> String {
        if !self.public() {
            return text.to_owned();
        }
        let mut out = text.to_owned();
        for p in paths {
            let shown = p.display().to_string();
            if !shown.is_empty() && out.contains(&shown) {
                out = out.replace(&shown, &self.path(p));
            }
        }
        let dir = self.data_dir.display().to_string();
        if !dir.is_empty() && out.contains(&dir) {
            out = out.replace(&dir, "<data dir>");
        }
        out
    }
}

pub async fn build_report(state: &GatewayState, detail: Detail) -> HealthReport {
    let now = sys::unix_now();
    let store = state.store.clone();
    let facts = state
        .tasks
        .spawn_blocking(move || -> Result<StoreFacts, String> {
            let stats = store.stats_24h(now).map_err(|e| e.to_string())?;
            let active_sessions = store
                .active_sessions_since(now - ACTIVE_SESSION_WINDOW_SECS)
                .map_err(|e| e.to_string())?;
            Ok(StoreFacts {
                stats,
                active_sessions,
            })
        })
        .await
        .unwrap_or_else(|e| Err(format!("store task failed: {e}")));

    let rss = sys::resident_memory_bytes();
    let channels = state.channels.read().map(|c| c.clone()).unwrap_or_default();
    let connected_channels = channels.iter().filter(|c| c.connected).count() as u64;

    // Read once: each local model's status looks at its file.
    let locals = state.agent.local_models();
    let view = View {
        detail,
        data_dir: &state.data_dir,
    };
    let checks = Checks {
        gateway: gateway_check(state, &view),
        agent: paused_or(state, agent_check(state, &locals, &view)),
        channels: channels_check(&channels),
        memory: memory_check(state, &facts, rss, &view),
        disk: disk_check(state, &view),
        backup: state
            .backup_status
            .read()
            .ok()
            .and_then(|s| s.as_ref().map(crate::backup_schedule::check))
            .map(|mut c| {
                if view.public() {
                    c.detail = view.text(&c.detail, &[]);
                }
                c
            }),
        nodes: nodes_check(state, &view),
    };
    let (stats, active_sessions) = match &facts {
        Ok(f) => (f.stats, f.active_sessions),
        Err(_) => (openclaw_store::WindowStats::default(), 0),
    };
    HealthReport {
        status: checks.overall(),
        timestamp: jiff::Timestamp::now()
            .round(jiff::Unit::Millisecond)
            .unwrap_or_else(|_| jiff::Timestamp::now())
            .to_string(),
        uptime_seconds: round3(state.uptime().as_secs_f64()),
        checks,
        metrics: HealthMetrics {
            memory_usage_mb: round3(rss.unwrap_or(0) as f64 / MB),
            active_sessions,
            queued_messages: state.queued_messages.load(Ordering::Relaxed),
            connected_channels,
            registered_tools: state.agent.tools().len() as u64,
            messages_processed_24h: stats.messages_processed,
            tool_calls_24h: stats.tool_calls,
            avg_response_time_ms: round3(stats.avg_response_ms()),
            error_rate_24h: round3(stats.error_rate()),
        },
        local_models: locals
            .into_iter()
            .map(|m| LocalModelHealth {
                path: view.path(&m.path),
                error: m.error.as_deref().map(|e| view.text(e, &[&m.path])),
                provider: m.provider,
                state: m.state.as_str().to_owned(),
                memory_mb: round3(m.memory_bytes as f64 / MB),
                tools: m.tools,
                load_seconds: m.load_time.map(|d| round3(d.as_secs_f64())),
                queued: m.queued as u64,
            })
            .collect(),
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn gateway_check(state: &GatewayState, view: &View<'_>) -> CheckResult {
    let open = state.connections.load(Ordering::Relaxed);
    let max = u64::from(state.config.gateway.max_connections);
    let connecting = state.pre_auth.len();
    let detail = format!(
        "listening{}; {open}/{max} WebSocket clients{}",
        if view.public() {
            String::new()
        } else {
            format!(" on {}", state.local_addr)
        },
        if connecting > 0 {
            format!(" ({connecting} connecting)")
        } else {
            String::new()
        }
    );
    if state.is_draining() {
        CheckResult::unhealthy(format!("shutting down; {detail}"))
    } else if open >= max {
        CheckResult::degraded(format!(
            "{detail}: at gateway.max_connections, new clients are turned away"
        ))
    } else {
        CheckResult::healthy(detail)
    }
}

/// The agent check while the owner has paused the assistant: `paused`, unless the agent has a
/// real problem too, which outranks it (the detail names both).
fn paused_or(state: &GatewayState, check: CheckResult) -> CheckResult {
    if !state.pause.is_paused() {
        return check;
    }
    let status = check.status.max(openclaw_protocol::CheckStatus::Paused);
    CheckResult {
        status,
        detail: format!(
            "paused by the owner: answering no messages, calling no device nodes; {}",
            check.detail
        ),
    }
}

fn agent_check(state: &GatewayState, locals: &[LocalModelStatus], view: &View<'_>) -> CheckResult {
    let chain = state.agent.chain().states();
    let unavailable = state.agent.unavailable_providers();
    if chain.is_empty() && unavailable.is_empty() {
        let local_hint = locals
            .first()
            .map(|m| {
                format!(
                    ", or put a GGUF chat model at {} (`openclaw models fetch` or the app's setup downloads the built-in one)",
                    view.path(&m.path)
                )
            })
            .unwrap_or_default();
        return CheckResult::degraded(format!(
            "no LLM provider configured: add providers.anthropic.api_key or providers.openai.api_key \
             (or an OpenAI-compatible base_url) to config.yaml{local_hint}"
        ));
    }
    let mut problems: Vec<String> = unavailable
        .iter()
        .map(|(name, why)| format!("{name}: {why}"))
        .collect();
    problems.extend(state.agent.misconfigured_providers().iter().cloned());
    for s in &chain {
        if let Some(wait) = s.cooling_down_for {
            problems.push(format!(
                "{} cooling down for {} s after {} failures",
                s.name,
                wait.as_secs().max(1),
                s.consecutive_failures
            ));
        }
    }
    for m in locals {
        match m.state {
            ModelState::Absent => problems.push(format!(
                "{}: no model file at {}",
                m.provider,
                view.path(&m.path)
            )),
            ModelState::Failed => problems.push(format!(
                "{}: {}",
                m.provider,
                view.text(
                    m.error.as_deref().unwrap_or("the model failed to load"),
                    &[&m.path]
                )
            )),
            _ => {}
        }
    }
    let names: Vec<String> = chain
        .iter()
        .map(|s| {
            let local = locals.iter().find(|m| m.provider == s.name).map(|m| {
                let tools = match m.tools {
                    Some(true) => ", tools on",
                    Some(false) => ", tools off: its chat template has no tool support",
                    None => "",
                };
                format!(", {}{tools}", m.state.as_str())
            });
            format!("{} ({}{})", s.name, s.model, local.unwrap_or_default())
        })
        .collect();
    let listed = if names.is_empty() {
        "none usable".to_owned()
    } else {
        names.join(" → ")
    };
    if problems.is_empty() {
        CheckResult::healthy(format!("providers in failover order: {listed}"))
    } else {
        CheckResult::degraded(format!(
            "providers in failover order: {listed}; {}",
            problems.join("; ")
        ))
    }
}

fn nodes_check(state: &GatewayState, view: &View<'_>) -> Option<CheckResult> {
    let nodes = state.nodes.statuses();
    if nodes.is_empty() {
        return None;
    }
    let up: Vec<String> = nodes
        .iter()
        .filter(|n| n.connected)
        .map(|n| format!("{} ({})", n.name, n.capabilities.join(", ")))
        .collect();
    let down: Vec<String> = nodes
        .iter()
        .filter(|n| !n.connected)
        .map(|n| {
            if view.public() {
                // The detail may name the address too (how to pair it).
                format!("{}: {}", n.name, n.detail.replace(&n.address, "<address>"))
            } else {
                format!("{} at {}: {}", n.name, n.address, n.detail)
            }
        })
        .collect();
    let summary = format!("{}/{} device nodes connected", up.len(), nodes.len());
    Some(if down.is_empty() {
        CheckResult::healthy(format!("{summary}: {}", up.join("; ")))
    } else {
        CheckResult::degraded(format!("{summary}; {}", down.join("; ")))
    })
}

fn channels_check(channels: &[crate::ChannelState]) -> CheckResult {
    if channels.is_empty() {
        return CheckResult::healthy("no chat channels enabled");
    }
    let down: Vec<String> = channels
        .iter()
        .filter(|c| !c.connected)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    let up = channels.len() - down.len();
    if down.is_empty() {
        CheckResult::healthy(format!("{up}/{} channels connected", channels.len()))
    } else {
        CheckResult::degraded(format!(
            "{up}/{} channels connected; {}",
            channels.len(),
            down.join("; ")
        ))
    }
}

fn memory_check(
    state: &GatewayState,
    facts: &Result<StoreFacts, String>,
    rss: Option<u64>,
    view: &View<'_>,
) -> CheckResult {
    if let Err(e) = facts {
        return CheckResult::unhealthy(format!("memory store does not answer: {e}"));
    }
    let where_ = match state.store.path() {
        Some(p) => format!("store {}", view.path(p)),
        None => "store in RAM (memory.persistence: false)".to_owned(),
    };
    let warn_mb = state.config.gateway.health.memory_warn_mb;
    match rss {
        Some(rss) if rss as f64 / MB > warn_mb as f64 => CheckResult::degraded(format!(
            "{where_} answers; resident memory {:.0} MB is above gateway.health.memory_warn_mb ({warn_mb} MB)",
            rss as f64 / MB
        )),
        Some(rss) => CheckResult::healthy(format!(
            "{where_} answers; resident memory {:.1} MB",
            rss as f64 / MB
        )),
        None => CheckResult::healthy(format!("{where_} answers")),
    }
}

fn disk_check(state: &GatewayState, view: &View<'_>) -> CheckResult {
    let t = &state.config.gateway.health;
    match openclaw_fs::free_space(&state.data_dir) {
        Err(e) => CheckResult::unhealthy(format!(
            "cannot read free space of {}: {e}",
            view.path(&state.data_dir)
        )),
        Ok(space) => {
            let free_mb = space.bytes / (1024 * 1024);
            let detail = format!(
                "{free_mb} MB free of {} MB in {}",
                space.total / (1024 * 1024),
                view.path(&state.data_dir)
            );
            if free_mb < t.disk_critical_free_mb {
                CheckResult::unhealthy(format!(
                    "{detail}: below gateway.health.disk_critical_free_mb ({} MB); free space now",
                    t.disk_critical_free_mb
                ))
            } else if free_mb < t.disk_warn_free_mb {
                CheckResult::degraded(format!(
                    "{detail}: below gateway.health.disk_warn_free_mb ({} MB)",
                    t.disk_warn_free_mb
                ))
            } else {
                CheckResult::healthy(detail)
            }
        }
    }
}
