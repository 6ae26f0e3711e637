//! `openclaw doctor`: the guide's production checklist, run against the live config and gateway.
//! Each item passes, warns or fails, and says how to fix it; any failure makes the exit code 1.
//!
//! An item passes only for what was verified on this machine and build: the running gateway
//! answered, a file was checked, a provider accepted the key. What only the config file says
//! (the gateway may run with another one), or what this build cannot do at all, is at most a
//! warning that says so.

use crate::output::Style;
use crate::paths::{self, LoadError};
use crate::{Global, exit};
use openclaw_config::{Config, PairingMode};
use openclaw_protocol::StatusReport;
use serde::Serialize;
use serde_json::{Value, json};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Pass,
    Warn,
    Fail,
}

/// What an item's verdict rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Basis {
    /// The running gateway answered (its health, metrics or status).
    Live,
    /// Checked on this machine: files on disk, an archive verified, a provider's answer.
    Checked,
    /// Read from the config file only.
    Config,
    /// This build has no such feature, so there is nothing to verify.
    NotInBuild,
}

impl Basis {
    fn verifies(self) -> bool {
        matches!(self, Self::Live | Self::Checked)
    }
}

#[derive(Debug, Serialize)]
struct Item {
    id: &'static str,
    title: &'static str,
    status: Status,
    /// What the verdict rests on (`live`, `checked`, `config`, `not_in_build`).
    verified_by: Basis,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

/// One checklist line. A pass that rests on nothing verified is turned into a warning: the
/// line says what was read, not that it holds.
fn item(
    id: &'static str,
    title: &'static str,
    status: Status,
    basis: Basis,
    detail: impl Into<String>,
    fix: Option<&str>,
) -> Item {
    let mut detail = detail.into();
    let status = if status == Status::Pass && !basis.verifies() {
        detail.push_str(match basis {
            Basis::NotInBuild => " (nothing to verify in this build)",
            _ => " (from the config file only: not verified on a running gateway)",
        });
        Status::Warn
    } else {
        status
    };
    Item {
        id,
        title,
        status,
        verified_by: basis,
        detail,
        fix: fix.map(str::to_owned),
    }
}

fn http_get(addr: &str, path: &str, token: Option<&str>) -> Result<(u16, String), String> {
    match crate::client::get(addr, path, token) {
        crate::client::Reply::Answer { status, body } => Ok((status, body)),
        crate::client::Reply::NotRunning(why) => Err(why),
    }
}

/// Keys present, and accepted by each provider (a models listing, no tokens spent).
fn providers(config: &Config, models_dir: Option<&std::path::Path>) -> Vec<Item> {
    let named = config.providers();
    if named.is_empty()
        && let Some(model) = models_dir.and_then(openclaw_agent::provider::default_model)
    {
        return vec![item(
            "api_keys",
            "API keys configured and tested",
            Status::Pass,
            Basis::Checked,
            format!(
                "no remote provider configured; the local model {} answers (offline, no key)",
                model.display()
            ),
            None,
        )];
    }
    if named.is_empty() {
        return vec![item(
            "api_keys",
            "API keys configured and tested",
            Status::Fail,
            Basis::Config,
            "no LLM provider is configured",
            Some(
                "add providers.anthropic.api_key: \"${ANTHROPIC_API_KEY}\" (or openai, or an OpenAI-compatible base_url) to config.yaml",
            ),
        )];
    }
    let (built, unavailable) = openclaw_agent::provider::from_config_in(&named, models_dir);
    let mut out = Vec::new();
    for (name, why) in unavailable {
        out.push(item(
            "api_keys",
            "API keys configured and tested",
            Status::Warn,
            Basis::NotInBuild,
            format!("{name}: {why}"),
            None,
        ));
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            out.push(item(
                "api_keys",
                "API keys configured and tested",
                Status::Fail,
                Basis::Checked,
                format!("cannot start a runtime: {e}"),
                None,
            ));
            return out;
        }
    };
    for p in built {
        let result = runtime.block_on(p.check_access());
        let name = p.name().to_owned();
        out.push(match result {
            Ok(()) if p.kind() == openclaw_config::ProviderKind::Local => item("api_keys", "API keys configured and tested", Status::Pass, Basis::Checked, format!("{name}: local model file present ({}; no key needed)", p.model()), None),
            Ok(()) => item("api_keys", "API keys configured and tested", Status::Pass, Basis::Checked, format!("{name}: key accepted ({})", p.model()), None),
            Err(e) => match e.kind {
                openclaw_agent::ErrorKind::Auth | openclaw_agent::ErrorKind::Config => item(
                    "api_keys",
                    "API keys configured and tested",
                    Status::Fail,
                    Basis::Checked,
                    format!("{name}: {}", e.message),
                    Some(&format!("set a valid providers.{name}.api_key (check the environment variable it names)")),
                ),
                _ => item(
                    "api_keys",
                    "API keys configured and tested",
                    Status::Warn,
                    Basis::Checked,
                    format!("{name}: could not confirm the key: {}", e.message),
                    Some("check the network and providers.<name>.base_url"),
                ),
            },
        });
    }
    out
}

