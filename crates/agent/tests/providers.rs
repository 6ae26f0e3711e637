//! Both providers against the loopback fake speaking their wire formats, and the failover chain.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openclaw_agent::chain::{ChainPolicy, ProviderChain};
use openclaw_agent::provider::{Anthropic, HttpSettings, OpenAi, Provider};
use openclaw_agent::{ChainError, ChatRequest, ErrorKind, StreamEvent, Telemetry, ToolSpec, Turn};
use openclaw_testkit::{FakeLlm, Script};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn settings(url: String) -> HttpSettings {
    HttpSettings {
        base_url: url,
        model: "test-model".into(),
        api_key: Some(openclaw_config::Secret::new("sk-test-key")),
        max_tokens: 256,
        timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(2),
    }
}

#[test]
fn provider_settings_never_show_the_key_in_debug() {
    let text = format!("{:?}", settings("http://127.0.0.1:1".into()));
    assert!(!text.contains("sk-test-key"), "{text}");
    assert!(text.contains("redacted"), "{text}");
    let provider = Anthropic::new("anthropic", settings("http://127.0.0.1:1".into()));
    assert!(!format!("{provider:?}").contains("sk-test-key"));
}

fn anthropic(fake: &FakeLlm, name: &str) -> Arc<dyn Provider> {
    Arc::new(Anthropic::new(name, settings(fake.anthropic_url())))
}

fn openai(fake: &FakeLlm, name: &str) -> Arc<dyn Provider> {
    Arc::new(OpenAi::new(name, settings(fake.openai_url())))
}

fn request() -> ChatRequest {
    ChatRequest {
        system: "be brief".into(),
        turns: vec![Turn::User("hello".into())],
        tools: vec![ToolSpec {
            name: "memory_search".into(),
            description: "search".into(),
            parameters: json!({"type": "object", "properties": {"query": {"type": "string"}}}),
        }],
        max_tokens: None,
    }
}

async fn run(
    p: &dyn Provider,
) -> (
    Result<openclaw_agent::Completion, openclaw_agent::ProviderError>,
    Vec<StreamEvent>,
) {
    let req = request();
    let mut events = Vec::new();
    let r = p.complete(&req, &mut |e| events.push(e)).await;
    (r, events)
}

#[tokio::test]
async fn anthropic_streams_text_with_usage_and_documented_headers() {
    let fake = FakeLlm::start().await;
    fake.push(Script::text(["Hel", "lo!"]));
    let p = anthropic(&fake, "anthropic");
    let (r, events) = run(p.as_ref()).await;
    let c = r.unwrap();
    assert_eq!(c.text, "Hello!");
    assert_eq!(
        events,
        [
            StreamEvent::TextDelta("Hel".into()),
            StreamEvent::TextDelta("lo!".into())
        ]
    );
    assert_eq!(c.usage.input_tokens, 25);
    assert_eq!(c.usage.output_tokens, 2);
    let req = &fake.requests()[0];
    assert_eq!(req.path, "/v1/messages");
    assert_eq!(req.headers["x-api-key"], "sk-test-key");
    assert_eq!(req.headers["anthropic-version"], "2023-06-01");
    assert_eq!(req.body["system"], "be brief");
    assert_eq!(req.body["stream"], true);
    assert_eq!(req.body["max_tokens"], 256);
    assert_eq!(
        req.body["messages"][0],
        json!({"role": "user", "content": "hello"})
    );
    assert_eq!(req.body["tools"][0]["input_schema"]["type"], "object");
}

#[tokio::test]
async fn openai_streams_text_with_usage_and_bearer_auth() {
    let fake = FakeLlm::start().await;
    fake.push(Script::text(["Hi", " there"]));
    let p = openai(&fake, "openai");
    let (r, events) = run(p.as_ref()).await;
    let c = r.unwrap();
    assert_eq!(c.text, "Hi there");
    assert_eq!(events.len(), 2);
    assert_eq!((c.usage.input_tokens, c.usage.output_tokens), (25, 2));
    let req = &fake.requests()[0];
    assert_eq!(req.path, "/v1/chat/completions");
    assert_eq!(req.headers["authorization"], "Bearer sk-test-key");
    assert_eq!(
        req.body["messages"][0],
        json!({"role": "system", "content": "be brief"})
    );
    assert_eq!(req.body["stream_options"]["include_usage"], true);
    assert_eq!(req.body["tools"][0]["function"]["name"], "memory_search");
}

