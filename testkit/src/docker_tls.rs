//! A TLS front for the local Docker socket: a remote engine as `dockerd --tlsverify` serves
//! one (mutual TLS: the client must present a certificate the CA signed), in front of the
//! real engine. Tests give mesh-server its address and client certificates the way an
//! operator gives a remote engine's.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, UnixStream};

use crate::tls::{TestCa, Validity};

/// The front, serving until dropped.
pub struct DockerTlsFront {
    /// `tcp://127.0.0.1:PORT`.
    pub url: String,
    /// The client's `ca.pem`, `cert.pem` and `key.pem`, Docker's layout.
    pub client_certs: PathBuf,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl DockerTlsFront {
    /// Serves the Docker socket at `socket` (e.g. `/var/run/docker.sock`) over mutual TLS on
    /// a free loopback port.
    pub async fn start(socket: &Path) -> anyhow::Result<DockerTlsFront> {
        let dir = tempfile::tempdir()?;
        let ca = TestCa::new("docker test CA")?;
        let server = ca.issue(dir.path(), "server", &["127.0.0.1"], Validity::Current)?;
        let client_certs = dir.path().join("client");
        std::fs::create_dir(&client_certs)?;
        let client = ca.issue_client(&client_certs, "mesh")?;
        std::fs::rename(&client.cert, client_certs.join("cert.pem"))?;
        std::fs::rename(&client.key, client_certs.join("key.pem"))?;
        ca.write(&client_certs, "ca.pem")?;

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(client_certs.join("ca.pem"))? {
            roots.add(cert?)?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()?;
        let chain = CertificateDer::pem_file_iter(&server.cert)?.collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_file(&server.key)?;
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counted = accepted.clone();
        let socket = socket.to_path_buf();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, socket, counted) = (acceptor.clone(), socket.clone(), counted.clone());
                tokio::spawn(async move {
                    // A client without a good certificate fails the handshake here.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    counted.fetch_add(1, Ordering::Relaxed);
                    let Ok(mut engine) = UnixStream::connect(&socket).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut engine).await;
                });
            }
        });
        Ok(DockerTlsFront {
            url: format!("tcp://127.0.0.1:{port}"),
            client_certs,
            accepted,
            task,
            _dir: dir,
        })
    }

    /// Connections that passed the TLS handshake (client certificate checked).
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for DockerTlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}
