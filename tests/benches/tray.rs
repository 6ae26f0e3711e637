//! Whole-process benchmark of the tray app (issue #17), release build, inside a private desktop
//! session (Xvfb, session bus, unlocked GNOME Keyring, openbox):
//! - launch → the Dashboard in the app's own window *showing* healthy: the app launched by
//!   WebDriver (`tauri-driver` → `WebKitWebDriver` → the app with `--open dashboard`), timed from
//!   the session request to the page's health badge reading "healthy" (polled every 5 ms in the
//!   page). WebKitWebDriver's own start is inside the figure, so it is an upper bound. The
//!   embedded gateway's first `/health` 200 is timed from the same instant.
//! - RSS and PSS summed over the app's processes (tray, dashboard window, WebKit's processes)
//!   6 s after the window showed, and 10 s after the window was closed through the window
//!   manager (as a person closes it), with the window's processes gone;
//! - the app launched directly (no WebDriver): exec → `/health`, and RSS/PSS in the tray, idle,
//!   with no window ever made.
//!
//! Run: `cargo build --release -p openclaw-app && cargo bench -p openclaw-tests --bench tray`
//! (tauri-driver, WebKitWebDriver, Xvfb, openbox and wmctrl as scripts/install-deps.sh installs
//! them). Knob: BENCH_RUNS (rounds, default 3). The bare Tauri 2.12 floor measured here (see
//! ../shared/MACHINE-NOTES.md): page loaded 0.38-0.45 s after exec; window showing 419-429 MiB
//! RSS; tray only 63 MiB (GDK_GL=disable).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openclaw_tests::desktop::DesktopSession;
use openclaw_tests::webdriver::Driver;
use openclaw_tests::{child_pids, env_num, free_port, http_get, workspace_bin};
use serde_json::json;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn cmdline(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .replace('\0', " ")
}

fn descendants(pid: u32) -> Vec<u32> {
    let mut all = vec![];
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let children = child_pids(p);
        todo.extend(&children);
        all.extend(children);
    }
    all
}

/// RSS and PSS in MiB summed over `pid` and its descendants, and how many processes.
fn memory(pid: u32) -> (f64, f64, usize) {
    let mut pids = descendants(pid);
    pids.push(pid);
    let (mut rss, mut pss) = (0u64, 0u64);
    for p in &pids {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")) else {
            continue;
        };
        for line in text.lines() {
            let kib = |l: &str| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            if line.starts_with("Rss:") {
                rss += kib(line);
            } else if line.starts_with("Pss:") {
                pss += kib(line);
            }
        }
    }
    (rss as f64 / 1024.0, pss as f64 / 1024.0, pids.len())
}

