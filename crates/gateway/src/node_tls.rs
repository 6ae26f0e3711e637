//! TLS to device nodes: the pinned-certificate client lives in `openclaw-node-link` (the node
//! link's transport where the gateway dials the node); re-exported here, where the gateway's
//! callers and tests have always found it.

pub use openclaw_node_link::tls::{SeenFingerprint, client_config, fingerprint};

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::ServerName;
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
