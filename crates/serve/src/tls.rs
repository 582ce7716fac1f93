//! HTTPS: a rustls acceptor from a PEM certificate chain and key, offering the given
//! protocols by ALPN (`wedge serve` HTTP/2 and HTTP/1.1, the daemon's API HTTP/1.1).

use crate::ServeError;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// Reads the certificate chain and private key and builds an acceptor offering `alpn`.
pub fn acceptor(cert: &Path, key: &Path, alpn: &[&[u8]]) -> Result<TlsAcceptor, ServeError> {
    let tls_error = |path: &Path, message: String| ServeError::Tls {
        path: path.to_path_buf(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| tls_error(cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(tls_error(cert, "no certificate in the file".into()));
    }
    let private_key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| tls_error(key, e.to_string()))?;
    // Named explicitly: wedge's dependencies carry two rustls providers.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, private_key)
        .map_err(|e| tls_error(key, e.to_string()))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(TlsAcceptor::from(Arc::new(config)))
}