#[tokio::test]
async fn tool_calls_are_assembled_from_fragments_in_both_formats() {
    let fake = FakeLlm::start().await;
    let args = json!({"query": "birthday", "limit": 3});
    fake.push(Script::tool_call("memory_search", args.clone()));
    fake.push(Script::tool_call("memory_search", args.clone()));
    for p in [anthropic(&fake, "anthropic"), openai(&fake, "openai")] {
        let c = run(p.as_ref()).await.0.unwrap();
        assert_eq!(c.tool_calls.len(), 1, "{}", p.name());
        assert_eq!(c.tool_calls[0].name, "memory_search");
        assert_eq!(c.tool_calls[0].arguments, args);
        assert!(!c.tool_calls[0].id.is_empty());
        assert_eq!(c.stop, openclaw_agent::types::StopReason::ToolUse);
    }
}

#[tokio::test]
async fn tool_results_go_back_in_each_providers_shape() {
    let fake = FakeLlm::start().await;
    fake.push(Script::text(["ok"]));
    fake.push(Script::text(["ok"]));
    let call = openclaw_agent::ToolCall {
        id: "call_1".into(),
        name: "memory_search".into(),
        arguments: json!({"query": "x"}),
    };
    let req = ChatRequest {
        system: String::new(),
        turns: vec![
            Turn::User("q".into()),
            Turn::Assistant {
                text: String::new(),
                tool_calls: vec![call],
            },
            Turn::ToolResult {
                call_id: "call_1".into(),
                name: "memory_search".into(),
                content: "found".into(),
                images: Vec::new(),
                is_error: false,
            },
        ],
        tools: vec![],
        max_tokens: None,
    };
    anthropic(&fake, "a")
        .complete(&req, &mut |_| {})
        .await
        .unwrap();
    openai(&fake, "o")
        .complete(&req, &mut |_| {})
        .await
        .unwrap();
    let reqs = fake.requests();
    let a = &reqs[0].body["messages"];
    assert_eq!(a[1]["content"][0]["type"], "tool_use");
    assert_eq!(a[2]["role"], "user");
    assert_eq!(
        a[2]["content"][0],
        json!({"type": "tool_result", "tool_use_id": "call_1", "content": "found", "is_error": false})
    );
    let o = &reqs[1].body["messages"];
    assert_eq!(
        o[1]["tool_calls"][0]["function"]["arguments"],
        "{\"query\":\"x\"}"
    );
    assert_eq!(
        o[2],
        json!({"role": "tool", "tool_call_id": "call_1", "content": "found"})
    );
}