/// The security and networking items: from the running gateway's own report when it runs
/// (`live`), else from the config file (never a pass then).
fn settings(global: &Global, config: &Config, live: Option<&StatusReport>) -> Vec<Item> {
    let s = &config.security;
    let security = live.and_then(|r| r.security.as_ref());
    let mut out = Vec::new();

    let pairing_title = "Security: pairing mode enabled";
    out.push(if !s.pairing.enabled || s.pairing.mode == PairingMode::Open {
        item(
            "pairing",
            pairing_title,
            Status::Fail,
            Basis::Config,
            "unknown senders could talk to the assistant",
            Some("set security.pairing.enabled: true and mode: challenge"),
        )
    } else {
        let configured = format!(
            "{:?}, {}-digit codes, {} s",
            s.pairing.mode, s.pairing.code_length, s.pairing.code_expiry_seconds
        )
        .to_lowercase();
        match security.map(|sec| sec.channel_drivers.clone()) {
            Some(drivers) if !drivers.is_empty() => item(
                "pairing",
                pairing_title,
                Status::Pass,
                Basis::Live,
                format!("pairing on ({configured}) for {}", drivers.join(", ")),
                None,
            ),
            _ => item(
                "pairing",
                pairing_title,
                Status::Warn,
                Basis::NotInBuild,
                format!(
                    "no sender is paired or refused: this build has no chat channels yet (configured: {configured})"
                ),
                None,
            ),
        }
    });

    let sandbox_title = "Security: sandbox enabled for group chats";
    let code_tools = security.map(|sec| sec.code_execution_tools.clone());
    out.push(match code_tools {
        Some(tools) if !tools.is_empty() => item(
            "sandbox",
            sandbox_title,
            if s.sandbox.enabled {
                Status::Warn
            } else {
                Status::Fail
            },
            Basis::Live,
            format!(
                "the gateway runs code-execution tools ({}) and this build has no sandbox to contain them",
                tools.join(", ")
            ),
            Some("turn those tools off until a sandboxed build is installed"),
        ),
        _ => item(
            "sandbox",
            sandbox_title,
            Status::Warn,
            Basis::NotInBuild,
            "no code can run: this build has no code-execution tools, so security.sandbox is not used",
            None,
        ),
    });

    let rl_title = "Rate limiting configured";
    out.push(match (live, security) {
        (Some(_), Some(sec)) => match sec.rate_limits {
            Some(rl) if rl.messages_per_minute > 0 && rl.tool_calls_per_minute > 0 => item(
                "rate_limits",
                rl_title,
                Status::Pass,
                Basis::Live,
                format!(
                    "the gateway enforces {} messages and {} tool calls per sender per minute",
                    rl.messages_per_minute, rl.tool_calls_per_minute
                ),
                None,
            ),
            _ => item(
                "rate_limits",
                rl_title,
                Status::Fail,
                Basis::Live,
                "the running gateway has rate limiting off (or a zero limit)",
                Some("set security.rate_limiting.enabled: true with non-zero limits, then restart"),
            ),
        },
        _ => {
            let rl = &s.rate_limiting;
            if rl.enabled
                && rl.default_messages_per_minute > 0
                && rl.default_tool_calls_per_minute > 0
            {
                item(
                    "rate_limits",
                    rl_title,
                    Status::Pass,
                    Basis::Config,
                    format!(
                        "{} messages and {} tool calls per sender per minute",
                        rl.default_messages_per_minute, rl.default_tool_calls_per_minute
                    ),
                    None,
                )
            } else {
                item(
                    "rate_limits",
                    rl_title,
                    Status::Fail,
                    Basis::Config,
                    "rate limiting is off",
                    Some("set security.rate_limiting.enabled: true with non-zero limits"),
                )
            }
        }
    });

    out.push(audit_item(
        global,
        config,
        security.map(|sec| sec.audit_log),
    ));
    out.push(log_rotation_item(global, config));

    let bind = live.map(|r| r.bind.clone());
    let (host, basis) = match &bind {
        Some(b) => (
            b.parse::<std::net::SocketAddr>()
                .map(|a| a.ip().to_string())
                .unwrap_or_else(|_| b.clone()),
            Basis::Live,
        ),
        None => (config.gateway.host.clone(), Basis::Config),
    };
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    out.push(if loopback {
        item("loopback", "Gateway bound to localhost", Status::Pass, basis, format!("listening on {host} only"), None)
    } else {
        item("loopback", "Gateway bound to localhost", Status::Warn, basis, format!("listening on {host}"), Some("bind 127.0.0.1 (in Docker: publish the port as 127.0.0.1:18789:18789) and reach it through Tailscale or nginx"))
    });

    // Outbound: the providers' URLs (plain http only to this machine, e.g. a local Ollama);
    // inbound: what the gateway listens on. This build has no webhooks.
    let plain: Vec<String> = config
        .providers
        .iter()
        .filter_map(|(name, p)| {
            let url = p.base_url.as_deref()?;
            let rest = url.strip_prefix("http://")?;
            let host = rest.split(['/', ':']).next().unwrap_or("");
            let local = host == "localhost"
                || host
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            (!local).then(|| format!("{name} ({url})"))
        })
        .collect();
    let tls_title = "TLS for all external connections";
    out.push(if !plain.is_empty() {
        item(
            "tls",
            tls_title,
            Status::Fail,
            Basis::Config,
            format!("providers reached over plain HTTP: {}", plain.join(", ")),
            Some("use https:// base_url values (plain http only to this machine)"),
        )
    } else if loopback {
        item(
            "tls",
            tls_title,
            Status::Pass,
            basis,
            "nothing listens beyond loopback; providers are reached over https (or on this machine); this build has no webhooks",
            None,
        )
    } else {
        item(
            "tls",
            tls_title,
            Status::Warn,
            basis,
            "the gateway listens beyond loopback over plain HTTP",
            Some("terminate TLS in front of it (deploy/nginx.conf) or use Tailscale"),
        )
    });
    out
}

