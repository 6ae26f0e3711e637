//! Terminal output: colour only on a terminal (and never with NO_COLOR), human durations and sizes.

use openclaw_protocol::CheckStatus;
use std::io::IsTerminal;

pub struct Style {
    color: bool,
}

impl Style {
    pub fn stdout() -> Self {
        Self {
            color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    pub fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }

    pub fn status(&self, status: CheckStatus) -> String {
        let code = match status {
            CheckStatus::Healthy => "32",
            CheckStatus::Paused => "34",
            CheckStatus::Degraded => "33",
            CheckStatus::Unhealthy => "31",
        };
        self.paint(code, &format!("{:<9}", status.as_str()))
    }

    /// The leading dot systemctl uses.
    pub fn dot(&self, status: CheckStatus) -> String {
        let code = match status {
            CheckStatus::Healthy => "32",
            CheckStatus::Paused => "34",
            CheckStatus::Degraded => "33",
            CheckStatus::Unhealthy => "31",
        };
        self.paint(code, "●")
    }

    pub fn ok(&self, text: &str) -> String {
        self.paint("32", text)
    }

    pub fn bad(&self, text: &str) -> String {
        self.paint("31", text)
    }
}

pub fn duration(seconds: f64) -> String {
    let s = seconds as u64;
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) => format!("{m}min {sec}s"),
        (0, _, _) => format!("{h}h {m}min"),
        _ => format!("{d}d {h}h"),
    }
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(duration(5.2), "5s");
        assert_eq!(duration(125.0), "2min 5s");
        assert_eq!(duration(3.0 * 3600.0 + 60.0), "3h 1min");
        assert_eq!(duration(2.0 * 86_400.0 + 3600.0), "2d 1h");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