#[tokio::test]
async fn errors_are_classified() {
    let fake = FakeLlm::start().await;
    type Check = fn(&ErrorKind) -> bool;
    let cases: Vec<(Script, Check)> = vec![
        (
            Script::rate_limited(7),
            |k| matches!(k, ErrorKind::RateLimited { retry_after: Some(d) } if d.as_secs() == 7),
        ),
        (Script::overloaded(), |k| *k == ErrorKind::Overloaded),
        (Script::unavailable(), |k| *k == ErrorKind::Overloaded),
        (Script::unauthorized(), |k| *k == ErrorKind::Auth),
        (
            Script::Disconnect {
                chunks: vec!["par".into()],
            },
            |k| *k == ErrorKind::Connection,
        ),
        (Script::Malformed, |k| *k == ErrorKind::Malformed),
    ];
    for make in [anthropic as fn(&FakeLlm, &str) -> Arc<dyn Provider>, openai] {
        for (script, check) in &cases {
            fake.push(script.clone());
            let p = make(&fake, "p");
            let err = run(p.as_ref()).await.0.unwrap_err();
            assert!(
                check(&err.kind),
                "{script:?} on {}: {err:?}",
                p.kind().as_str()
            );
        }
    }
    // Anthropic's `error` event inside a 200 stream.
    fake.push(Script::StreamError {
        error_type: "overloaded_error".into(),
        message: "Overloaded".into(),
    });
    let err = run(anthropic(&fake, "a").as_ref()).await.0.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Overloaded);
    // A server that never answers.
    fake.push(Script::Hang);
    let mut s = settings(fake.openai_url());
    s.timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = run(&OpenAi::new("slow", s)).await.0.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Timeout, "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // Nothing listening.
    let gone = settings("http://127.0.0.1:9".into());
    let err = run(&OpenAi::new("gone", gone)).await.0.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Connection, "{err:?}");
}

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Telemetry for Recorder {
    fn provider_attempt(&self, p: &str, outcome: &str) {
        self.0
            .lock()
            .unwrap()
            .push(format!("attempt {p} {outcome}"));
    }
    fn failover(&self, from: &str, to: &str) {
        self.0
            .lock()
            .unwrap()
            .push(format!("failover {from}->{to}"));
    }
    fn breaker(&self, p: &str, open: bool) {
        self.0.lock().unwrap().push(format!(
            "breaker {p} {}",
            if open { "open" } else { "closed" }
        ));
    }
    fn tokens(&self, p: &str, i: u64, o: u64) {
        self.0.lock().unwrap().push(format!("tokens {p} {i} {o}"));
    }
}

