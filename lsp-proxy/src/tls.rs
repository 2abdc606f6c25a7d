//! TLS for every connection `mesh-proxy` makes to a server: the room socket (`wss://`) and
//! the REST calls (`https://`). One rustls client configuration per process, built from the
//! system's trust store plus an optional private CA (`--ca-file`, `MESH_CA_FILE`, `ca_file`
//! in `config.toml`), shared by both paths so they can never disagree about whom to trust.
//!
//! A certificate problem is not a network hiccup: retrying cannot fix it, so callers treat
//! it as fatal and show [`Tls::explain`]'s sentence, which says what is wrong and what to do.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::{CertificateError, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// The flag, variable and config key that name a private CA, as error messages spell them.
const CA_FILE_HINT: &str = "--ca-file FILE (or MESH_CA_FILE, or ca_file in config.toml)";

/// Seconds in a day, to say how long ago a certificate expired.
const SECS_PER_DAY: u64 = 24 * 60 * 60;

/// Why the TLS client could not be set up. Each names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The CA file cannot be read.
    #[error("cannot read the CA file {path}: {source}; pass the PEM file of the authority that signed the server's certificate")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The CA file is not PEM, or holds no certificate.
    #[error(
        "the CA file {path} holds no PEM certificate ({detail}); pass a file with -----BEGIN CERTIFICATE----- blocks"
    )]
    NoCertificates {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// A certificate in the CA file cannot serve as a trust anchor.
    #[error("the CA file {path} holds a certificate rustls cannot use as an authority ({detail}); pass the CA's own certificate")]
    Unusable {
        /// The file.
        path: PathBuf,
        /// What rustls said.
        detail: String,
    },
    /// The protocol versions or the HTTP client could not be set up (a build problem).
    #[error("cannot set up TLS: {0}")]
    Internal(String),
}

/// The TLS client settings of this process. Cheap to clone.
#[derive(Clone)]
pub struct Tls {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<rustls::ClientConfig>,
    http: reqwest::Client,
    ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("ca_file", &self.inner.ca_file)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Trusts the system's roots and, when given, every certificate in `ca_file` (PEM).
    pub fn new(ca_file: Option<&Path>) -> Result<Tls, TlsSetupError> {
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            // A machine without a trust store still reaches servers of a private CA.
            tracing::debug!(error = %e, "cannot load some of the system's root certificates");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        tracing::debug!(added, ignored, "system root certificates");
        if let Some(path) = ca_file {
            for cert in read_ca_file(path)? {
                roots.add(cert).map_err(|e| TlsSetupError::Unusable {
                    path: path.to_path_buf(),
                    detail: e.to_string(),
                })?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsSetupError::Internal(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(config.clone())
            .build()
            .map_err(|e| TlsSetupError::Internal(e.to_string()))?;
        Ok(Tls {
            inner: Arc::new(Inner {
                config: Arc::new(config),
                http,
                ca_file: ca_file.map(Path::to_path_buf),
            }),
        })
    }

    /// The connector for the room socket (used for `wss://`; `ws://` ignores it).
    pub fn connector(&self) -> tokio_tungstenite::Connector {
        tokio_tungstenite::Connector::Rustls(self.inner.config.clone())
    }

    /// The HTTP client for REST calls, with the same trust as the room socket.
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// A sentence for a connection error caused by TLS (a certificate the server presented,
    /// or a server that does not speak TLS), saying what to do; `None` when TLS was not
    /// the cause. Such errors are fatal: a retry meets the same certificate.
    pub fn explain(&self, error: &(dyn std::error::Error + 'static), server: &str) -> Option<String> {
        let problem = Problem::of(find_rustls_error(error)?);
        Some(problem.explain(server, self.inner.ca_file.as_deref()))
    }

    /// [`Tls::explain`] for the room socket's errors.
    pub fn explain_ws(&self, error: &tokio_tungstenite::tungstenite::Error, server: &str) -> Option<String> {
        use tokio_tungstenite::tungstenite::error::TlsError;
        use tokio_tungstenite::tungstenite::Error as WsError;
        match error {
            WsError::Tls(TlsError::Rustls(e)) => Some(Problem::of(e).explain(server, self.inner.ca_file.as_deref())),
            WsError::Tls(other) => Some(format!(
                "cannot open a secure connection to {server}: {other}; check the host name in the link"
            )),
            other => self.explain(other, server),
        }
    }
}

/// Reads every certificate of a PEM file.
fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let bytes = std::fs::read(path).map_err(|source| TlsSetupError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsSetupError::NoCertificates {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsSetupError::NoCertificates {
            path: path.to_path_buf(),
            detail: "no certificate found".into(),
        });
    }
    Ok(certs)
}

/// The rustls error somewhere in an error's chain. `io::Error` hides the error it wraps
/// from `source()` (it returns the inner error's source), so its inner error is looked at
/// directly.
fn find_rustls_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        if let Some(inner) = e.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref) {
            current = Some(inner);
            continue;
        }
        current = e.source();
    }
    None
}

