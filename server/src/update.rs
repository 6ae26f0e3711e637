//! `openclaw update check`: compares this version with the newest release in the configured
//! feed (GitHub releases API format) and says what to do. Offline, it says it could not check
//! and exits 0: a missing network must not break scripts or health checks.

use crate::output::Style;
use crate::paths::{self, LoadError};
use crate::{Global, exit};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

/// The fields of a GitHub release this command reads.
#[derive(Debug, Deserialize)]
struct Release {
    tag_name: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    html_url: Option<String>,
    #[serde(default)]
    published_at: Option<String>,
    #[serde(default)]
    draft: bool,
    #[serde(default)]
    prerelease: bool,
}

/// Fetches the feed with the HTTPS client the agent already links (no second TLS stack).
fn fetch(url: &str) -> Result<Release, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    runtime.block_on(async {
        // Whoever installs the process's crypto provider first wins; any is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("openclaw/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let resp = client
            .get(url)
            .header("Accept", "application/vnd.github+json")
            .send()
            .await
            .map_err(|e| {
                let mut msg = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    msg.push_str(&format!(": {s}"));
                    src = s.source();
                }
                msg
            })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("the feed answered HTTP {status}"));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| format!("reading the reply: {e}"))?;
        if body.len() > 1 << 20 {
            return Err("the feed's reply is larger than 1 MiB".into());
        }
        serde_json::from_slice(&body)
            .map_err(|e| format!("the feed did not answer with a GitHub release ({e})"))
    })
}

/// What `update check` (and doctor) say when no feed is set.
pub const NOT_CONFIGURED: &str = "no update feed is configured, so nothing was checked: set update.feed_url in config.yaml to your release feed (a GitHub releases API URL ending in /releases/latest)";

/// The newest release's tag at `url` (doctor's check that the feed answers).
pub fn fetch_latest_tag(url: &str) -> Result<String, String> {
    fetch(url).map(|r| r.tag_name)
}

fn version_of(tag: &str) -> Result<semver::Version, String> {
    semver::Version::parse(tag.trim_start_matches('v'))
        .map_err(|e| format!("the release tag `{tag}` is not a version ({e})"))
}

pub fn check(global: &Global, json_out: bool, backup: bool) -> u8 {
    let loaded = match paths::load_config(global) {
        Ok(l) => l,
        Err(LoadError::Invalid(e)) => {
            eprintln!("{e}");
            return exit::FAILURE;
        }
        Err(e @ LoadError::Read { .. }) => {
            eprintln!("openclaw: {e:#}");
            return exit::FAILURE;
        }
    };
    let current = env!("CARGO_PKG_VERSION");
    let Some(feed) = loaded.config.update.feed_url.clone() else {
        if json_out {
            println!(
                "{}",
                json!({"status": "not_configured", "current": current, "feed": null,
                       "error": NOT_CONFIGURED})
            );
        } else {
            println!("you run openclaw {current}; {NOT_CONFIGURED}");
        }
        return exit::OK;
    };
    let release = fetch(&feed).and_then(|r| version_of(&r.tag_name).map(|v| (r, v)));
    let (release, latest) = match release {
        Ok(r) => r,
        Err(why) => {
            if json_out {
                println!(
                    "{}",
                    json!({"status": "unknown", "current": current, "feed": feed, "error": why})
                );
            } else {
                println!(
                    "could not check for updates ({why}); you run openclaw {current}. Check {feed} when online."
                );
            }
            return exit::OK;
        }
    };
    let mine = semver::Version::parse(current).unwrap_or_else(|_| semver::Version::new(0, 0, 0));
    let newer = latest > mine && !release.draft && !release.prerelease;
    let mut pre_update = None;
    if newer && backup {
        let data_dir = match paths::data_dir(global) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("openclaw: {e:#}");
                return exit::FAILURE;
            }
        };
        let layout =
            crate::backup_cmd::layout(&data_dir, &loaded.config, loaded.file.clone(), None);
        match openclaw_backup::create(
            &layout,
            crate::backup_cmd::include(&loaded.config),
            current,
            Some("pre-update"),
            &mut |_, _, _| {},
        ) {
            Ok(c) => pre_update = Some(c.path),
            Err(e) => {
                eprintln!("openclaw: the pre-update backup failed: {e}");
                return exit::FAILURE;
            }
        }
    }
    if json_out {
        println!(
            "{}",
            json!({
                "status": if newer { "update_available" } else { "up_to_date" },
                "current": current,
                "latest": latest.to_string(),
                "name": release.name,
                "url": release.html_url,
                "published_at": release.published_at,
                "pre_update_backup": pre_update,
            })
        );
        return exit::OK;
    }
    let s = Style::stdout();
    if newer {
        println!(
            "{} openclaw {latest} is available (you run {current}){}",
            s.bold("↑"),
            release
                .published_at
                .as_deref()
                .map(|p| format!(", published {p}"))
                .unwrap_or_default()
        );
        if let Some(url) = &release.html_url {
            println!("  release notes: {url}");
        }
        match &pre_update {
            Some(p) => println!("  backed up first: {}", p.display()),
            None => println!(
                "  1. back up first: openclaw backup create   (or: openclaw update check --backup)"
            ),
        }
        println!("  2. Docker: docker compose pull && docker compose up -d --no-deps gateway");
        println!("     binary: replace the openclaw binary, then systemctl restart openclaw");
        println!("  3. verify: openclaw status && openclaw health");
    } else {
        println!(
            "{} openclaw {current} is up to date (newest release: {latest})",
            s.ok("✓")
        );
    }
    exit::OK
}
