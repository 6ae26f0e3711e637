//! Commands that ask a running gateway: `health` and `status`.

use crate::output::{self, Style};
use crate::paths::{self, LoadError};
use crate::{Global, exit};
use openclaw_config::Config;
use openclaw_protocol::{CheckStatus, HealthReport, StatusReport};
use serde_json::{Value, json};
use std::time::Duration;

pub enum Reply {
    Answer { status: u16, body: String },
    NotRunning(String),
}

/// `GET http://{addr}{path}`, with the gateway token when given.
pub fn get(addr: &str, path: &str, token: Option<&str>) -> Reply {
    request(addr, path, token, None, Duration::from_secs(10))
}

/// `POST http://{addr}{path}` with a JSON body.
pub fn post(addr: &str, path: &str, token: Option<&str>, body: &Value, timeout: Duration) -> Reply {
    request(addr, path, token, Some(body), timeout)
}

/// `DELETE http://{addr}{path}`.
pub fn delete(addr: &str, path: &str, token: Option<&str>) -> Reply {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut req = agent.delete(&format!("http://{addr}{path}"));
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    answer(req.call())
}

fn answer(result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    match result {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            match resp.body_mut().read_to_string() {
                Ok(body) => Reply::Answer { status, body },
                Err(e) => Reply::NotRunning(format!("the connection broke while reading: {e}")),
            }
        }
        Err(e) => Reply::NotRunning(e.to_string()),
    }
}

fn request(
    addr: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
    timeout: Duration,
) -> Reply {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into();
    let url = format!("http://{addr}{path}");
    let auth = token.map(|t| format!("Bearer {t}"));
    let result = match body {
        None => {
            let mut req = agent.get(&url);
            if let Some(a) = &auth {
                req = req.header("Authorization", a);
            }
            req.call()
        }
        Some(body) => {
            let mut req = agent.post(&url);
            if let Some(a) = &auth {
                req = req.header("Authorization", a);
            }
            req.send_json(body)
        }
    };
    answer(result)
}

/// The token to send the running gateway: `gateway.auth.token`, else the one the gateway
/// generated in its data dir (readable by its owner only, which is who runs this CLI).
pub fn token(global: &Global, config: &Config) -> Option<String> {
    if let Some(t) = config.gateway.auth.token() {
        return Some(t.to_owned());
    }
    let data_dir = paths::data_dir(global).ok()?;
    openclaw_gateway::access::generated_token(&data_dir)
}

/// What to say when the gateway refused our token (HTTP 401).
pub fn refused_token(addr: &str, sent: bool) -> String {
    if sent {
        format!(
            "openclaw: the gateway at {addr} refused our token: run this with the gateway's config (--config, for gateway.auth.token) and data dir (--data-dir, for its generated token)"
        )
    } else {
        format!(
            "openclaw: the gateway at {addr} needs its token and none was found: pass the gateway's config (--config) and data dir (--data-dir)"
        )
    }
}

pub fn not_running(addr: &str, why: &str) -> String {
    format!(
        "openclaw: the gateway is not running (nothing answered at {addr}: {why}).\n\
         Start it with `openclaw gateway run`, or point at it with --config / OPENCLAW_PORT."
    )
}

/// Config for a client command; a broken config is reported, and defaults are not silently used.
pub fn client_config(global: &Global) -> Result<Config, u8> {
    match paths::load_config(global) {
        Ok(l) => Ok(l.config),
        Err(LoadError::Invalid(e)) => {
            eprintln!("{e}");
            eprintln!("openclaw: fix the configuration first (`openclaw config validate`)");
            Err(exit::FAILURE)
        }
        Err(e @ LoadError::Read { .. }) => {
            eprintln!("openclaw: {e:#}");
            Err(exit::FAILURE)
        }
    }
}

pub fn health(global: &Global, json: bool, allow_degraded: bool) -> u8 {
    let config = match client_config(global) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let addr = paths::gateway_addr(&config);
    // With the token the report names paths and addresses; without it, it still answers.
    let token = token(global, &config);
    let body = match get(&addr, "/health", token.as_deref()) {
        Reply::NotRunning(why) => {
            if json {
                println!(
                    "{}",
                    json!({"status": "unreachable", "address": addr, "error": why})
                );
            }
            eprintln!("{}", not_running(&addr, &why));
            return exit::NOT_RUNNING;
        }
        Reply::Answer { body, .. } => body,
    };
    let report: HealthReport = match serde_json::from_str(&body) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "openclaw: {addr} answered /health with something that is not an openclaw health report ({e}); is another service on this port?"
            );
            return exit::FAILURE;
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print_health(&report, &addr);
    }
    match report.status {
        // Paused is the owner's choice, not a fault: a health probe must not restart it.
        CheckStatus::Healthy | CheckStatus::Paused => exit::OK,
        CheckStatus::Degraded if allow_degraded => exit::OK,
        CheckStatus::Degraded => exit::FAILURE,
        CheckStatus::Unhealthy => exit::UNHEALTHY,
    }
}

