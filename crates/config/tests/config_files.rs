//! Whole files through `parse`: the shipped example, env expansion, and malformed files whose
//! every problem must come back with its line.

use openclaw_config::{Config, ConfigError, LogLevel, ProviderKind, parse};
use std::collections::HashMap;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k: &str| map.get(k).cloned()
}

fn guide_env() -> impl Fn(&str) -> Option<String> {
    env_of(&[
        ("ANTHROPIC_API_KEY", "sk-ant-test"),
        ("OPENAI_API_KEY", "sk-test"),
        ("OPENCLAW_GATEWAY_TOKEN", "gw-token-0123456789abcdef"),
        ("TELEGRAM_BOT_TOKEN", "123:abc"),
        ("SLACK_BOT_TOKEN", "xoxb-1"),
        ("SLACK_APP_TOKEN", "xapp-1"),
    ])
}

fn errors(text: &str) -> ConfigError {
    parse(text, "config.yaml", &env_of(&[])).expect_err("expected the file to be refused")
}

/// (line, path) of each problem, for compact assertions.
fn spots(err: &ConfigError) -> Vec<(Option<u64>, String)> {
    err.problems
        .iter()
        .map(|p| (p.line, p.path.clone()))
        .collect()
}

#[test]
fn the_shipped_example_validates() {
    let text = include_str!("../../../deploy/config.example.yaml");
    let c = parse(text, "config.example.yaml", &guide_env()).unwrap();
    let providers = c.providers();
    assert_eq!(
        providers
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["anthropic", "openai"],
        "config order is the failover order"
    );
    assert_eq!(providers[0].kind, ProviderKind::Anthropic);
    assert_eq!(
        providers[0].config.api_key.as_ref().unwrap().expose(),
        "sk-ant-test"
    );
    assert_eq!(
        providers[1].config.failover_enabled,
        Some(true),
        "`failover` alias"
    );
    assert_eq!(c.gateway.host, "0.0.0.0");
    assert_eq!(c.gateway.auth.token(), Some("gw-token-0123456789abcdef"));
    assert_eq!(
        c.channels.enabled(),
        ["whatsapp", "telegram", "slack", "webchat"]
    );
    assert_eq!(c.logging.level, LogLevel::Info);
    assert_eq!(c.backup.max_backups, 30);
    assert_eq!(c.device_nodes["macbook-pro"].priority, 1);
    assert_eq!(
        c.device_nodes["iphone"].tailscale_ip.to_string(),
        "100.64.0.3"
    );
}

#[test]
fn empty_file_is_all_defaults() {
    let c = parse("# nothing here\n", "config.yaml", &env_of(&[])).unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.gateway.port, 18789);
    assert_eq!(c.gateway.host, "127.0.0.1");
}

#[test]
fn env_expansion_and_missing_variable_names_the_key() {
    let text =
        "providers:\n  anthropic:\n    api_key: \"${KEY}\"\n    model: \"${MODEL:-claude}\"\n";
    let c = parse(text, "c.yaml", &env_of(&[("KEY", "sk-1")])).unwrap();
    let p = &c.providers()[0];
    assert_eq!(p.config.api_key.as_ref().unwrap().expose(), "sk-1");
    assert_eq!(p.config.model.as_deref(), Some("claude"));

    let err = parse(text, "c.yaml", &env_of(&[])).unwrap_err();
    assert_eq!(
        spots(&err),
        [(Some(3), "providers.anthropic.api_key".into())]
    );
    let msg = err.to_string();
    assert!(msg.starts_with("c.yaml:3:"), "{msg}");
    assert!(msg.contains("KEY is not set"), "{msg}");
}

#[test]
fn secrets_do_not_show_in_debug_output() {
    let text = "providers:\n  anthropic:\n    api_key: sk-very-secret\n";
    let c = parse(text, "c.yaml", &env_of(&[])).unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("sk-very-secret"), "{dbg}");
}

#[test]
fn unknown_keys_are_reported_with_line_and_nearest_key() {
    let err = errors("gateway:\n  hots: 0.0.0.0\n  port: 18789\nlogging:\n  levl: debug\n");
    assert_eq!(
        spots(&err),
        [
            (Some(2), "gateway.hots".into()),
            (Some(5), "logging.levl".into())
        ]
    );
    let msg = err.to_string();
    assert!(
        msg.contains("config.yaml:2:3: gateway.hots: unknown key `hots` (did you mean `host`?)"),
        "{msg}"
    );
    assert!(msg.contains("did you mean `level`?"), "{msg}");
}

#[test]
fn unknown_top_level_section_lists_the_sections() {
    let err = errors("gatewy:\n  port: 1\n");
    assert_eq!(spots(&err), [(Some(1), "gatewy".into())]);
    assert!(err.to_string().contains("did you mean `gateway`?"), "{err}");
}

#[test]
fn wrong_types_are_all_reported() {
    let text = "\
gateway:
  port: \"eighty\"
  max_connections: -5
memory:
  persistence: maybe
security:
  pairing:
    code_expiry_seconds: [1, 2]
";
    let err = errors(text);
    assert_eq!(
        spots(&err),
        [
            (Some(2), "gateway.port".into()),
            (Some(3), "gateway.max_connections".into()),
            (Some(5), "memory.persistence".into()),
            (Some(8), "security.pairing.code_expiry_seconds".into()),
        ]
    );
    let msg = err.to_string();
    assert!(
        msg.contains("wrong type: expected a whole number (u16)"),
        "{msg}"
    );
    assert!(msg.contains("expected true or false"), "{msg}");
}

