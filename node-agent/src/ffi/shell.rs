//! What only the phone has, implemented by its shell (Swift, Kotlin) through uniffi foreign
//! traits, and the adapters that put each into the node's [`Capabilities`] registry. The
//! adapters own the translation both ways: a shell's [`ShellError`] (or an exception it did not
//! declare) becomes a typed [`CapabilityError`], so the gateway gets an error code, never a
//! crashed node; and every call is reported to the shell as a [`NodeEvent::Invoked`].
//!
//! Shell calls are synchronous on the Rust side and run on the runtime's blocking pool: a
//! camera or a GPS fix takes its time, and the link keeps serving other calls meanwhile.

use super::types::{NodeEvent, ShellError};
use crate::capabilities::{
    Camera, Capabilities, Capability, CapabilityError, Notifier, RegisterError, Speech,
};
use base64::Engine as _;
use futures_util::future::BoxFuture;
use openclaw_protocol::node::{CameraInfo, CapabilitySpec, Image, NotifyParams, SpeakParams};
use serde_json::{Value, json};
use std::sync::Arc;

/// A photo the shell took: the JPEG bytes as the camera gave them.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Photo {
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// A camera of the device.
#[derive(Debug, Clone, uniffi::Record)]
pub struct CameraDevice {
    pub index: u32,
    pub name: String,
}

/// Where the device is.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    /// Radius of the fix's uncertainty, in metres.
    pub accuracy_m: f64,
    pub altitude_m: Option<f64>,
    /// When the fix was taken, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

/// What the device is.
#[derive(Debug, Clone, uniffi::Record)]
pub struct DeviceInfo {
    pub model: String,
    pub os: String,
    pub os_version: String,
    pub battery_percent: Option<u8>,
    pub charging: Option<bool>,
}

/// The phone's cameras (AVFoundation, CameraX).
#[uniffi::export(with_foreign)]
pub trait CameraProvider: Send + Sync {
    fn list(&self) -> Result<Vec<CameraDevice>, ShellError>;
    /// A photo from camera `index` (the default one when `None`).
    fn snap(&self, index: Option<u32>) -> Result<Photo, ShellError>;
}

/// The phone's location (CoreLocation, the fused location provider).
#[uniffi::export(with_foreign)]
pub trait LocationProvider: Send + Sync {
    /// The current fix; `precise` false allows a coarse one.
    fn current(&self, precise: bool) -> Result<Location, ShellError>;
}

/// The phone's notifications (UserNotifications, NotificationManager).
#[uniffi::export(with_foreign)]
pub trait NotificationProvider: Send + Sync {
    /// `urgency` is `low`, `normal` or `critical`.
    fn notify(&self, title: String, body: String, urgency: String) -> Result<(), ShellError>;
}

/// The phone's speech (AVSpeechSynthesizer, TextToSpeech).
#[uniffi::export(with_foreign)]
pub trait SpeechProvider: Send + Sync {
    fn speak(
        &self,
        text: String,
        voice: Option<String>,
        rate: Option<f32>,
    ) -> Result<(), ShellError>;
}

/// What the phone says about itself (model, OS, battery).
#[uniffi::export(with_foreign)]
pub trait DeviceInfoProvider: Send + Sync {
    fn info(&self) -> Result<DeviceInfo, ShellError>;
}

/// Told what the node does; calls come from the node's own threads and must return quickly
/// (post to the UI thread). An error it returns is logged and otherwise ignored.
#[uniffi::export(with_foreign)]
pub trait NodeEventListener: Send + Sync {
    fn on_event(&self, event: NodeEvent) -> Result<(), ShellError>;
}

/// The listener, if any, as the adapters and the dial loops share it.
#[derive(Clone, Default)]
pub(crate) struct Events(pub(crate) Option<Arc<dyn NodeEventListener>>);

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Events")
    }
}

impl Events {
    pub(crate) fn send(&self, event: NodeEvent) {
        if let Some(listener) = &self.0
            && let Err(e) = listener.on_event(event)
        {
            tracing::warn!("the shell's event listener failed: {e}");
        }
    }

    fn invoked<T>(&self, method: &str, result: &Result<T, CapabilityError>) {
        self.send(NodeEvent::Invoked {
            method: method.to_owned(),
            ok: result.is_ok(),
            error: result.as_ref().err().map(|e| e.to_string()),
        });
    }
}

/// A shell's error as the gateway gets it: `Unavailable` and `Denied` as the capability being
/// unavailable (with the shell's reason), `Failed` and an undeclared exception as
/// `CAPABILITY_FAILED`.
fn capability_error(capability: &str, e: ShellError) -> CapabilityError {
    match e {
        ShellError::Unavailable { reason } => CapabilityError::Unavailable {
            capability: capability.to_owned(),
            reason,
        },
        ShellError::Denied { reason } => CapabilityError::Unavailable {
            capability: capability.to_owned(),
            reason: format!("permission denied: {reason}"),
        },
        ShellError::Failed { reason } => CapabilityError::Platform {
            capability: capability.to_owned(),
            reason,
        },
    }
}

struct ShellCamera {
    shell: Arc<dyn CameraProvider>,
    events: Events,
}

impl Camera for ShellCamera {
    fn list(&self) -> Result<Vec<CameraInfo>, CapabilityError> {
        let result = self
            .shell
            .list()
            .map(|cams| {
                cams.into_iter()
                    .map(|c| CameraInfo {
                        index: c.index,
                        name: c.name,
                    })
                    .collect()
            })
            // "camera": the name that gives the guide's CAMERA_UNAVAILABLE.
            .map_err(|e| capability_error("camera", e));
        self.events.invoked("camera.list", &result);
        result
    }

