//! What the tray shows, worked out from the gateway's events alone (no polling): the icon's
//! state and the menu's status line. Pure, so every rule is tested without a display.

use openclaw_protocol::{CheckStatus, HealthReport};

/// The icon's states, worst first in [`TrayModel::icon`]'s rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IconState {
    Healthy,
    Degraded,
    Paused,
    Error,
    /// The agent is answering.
    Working,
}

impl IconState {
    /// The name tests and screen readers see (the tray's tooltip and the icon's file).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Paused => "paused",
            Self::Error => "error",
            Self::Working => "working",
        }
    }
}

/// What the tray knows.
#[derive(Debug, Clone, PartialEq)]
pub struct TrayModel {
    pub health: CheckStatus,
    /// The checks that are not healthy, as `name: detail` (what the status line names).
    pub problems: Vec<String>,
    pub paused: bool,
    pub turns: u64,
    /// The gateway could not start, or stopped: the icon says error whatever health said.
    pub fatal: Option<String>,
}

impl Default for TrayModel {
    fn default() -> Self {
        Self {
            health: CheckStatus::Healthy,
            problems: Vec::new(),
            paused: false,
            turns: 0,
            fatal: None,
        }
    }
}

impl TrayModel {
    /// Takes the checks of a fresh report.
    pub fn set_report(&mut self, report: &HealthReport) {
        self.health = report.status;
        self.problems = report
            .checks
            .iter()
            .filter(|(_, c)| c.status > CheckStatus::Paused)
            .map(|(name, c)| format!("{name}: {}", c.detail))
            .collect();
    }

    /// A real problem outranks work in progress, which outranks the pause.
    pub fn icon(&self) -> IconState {
        if self.fatal.is_some() || self.health == CheckStatus::Unhealthy {
            IconState::Error
        } else if self.health == CheckStatus::Degraded {
            IconState::Degraded
        } else if self.turns > 0 {
            IconState::Working
        } else if self.paused || self.health == CheckStatus::Paused {
            IconState::Paused
        } else {
            IconState::Healthy
        }
    }

    /// The menu's first line: it names problems only; all well reads as such.
    pub fn status_line(&self) -> String {
        if let Some(e) = &self.fatal {
            return shorten(&format!("Not running: {e}"));
        }
        match (self.problems.first(), self.problems.len()) {
            (Some(first), 1) => shorten(&format!("Problem: {first}")),
            (Some(first), n) => shorten(&format!("{n} problems: {first}; …")),
            (None, _) if self.paused => "Paused: not answering".into(),
            (None, _) if self.turns > 0 => "Answering…".into(),
            (None, _) => "OpenClaw is running".into(),
        }
    }
}

/// Menu lines stay short (a menu bar is not a log); the dashboard has the whole text.
fn shorten(text: &str) -> String {
    const MAX: usize = 80;
    if text.chars().count() <= MAX {
        return text.to_owned();
    }
    let cut: String = text.chars().take(MAX - 1).collect();
    format!("{cut}…")
}

/// `123456` as `123 456`, with the time left as `m:ss`: what the pairing line shows.
pub fn pairing_line(code: &str, left: std::time::Duration) -> String {
    let secs = left.as_secs();
    let spaced = if code.len() == 6 {
        format!("{} {}", &code[..3], &code[3..])
    } else {
        code.to_owned()
    };
    format!(
        "Pairing code {spaced} ({}:{:02} left)",
        secs / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use openclaw_protocol::CheckResult;

    fn report(agent: CheckResult, channels: CheckResult) -> HealthReport {
        let text = serde_json::json!({
            "status": "healthy", "timestamp": "2026-12-01T00:00:00Z", "uptime_seconds": 1.0,
            "checks": {
                "gateway": {"status": "healthy", "detail": "ok"},
                "agent": agent, "channels": channels,
                "memory": {"status": "healthy", "detail": "ok"},
                "disk": {"status": "healthy", "detail": "ok"}},
            "metrics": {"memory_usage_mb": 1.0, "active_sessions": 0, "queued_messages": 0,
                "connected_channels": 0, "registered_tools": 0, "messages_processed_24h": 0,
                "tool_calls_24h": 0, "avg_response_time_ms": 0.0, "error_rate_24h": 0.0}
        });
        let mut r: HealthReport = serde_json::from_value(text).unwrap();
        r.status = r.checks.overall();
        r
    }

    #[test]
    fn all_well_is_healthy_and_says_so_without_listing_checks() {
        let mut m = TrayModel::default();
        m.set_report(&report(
            CheckResult::healthy("ok"),
            CheckResult::healthy("ok"),
        ));
        assert_eq!(m.icon(), IconState::Healthy);
        assert_eq!(m.status_line(), "OpenClaw is running");
    }

    #[test]
    fn the_status_line_names_only_the_problems() {
        let mut m = TrayModel::default();
        m.set_report(&report(
            CheckResult::healthy("ok"),
            CheckResult::degraded("telegram disconnected"),
        ));
        assert_eq!(m.icon(), IconState::Degraded);
        assert_eq!(m.status_line(), "Problem: channels: telegram disconnected");
        m.set_report(&report(
            CheckResult::unhealthy("no provider answers"),
            CheckResult::degraded("telegram disconnected"),
        ));
        assert_eq!(m.icon(), IconState::Error);
        assert!(
            m.status_line()
                .starts_with("2 problems: agent: no provider")
        );
    }

    #[test]
    fn paused_shows_until_something_worse_and_work_shows_over_it() {
        let mut m = TrayModel::default();
        let mut paused = CheckResult::healthy("paused by the owner");
        paused.status = CheckStatus::Paused;
        m.set_report(&report(paused.clone(), CheckResult::healthy("ok")));
        m.paused = true;
        assert_eq!(m.icon(), IconState::Paused);
        assert_eq!(m.status_line(), "Paused: not answering");
        assert!(m.problems.is_empty(), "the pause is no problem");
        m.turns = 1;
        assert_eq!(m.icon(), IconState::Working);
        m.turns = 0;
        m.set_report(&report(paused, CheckResult::degraded("slack down")));
        assert_eq!(m.icon(), IconState::Degraded);
        m.fatal = Some("the data dir is in use".into());
        assert_eq!(m.icon(), IconState::Error);
        assert_eq!(m.status_line(), "Not running: the data dir is in use");
    }

    #[test]
    fn long_lines_are_cut_and_codes_are_spaced_with_a_countdown() {
        let m = TrayModel {
            problems: vec!["x".repeat(300)],
            ..Default::default()
        };
        let line = m.status_line();
        assert_eq!(line.chars().count(), 80);
        assert!(line.ends_with('…'));
        assert_eq!(
            pairing_line("123456", std::time::Duration::from_secs(299)),
            "Pairing code 123 456 (4:59 left)"
        );
    }
}