fn wait_health(addr: SocketAddr, since: Instant, within: Duration) -> Duration {
    loop {
        if let Some((200, _)) = http_get(addr, "/health", None) {
            return since.elapsed();
        }
        assert!(since.elapsed() < within, "no /health within {within:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn config(dir: &Path) -> std::path::PathBuf {
    // A provider, so the window opens on the Dashboard and not on the first run's setup; it is
    // never called.
    let path = dir.join("config.yaml");
    std::fs::write(
        &path,
        "providers:\n  anthropic:\n    api_key: sk-bench\n    base_url: \"http://127.0.0.1:9\"\n",
    )
    .unwrap();
    path
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let app = workspace_bin("openclaw-app");
    let rounds = env_num("BENCH_RUNS", 3).max(1);
    let session = DesktopSession::start().expect("a desktop session (Xvfb, dbus-daemon)");
    let _wm = session.spawn_quiet("openbox", &[]);
    std::thread::sleep(Duration::from_millis(500));
    println!("tray app bench: {} ({rounds} rounds)", app.display());
    let (mut healthy_ms, mut health_ms) = (vec![], vec![]);
    let (mut open_rss, mut open_pss, mut closed_rss, mut closed_pss) =
        (vec![], vec![], vec![], vec![]);
    for round in 1..=rounds {
        let data = tempfile::tempdir().unwrap();
        let config = config(data.path());
        let port = free_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let driver = Driver::start(&session, data.path(), Some(&config), port, &[]);
        let start = Instant::now();
        let health = std::thread::spawn(move || wait_health(addr, start, Duration::from_secs(30)));
        let web = driver.open(Some("dashboard"));
        let session_ready = start.elapsed();
        // Polled inside the page: one WebDriver round trip, not one per check.
        web.call("POST", "/timeouts", Some(json!({"script": 30_000})));
        let page = web.call(
            "POST",
            "/execute/async",
            Some(json!({
                "script": "const done = arguments[arguments.length - 1]; const t = setInterval(() => { const s = document.getElementById('health-status'); if (s && s.textContent === 'healthy') { clearInterval(t); const r = performance.getEntriesByType('resource'); done({healthy: performance.now(), scripts: Math.max(...r.filter((e) => e.name.endsWith('.js')).map((e) => e.responseEnd)), fetched: Math.max(...r.map((e) => e.responseEnd))}); } }, 5);",
                "args": [],
            })),
        );
        let healthy = start.elapsed();
        // Where the page's own time went (ms since its navigation began).
        let into_page = page["healthy"].as_f64().unwrap_or(0.0);
        println!(
            "  page: navigation began {:.0} ms after launch; last module script in at {:.0} ms, last fetch answered at {:.0} ms, healthy shown at {into_page:.0} ms",
            healthy.as_secs_f64() * 1e3 - into_page,
            page["scripts"].as_f64().unwrap_or(0.0),
            page["fetched"].as_f64().unwrap_or(0.0),
        );
        let health = health.join().unwrap();
        let tray = descendants(driver.process.0.id())
            .into_iter()
            .find(|p| {
                let c = cmdline(*p);
                c.contains("openclaw-app") && !c.contains("--dashboard-window")
            })
            .expect("the app's tray process under the driver");
        std::thread::sleep(Duration::from_secs(6));
        let (rss, pss, procs) = memory(tray);
        println!(
            "round {round}: launch -> dashboard healthy {:.0} ms (webview session up {:.0} ms, /health {:.0} ms); window open {rss:.1} MiB RSS / {pss:.1} MiB PSS over {procs} processes",
            healthy.as_secs_f64() * 1e3,
            session_ready.as_secs_f64() * 1e3,
            health.as_secs_f64() * 1e3
        );
        healthy_ms.push(healthy.as_secs_f64() * 1e3);
        health_ms.push(health.as_secs_f64() * 1e3);
        open_rss.push(rss);
        open_pss.push(pss);
        // Closed as a person closes it: the window manager's close request.
        let closing = Instant::now();
        let status = session
            .command("wmctrl")
            .args(["-c", "OpenClaw"])
            .stdout(Stdio::null())
            .status()
            .expect("wmctrl");
        assert!(status.success(), "wmctrl -c OpenClaw failed");
        while descendants(tray)
            .iter()
            .any(|p| cmdline(*p).contains("--dashboard-window"))
        {
            assert!(
                closing.elapsed() < Duration::from_secs(10),
                "the window's process did not exit"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let gone = closing.elapsed();
        std::thread::sleep(Duration::from_secs(10));
        let (rss, pss, procs) = memory(tray);
        println!(
            "  window closed (its processes gone in {:.0} ms); 10 s later {rss:.1} MiB RSS / {pss:.1} MiB PSS over {procs} processes",
            gone.as_secs_f64() * 1e3
        );
        closed_rss.push(rss);
        closed_pss.push(pss);
        // The app ends with its session; then the driver.
        let _ = web
            .agent
            .delete(format!("{}/session/{}", web.base, web.id))
            .call();
        let _ = openclaw_tests::signal(tray, "TERM");
        drop(driver);
    }

    // Launched directly: the tray alone, no window ever made.
    let (mut direct_ms, mut tray_rss, mut tray_pss) = (vec![], vec![], vec![]);
    for round in 1..=rounds {
        let data = tempfile::tempdir().unwrap();
        let config = config(data.path());
        let port = free_port();
        let start = Instant::now();
        let mut child = session
            .command(&app)
            .env("OPENCLAW_DATA_DIR", data.path())
            .env("OPENCLAW_CONFIG", &config)
            .env("OPENCLAW_PORT", port.to_string())
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the app");
        let health = wait_health(
            SocketAddr::from(([127, 0, 0, 1], port)),
            start,
            Duration::from_secs(30),
        );
        std::thread::sleep(Duration::from_secs(7));
        let (rss, pss, procs) = memory(child.id());
        println!(
            "direct {round}: exec -> /health {:.0} ms; tray only, idle {rss:.1} MiB RSS / {pss:.1} MiB PSS over {procs} processes",
            health.as_secs_f64() * 1e3
        );
        direct_ms.push(health.as_secs_f64() * 1e3);
        tray_rss.push(rss);
        tray_pss.push(pss);
        let _ = openclaw_tests::signal(child.id(), "TERM");
        let code = child.wait().unwrap();
        assert!(code.success(), "the app exited with {code}");
    }
    println!(
        "median: launch -> dashboard healthy {:.0} ms (aim 500; bare Tauri page load 380-450), gateway /health {:.0} ms under WebDriver, {:.0} ms direct",
        median(healthy_ms),
        median(health_ms),
        median(direct_ms)
    );
    println!(
        "median: window open {:.1} / {:.1} MiB (RSS / PSS; bare Tauri 419-429 RSS); after close {:.1} / {:.1} MiB; tray only {:.1} / {:.1} MiB (floor 63 RSS, aim floor + 10)",
        median(open_rss),
        median(open_pss),
        median(closed_rss),
        median(closed_pss),
        median(tray_rss),
        median(tray_pss)
    );
}