    fn snap(&self, index: Option<u32>) -> Result<Image, CapabilityError> {
        let result = self
            .shell
            .snap(index)
            .map_err(|e| capability_error("camera", e))
            .and_then(|photo| {
                // The JPEG's own start-of-image marker: a shell that hands over anything else
                // (a PNG, an empty buffer) is told so here, not by the model later.
                if !photo.jpeg.starts_with(&[0xFF, 0xD8]) {
                    return Err(CapabilityError::Platform {
                        capability: "camera".into(),
                        reason: format!(
                            "the app returned {} bytes that are not a JPEG",
                            photo.jpeg.len()
                        ),
                    });
                }
                Ok(Image {
                    format: "jpeg".into(),
                    width: photo.width,
                    height: photo.height,
                    data: base64::engine::general_purpose::STANDARD.encode(&photo.jpeg),
                })
            });
        self.events.invoked("camera.snap", &result);
        result
    }
}

struct ShellNotifier {
    shell: Arc<dyn NotificationProvider>,
    events: Events,
}

impl Notifier for ShellNotifier {
    fn notify(&self, p: &NotifyParams) -> Result<(), CapabilityError> {
        let urgency = p.urgency.clone().unwrap_or_else(|| "normal".into());
        let result = self
            .shell
            .notify(p.title.clone(), p.body.clone(), urgency)
            .map_err(|e| capability_error("system.notify", e));
        self.events.invoked("system.notify", &result);
        result
    }
}

struct ShellSpeech {
    shell: Arc<dyn SpeechProvider>,
    events: Events,
}

impl Speech for ShellSpeech {
    fn speak(&self, p: &SpeakParams) -> Result<(), CapabilityError> {
        let result = self
            .shell
            .speak(p.text.clone(), p.voice.clone(), p.rate)
            .map_err(|e| capability_error("tts.speak", e));
        self.events.invoked("tts.speak", &result);
        result
    }
}

/// A registered capability whose work is one blocking shell call.
struct ShellCapability {
    spec: CapabilitySpec,
    run: Arc<dyn Fn(Value) -> Result<Value, CapabilityError> + Send + Sync>,
    events: Events,
}

impl Capability for ShellCapability {
    fn spec(&self) -> CapabilitySpec {
        self.spec.clone()
    }

    fn call(&self, params: Value) -> BoxFuture<'_, Result<Value, CapabilityError>> {
        let run = self.run.clone();
        Box::pin(async move {
            let result = tokio::task::spawn_blocking(move || run(params))
                .await
                .map_err(|e| CapabilityError::Failed(format!("the shell call's task: {e}")))
                .and_then(|r| r);
            self.events.invoked(&self.spec.name, &result);
            result
        })
    }
}

/// What the shell implements; any of them may be missing (a tablet without GPS, a shell that
/// does not ask for the camera permission).
#[derive(Clone, Default)]
pub(crate) struct Shell {
    pub(crate) camera: Option<Arc<dyn CameraProvider>>,
    pub(crate) location: Option<Arc<dyn LocationProvider>>,
    pub(crate) notifications: Option<Arc<dyn NotificationProvider>>,
    pub(crate) speech: Option<Arc<dyn SpeechProvider>>,
    pub(crate) device_info: Option<Arc<dyn DeviceInfoProvider>>,
}

/// The node's capabilities: the shell's, each in its place in the registry.
pub(crate) fn capabilities(shell: Shell, events: &Events) -> Result<Capabilities, RegisterError> {
    use crate::capabilities::Backend;
    let mut caps = Capabilities::none("the app does not provide it");
    if let Some(shell) = shell.camera {
        caps.camera = Backend::Ready(Arc::new(ShellCamera {
            shell,
            events: events.clone(),
        }));
    }
    if let Some(shell) = shell.notifications {
        caps.notifier = Backend::Ready(Arc::new(ShellNotifier {
            shell,
            events: events.clone(),
        }));
    }
    if let Some(shell) = shell.speech {
        caps.speech = Backend::Ready(Arc::new(ShellSpeech {
            shell,
            events: events.clone(),
        }));
    }
    if let Some(shell) = shell.location {
        caps.register(Arc::new(ShellCapability {
            spec: CapabilitySpec {
                name: "location.get".into(),
                description: "Where the device is now: latitude, longitude, accuracy in metres."
                    .into(),
                parameters: json!({"type": "object", "properties": {
                    "precise": {"type": "boolean", "description": "false allows a coarse fix"}
                }}),
            },
            run: Arc::new(move |params: Value| {
                let precise = params
                    .get("precise")
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                let fix = shell
                    .current(precise)
                    .map_err(|e| capability_error("location.get", e))?;
                Ok(json!({
                    "latitude": fix.latitude, "longitude": fix.longitude,
                    "accuracy_m": fix.accuracy_m, "altitude_m": fix.altitude_m,
                    "timestamp_ms": fix.timestamp_ms,
                }))
            }),
            events: events.clone(),
        }))?;
    }
    if let Some(shell) = shell.device_info {
        caps.register(Arc::new(ShellCapability {
            spec: CapabilitySpec {
                name: "device.info".into(),
                description: "What the device is: model, OS and version, battery.".into(),
                parameters: json!({"type": "object", "properties": {}}),
            },
            run: Arc::new(move |_| {
                let info = shell
                    .info()
                    .map_err(|e| capability_error("device.info", e))?;
                Ok(json!({
                    "model": info.model, "os": info.os, "os_version": info.os_version,
                    "battery_percent": info.battery_percent, "charging": info.charging,
                }))
            }),
            events: events.clone(),
        }))?;
    }
    Ok(caps)
}
