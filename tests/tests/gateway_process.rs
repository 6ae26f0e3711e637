//! The `openclaw` binary as users run it: start on defaults, health and status from the CLI,
//! overrides, refusals with clear errors, SIGTERM drain, audit of config changes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openclaw_protocol::{CheckStatus, HealthReport};
use openclaw_tests::{GatewayProcess, base_command, free_port, http_get, rss_kib};
use serde_json::Value;
use std::time::Duration;

const READY: Duration = Duration::from_secs(20);

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

#[test]
fn starts_on_defaults_and_answers_health_status_and_metrics() {
    let mut gw = GatewayProcess::start(None, &[]).unwrap();
    gw.wait_ready(READY).unwrap();

    let (status, body) = gw.get("/health").unwrap();
    assert_eq!(status, 200, "{body}");
    let report: HealthReport = serde_json::from_str(&body).unwrap();
    // No provider on defaults: degraded, and the agent check says what to configure.
    assert_eq!(report.status, CheckStatus::Degraded);
    assert!(report.checks.agent.detail.contains("api_key"));
    assert!(gw.data_dir().join("openclaw.db").exists());
    assert!(gw.data_dir().join("logs/openclaw.log").exists());

    // `openclaw health`: exit 1 for degraded, the report in human words.
    let out = gw.cli(&["health"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let human = text(&out.stdout);
    assert!(
        human.contains("degraded") && human.contains("gateway") && human.contains("disk"),
        "{human}"
    );

    let out = gw.cli(&["health", "--allow-degraded"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "degraded is fine for a container health check"
    );

    let out = gw.cli(&["health", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "degraded");

    let out = gw.cli(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let human = text(&out.stdout);
    for needle in [
        "running",
        &gw.addr.to_string(),
        "openclaw.db",
        "Sessions: 0",
        "Nodes: 0",
    ] {
        assert!(human.contains(needle), "missing {needle}:\n{human}");
    }
    let out = gw.cli(&["status", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["running"], true);
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["bind"], gw.addr.to_string());

    let (status, metrics) = gw.get("/metrics").unwrap();
    assert_eq!(status, 200);
    // Series of the default channel exist at zero. Token and tool series appear with a
    // configured provider and registered tools (see the next test and the gateway's own tests).
    assert!(
        metrics.contains("openclaw_messages_received_total{channel=\"webchat\"} 0"),
        "{metrics}"
    );
    for family in [
        "openclaw_messages_received",
        "openclaw_messages_processed",
        "openclaw_response_time_seconds",
        "openclaw_active_sessions",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
    ] {
        assert!(
            metrics.contains(&format!("# TYPE {family}")),
            "missing {family}:\n{metrics}"
        );
    }

    let (code, took) = gw.terminate(Duration::from_secs(15)).unwrap();
    assert!(code.success(), "exit after SIGTERM: {code}");
    assert!(took < Duration::from_secs(11), "drain took {took:?}");
}

#[test]
fn cli_says_when_the_gateway_is_not_running() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    for args in [&["health"][..], &["status"][..]] {
        let out = base_command(dir.path(), None)
            .args(args)
            .env("OPENCLAW_PORT", port.to_string())
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("not running") || text(&out.stdout).contains("not running"),
            "{err}"
        );
        assert!(err.contains("openclaw gateway run"), "{err}");
    }
}

#[test]
fn sigint_also_drains_and_exits_zero() {
    let mut gw = GatewayProcess::start(None, &[]).unwrap();
    gw.wait_ready(READY).unwrap();
    openclaw_tests::signal(gw.child.id(), "INT").unwrap();
    let status = gw.child.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn log_level_override_and_token_guarded_status() {
    let config =
        "gateway:\n  auth:\n    token: \"${GW_TOKEN}\"\nproviders:\n  openai:\n    model: gpt-4o\n";
    let mut gw = GatewayProcess::start(
        Some(config),
        &[
            ("GW_TOKEN", "t0k-0123456789abcdef"),
            ("OPENCLAW_LOG_LEVEL", "debug"),
        ],
    )
    .unwrap();
    gw.wait_ready(READY).unwrap();
    assert_eq!(http_get(gw.addr, "/api/status", None).unwrap().0, 401);
    assert_eq!(
        http_get(gw.addr, "/api/status", Some("t0k-0123456789abcdef"))
            .unwrap()
            .0,
        200
    );
    // The CLI reads the token from the same config.
    let out = gw.cli(&["status", "--json"]).clone();
    assert_eq!(
        out.status.code(),
        Some(1),
        "no GW_TOKEN in the CLI's env: {}",
        text(&out.stderr)
    );
    let mut cmd = base_command(gw.data_dir(), gw.config.as_deref());
    let out = cmd
        .args(["status", "--json"])
        .env("OPENCLAW_PORT", gw.addr.port().to_string())
        .env("GW_TOKEN", "t0k-0123456789abcdef")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    gw.terminate(Duration::from_secs(15)).unwrap();
    let log = std::fs::read_to_string(gw.data_dir().join("logs/openclaw.log")).unwrap();
    assert!(
        log.contains("DEBUG"),
        "OPENCLAW_LOG_LEVEL=debug had no effect:\n{log}"
    );
    let audit = std::fs::read_to_string(gw.data_dir().join("logs/audit.log")).unwrap();
    assert!(audit.contains("\"auth.failure\""), "{audit}");
}

#[test]
fn refuses_a_public_bind_without_a_token() {
    let mut gw = GatewayProcess::start(Some("gateway:\n  host: 0.0.0.0\n"), &[]).unwrap();
    let status = gw.child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    let err = gw.stderr();
    assert!(err.contains("refusing to listen on 0.0.0.0"), "{err}");
    assert!(err.contains("gateway.auth.token"), "{err}");
}

#[test]
fn invalid_config_exits_78_listing_every_problem() {
    let bad = "gateway:\n  prot: 1\nlogging:\n  level: loud\nproviders:\n  anthropic:\n    api_key: ${NOT_SET_ANYWHERE}\n";
    let mut gw = GatewayProcess::start(Some(bad), &[]).unwrap();
    let status = gw.child.wait().unwrap();
    assert_eq!(status.code(), Some(78));
    let err = gw.stderr();
    for needle in [
        "config.yaml:2:3: gateway.prot: unknown key `prot` (did you mean `port`?)",
        "config.yaml:4:3: logging.level: `loud` is not a valid value",
        "config.yaml:7:",
        "NOT_SET_ANYWHERE is not set",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }

    let out = gw.cli(&["config", "validate"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("3 problems"),
        "{}",
        text(&out.stderr)
    );
    let out = gw.cli(&["config", "validate", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["problems"].as_array().unwrap().len(), 3);
    assert_eq!(v["problems"][0]["line"], 2);
}

#[test]
fn config_validate_accepts_the_example_and_reports_a_bad_port_override() {
    let example = openclaw_tests::repo_root().join("deploy/config.example.yaml");
    let dir = tempfile::tempdir().unwrap();
    let run = |env: &[(&str, &str)]| {
        let mut cmd = base_command(dir.path(), None);
        cmd.args(["config", "validate"])
            .arg(&example)
            .env("NO_COLOR", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let vars = [
        ("ANTHROPIC_API_KEY", "a"),
        ("OPENAI_API_KEY", "b"),
        ("OPENCLAW_GATEWAY_TOKEN", "c-0123456789abcdef"),
        ("TELEGRAM_BOT_TOKEN", "d"),
        ("SLACK_BOT_TOKEN", "e"),
        ("SLACK_APP_TOKEN", "f"),
    ];
    let out = run(&vars);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("is valid"));

    // Without the environment, each missing variable is named with its key.
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "providers.anthropic.api_key: environment variable ANTHROPIC_API_KEY is not set"
        ),
        "{err}"
    );
    assert!(err.contains("6 problems"), "{err}");

    let mut with_port = vars.to_vec();
    with_port.push(("OPENCLAW_PORT", "99999"));
    let out = run(&with_port);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("OPENCLAW_PORT"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_database_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("openclaw.db");
    drop(openclaw_store::Store::open(&db).unwrap());
    {
        // A later openclaw migrated this file past what we understand.
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("PRAGMA user_version = 999; PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    let mut gw = GatewayProcess::start_in(dir, None, &[]).unwrap();
    let status = gw.child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    let err = gw.stderr();
    assert!(err.contains("newer openclaw"), "{err}");
    assert_eq!(
        std::fs::read(gw.data_dir().join("openclaw.db")).unwrap(),
        before
    );
}

#[test]
fn config_changes_between_runs_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = GatewayProcess::start_in(dir, Some("agent:\n  name: One\n"), &[]).unwrap();
    gw.wait_ready(READY).unwrap();
    gw.terminate(Duration::from_secs(15)).unwrap();
    let dir = std::mem::replace(&mut gw.dir, tempfile::tempdir().unwrap());
    drop(gw);
    // Same file, same text: no change recorded on the second run.
    let mut gw = GatewayProcess::start_in(dir, Some("agent:\n  name: One\n"), &[]).unwrap();
    gw.wait_ready(READY).unwrap();
    gw.terminate(Duration::from_secs(15)).unwrap();
    let dir = std::mem::replace(&mut gw.dir, tempfile::tempdir().unwrap());
    drop(gw);
    let mut gw = GatewayProcess::start_in(dir, Some("agent:\n  name: Two\n"), &[]).unwrap();
    gw.wait_ready(READY).unwrap();
    gw.terminate(Duration::from_secs(15)).unwrap();

    let audit = std::fs::read_to_string(gw.data_dir().join("logs/audit.log")).unwrap();
    let events: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let changes: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "config.changed")
        .collect();
    assert_eq!(changes.len(), 2, "{audit}");
    assert!(changes[0]["detail"]["from_sha256"].is_null());
    assert_eq!(
        changes[1]["detail"]["from_sha256"],
        changes[0]["detail"]["to_sha256"]
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e["event"] == "gateway.started")
            .count(),
        3
    );
    // The chain holds across the three runs.
    for pair in events.windows(2) {
        assert_eq!(pair[1]["prev"], pair[0]["hash"]);
    }
}

#[test]
fn memory_persistence_off_keeps_no_database_file() {
    let mut gw = GatewayProcess::start(Some("memory:\n  persistence: false\n"), &[]).unwrap();
    gw.wait_ready(READY).unwrap();
    let (_, body) = gw.get("/health").unwrap();
    let report: HealthReport = serde_json::from_str(&body).unwrap();
    assert!(report.checks.memory.detail.contains("RAM"), "{body}");
    assert!(!gw.data_dir().join("openclaw.db").exists());
}

#[test]
fn a_second_gateway_on_the_same_data_dir_is_refused() {
    let mut first = GatewayProcess::start(None, &[]).unwrap();
    first.wait_ready(READY).unwrap();
    let port = free_port();
    let out = base_command(first.data_dir(), None)
        .args(["gateway", "run"])
        .env("OPENCLAW_PORT", port.to_string())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is using the data dir"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        first.get("/health").unwrap().0,
        200,
        "the first one is unharmed"
    );
}

#[test]
fn start_up_memory_is_given_back_and_the_gateway_keeps_serving() {
    let mut gw = GatewayProcess::start(None, &[("OPENCLAW_LOG_LEVEL", "debug")]).unwrap();
    gw.wait_ready(READY).unwrap();
    let pid = gw.child.id();
    let at_start = rss_kib(pid).unwrap();
    let before: HealthReport = serde_json::from_str(&gw.get("/health").unwrap().1).unwrap();
    // Released once, 5 s after start-up; bounded wait.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !gw.stderr().contains("start-up memory released") {
        assert!(
            std::time::Instant::now() < deadline,
            "no release within 20 s:\n{}",
            gw.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let released = rss_kib(pid).unwrap();
    assert!(
        released * 10 < at_start * 7,
        "RSS {at_start} KiB at start-up, {released} KiB after the release:\n{}",
        gw.stderr()
    );
    // Everything it drops faults back in: the gateway serves as before.
    let (status, body) = gw.get("/health").unwrap();
    assert_eq!(status, 200, "{body}");
    let report: HealthReport = serde_json::from_str(&body).unwrap();
    assert_eq!(report.status, before.status, "{body}");
    let statuses = |r: &HealthReport| {
        let c = &r.checks;
        [&c.gateway, &c.agent, &c.channels, &c.memory, &c.disk].map(|c| c.status)
    };
    assert_eq!(statuses(&report), statuses(&before), "{body}");
    let (status, metrics) = gw.get("/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("openclaw_messages_received_total{channel=\"webchat\"} 0"),
        "{metrics}"
    );
    gw.terminate(Duration::from_secs(15)).unwrap();
}
