//! What a node can do, each behind a trait so a platform brings its own implementation (desktop
//! crates here, Swift/Kotlin through uniffi on phones). A capability without a working backend
//! on this host is not advertised, and a call to it gets a typed error that says why.
//!
//! Besides the four built-in ones (screen, camera, notifications, speech: sync traits, run on a
//! blocking thread), any [`Capability`] can be registered: a method name, a description, a JSON
//! schema of its params and an async call. Each is advertised in `node.describe` with its
//! [`CapabilitySpec`], so a gateway can route it and offer it as a tool without knowing it (a
//! phone's `location.get` needs no gateway change).

use futures_util::future::BoxFuture;
use openclaw_protocol::ErrorCode;
use openclaw_protocol::node::{
    CameraInfo, CapabilitySpec, Image, NotifyParams, SpeakParams, method,
};
use serde_json::{Value, json};
use std::sync::Arc;

/// Largest image a node sends back, in base64 characters (base64 grows it by a third): the
/// protocol's limit, which gateways size their WebSocket limits by.
pub const MAX_IMAGE_BYTES: usize = openclaw_protocol::node::MAX_IMAGE_DATA_BYTES;
/// Longest notification title + body.
pub const MAX_NOTIFY_CHARS: usize = 4096;
/// Longest text to speak.
pub const MAX_SPEAK_CHARS: usize = 4096;

/// Why a capability call failed. Owned strings throughout, so a platform's backend (Swift,
/// Kotlin through uniffi) can build any of them; [`CapabilityError::code`] is its stable wire
/// code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapabilityError {
    #[error("{capability} is not available on this node: {reason}")]
    Unavailable { capability: String, reason: String },
    #[error("{0}")]
    InvalidParams(String),
    #[error("{what} is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        what: String,
        size: usize,
        limit: usize,
    },
    #[error("{0}")]
    Failed(String),
    /// The platform's implementation failed (a phone app's handler threw, the OS refused):
    /// `CAPABILITY_FAILED`, so a gateway tells it from a fault of the node itself.
    #[error("{capability} failed on the device: {reason}")]
    Platform { capability: String, reason: String },
}

impl CapabilityError {
    /// The error code a gateway gets: `CAMERA_UNAVAILABLE` for the camera (the guide names it),
    /// `CAPABILITY_UNAVAILABLE` for any other missing backend, `PAYLOAD_TOO_LARGE`,
    /// `INVALID_REQUEST`, `INTERNAL`.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unavailable { capability, .. } if capability == "camera" => {
                ErrorCode::CameraUnavailable
            }
            Self::Unavailable { .. } => ErrorCode::CapabilityUnavailable,
            Self::TooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::InvalidParams(_) => ErrorCode::InvalidRequest,
            Self::Failed(_) => ErrorCode::Internal,
            Self::Platform { .. } => ErrorCode::CapabilityFailed,
        }
    }
}

/// A capability added to a node at run time: what it is ([`CapabilitySpec`]) and how to run it.
pub trait Capability: Send + Sync {
    fn spec(&self) -> CapabilitySpec;

    /// Runs one call. Calls overlap (a gateway's link serves several at once), and the runtime
    /// is shared: work that blocks goes to `tokio::task::spawn_blocking`.
    fn call(&self, params: Value) -> BoxFuture<'_, Result<Value, CapabilityError>>;
}

/// Why a capability could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    #[error(
        "`{0}` is not a capability name: use lowercase letters, digits, `_` and `.` (e.g. `location.get`)"
    )]
    BadName(String),
    #[error("`{0}` is already a capability of this node, or a protocol method")]
    Taken(String),
}

/// Methods of the protocol itself, never a capability.
const RESERVED: [&str; 4] = [
    method::PAIR_START,
    method::PAIR_CONFIRM,
    method::CONNECT,
    method::DESCRIBE,
];

pub trait ScreenCapture: Send + Sync {
    fn snapshot(&self, display: Option<u32>) -> Result<Image, CapabilityError>;
}

pub trait Camera: Send + Sync {
    fn list(&self) -> Result<Vec<CameraInfo>, CapabilityError>;
    fn snap(&self, index: Option<u32>) -> Result<Image, CapabilityError>;
}

pub trait Notifier: Send + Sync {
    fn notify(&self, params: &NotifyParams) -> Result<(), CapabilityError>;
}

