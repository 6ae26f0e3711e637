//! `openclaw pairing list | approve | reject | revoke` against a running `openclaw` gateway,
//! with the pending codes seeded through the store by this (other) process while the gateway
//! holds the same `openclaw.db` (WAL): what a channel driver will do in the gateway.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openclaw_store::{AccessOutcome, CodePolicy, PendingCode, Store};
use openclaw_tests::{GatewayProcess, run_json};
use serde_json::{Value, json};
use std::time::Duration;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn seed(store: &Store, channel: &str, sender: &str, name: Option<&str>, at: i64) -> PendingCode {
    match store
        .request_access(channel, sender, name, CodePolicy::default(), at)
        .unwrap()
    {
        AccessOutcome::Pending { code, .. } => code,
        other => panic!("expected a code, got {other:?}"),
    }
}

fn cli(gw: &GatewayProcess, args: &[&str]) -> (i32, Value, String) {
    let mut cmd = openclaw_tests::base_command(gw.data_dir(), gw.config.as_deref());
    cmd.args(args)
        .env("OPENCLAW_PORT", gw.addr.port().to_string());
    run_json(&mut cmd)
}

#[test]
fn a_code_seeded_in_the_store_is_listed_approved_and_rejected_by_the_cli() {
    let mut gw = GatewayProcess::start(None, &[]).unwrap();
    gw.wait_ready(Duration::from_secs(20)).unwrap();
    let store = Store::open_in_dir(gw.data_dir()).unwrap();
    let ada = seed(&store, "telegram", "42", Some("Ada"), now());
    let bob = seed(&store, "telegram", "77", None, now());

    // Listed by the gateway, as JSON and for people.
    let (code, v, out) = cli(&gw, &["pairing", "list", "--json"]);
    assert_eq!(code, 0, "{out}");
    let pending = v["pending"].as_array().unwrap();
    assert_eq!(pending.len(), 2, "{v}");
    let listed = pending.iter().find(|p| p["sender"] == "42").unwrap();
    assert_eq!(listed["code"], ada.code.as_str(), "{v}");
    assert_eq!(listed["name"], "Ada", "{v}");
    assert!(listed["expires_in_seconds"].as_u64().unwrap() <= 300);
    assert_eq!(v["approved"], json!([]));
    let (code, _, human) = cli(&gw, &["pairing", "list"]);
    assert_eq!(code, 0, "{human}");
    assert!(human.contains("Pending approvals"), "{human}");
    assert!(
        human.contains(&ada.code) && human.contains("Ada"),
        "{human}"
    );

    // Approved through the gateway: the store the channel drivers read says so at once.
    let spaced = format!("{} {}", &ada.code[..3], &ada.code[3..]);
    let (code, v, out) = cli(&gw, &["pairing", "approve", "telegram", &spaced, "--json"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        (&v["ok"], &v["sender"], &v["name"]),
        (&json!(true), &json!("42"), &json!("Ada")),
        "{v}"
    );
    assert!(store.is_approved("telegram", "42").unwrap());
    let (code, _, human) = cli(&gw, &["pairing", "reject", "telegram", &bob.code]);
    assert_eq!(code, 0, "{human}");
    assert!(human.contains("rejected 77 on telegram"), "{human}");
    assert!(!store.is_approved("telegram", "77").unwrap());

    // The same code twice, a code never given, an expired one: exit 1 and a clear message.
    let (code, v, out) = cli(
        &gw,
        &["pairing", "approve", "telegram", &ada.code, "--json"],
    );
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        (&v["ok"], &v["reason"]),
        (&json!(false), &json!("unknown_code"))
    );
    assert!(out.contains("no pending code"), "{out}");
    let stale = seed(&store, "slack", "old", None, now() - 1000);
    let (code, _, out) = cli(&gw, &["pairing", "approve", "slack", &stale.code]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("has expired"), "{out}");
    // Malformed input is a usage error.
    let (code, v, out) = cli(&gw, &["pairing", "approve", "telegram", "12ab56", "--json"]);
    assert_eq!((code, &v["reason"]), (64, &json!("bad_input")), "{out}");

    let (code, v, out) = cli(&gw, &["pairing", "list", "--json"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(v["pending"], json!([]), "{v}");
    assert_eq!(v["approved"][0]["sender"], "42", "{v}");

    // Revoked, once.
    let (code, _, out) = cli(&gw, &["pairing", "revoke", "telegram", "42"]);
    assert_eq!(code, 0, "{out}");
    assert!(!store.is_approved("telegram", "42").unwrap());
    let (code, _, out) = cli(&gw, &["pairing", "revoke", "telegram", "42"]);
    assert_eq!(code, 1, "{out}");

    // Each decision is in the gateway's audit log (written in the background: complete once
    // the gateway has stopped).
    gw.terminate(Duration::from_secs(10)).unwrap();
    let audit = std::fs::read_to_string(gw.data_dir().join("logs/audit.log")).unwrap();
    for event in ["pairing.approved", "pairing.rejected", "pairing.revoked"] {
        assert_eq!(
            audit.matches(&format!("\"{event}\"")).count(),
            1,
            "{event}:\n{audit}"
        );
    }

    // No gateway: exit 3, saying so.
    let (code, v, out) = cli(&gw, &["pairing", "list", "--json"]);
    assert_eq!((code, &v["reason"]), (3, &json!("not_running")), "{out}");
    assert!(out.contains("not running"), "{out}");
}
