//! `openclaw-node` in a real desktop session: Xvfb, a session D-Bus, the dunst notification
//! daemon and speech-dispatcher with espeak-ng playing into ALSA's null device. A gateway pairs
//! with the node and each capability is invoked for real: `system.notify` reaches dunst (seen on
//! the bus by dbus-monitor), `screen.snapshot` returns a PNG of the Xvfb screen's size,
//! `tts.speak` is synthesised by espeak-ng (seen in speech-dispatcher's log), and `camera.snap`
//! on this camera-less machine gets the typed no-camera error. Needs the Debian packages
//! scripts/install-deps.sh installs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use openclaw_tests::{base_command, free_port, workspace_bin};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A node running in its own desktop session, paired with a gateway data dir of its own.
struct Desktop {
    dir: tempfile::TempDir,
    gateway: tempfile::TempDir,
    session: Child,
    pid: Option<String>,
    advertised: String,
    unavailable: Vec<String>,
}

impl Desktop {
    /// `screen` is Xvfb's `WxHxDepth`.
    fn start(screen: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let home = dir.path().join("home");
        let speechd_conf = home.join(".config/speech-dispatcher");
        std::fs::create_dir_all(&speechd_conf).unwrap();
        std::fs::create_dir_all(dir.path().join("speechd-log")).unwrap();
        // Speech goes to ALSA's null device: synthesised and "played" with no sound card.
        std::fs::write(home.join(".asoundrc"), "pcm.!default { type null }\n").unwrap();
        std::fs::write(
            speechd_conf.join("speechd.conf"),
            format!(
                "LogLevel 5\nLogDir \"{}\"\nAudioOutputMethod \"alsa\"\nAddModule \"espeak-ng\" \"sd_espeak-ng\" \"espeak-ng.conf\"\nDefaultModule espeak-ng\nTimeout 60\n",
                dir.path().join("speechd-log").display()
            ),
        )
        .unwrap();
        let script = dir.path().join("session.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/bash\nset -e\nexport HOME='{home}' XDG_CONFIG_HOME='{home}/.config' XDG_RUNTIME_DIR='{run}'\nmkdir -p \"$XDG_RUNTIME_DIR\" && chmod 700 \"$XDG_RUNTIME_DIR\"\ndbus-monitor --session \"interface='org.freedesktop.Notifications',member='Notify'\" > '{monitor}' 2>&1 &\ndunst > /dev/null 2>&1 &\nfor i in $(seq 50); do dbus-send --session --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.NameHasOwner string:org.freedesktop.Notifications 2>/dev/null | grep -q true && break; sleep 0.1; done\necho \"PID $$\"\nexec '{node}' --state-dir '{state}' --bind 127.0.0.1 --port {port} --name desk pair\n",
                home = home.display(),
                run = dir.path().join("run").display(),
                monitor = dir.path().join("monitor.log").display(),
                node = workspace_bin("openclaw-node").display(),
                state = dir.path().join("state").display(),
            ),
        )
        .unwrap();
        let mut session = Command::new("xvfb-run")
            .args(["-a", "-s", &format!("-screen 0 {screen}")])
            .args(["dbus-run-session", "--", "timeout", "120", "bash"])
            .arg(&script)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("xvfb-run (Debian xvfb) — run ./scripts/install-deps.sh");
        let rx = openclaw_tests::stdout_lines(&mut session);
        let (mut pid, mut code, mut advertised, mut unavailable) = (None, None, None, Vec::new());
        let deadline = Instant::now() + Duration::from_secs(60);
        while code.is_none() {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("the node started in its session");
            if let Some(p) = line.strip_prefix("PID ") {
                pid = Some(p.trim().to_owned());
            } else if let Some(c) = line.strip_prefix("capabilities: ") {
                advertised = Some(c.to_owned());
            } else if let Some(c) = line.strip_prefix("not available: ") {
                unavailable.push(c.to_owned());
            } else if let Some(c) = line.strip_prefix("pairing code: ") {
                code = Some(c[..6].to_owned());
            }
        }
        let desktop = Desktop {
            dir,
            gateway: tempfile::tempdir().unwrap(),
            session,
            pid,
            advertised: advertised.unwrap_or_default(),
            unavailable,
        };
        let addr = format!("127.0.0.1:{port}");
        let (status, out, err) = desktop.cli(&["nodes", "pair", &addr, "--code", &code.unwrap()]);
        assert_eq!(status, 0, "{out}{err}");
        desktop
    }

    fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = base_command(self.gateway.path(), None)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn invoke(&self, command: &str, params: &str) -> (i32, String, String) {
        self.cli(&[
            "nodes",
            "invoke",
            "--node",
            "desk",
            "--command",
            command,
            "--params",
            params,
        ])
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Waits until `file` contains every needle; returns its text.
    fn wait_for(&self, name: &str, needles: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let seen = std::fs::read_to_string(self.file(name)).unwrap_or_default();
            if needles.iter().all(|n| seen.contains(n)) {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "{name} never showed {needles:?}:\n{seen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.as_deref().and_then(|p| p.parse().ok()) {
            let _ = openclaw_tests::signal(pid, "TERM");
        }
        let _ = self.session.wait();
    }
}

