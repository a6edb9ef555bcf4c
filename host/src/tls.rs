//! TLS for both ends, with rustls: a server identity from PEM files, with
//! optional verification of client certificates (mutual TLS), and a client
//! that trusts given roots and may present its own certificate.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore};

pub use tokio_rustls::rustls::{ClientConfig, ServerConfig};

/// Why a TLS configuration cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file cannot be read or holds nothing usable.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// rustls refused the configuration (a key that does not match its
    /// certificate, say).
    #[error("invalid TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// A server's TLS configuration: its certificate chain and private key (PEM
/// files) and, for mutual TLS, the CA certificates (PEM) that client
/// certificates must chain to; without them, clients present none.
pub fn server_config(
    cert_chain: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let builder = ServerConfig::builder();
    let builder = match client_ca {
        Some(ca) => {
            let verifier = WebPkiClientVerifier::builder(Arc::new(roots(ca)?))
                .build()
                .map_err(|e| file_error(ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(certificates(cert_chain)?, private_key(key)?)?;
    Ok(Arc::new(config))
}

/// A client's TLS configuration: the CA certificates (PEM) it trusts and,
/// for servers that verify clients, its own certificate chain and key.
pub fn client_config(
    roots_file: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder().with_root_certificates(roots(roots_file)?);
    let config = match identity {
        Some((chain, key)) => {
            builder.with_client_auth_cert(certificates(chain)?, private_key(key)?)?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn file_error(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no certificate in it"));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_error(path, e))
}

fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path)? {
        roots.add(cert).map_err(|e| file_error(path, e))?;
    }
    Ok(roots)
}