pub trait Speech: Send + Sync {
    fn speak(&self, params: &SpeakParams) -> Result<(), CapabilityError>;
}

/// A backend, or why there is none on this host.
pub enum Backend<T: ?Sized> {
    Ready(Arc<T>),
    Missing(String),
}

impl<T: ?Sized> Clone for Backend<T> {
    fn clone(&self) -> Self {
        match self {
            Backend::Ready(b) => Backend::Ready(b.clone()),
            Backend::Missing(r) => Backend::Missing(r.clone()),
        }
    }
}

impl<T: ?Sized> Backend<T> {
    fn ready(&self) -> Option<&Arc<T>> {
        match self {
            Backend::Ready(b) => Some(b),
            Backend::Missing(_) => None,
        }
    }

    fn missing(&self) -> Option<&str> {
        match self {
            Backend::Ready(_) => None,
            Backend::Missing(reason) => Some(reason),
        }
    }

    fn get(&self, capability: &'static str) -> Result<&Arc<T>, CapabilityError> {
        match self {
            Backend::Ready(b) => Ok(b),
            Backend::Missing(reason) => Err(CapabilityError::Unavailable {
                capability: capability.to_owned(),
                reason: reason.clone(),
            }),
        }
    }
}

/// The node's capabilities: the four built-in backends and the registered ones.
#[derive(Clone)]
pub struct Capabilities {
    pub screen: Backend<dyn ScreenCapture>,
    pub camera: Backend<dyn Camera>,
    pub notifier: Backend<dyn Notifier>,
    pub speech: Backend<dyn Speech>,
    registered: Vec<Arc<dyn Capability>>,
}

/// The specs of the built-in methods, in the order they are advertised.
fn builtin_spec(name: &str) -> CapabilitySpec {
    let (description, parameters) = match name {
        method::SCREEN_SNAPSHOT => (
            "Take a screenshot of a display of the device (PNG, base64).",
            json!({"type": "object", "properties": {"display": {"type": "integer", "minimum": 0}}}),
        ),
        method::CAMERA_LIST => (
            "List the cameras of the device.",
            json!({"type": "object", "properties": {}}),
        ),
        method::CAMERA_SNAP => (
            "Take a photo with a camera of the device (JPEG, base64).",
            json!({"type": "object", "properties": {"index": {"type": "integer", "minimum": 0}}}),
        ),
        method::SYSTEM_NOTIFY => (
            "Show a notification on the device.",
            json!({"type": "object", "properties": {
                "title": {"type": "string"},
                "body": {"type": "string"},
                "urgency": {"type": "string", "enum": ["low", "normal", "critical"]}
            }, "required": ["title"]}),
        ),
        _ => (
            "Say something out loud on the device.",
            json!({"type": "object", "properties": {
                "text": {"type": "string"},
                "voice": {"type": "string"},
                "rate": {"type": "number"}
            }, "required": ["text"]}),
        ),
    };
    CapabilitySpec {
        name: name.to_owned(),
        description: description.to_owned(),
        parameters,
    }
}

impl std::fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.advertised()).finish()
    }
}

impl Capabilities {
    /// Nothing available, each with the same reason.
    pub fn none(reason: &str) -> Self {
        Self {
            screen: Backend::Missing(reason.to_owned()),
            camera: Backend::Missing(reason.to_owned()),
            notifier: Backend::Missing(reason.to_owned()),
            speech: Backend::Missing(reason.to_owned()),
            registered: Vec::new(),
        }
    }

    /// Adds `capability`; its name must be new (not a built-in method, a registered one or a
    /// protocol method).
    pub fn register(&mut self, capability: Arc<dyn Capability>) -> Result<(), RegisterError> {
        let name = capability.spec().name;
        let well_formed = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
        if !well_formed {
            return Err(RegisterError::BadName(name));
        }
        let builtin = [
            method::SCREEN_SNAPSHOT,
            method::CAMERA_LIST,
            method::CAMERA_SNAP,
            method::SYSTEM_NOTIFY,
            method::TTS_SPEAK,
        ];
        if RESERVED.contains(&name.as_str())
            || builtin.contains(&name.as_str())
            || self.registered_named(&name).is_some()
        {
            return Err(RegisterError::Taken(name));
        }
        self.registered.push(capability);
        Ok(())
    }

