//! End to end through real clients: the WebChat page in headless Chromium (playwright-core) and
//! the official `openai` npm client, against the `openclaw` binary whose provider is the loopback
//! fake LLM. Needs `scripts/install-deps.sh` (chromium, tests/e2e/node_modules).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openclaw_testkit::{FakeLlm, Script};
use openclaw_tests::GatewayProcess;
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
