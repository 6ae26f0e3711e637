//! End to end through real clients: the WebChat page in headless Chromium (playwright-core) and
//! the official `openai` npm client, against the `openclaw` binary whose provider is the loopback
//! fake LLM. Needs `scripts/install-deps.sh` (chromium, tests/e2e/node_modules).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openclaw_testkit::{FakeLlm, Script};
use openclaw_tests::{GatewayProcess, screenshot_dir};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn e2e_dir() -> PathBuf {
    let dir = openclaw_tests::repo_root().join("tests/e2e");
    assert!(
        dir.join("node_modules/playwright-core").exists()
            && dir.join("node_modules/openai").exists(),
        "tests/e2e/node_modules is missing: run ./scripts/install-deps.sh"
    );
    dir
}

fn node(script: &str, args: &[&str]) -> Value {
    let out = Command::new("node")
        .current_dir(e2e_dir())
        .arg(script)
        .args(args)
        .output()
        .expect("run node (>= 20)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    serde_json::from_str(stdout.trim().lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}):\n{stdout}\n{stderr}"))
}

fn config(fake: &FakeLlm, token: Option<&str>) -> String {
    let auth = token
        .map(|t| format!("  auth:\n    token: \"{t}\"\n"))
        .unwrap_or_default();
    format!(
        "agent:\n  name: Claw\nproviders:\n  anthropic:\n    api_key: sk-e2e\n    base_url: \"{}\"\n    timeout_seconds: 10\ngateway:\n{auth}",
        fake.anthropic_url()
    )
}

#[test]
fn webchat_page_in_chromium_shows_the_streamed_reply() {
    let fake = FakeLlm::start_in_thread();
    fake.push(Script::slow_text(
        ["The capital ", "of France ", "is Paris."],
        Duration::from_millis(150),
    ));
    let mut gw = GatewayProcess::start(Some(&config(&fake, None)), &[]).unwrap();
    gw.wait_ready(Duration::from_secs(20)).unwrap();
    let shot = gw.data_dir().join("webchat.png");
    let out = Command::new("node")
        .current_dir(e2e_dir())
        .args([
            "webchat.mjs",
            &format!("http://{}/", gw.addr),
            "What is the capital of France?",
            "Paris",
        ])
        .env("SCREENSHOT", &shot)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "webchat.mjs failed:\n{stdout}\n{}\ngateway stderr:\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.stderr()
    );
    let v: Value = serde_json::from_str(stdout.trim().lines().last().unwrap()).unwrap();
    assert_eq!(v["reply"], "The capital of France is Paris.");
    assert!(
        v["deltas_seen"].as_u64().unwrap() >= 2,
        "reply did not stream: {v}"
    );
    assert!(v["status"].as_str().unwrap().contains("connected"), "{v}");
    assert!(std::fs::metadata(&shot).unwrap().len() > 1000);
    // The question reached the model as the user's turn of the webchat session.
    let req = &fake.requests()[0].body;
    assert_eq!(
        req["messages"][0]["content"],
        "What is the capital of France?"
    );
}

