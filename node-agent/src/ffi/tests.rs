//! The FFI layer from Rust (its traits are Rust traits too): the lifecycle leaves no thread,
//! shell errors become the right wire codes, pairing errors the right kinds. The same layer
//! through real Kotlin and Python is `tests/tests/mobile_ffi.rs`.

use super::*;
use crate::capabilities::Capabilities;
use openclaw_protocol::{ErrorCode, ErrorShape};
use serde_json::json;

/// MobileNode tests count the process's node threads: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn settings(name: &str) -> NodeSettings {
    NodeSettings {
        name: name.into(),
        min_backoff_ms: 100,
        max_backoff_ms: 1000,
        wakeable: true,
    }
}

fn no_capabilities() -> ShellCapabilities {
    ShellCapabilities {
        camera: None,
        location: None,
        notifications: None,
        speech: None,
        device_info: None,
    }
}

/// Threads of this process named like the node's.
/// Waits (5 s at most) until no node thread is left. A joined thread can still be listed in
/// `/proc/self/task` for a moment while the kernel finishes its exit; one that stays is a leak.
fn wait_for_no_node_threads() {
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while node_threads() != 0 {
        assert!(
            std::time::Instant::now() < until,
            "{} node threads left",
            node_threads()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn node_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim().starts_with(THREAD_NAME))
        .count()
}

#[test]
fn start_and_stop_own_the_runtime_and_leave_no_thread() {
    let _one = lock(&ONE_AT_A_TIME);
    let dir = tempfile::tempdir().unwrap();
    let node = MobileNode::new(
        dir.path().display().to_string(),
        settings("phone"),
        no_capabilities(),
        None,
        None,
    )
    .unwrap();
    assert!(!node.status().running);
    for _ in 0..20 {
        node.start().unwrap();
        // Idempotent: a second start neither fails nor makes a second runtime.
        node.start().unwrap();
        assert!(node.status().running);
        // A new thread takes its name once it runs: wait for it to show.
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while node_threads() != 1 {
            assert!(
                std::time::Instant::now() < until,
                "{} node threads",
                node_threads()
            );
            std::thread::yield_now();
        }
        node.stop();
        node.stop();
        assert!(!node.status().running);
        wait_for_no_node_threads();
    }
    // Dropping a running node stops it too.
    node.start().unwrap();
    drop(node);
    wait_for_no_node_threads();
    // The device key is the file fallback (no SecretStore given), owner-only.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("device.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn settings_are_checked_and_the_identity_survives_a_reopen() {
    let _one = lock(&ONE_AT_A_TIME);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().display().to_string();
    let err =
        MobileNode::new(state.clone(), settings(" "), no_capabilities(), None, None).unwrap_err();
    assert!(matches!(err, NodeError::InvalidSettings { .. }), "{err}");
    let mut bad = settings("phone");
    bad.min_backoff_ms = 0;
    let err = MobileNode::new(state.clone(), bad, no_capabilities(), None, None).unwrap_err();
    assert!(matches!(err, NodeError::InvalidSettings { .. }), "{err}");
    let a = MobileNode::new(
        state.clone(),
        settings("phone"),
        no_capabilities(),
        None,
        None,
    )
    .unwrap()
    .device_id();
    let b = MobileNode::new(state, settings("phone"), no_capabilities(), None, None)
        .unwrap()
        .device_id();
    assert_eq!(a, b);
}

#[derive(Default)]
struct Keys(Mutex<BTreeMap<String, Vec<u8>>>);

impl SecretStore for Keys {
    fn get(&self, key: String) -> Result<Option<Vec<u8>>, ShellError> {
        Ok(lock(&self.0).get(&key).cloned())
    }
    fn set(&self, key: String, value: Vec<u8>) -> Result<(), ShellError> {
        lock(&self.0).insert(key, value);
        Ok(())
    }
}

struct Locked;

impl SecretStore for Locked {
    fn get(&self, _: String) -> Result<Option<Vec<u8>>, ShellError> {
        Err(ShellError::Denied {
            reason: "the keychain is locked".into(),
        })
    }
    fn set(&self, _: String, _: Vec<u8>) -> Result<(), ShellError> {
        unreachable!("never asked to keep a key it could not read")
    }
}

#[test]
fn the_device_key_goes_to_the_shells_secret_store_and_its_failure_is_a_typed_error() {
    let _one = lock(&ONE_AT_A_TIME);
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(Keys::default());
    let node = MobileNode::new(
        dir.path().display().to_string(),
        settings("phone"),
        no_capabilities(),
        Some(keys.clone()),
        None,
    )
    .unwrap();
    let seed = lock(&keys.0).get(secrets::DEVICE_KEY).cloned().unwrap();
    assert_eq!(seed.len(), 32);
    assert!(!dir.path().join("device.key").exists());
    let again = MobileNode::new(
        dir.path().display().to_string(),
        settings("phone"),
        no_capabilities(),
        Some(keys),
        None,
    )
    .unwrap();
    assert_eq!(node.device_id(), again.device_id());

    let other = tempfile::tempdir().unwrap();
    let err = MobileNode::new(
        other.path().display().to_string(),
        settings("phone"),
        no_capabilities(),
        Some(Arc::new(Locked)),
        None,
    )
    .unwrap_err();
    assert!(
        matches!(&err, NodeError::State { reason } if reason.contains("the keychain is locked")),
        "{err}"
    );
}

struct Camera(Result<Photo, ShellError>);

impl CameraProvider for Camera {
    fn list(&self) -> Result<Vec<CameraDevice>, ShellError> {
        Ok(vec![])
    }
    fn snap(&self, _: Option<u32>) -> Result<Photo, ShellError> {
        self.0.clone()
    }
}

struct Here;

impl LocationProvider for Here {
    fn current(&self, precise: bool) -> Result<Location, ShellError> {
        Ok(Location {
            latitude: 1.5,
            longitude: -2.25,
            accuracy_m: if precise { 3.0 } else { 300.0 },
            altitude_m: None,
            timestamp_ms: 7,
        })
    }
}

#[derive(Default)]
struct Heard(Mutex<Vec<NodeEvent>>);

impl NodeEventListener for Heard {
    fn on_event(&self, event: NodeEvent) -> Result<(), ShellError> {
        lock(&self.0).push(event);
        Ok(())
    }
}

async fn invoke(
    camera: Result<Photo, ShellError>,
    method: &str,
    params: serde_json::Value,
) -> (
    Result<serde_json::Value, CapabilityErrorCode>,
    Vec<NodeEvent>,
) {
    let heard = Arc::new(Heard::default());
    let events = Events(Some(heard.clone()));
    let shell = shell::Shell {
        camera: Some(Arc::new(Camera(camera))),
        location: Some(Arc::new(Here)),
        ..Default::default()
    };
    let caps: Arc<Capabilities> = Arc::new(shell::capabilities(shell, &events).unwrap());
    let result = caps
        .invoke(method, params)
        .await
        .map_err(|e| CapabilityErrorCode(e.code(), e.to_string()));
    let heard = lock(&heard.0).clone();
    (result, heard)
}

#[derive(Debug)]
struct CapabilityErrorCode(ErrorCode, String);

fn jpeg() -> Photo {
    Photo {
        jpeg: vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 0xFF, 0xD9],
        width: 1,
        height: 1,
    }
}