impl Recorder {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn chain(
    providers: Vec<(Arc<dyn Provider>, bool)>,
    policy: ChainPolicy,
) -> (ProviderChain, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    (ProviderChain::new(providers, policy, rec.clone()), rec)
}

#[tokio::test]
async fn failover_follows_config_order() {
    let first = FakeLlm::start().await;
    let second = FakeLlm::start().await;
    let third = FakeLlm::start().await;
    first.push(Script::overloaded());
    second.push(Script::unavailable());
    third.push(Script::text(["from third"]));
    let (chain, rec) = chain(
        vec![
            (anthropic(&first, "anthropic"), true),
            (openai(&second, "openai"), true),
            (openai(&third, "ollama"), true),
        ],
        ChainPolicy::default(),
    );
    let c = chain
        .complete(&request(), false, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(
        (c.text.as_str(), c.provider.as_str()),
        ("from third", "ollama")
    );
    assert_eq!(
        rec.take(),
        [
            "attempt anthropic overloaded",
            "failover anthropic->openai",
            "attempt openai overloaded",
            "failover openai->ollama",
            "attempt ollama ok",
            "tokens ollama 25 1",
        ]
    );
}

#[tokio::test]
async fn no_retry_and_no_failover_on_401() {
    let first = FakeLlm::start().await;
    let second = FakeLlm::start().await;
    first.push(Script::unauthorized());
    second.push(Script::text(["never"]));
    let (chain, _) = chain(
        vec![
            (anthropic(&first, "anthropic"), true),
            (openai(&second, "openai"), true),
        ],
        ChainPolicy::default(),
    );
    let err = chain
        .complete(&request(), false, &mut |_| {})
        .await
        .unwrap_err();
    let e = err.provider_error().unwrap();
    assert_eq!(e.kind, ErrorKind::Auth);
    assert!(
        err.to_string().contains("providers.anthropic.api_key"),
        "{err}"
    );
    assert_eq!(first.request_count(), 1);
    assert_eq!(second.request_count(), 0);
}

#[tokio::test]
async fn failover_only_from_providers_that_enable_it() {
    let first = FakeLlm::start().await;
    let second = FakeLlm::start().await;
    first.push(Script::overloaded());
    let (chain, _) = chain(
        vec![
            (anthropic(&first, "anthropic"), false),
            (openai(&second, "openai"), true),
        ],
        ChainPolicy::default(),
    );
    let err = chain
        .complete(&request(), false, &mut |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.provider_error().unwrap().kind, ErrorKind::Overloaded);
    assert_eq!(second.request_count(), 0);
}

#[tokio::test]
async fn breaker_opens_after_repeated_failures_and_closes_after_cooldown() {
    let flaky = FakeLlm::start().await;
    let backup = FakeLlm::start().await;
    backup.set_fallback(Script::text(["backup"]));
    let policy = ChainPolicy {
        breaker_threshold: 2,
        cooldown: Duration::from_millis(400),
        max_retry_wait: Duration::from_secs(1),
    };
    let (chain, rec) = chain(
        vec![
            (anthropic(&flaky, "flaky"), true),
            (openai(&backup, "backup"), true),
        ],
        policy,
    );
    flaky.push(Script::overloaded());
    flaky.push(Script::overloaded());
    for _ in 0..2 {
        assert_eq!(
            chain
                .complete(&request(), false, &mut |_| {})
                .await
                .unwrap()
                .provider,
            "backup"
        );
    }
    assert!(rec.take().contains(&"breaker flaky open".to_string()));
    // Open: the flaky provider is skipped, not called.
    assert_eq!(
        chain
            .complete(&request(), false, &mut |_| {})
            .await
            .unwrap()
            .provider,
        "backup"
    );
    assert_eq!(flaky.request_count(), 2);
    assert!(chain.states()[0].cooling_down_for.is_some());
    // After the cooldown one trial call goes through; it succeeds and the breaker closes.
    tokio::time::sleep(Duration::from_millis(450)).await;
    flaky.push(Script::text(["recovered"]));
    let c = chain
        .complete(&request(), false, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(c.provider, "flaky");
    assert!(rec.take().contains(&"breaker flaky closed".to_string()));
    assert_eq!(chain.states()[0].consecutive_failures, 0);
}

#[tokio::test]
async fn retry_after_is_honoured_when_no_other_provider_is_left() {
    let only = FakeLlm::start().await;
    only.push(Script::rate_limited(1));
    only.push(Script::text(["after waiting"]));
    let (chain, _) = chain(
        vec![(openai(&only, "openai"), true)],
        ChainPolicy::default(),
    );
    let started = Instant::now();
    let c = chain
        .complete(&request(), false, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(c.text, "after waiting");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(only.request_count(), 2);

    // A retry-after longer than we are willing to wait is surfaced, not slept through.
    only.push(Script::rate_limited(120));
    let started = Instant::now();
    let err = chain
        .complete(&request(), false, &mut |_| {})
        .await
        .unwrap_err();
    assert!(matches!(
        err.provider_error().unwrap().kind,
        ErrorKind::RateLimited { .. }
    ));
    assert!(started.elapsed() < Duration::from_secs(2));
    // And the provider is not called again before its retry-after.
    let err = chain
        .complete(&request(), false, &mut |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, ChainError::AllCoolingDown(_)), "{err}");
    assert_eq!(only.request_count(), 3);
}

#[tokio::test]
async fn mid_stream_disconnect_resets_and_fails_over_when_allowed() {
    let first = FakeLlm::start().await;
    let second = FakeLlm::start().await;
    first.push(Script::Disconnect {
        chunks: vec!["half an ans".into()],
    });
    second.push(Script::text(["whole answer"]));
    let (chain, _) = chain(
        vec![
            (anthropic(&first, "anthropic"), true),
            (openai(&second, "openai"), true),
        ],
        ChainPolicy::default(),
    );
    let mut events = Vec::new();
    let c = chain
        .complete(&request(), true, &mut |e| events.push(e))
        .await
        .unwrap();
    assert_eq!(c.text, "whole answer");
    assert_eq!(
        events,
        [
            StreamEvent::TextDelta("half an ans".into()),
            StreamEvent::Reset,
            StreamEvent::TextDelta("whole answer".into()),
        ]
    );
    // A consumer that cannot take text back gets the error instead.
    first.push(Script::Disconnect {
        chunks: vec!["half".into()],
    });
    let err = chain
        .complete(&request(), false, &mut |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.provider_error().unwrap().kind, ErrorKind::Connection);
}

#[tokio::test]
async fn no_providers_says_what_to_configure() {
    let (chain, _) = chain(vec![], ChainPolicy::default());
    let err = chain
        .complete(&request(), false, &mut |_| {})
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("providers.anthropic.api_key"),
        "{err}"
    );
}
