//! The `local` provider with the real SmolLM2-135M-Instruct model (scripts/fetch-model.sh caches
//! it in ~/.cache/openclaw/models): streaming, the bounded queue's busy error, status, the idle
//! release, and Hermes tool calls with a copy whose template declares tools.
#![cfg(feature = "local-model")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openclaw_agent::provider::{Local, LocalSettings, ModelState, Provider};
use openclaw_agent::{ChatRequest, ErrorKind, StopReason, StreamEvent, ToolCall, ToolSpec, Turn};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The repository root, from cargo's run-time CARGO_MANIFEST_DIR (a reused test binary's
/// compile-time one may name a checkout that is gone).
fn repo_root() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest.join("../..")
}

fn model() -> PathBuf {
    let script = repo_root().join("scripts/fetch-model.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .env("FETCH_MODEL_CACHE_ONLY", "1")
        .output()
        .expect("run scripts/fetch-model.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Held by every test here: one model generates at a time. llama.cpp's threads meet in spinning
/// barriers, and two models sharing two cores slow each other down many times over.
static ONE_MODEL_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn question() -> ChatRequest {
    ChatRequest {
        system: "You are a helpful assistant.".into(),
        turns: vec![Turn::User("What is the capital of France?".into())],
        tools: Vec::new(),
        max_tokens: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_an_answer_and_refuses_past_the_queue_bound() {
    let _model = ONE_MODEL_AT_A_TIME.lock().await;
    let mut settings = LocalSettings::new(model());
    settings.queue_size = 1;
    settings.max_tokens = 48;
    settings.threads = 2;
    let local = Arc::new(Local::new("local", settings));
    let status = local.local_status().unwrap();
    assert_eq!(status.state, ModelState::Unloaded);
    assert_eq!(status.tools, None);

    let request = question();
    let mut deltas = Vec::new();
    let mut sink = |ev: StreamEvent| {
        if let StreamEvent::TextDelta(t) = ev {
            deltas.push(t);
        }
    };
    let done = tokio::time::timeout(Duration::from_secs(60), local.complete(&request, &mut sink))
        .await
        .expect("answer within 60 s")
        .unwrap();
    assert!(done.text.contains("Paris"), "{done:?}");
    assert!(deltas.len() >= 2, "{deltas:?}");
    assert_eq!(deltas.concat().trim(), done.text);
    assert!(done.usage.input_tokens > 5 && done.usage.output_tokens >= 2);
    let status = local.local_status().unwrap();
    assert_eq!(status.state, ModelState::Ready);
    assert_eq!(status.tools, Some(false));
    assert!(status.memory_bytes > 50 << 20);

    // One runs, one waits, the rest are told the model is busy (classified as overloaded).
    let calls = (0..4).map(|_| {
        let local = local.clone();
        tokio::spawn(async move {
            let request = question();
            let mut sink = |_: StreamEvent| {};
            local.complete(&request, &mut sink).await
        })
    });
    let results = tokio::time::timeout(
        Duration::from_secs(120),
        futures_util::future::join_all(calls),
    )
    .await
    .expect("all settle within 120 s");
    let mut ok = 0;
    let mut busy = 0;
    for r in results {
        match r.unwrap() {
            Ok(c) => {
                assert!(c.text.contains("Paris"), "{c:?}");
                ok += 1;
            }
            Err(e) => {
                assert_eq!(e.kind, ErrorKind::Overloaded, "{e}");
                assert!(e.message.contains("busy"), "{e}");
                assert!(e.is_retryable());
                busy += 1;
            }
        }
    }
    assert!(ok >= 1 && busy >= 1, "ok {ok}, busy {busy}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_idle_release_the_next_question_loads_the_model_again() {
    let _model = ONE_MODEL_AT_A_TIME.lock().await;
    let mut settings = LocalSettings::new(model());
    settings.max_tokens = 24;
    settings.threads = 2;
    settings.idle_unload = Duration::from_millis(300);
    let local = Local::new("local", settings);
    let ask = || async {
        let request = question();
        let mut sink = |_: StreamEvent| {};
        tokio::time::timeout(Duration::from_secs(60), local.complete(&request, &mut sink))
            .await
            .expect("answer within 60 s")
    };
    for round in 0..2 {
        let done = ask().await.unwrap();
        assert!(done.text.contains("Paris"), "round {round}: {done:?}");
        assert_eq!(local.local_status().unwrap().state, ModelState::Ready);
        // The worker drops the model and leaves; the next question starts a new one.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while local.local_status().unwrap().state != ModelState::Unloaded {
            assert!(std::time::Instant::now() < deadline, "not released");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(local.local_status().unwrap().memory_bytes, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_provider_ends_its_worker_and_releases_the_model() {
    let _model = ONE_MODEL_AT_A_TIME.lock().await;
    let mut settings = LocalSettings::new(model());
    settings.max_tokens = 8;
    settings.threads = 2;
    // Its own name: the other tests here run their workers at the same time.
    let local = Local::new("dropped", settings);
    let request = question();
    let mut sink = |_: StreamEvent| {};
    local.complete(&request, &mut sink).await.unwrap();
    let thread_count = || {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .flatten()
            .filter(|t| {
                std::fs::read_to_string(t.path().join("comm"))
                    // Thread names are cut to 15 bytes: "local-model-dro".
                    .is_ok_and(|c| c.starts_with("local-model-dro"))
            })
            .count()
    };
    assert_eq!(thread_count(), 1, "the worker is running");
    drop(local);
    // The default idle time is 5 minutes: the worker must not wait for it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while thread_count() > 0 {
        assert!(std::time::Instant::now() < deadline, "worker still running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// SmolLM2 with a chat template that declares tools (scripts/tool-model.sh).
fn tool_model() -> PathBuf {
    let script = repo_root().join("scripts/tool-model.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .output()
        .expect("run scripts/tool-model.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_with_tools_turns_tools_on_and_a_hermes_call_comes_back_parsed() {
    let _model = ONE_MODEL_AT_A_TIME.lock().await;
    let mut settings = LocalSettings::new(tool_model());
    settings.max_tokens = 60;
    settings.threads = 2;
    let local = Local::new("local", settings);
    let memory_search = ToolSpec {
        name: "memory_search".into(),
        description: "Search long-term memory for notes saved earlier.".into(),
        parameters: serde_json::json!({"type": "object",
            "properties": {"query": {"type": "string"}}, "required": ["query"]}),
    };
    // Earlier turns in which the assistant answered with calls (as the agent loop records them):
    // 135M parameters follow a pattern better than an instruction. Greedy decoding makes the
    // outcome the same on every run.
    let mut turns = Vec::new();
    for (i, topic) in ["coffee", "tea", "music"].iter().enumerate() {
        turns.push(Turn::User(format!("Search my memory for {topic}.")));
        turns.push(Turn::Assistant {
            text: String::new(),
            tool_calls: vec![ToolCall {
                id: format!("c{i}"),
                name: "memory_search".into(),
                arguments: serde_json::json!({"query": topic}),
            }],
        });
    }
    turns.push(Turn::User("Search my memory for birthday.".into()));
    let request = ChatRequest {
        system: "You are a helpful assistant.".into(),
        turns,
        tools: vec![memory_search],
        max_tokens: None,
    };
    let mut streamed = String::new();
    let mut sink = |ev: StreamEvent| {
        if let StreamEvent::TextDelta(t) = ev {
            streamed.push_str(&t);
        }
    };
    let done = tokio::time::timeout(Duration::from_secs(60), local.complete(&request, &mut sink))
        .await
        .expect("answer within 60 s")
        .unwrap();
    assert_eq!(local.local_status().unwrap().tools, Some(true));
    assert_eq!(done.stop, StopReason::ToolUse, "{done:?}");
    assert_eq!(done.tool_calls.len(), 1, "{done:?}");
    assert_eq!(done.tool_calls[0].name, "memory_search");
    assert_eq!(
        done.tool_calls[0].arguments,
        serde_json::json!({"query": "birthday"})
    );
    // The call's JSON was held back from the stream: nothing of it reached the user as text.
    assert!(!streamed.contains("tool_call"), "{streamed:?}");
    assert!(!streamed.contains("memory_search"), "{streamed:?}");
}