/// The audit log: enabled in the running gateway, and its hash chain intact on disk.
fn audit_item(global: &Global, config: &Config, live_enabled: Option<bool>) -> Item {
    let title = "Audit logging enabled";
    if live_enabled == Some(false) || (live_enabled.is_none() && !config.logging.audit.enabled) {
        return item(
            "audit_log",
            title,
            Status::Fail,
            if live_enabled.is_some() {
                Basis::Live
            } else {
                Basis::Config
            },
            "auth failures and config changes are not recorded",
            Some("set logging.audit.enabled: true"),
        );
    }
    let Ok(data_dir) = paths::data_dir(global) else {
        return item(
            "audit_log",
            title,
            Status::Warn,
            Basis::Config,
            "cannot find the data dir to check the log",
            Some("pass --data-dir"),
        );
    };
    let path = paths::under_data_dir(
        &data_dir,
        config.logging.audit.file.as_deref(),
        "logs/audit.log",
    );
    match openclaw_gateway::audit::verify(&path) {
        Ok(n) => item(
            "audit_log",
            title,
            Status::Pass,
            Basis::Checked,
            format!("{n} events in {}, hash chain intact", path.display()),
            None,
        ),
        Err(openclaw_gateway::audit::AuditError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            item(
                "audit_log",
                title,
                Status::Warn,
                Basis::Config,
                format!("enabled, but {} has no events yet", path.display()),
                Some("start the gateway once (it records its start)"),
            )
        }
        Err(e) => item(
            "audit_log",
            title,
            Status::Fail,
            Basis::Checked,
            format!("the audit log does not verify: {e}"),
            Some("keep the damaged file for review and move it aside; a new chain starts"),
        ),
    }
}

