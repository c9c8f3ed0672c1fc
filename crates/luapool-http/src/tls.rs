//! Server-side TLS: [`TlsConfig`] (the certificate chain and key files), loading them
//! into a rustls configuration (the `ring` provider; HTTP/2 and HTTP/1.1 offered by
//! ALPN), and the [`Certificates`] the workers accept with, which a reload replaces.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

use crate::error::{Error, Result};

/// Where the server's certificate and private key are: `[tls]` in `luapool.toml`,
/// `--tls-cert` and `--tls-key` on the command line. With it the server speaks HTTPS
/// only (HTTP/2 or HTTP/1.1, chosen by ALPN).
///
/// ```
/// use luapool_http::ServerConfig;
///
/// let config = ServerConfig::from_toml("[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"")?;
/// let tls = config.tls.unwrap();
/// assert_eq!(tls.cert, std::path::PathBuf::from("cert.pem"));
/// # Ok::<(), luapool_http::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TlsConfig {
    /// The certificate chain, PEM: the server's certificate first, then the
    /// intermediates. In a configuration file, relative to the file's directory.
    pub cert: PathBuf,
    /// The private key of the certificate, PEM (PKCS#8, PKCS#1 or SEC1). In a
    /// configuration file, relative to the file's directory.
    pub key: PathBuf,
}

impl TlsConfig {
    /// The certificate chain in `cert` and its private key in `key`.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        TlsConfig {
            cert: cert.into(),
            key: key.into(),
        }
    }

    /// The same files, relative paths taken from `dir` (a configuration file's).
    pub(crate) fn relative_to(self, dir: &Path) -> Self {
        TlsConfig {
            cert: dir.join(self.cert),
            key: dir.join(self.key),
        }
    }

    /// Reads the files and builds the rustls configuration: the certificate and a key
    /// that matches it, ALPN `h2` then `http/1.1`.
    ///
    /// # Errors
    /// [`Error::Tls`] naming the file and what is wrong with it (missing, no PEM
    /// certificate or key in it, a key that does not match the certificate).
    pub(crate) fn load(&self) -> Result<Arc<rustls::ServerConfig>> {
        let cert_error = |message: String| Error::Tls {
            path: self.cert.display().to_string(),
            message,
        };
        let key_error = |message: String| Error::Tls {
            path: self.key.display().to_string(),
            message,
        };
        let pem = std::fs::read(&self.cert).map_err(|e| cert_error(e.to_string()))?;
        let chain = CertificateDer::pem_slice_iter(&pem)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| cert_error(format!("bad PEM: {e}")))?;
        if chain.is_empty() {
            return Err(cert_error("no PEM certificate in the file".to_string()));
        }
        let pem = std::fs::read(&self.key).map_err(|e| key_error(e.to_string()))?;
        let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
            rustls_pki_types::pem::Error::NoItemsFound => {
                key_error("no PEM private key in the file".to_string())
            }
            e => key_error(format!("bad PEM: {e}")),
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| cert_error(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| match e {
                rustls::Error::InconsistentKeys(_) => key_error(format!(
                    "the key does not match the certificate {}",
                    self.cert.display()
                )),
                e => key_error(format!("cannot use the key with the certificate: {e}")),
            })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// The TLS configuration new connections are accepted with, shared by the workers and
/// replaced by a reload (connections already open keep theirs).
pub(crate) struct Certificates {
    files: TlsConfig,
    current: RwLock<TlsAcceptor>,
}

impl Certificates {
    /// Loads the files.
    ///
    /// # Errors
    /// As [`TlsConfig::load`].
    pub(crate) fn load(files: &TlsConfig) -> Result<Certificates> {
        Ok(Certificates {
            files: files.clone(),
            current: RwLock::new(TlsAcceptor::from(files.load()?)),
        })
    }

    /// The acceptor for a connection accepted now.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        // A poisoned lock only means a panic elsewhere; the acceptor itself is intact.
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reads the files again; on success new connections use them, else the old
    /// certificate stays.
    ///
    /// # Errors
    /// As [`TlsConfig::load`].
    pub(crate) fn reload(&self) -> Result<()> {
        let acceptor = TlsAcceptor::from(self.files.load()?);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = acceptor;
        Ok(())
    }

    /// The certificate file, for logs.
    pub(crate) fn cert_path(&self) -> &Path {
        &self.files.cert
    }
}
