//! Scheduled backups: `backup.schedule` (cron, in the agent's timezone) runs `backup create` and
//! retention inside the gateway; the outcome shows in `/health` and in metrics, and survives
//! restarts (kept in the store's metadata).

use crate::{GatewayEvent, GatewayState, stopped};
use openclaw_backup::{Include, Layout};
use openclaw_protocol::CheckResult;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What a scheduled backup writes, and how many archives it keeps.
#[derive(Debug, Clone)]
pub struct BackupPlan {
    pub layout: Layout,
    pub include: Include,
    pub keep: usize,
}

/// The last outcomes, as `/health` reports them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BackupStatus {
    pub last_success: Option<(i64, PathBuf)>,
    pub last_failure: Option<(i64, String)>,
    /// RFC 3339 in the agent's timezone.
    pub next: Option<String>,
}

const META_KEY: &str = "backup.status";

pub(crate) fn check(status: &BackupStatus) -> CheckResult {
    let when = |t: i64| {
        jiff::Timestamp::from_second(t)
            .map(|t| t.to_string())
            .unwrap_or_default()
    };
    let next = status
        .next
        .as_deref()
        .map(|n| format!("; next at {n}"))
        .unwrap_or_default();
    match (&status.last_success, &status.last_failure) {
        (_, Some((failed, error)))
            if status
                .last_success
                .as_ref()
                .is_none_or(|(ok, _)| ok < failed) =>
        {
            CheckResult::degraded(format!(
                "the last scheduled backup failed at {}: {error}{next}",
                when(*failed)
            ))
        }
        (Some((ok, path)), _) => CheckResult::healthy(format!(
            "last backup at {}: {}{next}",
            when(*ok),
            path.display()
        )),
        (None, _) => CheckResult::healthy(format!("no scheduled backup has run yet{next}")),
    }
}

fn publish(state: &GatewayState, status: &BackupStatus) {
    if let Some((t, _)) = &status.last_success {
        state.metrics.backup_last_success.set(*t as f64);
    }
    if let Some((t, _)) = &status.last_failure {
        state.metrics.backup_last_failure.set(*t as f64);
    }
    if let Ok(mut s) = state.backup_status.write() {
        *s = Some(status.clone());
    }
    state.events.health_may_have_changed();
}

pub(crate) async fn run(state: Arc<GatewayState>, plan: BackupPlan) {
    let schedule_text = state.config.backup.schedule.clone();
    let cron = match openclaw_config::parse_schedule(&schedule_text) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "backup.schedule is invalid; scheduled backups are off");
            return;
        }
    };
    let tz = jiff::tz::TimeZone::get(&state.config.agent.timezone).unwrap_or_else(|_| {
        tracing::warn!(timezone = %state.config.agent.timezone, "unknown timezone; backups are scheduled in UTC");
        jiff::tz::TimeZone::UTC
    });
    // What earlier runs of the gateway recorded.
    let store = state.store.clone();
    let mut status: BackupStatus = state
        .tasks
        .spawn_blocking(move || store.meta(META_KEY))
        .await
        .ok()
        .and_then(Result::ok)
        .flatten()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    let mut stop = state.stop.clone();
    loop {
        let now = jiff::Timestamp::now().to_zoned(tz.clone());
        let next = match cron.find_next_occurrence(&now, false) {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "no next time for backup.schedule; scheduled backups are off");
                return;
            }
        };
        status.next = Some(next.to_string());
        publish(&state, &status);
        let wait = next
            .timestamp()
            .duration_since(now.timestamp())
            .try_into()
            .unwrap_or(Duration::ZERO);
        tokio::select! {
            () = stopped(&mut stop) => return,
            () = tokio::time::sleep(wait) => {}
        }
        let plan = plan.clone();
        let result = state
            .tasks
            .spawn_blocking(move || {
                let created = openclaw_backup::create(
                    &plan.layout,
                    plan.include,
                    env!("CARGO_PKG_VERSION"),
                    None,
                    &mut |_, _, _| {},
                )?;
                openclaw_backup::prune(&plan.layout.backups, plan.keep)?;
                Ok::<_, openclaw_backup::Error>(created)
            })
            .await;
        let at = jiff::Timestamp::now().as_second();
        match result {
            Ok(Ok(created)) => {
                tracing::info!(path = %created.path.display(), bytes = created.size, "scheduled backup written");
                status.last_success = Some((at, created.path));
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "scheduled backup failed");
                state.metrics.backup_failures.inc();
                status.last_failure = Some((at, e.to_string()));
                state.events.send(GatewayEvent::BackupFailed {
                    error: e.to_string(),
                });
            }
            Err(e) => {
                state.metrics.backup_failures.inc();
                let error = format!("backup task failed: {e}");
                status.last_failure = Some((at, error.clone()));
                state.events.send(GatewayEvent::BackupFailed { error });
            }
        }
        publish(&state, &status);
        if let Ok(text) = serde_json::to_string(&status) {
            let store = state.store.clone();
            let _ = state
                .tasks
                .spawn_blocking(move || store.set_meta(META_KEY, &text))
                .await;
        }
    }
}