/// The log file exists and is within its rotation size.
fn log_rotation_item(global: &Global, config: &Config) -> Item {
    let title = "Log rotation configured";
    let limits = format!(
        "rotates at {} MB, keeps {} files",
        config.logging.max_size_mb, config.logging.max_files
    );
    let Ok(data_dir) = paths::data_dir(global) else {
        return item(
            "log_rotation",
            title,
            Status::Pass,
            Basis::Config,
            limits,
            None,
        );
    };
    let file = paths::under_data_dir(
        &data_dir,
        config.logging.file.as_deref(),
        "logs/openclaw.log",
    );
    match std::fs::metadata(&file) {
        Ok(m) => {
            let mb = m.len() as f64 / (1024.0 * 1024.0);
            let over =
                m.len() > config.logging.max_size_mb.saturating_mul(1024 * 1024) + 1024 * 1024;
            item(
                "log_rotation",
                title,
                if over { Status::Fail } else { Status::Pass },
                Basis::Checked,
                format!("{} is {mb:.1} MB; {limits}", file.display()),
                over.then_some("the log outgrew its limit: check logging.max_size_mb and that this build rotates (restart the gateway)"),
            )
        }
        Err(_) => item(
            "log_rotation",
            title,
            Status::Pass,
            Basis::Config,
            format!("{limits}; no log file at {} yet", file.display()),
            None,
        ),
    }
}

/// What the running gateway says of itself, asked once, with its token.
struct Live {
    /// `GET /health`: status and body, or why nothing answered.
    health: Result<(u16, String), String>,
    /// `GET /api/status`: status and body, or why nothing answered.
    status: Result<(u16, String), String>,
}

impl Live {
    fn ask(global: &Global, config: &Config) -> Self {
        let addr = paths::gateway_addr(config);
        let token = crate::client::token(global, config);
        Self {
            health: http_get(&addr, "/health", token.as_deref()),
            status: http_get(&addr, "/api/status", token.as_deref()),
        }
    }

    fn health_report(&self) -> Option<openclaw_protocol::HealthReport> {
        let (_, body) = self.health.as_ref().ok()?;
        serde_json::from_str(body).ok()
    }

    fn status_report(&self) -> Option<StatusReport> {
        match &self.status {
            Ok((200, body)) => serde_json::from_str(body).ok(),
            _ => None,
        }
    }
}

