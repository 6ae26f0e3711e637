//! `config.yaml`: the schema of the deployment guide, `${VAR}` expansion, defaults, environment
//! overrides and validation that reports every problem with its file:line.
//!
//! [`edit`] changes the file's text the way a person would, keeping its comments.
//!
//! This crate does no I/O: callers hand it the file's text and a way to look up environment
//! variables, so the same code serves the server, the tray app and tests. It knows nothing of
//! sockets, databases or logging; it only says what the configuration is, or what is wrong with it.

mod edit;
mod expand;
mod load;
mod schema;
mod validate;

pub use edit::{Change, EditError, Value, edit, has_key};
pub use load::{ConfigError, Problem, parse};
pub use schema::*;
pub use validate::{MIN_TOKEN_CHARS, parse_schedule};

/// Environment lookup used for `${VAR}` expansion and overrides.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;

    /// The secret `name` for `${keyring:NAME}`: `Ok(None)` when there is none, `Err` with the
    /// reason when the keyring cannot be read (or, by default, is not consulted at all).
    fn secret(&self, name: &str) -> Result<Option<String>, String> {
        let _ = name;
        Err("this program reads no OS keyring; use ${VAR} with an environment variable".into())
    }
}

impl<F: Fn(&str) -> Option<String>> Env for F {
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// `OPENCLAW_PORT` overrides `gateway.port`.
pub const ENV_PORT: &str = "OPENCLAW_PORT";
/// `OPENCLAW_LOG_LEVEL` overrides `logging.level`.
pub const ENV_LOG_LEVEL: &str = "OPENCLAW_LOG_LEVEL";

/// Applies the environment overrides the guide's compose file relies on.
pub fn apply_env_overrides(config: &mut Config, env: &dyn Env) -> Result<(), ConfigError> {
    let mut problems = Vec::new();
    if let Some(port) = env.var(ENV_PORT).filter(|p| !p.trim().is_empty()) {
        match port.trim().parse::<u16>() {
            Ok(p) if p != 0 => config.gateway.port = p,
            _ => problems.push(Problem::env(
                ENV_PORT,
                format!("`{port}` is not a TCP port (1-65535)"),
            )),
        }
    }
    if let Some(level) = env.var(ENV_LOG_LEVEL).filter(|l| !l.trim().is_empty()) {
        match LogLevel::parse(level.trim()) {
            Some(l) => config.logging.level = l,
            None => problems.push(Problem::env(
                ENV_LOG_LEVEL,
                format!("`{level}` is not a log level (trace, debug, info, warn, error)"),
            )),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError {
            origin: "environment".into(),
            problems,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    #[test]
    fn overrides_apply() {
        let mut c = Config::default();
        apply_env_overrides(
            &mut c,
            &env(&[("OPENCLAW_PORT", "19000"), ("OPENCLAW_LOG_LEVEL", "DEBUG")]),
        )
        .unwrap();
        assert_eq!(c.gateway.port, 19000);
        assert_eq!(c.logging.level, LogLevel::Debug);
    }

    #[test]
    fn bad_overrides_are_reported_together() {
        let mut c = Config::default();
        let err = apply_env_overrides(
            &mut c,
            &env(&[("OPENCLAW_PORT", "http"), ("OPENCLAW_LOG_LEVEL", "loud")]),
        )
        .unwrap_err();
        assert_eq!(err.problems.len(), 2);
        let text = err.to_string();
        assert!(text.contains("OPENCLAW_PORT"), "{text}");
        assert!(text.contains("OPENCLAW_LOG_LEVEL"), "{text}");
        assert_eq!(c.gateway.port, DEFAULT_PORT, "nothing applied on error");
    }
}
