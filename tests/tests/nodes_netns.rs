//! A small tailnet in network namespaces: the gateway at 100.64.0.1, a "macbook" node at
//! 100.64.0.2 and an "iphone" node at 100.64.0.3, each on port 18790, joined by a bridge in the
//! gateway's namespace. Each node runs under its own Xvfb (screens of different sizes, so a
//! screenshot tells which node took it). `device_nodes` in config.yaml gives their addresses and
//! priorities; the preferred node is killed (SIGKILL) mid-run and the next screenshot comes from
//! the other one. Also: a node on the default wildcard bind, in a namespace of its own, names
//! the addresses it answers on. Needs root (`ip netns`) and Debian's xvfb; nothing leaves the
//! namespaces.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openclaw_tests::{openclaw_bin, workspace_bin};
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("`ip` (iproute2) is needed for the namespace test");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Three namespaces, removed (with everything in them) on drop.
struct Tailnet {
    gateway: String,
    nodes: Vec<String>,
}

fn require_root() {
    let uid = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("Uid:")
                .map(|v| v.split_whitespace().next().unwrap_or("").to_owned())
        })
        .unwrap();
    assert_eq!(
        uid, "0",
        "this test builds network namespaces with `ip netns` and needs root"
    );
}

impl Tailnet {
    fn build() -> Self {
        require_root();
        let id = std::process::id();
        let net = Tailnet {
            gateway: format!("ocgw{id}"),
            nodes: vec![format!("ocmac{id}"), format!("ociph{id}")],
        };
        let gw = net.gateway.as_str();
        ip(&["netns", "add", gw]);
        ip(&["-n", gw, "link", "set", "lo", "up"]);
        ip(&["-n", gw, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", gw, "addr", "add", "100.64.0.1/24", "dev", "br0"]);
        ip(&["-n", gw, "link", "set", "br0", "up"]);
        for (i, ns) in net.nodes.iter().enumerate() {
            let port = format!("port{i}");
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            ip(&[
                "-n", gw, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", ns,
            ]);
            ip(&["-n", gw, "link", "set", &port, "master", "br0"]);
            ip(&["-n", gw, "link", "set", &port, "up"]);
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("100.64.0.{}/24", i + 2),
                "dev",
                "eth0",
            ]);
            ip(&["-n", ns, "link", "set", "eth0", "up"]);
        }
        net
    }

    fn exec(&self, ns: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]);
        cmd
    }
}

