//! `openclaw doctor`: the guide's production checklist, run against the live config and gateway.
//! Each item passes, warns or fails, and says how to fix it; any failure makes the exit code 1.

use crate::output::Style;
use crate::paths::{self, LoadError};
use crate::{Global, exit};
use openclaw_config::{Config, PairingMode};
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

#[derive(Debug, Serialize)]
struct Item {
    id: &'static str,
    title: &'static str,
    status: Status,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

fn item(
    id: &'static str,
    title: &'static str,
    status: Status,
    detail: impl Into<String>,
    fix: Option<&str>,
) -> Item {
    Item {
        id,
        title,
        status,
        detail: detail.into(),
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
            Ok(()) if p.kind() == openclaw_config::ProviderKind::Local => item("api_keys", "API keys configured and tested", Status::Pass, format!("{name}: local model file present ({}; no key needed)", p.model()), None),
            Ok(()) => item("api_keys", "API keys configured and tested", Status::Pass, format!("{name}: key accepted ({})", p.model()), None),
            Err(e) => match e.kind {
                openclaw_agent::ErrorKind::Auth | openclaw_agent::ErrorKind::Config => item(
                    "api_keys",
                    "API keys configured and tested",
                    Status::Fail,
                    format!("{name}: {}", e.message),
                    Some(&format!("set a valid providers.{name}.api_key (check the environment variable it names)")),
                ),
                _ => item(
                    "api_keys",
                    "API keys configured and tested",
                    Status::Warn,
                    format!("{name}: could not confirm the key: {}", e.message),
                    Some("check the network and providers.<name>.base_url"),
                ),
            },
        });
    }
    out
}

fn settings(config: &Config) -> Vec<Item> {
    let s = &config.security;
    let mut out = Vec::new();
    out.push(
        if s.pairing.enabled && s.pairing.mode != PairingMode::Open {
            item(
                "pairing",
                "Security: pairing mode enabled",
                Status::Pass,
                format!(
                    "pairing on ({:?}, {}-digit codes, {} s)",
                    s.pairing.mode, s.pairing.code_length, s.pairing.code_expiry_seconds
                )
                .to_lowercase(),
                None,
            )
        } else {
            item(
                "pairing",
                "Security: pairing mode enabled",
                Status::Fail,
                "unknown senders can talk to the assistant",
                Some("set security.pairing.enabled: true and mode: challenge"),
            )
        },
    );
    out.push(if s.sandbox.enabled {
        item(
            "sandbox",
            "Security: sandbox enabled for group chats",
            Status::Pass,
            format!(
                "sandbox on ({}, {} ms, {} MB)",
                s.sandbox.image, s.sandbox.timeout_ms, s.sandbox.memory_mb
            ),
            None,
        )
    } else {
        item(
            "sandbox",
            "Security: sandbox enabled for group chats",
            Status::Fail,
            "code from group chats would run unsandboxed",
            Some("set security.sandbox.enabled: true"),
        )
    });
    let rl = &s.rate_limiting;
    out.push(
        if rl.enabled && rl.default_messages_per_minute > 0 && rl.default_tool_calls_per_minute > 0
        {
            item(
                "rate_limits",
                "Rate limiting configured",
                Status::Pass,
                format!(
                    "{} messages and {} tool calls per sender per minute",
                    rl.default_messages_per_minute, rl.default_tool_calls_per_minute
                ),
                None,
            )
        } else {
            item(
                "rate_limits",
                "Rate limiting configured",
                Status::Fail,
                "rate limiting is off",
                Some("set security.rate_limiting.enabled: true with non-zero limits"),
            )
        },
    );
    out.push(if config.logging.audit.enabled {
        item(
            "audit_log",
            "Audit logging enabled",
            Status::Pass,
            "security events go to the audit log",
            None,
        )
    } else {
        item(
            "audit_log",
            "Audit logging enabled",
            Status::Fail,
            "auth failures and config changes are not recorded",
            Some("set logging.audit.enabled: true"),
        )
    });
    out.push(item(
        "log_rotation",
        "Log rotation configured",
        Status::Pass,
        format!(
            "{} MB × {} files",
            config.logging.max_size_mb, config.logging.max_files
        ),
        None,
    ));
    let host = config.gateway.host.as_str();
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    out.push(if loopback {
        item("loopback", "Gateway bound to localhost", Status::Pass, format!("listening on {host} only"), None)
    } else {
        item("loopback", "Gateway bound to localhost", Status::Warn, format!("gateway.host is {host}"), Some("bind 127.0.0.1 (in Docker: publish the port as 127.0.0.1:18789:18789) and reach it through Tailscale or nginx"))
    });
    let insecure_webhook = config
        .channels
        .telegram
        .webhook_url
        .as_deref()
        .filter(|u| config.channels.telegram.enabled && !u.starts_with("https://"));
    out.push(match insecure_webhook {
        Some(url) => item(
            "tls",
            "TLS for all external connections",
            Status::Fail,
            format!("channels.telegram.webhook_url is not https: {url}"),
            Some("use an https:// webhook URL (e.g. your Tailscale Funnel or nginx host)"),
        ),
        None if loopback => item(
            "tls",
            "TLS for all external connections",
            Status::Pass,
            "nothing listens outside this host; webhooks use https",
            None,
        ),
        None => item(
            "tls",
            "TLS for all external connections",
            Status::Warn,
            "the gateway listens beyond loopback over plain HTTP",
            Some("terminate TLS in front of it (deploy/nginx.conf) or use Tailscale"),
        ),
    });
    out
}

