//! `openclaw backup` as users run it: a backup while the gateway takes writes, restore with the
//! gateway stopped, refusals, and a restore killed with SIGKILL half-way.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openclaw_testkit::archive::RawTar;
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

/// The gateway token these tests configure (the WebSocket needs one).
const TOKEN: &str = "test-gateway-token-0123456789";

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
        json!({"type":"req","id":"c","method":"connect","params":{"auth":{"token":TOKEN}}})
            .to_string(),
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
        "gateway:\n  auth:\n    token: \"{TOKEN}\"\nproviders:\n  openai:\n    api_key: k\n    base_url: \"{}\"\nsecurity:\n  rate_limiting:\n    enabled: false\nmemory:\n  max_context_tokens: 10000000\n",
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

/// A crafted archive's manifest: `parts` and `files` as given (they may lie).
fn with_manifest(parts: &[&str], files: Value) -> RawTar {
    let m = json!({"format_version": 1, "app_version": "9.9.9", "created_at": "2026-01-01T00:00:00Z",
                   "parts": parts, "schema_version": null, "files": files});
    RawTar::new().file("MANIFEST.json", m.to_string().as_bytes())
}

/// Every path under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A data dir with a database, a config file and channel auth state.
fn populated() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "agent:\n  name: A\n").unwrap();
    std::fs::create_dir_all(dir.path().join("channels/whatsapp")).unwrap();
    std::fs::write(dir.path().join("channels/whatsapp/creds.json"), "{}").unwrap();
    drop(openclaw_store::Store::open_in_dir(dir.path()).unwrap());
    (dir, config)
}

#[test]
fn verify_of_a_decompression_bomb_fails_fast_with_a_clear_error_and_leaves_nothing_behind() {
    let (dir, config) = populated();
    let bombs = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let ten_bytes = json!([{"path": "config/config.yaml", "sha256": "00", "size": 10}]);
    let cases: Vec<(&str, RawTar, &str)> = vec![
        (
            // The member's header says 8 GiB, the manifest 10 bytes; 64 MiB of zeros follow
            // (about 64 KiB compressed).
            "lying-header",
            with_manifest(&["config"], ten_bytes)
                .header(b"config/config.yaml", tar::EntryType::Regular, 8 << 30)
                .zeros(64 << 20),
            "`config/config.yaml` is 8589934592 bytes, the manifest says 10",
        ),
        (
            // A GNU long name the tar reader would hold in memory whole: 128 MiB of zeros.
            "long-name",
            RawTar::new()
                .header(b"././@LongLink", tar::EntryType::GNULongName, 128 << 20)
                .zeros(128 << 20),
            "decompression bomb",
        ),
        (
            // A manifest that asks for 1 TiB, header agreeing.
            "lying-manifest",
            with_manifest(
                &["memory"],
                json!([{"path": "db/openclaw.db", "sha256": "00", "size": 1u64 << 40}]),
            )
            .header(b"db/openclaw.db", tar::EntryType::Regular, 1 << 40)
            .zeros(64 << 20),
            "declares 1.0 TiB of files; at most 64.0 GiB are accepted",
        ),
    ];
    let before = tree(dir.path());
    for (name, bomb, expected) in cases {
        let archive = bombs.path().join(format!("{name}.tar.gz"));
        bomb.write(&archive).unwrap();
        let size = std::fs::metadata(&archive).unwrap().len();
        assert!(size < 1 << 20, "{name}: {size} bytes");
        let started = Instant::now();
        let (code, v, out) = openclaw_tests::run_json(
            base_command(dir.path(), Some(&config))
                .args(["backup", "verify", archive.to_str().unwrap(), "--json"])
                .env("TMPDIR", scratch.path()),
        );
        let took = started.elapsed();
        assert_eq!(code, 1, "{name}: {out}");
        assert_eq!(v["ok"], false, "{name}: {out}");
        let error = v["error"].as_str().unwrap();
        assert!(error.contains("is not a usable backup"), "{name}: {error}");
        assert!(error.contains(expected), "{name}: {error}");
        assert!(took < Duration::from_secs(10), "{name} took {took:?}");
        assert_eq!(tree(dir.path()), before, "{name} touched the data dir");
        assert_eq!(
            tree(scratch.path()),
            Vec::<String>::new(),
            "{name} left scratch"
        );
    }
}

#[test]
fn verify_while_a_gateway_runs_does_not_touch_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    {
        // Enough data that the verify takes a while to unpack and check.
        let s = openclaw_store::Store::open_in_dir(dir.path()).unwrap();
        let filler = "x".repeat(4000);
        for i in 0..2000 {
            s.save_memory(&format!("memory {i} {filler}"), "", 1)
                .unwrap();
        }
    }
    let mut gw = GatewayProcess::start_in(dir, Some("agent:\n  name: A\n"), &[]).unwrap();
    gw.wait_ready(Duration::from_secs(20)).unwrap();
    let data = gw.data_dir().to_owned();
    let config = gw.config.clone().unwrap();
    let (code, v, out) = cli(&data, &config, &["backup", "create", "--json"]);
    assert_eq!(code, 0, "{out}");
    let archive = v["path"].as_str().unwrap().to_owned();

    let scratch = tempfile::tempdir().unwrap();
    let before = tree(&data);
    // Watch both directories while the verify runs.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (stop, data, scratch) = (stop.clone(), data.clone(), scratch.path().to_owned());
        std::thread::spawn(move || {
            let (mut in_data, mut in_scratch) = (Vec::new(), false);
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                in_data.extend(tree(&data).into_iter().filter(|p| p.contains("verify")));
                in_scratch |= tree(&scratch)
                    .iter()
                    .any(|p| p.starts_with(".openclaw-verify-"));
                std::thread::sleep(Duration::from_millis(1));
            }
            (in_data, in_scratch)
        })
    };
    let (code, v, out) = openclaw_tests::run_json(
        base_command(&data, Some(&config))
            .args(["backup", "verify", &archive, "--json"])
            .env("TMPDIR", scratch.path()),
    );
    stop.store(true, Ordering::SeqCst);
    let (in_data, in_scratch) = watcher.join().unwrap();
    assert_eq!((code, v["ok"].as_bool()), (0, Some(true)), "{out}");
    assert!(
        in_data.is_empty(),
        "verify wrote into the data dir: {in_data:?}"
    );
    assert!(in_scratch, "verify never unpacked into $TMPDIR");
    assert_eq!(tree(scratch.path()), Vec::<String>::new());
    assert_eq!(tree(&data), before);
    assert!(gw.get("/health").is_some());
}

