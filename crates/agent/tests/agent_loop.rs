//! The agent loop end to end against the fake LLM: tools, sessions, compaction, rate limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openclaw_agent::{Agent, AgentEvent, Inbound, NoTelemetry, ReplyKind, Turn};
use openclaw_config::{Config, ProviderConfig, Secret};
use openclaw_store::Store;
use openclaw_testkit::{FakeLlm, Script};
use serde_json::json;
use std::sync::Arc;

fn config(fake: &FakeLlm) -> Config {
    let mut c = Config::default();
    c.providers.insert(
        "anthropic".into(),
        ProviderConfig {
            api_key: Some(Secret::new("sk-test")),
            base_url: Some(fake.anthropic_url()),
            timeout_seconds: Some(5),
            ..Default::default()
        },
    );
    c.agent.name = "Claw".into();
    c.agent.timezone = "America/New_York".into();
    c
}

fn msg(text: &str) -> Inbound {
    Inbound::text("webchat", "alice", text)
}

fn agent(c: Config, store: Arc<Store>) -> Agent {
    Agent::new(Arc::new(c), store, Arc::new(NoTelemetry))
}

#[tokio::test]
async fn tool_loop_runs_a_real_tool_and_feeds_the_result_back() {
    let fake = FakeLlm::start().await;
    let store = Arc::new(Store::open_in_memory().unwrap());
    let a = agent(config(&fake), store.clone());
    fake.push(Script::ToolCall {
        text: Some("Noting that.".into()),
        name: "memory_save".into(),
        arguments: json!({"content": "Alice's favourite colour is teal", "tags": "prefs"}),
    });
    fake.push(Script::text(["Saved: teal."]));
    let mut events = Vec::new();
    let reply = a
        .handle(msg("remember my favourite colour is teal"), &mut |e| {
            events.push(e)
        })
        .await
        .unwrap();
    assert_eq!(reply.kind, ReplyKind::Answer);
    assert_eq!(reply.rounds, 2);
    assert_eq!(reply.text, "Noting that.\n\nSaved: teal.");
    assert!(events.contains(&AgentEvent::Tool {
        name: "memory_save".into(),
        ok: true,
        images: Vec::new(),
    }));
    let streamed: String = events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::Delta(d) => Some(d.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(streamed, reply.text);

    // The tool really ran: the memory is in the store and searchable.
    let hits = store.search_memories("teal", 5).unwrap();
    assert_eq!(hits.len(), 1);
    // The second request carried the tool result back to the model, and the system prompt.
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    let second = &reqs[1].body;
    let last = second["messages"].as_array().unwrap().last().unwrap();
    assert_eq!(last["content"][0]["type"], "tool_result");
    assert!(
        last["content"][0]["content"]
            .as_str()
            .unwrap()
            .starts_with("saved as memory #")
    );
    let system = second["system"].as_str().unwrap();
    assert!(
        system.contains("You are Claw") && system.contains("America/New_York"),
        "{system}"
    );
    assert!(
        second["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "memory_search")
    );
}

#[tokio::test]
async fn tool_rounds_are_capped() {
    let fake = FakeLlm::start().await;
    let mut c = config(&fake);
    c.agent.max_tool_rounds = 2;
    let a = agent(c, Arc::new(Store::open_in_memory().unwrap()));
    fake.push(Script::tool_call("memory_search", json!({"query": "x"})));
    fake.push(Script::text(["final words"]));
    let reply = a.handle(msg("loop"), &mut |_| {}).await.unwrap();
    assert_eq!(reply.rounds, 2);
    assert_eq!(reply.text, "final words");
    // The last round offered no tools, so the model had to answer.
    assert!(fake.requests()[1].body.get("tools").is_none());
}

#[tokio::test]
async fn the_session_survives_a_restart() {
    let fake = FakeLlm::start().await;
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Arc::new(Store::open_in_dir(dir.path()).unwrap());
        let a = agent(config(&fake), store);
        fake.push(Script::text(["Nice to meet you, Alice."]));
        a.handle(msg("I'm Alice"), &mut |_| {}).await.unwrap();
    }
    // A new process: new store handle, new agent, same file.
    let store = Arc::new(Store::open_in_dir(dir.path()).unwrap());
    let a = agent(config(&fake), store);
    fake.push(Script::text(["You're Alice."]));
    a.handle(msg("who am I?"), &mut |_| {}).await.unwrap();
    let messages = &fake.requests()[1].body["messages"];
    assert_eq!(
        messages,
        &json!([
            {"role": "user", "content": "I'm Alice"},
            {"role": "assistant", "content": [{"type": "text", "text": "Nice to meet you, Alice."}]},
            {"role": "user", "content": "who am I?"}
        ])
    );
    // Another peer has its own session.
    fake.push(Script::text(["hi bob"]));
    let mut bob = msg("hello");
    bob.peer = "bob".into();
    a.handle(bob, &mut |_| {}).await.unwrap();
    assert_eq!(
        fake.requests()[2].body["messages"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn long_conversations_are_compacted_not_dropped() {
    let fake = FakeLlm::start().await;
    let store = Arc::new(Store::open_in_memory().unwrap());
    let mut c = config(&fake);
    c.memory.max_context_tokens = 1024;
    let a = agent(c, store.clone());
    // ~300 tokens per exchange: the fourth message no longer fits.
    let long = |i: usize| format!("message {i}: {}", "lorem ipsum dolor sit amet ".repeat(22));
    for i in 0..3 {
        fake.push(Script::text([format!("reply {i}")]));
        a.handle(msg(&long(i)), &mut |_| {}).await.unwrap();
    }
    assert_eq!(fake.request_count(), 3);
    fake.push(Script::text([
        "SUMMARY: Alice sent three long lorem messages.",
    ]));
    fake.push(Script::text(["reply 3"]));
    let reply = a.handle(msg(&long(3)), &mut |_| {}).await.unwrap();
    assert_eq!(reply.text, "reply 3");

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 5);
    let summarise = &reqs[3].body;
    assert!(
        summarise["system"].as_str().unwrap().contains("Summarise"),
        "{summarise}"
    );
    assert!(
        summarise["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("message 0")
    );
    assert!(summarise.get("tools").is_none());
    let answer = &reqs[4].body;
    assert!(
        answer["system"]
            .as_str()
            .unwrap()
            .contains("SUMMARY: Alice sent three")
    );
    let sent = answer["messages"].to_string();
    assert!(
        !sent.contains("message 0:"),
        "compacted turns must leave the context"
    );
    assert!(sent.contains("message 3:"));

    // Stored: the summary, and every message still on disk.
    let session = store.upsert_session("webchat", "alice", 0).unwrap();
    assert!(
        store
            .session_summary(session)
            .unwrap()
            .unwrap()
            .contains("SUMMARY")
    );
    assert_eq!(store.session_messages(session).unwrap().len(), 8);
    assert!(store.session_context(session).unwrap().len() < 8);
}

#[tokio::test]
async fn rate_limits_reply_clearly() {
    let fake = FakeLlm::start().await;
    fake.set_fallback(Script::text(["ok"]));
    let mut c = config(&fake);
    c.security.rate_limiting.default_messages_per_minute = 2;
    let a = agent(c, Arc::new(Store::open_in_memory().unwrap()));
    for _ in 0..2 {
        assert_eq!(
            a.handle(msg("hi"), &mut |_| {}).await.unwrap().kind,
            ReplyKind::Answer
        );
    }
    let reply = a.handle(msg("hi"), &mut |_| {}).await.unwrap();
    assert_eq!(reply.kind, ReplyKind::RateLimited);
    assert!(reply.text.contains("limit: 2 per minute"), "{}", reply.text);
    assert_eq!(
        fake.request_count(),
        2,
        "a limited message never reaches the model"
    );
    // Limits are per sender.
    let mut other = msg("hi");
    other.peer = "bob".into();
    assert_eq!(
        a.handle(other, &mut |_| {}).await.unwrap().kind,
        ReplyKind::Answer
    );
}

#[tokio::test]
async fn tool_call_limit_stops_the_loop_with_a_reply() {
    let fake = FakeLlm::start().await;
    let mut c = config(&fake);
    c.security.rate_limiting.default_tool_calls_per_minute = 1;
    let a = agent(c, Arc::new(Store::open_in_memory().unwrap()));
    fake.push(Script::tool_call("memory_search", json!({"query": "a"})));
    fake.push(Script::tool_call("memory_search", json!({"query": "b"})));
    let reply = a.handle(msg("search twice"), &mut |_| {}).await.unwrap();
    assert_eq!(reply.kind, ReplyKind::RateLimited);
    assert!(
        reply.text.contains("tool-call limit (1 per minute)"),
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn without_a_provider_every_reply_says_what_to_configure() {
    let a = agent(
        Config::default(),
        Arc::new(Store::open_in_memory().unwrap()),
    );
    let reply = a.handle(msg("hello?"), &mut |_| {}).await.unwrap();
    assert_eq!(reply.kind, ReplyKind::NotConfigured);
    assert!(
        reply.text.contains("providers.anthropic.api_key"),
        "{}",
        reply.text
    );
    let reply = a
        .respond(
            "x",
            None,
            vec![Turn::User("hi".into())],
            None,
            false,
            &mut |_| {},
        )
        .await
        .unwrap();
    assert_eq!(reply.kind, ReplyKind::NotConfigured);
}

#[tokio::test]
async fn stateless_respond_uses_the_given_history_and_stores_nothing() {
    let fake = FakeLlm::start().await;
    let store = Arc::new(Store::open_in_memory().unwrap());
    let a = agent(config(&fake), store.clone());
    fake.push(Script::text(["4"]));
    let reply = a
        .respond(
            "client",
            None,
            vec![Turn::User("2+2?".into())],
            Some("Answer with a number."),
            false,
            &mut |_| {},
        )
        .await
        .unwrap();
    assert_eq!(reply.text, "4");
    let body = &fake.requests()[0].body;
    assert!(
        body["system"]
            .as_str()
            .unwrap()
            .ends_with("Answer with a number.\n")
    );
    assert_eq!(store.totals().unwrap().sessions, 0);
}

#[tokio::test]
async fn old_memories_are_pruned() {
    let store = Arc::new(Store::open_in_memory().unwrap());
    let now = jiff::Timestamp::now().as_second();
    store
        .save_memory("ancient", "", now - 100 * 86_400)
        .unwrap();
    store.save_memory("recent", "", now - 86_400).unwrap();
    let mut c = Config::default();
    c.memory.prune_after_days = 90;
    let a = agent(c, store.clone());
    assert_eq!(a.prune_memories().await.unwrap(), 1);
    assert!(store.search_memories("ancient", 5).unwrap().is_empty());
    assert_eq!(store.search_memories("recent", 5).unwrap().len(), 1);
}

/// A tool that returns a picture, like a node's screenshot.
struct Camera;

impl openclaw_agent::Tool for Camera {
    fn spec(&self) -> openclaw_agent::ToolSpec {
        openclaw_agent::ToolSpec {
            name: "look".into(),
            description: "Takes a picture.".into(),
            parameters: json!({"type": "object"}),
        }
    }

    fn call<'a>(
        &'a self,
        _args: serde_json::Value,
        ctx: &'a openclaw_agent::ToolContext,
    ) -> futures_util::future::BoxFuture<
        'a,
        Result<openclaw_agent::ToolOutput, openclaw_agent::ToolError>,
    > {
        assert_eq!(ctx.session, "webchat:alice");
        assert_eq!(ctx.trust, openclaw_agent::Trust::Owner);
        Box::pin(async {
            Ok(openclaw_agent::ToolOutput {
                text: "a 1x1 png".into(),
                images: vec![openclaw_agent::Image {
                    media_type: "image/png".into(),
                    data: "iVBORw0KGgo=".into(),
                }],
            })
        })
    }
}

fn openai_config(fake: &FakeLlm) -> Config {
    let mut c = Config::default();
    c.providers.insert(
        "openai".into(),
        ProviderConfig {
            api_key: Some(Secret::new("sk-test")),
            base_url: Some(fake.openai_url()),
            timeout_seconds: Some(5),
            ..Default::default()
        },
    );
    c
}

#[tokio::test]
async fn a_tools_picture_reaches_the_model_as_an_image_and_the_user_as_an_event() {
    for openai in [false, true] {
        let fake = FakeLlm::start().await;
        let store = Arc::new(Store::open_in_memory().unwrap());
        let c = if openai {
            openai_config(&fake)
        } else {
            config(&fake)
        };
        let a = agent(c, store);
        a.register_tool(Arc::new(Camera));
        fake.push(Script::tool_call("look", json!({})));
        fake.push(Script::text(["I see it."]));
        let mut events = Vec::new();
        let reply = a
            .handle(msg("what is on the screen?"), &mut |e| events.push(e))
            .await
            .unwrap();
        assert_eq!(reply.text, "I see it.");
        let shown = events.iter().find_map(|e| match e {
            AgentEvent::Tool { images, .. } => Some(images.clone()),
            _ => None,
        });
        assert_eq!(shown.unwrap()[0].data, "iVBORw0KGgo=");
        let second = &fake.requests()[1].body;
        let messages = second["messages"].as_array().unwrap();
        if openai {
            // Chat Completions: the picture follows the tool message, in a user message.
            let last = messages.last().unwrap();
            assert_eq!(last["role"], "user", "{second}");
            assert_eq!(
                last["content"][1]["image_url"]["url"], "data:image/png;base64,iVBORw0KGgo=",
                "{second}"
            );
            assert_eq!(messages[messages.len() - 2]["role"], "tool", "{second}");
        } else {
            // Messages API: the picture is a block of the tool result.
            let result = &messages.last().unwrap()["content"][0];
            assert_eq!(result["type"], "tool_result", "{second}");
            assert_eq!(result["content"][1]["type"], "image", "{second}");
            assert_eq!(
                result["content"][1]["source"]["data"], "iVBORw0KGgo=",
                "{second}"
            );
        }
    }
}

#[tokio::test]
async fn attached_pictures_go_to_the_model_and_other_files_are_named() {
    let fake = FakeLlm::start().await;
    let store = Arc::new(Store::open_in_memory().unwrap());
    let a = agent(config(&fake), store.clone());
    fake.push(Script::text(["A cat."]));
    let mut m = msg("what is this?");
    m.attachments = vec![
        openclaw_agent::Attachment {
            media_type: "image/jpeg".into(),
            name: Some("cat.jpg".into()),
            data: vec![0xff, 0xd8, 0xff],
        },
        openclaw_agent::Attachment {
            media_type: "application/pdf".into(),
            name: Some("lease.pdf".into()),
            data: vec![1, 2, 3, 4],
        },
    ];
    a.handle(m, &mut |_| {}).await.unwrap();
    let body = &fake.requests()[0].body;
    let user = body["messages"].as_array().unwrap().last().unwrap();
    assert_eq!(user["content"][0]["type"], "image", "{body}");
    assert_eq!(user["content"][0]["source"]["data"], "/9j/", "{body}");
    let text = user["content"][1]["text"].as_str().unwrap();
    assert!(
        text.contains("lease.pdf") && text.contains("cannot read it"),
        "{text}"
    );
    // The history keeps the words and that a picture was there.
    let session = store.upsert_session("webchat", "alice", 0).unwrap();
    let kept = store.session_messages(session).unwrap();
    assert!(
        kept[0].content.contains("[1 image(s) attached]"),
        "{:?}",
        kept[0]
    );
}
