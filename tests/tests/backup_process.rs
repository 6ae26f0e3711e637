//! `openclaw backup` as users run it: a backup while the gateway takes writes, restore with the
//! gateway stopped, refusals, and a restore killed with SIGKILL half-way.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openclaw_testkit::{FakeLlm, Script};
use openclaw_tests::{GatewayProcess, base_command};
use serde_json::{Value, json};
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tungstenite::Message;

fn cli(dir: &Path, config: &Path, args: &[&str]) -> (i32, Value, String) {
    openclaw_tests::cli(dir, Some(config), args)
}

/// Sends chat turns over the WebSocket until told to stop; counts the finished ones.
fn chatter(addr: std::net::SocketAddr, stop: Arc<AtomicBool>, done: Arc<AtomicU64>) {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_nodelay(true).unwrap();
    let (mut ws, _) = tungstenite::client(format!("ws://{addr}/ws"), tcp).unwrap();
    let read = |ws: &mut tungstenite::WebSocket<TcpStream>| loop {
        if let Message::Text(t) = ws.read().unwrap() {
            return serde_json::from_str::<Value>(t.as_str()).unwrap();
        }
    };
    read(&mut ws);
    ws.send(Message::text(
        json!({"type":"req","id":"c","method":"connect","params":{}}).to_string(),
    ))
    .unwrap();
    read(&mut ws);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut i = 0u64;
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline && i < 100_000 {
        i += 1;
        let req = json!({"type":"req","id": i.to_string(),"method":"chat.send","params":{"text": format!("message {i}"),"session":"writer"}});
        ws.send(Message::text(req.to_string())).unwrap();
        loop {
            let v = read(&mut ws);
            if v["event"] == "chat.final" {
                break;
            }
        }
        done.fetch_add(1, Ordering::SeqCst);
    }
}

fn config_text(fake: &FakeLlm) -> String {
    format!(
        "providers:\n  openai:\n    api_key: k\n    base_url: \"{}\"\nsecurity:\n  rate_limiting:\n    enabled: false\nmemory:\n  max_context_tokens: 10000000\n",
        fake.openai_url()
    )
}

fn count_messages(db: &Path) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn backup_while_serving_then_restore_with_the_gateway_stopped() {
    let fake = FakeLlm::start_in_thread();
    fake.set_fallback(Script::text(["ok"]));
    let mut gw = GatewayProcess::start(Some(&config_text(&fake)), &[]).unwrap();
    gw.wait_ready(Duration::from_secs(20)).unwrap();
    let dir = gw.data_dir().to_owned();
    let config = gw.config.clone().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, done, addr) = (stop.clone(), done.clone(), gw.addr);
        std::thread::spawn(move || chatter(addr, stop, done))
    };
    while done.load(Ordering::SeqCst) < 20 {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Every turn finished before the backup starts is committed and must be in the archive.
    let committed_before = done.load(Ordering::SeqCst);
    let (code, v, out) = cli(&dir, &config, &["backup", "create", "--json"]);
    assert_eq!(code, 0, "{out}");
    let during = done.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    assert!(
        during > committed_before,
        "the gateway kept serving during the backup"
    );
    let archive = v["path"].as_str().unwrap().to_owned();
    assert_eq!(
        v["manifest"]["parts"],
        json!(["memory", "sessions", "config", "channel_auth"])
    );

    let (code, v, out) = cli(&dir, &config, &["backup", "verify", &archive, "--json"]);
    assert_eq!((code, v["ok"].as_bool()), (0, Some(true)), "{out}");
    let (_, v, _) = cli(&dir, &config, &["backup", "list", "--json"]);
    assert_eq!(v["archives"].as_array().unwrap().len(), 1);

    // Restore refuses while the gateway runs.
    let (code, _, out) = cli(&dir, &config, &["backup", "restore", &archive]);
    assert_eq!(code, 1);
    assert!(out.contains("stop it first"), "{out}");

    gw.terminate(Duration::from_secs(15)).unwrap();
    let after_run = count_messages(&dir.join("openclaw.db"));
    let (code, v, out) = cli(&dir, &config, &["backup", "restore", &archive, "--json"]);
    assert_eq!(code, 0, "{out}");
    let restored = count_messages(&dir.join("openclaw.db"));
    assert!(
        restored >= 2 * committed_before as i64,
        "lost committed rows: {restored} < 2×{committed_before}"
    );
    assert!(restored <= after_run);
    assert!(
        v["pre_restore_backup"]
            .as_str()
            .unwrap()
            .contains("pre-restore")
    );
    let audit = std::fs::read_to_string(dir.join("logs/audit.log")).unwrap();
    assert!(audit.contains("\"backup.restored\""), "{audit}");
    // The pre-restore archive holds everything written up to the stop.
    let (code, _, out) = cli(
        &dir,
        &config,
        &[
            "backup",
            "verify",
            v["pre_restore_backup"].as_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}");
}

#[test]
fn corrupted_archive_fails_verify_and_restore_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "agent:\n  name: A\n").unwrap();
    drop(openclaw_store::Store::open_in_dir(dir.path()).unwrap());
    let (code, v, out) = cli(dir.path(), &config, &["backup", "create", "--json"]);
    assert_eq!(code, 0, "{out}");
    let archive = v["path"].as_str().unwrap().to_owned();
    let mut bytes = std::fs::read(&archive).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&archive, bytes).unwrap();
    let (code, _, out) = cli(dir.path(), &config, &["backup", "verify", &archive]);
    assert_eq!(code, 1);
    assert!(out.contains("truncated or corrupt"), "{out}");
    let (code, _, out) = cli(dir.path(), &config, &["backup", "restore", &archive]);
    assert_eq!(code, 1);
    assert!(out.contains("not a usable backup"), "{out}");
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        "agent:\n  name: A\n"
    );
}

