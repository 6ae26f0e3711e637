//! `openclaw pairing list | approve | reject | revoke`: the owner's side of DM pairing, through
//! the running gateway's control API (`/api/approvals`), so the gateway's audit line and its
//! event for the tray go with every decision.
//!
//! Exit codes: 0 done; 1 the gateway refused (an unknown or expired code, an unknown sender,
//! our token); 3 no gateway answers; 64 the code or ids are malformed.

use crate::client::{self, Reply};
use crate::output::{self, Style};
use crate::{Global, exit, paths};
use serde_json::{Value, json};
use std::time::Duration;

/// How a failed call is reported: on stderr always, and as `{"ok": false, …}` with `--json`.
fn fail(json_out: bool, code: u8, message: &str, reason: &str) -> u8 {
    if json_out {
        println!(
            "{}",
            json!({"ok": false, "error": message, "reason": reason})
        );
    }
    eprintln!("openclaw: {message}");
    code
}

/// One control-API call to the gateway the config points at: the JSON answer of a 200, or
/// the exit code after saying what went wrong.
fn call(
    global: &Global,
    json_out: bool,
    send: impl FnOnce(&str, Option<&str>) -> Reply,
) -> Result<Value, u8> {
    let config = client::client_config(global)?;
    let addr = paths::gateway_addr(&config);
    let token = client::token(global, &config);
    match send(&addr, token.as_deref()) {
        Reply::NotRunning(why) => {
            if json_out {
                println!(
                    "{}",
                    json!({"ok": false, "error": format!("the gateway is not running at {addr}: {why}"), "reason": "not_running"})
                );
            }
            eprintln!("{}", client::not_running(&addr, &why));
            Err(exit::NOT_RUNNING)
        }
        Reply::Answer { status: 401, .. } => {
            let message = client::refused_token(&addr, token.is_some());
            if json_out {
                println!(
                    "{}",
                    json!({"ok": false, "error": "the gateway refused our token", "reason": "unauthorized"})
                );
            }
            eprintln!("{message}");
            Err(exit::FAILURE)
        }
        Reply::Answer { status, body } => {
            let parsed: Option<Value> = serde_json::from_str(&body).ok();
            match (status, parsed) {
                (200, Some(v)) => Ok(v),
                (_, Some(v)) if v["error"]["message"].is_string() => {
                    let message = v["error"]["message"].as_str().unwrap_or_default();
                    let reason = v["reason"].as_str().unwrap_or("refused");
                    let code = if status == 400 {
                        exit::USAGE
                    } else {
                        exit::FAILURE
                    };
                    Err(fail(json_out, code, message, reason))
                }
                _ => Err(fail(
                    json_out,
                    exit::FAILURE,
                    &format!(
                        "{addr} answered HTTP {status} with something that is not an openclaw answer: is another service on this port?"
                    ),
                    "unexpected_answer",
                )),
            }
        }
    }
}

fn post(path: &'static str, body: Value) -> impl FnOnce(&str, Option<&str>) -> Reply {
    move |addr, token| client::post(addr, path, token, &body, Duration::from_secs(10))
}

/// `pairing list`: codes waiting for the owner and the approved senders.
pub fn list(global: &Global, json_out: bool) -> u8 {
    let v = match call(global, json_out, |addr, token| {
        client::get(addr, "/api/approvals", token)
    }) {
        Ok(v) => v,
        Err(code) => return code,
    };
    if json_out {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return exit::OK;
    }
    let s = Style::stdout();
    let empty = Vec::new();
    let pending = v["pending"].as_array().unwrap_or(&empty);
    let approved = v["approved"].as_array().unwrap_or(&empty);
    let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let name = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    println!("{}", s.bold("Pending approvals"));
    if pending.is_empty() {
        println!("  none: a code appears here when an unknown sender writes to the assistant");
    } else {
        println!(
            "  {:<10} {:<20} {:<20} {:<10} EXPIRES IN",
            "CHANNEL", "SENDER", "NAME", "CODE"
        );
        for p in pending {
            println!(
                "  {:<10} {:<20} {:<20} {:<10} {}",
                text(&p["channel"]),
                text(&p["sender"]),
                name(&p["name"]),
                text(&p["code"]),
                output::duration(p["expires_in_seconds"].as_f64().unwrap_or(0.0))
            );
        }
        println!(
            "  {}",
            s.dim("approve with `openclaw pairing approve CHANNEL CODE`, or reject")
        );
    }
    println!("{}", s.bold("Approved senders"));
    if approved.is_empty() {
        println!("  none");
    } else {
        println!(
            "  {:<10} {:<20} {:<20} APPROVED",
            "CHANNEL", "SENDER", "NAME"
        );
        for a in approved {
            let when = a["approved_at"]
                .as_i64()
                .and_then(|t| jiff::Timestamp::from_second(t).ok())
                .map(|t| t.to_string())
                .unwrap_or_default();
            println!(
                "  {:<10} {:<20} {:<20} {when}",
                text(&a["channel"]),
                text(&a["sender"]),
                name(&a["name"])
            );
        }
    }
    exit::OK
}

/// Who a sender is, for a message: `Ada (42)`, or the id alone.
fn who(v: &Value) -> String {
    let sender = v["sender"].as_str().unwrap_or("?");
    match v["name"].as_str() {
        Some(name) => format!("{name} ({sender})"),
        None => sender.to_owned(),
    }
}

fn report(json_out: bool, v: &Value, human: String) -> u8 {
    if json_out {
        println!("{v}");
    } else {
        println!("{} {human}", Style::stdout().ok("✓"));
    }
    exit::OK
}

/// `pairing approve CHANNEL CODE`.
pub fn approve(global: &Global, channel: &str, code: &str, json_out: bool) -> u8 {
    let body = json!({"channel": channel, "code": code});
    match call(global, json_out, post("/api/approvals/approve", body)) {
        Ok(v) => {
            let human = format!(
                "approved {} on {channel}: they may talk to the assistant now",
                who(&v)
            );
            report(json_out, &v, human)
        }
        Err(code) => code,
    }
}

/// `pairing reject CHANNEL CODE`.
pub fn reject(global: &Global, channel: &str, code: &str, json_out: bool) -> u8 {
    let body = json!({"channel": channel, "code": code});
    match call(global, json_out, post("/api/approvals/reject", body)) {
        Ok(v) => {
            let human = format!("rejected {} on {channel}", who(&v));
            report(json_out, &v, human)
        }
        Err(code) => code,
    }
}

/// `pairing revoke CHANNEL SENDER`.
pub fn revoke(global: &Global, channel: &str, sender: &str, json_out: bool) -> u8 {
    let body = json!({"channel": channel, "sender": sender});
    match call(global, json_out, post("/api/approvals/revoke", body)) {
        Ok(v) => {
            let human = format!(
                "removed {} on {channel}: they are an unknown sender again",
                who(&v)
            );
            report(json_out, &v, human)
        }
        Err(code) => code,
    }
}
