//! Helpers for driving the node core through its generated bindings (`tests/tests/mobile_ffi.rs`,
//! `tests/benches/mobile.rs`): build the bindings and the JVM shell once, run a real gateway,
//! and drive a shell process (JVM or Python) one command per line.
// Test support: a failed step is the test's failure, reported where it happened.
#![allow(clippy::unwrap_used)]

use crate::{base_command, free_port, http_get, http_post_json, repo_root};
use serde_json::{Value, json};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

pub const WAIT: Duration = Duration::from_secs(30);
pub const LAT: f64 = 52.520008;
pub const LON: f64 = 13.404954;

/// target/ of this build: target/<profile>/deps/<test binary>.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_owned()
}

/// The bindings, the library they came from, and the compiled JVM shell.
pub struct Built {
    pub generated: PathBuf,
    pub lib_dir: PathBuf,
    pub lib: PathBuf,
    pub jar: PathBuf,
    pub jna: PathBuf,
}

pub fn kotlinc() -> PathBuf {
    if let Some(k) = std::env::var_os("KOTLINC") {
        return PathBuf::from(k);
    }
    let home = std::env::var_os("HOME").expect("HOME");
    PathBuf::from(home).join(".cache/openclaw/kotlin/package/bin/kotlinc")
}

/// Generates the bindings (from the release library when `release`) and compiles the JVM shell
/// with them; an error says what is missing and how to get it.
pub fn build(release: bool) -> Result<Built, String> {
    let target = target_dir();
    let profile = if release { "release" } else { "debug" };
    let generated = target.join(format!("mobile-generated-{profile}"));
    let started = Instant::now();
    let mut script = Command::new(repo_root().join("mobile/generate-bindings.sh"));
    if release {
        script.arg("--release");
    }
    let out = script
        .env("CARGO_TARGET_DIR", &target)
        .env("OUT_DIR", &generated)
        .output()
        .map_err(|e| format!("cannot run mobile/generate-bindings.sh: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "mobile/generate-bindings.sh failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    eprintln!(
        "bindings generated in {:.1} s",
        started.elapsed().as_secs_f32()
    );
    let lib = PathBuf::from(
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .lines()
            .last()
            .unwrap_or(""),
    );
    let lib_dir = lib
        .parent()
        .ok_or("the script named no library")?
        .to_owned();

    let kotlinc = kotlinc();
    let jna = PathBuf::from("/usr/share/java/jna.jar");
    for (what, path, how) in [
        (
            "kotlinc",
            &kotlinc,
            "run scripts/install-deps.sh (npm kotlin-compiler into ~/.cache/openclaw/kotlin), or set KOTLINC",
        ),
        (
            "JNA",
            &jna,
            "run scripts/install-deps.sh (Debian libjna-java)",
        ),
    ] {
        if !path.exists() {
            return Err(format!("{what} is missing at {}: {how}", path.display()));
        }
    }
    let root = repo_root();
    let mut sources = vec![generated.join("kotlin/ai/openclaw/node/openclaw_node.kt")];
    sources.push(root.join("mobile/kotlin/ai/openclaw/shell/NodeHost.kt"));
    sources.push(root.join("mobile/jvm/src/ai/openclaw/jvm/Main.kt"));
    let jar = target.join(format!("mobile-jvm/shell-{profile}.jar"));
    std::fs::create_dir_all(jar.parent().unwrap()).map_err(|e| e.to_string())?;
    let started = Instant::now();
    // One compilation for every scenario of this test binary (kotlinc takes 15 s or more).
    let out = Command::new(&kotlinc)
        .args(&sources)
        .arg("-cp")
        .arg(&jna)
        .args(["-include-runtime", "-nowarn", "-d"])
        .arg(&jar)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", kotlinc.display()))?;
    if !out.status.success() {
        return Err(format!(
            "kotlinc failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    eprintln!("kotlinc took {:.1} s", started.elapsed().as_secs_f32());
    Ok(Built {
        generated,
        lib_dir,
        lib,
        jar,
        jna,
    })
}

/// [`build`] of the debug library, once per process: every scenario of a test binary shares
/// one kotlinc run.
pub fn built() -> &'static Built {
    static BUILT: OnceLock<Result<Built, String>> = OnceLock::new();
    match BUILT.get_or_init(|| build(false)) {
        Ok(b) => b,
        Err(e) => panic!("{e}"),
    }
}

/// `openclaw gateway run` on a free port, killed on drop.
pub struct Gateway {
    child: Child,
    pub addr: SocketAddr,
    pub token: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    pub fn start(data: &Path) -> Self {
        let port = free_port();
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
        let token = std::fs::read_to_string(data.join("gateway.token"))
            .unwrap()
            .trim()
            .to_owned();
        Self { child, addr, token }
    }

    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let (status, text) =
            http_post_json(self.addr, path, Some(&self.token), body, WAIT).unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// `GET path` with the token: the status and the JSON body.
    pub fn get(&self, path: &str) -> (u16, Value) {
        let (status, text) = http_get(self.addr, path, Some(&self.token)).unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A fresh pairing code for a node called `name`.
    pub fn code(&self, name: &str) -> String {
        let (status, v) = self.post("/api/nodes/pairing-code", &json!({"name": name}));
        assert_eq!(status, 200, "{v}");
        v["code"].as_str().unwrap().to_owned()
    }

    pub fn invoke(&self, command: &str, params: Value) -> (u16, Value) {
        self.post(
            "/api/nodes/invoke",
            &json!({"command": command, "params": params}),
        )
    }

    /// Waits until the gateway lists `name` as connected (or not).
    pub fn wait_connected(&self, name: &str, connected: bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            let (_, body) = http_get(self.addr, "/api/nodes", Some(&self.token)).unwrap();
            let v: Value = serde_json::from_str(&body).unwrap();
            let node = v["nodes"]
                .as_array()
                .and_then(|n| n.iter().find(|n| n["name"] == name).cloned());
            if node.as_ref().is_some_and(|n| n["connected"] == connected) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} never got connected={connected}: {v}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A shell process driven one command per line; killed on drop.
pub struct Shell {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    /// Every line seen so far, for failure messages and for lines seen while waiting for others.
    pub seen: Vec<String>,
    /// `seen[..consumed]` is behind the last line [`Shell::expect`] matched: each expectation
    /// is met by a line after the one before it.
    consumed: usize,
}

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Shell {
    pub fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let lines = crate::stdout_lines(&mut child);
        let mut shell = Self {
            child,
            stdin,
            lines,
            seen: Vec::new(),
            consumed: 0,
        };
        shell.expect("ready ");
        shell
    }

    /// The JVM shell of `b` as node `name`, its key in `secrets` when given.
    pub fn jvm(b: &Built, state: &Path, name: &str, secrets: Option<&Path>) -> Self {
        let mut cmd = Command::new("java");
        cmd.arg(format!("-Djna.library.path={}", b.lib_dir.display()))
            .arg("-cp")
            .arg(format!("{}:{}", b.jar.display(), b.jna.display()))
            .arg("ai.openclaw.jvm.MainKt")
            .arg("--state")
            .arg(state)
            .args(["--name", name, "--location", &format!("{LAT},{LON}")])
            .args(["--min-backoff-ms", "200"]);
        if let Some(s) = secrets {
            cmd.arg("--secrets").arg(s);
        }
        Self::spawn(cmd)
    }

    /// The Python shell over `b`'s Python bindings, as node `name`.
    pub fn python(b: &Built, state: &Path, name: &str) -> Self {
        Self::python_in(Command::new("python3"), b, state, name)
    }

    /// The same, run by `cmd` (`python3` with the environment of the caller's choosing).
    pub fn python_in(mut cmd: Command, b: &Built, state: &Path, name: &str) -> Self {
        cmd.env("PYTHONPATH", b.generated.join("python"))
            .arg(repo_root().join("mobile/python/node_shell.py"))
            .arg(state)
            .arg(name)
            .arg(format!("{LAT},{LON}"));
        Self::spawn(cmd)
    }

    /// The next line after the last expected one that starts with `prefix`.
    pub fn expect(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(i) = self.seen[self.consumed..]
                .iter()
                .position(|l| l.starts_with(prefix))
            {
                self.consumed += i + 1;
                return self.seen[self.consumed - 1].clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!(
                    "no line `{prefix}…` from the shell; it said:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Sends `command`; its answer is the next line starting with `answer`, or an `error`.
    pub fn ask(&mut self, command: &str, answer: &str) -> String {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "no answer to `{command}`; the shell said:\n{}",
                    self.seen.join("\n")
                )
            });
            self.seen.push(line.clone());
            if line.starts_with(answer) || line.starts_with("error ") {
                return line;
            }
        }
    }

    /// The `snap sha256=…` lines seen so far.
    pub fn snaps(&self) -> Vec<String> {
        self.seen
            .iter()
            .filter_map(|l| l.strip_prefix("snap sha256="))
            .map(|l| l.split_whitespace().next().unwrap_or("").to_owned())
            .collect()
    }
}
