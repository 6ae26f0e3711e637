//! The `openclaw status` document, for `/api/status`, the WebSocket's `status` method and
//! the embedder's handle.

use crate::GatewayState;
use openclaw_protocol::StatusReport;
use openclaw_protocol::status::{ChannelStatus, RateLimits, SecurityStatus, TokenOrigin};
use std::sync::atomic::Ordering;

/// The `openclaw status` document, shared by HTTP and the WebSocket `status` method.
pub async fn status_report(state: &GatewayState) -> Result<StatusReport, String> {
    let store = state.store.clone();
    let totals = state
        .tasks
        .spawn_blocking(move || store.totals())
        .await
        .map_err(|e| format!("store task failed: {e}"))?
        .map_err(|e| e.to_string())?;
    let channels = state
        .channels
        .read()
        .map(|c| {
            c.iter()
                .map(|c| ChannelStatus {
                    name: c.name.clone(),
                    connected: c.connected,
                    detail: c.detail.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(StatusReport {
        version: env!("CARGO_PKG_VERSION").into(),
        pid: std::process::id(),
        uptime_seconds: state.uptime().as_secs_f64(),
        bind: state.local_addr.to_string(),
        data_dir: state.data_dir.display().to_string(),
        database: state
            .store
            .path()
            .map_or(":memory:".into(), |p| p.display().to_string()),
        database_size_bytes: totals.size_bytes,
        sessions: totals.sessions,
        memories: totals.memories,
        nodes: totals.nodes,
        connections: state.connections.load(Ordering::Relaxed),
        max_connections: u64::from(state.config.gateway.max_connections),
        channels,
        security: Some(security_status(state)),
    })
}

/// The protections this process enforces (not what a config file on disk says).
fn security_status(state: &GatewayState) -> SecurityStatus {
    let rl = &state.config.security.rate_limiting;
    SecurityStatus {
        token: match state.access.source() {
            crate::access::TokenSource::Configured => TokenOrigin::Configured,
            crate::access::TokenSource::Generated(_) => TokenOrigin::Generated,
        },
        rate_limits: (rl.enabled
            && (rl.default_messages_per_minute > 0 || rl.default_tool_calls_per_minute > 0))
            .then_some(RateLimits {
                messages_per_minute: rl.default_messages_per_minute,
                tool_calls_per_minute: rl.default_tool_calls_per_minute,
            }),
        audit_log: state.audit.path().is_some(),
        // No tool of this build runs code (the sandbox and its tools come in a later issue):
        // this is a fact of the build, not of the config.
        code_execution_tools: Vec::new(),
        // No chat-platform driver is built in yet (WebChat is served, not paired).
        channel_drivers: Vec::new(),
    }
}
