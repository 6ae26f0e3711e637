//! `openclaw update check` against a loopback release feed, and offline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openclaw_testkit::ReleaseFeed;
use openclaw_tests::base_command;
use serde_json::Value;
use std::path::Path;

fn update_check(dir: &Path, feed: &str, extra: &[&str]) -> (i32, Value, String) {
    let config = dir.join("config.yaml");
    std::fs::write(&config, format!("update:\n  feed_url: \"{feed}\"\n")).unwrap();
    let mut args = vec!["update", "check"];
    args.extend_from_slice(extra);
    openclaw_tests::cli(dir, Some(&config), &args)
}

#[test]
fn update_check_reports_newer_same_and_offline() {
    let dir = tempfile::tempdir().unwrap();
    let feed = ReleaseFeed::start_in_thread("v99.0.0");
    let (code, v, out) = update_check(dir.path(), &feed.url(), &["--json"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(v["status"], "update_available");
    assert_eq!(v["latest"], "99.0.0");
    assert_eq!(v["current"], env!("CARGO_PKG_VERSION"));
    let (_, _, human) = update_check(dir.path(), &feed.url(), &[]);
    assert!(human.contains("openclaw 99.0.0 is available"), "{human}");
    assert!(human.contains("openclaw backup create"), "{human}");

    feed.set(
        200,
        ReleaseFeed::github_release(&format!("v{}", env!("CARGO_PKG_VERSION"))),
    );
    let (code, v, _) = update_check(dir.path(), &feed.url(), &["--json"]);
    assert_eq!((code, v["status"].as_str()), (0, Some("up_to_date")));

    // A pre-release is not offered.
    feed.set(
        200,
        ReleaseFeed::github_release("v99.0.0")
            .replace("\"prerelease\":false", "\"prerelease\":true"),
    );
    let (_, v, _) = update_check(dir.path(), &feed.url(), &["--json"]);
    assert_eq!(v["status"], "up_to_date");

    // Broken feed and no network: it says so and does not fail.
    feed.set(500, "oops");
    let (code, v, _) = update_check(dir.path(), &feed.url(), &["--json"]);
    assert_eq!((code, v["status"].as_str()), (0, Some("unknown")));
    feed.set(200, "{\"not\":\"a release\"}");
    let (code, v, _) = update_check(dir.path(), &feed.url(), &["--json"]);
    assert_eq!((code, v["status"].as_str()), (0, Some("unknown")));
    assert!(
        v["error"].as_str().unwrap().contains("GitHub release"),
        "{v}"
    );
    let closed = format!(
        "http://127.0.0.1:{}/repos/a/b/releases/latest",
        openclaw_tests::free_port()
    );
    let (code, _, human) = update_check(dir.path(), &closed, &[]);
    assert_eq!(code, 0);
    assert!(human.contains("could not check for updates"), "{human}");
}

#[test]
fn with_no_feed_configured_update_check_says_so_and_asks_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let (code, v, out) = openclaw_tests::cli(dir.path(), None, &["update", "check", "--json"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(v["status"], "not_configured", "{v}");
    assert_eq!(v["feed"], Value::Null);
    let (code, _, human) = openclaw_tests::cli(dir.path(), None, &["update", "check"]);
    assert_eq!(code, 0);
    assert!(
        human.contains("no update feed is configured") && human.contains("update.feed_url"),
        "{human}"
    );
}

#[test]
fn update_check_backs_up_before_an_update() {
    let dir = tempfile::tempdir().unwrap();
    drop(openclaw_store::Store::open_in_dir(dir.path()).unwrap());
    let feed = ReleaseFeed::start_in_thread("v99.0.0");
    let (code, v, out) = update_check(dir.path(), &feed.url(), &["--json", "--backup"]);
    assert_eq!(code, 0, "{out}");
    let path = v["pre_update_backup"].as_str().unwrap();
    assert!(
        path.contains("pre-update") && Path::new(path).exists(),
        "{v}"
    );
}

use openclaw_testkit::{FakeLlm, Script};
use openclaw_tests::GatewayProcess;
use std::time::Duration;

fn doctor(dir: &Path, config: &Path, port: u16) -> (i32, Value, String) {
    openclaw_tests::run_json(
        base_command(dir, Some(config))
            .args(["doctor", "--json"])
            .env("OPENCLAW_PORT", port.to_string()),
    )
}

fn status_of<'a>(v: &'a Value, id: &str) -> Vec<&'a str> {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == id)
        .map(|c| c["status"].as_str().unwrap())
        .collect()
}

#[test]
fn doctor_passes_a_well_run_deployment() {
    let fake = FakeLlm::start_in_thread();
    fake.set_valid_key("sk-good");
    fake.set_fallback(Script::text(["ok"]));
    let config = format!(
        "providers:\n  anthropic:\n    api_key: sk-good\n    base_url: \"{}\"\nbackup:\n  enabled: true\n",
        fake.anthropic_url()
    );
    let mut gw = GatewayProcess::start(Some(&config), &[]).unwrap();
    gw.wait_ready(Duration::from_secs(20)).unwrap();
    let cfg = gw.config.clone().unwrap();
    let out = gw.cli(&["backup", "create"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, v, out) = doctor(gw.data_dir(), &cfg, gw.addr.port());
    assert_eq!(code, 0, "{out}");
    assert_eq!(v["summary"]["fail"], 0, "{v}");
    for id in [
        "api_keys",
        "rate_limits",
        "audit_log",
        "log_rotation",
        "health",
        "metrics",
        "backup_schedule",
        "backup_recent",
        "loopback",
        "tls",
    ] {
        assert_eq!(status_of(&v, id), ["pass"], "{id}: {v}");
    }
    // Every pass rests on something checked here, never on the config file alone.
    for c in v["checks"].as_array().unwrap() {
        if c["status"] == "pass" {
            assert!(
                c["verified_by"] == "live" || c["verified_by"] == "checked",
                "a pass that was not verified: {c}"
            );
        }
    }
    // What this build cannot do is a warning that says so, not a pass of the config value.
    let detail = |id: &str| {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .map(|c| {
                (
                    c["status"].as_str().unwrap().to_owned(),
                    c["detail"].as_str().unwrap().to_owned(),
                )
            })
            .unwrap()
    };
    let (status, sandbox) = detail("sandbox");
    assert_eq!(status, "warn");
    assert!(
        sandbox.contains("no code can run: this build has no code-execution tools"),
        "{sandbox}"
    );
    let (status, pairing) = detail("pairing");
    assert_eq!(status, "warn");
    assert!(pairing.contains("no chat channels"), "{pairing}");
    // No update feed is configured by default: shown as such, not failed.
    let (status, feed) = detail("update_feed");
    assert_eq!(status, "warn");
    assert!(feed.contains("not configured"), "{feed}");
    // No chat channel enabled: a warning, not a failure.
    assert_eq!(status_of(&v, "channels"), ["warn"]);
    // The human form lists every item.
    let out = gw.cli(&["doctor"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("✓ pass") && text.contains("doctor: "),
        "{text}"
    );
}

#[test]
fn doctor_fails_with_fixes_when_things_are_wrong() {
    let fake = FakeLlm::start_in_thread();
    fake.set_valid_key("sk-good");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "providers:\n  openai:\n    api_key: sk-wrong\n    base_url: \"{}\"\nsecurity:\n  rate_limiting:\n    enabled: false\n  pairing:\n    mode: open\n",
            fake.openai_url()
        ),
    )
    .unwrap();
    let port = openclaw_tests::free_port();
    let (code, v, out) = doctor(dir.path(), &config, port);
    assert_eq!(code, 1, "{out}");
    for id in [
        "api_keys",
        "rate_limits",
        "pairing",
        "health",
        "backup_schedule",
        "backup_recent",
    ] {
        assert_eq!(status_of(&v, id), ["fail"], "{id}: {v}");
    }
    let checks = v["checks"].as_array().unwrap();
    let key = checks.iter().find(|c| c["id"] == "api_keys").unwrap();
    assert!(key["detail"].as_str().unwrap().contains("401"), "{key}");
    assert!(
        key["fix"]
            .as_str()
            .unwrap()
            .contains("providers.openai.api_key"),
        "{key}"
    );
    assert!(
        checks
            .iter()
            .filter(|c| c["status"] == "fail")
            .all(|c| c["fix"].is_string()),
        "{v}"
    );
}
