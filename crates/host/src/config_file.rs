//! Loading the configuration: the file (or the defaults), then the `OPENCLAW_*` environment
//! overrides, keeping the text for the change audit.

use openclaw_config::{Config, ConfigError, Env, ProcessEnv};
use openclaw_secrets::{OsKeyring, SecretStore};
use std::path::{Path, PathBuf};

/// What config is expanded with: the process environment for `${VAR}`, and the OS keyring for
/// `${keyring:NAME}` (reached only when the file has such a reference).
#[derive(Default)]
pub struct HostEnv {
    keyring: OsKeyring,
}

impl Env for HostEnv {
    fn var(&self, name: &str) -> Option<String> {
        ProcessEnv.var(name)
    }

    fn secret(&self, name: &str) -> Result<Option<String>, String> {
        match self.keyring.get(name) {
            Ok(None) => Ok(None),
            Ok(Some(bytes)) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| format!("the keyring's `{name}` is not text")),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// A loaded configuration and where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub file: Option<PathBuf>,
    /// The file's text, for the change audit.
    pub text: Option<String>,
}

impl Loaded {
    /// The file and the SHA-256 of its text, which the gateway compares between runs.
    pub fn digest(&self) -> Option<(PathBuf, String)> {
        use sha2::{Digest, Sha256};
        match (&self.file, &self.text) {
            (Some(file), Some(text)) => {
                Some((file.clone(), hex::encode(Sha256::digest(text.as_bytes()))))
            }
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read config file {}{}: {source}", path.display(), if *missing { " (it does not exist; run without --config to use the defaults)" } else { "" })]
    Read {
        path: PathBuf,
        missing: bool,
        #[source]
        source: std::io::Error,
    },
    /// The file (or the environment overrides) is invalid.
    #[error("{0}")]
    Invalid(ConfigError),
}

/// Loads `file` (the defaults when `None`), then applies the environment's overrides.
pub fn load(file: Option<&Path>) -> Result<Loaded, LoadError> {
    let (mut config, text) = match file {
        None => (Config::default(), None),
        Some(path) => {
            let text = read(path)?;
            let config =
                openclaw_config::parse(&text, &path.display().to_string(), &HostEnv::default())
                    .map_err(LoadError::Invalid)?;
            (config, Some(text))
        }
    };
    openclaw_config::apply_env_overrides(&mut config, &ProcessEnv).map_err(LoadError::Invalid)?;
    Ok(Loaded {
        config,
        file: file.map(Path::to_owned),
        text,
    })
}

/// The config file's text.
pub fn read(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        missing: !path.exists(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_says_so_and_a_bad_one_is_invalid() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.yaml");
        let err = load(Some(&missing)).unwrap_err();
        assert!(err.to_string().contains("it does not exist"), "{err}");
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "gateway: [").unwrap();
        assert!(matches!(load(Some(&bad)), Err(LoadError::Invalid(_))));
    }

    #[test]
    fn a_file_has_a_digest_and_the_defaults_none() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.yaml");
        std::fs::write(&file, "gateway:\n  port: 18789\n").unwrap();
        let loaded = load(Some(&file)).unwrap();
        let (path, digest) = loaded.digest().unwrap();
        assert_eq!(path, file);
        assert_eq!(digest.len(), 64);
        assert!(load(None).unwrap().digest().is_none());
    }
}
