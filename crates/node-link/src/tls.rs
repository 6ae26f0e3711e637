//! TLS to device nodes, for the transport where the gateway dials the node. A node's certificate
//! is self-signed, so it is trusted by its pinned SHA-256 fingerprint (learned inside the
//! confirmed pairing channel), not by a CA. During pairing no pin exists yet: the handshake is
//! accepted and the fingerprint it showed is kept, to be compared with the one the node seals
//! into the pairing exchange — a TLS man-in-the-middle shows a different certificate and is
//! caught there.

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};

/// Lowercase hex SHA-256 of a certificate's DER bytes.
pub fn fingerprint(cert: &[u8]) -> String {
    hex::encode(Sha256::digest(cert))
}

#[derive(Debug)]
struct PinnedCert {
    pin: Option<String>,
    seen: Arc<Mutex<Option<String>>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = fingerprint(end_entity.as_ref());
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(got.clone());
        }
        match &self.pin {
            Some(pin) if *pin != got => Err(rustls::Error::General(format!(
                "the node's certificate ({got}) is not the one paired ({pin}): a different device answers at this address; pair again if the node was reinstalled"
            ))),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    // The handshake signature is still checked: the peer must hold the pinned certificate's key.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The fingerprint a node's TLS handshake showed, filled in during the handshake.
pub type SeenFingerprint = Arc<Mutex<Option<String>>>;

/// Client settings for dialing a node: pinned to `pin`, or (pairing) open, with the fingerprint
/// the node showed written to the returned cell.
pub fn client_config(
    pin: Option<String>,
) -> Result<(Arc<rustls::ClientConfig>, SeenFingerprint), rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let seen = Arc::new(Mutex::new(None));
    let verifier = Arc::new(PinnedCert {
        pin,
        seen: seen.clone(),
        provider: provider.clone(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok((Arc::new(config), seen))
}