fn live(config: &Config) -> Vec<Item> {
    let addr = paths::gateway_addr(config);
    let mut out = Vec::new();
    match http_get(&addr, "/health", None) {
        Err(e) => {
            let fix = "start it: openclaw gateway run (or systemctl start openclaw)";
            out.push(item(
                "health",
                "Health endpoint accessible",
                Status::Fail,
                format!("nothing answered at {addr}: {e}"),
                Some(fix),
            ));
            out.push(item(
                "metrics",
                "Prometheus metrics exported",
                Status::Fail,
                "the gateway is not running",
                Some(fix),
            ));
            out.push(item(
                "channels",
                "Channel connections verified",
                Status::Fail,
                "the gateway is not running",
                Some(fix),
            ));
            return out;
        }
        Ok((code, body)) => {
            let status = serde_json::from_str::<Value>(&body)
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
            format!("http://{addr}/metrics"),
            None,
        ),
        Ok((code, _)) => item(
            "metrics",
            "Prometheus metrics exported",
            Status::Fail,
            format!("/metrics answered {code} without openclaw metrics"),
            None,
        ),
        Err(e) => item(
            "metrics",
            "Prometheus metrics exported",
            Status::Fail,
            e,
            None,
        ),
    });
    out.push(
        match http_get(&addr, "/api/status", config.gateway.auth.token()) {
            Ok((200, body)) => {
                let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                let channels = v["channels"].as_array().cloned().unwrap_or_default();
                let down: Vec<String> = channels
                    .iter()
                    .filter(|c| c["connected"] != true)
                    .map(|c| {
                        format!(
                            "{}: {}",
                            c["name"].as_str().unwrap_or("?"),
                            c["detail"].as_str().unwrap_or("")
                        )
                    })
                    .collect();
                if channels.is_empty() {
                    item(
                        "channels",
                        "Channel connections verified",
                        Status::Warn,
                        "no chat channel is enabled (WebChat only)",
                        Some(
                            "enable channels.telegram / slack / discord / whatsapp in config.yaml",
                        ),
                    )
                } else if down.is_empty() {
                    item(
                        "channels",
                        "Channel connections verified",
                        Status::Pass,
                        format!("{} connected", channels.len()),
                        None,
                    )
                } else {
                    item(
                        "channels",
                        "Channel connections verified",
                        Status::Fail,
                        down.join("; "),
                        Some("check the channel's token and `openclaw status`"),
                    )
                }
            }
            Ok((401, _)) => item(
                "channels",
                "Channel connections verified",
                Status::Fail,
                "the gateway refused our token",
                Some(
                    "run doctor with the gateway's config (--config) so it has gateway.auth.token",
                ),
            ),
            Ok((code, _)) => item(
                "channels",
                "Channel connections verified",
                Status::Fail,
                format!("/api/status answered {code}"),
                None,
            ),
            Err(e) => item(
                "channels",
                "Channel connections verified",
                Status::Fail,
                e,
                None,
            ),
        },
    );
    out
}

fn backups(global: &Global, config: &Config) -> Vec<Item> {
    let mut out = Vec::new();
    out.push(if config.backup.enabled {
        item(
            "backup_schedule",
            "Automated backups",
            Status::Pass,
            format!(
                "schedule \"{}\" in {}; keeping {}",
                config.backup.schedule, config.agent.timezone, config.backup.max_backups
            ),
            None,
        )
    } else {
        item(
            "backup_schedule",
            "Automated backups",
            Status::Fail,
            "scheduled backups are off",
            Some("set backup.enabled: true (schedule \"0 2 * * *\", max_backups: 30)"),
        )
    });
    let data_dir = match paths::data_dir(global) {
        Ok(d) => d,
        Err(e) => {
            out.push(item(
                "backup_recent",
                "Recent backup, restore verified",
                Status::Fail,
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
        Err(e) => item("backup_recent", "Recent backup, restore verified", Status::Fail, format!("the newest backup does not verify: {e}"), Some("take a new one: openclaw backup create")),
        Ok(_) if age > Duration::from_secs(26 * 3600) => item("backup_recent", "Recent backup, restore verified", Status::Fail, format!("the newest backup is {hours} h old: {}", newest.path.display()), Some("check the scheduled backups (`openclaw health`) or run `openclaw backup create`")),
        Ok(m) => item("backup_recent", "Recent backup, restore verified", Status::Pass, format!("{} ({} h old) verifies: {} files, database intact", newest.name, hours, m.files.len()), None),
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
        Err(LoadError::Read(e)) => {
            eprintln!("openclaw: {e:#}");
            return exit::FAILURE;
        }
    };
    let config = &loaded.config;
    let models_dir = paths::data_dir(global).ok().map(|d| d.join("models"));
    let mut items = providers(config, models_dir.as_deref());
    items.extend(settings(config));
    items.extend(live(config));
    items.extend(backups(global, config));
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
