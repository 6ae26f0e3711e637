//! Secrets in the OS keyring, across processes: `${keyring:NAME}` in config.yaml is read from
//! the desktop's Secret Service (GNOME Keyring on a private session bus) by `openclaw config
//! validate` and by the gateway, which then calls its provider with that key; a name the
//! keyring lacks, or no keyring at all, is a config problem that says so.

use openclaw_testkit::{FakeLlm, Script};
use openclaw_tests::desktop::DesktopSession;
use openclaw_tests::{GatewayProcess, base_command, http_post_json, run_json};
use serde_json::json;
use std::time::Duration;

fn config(fake: &FakeLlm, key_ref: &str) -> String {
    format!(
        "providers:\n  anthropic:\n    api_key: \"${{keyring:{key_ref}}}\"\n    base_url: \"{}\"\n    timeout_seconds: 10\n",
        fake.anthropic_url()
    )
}

#[test]
fn config_takes_api_keys_from_the_os_keyring_and_names_what_is_missing() {
    let session = DesktopSession::start().unwrap();
    session
        .keyring_store(
            &[("service", "openclaw"), ("username", "anthropic")],
            b"sk-ant-from-keyring",
        )
        .unwrap();
    let fake = FakeLlm::start_in_thread();
    fake.set_fallback(Script::text(["from the keyring's key"]));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");

    // `config validate` reads the keyring on the session bus.
    std::fs::write(&file, config(&fake, "anthropic")).unwrap();
    let validate = |file: &std::path::Path, bus: Option<&str>| {
        let mut cmd = base_command(dir.path(), None);
        cmd.args(["config", "validate", "--json"]).arg(file);
        match bus {
            Some(address) => cmd.env("DBUS_SESSION_BUS_ADDRESS", address),
            None => cmd
                .env_remove("DBUS_SESSION_BUS_ADDRESS")
                .env("XDG_RUNTIME_DIR", dir.path()),
        };
        run_json(&mut cmd)
    };
    let (code, out, text) = validate(&file, Some(&session.bus_address));
    assert_eq!(code, 0, "{text}");
    assert_eq!(out["valid"], true, "{text}");
    // The key itself is never printed.
    assert!(!text.contains("sk-ant-from-keyring"), "{text}");

    // A name the keyring does not have: the problem names it and where it was referenced.
    let missing = dir.path().join("missing.yaml");
    std::fs::write(&missing, config(&fake, "slack_bot")).unwrap();
    let (code, out, text) = validate(&missing, Some(&session.bus_address));
    assert_ne!(code, 0, "{text}");
    assert_eq!(out["valid"], false, "{text}");
    let problem = &out["problems"][0];
    assert_eq!(problem["path"], "providers.anthropic.api_key", "{text}");
    assert_eq!(problem["line"], 3, "{text}");
    assert!(
        problem["message"]
            .as_str()
            .unwrap()
            .contains("has no secret `slack_bot`"),
        "{text}"
    );

    // No keyring at all (no session bus): it says there is none and what to do instead.
    let (code, out, text) = validate(&file, None);
    assert_ne!(code, 0, "{text}");
    let message = out["problems"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("no OS keyring"), "{text}");
    assert!(message.contains("environment variable"), "{text}");

    // The gateway calls its provider with the keyring's key.
    let mut gateway = GatewayProcess::start(
        Some(&config(&fake, "anthropic")),
        &[("DBUS_SESSION_BUS_ADDRESS", &session.bus_address)],
    )
    .unwrap();
    gateway.wait_ready(Duration::from_secs(30)).unwrap();
    let token = std::fs::read_to_string(gateway.dir.path().join("gateway.token")).unwrap();
    let (status, body) = http_post_json(
        gateway.addr,
        "/v1/chat/completions",
        Some(token.trim()),
        &json!({"model": "openclaw", "messages": [{"role": "user", "content": "hi"}]}),
        Duration::from_secs(20),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("from the keyring's key"), "{body}");
    let sent = fake.requests();
    let call = sent
        .iter()
        .find(|r| r.path.ends_with("/messages"))
        .expect("the provider was called");
    assert_eq!(
        call.headers.get("x-api-key").and_then(|v| v.to_str().ok()),
        Some("sk-ant-from-keyring")
    );
    // And no file under the data dir holds it.
    for entry in walk(gateway.dir.path()) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !bytes
                .windows(b"sk-ant-from-keyring".len())
                .any(|w| w == b"sk-ant-from-keyring"),
            "{} holds the key",
            entry.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
