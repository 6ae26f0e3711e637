//! OpenAI Chat Completions (`POST {base_url}/chat/completions`, `stream: true`), the format
//! Ollama, llama.cpp server, vLLM and OpenRouter also speak.
//!
//! Stream: `data: {chunk}` lines with `choices[0].delta.content` and `delta.tool_calls[]`
//! (fragments keyed by `index`), `finish_reason`, a last chunk carrying `usage` (asked for with
//! `stream_options.include_usage`), then `data: [DONE]`.

use super::{EventSink, HttpSettings, Provider, http_client, malformed, next_event, send_sse};
use crate::error::{ErrorKind, ProviderError, error_detail};
use crate::types::{ChatRequest, Completion, StopReason, StreamEvent, ToolCall, Turn, Usage};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use openclaw_config::ProviderKind;
use serde_json::{Value, json};

#[derive(Debug)]
pub struct OpenAi {
    name: String,
    settings: HttpSettings,
}

/// A tool call being assembled from stream fragments.
#[derive(Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// The pictures tool results returned, as the user message that shows them to the model.
fn tool_images_message(images: Vec<Value>) -> Value {
    let mut parts =
        vec![json!({"type": "text", "text": "The images the tool calls above returned:"})];
    parts.extend(images);
    json!({"role": "user", "content": parts})
}

impl OpenAi {
    pub fn new(name: &str, settings: HttpSettings) -> Self {
        Self {
            name: name.to_owned(),
            settings,
        }
    }

    fn body(&self, req: &ChatRequest) -> Value {
        let mut messages = Vec::new();
        if !req.system.is_empty() {
            messages.push(json!({"role": "system", "content": req.system}));
        }
        // Chat Completions takes pictures in user messages only: the images of a round's tool
        // results follow its tool messages as one user message.
        let mut tool_images: Vec<Value> = Vec::new();
        for turn in &req.turns {
            if !matches!(turn, Turn::ToolResult { .. }) && !tool_images.is_empty() {
                messages.push(tool_images_message(std::mem::take(&mut tool_images)));
            }
            if let Turn::ToolResult { images, .. } = turn {
                tool_images.extend(
                    images
                        .iter()
                        .map(|i| json!({"type": "image_url", "image_url": {"url": i.data_url()}})),
                );
            }
            messages.push(match turn {
                Turn::User(text) => json!({"role": "user", "content": text}),
                Turn::UserWithImages { text, images } => {
                    let mut parts: Vec<Value> = Vec::new();
                    if !text.is_empty() {
                        parts.push(json!({"type": "text", "text": text}));
                    }
                    parts.extend(
                        images.iter().map(
                            |i| json!({"type": "image_url", "image_url": {"url": i.data_url()}}),
                        ),
                    );
                    json!({"role": "user", "content": parts})
                }
                Turn::Assistant { text, tool_calls } if tool_calls.is_empty() => {
                    json!({"role": "assistant", "content": text})
                }
                Turn::Assistant { text, tool_calls } => json!({
                    "role": "assistant",
                    "content": if text.is_empty() { Value::Null } else { json!(text) },
                    "tool_calls": tool_calls.iter().map(|c| json!({
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments.to_string()},
                    })).collect::<Vec<_>>(),
                }),
                Turn::ToolResult {
                    call_id, content, ..
                } => json!({"role": "tool", "tool_call_id": call_id, "content": content}),
            });
        }
        if !tool_images.is_empty() {
            messages.push(tool_images_message(tool_images));
        }
        let mut body = json!({
            "model": self.settings.model,
            "messages": messages,
            "max_tokens": req.max_tokens.unwrap_or(self.settings.max_tokens),
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        if !req.tools.is_empty() {
            body["tools"] = req
                .tools
                .iter()
                .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}))
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
        let client =
            http_client().map_err(|e| ProviderError::new(name, ErrorKind::Config, None, e))?;
        let mut request = client
            .post(format!("{}/chat/completions", self.settings.base_url))
            .timeout(self.settings.timeout)
            .header("content-type", "application/json")
            .header("accept", "text/event-stream")
            .body(self.body(req).to_string());
        // Local servers (Ollama, llama.cpp) need no key.
        if let Some(key) = &self.settings.api_key {
            request = request.bearer_auth(key.expose());
        }
        let mut stream = send_sse(name, request).await?;