impl Drop for Tailnet {
    fn drop(&mut self) {
        for ns in self.nodes.iter().chain([&self.gateway]) {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// `openclaw-node pair` under Xvfb inside a namespace.
struct NodeProcess {
    session: Child,
    pid: u32,
    code: String,
}

impl NodeProcess {
    fn start(net: &Tailnet, ns: &str, addr: &str, name: &str, screen: &str, dir: &Path) -> Self {
        let script = dir.join(format!("{name}.sh"));
        std::fs::write(
            &script,
            format!(
                "#!/bin/bash\necho \"PID $$\"\nexec '{node}' --state-dir '{state}' --bind {addr} --port 18790 --name {name} pair\n",
                node = workspace_bin("openclaw-node").display(),
                state = dir.join(name).display(),
            ),
        )
        .unwrap();
        let mut session = net
            .exec(ns)
            // -noreset: with no other X client, Xvfb resets each time the node's capture
            // connection closes, and a capture that races the reset is refused.
            .args([
                "xvfb-run",
                "-a",
                "-s",
                &format!("-screen 0 {screen} -noreset"),
            ])
            .args(["timeout", "120", "bash"])
            .arg(&script)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("xvfb-run (Debian xvfb)");
        let rx = openclaw_tests::stdout_lines(&mut session);
        let (mut pid, mut code) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(60);
        while code.is_none() {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("node {name} did not start"));
            if let Some(p) = line.strip_prefix("PID ") {
                pid = p.trim().parse().ok();
            } else if let Some(c) = line.strip_prefix("capabilities: ") {
                assert!(c.contains("screen.snapshot"), "{name}: {c}");
            } else if let Some(c) = line.strip_prefix("pairing code: ") {
                code = Some(c[..6].to_owned());
            }
        }
        NodeProcess {
            session,
            pid: pid.unwrap(),
            code: code.unwrap(),
        }
    }

    fn kill(&mut self) {
        let _ = openclaw_tests::signal(self.pid, "KILL");
        let _ = self.session.wait();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn the_preferred_node_dies_and_the_next_one_takes_the_screenshot() {
    let net = Tailnet::build();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("gateway");
    let mut macbook = NodeProcess::start(
        &net,
        &net.nodes[0],
        "100.64.0.2",
        "macbook",
        "1440x900x24",
        dir.path(),
    );
    let _iphone = NodeProcess::start(
        &net,
        &net.nodes[1],
        "100.64.0.3",
        "iphone",
        "390x844x24",
        dir.path(),
    );

    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "gateway:\n  host: 127.0.0.1\n  port: 18789\ndevice_nodes:\n  macbook:\n    tailscale_ip: 100.64.0.2\n    port: 18790\n    capabilities: [screen.snapshot]\n    priority: 1\n  iphone:\n    tailscale_ip: 100.64.0.3\n    port: 18790\n    capabilities: [screen.snapshot]\n    priority: 2\n",
    )
    .unwrap();
    let openclaw = |args: &[&str]| -> Output {
        net.exec(&net.gateway)
            .arg(openclaw_bin())
            .arg("--data-dir")
            .arg(&data)
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("HOME", dir.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    // Paired in the opposite order of preference: priority comes from device_nodes.
    for (node, name, addr) in [
        (&_iphone, "iphone", "100.64.0.3:18790"),
        (&macbook, "macbook", "100.64.0.2:18790"),
    ] {
        let out = openclaw(&["nodes", "pair", addr, "--code", &node.code, "--name", name]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let mut gateway = net
        .exec(&net.gateway)
        .arg(openclaw_bin())
        .arg("--data-dir")
        .arg(&data)
        .arg("--config")
        .arg(&config)
        .args(["gateway", "run"])
        .env("HOME", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let health = || -> Value {
        let out = openclaw(&["health", "--json"]);
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let h = health();
        let detail = h["checks"]["nodes"]["detail"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        if detail.starts_with("2/2") {
            break;
        }
        assert!(Instant::now() < deadline, "nodes never connected: {h}");
        std::thread::sleep(Duration::from_millis(100));
    }

    let screenshot = || -> (String, u64, u64) {
        let out = openclaw(&["nodes", "invoke", "--command", "screen.snapshot"]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{err}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let served = err
            .lines()
            .find_map(|l| l.strip_prefix("served by "))
            .unwrap()
            .trim()
            .to_owned();
        (
            served,
            v["width"].as_u64().unwrap(),
            v["height"].as_u64().unwrap(),
        )
    };
    assert_eq!(
        screenshot(),
        ("macbook".into(), 1440, 900),
        "priority 1 is preferred"
    );

    // The macbook dies (no goodbye on the wire): the next screenshot comes from the iphone.
    macbook.kill();
    assert_eq!(screenshot(), ("iphone".into(), 390, 844));
    assert_eq!(screenshot(), ("iphone".into(), 390, 844));
    let h = health();
    assert_eq!(h["checks"]["nodes"]["status"], "degraded", "{h}");
    let detail = h["checks"]["nodes"]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("1/2") && detail.contains("macbook at 100.64.0.2:18790"),
        "{detail}"
    );

    let _ = openclaw_tests::signal(gateway.id(), "TERM");
    let _ = gateway.wait();
}

/// A namespace with loopback and one veth pair (10.77.0.1 on `bind0`), removed on drop.
struct Namespace(String);

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn a_wildcard_bind_names_every_address_it_answers_on() {
    require_root();
    let ns = Namespace(format!("ocbind{}", std::process::id()));
    let n = ns.0.as_str();
    ip(&["netns", "add", n]);
    ip(&["-n", n, "link", "set", "lo", "up"]);
    ip(&[
        "-n", n, "link", "add", "bind0", "type", "veth", "peer", "name", "bind1",
    ]);
    ip(&["-n", n, "addr", "add", "10.77.0.1/24", "dev", "bind0"]);
    ip(&["-n", n, "link", "set", "bind0", "up"]);
    ip(&["-n", n, "link", "set", "bind1", "up"]);
    let state = tempfile::tempdir().unwrap();
    // No --bind: the default, 0.0.0.0. `ip netns exec` execs the node, so the child is it.
    let mut child = Command::new("ip")
        .args(["netns", "exec", n])
        .arg(workspace_bin("openclaw-node"))
        .arg("--state-dir")
        .arg(state.path())
        .args(["--port", "18790", "--name", "ns-node"])
        .args(["--tailscale-socket", "/nonexistent/tailscaled.sock", "pair"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = openclaw_tests::stdout_lines(&mut child);
    let mut banner = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the node printed its banner");
        if line.starts_with("pairing code: ") {
            break;
        }
        banner.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    let every = banner
        .iter()
        .find(|l| l.starts_with("listening on every interface: "))
        .unwrap_or_else(|| panic!("{banner:?}"));
    assert!(
        every.contains("10.77.0.1:18790 (bind0)") && every.contains("127.0.0.1:18790 (lo)"),
        "{every}"
    );
    assert!(
        banner
            .iter()
            .any(|l| l.contains("peers are not checked") && l.contains("--bind")),
        "{banner:?}"
    );
}