/// `mesh.example.org` from rustls's `DnsName("mesh.example.org")` (and the like for IP
/// addresses): people read names, not Rust debug output.
fn bare_name(presented: &str) -> String {
    presented
        .split_once("(\"")
        .and_then(|(_, rest)| rest.strip_suffix("\")"))
        .unwrap_or(presented)
        .to_string()
}

/// What went wrong in a TLS handshake, in the terms a user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The certificate's issuer is not trusted here.
    UnknownIssuer,
    /// The certificate does not name the host we connected to.
    NameMismatch {
        /// The names the certificate holds, when rustls reports them.
        presented: Vec<String>,
    },
    /// The certificate has expired.
    Expired {
        /// Whole days since it expired, when known.
        days_ago: Option<u64>,
    },
    /// The certificate is not valid yet.
    NotValidYet,
    /// The certificate was revoked.
    Revoked,
    /// Another certificate problem.
    Certificate(String),
    /// The server answered something that is not TLS (e.g. plain HTTP).
    NotTls(String),
    /// The handshake failed otherwise (an alert from the server, no common protocol).
    Handshake(String),
}

impl Problem {
    /// Classifies a rustls error.
    pub fn of(error: &rustls::Error) -> Problem {
        match error {
            rustls::Error::InvalidCertificate(cert) => match cert {
                CertificateError::UnknownIssuer => Problem::UnknownIssuer,
                CertificateError::NotValidForName => Problem::NameMismatch { presented: vec![] },
                CertificateError::NotValidForNameContext { presented, .. } => Problem::NameMismatch {
                    presented: presented.iter().map(|n| bare_name(n)).collect(),
                },
                CertificateError::Expired => Problem::Expired { days_ago: None },
                CertificateError::ExpiredContext { time, not_after } => Problem::Expired {
                    days_ago: Some(time.as_secs().saturating_sub(not_after.as_secs()) / SECS_PER_DAY),
                },
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => Problem::NotValidYet,
                CertificateError::Revoked => Problem::Revoked,
                other => Problem::Certificate(format!("{other:?}")),
            },
            rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
                Problem::NotTls(error.to_string())
            }
            other => Problem::Handshake(other.to_string()),
        }
    }

    /// What happened and what to do, for `server` (a URL or host).
    pub fn explain(&self, server: &str, ca_file: Option<&Path>) -> String {
        let lead = format!("cannot open a secure connection to {server}");
        match self {
            Problem::UnknownIssuer => match ca_file {
                None => format!(
                    "{lead}: its certificate is signed by an authority this machine does not trust (unknown issuer); if the server uses a private CA, pass that CA's certificate with {CA_FILE_HINT}"
                ),
                Some(path) => format!(
                    "{lead}: its certificate is signed by an authority that neither this machine nor the CA file {} trusts (unknown issuer); pass the certificate of the CA that signed the server's certificate with {CA_FILE_HINT}",
                    path.display()
                ),
            },
            Problem::NameMismatch { presented } if presented.is_empty() => format!(
                "{lead}: its certificate is not valid for that host name (name mismatch); use a link with the name the certificate was issued for, or reissue the certificate for this name"
            ),
            Problem::NameMismatch { presented } => format!(
                "{lead}: its certificate is not valid for that host name (name mismatch; it names {}); use a link with one of those names, or reissue the certificate for this name",
                presented.join(", ")
            ),
            Problem::Expired { days_ago } => {
                let when = match days_ago {
                    Some(0) => " today".to_string(),
                    Some(1) => " a day ago".to_string(),
                    Some(n) => format!(" {n} days ago"),
                    None => String::new(),
                };
                format!(
                    "{lead}: its certificate expired{when} (expired certificate); the server's operator must renew it (or this machine's clock is wrong)"
                )
            }
            Problem::NotValidYet => format!(
                "{lead}: its certificate is not valid yet; check this machine's clock (or the certificate's start date)"
            ),
            Problem::Revoked => format!(
                "{lead}: its certificate was revoked; the server's operator must replace it"
            ),
            Problem::Certificate(detail) => format!(
                "{lead}: its certificate was rejected ({detail}); the server's operator must replace it"
            ),
            Problem::NotTls(detail) => format!(
                "{lead}: the server did not answer in TLS ({detail}); if it serves plain HTTP, use an http:// link, and check the port"
            ),
            Problem::Handshake(detail) => format!(
                "{lead}: the TLS handshake failed ({detail}); check that the server's TLS setup accepts TLS 1.2 or 1.3"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::{ServerName, UnixTime};

    fn wrapped(e: rustls::Error) -> std::io::Error {
        // How tokio-rustls reports a failed handshake.
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    }

    #[test]
    fn certificate_problems_are_found_inside_io_errors_and_say_what_to_do() {
        let tls = Tls::new(None).unwrap();
        let e = wrapped(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer));
        let said = tls.explain(&e, "https://mesh.test").unwrap();
        assert!(said.contains("unknown issuer") && said.contains("--ca-file"), "{said}");
        assert!(said.contains("https://mesh.test"), "{said}");

        let e = rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("127.0.0.1").unwrap(),
            presented: vec!["DnsName(\"localhost\")".into()],
        });
        let said = tls.explain(&wrapped(e), "https://127.0.0.1:1").unwrap();
        assert!(
            said.contains("name mismatch") && said.contains("it names localhost)"),
            "{said}"
        );

        let e = rustls::Error::InvalidCertificate(CertificateError::ExpiredContext {
            time: UnixTime::since_unix_epoch(std::time::Duration::from_secs(10 * SECS_PER_DAY)),
            not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(7 * SECS_PER_DAY)),
        });
        let said = tls.explain(&wrapped(e), "x").unwrap();
        assert!(said.contains("expired 3 days ago") && said.contains("renew"), "{said}");
    }

    #[test]
    fn errors_without_tls_in_them_are_not_explained() {
        let tls = Tls::new(None).unwrap();
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(tls.explain(&refused, "x"), None);
        let ws = tokio_tungstenite::tungstenite::Error::Io(refused);
        assert_eq!(tls.explain_ws(&ws, "x"), None);
        let ws = tokio_tungstenite::tungstenite::Error::Io(wrapped(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        )));
        assert!(tls.explain_ws(&ws, "x").unwrap().contains("unknown issuer"));
    }

    #[test]
    fn an_unknown_issuer_names_the_ca_file_that_did_not_help() {
        let dir = tempfile::tempdir().unwrap();
        let ca = rcgen::generate_simple_self_signed(vec!["ca.test".into()]).unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, ca.cert.pem()).unwrap();
        let tls = Tls::new(Some(&path)).unwrap();
        let e = wrapped(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer));
        let said = tls.explain(&e, "x").unwrap();
        assert!(said.contains(&path.display().to_string()), "{said}");
    }

    #[test]
    fn a_bad_ca_file_is_refused_with_its_name_and_what_to_pass() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = Tls::new(Some(&missing)).unwrap_err().to_string();
        assert!(e.contains("missing.pem") && e.contains("PEM"), "{e}");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let e = Tls::new(Some(&junk)).unwrap_err().to_string();
        assert!(e.contains("junk.pem") && e.contains("BEGIN CERTIFICATE"), "{e}");
    }

    #[test]
    fn a_server_that_speaks_plain_http_is_told_apart() {
        let e = rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        let said = Problem::of(&e).explain("https://x", None);
        assert!(said.contains("http://"), "{said}");
    }
}