#[test]
fn bad_enum_values_suggest_the_nearest() {
    let err = errors("logging:\n  level: inf\nbackup:\n  include:\n    - memory\n    - sesions\n");
    assert_eq!(
        spots(&err),
        [
            (Some(2), "logging.level".into()),
            (Some(6), "backup.include[1]".into())
        ]
    );
    let msg = err.to_string();
    assert!(
        msg.contains("`inf` is not a valid value (did you mean `info`?)"),
        "{msg}"
    );
    assert!(msg.contains("did you mean `sessions`?"), "{msg}");
}

#[test]
fn yaml_syntax_error_has_its_position() {
    let err = errors("gateway:\n  host: [127.0.0.1\n  port: 1\n");
    assert_eq!(err.problems.len(), 1);
    let p = &err.problems[0];
    assert!(p.line.is_some_and(|l| (2..=4).contains(&l)), "{p:?}");
    assert!(p.message.starts_with("invalid YAML"), "{p:?}");
}

#[test]
fn a_list_is_not_a_config() {
    let err = errors("- a\n- b\n");
    assert_eq!(err.problems.len(), 1);
    assert!(err.to_string().contains("must be a mapping"), "{err}");
}

#[test]
fn semantic_problems_carry_lines_too() {
    let text = "\
providers:
  openrouter:
    api_key: x
  anthropic:
    model_path: /m.gguf
gateway:
  port: 0
  host: my-laptop
security:
  pairing:
    code_length: 3
backup:
  schedule: \"every day\"
";
    let err = errors(text);
    assert_eq!(
        spots(&err),
        [
            (Some(2), "providers.openrouter".into()),
            (Some(5), "providers.anthropic.model_path".into()),
            (Some(7), "gateway.port".into()),
            (Some(8), "gateway.host".into()),
            (Some(11), "security.pairing.code_length".into()),
            (Some(13), "backup.schedule".into()),
        ]
    );
    assert!(err.to_string().contains("add `type: openai`"), "{err}");
}

#[test]
fn device_node_without_address_is_refused() {
    let err =
        errors("device_nodes:\n  mac:\n    port: 18790\n  pi:\n    tailscale_ip: not-an-ip\n");
    let s = spots(&err);
    assert_eq!(s.len(), 2, "{err}");
    assert_eq!(s[0], (Some(2), "device_nodes.mac".into()));
    assert!(
        err.to_string().contains("missing field `tailscale_ip`"),
        "{err}"
    );
    assert_eq!(s[1].0, Some(5));
}

#[test]
fn a_typed_provider_entry_is_checked_too() {
    let err = errors(
        "providers:\n  ollama:\n    type: openai\n    base_url: localhost:11434\n    api_kye: x\n",
    );
    assert_eq!(
        spots(&err),
        [
            (Some(4), "providers.ollama.base_url".into()),
            (Some(5), "providers.ollama.api_kye".into()),
        ]
    );
}

#[test]
fn local_provider_keys_are_checked_with_lines() {
    let ok = openclaw_config::parse(
        "providers:\n  local:\n    model_path: /m/model.gguf\n    context_tokens: 4096\n    threads: 2\n    max_tokens: 256\n    idle_unload_seconds: 60\n",
        "config.yaml",
        &env_of(&[]),
    );
    assert!(ok.is_ok(), "{:?}", ok.err());
    let err = errors(
        "providers:\n  mine:\n    type: local\n    model_path: \"\"\n    context_tokens: 10\n    threads: 0\n    idle_unload_seconds: 0\n    base_url: http://x\n",
    );
    assert_eq!(
        spots(&err),
        [
            (Some(4), "providers.mine.model_path".into()),
            (Some(5), "providers.mine.context_tokens".into()),
            (Some(6), "providers.mine.threads".into()),
            (Some(7), "providers.mine.idle_unload_seconds".into()),
            (Some(8), "providers.mine.base_url".into()),
        ]
    );
    assert!(
        err.to_string().contains("does not apply to `type: local`"),
        "{err}"
    );
}

#[test]
fn short_tokens_and_malformed_origins_or_hosts_are_refused() {
    let err = errors(
        "gateway:\n  auth:\n    token: \"short\"\n  allowed_origins:\n    - \"https://chat.example.com/app\"\n    - \"chat.example.com\"\n  allowed_hosts:\n    - \"https://chat.example.com\"\n",
    );
    assert_eq!(
        spots(&err),
        [
            (Some(3), "gateway.auth.token".to_owned()),
            (Some(5), "gateway.allowed_origins[0]".to_owned()),
            (Some(6), "gateway.allowed_origins[1]".to_owned()),
            (Some(8), "gateway.allowed_hosts[0]".to_owned()),
        ]
    );
    let text = err.to_string();
    assert!(text.contains("at least 16"), "{text}");
    let ok = parse(
        "gateway:\n  auth:\n    token: \"0123456789abcdef\"\n  allowed_origins: [\"https://chat.example.com\"]\n  allowed_hosts: [\"chat.example.com\"]\n",
        "config.yaml",
        &env_of(&[]),
    )
    .unwrap();
    assert_eq!(ok.gateway.allowed_hosts, ["chat.example.com"]);
}

#[test]
fn there_is_no_default_update_feed() {
    let c = parse("", "config.yaml", &env_of(&[])).unwrap();
    assert_eq!(c.update.feed_url, None);
    let err = errors("update:\n  feed_url: \"ftp://example.com/feed\"\n");
    assert_eq!(spots(&err), [(Some(2), "update.feed_url".to_owned())]);
}
