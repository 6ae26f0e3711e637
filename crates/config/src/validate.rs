//! Checks that need more than types: ranges, combinations, names that must resolve.

use crate::schema::{Config, ProviderKind};

/// Returns `(path, message)` for each problem.
pub(crate) fn check(c: &Config) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut bad = |path: &str, message: String| out.push((path.to_owned(), message));

    for (name, p) in &c.providers {
        let path = format!("providers.{name}");
        let Some(kind) = p.kind.or_else(|| ProviderKind::from_name(name)) else {
            bad(
                &path,
                format!(
                    "cannot tell which API `{name}` speaks: add `type: openai` (OpenAI-compatible servers such as Ollama, vLLM, OpenRouter), `type: anthropic` or `type: local`"
                ),
            );
            continue;
        };
        if kind == ProviderKind::Local {
            for (key, set) in [
                ("api_key", p.api_key.is_some()),
                ("base_url", p.base_url.is_some()),
                ("model", p.model.is_some()),
            ] {
                if set {
                    bad(
                        &format!("{path}.{key}"),
                        format!(
                            "`{key}` does not apply to `type: local` providers (they run the GGUF file at `model_path`)"
                        ),
                    );
                }
            }
            if p.model_path.as_deref().is_some_and(|m| m.trim().is_empty()) {
                bad(
                    &format!("{path}.model_path"),
                    "must name a GGUF file (or leave it out for the default model in <data dir>/models/)".into(),
                );
            }
            if p.context_tokens
                .is_some_and(|n| !(256..=1_048_576).contains(&n))
            {
                bad(
                    &format!("{path}.context_tokens"),
                    "must be between 256 and 1048576 tokens".into(),
                );
            }
            if p.threads.is_some_and(|n| !(1..=256).contains(&n)) {
                bad(
                    &format!("{path}.threads"),
                    "must be between 1 and 256".into(),
                );
            }
            if p.idle_unload_seconds == Some(0) {
                bad(
                    &format!("{path}.idle_unload_seconds"),
                    "must be at least 1 second".into(),
                );
            }
        } else {
            for (key, set) in [
                ("model_path", p.model_path.is_some()),
                ("context_tokens", p.context_tokens.is_some()),
                ("threads", p.threads.is_some()),
                ("idle_unload_seconds", p.idle_unload_seconds.is_some()),
            ] {
                if set {
                    bad(
                        &format!("{path}.{key}"),
                        format!("`{key}` only applies to `type: local` providers"),
                    );
                }
            }
        }
        if let Some(url) = &p.base_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            bad(
                &format!("{path}.base_url"),
                format!("`{url}` is not an http:// or https:// URL"),
            );
        }
        if p.max_tokens == Some(0) {
            bad(
                &format!("{path}.max_tokens"),
                "must be at least 1".to_owned(),
            );
        }
    }

    if c.agent.max_tool_rounds == 0 {
        bad("agent.max_tool_rounds", "must be at least 1".into());
    }
    if c.agent.breaker_threshold == 0 {
        bad("agent.breaker_threshold", "must be at least 1".into());
    }
    if c.agent.tool_timeout_seconds == 0 {
        bad("agent.tool_timeout_seconds", "must be at least 1".into());
    }
    if let Some(url) = &c.update.feed_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        bad(
            "update.feed_url",
            format!("`{url}` is not an http:// or https:// URL"),
        );
    }
    if let Some(token) = c.gateway.auth.token.as_ref().map(|t| t.expose())
        && !token.is_empty()
        && token.chars().count() < MIN_TOKEN_CHARS
    {
        bad(
            "gateway.auth.token",
            format!(
                "is {} characters; a gateway token needs at least {MIN_TOKEN_CHARS} (e.g. `openssl rand -hex 32`), or leave it out on a loopback gateway and one is generated",
                token.chars().count()
            ),
        );
    }
    for (i, origin) in c.gateway.allowed_origins.iter().enumerate() {
        if let Err(m) = check_origin(origin) {
            bad(&format!("gateway.allowed_origins[{i}]"), m);
        }
    }
    for (i, host) in c.gateway.allowed_hosts.iter().enumerate() {
        if host.is_empty()
            || host.contains(['/', ':', ' ', '*'])
            || !host
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '.' || ch == '-')
        {
            bad(
                &format!("gateway.allowed_hosts[{i}]"),
                format!(
                    "`{host}` is not a host name: write the name alone, as in `chat.example.com` (no scheme, port, path or wildcard)"
                ),
            );
        }
    }
    if c.gateway.port == 0 {
        bad("gateway.port", "must be a TCP port from 1 to 65535".into());
    }
    if c.gateway.host.parse::<std::net::IpAddr>().is_err() && c.gateway.host != "localhost" {
        bad(
            "gateway.host",
            format!(
                "`{}` is not an IP address (use 127.0.0.1 for this machine only, 0.0.0.0 for every interface)",
                c.gateway.host
            ),
        );
    }
    if c.gateway.max_connections == 0 {
        bad("gateway.max_connections", "must be at least 1".into());
    }
    let h = &c.gateway.health;
    if h.disk_critical_free_mb > h.disk_warn_free_mb {
        bad(
            "gateway.health.disk_critical_free_mb",
            format!(
                "must not exceed disk_warn_free_mb ({} > {})",
                h.disk_critical_free_mb, h.disk_warn_free_mb
            ),
        );
    }
    if c.memory.max_context_tokens < 1024 {
        bad(
            "memory.max_context_tokens",
            "must be at least 1024 tokens".into(),
        );
    }
    let pairing = &c.security.pairing;
    if !(4..=10).contains(&pairing.code_length) {
        bad(
            "security.pairing.code_length",
            "must be between 4 and 10 digits".into(),
        );
    }
    if pairing.code_expiry_seconds == 0 {
        bad(
            "security.pairing.code_expiry_seconds",
            "must be at least 1 second".into(),
        );
    }
    if c.logging.max_size_mb == 0 {
        bad("logging.max_size_mb", "must be at least 1".into());
    }
    if c.logging.max_files == 0 {
        bad("logging.max_files", "must be at least 1".into());
    }
    if c.backup.max_backups == 0 {
        bad("backup.max_backups", "must be at least 1".into());
    }
    if let Err(m) = check_cron(&c.backup.schedule) {
        bad("backup.schedule", m);
    }
    for (name, node) in &c.device_nodes {
        if node.port == 0 {
            bad(
                &format!("device_nodes.{name}.port"),
                "must be a TCP port from 1 to 65535".into(),
            );
        }
    }
    out
}

