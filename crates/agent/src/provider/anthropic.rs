//! Anthropic Messages API (`POST /v1/messages`, `stream: true`).
//!
//! Stream events: `message_start` (input usage), `content_block_start` (`text` or `tool_use`),
//! `content_block_delta` (`text_delta` / `input_json_delta`), `content_block_stop`,
//! `message_delta` (stop reason, output usage), `message_stop`, `ping`, and `error`.

use super::{EventSink, HttpSettings, Provider, http_client, malformed, next_event, send_sse};
use crate::error::{ErrorKind, ProviderError};
use crate::types::{ChatRequest, Completion, StopReason, StreamEvent, ToolCall, Turn, Usage};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use openclaw_config::ProviderKind;
use serde_json::{Value, json};

pub const API_VERSION: &str = "2023-06-01";

#[derive(Debug)]
pub struct Anthropic {
    name: String,
    settings: HttpSettings,
}

/// A picture as a Messages API content block.
fn image_block(image: &crate::types::Image) -> Value {
    json!({"type": "image", "source": {"type": "base64", "media_type": image.media_type, "data": image.data}})
}

impl Anthropic {
    pub fn new(name: &str, settings: HttpSettings) -> Self {
        Self {
            name: name.to_owned(),
            settings,
        }
    }

    fn body(&self, req: &ChatRequest) -> Value {
        let mut messages: Vec<Value> = Vec::new();
        for turn in &req.turns {
            match turn {
                Turn::User(text) => messages.push(json!({"role": "user", "content": text})),
                Turn::UserWithImages { text, images } => {
                    let mut content: Vec<Value> = images.iter().map(image_block).collect();
                    if !text.is_empty() {
                        content.push(json!({"type": "text", "text": text}));
                    }
                    messages.push(json!({"role": "user", "content": content}));
                }
                Turn::Assistant { text, tool_calls } => {
                    let mut content = Vec::new();
                    if !text.is_empty() {
                        content.push(json!({"type": "text", "text": text}));
                    }
                    for c in tool_calls {
                        content.push(json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}));
                    }
                    messages.push(json!({"role": "assistant", "content": content}));
                }
                Turn::ToolResult {
                    call_id,
                    content,
                    images,
                    is_error,
                    ..
                } => {
                    // A tool result holds text and image blocks alike (a node's screenshot).
                    let content = if images.is_empty() {
                        json!(content)
                    } else {
                        let mut blocks = vec![json!({"type": "text", "text": content})];
                        blocks.extend(images.iter().map(image_block));
                        Value::Array(blocks)
                    };
                    let block = json!({"type": "tool_result", "tool_use_id": call_id, "content": content, "is_error": is_error});
                    // Results of one round travel together in a single user message.
                    match messages.last_mut() {
                        Some(last)
                            if last["role"] == "user"
                                && last["content"].as_array().is_some_and(|a| {
                                    a.iter().all(|b| b["type"] == "tool_result")
                                }) =>
                        {
                            if let Some(a) = last["content"].as_array_mut() {
                                a.push(block);
                            }
                        }
                        _ => messages.push(json!({"role": "user", "content": [block]})),
                    }
                }
            }
        }
        let mut body = json!({
            "model": self.settings.model,
            "max_tokens": req.max_tokens.unwrap_or(self.settings.max_tokens),
            "messages": messages,
            "stream": true,
        });
        if !req.system.is_empty() {
            body["system"] = json!(req.system);
        }
        if !req.tools.is_empty() {
            body["tools"] = req
                .tools
                .iter()
                .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
                .collect();
        }
        body
    }

    async fn run(
        &self,
        req: &ChatRequest,
        on_event: EventSink<'_>,
    ) -> Result<Completion, ProviderError> {
        let name = self.name.as_str();
        let Some(key) = &self.settings.api_key else {
            return Err(ProviderError::new(
                name,
                ErrorKind::Config,
                None,
                format!("no API key: set providers.{name}.api_key"),
            ));
        };
        let client =
            http_client().map_err(|e| ProviderError::new(name, ErrorKind::Config, None, e))?;
        let request = client
            .post(format!("{}/v1/messages", self.settings.base_url))
            .timeout(self.settings.timeout)
            .header("x-api-key", key.expose())
            .header("anthropic-version", API_VERSION)
            .header("content-type", "application/json")
            .header("accept", "text/event-stream")
            .body(self.body(req).to_string());
        let mut stream = send_sse(name, request).await?;

        let mut text = String::new();
        let mut usage = Usage::default();
        let mut stop = StopReason::Other;
        // Open content blocks by index: (tool call id, name, partial JSON) for tool_use.
        let mut tool_blocks: Vec<(usize, String, String, String)> = Vec::new();
        let mut tool_calls = Vec::new();
        let mut finished = false;

        while let Some(event) = next_event(name, &mut stream, self.settings.idle_timeout).await? {
            let kind = event.event.as_str();
            if kind == "ping" {
                continue;
            }
            let data: Value = serde_json::from_str(&event.data)
                .map_err(|e| malformed(name, format!("`{kind}` event is not JSON ({e})")))?;
            match kind {
                "message_start" => {
                    let u = &data["message"]["usage"];
                    usage.input_tokens = u["input_tokens"].as_u64().unwrap_or(0);
                    usage.output_tokens = u["output_tokens"].as_u64().unwrap_or(0);
                }
                "content_block_start" => {
                    let block = &data["content_block"];
                    let index = data["index"].as_u64().unwrap_or(0) as usize;
                    if block["type"] == "tool_use" {
                        let id = block["id"]
                            .as_str()
                            .ok_or_else(|| malformed(name, "tool_use without id"))?;
                        let tool = block["name"]
                            .as_str()
                            .ok_or_else(|| malformed(name, "tool_use without name"))?;
                        tool_blocks.push((index, id.to_owned(), tool.to_owned(), String::new()));
                    } else if let Some(t) = block["text"].as_str().filter(|t| !t.is_empty()) {
                        text.push_str(t);
                        on_event(StreamEvent::TextDelta(t.to_owned()));
                    }
                }
                "content_block_delta" => {
                    let delta = &data["delta"];
                    let index = data["index"].as_u64().unwrap_or(0) as usize;
                    match delta["type"].as_str() {
                        Some("text_delta") => {
                            let t = delta["text"]
                                .as_str()
                                .ok_or_else(|| malformed(name, "text_delta without text"))?;
                            text.push_str(t);
                            on_event(StreamEvent::TextDelta(t.to_owned()));
                        }
                        Some("input_json_delta") => {
                            let part = delta["partial_json"].as_str().unwrap_or("");
                            if let Some(b) = tool_blocks.iter_mut().find(|b| b.0 == index) {
                                b.3.push_str(part);
                            }
                        }
                        _ => {}
                    }
                }
                "content_block_stop" => {
                    let index = data["index"].as_u64().unwrap_or(0) as usize;
                    if let Some(pos) = tool_blocks.iter().position(|b| b.0 == index) {
                        let (_, id, tool, json_text) = tool_blocks.remove(pos);
                        let arguments = if json_text.trim().is_empty() {
                            json!({})
                        } else {
                            serde_json::from_str(&json_text).map_err(|e| {
                                malformed(
                                    name,
                                    format!("arguments of tool `{tool}` are not JSON ({e})"),
                                )
                            })?
                        };
                        tool_calls.push(ToolCall {
                            id,
                            name: tool,
                            arguments,
                        });
                    }
                }
                "message_delta" => {
                    stop = match data["delta"]["stop_reason"].as_str() {
                        Some("end_turn") | Some("stop_sequence") => StopReason::EndTurn,
                        Some("tool_use") => StopReason::ToolUse,
                        Some("max_tokens") => StopReason::MaxTokens,
                        _ => stop,
                    };
                    if let Some(o) = data["usage"]["output_tokens"].as_u64() {
                        usage.output_tokens = o;
                    }
                }
                "message_stop" => {
                    finished = true;
                    break;
                }
                "error" => {
                    let err_type = data["error"]["type"].as_str().unwrap_or("error");
                    let message = data["error"]["message"].as_str().unwrap_or("");
                    let kind = match err_type {
                        "overloaded_error" => ErrorKind::Overloaded,
                        "rate_limit_error" => ErrorKind::RateLimited { retry_after: None },
                        "invalid_request_error" => ErrorKind::BadRequest,
                        "authentication_error" | "permission_error" => ErrorKind::Auth,
                        _ => ErrorKind::Server,
                    };
                    return Err(ProviderError::new(
                        name,
                        kind,
                        None,
                        format!("error event mid-stream: {err_type}: {message}"),
                    ));
                }
                _ => {}
            }
        }
        if !finished {
            return Err(ProviderError::new(
                name,
                ErrorKind::Connection,
                None,
                "the stream ended before message_stop",
            ));
        }
        if !tool_calls.is_empty() {
            stop = StopReason::ToolUse;
        }
        Ok(Completion {
            text,
            tool_calls,
            usage,
            stop,
            provider: self.name.clone(),
        })
    }
}

impl Provider for Anthropic {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> ProviderKind {
        ProviderKind::Anthropic
    }
    fn model(&self) -> &str {
        &self.settings.model
    }
    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
        on_event: EventSink<'a>,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        self.run(request, on_event).boxed()
    }

    fn check_access(&self) -> BoxFuture<'_, Result<(), ProviderError>> {
        async move {
            let Some(key) = &self.settings.api_key else {
                return Err(ProviderError::new(
                    &self.name,
                    ErrorKind::Config,
                    None,
                    format!("no API key: set providers.{}.api_key", self.name),
                ));
            };
            super::get_ok(
                &self.name,
                format!("{}/v1/models", self.settings.base_url),
                vec![
                    ("x-api-key", key.expose().to_owned()),
                    ("anthropic-version", API_VERSION.to_owned()),
                ],
            )
            .await
        }
        .boxed()
    }
}