        let mut text = String::new();
        let mut usage = Usage::default();
        let mut stop = StopReason::Other;
        let mut calls: Vec<PartialCall> = Vec::new();
        let mut done = false;

        while let Some(event) = next_event(name, &mut stream, self.settings.idle_timeout).await? {
            let data = event.data.trim();
            if data == "[DONE]" {
                done = true;
                break;
            }
            if data.is_empty() {
                continue;
            }
            let chunk: Value = serde_json::from_str(data)
                .map_err(|e| malformed(name, format!("stream chunk is not JSON ({e})")))?;
            if chunk.get("error").is_some() {
                return Err(ProviderError::new(
                    name,
                    ErrorKind::Server,
                    None,
                    format!("error mid-stream: {}", error_detail(data)),
                ));
            }
            if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
                usage.input_tokens = u["prompt_tokens"].as_u64().unwrap_or(usage.input_tokens);
                usage.output_tokens = u["completion_tokens"]
                    .as_u64()
                    .unwrap_or(usage.output_tokens);
            }
            let Some(choice) = chunk["choices"].as_array().and_then(|c| c.first()) else {
                continue;
            };
            let delta = &choice["delta"];
            if let Some(t) = delta["content"].as_str().filter(|t| !t.is_empty()) {
                text.push_str(t);
                on_event(StreamEvent::TextDelta(t.to_owned()));
            }
            if let Some(fragments) = delta["tool_calls"].as_array() {
                for f in fragments {
                    let index = f["index"].as_u64().unwrap_or(calls.len() as u64) as usize;
                    if index > 64 {
                        return Err(malformed(name, format!("tool call index {index}")));
                    }
                    while calls.len() <= index {
                        calls.push(PartialCall::default());
                    }
                    let call = &mut calls[index];
                    if let Some(id) = f["id"].as_str() {
                        call.id = id.to_owned();
                    }
                    if let Some(n) = f["function"]["name"].as_str() {
                        call.name.push_str(n);
                    }
                    if let Some(a) = f["function"]["arguments"].as_str() {
                        call.arguments.push_str(a);
                    }
                }
            }
            if let Some(reason) = choice["finish_reason"].as_str() {
                stop = match reason {
                    "stop" => StopReason::EndTurn,
                    "tool_calls" | "function_call" => StopReason::ToolUse,
                    "length" => StopReason::MaxTokens,
                    _ => StopReason::Other,
                };
            }
        }
        if !done {
            return Err(ProviderError::new(
                name,
                ErrorKind::Connection,
                None,
                "the stream ended before [DONE]",
            ));
        }
        let mut tool_calls = Vec::new();
        for (i, c) in calls.into_iter().enumerate() {
            if c.name.is_empty() {
                return Err(malformed(
                    name,
                    format!("tool call {i} has no function name"),
                ));
            }
            let arguments = if c.arguments.trim().is_empty() {
                json!({})
            } else {
                serde_json::from_str(&c.arguments).map_err(|e| {
                    malformed(
                        name,
                        format!("arguments of tool `{}` are not JSON ({e})", c.name),
                    )
                })?
            };
            let id = if c.id.is_empty() {
                format!("call_{i}")
            } else {
                c.id
            };
            tool_calls.push(ToolCall {
                id,
                name: c.name,
                arguments,
            });
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

impl Provider for OpenAi {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> ProviderKind {
        ProviderKind::Openai
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
            let headers = match &self.settings.api_key {
                Some(key) => vec![("authorization", format!("Bearer {}", key.expose()))],
                None => Vec::new(),
            };
            super::get_ok(
                &self.name,
                format!("{}/models", self.settings.base_url),
                headers,
            )
            .await
        }
        .boxed()
    }
}
