//! The security rules of the `openclaw` binary, tested against the real process: a hostile page
//! in headless Chromium on another loopback origin, a rebinding `Host`, file modes under umask
//! 022, slow and idle clients, oversized frames and bodies, the generated token used by the CLI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openclaw_testkit::{FakeLlm, Script};
use openclaw_tests::{GatewayProcess, base_command, http_get};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const READY: Duration = Duration::from_secs(20);

fn provider(fake: &FakeLlm) -> String {
    format!(
        "providers:\n  anthropic:\n    api_key: sk-test\n    base_url: \"{}\"\n",
        fake.anthropic_url()
    )
}

/// One raw request on a fresh connection; the status and body.
fn raw(addr: SocketAddr, head: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    openclaw_tests::parse_response(&out).unwrap_or((0, String::new()))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn a_hostile_page_in_chromium_cannot_drive_the_gateway() {
    let fake = FakeLlm::start_in_thread();
    fake.set_fallback(Script::text(["should never be asked"]));
    let mut gw = GatewayProcess::start(Some(&provider(&fake)), &[]).unwrap();
    gw.wait_ready(READY).unwrap();
    let token = gw.token().expect("a generated token");
    let dir = openclaw_tests::repo_root().join("tests/e2e");
    let out = Command::new("node")
        .current_dir(&dir)
        .args(["cross_origin.mjs", &gw.addr.to_string(), &token])
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cross_origin.mjs failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(stdout.trim().lines().last().unwrap()).unwrap();
    // The WebSocket never opened: refused at the upgrade, before any frame.
    let ws: Vec<&str> = v["websocket"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(!ws.contains(&"open") && !ws.contains(&"message"), "{v}");
    assert_eq!(
        v["status_read"].as_str().map(|s| s.starts_with("failed")),
        Some(true),
        "{v}"
    );
    assert_eq!(v["rebound_status"], 421, "{v}");
    assert_eq!(v["rebound_page_status"], 421, "{v}");
    assert_eq!(v["rebound_page_has_token"], false, "{v}");
    // Nothing reached the agent: no turn, no provider call.
    assert!(fake.requests().is_empty(), "the page ran a turn");
    let (_, metrics) = gw.get("/metrics").unwrap();
    for channel in ["api", "webchat"] {
        assert!(
            metrics.contains(&format!(
                "openclaw_messages_received_total{{channel=\"{channel}\"}} 0"
            )),
            "{metrics}"
        );
    }
    // The refusals are on record, naming the page's origin.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let audit =
            std::fs::read_to_string(gw.data_dir().join("logs/audit.log")).unwrap_or_default();
        if audit.contains(v["evil_origin"].as_str().unwrap()) {
            break;
        }
        assert!(Instant::now() < deadline, "no refusal audited:\n{audit}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_rebinding_host_is_misdirected_and_the_cli_uses_the_generated_token() {
    let mut gw = GatewayProcess::start(None, &[]).unwrap();
    gw.wait_ready(READY).unwrap();
    let token = gw.token().unwrap();
    assert_eq!(mode(&gw.data_dir().join("gateway.token")), 0o600);
    for path in ["/api/status", "/health", "/"] {
        let (status, body) = raw(
            gw.addr,
            &format!(
                "GET {path} HTTP/1.1\r\nHost: rebind.evil.example:{}",
                gw.addr.port()
            ),
            "",
        );
        assert_eq!(status, 421, "{path}: {body}");
    }
    // Open routes stay open; the rest need the token.
    for open in ["/health", "/ready", "/metrics"] {
        assert_eq!(http_get(gw.addr, open, None).unwrap().0, 200, "{open}");
    }
    assert_eq!(http_get(gw.addr, "/api/status", None).unwrap().0, 401);
    assert_eq!(http_get(gw.addr, "/v1/models", None).unwrap().0, 401);
    assert_eq!(
        http_get(gw.addr, "/api/status", Some(&token)).unwrap().0,
        200
    );
    // The CLI finds the token in the data dir: nobody types it.
    let out = gw.cli(&["status", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["security"]["token"], "generated", "{v}");
    // `openclaw health` with the token sees the paths; plain /health does not.
    let out = gw.cli(&["health", "--json"]);
    let full = String::from_utf8_lossy(&out.stdout);
    let data_dir = gw.data_dir().display().to_string();
    assert!(full.contains(&data_dir), "{full}");
    let (_, public) = http_get(gw.addr, "/health", None).unwrap();
    assert!(!public.contains(&data_dir), "{public}");
}

#[test]
fn files_are_private_under_umask_022_and_old_modes_are_tightened() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // What an older version under umask 022 left: an open data dir and database.
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let fake = FakeLlm::start_in_thread();
    fake.set_fallback(Script::text(["ok"]));
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, provider(&fake)).unwrap();
    let port = openclaw_tests::free_port();
    let bin = openclaw_tests::openclaw_bin();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 022; exec '{}' --data-dir '{}' --config '{}' gateway run",
            bin.display(),
            data.display(),
            config.display()
        ))
        .env("OPENCLAW_PORT", port.to_string())
        .env("HOME", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + READY;
    while http_get(addr, "/health", None).is_none() {
        assert!(Instant::now() < deadline, "gateway did not start");
        assert!(child.try_wait().unwrap().is_none(), "gateway exited");
        std::thread::sleep(Duration::from_millis(10));
    }
    // A chat turn writes the database, its WAL, the log and the audit log.
    let token = std::fs::read_to_string(data.join("gateway.token")).unwrap();
    let (status, body) = openclaw_tests::http_post_json(
        addr,
        "/v1/chat/completions",
        Some(token.trim()),
        &serde_json::json!({"model":"openclaw","messages":[{"role":"user","content":"hi"}]}),
        Duration::from_secs(20),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let out = base_command(&data, Some(&config))
        .args(["backup", "create", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let archive = serde_json::from_slice::<Value>(&out.stdout).unwrap()["path"]
        .as_str()
        .map(std::path::PathBuf::from)
        .expect("backup create --json names the archive");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !data.join("logs/audit.log").exists() {
        assert!(Instant::now() < deadline, "no audit log");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(mode(&data), 0o700, "data dir");
    assert_eq!(mode(&data.join("logs")), 0o700, "logs dir");
    for file in [
        "openclaw.db",
        "openclaw.db-wal",
        "openclaw.db-shm",
        "gateway.token",
        "logs/openclaw.log",
        "logs/audit.log",
    ] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    assert_eq!(mode(&archive), 0o600, "backup archive");
    openclaw_tests::signal(child.id(), "TERM").unwrap();
    assert!(child.wait().unwrap().success());

    // A database an older version left world-readable is made private at the next start.
    std::fs::set_permissions(
        data.join("openclaw.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut child = base_command(&data, Some(&config))
        .args(["gateway", "run"])
        .env("OPENCLAW_PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + READY;
    while http_get(addr, "/health", None).is_none() {
        assert!(Instant::now() < deadline, "gateway did not start again");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("openclaw.db")), 0o600);
    openclaw_tests::signal(child.id(), "TERM").unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn slow_and_idle_clients_are_cut_and_cannot_lock_others_out() {
    let mut gw = GatewayProcess::start(Some("gateway:\n  max_connections: 4\n"), &[]).unwrap();
    gw.wait_ready(READY).unwrap();
    // Slowloris: a request head that never ends.
    let mut slow = TcpStream::connect(gw.addr).unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .unwrap();
    // More idle sockets than the gateway keeps open (4 + 16 pre-auth + 64).
    let idle: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(gw.addr).unwrap())
        .collect();
    let rss_before = openclaw_tests::rss_kib(gw.child.id()).unwrap();
    let started = Instant::now();
    // Each is cut at the header deadline (10 s); meanwhile a real client is answered once
    // a place frees, and never later than the deadline plus a margin.
    let (status, _) = raw(
        gw.addr,
        &format!("GET /health HTTP/1.1\r\nHost: {}", gw.addr),
        "",
    );
    assert_eq!(status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    slow.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut buf = [0u8; 512];
    let n = slow.read(&mut buf).unwrap_or(0);
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(
        n == 0 || answer.starts_with("HTTP/1.1 408"),
        "a head that never ends must be cut, got {answer:?}"
    );
    let cut = idle
        .into_iter()
        .filter(|s| {
            let mut s: &TcpStream = s;
            let _ = s.set_read_timeout(Some(Duration::from_secs(15)));
            let mut b = [0u8; 64];
            // Closed (or answered, then closed): not left hanging until our time-out.
            s.read(&mut b).is_ok()
        })
        .count();
    assert_eq!(cut, 100, "every idle socket is closed by the gateway");
    let rss_after = openclaw_tests::rss_kib(gw.child.id()).unwrap();
    assert!(
        rss_after < rss_before + 8 * 1024,
        "idle sockets cost memory: {rss_before} → {rss_after} KiB"
    );
}

#[test]
fn oversized_frames_and_bodies_are_refused() {
    let mut gw = GatewayProcess::start(None, &[]).unwrap();
    gw.wait_ready(READY).unwrap();
    let token = gw.token().unwrap();
    // A 1 MiB frame before `connect`: the socket is closed, the gateway keeps serving.
    let tcp = TcpStream::connect(gw.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (mut ws, _) = tungstenite::client(format!("ws://{}/ws", gw.addr), tcp).unwrap();
    let _ = ws.read();
    let _ = ws.send(tungstenite::Message::text("x".repeat(1 << 20)));
    let closed = (0..16).any(|_| matches!(ws.read(), Err(_) | Ok(tungstenite::Message::Close(_))));
    assert!(closed, "a 1 MiB frame must close the socket");
    // A body over a route's limit: 413 with a reason, whatever it holds.
    let big = format!(
        "{{\"model\":\"openclaw\",\"messages\":[{{\"role\":\"user\",\"content\":\"{}\"}}]}}",
        "y".repeat(3 << 20)
    );
    let (status, body) = raw(
        gw.addr,
        &format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json",
            gw.addr
        ),
        &big,
    );
    assert!(status == 413 || status == 0, "{status} {body}");
    assert_eq!(http_get(gw.addr, "/health", None).unwrap().0, 200);
}