#[test]
fn retention_keeps_max_backups() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "backup:\n  max_backups: 2\n").unwrap();
    drop(openclaw_store::Store::open_in_dir(dir.path()).unwrap());
    for _ in 0..3 {
        assert_eq!(
            cli(dir.path(), &config, &["backup", "create", "--json"]).0,
            0
        );
    }
    let (_, v, _) = cli(dir.path(), &config, &["backup", "list", "--json"]);
    assert_eq!(v["archives"].as_array().unwrap().len(), 2);
}

#[test]
fn a_restore_killed_half_way_leaves_the_old_data_after_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "agent:\n  name: Before\n").unwrap();
    {
        let s = openclaw_store::Store::open_in_dir(dir.path()).unwrap();
        s.save_memory("old memory", "", 1).unwrap();
    }
    let (code, v, out) = cli(dir.path(), &config, &["backup", "create", "--json"]);
    assert_eq!(code, 0, "{out}");
    let archive = v["path"].as_str().unwrap().to_owned();
    // Change everything after the backup: this is the state that must survive.
    std::fs::write(&config, "agent:\n  name: After\n").unwrap();
    {
        let s = openclaw_store::Store::open_in_dir(dir.path()).unwrap();
        s.save_memory("new memory", "", 2).unwrap();
    }

    let mut child = base_command(dir.path(), Some(&config))
        .args(["backup", "restore", &archive])
        .env("OPENCLAW_TEST_PAUSE_AFTER_SWAP", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let journal = dir.path().join(".restore-journal.json");
    let deadline = Instant::now() + Duration::from_secs(20);
    // Wait until the first swap (the config) is done, then kill.
    while std::fs::read_to_string(&config)
        .unwrap_or_default()
        .contains("After")
    {
        assert!(
            Instant::now() < deadline,
            "restore did not reach its first swap"
        );
        assert!(child.try_wait().unwrap().is_none(), "restore ended early");
        std::thread::sleep(Duration::from_millis(10));
    }
    openclaw_tests::signal(child.id(), "KILL").unwrap();
    child.wait().unwrap();
    assert!(journal.exists());

    // The next start of the gateway rolls the half-done restore back.
    let port = openclaw_tests::free_port();
    let mut gw = base_command(dir.path(), Some(&config))
        .args(["gateway", "run"])
        .env("OPENCLAW_PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(20);
    while openclaw_tests::http_get(addr, "/health", None).is_none() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    openclaw_tests::signal(gw.id(), "TERM").unwrap();
    gw.wait().unwrap();
    assert!(!journal.exists());
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        "agent:\n  name: After\n"
    );
    let s = openclaw_store::Store::open_in_dir(dir.path()).unwrap();
    assert_eq!(s.search_memories("new", 5).unwrap().len(), 1);
    assert_eq!(s.search_memories("old", 5).unwrap().len(), 1);
}

fn wait_for_health(gw: &GatewayProcess, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = gw.get("/health").unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        if ok(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} never happened: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn scheduled_backups_run_keep_retention_and_report_in_health_and_metrics() {
    // Every second (six fields: seconds first), keeping two archives.
    let config = "backup:\n  enabled: true\n  schedule: \"* * * * * *\"\n  max_backups: 2\n  include: [memory, sessions]\n";
    let mut gw = GatewayProcess::start(Some(config), &[]).unwrap();
    gw.wait_ready(Duration::from_secs(20)).unwrap();
    let v = wait_for_health(&gw, "three backups", |v| {
        v["checks"]["backup"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("last backup at"))
            && std::fs::read_dir(gw.data_dir().join("backups"))
                .map(|d| d.count())
                .unwrap_or(0)
                >= 2
    });
    assert_eq!(v["checks"]["backup"]["status"], "healthy");
    std::thread::sleep(Duration::from_millis(2500));
    let archives = openclaw_backup::list(&gw.data_dir().join("backups")).unwrap();
    assert_eq!(archives.len(), 2, "retention keeps backup.max_backups");
    let (_, metrics) = gw.get("/metrics").unwrap();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("openclaw_backup_last_success_timestamp_seconds "))
        .unwrap();
    let ts: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(ts > 1.7e9, "{line}");
    assert!(
        metrics.contains("openclaw_backup_failures_total 0"),
        "{metrics}"
    );
    // include: [memory, sessions] → the database only.
    let (_, body) = gw.get("/health").unwrap();
    assert!(body.contains("\"backup\""));
    let scratch = tempfile::tempdir().unwrap();
    let m = openclaw_backup::verify(&archives[1].path, scratch.path(), &mut |_, _, _| {}).unwrap();
    assert_eq!(m.parts, ["memory", "sessions"]);
}

#[test]
fn a_failing_scheduled_backup_degrades_health_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    // The backup path is under a plain file: it cannot be created.
    std::fs::write(dir.path().join("not-a-dir"), "").unwrap();
    let config = format!(
        "backup:\n  enabled: true\n  schedule: \"* * * * * *\"\n  path: \"{}\"\n",
        dir.path().join("not-a-dir/backups").display()
    );
    let mut gw = GatewayProcess::start_in(dir, Some(&config), &[]).unwrap();
    gw.wait_ready(Duration::from_secs(20)).unwrap();
    let v = wait_for_health(&gw, "a failed backup", |v| {
        v["checks"]["backup"]["status"] == "degraded"
    });
    assert!(
        v["checks"]["backup"]["detail"]
            .as_str()
            .unwrap()
            .contains("failed"),
        "{v}"
    );
    let (_, metrics) = gw.get("/metrics").unwrap();
    assert!(
        !metrics.contains("openclaw_backup_failures_total 0"),
        "{metrics}"
    );
}
