//! Secrets by name: API keys, bot tokens and device keys, kept by the OS keyring (macOS Keychain,
//! the Secret Service on Linux desktops, Windows Credential Manager) through `keyring-core` and
//! the platform's store crate, or in owner-only files where no keyring exists.
//!
//! Every keyring call is bounded: a locked Secret Service collection answers a read by asking a
//! prompter to unlock it, and on a headless machine that prompt never comes, so a call would
//! otherwise wait forever. Calls run on a short-lived thread and the caller gets
//! [`SecretError::TimedOut`] after the limit; while such a call is still stuck, later calls fail
//! at once instead of piling up threads behind it.
//!
//! Nothing here is done at start-up: the keyring is reached on the first call that needs it.

mod file;
mod keyring;

pub use file::FileSecrets;
pub use keyring::{DEFAULT_TIMEOUT, OsKeyring};

/// The service name secrets are kept under in the OS keyring (`service` in Secret Service
/// attributes, the Keychain item's service, the Credential Manager target's prefix).
pub const SERVICE: &str = "openclaw";

/// The longest secret name accepted.
pub const MAX_NAME_CHARS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "`{0}` is not a secret name: use 1 to {MAX_NAME_CHARS} letters, digits, `.`, `-` or `_`"
    )]
    BadName(String),
    #[error(
        "there is no OS keyring to keep secrets in here ({reason}); on a Linux desktop a Secret Service (GNOME Keyring, KeePassXC) must run on the session D-Bus; on a server, pass the secret in an environment variable instead"
    )]
    NoKeyring { reason: String },
    #[error(
        "the OS keyring did not answer within {secs} s to {what}: it is probably locked and waiting for a password prompt; unlock it (log in to the desktop, or `gnome-keyring-daemon --unlock`) and try again"
    )]
    TimedOut { what: String, secs: u64 },
    #[error("the OS keyring could not {what}: {reason}")]
    Keyring { what: String, reason: String },
    #[error("cannot {what} {path}: {source}")]
    File {
        what: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where secrets are kept, by name.
pub trait SecretStore: Send + Sync + std::fmt::Debug {
    /// The secret called `name`, or `None` when there is none.
    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, SecretError>;
    /// Keeps `value` as `name`, replacing what was there.
    fn set(&self, name: &str, value: &[u8]) -> Result<(), SecretError>;
    /// Removes `name`; whether there was one.
    fn delete(&self, name: &str) -> Result<bool, SecretError>;
    /// Where the secrets are, in words, for messages ("the OS keyring", "files in /x").
    fn place(&self) -> String;
}

/// Checks that `name` is a secret name: what config references (`${keyring:NAME}`) and the
/// control API accept.
pub fn check_name(name: &str) -> Result<(), SecretError> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(SecretError::BadName(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in [
            "anthropic",
            "telegram.bot_token",
            "a-b_c.9",
            &"x".repeat(64),
        ] {
            check_name(good).unwrap();
        }
        for bad in [
            "",
            ".hidden",
            "../up",
            "a/b",
            "a b",
            "ключ",
            "x\0",
            &"x".repeat(65),
        ] {
            assert!(
                matches!(check_name(bad), Err(SecretError::BadName(_))),
                "{bad:?}"
            );
        }
    }
}