/// Whether `openclaw update check` has a feed to ask, and whether it answers.
fn update_feed(config: &Config) -> Item {
    let title = "Update checks";
    match &config.update.feed_url {
        None => item(
            "update_feed",
            title,
            Status::Warn,
            Basis::Config,
            "not configured: `openclaw update check` cannot look for releases",
            Some(
                "set update.feed_url to your release feed (a GitHub releases API URL ending in /releases/latest)",
            ),
        ),
        Some(url) => match crate::update::fetch_latest_tag(url) {
            Ok(tag) => item(
                "update_feed",
                title,
                Status::Pass,
                Basis::Checked,
                format!("{url} answers (newest release {tag})"),
                None,
            ),
            Err(why) => item(
                "update_feed",
                title,
                Status::Warn,
                Basis::Checked,
                format!("{url}: {why}"),
                Some("check the network and update.feed_url"),
            ),
        },
    }
}

fn live(config: &Config, asked: &Live) -> Vec<Item> {
    let addr = paths::gateway_addr(config);
    let status = asked.status_report();
    let mut out = Vec::new();
    match &asked.health {
        Err(e) => {
            let fix = "start it: openclaw gateway run (or systemctl start openclaw)";
            out.push(item(
                "health",
                "Health endpoint accessible",
                Status::Fail,
                Basis::Live,
                format!("nothing answered at {addr}: {e}"),
                Some(fix),
            ));
            out.push(item(
                "metrics",
                "Prometheus metrics exported",
                Status::Fail,
                Basis::Live,
                "the gateway is not running",
                Some(fix),
            ));
            out.push(item(
                "channels",
                "Channel connections verified",
                Status::Fail,
                Basis::Live,
                "the gateway is not running",
                Some(fix),
            ));
            return out;
        }
        Ok((code, body)) => {
            let code = *code;
            let status = serde_json::from_str::<Value>(body)
                .ok()
                .and_then(|v| v["status"].as_str().map(str::to_owned))
                .unwrap_or_else(|| "?".into());
            out.push(item(
                "health",
                "Health endpoint accessible",
                if code == 200 {
                    Status::Pass
                } else {
                    Status::Fail
                },
                Basis::Live,
                format!("GET http://{addr}/health → {code} ({status})"),
                (code != 200).then_some("see `openclaw health` for the failing check"),
            ));
        }
    }
    out.push(match http_get(&addr, "/metrics", None) {
        Ok((200, body)) if body.contains("openclaw_messages_received") => item(
            "metrics",
            "Prometheus metrics exported",
            Status::Pass,
            Basis::Live,
            format!("http://{addr}/metrics"),
            None,
        ),
        Ok((code, _)) => item(
            "metrics",
            "Prometheus metrics exported",
            Status::Fail,
            Basis::Live,
            format!("/metrics answered {code} without openclaw metrics"),
            None,
        ),
        Err(e) => item(
            "metrics",
            "Prometheus metrics exported",
            Status::Fail,
            Basis::Live,
            e,
            None,
        ),
    });
    let title = "Channel connections verified";
    out.push(match status {
        Some(report) => {
            let down: Vec<String> = report
                .channels
                .iter()
                .filter(|c| !c.connected)
                .map(|c| format!("{}: {}", c.name, c.detail))
                .collect();
            if report.channels.is_empty() {
                item(
                    "channels",
                    title,
                    Status::Warn,
                    Basis::Live,
                    "no chat channel is enabled (WebChat only)",
                    Some("enable channels.telegram / slack / discord / whatsapp in config.yaml"),
                )
            } else if down.is_empty() {
                item(
                    "channels",
                    title,
                    Status::Pass,
                    Basis::Live,
                    format!("{} connected", report.channels.len()),
                    None,
                )
            } else {
                item(
                    "channels",
                    title,
                    Status::Fail,
                    Basis::Live,
                    down.join("; "),
                    Some("check the channel's token and `openclaw status`"),
                )
            }
        }
        None => match &asked.status {
            Ok((401, _)) => item(
                "channels",
                title,
                Status::Fail,
                Basis::Live,
                "the gateway refused our token",
                Some("run doctor with the gateway's config (--config) and data dir (--data-dir)"),
            ),
            Ok((code, _)) => item(
                "channels",
                title,
                Status::Fail,
                Basis::Live,
                format!("/api/status answered {code}"),
                None,
            ),
            Err(e) => item(
                "channels",
                title,
                Status::Fail,
                Basis::Live,
                e.clone(),
                None,
            ),
        },
    });
    out
}

