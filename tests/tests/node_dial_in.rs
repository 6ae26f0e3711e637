//! A node that is never dialed: paired by the code a real `openclaw` gateway shows
//! (`openclaw nodes pair --listen`, then `openclaw-node pair --gateway HOST:PORT --code`), then
//! a real `openclaw-node run --gateway HOST:PORT` under Xvfb dials the gateway's node route. The
//! gateway routes `screen.snapshot` over the link the node opened (a PNG of the Xvfb screen
//! comes back through `openclaw nodes invoke`), and after the gateway restarts on the same port
//! the node dials again and is served again, with no step on either side.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use openclaw_tests::{base_command, free_port, http_get, workspace_bin};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A process group that is ended (SIGTERM to the whole group) when dropped, panics included:
/// xvfb-run, its Xvfb and the node under it.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

/// `openclaw gateway run` on `port` with `data`; waits (20 s at most) until it answers.
fn gateway(data: &Path, port: u16) -> Gateway {
    let mut child = base_command(data, None)
        .args(["gateway", "run"])
        .env("OPENCLAW_PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(20);
    while http_get(addr, "/health", None).is_none() {
        assert!(child.try_wait().unwrap().is_none(), "the gateway exited");
        assert!(Instant::now() < deadline, "the gateway never answered");
        std::thread::sleep(Duration::from_millis(20));
    }
    Gateway(Some(child))
}

/// The gateway, killed when dropped unless [`stop`] stopped it first.
struct Gateway(Option<Child>);

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn stop(mut gateway: Gateway) {
    let Some(mut child) = gateway.0.take() else {
        return;
    };
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn cli(data: &Path, port: u16, args: &[&str]) -> (bool, String, String) {
    let out = base_command(data, None)
        .args(args)
        .env("OPENCLAW_PORT", port.to_string())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits (20 s at most) until the gateway lists the node as connected over its own dial.
fn wait_dialed_in(data: &Path, port: u16) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let token = std::fs::read_to_string(data.join("gateway.token")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = http_get(addr, "/api/nodes", Some(token.trim())).unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        if v["nodes"][0]["connected"] == true {
            assert_eq!(v["nodes"][0]["detail"], "connected (the node dialed in)");
            return;
        }
        assert!(Instant::now() < deadline, "the node never dialed in: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `screen.snapshot` through the gateway: the PNG's width and height.
fn snapshot(data: &Path, port: u16) -> (u32, u32) {
    let (ok, out, err) = cli(
        data,
        port,
        &["nodes", "invoke", "--command", "screen.snapshot"],
    );
    assert!(ok, "{out}{err}");
    assert!(err.contains("served by macbook"), "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["format"], "png", "{v}");
    let png = base64::engine::general_purpose::STANDARD
        .decode(v["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(&png[1..4], b"PNG");
    (
        u32::from_be_bytes(png[16..20].try_into().unwrap()),
        u32::from_be_bytes(png[20..24].try_into().unwrap()),
    )
}

#[test]
fn a_node_paired_by_the_gateways_code_dials_in_serves_a_screenshot_and_comes_back_after_a_restart()
{
    let data = tempfile::tempdir().unwrap();
    let node_state = tempfile::tempdir().unwrap();
    let port = free_port();
    let gw = gateway(data.path(), port);

    // The gateway shows a code and waits; the node pairs by it from its side.
    let mut listen = base_command(data.path(), None)
        .args(["nodes", "pair", "--listen", "--name", "macbook"])
        .env("OPENCLAW_PORT", port.to_string())
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = openclaw_tests::stdout_lines(&mut listen);
    let code = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(20))
            .expect("the gateway showed a code");
        if let Some(rest) = line.strip_prefix("pairing code: ") {
            break rest[..6].to_owned();
        }
    };
    let paired = Command::new(workspace_bin("openclaw-node"))
        .arg("--state-dir")
        .arg(node_state.path())
        .args(["--name", "macbook", "pair", "--gateway"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["--code", &code])
        .output()
        .unwrap();
    assert!(
        paired.status.success(),
        "{}{}",
        String::from_utf8_lossy(&paired.stdout),
        String::from_utf8_lossy(&paired.stderr)
    );
    assert!(String::from_utf8_lossy(&paired.stdout).contains("paired with the gateway"));
    let waited = listen.wait().unwrap();
    assert!(waited.success(), "nodes pair --listen saw the node pair");
    let said: Vec<String> = lines.try_iter().collect();
    assert!(
        said.iter().any(|l| l.contains("paired with macbook")),
        "{said:?}"
    );

    // In a process group of its own, so xvfb-run, Xvfb and the node all go together.
    let mut node = Command::new("xvfb-run");
    std::os::unix::process::CommandExt::process_group(&mut node, 0);
    // `-noreset`: an X server with no other client resets when the last connection closes,
    // and xcap opens one per step (list the monitors, then capture), so on a bare Xvfb, with no
    // window manager or notification daemon holding a connection as a desktop has, a capture
    // can land in the reset and be refused. Displays count up from a number of their own
    // (`-a` from `-n`), away from the desktop tests' run just before.
    let first_display = (400 + port % 500).to_string();
    let node = node
        .args([
            "-a",
            "-n",
            &first_display,
            "-s",
            "-screen 0 800x600x24 -noreset",
        ])
        .arg(workspace_bin("openclaw-node"))
        .arg("--state-dir")
        .arg(node_state.path())
        .args(["--name", "macbook", "run", "--gateway"])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let node = Group(node);
    wait_dialed_in(data.path(), port);
    assert_eq!(snapshot(data.path(), port), (800, 600));

    // The gateway restarts on the same port: the node dials again by itself.
    stop(gw);
    let gw = gateway(data.path(), port);
    wait_dialed_in(data.path(), port);
    assert_eq!(snapshot(data.path(), port), (800, 600));

    stop(gw);
    drop(node);
}
