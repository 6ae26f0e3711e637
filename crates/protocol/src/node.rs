//! The node protocol: what a gateway sends a device node, and what comes back. Same framing as
//! the gateway WebSocket (`req` / `res` / `event`); the node opens with `connect.challenge`.

use serde::{Deserialize, Serialize};

/// Default port a node listens on.
pub const NODE_PORT: u16 = 18790;

/// Largest WebSocket message (and frame) a node accepts: one request.
///
/// The largest legitimate request is `system.notify` or `tts.speak` at its limit of 4096
/// characters of text; serialized as JSON a character takes at most 6 bytes (`\u001f` for a
/// control character), so 24 KiB, plus the envelope. 64 KiB leaves room for that and keeps what a
/// stranger can make the node buffer small. Pairing and `connect` messages are under 1 KiB.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Largest image data (base64 characters) a node sends back: 12 MiB of PNG or JPEG. A
/// 1920x1080 screen is 8.3 MB as raw RGBA and its PNG smaller still (the `nodes` bench prints
/// the size of a busy one); a 3840x2160 screen is 33 MB raw, so a busy 4K screenshot can be
/// over the limit, and is refused with `PAYLOAD_TOO_LARGE` rather than sent.
pub const MAX_IMAGE_DATA_BYTES: usize = 16 * 1024 * 1024;

/// Largest WebSocket message (and frame, since a node sends each answer as one frame) a gateway
/// accepts from a node: the largest image plus its JSON envelope.
pub const MAX_RESPONSE_BYTES: usize = MAX_IMAGE_DATA_BYTES + 64 * 1024;

pub mod method {
    pub const PAIR_START: &str = "pair.start";
    pub const PAIR_CONFIRM: &str = "pair.confirm";
    pub const CONNECT: &str = "connect";
    pub const DESCRIBE: &str = "node.describe";
    pub const SCREEN_SNAPSHOT: &str = "screen.snapshot";
    pub const CAMERA_LIST: &str = "camera.list";
    pub const CAMERA_SNAP: &str = "camera.snap";
    pub const SYSTEM_NOTIFY: &str = "system.notify";
    pub const TTS_SPEAK: &str = "tts.speak";
}

/// An image a node returns (`screen.snapshot`, `camera.snap`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// `png` or `jpeg`.
    pub format: String,
    pub width: u32,
    pub height: u32,
    /// Base64 (standard alphabet) of the encoded image.
    pub data: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotParams {
    /// Display index; the primary display when absent.
    #[serde(default)]
    pub display: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CameraSnapParams {
    #[serde(default)]
    pub index: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CameraInfo {
    pub index: u32,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyParams {
    pub title: String,
    #[serde(default)]
    pub body: String,
    /// `low`, `normal` (default) or `critical`.
    #[serde(default)]
    pub urgency: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeakParams {
    pub text: String,
    #[serde(default)]
    pub voice: Option<String>,
    /// Relative speed, 1.0 = normal.
    #[serde(default)]
    pub rate: Option<f32>,
}

/// `connect` from a paired gateway: it proves its key by signing the node's challenge, and
/// sends a nonce of its own for the node to sign in return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeConnect {
    /// Hex SHA-256 of the gateway's public key.
    pub device_id: String,
    /// Signature over the node's `connect.challenge`, base64url.
    pub signature: String,
    pub nonce: String,
    /// Milliseconds since the Unix epoch.
    pub ts: i64,
}

/// The node's answer to `connect`: its signature over the gateway's nonce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeConnected {
    pub device_id: String,
    pub signature: String,
}

/// A capability as a node describes it: its method name, what it does and the JSON schema of its
/// params, enough for a gateway to offer it as an agent tool without knowing it beforehand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilitySpec {
    /// The method to call, e.g. `screen.snapshot`.
    pub name: String,
    pub description: String,
    /// JSON Schema of the params object.
    #[serde(default)]
    pub parameters: serde_json::Value,
}

/// `node.describe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDescription {
    pub id: String,
    pub name: String,
    pub platform: String,
    pub version: String,
    pub capabilities: Vec<String>,
    /// Capabilities this node has no working backend for, with the reason (method → why).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub unavailable: std::collections::BTreeMap<String, String>,
    /// One spec per advertised capability, in the same order (nodes before this field existed
    /// send none: a gateway then knows only the four built-in methods).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub specs: Vec<CapabilitySpec>,
    /// The node sleeps and comes back (a phone's app in the background): while it is away a
    /// call for it may wait at the gateway, up to the call's deadline, instead of failing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub wakeable: bool,
}
