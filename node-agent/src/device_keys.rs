//! Where a desktop node keeps its device key: the OS keyring when there is one (Keychain, the
//! Secret Service, Credential Manager), else `device.key` (0600) in the state dir, chosen with
//! `OPENCLAW_KEY_STORE` (`auto`, the default; `keyring`; `file`).
//!
//! A key that exists is never replaced, wherever it is: a node that already has `device.key`
//! keeps it, and a keyring that holds a key but cannot be read right now (locked, not answering)
//! is an error that says so, rather than a new identity that would unpair every gateway. Only a
//! key being made for the first time falls back to the file when the keyring cannot take it.
//! A key kept in the keyring leaves a note in the state dir (`device.key.in-keyring`, no secret
//! in it), so a later start that finds no keyring at all says the key is there rather than
//! making a new one.

use crate::identity::{FileKeyStore, KeyStore, NodeError};
use openclaw_secrets::{OsKeyring, SecretError, SecretStore};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// The note a key kept in the keyring leaves in the state dir.
const IN_KEYRING_NOTE: &str = "device.key.in-keyring";

/// The variable that chooses the store.
pub const KEY_STORE_ENV: &str = "OPENCLAW_KEY_STORE";

/// Which store keeps a new device key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStoreChoice {
    /// The keyring where one answers, else the file.
    Auto,
    /// The keyring, or an error.
    Keyring,
    /// The file only.
    File,
}

impl KeyStoreChoice {
    /// The choice `OPENCLAW_KEY_STORE` makes (`auto` when unset).
    pub fn from_env() -> Result<Self, NodeError> {
        match std::env::var(KEY_STORE_ENV) {
            Err(_) => Ok(Self::Auto),
            Ok(v) => match v.trim() {
                "" | "auto" => Ok(Self::Auto),
                "keyring" => Ok(Self::Keyring),
                "file" => Ok(Self::File),
                other => Err(NodeError::KeyStore {
                    what: "choose a store for",
                    reason: format!("{KEY_STORE_ENV}=`{other}` is not auto, keyring or file"),
                }),
            },
        }
    }
}

/// The device key in the OS keyring or in `device.key`, as the crate doc says.
pub struct DesktopKeyStore {
    file: FileKeyStore,
    note: std::path::PathBuf,
    keyring: OsKeyring,
    account: String,
    choice: KeyStoreChoice,
    /// The keyring said it does not exist here: the file it is.
    no_keyring: AtomicBool,
}

impl DesktopKeyStore {
    /// The store for the node in `state_dir`. Each state dir is its own node, so its key has
    /// its own keyring entry, named after the directory's path.
    pub fn new(state_dir: &Path, choice: KeyStoreChoice, keyring: OsKeyring) -> Self {
        let path = std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_owned());
        let digest = Sha256::digest(path.as_os_str().as_encoded_bytes());
        Self {
            file: FileKeyStore::in_dir(state_dir),
            note: state_dir.join(IN_KEYRING_NOTE),
            keyring,
            account: format!("node.device-key.{}", &hex::encode(digest)[..16]),
            choice,
            no_keyring: AtomicBool::new(false),
        }
    }

    /// The keyring entry's name (the account under the `openclaw` service).
    pub fn account(&self) -> &str {
        &self.account
    }

    fn keyring_error(&self, what: &'static str, e: SecretError) -> NodeError {
        NodeError::KeyStore {
            what,
            reason: format!(
                "{e} (or set {KEY_STORE_ENV}=file to keep a new key in the state dir instead; gateways paired with the old key must then pair again)"
            ),
        }
    }
}

impl KeyStore for DesktopKeyStore {
    fn load(&self) -> Result<Option<Vec<u8>>, NodeError> {
        if let Some(seed) = self.file.load()? {
            return Ok(Some(seed));
        }
        if self.choice == KeyStoreChoice::File {
            return Ok(None);
        }
        match self.keyring.get(&self.account) {
            Ok(seed) => Ok(seed),
            Err(SecretError::NoKeyring { reason })
                if self.choice == KeyStoreChoice::Auto && !self.note.exists() =>
            {
                tracing::debug!("no OS keyring ({reason}): the device key is kept in a file");
                self.no_keyring.store(true, Ordering::Release);
                Ok(None)
            }
            Err(e) => Err(self.keyring_error("read", e)),
        }
    }

