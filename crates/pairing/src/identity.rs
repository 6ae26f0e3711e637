//! Long-term device identities: Ed25519 keys, device ids, and the signed-nonce proof both sides
//! give on every connection after pairing.

use crate::{PairingError, b64, unb64};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

/// A device's Ed25519 key pair.
pub struct DeviceKey {
    signing: SigningKey,
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceKey({})", self.device_id())
    }
}

impl DeviceKey {
    pub fn generate() -> Self {
        Self {
            signing: SigningKey::from_bytes(&rand::random::<[u8; 32]>()),
        }
    }

    /// From the 32-byte secret seed kept on disk.
    pub fn from_seed(seed: &[u8]) -> Result<Self, PairingError> {
        let seed: [u8; 32] = seed.try_into().map_err(|_| {
            PairingError::Malformed(format!("a device key is 32 bytes, not {}", seed.len()))
        })?;
        Ok(Self {
            signing: SigningKey::from_bytes(&seed),
        })
    }

    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The raw public key, base64url (as it travels on the wire).
    pub fn public_key(&self) -> String {
        b64(self.signing.verifying_key().as_bytes())
    }

    /// Lowercase hex SHA-256 of the raw public key.
    pub fn device_id(&self) -> String {
        hex::encode(Sha256::digest(self.signing.verifying_key().as_bytes()))
    }

    /// Signs the proof for a connection challenge.
    pub fn sign_challenge(&self, challenge: &Challenge) -> String {
        b64(&self.signing.sign(challenge.message().as_bytes()).to_bytes())
    }
}

/// The device id of a base64url public key.
pub fn device_id_of(public_key: &str) -> Result<String, PairingError> {
    let raw = unb64("public_key", public_key)?;
    Ok(hex::encode(Sha256::digest(raw)))
}

/// What a device signs to prove itself on a connection: the `|`-joined role, both device ids,
/// the peer's nonce and its timestamp, so a signature is good for one connection only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `gateway` or `node`: who signs.
    pub role: &'static str,
    pub signer_id: String,
    pub peer_id: String,
    pub nonce: String,
    /// Milliseconds since the Unix epoch, as sent with the nonce.
    pub ts: i64,
}

impl Challenge {
    fn message(&self) -> String {
        format!(
            "openclaw-connect-v1|{}|{}|{}|{}|{}",
            self.role, self.signer_id, self.peer_id, self.nonce, self.ts
        )
    }
}

/// Checks a challenge signature against a (pinned) base64url public key.
pub fn verify_challenge(
    public_key: &str,
    challenge: &Challenge,
    signature: &str,
) -> Result<(), PairingError> {
    let raw: [u8; 32] = unb64("public_key", public_key)?
        .try_into()
        .map_err(|_| PairingError::Malformed("a public key is 32 bytes".into()))?;
    let key = VerifyingKey::from_bytes(&raw)
        .map_err(|_| PairingError::Malformed("not an Ed25519 public key".into()))?;
    let sig: [u8; 64] = unb64("signature", signature)?
        .try_into()
        .map_err(|_| PairingError::Malformed("a signature is 64 bytes".into()))?;
    key.verify(challenge.message().as_bytes(), &Signature::from_bytes(&sig))
        .map_err(|_| PairingError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(nonce: &str) -> Challenge {
        Challenge {
            role: "node",
            signer_id: "n".into(),
            peer_id: "g".into(),
            nonce: nonce.into(),
            ts: 1_800_000_000_000,
        }
    }

    #[test]
    fn signatures_prove_the_key_for_one_challenge_only() {
        let key = DeviceKey::generate();
        let again = DeviceKey::from_seed(&key.seed()).unwrap();
        assert_eq!(key.device_id(), again.device_id());
        assert_eq!(key.device_id(), device_id_of(&key.public_key()).unwrap());
        assert_eq!(key.device_id().len(), 64);
        let sig = key.sign_challenge(&challenge("abc"));
        verify_challenge(&key.public_key(), &challenge("abc"), &sig).unwrap();
        // Another nonce (a replay on a new connection), or another key: refused.
        assert_eq!(
            verify_challenge(&key.public_key(), &challenge("abd"), &sig),
            Err(PairingError::Mismatch)
        );
        let other = DeviceKey::generate();
        assert_eq!(
            verify_challenge(&other.public_key(), &challenge("abc"), &sig),
            Err(PairingError::Mismatch)
        );
        assert!(matches!(
            verify_challenge("###", &challenge("abc"), &sig),
            Err(PairingError::Malformed(_))
        ));
        assert!(DeviceKey::from_seed(&[1, 2, 3]).is_err());
    }
}