#[tokio::test]
async fn shell_capabilities_answer_and_their_errors_get_the_right_codes() {
    let (ok, heard) = invoke(Ok(jpeg()), "camera.snap", json!({})).await;
    let image = ok.unwrap();
    assert_eq!(image["format"], "jpeg");
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(image["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(bytes, jpeg().jpeg);
    assert_eq!(
        heard,
        [NodeEvent::Invoked {
            method: "camera.snap".into(),
            ok: true,
            error: None
        }]
    );

    let (fix, _) = invoke(Ok(jpeg()), "location.get", json!({"precise": false})).await;
    let fix = fix.unwrap();
    assert_eq!(
        (fix["latitude"].as_f64(), fix["accuracy_m"].as_f64()),
        (Some(1.5), Some(300.0))
    );

    for (thrown, code) in [
        (
            ShellError::Unavailable {
                reason: "no back camera".into(),
            },
            ErrorCode::CameraUnavailable,
        ),
        (
            ShellError::Denied {
                reason: "not allowed".into(),
            },
            ErrorCode::CameraUnavailable,
        ),
        (
            ShellError::Failed {
                reason: "driver".into(),
            },
            ErrorCode::CapabilityFailed,
        ),
        // What uniffi makes of an exception the shell did not declare.
        (
            uniffi::UnexpectedUniFFICallbackError::new("java.lang.IllegalStateException: boom")
                .into(),
            ErrorCode::CapabilityFailed,
        ),
    ] {
        let (err, heard) = invoke(Err(thrown.clone()), "camera.snap", json!({})).await;
        let err = err.unwrap_err();
        assert_eq!(err.0, code, "{thrown:?}: {err:?}");
        assert!(matches!(&heard[..], [NodeEvent::Invoked { ok: false, .. }]));
    }
    let (err, _) = invoke(
        Err(uniffi::UnexpectedUniFFICallbackError::new("boom").into()),
        "camera.snap",
        json!({}),
    )
    .await;
    assert!(err.unwrap_err().1.contains("the app's handler threw: boom"));
    // Not a JPEG: refused at the node, not passed on to the model.
    let png = Photo {
        jpeg: b"\x89PNG".to_vec(),
        width: 1,
        height: 1,
    };
    let (err, _) = invoke(Ok(png), "camera.snap", json!({})).await;
    assert_eq!(err.unwrap_err().0, ErrorCode::CapabilityFailed);
}

#[test]
fn pairing_failures_map_to_their_kinds() {
    use crate::pair_out::PairOutError;
    use openclaw_node_link::exchange::ExchangeError;
    use openclaw_pairing::PairingError;
    let refused = |e: PairingError| PairOutError::Exchange {
        addr: "gw:1".into(),
        source: ExchangeError::Refused(ErrorShape::new(ErrorCode::NotPaired, e.to_string())),
    };
    let kind = |e: PairOutError| std::mem::discriminant(&NodeError::from(e));
    let of = |e: NodeError| std::mem::discriminant(&e);
    let reason = String::new;
    assert_eq!(
        kind(refused(PairingError::Mismatch)),
        of(NodeError::WrongCode { reason: reason() })
    );
    assert_eq!(
        kind(PairOutError::Code(PairingError::Mismatch)),
        of(NodeError::WrongCode { reason: reason() })
    );
    assert_eq!(
        kind(refused(PairingError::Burned)),
        of(NodeError::CodeUsedUp { reason: reason() })
    );
    assert_eq!(
        kind(refused(PairingError::Expired)),
        of(NodeError::CodeExpired { reason: reason() })
    );
    assert_eq!(
        kind(PairOutError::Code(PairingError::BadCode)),
        of(NodeError::InvalidCode { reason: reason() })
    );
    assert_eq!(
        kind(PairOutError::Exchange {
            addr: "gw:1".into(),
            source: ExchangeError::TimedOut
        }),
        of(NodeError::Unreachable { reason: reason() })
    );
    // A refusal that is no pairing error (e.g. the gateway shows no code): busy, with its text.
    let other = PairOutError::Exchange {
        addr: "gw:1".into(),
        source: ExchangeError::Refused(ErrorShape::new(
            ErrorCode::NotPaired,
            "no pairing code is shown",
        )),
    };
    let e = NodeError::from(other);
    assert!(
        matches!(&e, NodeError::Busy { reason } if reason.contains("no pairing code is shown")),
        "{e}"
    );
}

#[test]
fn calls_from_inside_a_runtime_are_refused_not_deadlocked() {
    let _one = lock(&ONE_AT_A_TIME);
    let dir = tempfile::tempdir().unwrap();
    let node = MobileNode::new(
        dir.path().display().to_string(),
        settings("phone"),
        no_capabilities(),
        None,
        None,
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let err = rt.block_on(async { node.pair("127.0.0.1:1".into(), "123456".into()) });
    assert!(matches!(err, Err(NodeError::Runtime { .. })), "{err:?}");
    let err = rt.block_on(async { node.start() });
    assert!(matches!(err, Err(NodeError::Runtime { .. })), "{err:?}");
    assert!(!node.forget_gateway("nobody".into()).unwrap());
}