    fn store(&self, seed: &[u8]) -> Result<(), NodeError> {
        if self.choice == KeyStoreChoice::File || self.no_keyring.load(Ordering::Acquire) {
            return self.file.store(seed);
        }
        match self.keyring.set(&self.account, seed) {
            Ok(()) => std::fs::write(
                &self.note,
                format!(
                    "this node's device key is in the OS keyring: service openclaw, account {}\n",
                    self.account
                ),
            )
            .map_err(|source| NodeError::Io {
                what: "cannot write",
                path: self.note.clone(),
                source,
            }),
            // A new key only: nothing is lost by keeping it in the file instead.
            Err(e) if self.choice == KeyStoreChoice::Auto => {
                tracing::warn!(
                    "the OS keyring could not keep the new device key ({e}); it is kept in the state dir instead"
                );
                self.file.store(seed)
            }
            Err(e) => Err(self.keyring_error("keep", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    fn mock_keyring() -> OsKeyring {
        let store = keyring_core::mock::Store::new().unwrap();
        OsKeyring::with_opener(
            "openclaw-test",
            Duration::from_secs(5),
            Arc::new(move || Ok(store.clone())),
        )
    }

    fn no_keyring() -> OsKeyring {
        OsKeyring::with_opener(
            "openclaw-test",
            Duration::from_secs(5),
            Arc::new(|| {
                Err(keyring_core::Error::NoStorageAccess(
                    "no session bus".into(),
                ))
            }),
        )
    }

    /// Like a locked Secret Service collection: reading waits for a prompt that never comes.
    fn locked_keyring() -> OsKeyring {
        OsKeyring::with_opener(
            "openclaw-test",
            Duration::from_millis(100),
            Arc::new(|| {
                std::thread::sleep(Duration::from_secs(2));
                Err(keyring_core::Error::NoStorageAccess("gave up".into()))
            }),
        )
    }

    #[test]
    fn a_new_key_goes_to_the_keyring_and_no_file_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let keys = DesktopKeyStore::new(dir.path(), KeyStoreChoice::Auto, mock_keyring());
        assert_eq!(keys.load().unwrap(), None);
        keys.store(&[7; 32]).unwrap();
        assert_eq!(keys.load().unwrap(), Some(vec![7; 32]));
        assert!(!dir.path().join("device.key").exists());
        assert!(keys.account().starts_with("node.device-key."));
    }

    #[test]
    fn an_existing_file_key_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        FileKeyStore::in_dir(dir.path()).store(&[1; 32]).unwrap();
        let keys = DesktopKeyStore::new(dir.path(), KeyStoreChoice::Keyring, mock_keyring());
        assert_eq!(keys.load().unwrap(), Some(vec![1; 32]));
    }

    #[test]
    fn no_keyring_means_the_file_unless_the_keyring_is_required() {
        let dir = tempfile::tempdir().unwrap();
        let keys = DesktopKeyStore::new(dir.path(), KeyStoreChoice::Auto, no_keyring());
        assert_eq!(keys.load().unwrap(), None);
        keys.store(&[2; 32]).unwrap();
        assert!(dir.path().join("device.key").exists());

        let other = tempfile::tempdir().unwrap();
        let keys = DesktopKeyStore::new(other.path(), KeyStoreChoice::Keyring, no_keyring());
        let err = keys.load().unwrap_err().to_string();
        assert!(err.contains("no OS keyring"), "{err}");
        assert!(err.contains("OPENCLAW_KEY_STORE=file"), "{err}");
    }

    #[test]
    fn a_key_kept_in_the_keyring_is_not_replaced_when_the_keyring_is_gone_later() {
        let dir = tempfile::tempdir().unwrap();
        let keys = DesktopKeyStore::new(dir.path(), KeyStoreChoice::Auto, mock_keyring());
        keys.store(&[9; 32]).unwrap();
        assert!(dir.path().join(IN_KEYRING_NOTE).exists());
        // A later start with no keyring reachable (no session bus): an error, no new key.
        let later = DesktopKeyStore::new(dir.path(), KeyStoreChoice::Auto, no_keyring());
        let err = later.load().unwrap_err().to_string();
        assert!(err.contains("no OS keyring"), "{err}");
        assert!(!dir.path().join("device.key").exists());
    }

    #[test]
    fn a_keyring_that_cannot_be_read_is_an_error_not_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        let keys = DesktopKeyStore::new(dir.path(), KeyStoreChoice::Auto, locked_keyring());
        let err = keys.load().unwrap_err().to_string();
        assert!(err.contains("locked"), "{err}");
        assert!(!dir.path().join("device.key").exists());
    }

    #[test]
    fn file_choice_never_touches_the_keyring() {
        let dir = tempfile::tempdir().unwrap();
        let keys = DesktopKeyStore::new(dir.path(), KeyStoreChoice::File, locked_keyring());
        assert_eq!(keys.load().unwrap(), None);
        keys.store(&[3; 32]).unwrap();
        assert_eq!(keys.load().unwrap(), Some(vec![3; 32]));
    }
}