fn backups(global: &Global, config: &Config, asked: &Live) -> Vec<Item> {
    let mut out = Vec::new();
    let title = "Automated backups";
    // The running gateway's own view: its health report has a backup check while it runs the
    // schedule.
    out.push(match asked.health_report() {
        Some(report) => match report.checks.backup {
            Some(check) => item(
                "backup_schedule",
                title,
                match check.status {
                    openclaw_protocol::CheckStatus::Healthy
                    | openclaw_protocol::CheckStatus::Paused => Status::Pass,
                    openclaw_protocol::CheckStatus::Degraded => Status::Warn,
                    openclaw_protocol::CheckStatus::Unhealthy => Status::Fail,
                },
                Basis::Live,
                format!(
                    "the gateway runs \"{}\" in {}, keeping {}: {}",
                    config.backup.schedule, config.agent.timezone, config.backup.max_backups, check.detail
                ),
                Some("see `openclaw health` for the last failure"),
            ),
            None => item(
                "backup_schedule",
                title,
                Status::Fail,
                Basis::Live,
                "the running gateway makes no scheduled backups",
                Some("set backup.enabled: true (schedule \"0 2 * * *\", max_backups: 30), then restart"),
            ),
        },
        None if config.backup.enabled => item(
            "backup_schedule",
            title,
            Status::Pass,
            Basis::Config,
            format!(
                "schedule \"{}\" in {}; keeping {}",
                config.backup.schedule, config.agent.timezone, config.backup.max_backups
            ),
            None,
        ),
        None => item(
            "backup_schedule",
            title,
            Status::Fail,
            Basis::Config,
            "scheduled backups are off",
            Some("set backup.enabled: true (schedule \"0 2 * * *\", max_backups: 30)"),
        ),
    });
    let data_dir = match paths::data_dir(global) {
        Ok(d) => d,
        Err(e) => {
            out.push(item(
                "backup_recent",
                "Recent backup, restore verified",
                Status::Fail,
                Basis::Checked,
                format!("{e:#}"),
                None,
            ));
            return out;
        }
    };
    let layout = crate::backup_cmd::layout(&data_dir, config, None, None);
    let newest = openclaw_backup::list(&layout.backups)
        .ok()
        .and_then(|l| l.into_iter().next_back());
    let Some(newest) = newest else {
        out.push(item(
            "backup_recent",
            "Recent backup, restore verified",
            Status::Fail,
            Basis::Checked,
            format!("no backup in {}", layout.backups.display()),
            Some("run `openclaw backup create` (and enable backup.enabled)"),
        ));
        return out;
    };
    let age = std::fs::metadata(&newest.path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .unwrap_or(Duration::MAX);
    let hours = age.as_secs() / 3600;
    // Not the data dir: doctor runs beside a live gateway (see openclaw_backup::default_scratch).
    let scratch = openclaw_backup::default_scratch();
    out.push(match openclaw_backup::verify(&newest.path, &scratch, &mut |_, _, _| {}) {
        Err(e) => item("backup_recent", "Recent backup, restore verified", Status::Fail, Basis::Checked, format!("the newest backup does not verify: {e}"), Some("take a new one: openclaw backup create")),
        Ok(_) if age > Duration::from_secs(26 * 3600) => item("backup_recent", "Recent backup, restore verified", Status::Fail, Basis::Checked, format!("the newest backup is {hours} h old: {}", newest.path.display()), Some("check the scheduled backups (`openclaw health`) or run `openclaw backup create`")),
        Ok(m) => item("backup_recent", "Recent backup, restore verified", Status::Pass, Basis::Checked, format!("{} ({} h old) verifies: {} files, database intact", newest.name, hours, m.files.len()), None),
    });
    out
}

pub fn run(global: &Global, json_out: bool) -> u8 {
    let loaded = match paths::load_config(global) {
        Ok(l) => l,
        Err(LoadError::Invalid(e)) => {
            eprintln!("{e}");
            eprintln!(
                "openclaw: the configuration is invalid; fix it first (`openclaw config validate`)"
            );
            return exit::FAILURE;
        }
        Err(e @ LoadError::Read { .. }) => {
            eprintln!("openclaw: {e:#}");
            return exit::FAILURE;
        }
    };
    let config = &loaded.config;
    let models_dir = paths::data_dir(global).ok().map(|d| d.join("models"));
    let asked = Live::ask(global, config);
    let mut items = providers(config, models_dir.as_deref());
    items.extend(settings(global, config, asked.status_report().as_ref()));
    items.extend(live(config, &asked));
    items.extend(backups(global, config, &asked));
    items.push(update_feed(config));
    let count = |s| items.iter().filter(|i| i.status == s).count();
    let (pass, warn, fail) = (
        count(Status::Pass),
        count(Status::Warn),
        count(Status::Fail),
    );
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"checks": items, "summary": {"pass": pass, "warn": warn, "fail": fail}})
            )
            .unwrap_or_default()
        );
    } else {
        let s = Style::stdout();
        for i in &items {
            let mark = match i.status {
                Status::Pass => s.ok("✓ pass"),
                Status::Warn => s.bold("! warn"),
                Status::Fail => s.bad("✗ FAIL"),
            };
            println!("{mark}  {:<38} {}", i.title, i.detail);
            if let Some(fix) = &i.fix
                && i.status != Status::Pass
            {
                println!("        {:<38} fix: {fix}", "");
            }
        }
        println!("doctor: {pass} pass, {warn} warn, {fail} fail");
    }
    if fail > 0 { exit::FAILURE } else { exit::OK }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_that_rests_on_nothing_verified_is_a_warning() {
        for basis in [Basis::Config, Basis::NotInBuild] {
            let i = item("x", "X", Status::Pass, basis, "configured", None);
            assert_eq!(i.status, Status::Warn, "{basis:?}");
            assert!(i.detail.starts_with("configured ("), "{}", i.detail);
        }
        for basis in [Basis::Live, Basis::Checked] {
            assert_eq!(
                item("x", "X", Status::Pass, basis, "ok", None).status,
                Status::Pass
            );
        }
        // Failures and warnings stay what they are.
        assert_eq!(
            item("x", "X", Status::Fail, Basis::Config, "off", None).status,
            Status::Fail
        );
    }

    #[test]
    fn with_no_gateway_running_no_setting_passes_on_the_config_alone() {
        let dir = tempfile::tempdir().unwrap();
        let global = Global {
            config: None,
            data_dir: Some(dir.path().to_owned()),
        };
        // Everything the guide asks for, switched on in config.
        let mut config = Config::default();
        config.gateway.port = 1; // nothing listens there
        config.backup.enabled = true;
        for i in settings(&global, &config, None)
            .into_iter()
            .chain(backups(&global, &config, &Live::ask(&global, &config)))
            .chain(std::iter::once(update_feed(&config)))
        {
            assert!(
                i.status != Status::Pass || i.verified_by.verifies(),
                "{} passed on {:?}: {}",
                i.id,
                i.verified_by,
                i.detail
            );
        }
        let items = settings(&global, &config, None);
        let sandbox = items.iter().find(|i| i.id == "sandbox").unwrap();
        assert_eq!(sandbox.status, Status::Warn);
        assert!(
            sandbox.detail.contains("no code can run"),
            "{}",
            sandbox.detail
        );
    }
}
