//! `openclaw update check` against a loopback release feed, and offline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openclaw_testkit::ReleaseFeed;
use openclaw_tests::base_command;
use serde_json::Value;
use std::path::Path;

fn update_check(dir: &Path, feed: &str, extra: &[&str]) -> (i32, Value, String) {
    let config = dir.join("config.yaml");
    std::fs::write(&config, format!("update:\n  feed_url: \"{feed}\"\n")).unwrap();
    let out = base_command(dir, Some(&config))
        .args(["update", "check"])
        .args(extra)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let v = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (
        out.status.code().unwrap(),
        v,
        stdout + &String::from_utf8_lossy(&out.stderr),
    )
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