    /// The registered capability called `name`, if any.
    pub fn registered_named(&self, name: &str) -> Option<&Arc<dyn Capability>> {
        self.registered.iter().find(|c| c.spec().name == name)
    }

    /// The spec of every advertised capability, in the order of [`advertised`](Self::advertised).
    pub fn specs(&self) -> Vec<CapabilitySpec> {
        let builtin = self.advertised_builtin();
        builtin
            .iter()
            .map(|m| builtin_spec(m))
            .chain(self.registered.iter().map(|c| c.spec()))
            .collect()
    }

    /// Method names this node advertises: the built-in ones with a backend, then the
    /// registered ones.
    pub fn advertised(&self) -> Vec<String> {
        let mut out = self.advertised_builtin();
        out.extend(self.registered.iter().map(|c| c.spec().name));
        out
    }

    /// Runs any capability: a registered one on the runtime, a built-in one on a blocking
    /// thread (capture, D-Bus and speech calls block).
    pub async fn invoke(
        self: &Arc<Self>,
        name: &str,
        params: Value,
    ) -> Result<Value, CapabilityError> {
        if let Some(capability) = self.registered_named(name) {
            return capability.call(params).await;
        }
        let (me, name) = (self.clone(), name.to_owned());
        tokio::task::spawn_blocking(move || me.call(&name, params))
            .await
            .map_err(|e| CapabilityError::Failed(format!("capability task failed: {e}")))?
    }

    fn advertised_builtin(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.screen.ready().is_some() {
            out.push(method::SCREEN_SNAPSHOT.to_owned());
        }
        if self.camera.ready().is_some() {
            out.push(method::CAMERA_LIST.to_owned());
            out.push(method::CAMERA_SNAP.to_owned());
        }
        if self.notifier.ready().is_some() {
            out.push(method::SYSTEM_NOTIFY.to_owned());
        }
        if self.speech.ready().is_some() {
            out.push(method::TTS_SPEAK.to_owned());
        }
        out
    }

    /// Capabilities without a working backend, with the reason (method → why).
    pub fn unavailable(&self) -> std::collections::BTreeMap<String, String> {
        let mut out = std::collections::BTreeMap::new();
        let mut add = |methods: &[&str], reason: Option<&str>| {
            if let Some(reason) = reason {
                for m in methods {
                    out.insert((*m).to_owned(), reason.to_owned());
                }
            }
        };
        add(&[method::SCREEN_SNAPSHOT], self.screen.missing());
        add(
            &[method::CAMERA_LIST, method::CAMERA_SNAP],
            self.camera.missing(),
        );
        add(&[method::SYSTEM_NOTIFY], self.notifier.missing());
        add(&[method::TTS_SPEAK], self.speech.missing());
        out
    }

