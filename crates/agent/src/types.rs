//! Provider-neutral conversation types. Each provider translates them to its own wire format.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One turn of a conversation as the model sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Turn {
    User(String),
    /// A user message with pictures (a photo sent from a phone, a pasted screenshot).
    UserWithImages {
        text: String,
        images: Vec<Image>,
    },
    Assistant {
        text: String,
        tool_calls: Vec<ToolCall>,
    },
    ToolResult {
        call_id: String,
        name: String,
        content: String,
        /// Pictures the tool returned (a node's screenshot): shown to models that see
        /// images, described to the others.
        images: Vec<Image>,
        is_error: bool,
    },
}

/// A picture for a model: base64 (standard alphabet, padded) of an encoded image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// `image/png`, `image/jpeg`, `image/gif` or `image/webp`: what providers accept.
    pub media_type: String,
    pub data: String,
}

impl Image {
    /// The image as a `data:` URL (OpenAI's `image_url`, a web page's `<img>`).
    pub fn data_url(&self) -> String {
        format!("data:{};base64,{}", self.media_type, self.data)
    }

    /// How a model that cannot see images is told about one.
    pub fn describe(&self) -> String {
        format!(
            "[an image ({}, {} KiB) this model cannot see]",
            self.media_type,
            self.data.len() * 3 / 4 / 1024
        )
    }
}

/// Image types providers take as pictures.
pub const IMAGE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// A file that came with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// `image/png`, `application/pdf`, …
    pub media_type: String,
    pub name: Option<String>,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// Parsed JSON arguments (an object).
    pub arguments: Value,
}

/// What a model is told about a tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: Value,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChatRequest {
    pub system: String,
    pub turns: Vec<Turn>,
    pub tools: Vec<ToolSpec>,
    /// Overrides the provider's configured `max_tokens`.
    pub max_tokens: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, rhs: Self) {
        self.input_tokens += rhs.input_tokens;
        self.output_tokens += rhs.output_tokens;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    ToolUse,
    MaxTokens,
    Other,
}

/// A model's complete answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
    pub stop: StopReason,
    /// The provider that produced it (after failover, not necessarily the first).
    pub provider: String,
}

/// What a provider reports while it streams.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// Text to append to the reply being shown.
    TextDelta(String),
    /// Drop the partial reply shown so far: a provider failed mid-stream and another one is
    /// starting over.
    Reset,
}
