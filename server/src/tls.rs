//! TLS termination in the server itself (`--tls-cert`, `--tls-key`), for deployments without
//! a reverse proxy in front. The files are read once at start; the edge (`edge.rs`) runs
//! each connection's handshake under the same timeouts as its first request.
//!
//! rustls with the ring provider, HTTP/1.1 only (ALPN `http/1.1`): the room socket upgrades
//! over HTTP/1.1 and the edge serves nothing else.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// The first byte of every TLS connection: a handshake record. Anything else on a TLS port is
/// most likely plain HTTP, which gets a plain answer that says to use `https://`.
pub const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// The certificate and key files, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why TLS cannot be set up. Each names the setting and what to do.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// A file cannot be read.
    #[error("cannot read {path} ({setting}): {source}; check the path and that the server's user may read it")]
    Unreadable {
        /// `tls_cert` or `tls_key`.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The certificate file holds no PEM certificate.
    #[error("{path} (tls_cert) holds no PEM certificate ({detail}); pass the certificate chain as PEM (-----BEGIN CERTIFICATE-----), the server's own certificate first")]
    NoCertificate {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// The key file holds no PEM private key.
    #[error("{path} (tls_key) holds no PEM private key ({detail}); pass the key as PEM (PKCS#8, PKCS#1 or SEC1)")]
    NoKey {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// rustls refused the pair (the key is not the certificate's, or of an unusable kind).
    #[error("rustls cannot serve {cert} with {key} (tls_cert, tls_key): {detail}; pass the key that belongs to the certificate")]
    Refused {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        detail: String,
    },
}

/// Reads the files and builds the acceptor the edge hands each connection to.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsSetupError> {
    let cert_pem = read(&files.cert, "tls_cert")?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsSetupError::NoCertificate {
            path: files.cert.clone(),
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsSetupError::NoCertificate {
            path: files.cert.clone(),
            detail: "no certificate found".into(),
        });
    }
    let key_pem = read(&files.key, "tls_key")?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsSetupError::NoKey {
        path: files.key.clone(),
        detail: e.to_string(),
    })?;
    let refused = |e: rustls::Error| TlsSetupError::Refused {
        cert: files.cert.clone(),
        key: files.key.clone(),
        detail: e.to_string(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(refused)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(refused)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn read(path: &Path, setting: &'static str) -> Result<Vec<u8>, TlsSetupError> {
    std::fs::read(path).map_err(|source| TlsSetupError::Unreadable {
        setting,
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path, cert: &str, key: &str) -> TlsFiles {
        let files = TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&files.cert, cert).unwrap();
        std::fs::write(&files.key, key).unwrap();
        files
    }

    #[test]
    fn a_certificate_and_its_key_make_an_acceptor() {
        let dir = tempfile::tempdir().unwrap();
        let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        assert!(acceptor(&files(dir.path(), &c.cert.pem(), &c.key_pair.serialize_pem())).is_ok());
    }

    #[test]
    fn bad_files_are_refused_by_setting_name_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let a = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let err = |f: TlsFiles| acceptor(&f).err().expect("refused").to_string();

        let e = err(files(dir.path(), "junk", &a.key_pair.serialize_pem()));
        assert!(e.contains("tls_cert") && e.contains("BEGIN CERTIFICATE"), "{e}");
        let e = err(files(dir.path(), &a.cert.pem(), "junk"));
        assert!(e.contains("tls_key") && e.contains("PKCS#8"), "{e}");
        let e = err(files(dir.path(), &a.cert.pem(), &b.key_pair.serialize_pem()));
        assert!(e.contains("belongs to the certificate"), "{e}");
        let e = err(TlsFiles {
            cert: dir.path().join("missing.pem"),
            key: dir.path().join("key.pem"),
        });
        assert!(e.contains("missing.pem") && e.contains("tls_cert"), "{e}");
    }
}