#[test]
fn official_openai_client_talks_to_the_gateway() {
    let fake = FakeLlm::start_in_thread();
    fake.push(Script::text(["Paris."]));
    fake.push(Script::slow_text(
        ["Pa", "ris", "."],
        Duration::from_millis(20),
    ));
    let mut gw =
        GatewayProcess::start(Some(&config(&fake, Some("e2e-token-0123456789"))), &[]).unwrap();
    gw.wait_ready(Duration::from_secs(20)).unwrap();
    let v = node(
        "openai_client.mjs",
        &[
            &format!("http://{}/v1", gw.addr),
            "e2e-token-0123456789",
            "claw",
            "What is the capital of France?",
        ],
    );
    assert_eq!(v["models"], serde_json::json!(["openclaw", "claw"]));
    assert_eq!(v["plain"], "Paris.");
    assert_eq!(v["finish_reason"], "stop");
    assert_eq!(v["streamed"], "Paris.");
    assert!(v["chunks"].as_u64().unwrap() >= 4, "{v}");
    assert_eq!(v["usage"]["completion_tokens"], 3);
    assert_eq!(v["wrong_model"]["status"], 404);
    assert_eq!(v["wrong_model"]["code"], "model_not_found");

    // A wrong key is refused.
    let out = Command::new("node")
        .current_dir(e2e_dir())
        .args([
            "openai_client.mjs",
            &format!("http://{}/v1", gw.addr),
            "wrong",
            "claw",
            "hi",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
}

#[test]
fn dashboard_and_devices_pages_in_chromium_show_health_pause_and_pair_a_device() {
    use std::io::BufRead;
    let fake = FakeLlm::start_in_thread();
    let mut gw = GatewayProcess::start(Some(&config(&fake, None)), &[]).unwrap();
    gw.wait_ready(Duration::from_secs(20)).unwrap();
    let shots = screenshot_dir();
    let mut page = Command::new("node")
        .current_dir(e2e_dir())
        .arg("dashboard.mjs")
        .arg(format!("http://{}/", gw.addr))
        .arg(&shots)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(page.stdout.take().unwrap()).lines();
    let Some(Ok(first)) = lines.next() else {
        let _ = page.wait();
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut page.stderr.take().unwrap(), &mut stderr).unwrap();
        panic!(
            "dashboard.mjs showed no code:\n{stderr}\ngateway:\n{}",
            gw.stderr()
        );
    };
    let first: Value = serde_json::from_str(&first).unwrap();
    let code = first["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 6, "{first}");
    // A node pairs by the code the page shows.
    let node_state = tempfile::tempdir().unwrap();
    openclaw_tests::pair_node_by_code(gw.addr, &code, "phone", node_state.path());
    let summary = lines.next().map(|l| l.unwrap()).unwrap_or_default();
    let status = page.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut page.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        status.success(),
        "dashboard.mjs failed:\n{summary}\n{stderr}\ngateway:\n{}",
        gw.stderr()
    );
    let v: Value = serde_json::from_str(&summary).unwrap();
    let checks: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for check in ["gateway", "agent", "channels", "memory", "disk"] {
        assert!(checks.contains(&check), "{v}");
    }
    assert_eq!(v["current"], "page", "the nav marks the page it shows: {v}");
    assert_eq!(v["pressed"], "true", "the pause button says it is on: {v}");
    assert!(v["row"].as_str().unwrap().contains("phone"), "{v}");
    assert_eq!(v["errors"], serde_json::json!([]), "no script errors: {v}");
    for shot in ["dashboard.png", "devices.png", "chat.png"] {
        assert!(
            std::fs::metadata(shots.join(shot)).unwrap().len() > 1000,
            "{shot}"
        );
    }
}

#[test]
fn approvals_page_in_chromium_approves_a_code_seeded_in_the_store_rejects_another_and_removes_a_sender()
 {
    let fake = FakeLlm::start_in_thread();
    let mut gw = GatewayProcess::start(Some(&config(&fake, None)), &[]).unwrap();
    gw.wait_ready(Duration::from_secs(20)).unwrap();
    // What a channel driver will do when strangers write: codes in the gateway's database,
    // written here from another process (WAL) while the gateway runs.
    let store = openclaw_store::Store::open_in_dir(gw.data_dir()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let seed = |sender: &str, name: Option<&str>| match store
        .request_access(
            "telegram",
            sender,
            name,
            openclaw_store::CodePolicy::default(),
            now,
        )
        .unwrap()
    {
        openclaw_store::AccessOutcome::Pending { code, .. } => code.code,
        other => panic!("expected a code, got {other:?}"),
    };
    let (approve, reject) = (seed("42", Some("Ada")), seed("77", None));
    let shots = screenshot_dir();
    let v = node(
        "approvals.mjs",
        &[
            &format!("http://{}/", gw.addr),
            shots.to_str().unwrap(),
            &approve,
            &reject,
        ],
    );
    assert_eq!(v["current"], "page", "the nav marks the page: {v}");
    assert_eq!(
        v["focused"], "approvals-title",
        "focus goes to the heading: {v}"
    );
    let pending = v["pendingText"].as_str().unwrap();
    assert!(
        pending.contains("Ada (42)") && pending.contains(&approve),
        "{v}"
    );
    assert_eq!(v["noApprovedShown"], true, "empty state before: {v}");
    assert!(
        v["approvedText"].as_str().unwrap().contains("Ada (42)"),
        "{v}"
    );
    assert!(v["message"].as_str().unwrap().contains("may talk"), "{v}");
    assert_eq!(v["emptyText"], "No one is waiting for approval.", "{v}");
    assert_eq!(v["errors"], serde_json::json!([]), "no script errors: {v}");
    assert_eq!(v["removedMessage"], "Ada (42) removed", "{v}");
    // The page's decisions reached the store the drivers read: the code approved was used
    // up, the one rejected is gone, and the sender approved then removed is unknown again.
    assert!(store.pending_codes(now).unwrap().is_empty());
    assert!(store.paired_senders().unwrap().is_empty());
    assert!(!store.is_approved("telegram", "42").unwrap());
    assert!(!store.is_approved("telegram", "77").unwrap());
    for shot in [
        "approvals-pending.png",
        "approvals.png",
        "approvals-dark.png",
    ] {
        assert!(
            std::fs::metadata(shots.join(shot)).unwrap().len() > 1000,
            "{shot}"
        );
    }
}

#[test]
fn settings_page_in_chromium_saves_an_api_key_into_the_desktop_keyring_and_no_file() {
    // The gateway on a desktop session's bus, with its unlocked GNOME Keyring.
    let session = openclaw_tests::desktop::DesktopSession::start().unwrap();
    let fake = FakeLlm::start_in_thread();
    let written = format!("# The owner's own words.\n{}", config(&fake, None));
    let mut gw = GatewayProcess::start(
        Some(&written),
        &[("DBUS_SESSION_BUS_ADDRESS", &session.bus_address)],
    )
    .unwrap();
    gw.wait_ready(Duration::from_secs(20)).unwrap();
    let key = "sk-ant-typed-in-settings-0123";
    let shots = screenshot_dir();
    let v = node(
        "settings.mjs",
        &[
            &format!("http://{}/", gw.addr),
            shots.to_str().unwrap(),
            key,
        ],
    );
    assert_eq!(v["current"], "page", "{v}");
    assert_eq!(v["focused"], "settings-title", "{v}");
    assert!(v["store"].as_str().unwrap().contains("OS keyring"), "{v}");
    assert_eq!(v["before"], "not set", "{v}");
    assert!(
        v["providers"].as_str().unwrap().contains("anthropic"),
        "{v}"
    );
    assert_eq!(v["type"], "password", "{v}");
    assert_eq!(v["after"], "set", "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("saved in the OS keyring"),
        "{v}"
    );
    assert_eq!(v["shown"], false, "the page never shows the key: {v}");
    assert_eq!(v["errors"], serde_json::json!([]), "{v}");
    // The changes are in config.yaml, after what the owner wrote, which is kept as it was.
    let text = std::fs::read_to_string(gw.config.as_ref().unwrap()).unwrap();
    let mut lines = text.lines();
    assert!(
        written.lines().all(|w| lines.any(|l| l == w)),
        "every line the owner wrote stays, in order: {text}"
    );
    assert!(
        text.ends_with("  ollama:\n    type: openai\n    model: llama3.2\n    base_url: http://127.0.0.1:11434/v1\ngateway:\nsecurity:\n  rate_limiting:\n    enabled: true\n    default_messages_per_minute: 42\n    default_tool_calls_per_minute: 10\n"),
        "{text}"
    );
    assert!(
        v["rateSaved"]
            .as_str()
            .unwrap()
            .contains("Restart the gateway"),
        "{v}"
    );
    assert_eq!(v["keyFieldHidden"], true, "{v}");
    assert!(
        v["providersAfter"].as_str().unwrap().contains("ollama"),
        "{v}"
    );
    assert!(
        v["configState"]
            .as_str()
            .unwrap()
            .contains("systemctl restart openclaw"),
        "{v}"
    );
    assert!(
        v["scheduleRefused"].as_str().unwrap().contains("at two"),
        "{v}"
    );
    assert!(!text.contains("at two"), "{text}");
    // It is in GNOME Keyring, under the name config refers to…
    let kept = session
        .keyring_lookup(&[("service", "openclaw"), ("username", "anthropic")])
        .unwrap();
    assert_eq!(kept.as_deref(), Some(key.as_bytes()));
    // …and in no file under the data dir (database, WAL, logs, audit) or the config.
    let mut files = vec![gw.config.clone().unwrap()];
    let mut dirs = vec![gw.data_dir().to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    for file in files {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(
            !bytes.windows(key.len()).any(|w| w == key.as_bytes()),
            "{} holds the key",
            file.display()
        );
    }
    for shot in ["settings.png", "settings-dark.png"] {
        assert!(
            std::fs::metadata(shots.join(shot)).unwrap().len() > 1000,
            "{shot}"
        );
    }
}
