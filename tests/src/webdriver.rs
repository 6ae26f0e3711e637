//! The tray app driven over WebDriver: `tauri-driver` in front of `WebKitWebDriver`, which
//! starts the app as its browser inside a [`DesktopSession`]; a small W3C WebDriver client over
//! plain HTTP for the tests and the tray bench.

use crate::desktop::DesktopSession;
use crate::{Killed, free_port, workspace_bin};
use base64::Engine as _;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// `tauri-driver`: on PATH, else where `cargo install` puts it.
pub fn tauri_driver() -> PathBuf {
    let installed = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cargo/bin/tauri-driver"))
        .filter(|p| p.exists());
    installed.unwrap_or_else(|| PathBuf::from("tauri-driver"))
}

/// A WebDriver session over plain HTTP (the W3C protocol tauri-driver forwards).
pub struct Session {
    pub agent: ureq::Agent,
    pub base: String,
    pub id: String,
}

impl Session {
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.id);
        send(&self.agent, method, &url, body)
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page; its return value.
    pub fn run(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Waits (`within` at most) until `script` returns something truthy; that.
    pub fn wait(&self, what: &str, within: Duration, script: &str, args: Value) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let v = self.run(script, args.clone());
            let truthy = !(v.is_null() || v == json!(false) || v == json!("") || v == json!(0));
            if truthy {
                return v;
            }
            assert!(Instant::now() < deadline, "{what}: not within {within:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn element(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_owned()
    }

    pub fn click(&self, css: &str) {
        let id = self.element(css);
        self.call("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.call("POST", &format!("/element/{id}/clear"), Some(json!({})));
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        );
    }

    pub fn go(&self, page: &str) {
        self.run(
            &format!("location.hash = '#{page}'; return true;"),
            json!([]),
        );
    }

    pub fn screenshot(&self, path: &Path) {
        // What the DOM says is on screen once two frames have been painted since.
        self.call(
            "POST",
            "/execute/async",
            Some(json!({
                "script": "const done = arguments[arguments.length - 1]; requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
                "args": [],
            })),
        );
        let v = self.call("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("a base64 screenshot"))
            .expect("the screenshot is base64");
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(path, png)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
}

/// One WebDriver request; its `value`, or a panic with the driver's error.
pub fn send(agent: &ureq::Agent, method: &str, url: &str, body: Option<Value>) -> Value {
    let response = match (method, body) {
        ("GET", _) => agent.get(url).call(),
        ("DELETE", _) => agent.delete(url).call(),
        (_, Some(body)) => agent.post(url).send_json(&body),
        (_, None) => agent.post(url).send_json(json!({})),
    };
    let mut response = response.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    let v: Value = response.body_mut().read_json().unwrap_or(Value::Null);
    assert!(status < 300, "{method} {url}: {status} {v}");
    v["value"].clone()
}

/// `tauri-driver` in `session`, and a WebDriver session whose browser is the app (with `--open
/// PAGE`) on `data` and `config`, its gateway on `port`: the app inherits the environment given
/// to tauri-driver, which WebKitWebDriver passes on.
pub fn launch(
    session: &DesktopSession,
    data: &Path,
    config: Option<&Path>,
    port: u16,
    page: Option<&str>,
) -> (Killed, Session) {
    launch_with_env(session, data, config, port, page, &[])
}

/// [`launch`], with more environment for the app (tauri-driver's is the app's).
pub fn launch_with_env(
    session: &DesktopSession,
    data: &Path,
    config: Option<&Path>,
    port: u16,
    page: Option<&str>,
    env: &[(&str, &str)],
) -> (Killed, Session) {
    let driver = Driver::start(session, data, config, port, env);
    let web = driver.open(page);
    (driver.process, web)
}

/// A running `tauri-driver`, before any session (so a bench can time the app's launch alone).
pub struct Driver {
    pub process: Killed,
    agent: ureq::Agent,
    base: String,
}

impl Driver {
    /// Starts `tauri-driver` in `session` with the app's environment (the app inherits it
    /// through WebKitWebDriver) and waits until it answers.
    pub fn start(
        session: &DesktopSession,
        data: &Path,
        config: Option<&Path>,
        port: u16,
        env: &[(&str, &str)],
    ) -> Self {
        let (driver_port, native_port) = (free_port(), free_port());
        let mut cmd = session.command(tauri_driver());
        cmd.envs(env.iter().copied());
        cmd.args(["--port", &driver_port.to_string()])
            .args(["--native-port", &native_port.to_string()])
            .env("OPENCLAW_DATA_DIR", data)
            .env("OPENCLAW_PORT", port.to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        match config {
            Some(c) => cmd.env("OPENCLAW_CONFIG", c),
            // No file: the defaults (no provider); the session's HOME has no config of its own.
            None => cmd.env_remove("OPENCLAW_CONFIG"),
        };
        let process = Killed(cmd.spawn().expect(
            "tauri-driver (`cargo install tauri-driver --locked`; scripts/install-deps.sh does it)",
        ));
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let base = format!("http://127.0.0.1:{driver_port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while agent.get(format!("{base}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "tauri-driver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            process,
            agent,
            base,
        }
    }

    /// A session whose browser is the app (with `--open PAGE`): the driver starts the app and
    /// answers once its webview is there.
    pub fn open(&self, page: Option<&str>) -> Session {
        let app = workspace_bin("openclaw-app");
        let created = send(
            &self.agent,
            "POST",
            &format!("{}/session", self.base),
            Some(json!({"capabilities": {"alwaysMatch": {"tauri:options": {
                "application": app,
                "args": page.map_or_else(Vec::new, |p| vec!["--open", p]),
            }}}})),
        );
        let id = created["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        Session {
            agent: self.agent.clone(),
            base: self.base.clone(),
            id,
        }
    }
}
