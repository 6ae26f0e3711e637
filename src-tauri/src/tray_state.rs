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

/// A channel's name as a notification's title starts it (`telegram` → `Telegram`).
pub fn channel_title(channel: &str) -> String {
    match channel {
        "whatsapp" => "WhatsApp".to_owned(),
        "webchat" => "WebChat".to_owned(),
        _ => {
            let mut chars = channel.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => String::new(),
            }
        }
    }
}

/// A chat sender waiting for the owner: one line (a submenu with Approve and Reject) in the
/// tray's menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalLine {
    pub channel: String,
    pub code: String,
    /// The sender as the owner knows them: the platform's name with its id, or the id.
    pub sender: String,
}

impl ApprovalLine {
    pub fn new(channel: &str, sender: &str, name: Option<&str>, code: &str) -> Self {
        let sender = match name {
            Some(name) if !name.trim().is_empty() => format!("{name} ({sender})"),
            _ => sender.to_owned(),
        };
        Self {
            channel: channel.to_owned(),
            code: code.to_owned(),
            sender,
        }
    }

    /// The line: who, where, and the code they were given.
    pub fn text(&self) -> String {
        let code = if self.code.len() == 6 {
            format!("{} {}", &self.code[..3], &self.code[3..])
        } else {
            self.code.clone()
        };
        shorten(&format!(
            "Approve {} on {}? (code {code})",
            self.sender, self.channel
        ))
    }

    /// The menu id of the submenu, or of its Approve / Reject item.
    pub fn id(&self, action: Option<ApprovalAction>) -> String {
        let what = match action {
            None => "line",
            Some(ApprovalAction::Approve) => "approve",
            Some(ApprovalAction::Reject) => "reject",
        };
        format!("{APPROVAL_ID}/{what}/{}/{}", self.channel, self.code)
    }
}

/// What the owner did with a pending sender from the menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalAction {
    Approve,
    Reject,
}

const APPROVAL_ID: &str = "approval";

/// The action, channel and code a menu id of [`ApprovalLine::id`] names.
pub fn parse_approval_id(id: &str) -> Option<(ApprovalAction, String, String)> {
    let rest = id.strip_prefix(APPROVAL_ID)?.strip_prefix('/')?;
    let (action, rest) = rest.split_once('/')?;
    let action = match action {
        "approve" => ApprovalAction::Approve,
        "reject" => ApprovalAction::Reject,
        _ => return None,
    };
    // Codes are digits; a channel name has no `/` of its own, but split at the last one.
    let (channel, code) = rest.rsplit_once('/')?;
    (!channel.is_empty() && !code.is_empty()).then(|| (action, channel.to_owned(), code.to_owned()))
}

/// The lines in `now` that were not in `before`: senders the owner has not been told of.
pub fn new_approvals<'a>(
    before: &[ApprovalLine],
    now: &'a [ApprovalLine],
) -> Vec<&'a ApprovalLine> {
    now.iter()
        .filter(|l| {
            !before
                .iter()
                .any(|b| b.channel == l.channel && b.code == l.code)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use openclaw_protocol::CheckResult;

    #[test]
    fn channel_titles() {
        assert_eq!(channel_title("telegram"), "Telegram");
        assert_eq!(channel_title("whatsapp"), "WhatsApp");
        assert_eq!(channel_title(""), "");
    }

    #[test]
    fn approval_lines_name_the_sender_and_their_ids_round_trip() {
        let line = ApprovalLine::new("telegram", "42", Some("Ada"), "123456");
        assert_eq!(line.text(), "Approve Ada (42) on telegram? (code 123 456)");
        assert_eq!(
            ApprovalLine::new("slack", "U1", None, "12345678").text(),
            "Approve U1 on slack? (code 12345678)"
        );
        assert_eq!(
            parse_approval_id(&line.id(Some(ApprovalAction::Approve))),
            Some((ApprovalAction::Approve, "telegram".into(), "123456".into()))
        );
        assert_eq!(
            parse_approval_id(&line.id(Some(ApprovalAction::Reject))),
            Some((ApprovalAction::Reject, "telegram".into(), "123456".into()))
        );
        for not_one in [
            line.id(None).as_str(),
            "approval/approve/",
            "approval//x/1",
            "pause",
            "approval/approve/telegram",
        ] {
            assert_eq!(parse_approval_id(not_one), None, "{not_one}");
        }
        let other = ApprovalLine::new("telegram", "77", None, "654321");
        assert_eq!(
            new_approvals(std::slice::from_ref(&line), &[line.clone(), other.clone()]),
            vec![&other]
        );
        assert!(new_approvals(&[line.clone(), other.clone()], &[line]).is_empty());
    }

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
