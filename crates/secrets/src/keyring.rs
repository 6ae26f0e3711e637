//! The OS keyring through `keyring-core`, every call bounded in time (see the crate doc).

use crate::{SERVICE, SecretError, SecretStore, check_name};
use keyring_core::Error as KeyringError;
use keyring_core::api::CredentialStore;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How long a keyring call may take before the caller is told the keyring is not answering.
/// An unlocked keyring answers in milliseconds; a locked one waits for a prompt.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

type Opener = dyn Fn() -> keyring_core::Result<Arc<CredentialStore>> + Send + Sync;

/// The platform's credential store, opened on first use and kept while it works.
pub struct OsKeyring {
    service: String,
    timeout: Duration,
    open: Arc<Opener>,
    store: Arc<Mutex<Option<Arc<CredentialStore>>>>,
    /// Calls that ran past the timeout and have not returned yet.
    stuck: Arc<AtomicUsize>,
}

impl std::fmt::Debug for OsKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OsKeyring")
            .field("service", &self.service)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Default for OsKeyring {
    fn default() -> Self {
        Self::new(SERVICE)
    }
}

impl OsKeyring {
    /// Secrets under `service`, with the platform's store.
    pub fn new(service: &str) -> Self {
        Self::with_opener(service, DEFAULT_TIMEOUT, Arc::new(open_platform_store))
    }

    /// The same with another time limit per call.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// With a store of the caller's (tests: `keyring_core::mock`, or one that never answers).
    pub fn with_opener(service: &str, timeout: Duration, open: Arc<Opener>) -> Self {
        Self {
            service: service.to_owned(),
            timeout,
            open,
            store: Arc::new(Mutex::new(None)),
            stuck: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Whether a keyring answers here: opens the store and reads one name.
    pub fn probe(&self) -> Result<(), SecretError> {
        self.call("be reached", "", |entry| match entry.get_secret() {
            Ok(_) | Err(KeyringError::NoEntry) => Ok(()),
            Err(e) => Err(e),
        })
    }

    /// Runs `op` on the store on a thread of its own and waits at most the timeout for it.
    fn call<T: Send + 'static>(
        &self,
        what: &str,
        name: &str,
        op: impl FnOnce(&keyring_core::Entry) -> keyring_core::Result<T> + Send + 'static,
    ) -> Result<T, SecretError> {
        let what = if name.is_empty() {
            what.to_owned()
        } else {
            format!("{what} `{name}`")
        };
        if self.stuck.load(Ordering::Acquire) > 0 {
            return Err(SecretError::TimedOut {
                what: format!("{what} (an earlier call is still waiting for it)"),
                secs: self.timeout.as_secs().max(1),
            });
        }
        let (tx, rx) = mpsc::sync_channel(1);
        let (open, store, service) = (self.open.clone(), self.store.clone(), self.service.clone());
        // The account of the probe: never written, so reading it only says the store answers.
        let user = if name.is_empty() {
            "openclaw.probe".to_owned()
        } else {
            name.to_owned()
        };
        // Whether the caller gave up on this call; the thread reads it under the same lock as
        // it answers, so a call is either answered or counted as stuck, never both or neither.
        let gave_up = Arc::new(Mutex::new(false));
        let (stuck, thread_gave_up) = (self.stuck.clone(), gave_up.clone());
        let spawned = std::thread::Builder::new()
            .name("openclaw-keyring".into())
            .spawn(move || {
                let result = run(open.as_ref(), &store, &service, &user, op);
                let gave_up = thread_gave_up
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if *gave_up {
                    stuck.fetch_sub(1, Ordering::AcqRel);
                } else {
                    let _ = tx.send(result);
                }
            });
        if let Err(e) = spawned {
            return Err(SecretError::Keyring {
                what,
                reason: format!("no thread for the call: {e}"),
            });
        }
        let answer = match rx.recv_timeout(self.timeout) {
            Ok(answer) => answer,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let mut gave_up = gave_up.lock().unwrap_or_else(PoisonError::into_inner);
                match rx.try_recv() {
                    Ok(answer) => answer,
                    Err(_) => {
                        *gave_up = true;
                        self.stuck.fetch_add(1, Ordering::AcqRel);
                        return Err(SecretError::TimedOut {
                            what,
                            secs: self.timeout.as_secs().max(1),
                        });
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(SecretError::Keyring {
                    what,
                    reason: "the call's thread ended without an answer".into(),
                });
            }
        };
        match answer {
            Ok(value) => Ok(value),
            Err(Failure::Open(e)) => Err(SecretError::NoKeyring {
                reason: e.to_string(),
            }),
            Err(Failure::Call(e)) => Err(keyring_error(what, e)),
        }
    }
}

enum Failure {
    Open(KeyringError),
    Call(KeyringError),
}

fn run<T>(
    open: &Opener,
    store: &Mutex<Option<Arc<CredentialStore>>>,
    service: &str,
    user: &str,
    op: impl FnOnce(&keyring_core::Entry) -> keyring_core::Result<T>,
) -> Result<T, Failure> {
    let opened = {
        let mut slot = store.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.as_ref() {
            Some(s) => s.clone(),
            None => {
                let s = open().map_err(Failure::Open)?;
                *slot = Some(s.clone());
                s
            }
        }
    };
    let entry = opened.build(service, user, None).map_err(Failure::Call)?;
    let result = op(&entry);
    if let Err(KeyringError::NoStorageAccess(_) | KeyringError::PlatformFailure(_)) = &result {
        // The bus or the daemon went away: open again next time rather than reuse a dead link.
        *store.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
    result.map_err(Failure::Call)
}

fn keyring_error(what: String, e: KeyringError) -> SecretError {
    match e {
        KeyringError::NoDefaultStore | KeyringError::NotSupportedByStore(_) => {
            SecretError::NoKeyring {
                reason: e.to_string(),
            }
        }
        other => SecretError::Keyring {
            what,
            reason: other.to_string(),
        },
    }
}

#[allow(unreachable_code)]
fn open_platform_store() -> keyring_core::Result<Arc<CredentialStore>> {
    #[cfg(all(
        unix,
        not(any(target_os = "macos", target_os = "ios", target_os = "android"))
    ))]
    return Ok(zbus_secret_service_keyring_store::Store::new()?);
    #[cfg(target_os = "macos")]
    return Ok(apple_native_keyring_store::keychain::Store::new()?);
    #[cfg(target_os = "windows")]
    return Ok(windows_native_keyring_store::Store::new()?);
    Err(KeyringError::NotSupportedByStore(
        "this platform has no OS keyring this build knows (phones bring their own store)".into(),
    ))
}

