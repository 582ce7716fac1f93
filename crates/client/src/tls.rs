//! TLS client settings on ring, for a daemon's TCP listener and an MQTT broker alike.

use crate::ClientError;
use std::path::Path;
use std::sync::Arc;

/// A rustls client configuration on ring, trusting `ca` (PEM) or the public web roots.
pub fn client_config(ca: Option<&Path>) -> Result<rustls::ClientConfig, ClientError> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
                .and_then(|c| c.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    ClientError::Invalid(format!("cannot read `{}`: {e}", path.display()))
                })?;
            for cert in certs {
                roots.add(cert).map_err(|e| {
                    ClientError::Invalid(format!("bad certificate in `{}`: {e}", path.display()))
                })?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Invalid(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
