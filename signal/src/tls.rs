//! TLS for the relay: loading the certificate and key, so clients can use `wss://`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;

/// Why TLS could not be set up; each names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("could not read certificates from {0}: {1}; pass a PEM file with --tls-cert")]
    Cert(PathBuf, String),
    #[error("{0} holds no certificate; pass a PEM file with the server certificate (and its chain)")]
    NoCert(PathBuf),
    #[error("could not read a private key from {0}: {1}; pass a PEM private key with --tls-key")]
    Key(PathBuf, String),
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(String),
}

/// Builds the server side of TLS from PEM files.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect)
        .map_err(|e| TlsError::Cert(cert.to_owned(), e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::NoCert(cert.to_owned()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key(key.to_owned(), e.to_string()))?;
    let config =
        ServerConfig::builder_with_provider(Arc::new(tokio_rustls::rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Arc::new(config))
}