impl SecretStore for OsKeyring {
    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, SecretError> {
        check_name(name)?;
        self.call("read", name, |entry| match entry.get_secret() {
            Ok(bytes) => Ok(Some(bytes)),
            Err(KeyringError::NoEntry) => Ok(None),
            Err(e) => Err(e),
        })
    }

    fn set(&self, name: &str, value: &[u8]) -> Result<(), SecretError> {
        check_name(name)?;
        let value = value.to_vec();
        self.call("keep", name, move |entry| {
            match std::str::from_utf8(&value) {
                // Text (API keys, tokens) is kept as a password, so keyring tools show it as text.
                Ok(text) => entry.set_password(text),
                Err(_) => entry.set_secret(&value),
            }
        })
    }

    fn delete(&self, name: &str) -> Result<bool, SecretError> {
        check_name(name)?;
        self.call("remove", name, |entry| match entry.delete_credential() {
            Ok(()) => Ok(true),
            Err(KeyringError::NoEntry) => Ok(false),
            Err(e) => Err(e),
        })
    }

    fn place(&self) -> String {
        format!("the OS keyring (service \"{}\")", self.service)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn mock() -> OsKeyring {
        let store = keyring_core::mock::Store::new().unwrap();
        OsKeyring::with_opener(
            "openclaw-test",
            Duration::from_secs(5),
            Arc::new(move || Ok(store.clone())),
        )
    }

    #[test]
    fn keeps_reads_replaces_and_removes() {
        let keyring = mock();
        keyring.probe().unwrap();
        assert_eq!(keyring.get("anthropic").unwrap(), None);
        keyring.set("anthropic", b"sk-1").unwrap();
        keyring.set("anthropic", b"sk-2").unwrap();
        keyring.set("device", &[0xff, 0, 1]).unwrap();
        assert_eq!(
            keyring.get("anthropic").unwrap().as_deref(),
            Some(&b"sk-2"[..])
        );
        assert_eq!(
            keyring.get("device").unwrap().as_deref(),
            Some(&[0xff, 0, 1][..])
        );
        assert!(keyring.delete("anthropic").unwrap());
        assert!(!keyring.delete("anthropic").unwrap());
        assert!(matches!(
            keyring.get("no/slash"),
            Err(SecretError::BadName(_))
        ));
    }

    #[test]
    fn no_store_is_a_clear_error() {
        let keyring = OsKeyring::with_opener(
            "openclaw-test",
            Duration::from_secs(5),
            Arc::new(|| Err(KeyringError::NoStorageAccess("no session bus".into()))),
        );
        let err = keyring.get("anthropic").unwrap_err();
        assert!(matches!(err, SecretError::NoKeyring { .. }), "{err}");
        assert!(err.to_string().contains("no session bus"), "{err}");
        assert!(err.to_string().contains("environment variable"), "{err}");
    }

    #[test]
    fn a_keyring_that_never_answers_times_out_and_later_calls_fail_fast() {
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        let keyring = OsKeyring::with_opener(
            "openclaw-test",
            Duration::from_millis(200),
            Arc::new(move || {
                // Like a locked collection waiting for its prompt, until the test ends it.
                let _ = release_rx.lock().unwrap().recv();
                Err(KeyringError::NoStorageAccess("released".into()))
            }),
        );
        let started = Instant::now();
        let err = keyring.get("anthropic").unwrap_err();
        assert!(matches!(err, SecretError::TimedOut { .. }), "{err}");
        assert!(err.to_string().contains("locked"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(3));

        let started = Instant::now();
        let err = keyring.set("anthropic", b"x").unwrap_err();
        assert!(err.to_string().contains("still waiting"), "{err}");
        assert!(started.elapsed() < Duration::from_millis(100));

        // Once the stuck call returns, the keyring is tried again.
        release_tx.send(()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while keyring.stuck.load(Ordering::Acquire) > 0 {
            assert!(Instant::now() < deadline, "the stuck call never ended");
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(release_tx);
        let err = keyring.get("anthropic").unwrap_err();
        assert!(matches!(err, SecretError::NoKeyring { .. }), "{err}");
    }
}