#[test]
fn a_manifest_listing_a_part_without_its_file_fails_verify_and_restore_naming_the_part() {
    let (dir, config) = populated();
    let archive = dir.path().join("hollow.tar.gz");
    with_manifest(&["config", "memory"], json!([]))
        .write(&archive)
        .unwrap();
    let a = archive.to_str().unwrap();
    let (code, _, out) = cli(dir.path(), &config, &["backup", "verify", a]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("lists the part `config` but not its file `config/config.yaml`"),
        "{out}"
    );
    let (code, _, out) = cli(dir.path(), &config, &["backup", "restore", a]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("lists the part `config`"), "{out}");
    // Once, restore turned both into empty directories.
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        "agent:\n  name: A\n"
    );
    assert!(dir.path().join("openclaw.db").is_file());
}

/// `openclaw <args>` run by `sh` with umask 022, the usual default that would leave files
/// 0644: set in the child only, so no other test of this process sees it.
fn cli_with_umask_022(dir: &Path, config: &Path, args: &[&str]) -> (i32, Value, String) {
    let inner = base_command(dir, Some(config));
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg("umask 022; exec \"$0\" \"$@\"")
        .arg(inner.get_program())
        .args(inner.get_args())
        .args(args);
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    openclaw_tests::run_json(&mut cmd)
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn backups_and_restored_files_are_private_under_umask_022() {
    let (dir, config) = populated();
    let d = dir.path();
    let (code, v, out) = cli_with_umask_022(d, &config, &["backup", "create", "--json"]);
    assert_eq!(code, 0, "{out}");
    let archive = v["path"].as_str().unwrap().to_owned();
    assert_eq!(mode(Path::new(&archive)), 0o600, "archive");
    assert_eq!(mode(&d.join("backups")), 0o700, "backups dir");

    // Files as a umask of 022 leaves them, then restored over.
    for p in [
        config.clone(),
        d.join("openclaw.db"),
        d.join("channels/whatsapp/creds.json"),
    ] {
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    }
    let (code, v, out) = cli_with_umask_022(d, &config, &["backup", "restore", &archive, "--json"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        mode(Path::new(v["pre_restore_backup"].as_str().unwrap())),
        0o600,
        "pre-restore archive"
    );
    assert_eq!(mode(&config), 0o600, "config.yaml");
    assert_eq!(mode(&d.join("openclaw.db")), 0o600, "openclaw.db");
    assert_eq!(mode(&d.join("channels")), 0o700, "channels/");
    assert_eq!(
        mode(&d.join("channels/whatsapp")),
        0o700,
        "channels/whatsapp/"
    );
    assert_eq!(
        mode(&d.join("channels/whatsapp/creds.json")),
        0o600,
        "creds.json"
    );
}

#[test]
fn the_gateway_sweeps_what_killed_backups_and_restores_left_at_start() {
    let (dir, config) = populated();
    let d = dir.path().to_owned();
    // (leftover, something inside it or itself when it is a file)
    let dirs = [
        ".restore-scratch-20260101T000000000Z-p1-0",
        ".verify-20250101T000000000Z",
        "backups/.staging-20260101T000000000Z-p1-0",
        "channels.pre-restore",
    ];
    let files = [
        "backups/.openclaw-backup-20260101T000000000Z.tar.gz.p1-0.partial",
        "openclaw.db.restore-new",
        "config.yaml.restore-new",
        ".restore-journal.json.tmp",
    ];
    for name in dirs {
        std::fs::create_dir_all(d.join(name).join("inner")).unwrap();
        std::fs::write(d.join(name).join("inner/file"), "left over").unwrap();
    }
    for name in files {
        std::fs::create_dir_all(d.join(name).parent().unwrap()).unwrap();
        std::fs::write(d.join(name), "left over").unwrap();
    }
    let config_text = std::fs::read_to_string(&config).unwrap();
    let mut gw = GatewayProcess::start_in(dir, Some(&config_text), &[]).unwrap();
    gw.wait_ready(Duration::from_secs(20)).unwrap();
    for name in dirs.iter().chain(&files) {
        assert!(!d.join(name).exists(), "{name} survived the start");
    }
    assert!(d.join("openclaw.db").is_file() && d.join("channels/whatsapp/creds.json").is_file());
    gw.terminate(Duration::from_secs(15)).unwrap();
    let log =
        std::fs::read_to_string(d.join("logs/openclaw.log")).unwrap_or_default() + &gw.stderr();
    assert!(log.contains("removed the leftover"), "{log}");
}