    /// Runs a capability method (blocking: call it off the async runtime).
    pub fn call(
        &self,
        name: &str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, CapabilityError> {
        fn parse<T: serde::de::DeserializeOwned + Default>(
            v: serde_json::Value,
        ) -> Result<T, CapabilityError> {
            if v.is_null() {
                return Ok(T::default());
            }
            serde_json::from_value(v)
                .map_err(|e| CapabilityError::InvalidParams(format!("bad params: {e}")))
        }
        fn checked(image: Image) -> Result<serde_json::Value, CapabilityError> {
            if image.data.len() > MAX_IMAGE_BYTES {
                return Err(CapabilityError::TooLarge {
                    what: "the image".into(),
                    size: image.data.len(),
                    limit: MAX_IMAGE_BYTES,
                });
            }
            Ok(serde_json::json!(image))
        }
        match name {
            method::SCREEN_SNAPSHOT => {
                let p: openclaw_protocol::node::SnapshotParams = parse(params)?;
                checked(self.screen.get("screen.snapshot")?.snapshot(p.display)?)
            }
            method::CAMERA_LIST => Ok(serde_json::json!(self.camera.get("camera")?.list()?)),
            method::CAMERA_SNAP => {
                let p: openclaw_protocol::node::CameraSnapParams = parse(params)?;
                checked(self.camera.get("camera")?.snap(p.index)?)
            }
            method::SYSTEM_NOTIFY => {
                let p: NotifyParams = serde_json::from_value(params).map_err(|e| {
                    CapabilityError::InvalidParams(format!(
                        "system.notify needs {{title, body?, urgency?}}: {e}"
                    ))
                })?;
                let size = p.title.chars().count() + p.body.chars().count();
                if size > MAX_NOTIFY_CHARS {
                    return Err(CapabilityError::TooLarge {
                        what: "the notification".into(),
                        size,
                        limit: MAX_NOTIFY_CHARS,
                    });
                }
                if let Some(u) = p
                    .urgency
                    .as_deref()
                    .filter(|u| !matches!(*u, "low" | "normal" | "critical"))
                {
                    return Err(CapabilityError::InvalidParams(format!(
                        "urgency `{u}` is not low, normal or critical"
                    )));
                }
                self.notifier.get("system.notify")?.notify(&p)?;
                Ok(serde_json::json!({"delivered": true}))
            }
            method::TTS_SPEAK => {
                let p: SpeakParams = serde_json::from_value(params).map_err(|e| {
                    CapabilityError::InvalidParams(format!(
                        "tts.speak needs {{text, voice?, rate?}}: {e}"
                    ))
                })?;
                let size = p.text.chars().count();
                if size == 0 {
                    return Err(CapabilityError::InvalidParams("`text` is empty".into()));
                }
                if size > MAX_SPEAK_CHARS {
                    return Err(CapabilityError::TooLarge {
                        what: "the text".into(),
                        size,
                        limit: MAX_SPEAK_CHARS,
                    });
                }
                self.speech.get("tts.speak")?.speak(&p)?;
                Ok(serde_json::json!({"spoken": true}))
            }
            other => Err(CapabilityError::InvalidParams(format!(
                "`{other}` is not a node capability"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recording(Mutex<Vec<String>>);

    impl Notifier for Recording {
        fn notify(&self, p: &NotifyParams) -> Result<(), CapabilityError> {
            self.0
                .lock()
                .unwrap()
                .push(format!("{}: {}", p.title, p.body));
            Ok(())
        }
    }

    #[test]
    fn only_working_backends_are_advertised_and_the_rest_say_why() {
        let notes = Arc::new(Recording::default());
        let mut caps = Capabilities::none("no backend in this build");
        caps.camera = Backend::Missing("no camera found".into());
        caps.notifier = Backend::Ready(notes.clone());
        assert_eq!(caps.advertised(), ["system.notify"]);
        let unavailable = caps.unavailable();
        assert_eq!(unavailable["camera.snap"], "no camera found");
        assert_eq!(unavailable["tts.speak"], "no backend in this build");
        assert!(!unavailable.contains_key("system.notify"));
        let out = caps
            .call(
                "system.notify",
                serde_json::json!({"title": "Hi", "body": "there"}),
            )
            .unwrap();
        assert_eq!(out["delivered"], true);
        assert_eq!(notes.0.lock().unwrap().as_slice(), ["Hi: there"]);
        let err = caps
            .call("camera.snap", serde_json::Value::Null)
            .unwrap_err();
        assert_eq!(
            err,
            CapabilityError::Unavailable {
                capability: "camera".into(),
                reason: "no camera found".into()
            }
        );
        assert!(err.to_string().contains("no camera found"));
    }

    #[test]
    fn params_and_limits_are_checked_before_any_backend_runs() {
        let notes = Arc::new(Recording::default());
        let mut caps = Capabilities::none("none");
        caps.notifier = Backend::Ready(notes.clone());
        let big = "x".repeat(MAX_NOTIFY_CHARS + 1);
        assert!(matches!(
            caps.call("system.notify", serde_json::json!({"title": big})),
            Err(CapabilityError::TooLarge { .. })
        ));
        assert!(matches!(
            caps.call("system.notify", serde_json::json!({"body": "no title"})),
            Err(CapabilityError::InvalidParams(_))
        ));
        assert!(matches!(
            caps.call(
                "system.notify",
                serde_json::json!({"title": "t", "urgency": "loud"})
            ),
            Err(CapabilityError::InvalidParams(_))
        ));
        assert!(notes.0.lock().unwrap().is_empty());
        assert!(matches!(
            caps.call("rm -rf", serde_json::Value::Null),
            Err(CapabilityError::InvalidParams(_))
        ));
    }
}
