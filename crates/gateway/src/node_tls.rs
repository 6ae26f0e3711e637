//! TLS to device nodes. A node's certificate is self-signed, so it is trusted by its pinned
//! SHA-256 fingerprint (learned inside the confirmed pairing channel), not by a CA. During
//! pairing no pin exists yet: the handshake is accepted and the fingerprint it showed is kept,
//! to be compared with the one the node seals into the pairing exchange — a TLS
//! man-in-the-middle shows a different certificate and is caught there.

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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A node's TLS listener answering one line, on loopback.
    async fn node_server(dir: &std::path::Path) -> (std::net::SocketAddr, String) {
        let identity = openclaw_node::NodeIdentity::load_or_create(dir).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(identity.tls_server_config().unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let _ = tls.write_all(b"hello from the node\n").await;
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        (addr, identity.cert_fingerprint())
    }

    async fn dial(
        addr: std::net::SocketAddr,
        pin: Option<String>,
    ) -> (Result<String, String>, Option<String>) {
        let (config, seen) = client_config(pin).unwrap();
        let connector = tokio_rustls::TlsConnector::from(config);
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("openclaw-node").unwrap();
        let result = match connector.connect(name, tcp).await {
            Ok(mut tls) => {
                let mut s = String::new();
                tls.read_to_string(&mut s)
                    .await
                    .map_err(|e| e.to_string())
                    .map(|_| s)
            }
            Err(e) => Err(e.to_string()),
        };
        let seen = seen.lock().unwrap().clone();
        (result, seen)
    }

    #[tokio::test]
    async fn pinned_fingerprint_connects_and_any_other_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, fp) = node_server(dir.path()).await;
        // Pairing: no pin yet; the fingerprint shown is recorded.
        let (got, seen) = dial(addr, None).await;
        assert_eq!(got.unwrap(), "hello from the node\n");
        assert_eq!(seen.as_deref(), Some(fp.as_str()));
        // Paired: the pin matches.
        let (got, _) = dial(addr, Some(fp.clone())).await;
        assert!(got.is_ok());
        // Another device (another certificate) at the address the gateway knows: refused.
        let other = tempfile::tempdir().unwrap();
        let (impostor, impostor_fp) = node_server(other.path()).await;
        assert_ne!(impostor_fp, fp);
        let (got, _) = dial(impostor, Some(fp)).await;
        let err = got.unwrap_err();
        assert!(err.contains("not the one paired"), "{err}");
    }
}
