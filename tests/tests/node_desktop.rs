//! `openclaw-node` in a real desktop session: Xvfb, a session D-Bus and the dunst notification
//! daemon. A gateway pairs with it and `system.notify` reaches dunst (seen on the bus by
//! dbus-monitor). Needs the Debian packages scripts/install-deps.sh installs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openclaw_tests::{base_command, free_port, workspace_bin};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn system_notify_reaches_a_real_notification_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let monitor = dir.path().join("monitor.log");
    let script = dir.path().join("session.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/bash\nset -e\ndbus-monitor --session \"interface='org.freedesktop.Notifications',member='Notify'\" > '{monitor}' 2>&1 &\ndunst > /dev/null 2>&1 &\nfor i in $(seq 50); do dbus-send --session --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.NameHasOwner string:org.freedesktop.Notifications 2>/dev/null | grep -q true && break; sleep 0.1; done\necho \"PID $$\"\nexec '{node}' --state-dir '{state}' --bind 127.0.0.1 --port {port} --name desk pair\n",
            monitor = monitor.display(),
            node = workspace_bin("openclaw-node").display(),
            state = dir.path().join("state").display(),
        ),
    )
    .unwrap();
    let mut session = Command::new("xvfb-run")
        .args([
            "-a",
            "-s",
            "-screen 0 1280x800x24",
            "dbus-run-session",
            "--",
            "timeout",
            "90",
            "bash",
        ])
        .arg(&script)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("xvfb-run (Debian xvfb) — run ./scripts/install-deps.sh");
    let stdout = session.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (mut pid, mut code, mut caps) = (None, None, None);
    let deadline = Instant::now() + Duration::from_secs(30);
    while code.is_none() {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the node started in its session");
        if let Some(p) = line.strip_prefix("PID ") {
            pid = Some(p.trim().to_owned());
        } else if let Some(c) = line.strip_prefix("capabilities: ") {
            caps = Some(c.to_owned());
        } else if let Some(c) = line.strip_prefix("pairing code: ") {
            code = Some(c[..6].to_owned());
        }
    }
    assert!(
        caps.unwrap().contains("system.notify"),
        "dunst answered, so notifications are advertised"
    );

    let gw = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = base_command(gw.path(), None).args(args).output().unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let addr = format!("127.0.0.1:{port}");
    let (status, out) = run(&["nodes", "pair", &addr, "--code", &code.unwrap()]);
    assert_eq!(status, 0, "{out}");
    let (status, out) = run(&[
        "nodes",
        "invoke",
        "--node",
        "desk",
        "--command",
        "system.notify",
        "--params",
        r#"{"title":"Dentist at 3 pm","body":"Leave in 20 minutes","urgency":"critical"}"#,
    ]);
    assert_eq!(status, 0, "{out}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["delivered"], true);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = std::fs::read_to_string(&monitor).unwrap_or_default();
        if seen.contains("Dentist at 3 pm") && seen.contains("Leave in 20 minutes") {
            assert!(seen.contains("\"OpenClaw\""), "app name: {seen}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "dunst never got the notification:\n{seen}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    if let Some(pid) = pid {
        let _ = openclaw_tests::signal(pid.parse().unwrap(), "TERM");
    }
    let _ = session.wait();
}
