//! The node's identity on disk: `device.key` (the Ed25519 seed), `tls.crt` and `tls.key` (a
//! self-signed certificate made on first run with rcgen). Secrets are written with mode 0600,
//! and a damaged file is an error that says how to recover, never silently replaced: replacing
//! it would unpair every gateway.
//!
//! The device key's seed goes through a [`KeyStore`]: a file in the state dir by default
//! ([`FileKeyStore`]), the platform's keychain when a phone's shell brings one (`crate::ffi`).

use openclaw_pairing::identity::DeviceKey;
use rustls::pki_types::pem::PemObject;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

const KEY_FILE: &str = "device.key";
const CERT_FILE: &str = "tls.crt";
const CERT_KEY_FILE: &str = "tls.key";

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is damaged ({reason}); move it away to make a new identity — every gateway will then have to pair again"
    )]
    Damaged { path: PathBuf, reason: String },
    #[error("cannot make the TLS certificate: {0}")]
    Certificate(String),
    #[error("the secret store could not {what} the device key: {reason}")]
    KeyStore { what: &'static str, reason: String },
}

/// Where the device key's seed (32 bytes, the node's whole identity to its gateways) is kept.
pub trait KeyStore: Send + Sync {
    /// The seed, or `None` on first run.
    fn load(&self) -> Result<Option<Vec<u8>>, NodeError>;
    /// Keeps a new seed (first run only: a seed is never replaced, that would unpair every
    /// gateway).
    fn store(&self, seed: &[u8]) -> Result<(), NodeError>;
}

/// The seed in `<state dir>/device.key`, mode 0600, created once and never overwritten.
#[derive(Debug, Clone)]
pub struct FileKeyStore {
    path: PathBuf,
}

impl FileKeyStore {
    pub fn in_dir(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join(KEY_FILE),
        }
    }
}

impl KeyStore for FileKeyStore {
    fn load(&self) -> Result<Option<Vec<u8>>, NodeError> {
        read(&self.path)
    }

    fn store(&self, seed: &[u8]) -> Result<(), NodeError> {
        write_secret(&self.path, seed)
    }
}

/// Everything that identifies this node to gateways.
pub struct NodeIdentity {
    key: DeviceKey,
    cert_pem: String,
    cert_key_pem: String,
    cert_der: Vec<u8>,
}

impl std::fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeIdentity")
            .field("device_id", &self.device_id())
            .field("cert_fingerprint", &self.cert_fingerprint())
            .finish()
    }
}

fn write_secret(path: &Path, bytes: &[u8]) -> Result<(), NodeError> {
    let io = |source| NodeError::Io {
        what: "cannot write",
        path: path.to_owned(),
        source,
    };
    let mut f = openclaw_fs::create_new_private(path).map_err(io)?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(io)
}

fn read(path: &Path) -> Result<Option<Vec<u8>>, NodeError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(NodeError::Io {
            what: "cannot read",
            path: path.to_owned(),
            source,
        }),
    }
}

/// The DER bytes of the certificate in a PEM file.
fn pem_der(pem: &str) -> Option<Vec<u8>> {
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .ok()
        .map(|c| c.as_ref().to_vec())
}

impl NodeIdentity {
    /// Loads the identity from `state_dir`, creating it on first run.
    pub fn load_or_create(state_dir: &Path) -> Result<Self, NodeError> {
        Self::load_or_create_with(state_dir, &FileKeyStore::in_dir(state_dir))
    }

    /// Loads the identity, its device key from `keys` and its certificate from `state_dir`,
    /// creating either on first run.
    pub fn load_or_create_with(state_dir: &Path, keys: &dyn KeyStore) -> Result<Self, NodeError> {
        std::fs::create_dir_all(state_dir).map_err(|source| NodeError::Io {
            what: "cannot create",
            path: state_dir.to_owned(),
            source,
        })?;
        let key = match keys.load()? {
            Some(seed) => DeviceKey::from_seed(&seed).map_err(|e| NodeError::Damaged {
                path: state_dir.join(KEY_FILE),
                reason: e.to_string(),
            })?,
            None => {
                let key = DeviceKey::generate();
                keys.store(&key.seed())?;
                key
            }
        };
        let cert_path = state_dir.join(CERT_FILE);
        let cert_key_path = state_dir.join(CERT_KEY_FILE);
        let (cert_pem, cert_key_pem) = match (read(&cert_path)?, read(&cert_key_path)?) {
            (Some(c), Some(k)) => (
                String::from_utf8(c).map_err(|_| NodeError::Damaged {
                    path: cert_path.clone(),
                    reason: "not PEM text".into(),
                })?,
                String::from_utf8(k).map_err(|_| NodeError::Damaged {
                    path: cert_key_path.clone(),
                    reason: "not PEM text".into(),
                })?,
            ),
            (None, None) => {
                let made = rcgen::generate_simple_self_signed(vec!["openclaw-node".to_owned()])
                    .map_err(|e| NodeError::Certificate(e.to_string()))?;
                let (c, k) = (made.cert.pem(), made.signing_key.serialize_pem());
                write_secret(&cert_key_path, k.as_bytes())?;
                write_secret(&cert_path, c.as_bytes())?;
                (c, k)
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(NodeError::Damaged {
                    path: cert_path,
                    reason: format!("{CERT_FILE} and {CERT_KEY_FILE} must both exist"),
                });
            }
        };
        let cert_der = pem_der(&cert_pem).ok_or_else(|| NodeError::Damaged {
            path: cert_path.clone(),
            reason: "no certificate in it".into(),
        })?;
        // rcgen parses the key itself (pki-types only unwraps the PEM).
        if rcgen::KeyPair::from_pem(&cert_key_pem).is_err() {
            return Err(NodeError::Damaged {
                path: cert_key_path,
                reason: "not a private key".into(),
            });
        }
        Ok(Self {
            key,
            cert_pem,
            cert_key_pem,
            cert_der,
        })
    }

