//! The device key in the phone's keychain: a [`SecretStore`] the shell implements (iOS Keychain,
//! Android Keystore-backed storage) behind the library's [`KeyStore`]. A shell that passes
//! none gets the desktop's store (`crate::device_keys`: the OS keyring, else `device.key`, mode
//! 0600, in the state dir).

use super::types::ShellError;
use crate::identity::{KeyStore, NodeError};
use std::sync::Arc;

/// The name the device key's seed is kept under.
pub const DEVICE_KEY: &str = "openclaw-node.device-key";

/// Secrets kept by the platform, by name.
#[uniffi::export(with_foreign)]
pub trait SecretStore: Send + Sync {
    /// The secret called `key`, or `None` when there is none.
    fn get(&self, key: String) -> Result<Option<Vec<u8>>, ShellError>;
    fn set(&self, key: String, value: Vec<u8>) -> Result<(), ShellError>;
}

pub(crate) struct ShellKeys(pub(crate) Arc<dyn SecretStore>);

impl KeyStore for ShellKeys {
    fn load(&self) -> Result<Option<Vec<u8>>, NodeError> {
        self.0
            .get(DEVICE_KEY.to_owned())
            .map_err(|e| NodeError::KeyStore {
                what: "read",
                reason: e.to_string(),
            })
    }

    fn store(&self, seed: &[u8]) -> Result<(), NodeError> {
        self.0
            .set(DEVICE_KEY.to_owned(), seed.to_vec())
            .map_err(|e| NodeError::KeyStore {
                what: "keep",
                reason: e.to_string(),
            })
    }
}
