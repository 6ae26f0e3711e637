//! `openclaw config validate [FILE]`.

use crate::output::Style;
use crate::{Global, exit, paths};
use openclaw_config::{ConfigError, ProcessEnv};
use openclaw_host::config_file::HostEnv;
use serde_json::json;
use std::path::PathBuf;

pub fn config_validate(global: &Global, file: Option<PathBuf>, as_json: bool) -> u8 {
    let Some(path) = file.or_else(|| paths::config_file(global)) else {
        let msg = "no config file given and none found at the default location; the gateway runs on its defaults";
        if as_json {
            println!(
                "{}",
                json!({"valid": true, "file": null, "problems": [], "note": msg})
            );
        } else {
            println!("{msg}");
        }
        return exit::OK;
    };
    let text = match openclaw_host::config_file::read(&path) {
        Ok(t) => t,
        Err(e) => {
            if as_json {
                println!(
                    "{}",
                    json!({"valid": false, "file": path, "problems": [{"line": null, "column": null, "path": "", "message": format!("{e:#}")}]})
                );
            } else {
                eprintln!("openclaw: {e:#}");
            }
            return exit::FAILURE;
        }
    };
    let origin = path.display().to_string();
    let mut problems = Vec::new();
    let parsed = openclaw_config::parse(&text, &origin, &HostEnv::default());
    let config = match parsed {
        Ok(mut c) => {
            if let Err(e) = openclaw_config::apply_env_overrides(&mut c, &ProcessEnv) {
                problems.push(e);
            }
            Some(c)
        }
        Err(e) => {
            problems.push(e);
            None
        }
    };
    let count: usize = problems.iter().map(|e| e.problems.len()).sum();

    if as_json {
        let list: Vec<_> = problems
            .iter()
            .flat_map(|e: &ConfigError| {
                e.problems.iter().map(move |p| {
                    json!({"origin": e.origin, "line": p.line, "column": p.column, "path": p.path, "message": p.message})
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"valid": count == 0, "file": origin, "problems": list})
            )
            .unwrap_or_default()
        );
    } else if count == 0 {
        let s = Style::stdout();
        if let Some(c) = &config {
            println!(
                "{} {origin} is valid: {} provider(s), {} channel(s) enabled, {} device node(s); gateway on {}:{}",
                s.ok("✓"),
                c.providers.len(),
                c.channels.enabled().len(),
                c.device_nodes.len(),
                c.gateway.host,
                c.gateway.port
            );
        }
    } else {
        for e in &problems {
            eprintln!("{e}");
        }
        let s = Style::stdout();
        eprintln!(
            "{} {origin}: {count} problem{}",
            s.bad("✗"),
            if count == 1 { "" } else { "s" }
        );
    }
    if count == 0 { exit::OK } else { exit::FAILURE }
}