    /// A fresh identity kept in memory only (nothing written): for throwaway nodes such as fuzz
    /// targets and tests. A real node uses [`load_or_create`](Self::load_or_create), since a new
    /// identity unpairs every gateway.
    pub fn ephemeral() -> Result<Self, NodeError> {
        let made = rcgen::generate_simple_self_signed(vec!["openclaw-node".to_owned()])
            .map_err(|e| NodeError::Certificate(e.to_string()))?;
        let (cert_pem, cert_key_pem) = (made.cert.pem(), made.signing_key.serialize_pem());
        Ok(Self {
            key: DeviceKey::generate(),
            cert_der: made.cert.der().to_vec(),
            cert_pem,
            cert_key_pem,
        })
    }

    pub fn key(&self) -> &DeviceKey {
        &self.key
    }

    pub fn device_id(&self) -> String {
        self.key.device_id()
    }

    /// Lowercase hex SHA-256 of the certificate (DER): what gateways pin.
    pub fn cert_fingerprint(&self) -> String {
        hex::encode(Sha256::digest(&self.cert_der))
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn cert_key_pem(&self) -> &str {
        &self.cert_key_pem
    }

    /// TLS server settings presenting this node's certificate. Gateways authenticate by pinning
    /// its fingerprint; they prove themselves after the handshake (signed nonce), not with a
    /// client certificate.
    pub fn tls_server_config(&self) -> Result<std::sync::Arc<rustls::ServerConfig>, NodeError> {
        let cert = rustls::pki_types::CertificateDer::from(self.cert_der.clone());
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(self.cert_key_pem.as_bytes())
            .map_err(|e| NodeError::Certificate(e.to_string()))?;
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| NodeError::Certificate(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .map_err(|e| NodeError::Certificate(e.to_string()))?;
        Ok(std::sync::Arc::new(config))
    }
}

/// This computer's name (`/etc/hostname`), what a node is called unless told otherwise;
/// `None` where there is none.
pub fn host_name() -> Option<String> {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_run_creates_and_later_runs_reload_the_same_identity() {
        let dir = tempfile::tempdir().unwrap();
        let a = NodeIdentity::load_or_create(dir.path()).unwrap();
        let b = NodeIdentity::load_or_create(dir.path()).unwrap();
        assert_eq!(a.device_id(), b.device_id());
        assert_eq!(a.cert_fingerprint(), b.cert_fingerprint());
        assert_eq!(a.cert_fingerprint().len(), 64);
        assert!(a.cert_pem().contains("BEGIN CERTIFICATE"));
        #[cfg(unix)]
        for f in [KEY_FILE, CERT_KEY_FILE] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        // Another state dir is another node.
        let other = tempfile::tempdir().unwrap();
        let c = NodeIdentity::load_or_create(other.path()).unwrap();
        assert_ne!(a.device_id(), c.device_id());
        assert_ne!(a.cert_fingerprint(), c.cert_fingerprint());
    }

    #[test]
    fn damaged_files_are_reported_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        NodeIdentity::load_or_create(dir.path()).unwrap();
        std::fs::write(dir.path().join(KEY_FILE), b"short").unwrap();
        let err = NodeIdentity::load_or_create(dir.path()).unwrap_err();
        assert!(err.to_string().contains("pair again"), "{err}");
        assert_eq!(std::fs::read(dir.path().join(KEY_FILE)).unwrap(), b"short");

        let dir = tempfile::tempdir().unwrap();
        NodeIdentity::load_or_create(dir.path()).unwrap();
        std::fs::remove_file(dir.path().join(CERT_KEY_FILE)).unwrap();
        assert!(matches!(
            NodeIdentity::load_or_create(dir.path()),
            Err(NodeError::Damaged { .. })
        ));

        let dir = tempfile::tempdir().unwrap();
        NodeIdentity::load_or_create(dir.path()).unwrap();
        std::fs::write(
            dir.path().join(CERT_KEY_FILE),
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        assert!(matches!(
            NodeIdentity::load_or_create(dir.path()),
            Err(NodeError::Damaged { .. })
        ));
    }
}