/// Shortest `gateway.auth.token` accepted: anything shorter can be guessed online.
pub const MIN_TOKEN_CHARS: usize = 16;

/// An origin as browsers send it: `scheme://host[:port]`, nothing after.
fn check_origin(origin: &str) -> Result<(), String> {
    let hint =
        "write it as a browser sends it: scheme://host[:port], as in `https://chat.example.com`";
    let Some((scheme, rest)) = origin.split_once("://") else {
        return Err(format!("`{origin}` is not an origin; {hint}"));
    };
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return Err(format!("`{origin}` has no valid scheme; {hint}"));
    }
    if rest.is_empty() || rest.contains(['/', '?', '#', ' ', '*']) {
        return Err(format!(
            "`{origin}` must not have a path, query or wildcard; {hint}"
        ));
    }
    Ok(())
}

/// Parses `backup.schedule`: five fields (minute hour day month weekday), or six with seconds first.
pub fn parse_schedule(expr: &str) -> Result<croner::Cron, String> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .build()
        .parse(expr)
        .map_err(|e| {
            format!("`{expr}` is not a cron schedule ({e}); write 5 fields: minute hour day month weekday, e.g. \"0 2 * * *\"")
        })
}

fn check_cron(expr: &str) -> Result<(), String> {
    parse_schedule(expr).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::check_cron;

    #[test]
    fn cron_shapes() {
        assert!(check_cron("0 2 * * *").is_ok());
        assert!(check_cron("*/15 0-6 1,15 * 1-5").is_ok());
        assert!(check_cron("0 2 * *").is_err());
        assert!(check_cron("61 2 * * *").is_err());
        assert!(check_cron("*/0 * * * *").is_err());
        // Seconds first, for schedules finer than a minute.
        assert!(check_cron("*/5 * * * * *").is_ok());
        assert!(check_cron("0 25 * * *").is_err());
    }
}