fn print_health(r: &HealthReport, addr: &str) {
    let s = Style::stdout();
    println!(
        "{} openclaw gateway at {addr}: {}  {}",
        s.dot(r.status),
        s.bold(r.status.as_str()),
        s.dim(&format!(
            "(up {}, {})",
            output::duration(r.uptime_seconds),
            r.timestamp
        ))
    );
    for (name, check) in r.checks.iter() {
        println!("  {name:<9} {} {}", s.status(check.status), check.detail);
    }
    let m = &r.metrics;
    println!(
        "  {}",
        s.dim(&format!(
            "memory {:.1} MB · sessions {} · queued {} · channels {} · tools {}",
            m.memory_usage_mb,
            m.active_sessions,
            m.queued_messages,
            m.connected_channels,
            m.registered_tools
        ))
    );
    println!(
        "  {}",
        s.dim(&format!(
            "last 24h: {} messages · {} tool calls · avg {:.0} ms · errors {:.1}%",
            m.messages_processed_24h,
            m.tool_calls_24h,
            m.avg_response_time_ms,
            m.error_rate_24h * 100.0
        ))
    );
}

pub fn status(global: &Global, json: bool) -> u8 {
    let config = match client_config(global) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let addr = paths::gateway_addr(&config);
    let token = token(global, &config);
    match get(&addr, "/api/status", token.as_deref()) {
        Reply::NotRunning(why) => {
            offline_status(global, &config, &addr, &why, json);
            exit::NOT_RUNNING
        }
        Reply::Answer { status: 401, .. } => {
            eprintln!("{}", refused_token(&addr, token.is_some()));
            exit::FAILURE
        }
        Reply::Answer { status, body } => match serde_json::from_str::<StatusReport>(&body) {
            Ok(report) if status == 200 => {
                if json {
                    let mut v = serde_json::to_value(&report).unwrap_or(Value::Null);
                    v["running"] = Value::Bool(true);
                    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                } else {
                    print_status(&report);
                }
                exit::OK
            }
            _ => {
                eprintln!("openclaw: {addr} answered /api/status with HTTP {status}: {body}");
                exit::FAILURE
            }
        },
    }
}

fn print_status(r: &StatusReport) {
    let s = Style::stdout();
    println!(
        "{} openclaw gateway {} {}",
        s.ok("●"),
        r.version,
        s.dim(&format!("(pid {})", r.pid))
    );
    println!(
        "     Active: {} for {}",
        s.ok("running"),
        output::duration(r.uptime_seconds)
    );
    println!("     Listen: {}", r.bind);
    println!("   Data dir: {}", r.data_dir);
    println!(
        "   Database: {} ({})",
        r.database,
        output::bytes(r.database_size_bytes)
    );
    println!(
        "   Sessions: {} · memories {} · WebSocket clients {}/{}",
        r.sessions, r.memories, r.connections, r.max_connections
    );
    if r.channels.is_empty() {
        println!("   Channels: none enabled");
    } else {
        let list: Vec<String> = r
            .channels
            .iter()
            .map(|c| {
                if c.connected {
                    format!("{} {}", c.name, s.ok("connected"))
                } else {
                    format!("{} {}", c.name, s.bad("disconnected"))
                }
            })
            .collect();
        println!("   Channels: {}", list.join(", "));
    }
    println!("      Nodes: {} paired", r.nodes);
}

/// What can be said without the gateway: where its data is.
fn offline_status(global: &Global, config: &Config, addr: &str, why: &str, json: bool) {
    let data_dir = paths::data_dir(global).ok();
    let db = data_dir.as_ref().map(|d| {
        paths::under_data_dir(d, config.memory.storage_path.as_deref(), "")
            .join(openclaw_store::DB_FILE)
    });
    let db_size = db
        .as_ref()
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| m.len());
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "running": false,
                "version": env!("CARGO_PKG_VERSION"),
                "address": addr,
                "error": why,
                "data_dir": data_dir.as_ref().map(|d| d.display().to_string()),
                "database": db.as_ref().map(|d| d.display().to_string()),
                "database_size_bytes": db_size,
            }))
            .unwrap_or_default()
        );
        return;
    }
    let s = Style::stdout();
    println!(
        "{} openclaw gateway {}",
        s.dim("○"),
        env!("CARGO_PKG_VERSION")
    );
    println!(
        "     Active: {} (nothing answered at {addr})",
        s.bad("not running")
    );
    if let Some(d) = &data_dir {
        println!("   Data dir: {}", d.display());
    }
    if let Some(db) = &db {
        match db_size {
            Some(n) => println!("   Database: {} ({})", db.display(), output::bytes(n)),
            None => println!("   Database: {} (not created yet)", db.display()),
        }
    }
    eprintln!("Start it with `openclaw gateway run`.");
}