#[test]
fn system_notify_reaches_a_real_notification_daemon() {
    let desk = Desktop::start("1280x800x24");
    assert!(
        desk.advertised.contains("system.notify"),
        "dunst answered, so notifications are advertised: {}",
        desk.advertised
    );
    let (status, out, err) = desk.invoke(
        "system.notify",
        r#"{"title":"Dentist at 3 pm","body":"Leave in 20 minutes","urgency":"critical"}"#,
    );
    assert_eq!(status, 0, "{out}{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["delivered"], true);
    let seen = desk.wait_for("monitor.log", &["Dentist at 3 pm", "Leave in 20 minutes"]);
    assert!(seen.contains("\"OpenClaw\""), "app name: {seen}");
}

#[test]
fn screen_snapshot_is_a_png_of_the_whole_xvfb_screen() {
    let desk = Desktop::start("1024x768x24");
    assert!(
        desk.advertised.contains("screen.snapshot"),
        "{}",
        desk.advertised
    );
    let (status, out, err) = desk.invoke("screen.snapshot", "{}");
    assert_eq!(status, 0, "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["format"], "png");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(1024), Some(768))
    );
    let png = base64::engine::general_purpose::STANDARD
        .decode(v["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&png[12..16], b"IHDR");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (1024, 768));

    // A display that does not exist is a clear error, not a crash.
    let (status, _, err) = desk.invoke("screen.snapshot", r#"{"display":3}"#);
    assert_eq!(status, 1);
    assert!(
        err.contains("INVALID_REQUEST") && err.contains("no display 3"),
        "{err}"
    );
}

#[test]
fn tts_speak_is_synthesised_by_espeak_ng_through_speech_dispatcher() {
    let desk = Desktop::start("640x480x24");
    assert!(desk.advertised.contains("tts.speak"), "{}", desk.advertised);
    let (status, out, err) = desk.invoke(
        "tts.speak",
        r#"{"text":"The kettle has boiled","rate":1.5}"#,
    );
    assert_eq!(status, 0, "{out}{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["spoken"], true);
    // speech-dispatcher received the text and espeak-ng's audio reached the (null) device.
    desk.wait_for(
        "speechd-log/speech-dispatcher.log",
        &["The kettle has boiled", "samples to audio"],
    );
    let (status, _, err) = desk.invoke("tts.speak", r#"{"text":"hi","voice":"no-such-voice"}"#);
    assert_eq!(status, 1);
    assert!(err.contains("no voice `no-such-voice`"), "{err}");
}

#[test]
fn camera_without_a_camera_is_the_typed_no_camera_error() {
    if std::path::Path::new("/dev/video0").exists() {
        return; // this test is about camera-less hosts (servers, CI)
    }
    let desk = Desktop::start("640x480x24");
    assert!(!desk.advertised.contains("camera"), "{}", desk.advertised);
    assert!(
        desk.unavailable
            .iter()
            .any(|l| l.starts_with("camera.snap: no camera found")),
        "{:?}",
        desk.unavailable
    );
    for command in ["camera.snap", "camera.list"] {
        let (status, out, err) = desk.invoke(command, "{}");
        assert_eq!(status, 1, "{out}");
        assert!(
            err.contains("CAMERA_UNAVAILABLE") && err.contains("no camera found"),
            "{err}"
        );
    }
    // `nodes describe` says why.
    let (status, out, _) = desk.cli(&["nodes", "describe", "desk"]);
    assert_eq!(status, 0);
    assert!(
        out.contains("unavailable:  camera.snap: no camera found"),
        "{out}"
    );
}
