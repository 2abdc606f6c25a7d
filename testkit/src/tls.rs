//! A throwaway certificate authority for TLS tests: a CA certificate to hand a client as
//! `--ca-file`, and server certificates it signs (current, expired, or for other names), so
//! tests reach a real TLS server without touching the machine's trust store.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};

/// A certificate authority that exists for one test.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// How long a certificate [`TestCa::issue`] makes is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From 1975 to 4096 (rcgen's defaults): valid whenever the test runs.
    Current,
    /// 2020 only: long expired.
    Expired,
}

/// A server certificate and its key, written as PEM files.
#[derive(Debug, Clone)]
pub struct ServerCert {
    /// The certificate chain (the server's certificate only; the CA is the client's).
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

impl TestCa {
    /// Signs `params` for `key` with this CA and writes the certificate and key into `dir`
    /// as `STEM.pem` and `STEM.key`.
    fn sign_and_write(
        &self,
        params: CertificateParams,
        key: KeyPair,
        dir: &Path,
        stem: &str,
    ) -> anyhow::Result<ServerCert> {
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        let out = ServerCert {
            cert: dir.join(format!("{stem}.pem")),
            key: dir.join(format!("{stem}.key")),
        };
        std::fs::write(&out.cert, cert.pem())?;
        std::fs::write(&out.key, key.serialize_pem())?;
        Ok(out)
    }

    /// A new CA named `name`.
    pub fn new(name: &str) -> anyhow::Result<TestCa> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key)?;
        Ok(TestCa { cert, key })
    }

    /// The CA's certificate (PEM), what a client trusts.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// Writes the CA's certificate to `dir/NAME` and returns the path.
    pub fn write(&self, dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
        let path = dir.join(name);
        std::fs::write(&path, self.pem())?;
        Ok(path)
    }

    /// Issues a client certificate (for mutual TLS), written into `dir` as `STEM.pem` and
    /// `STEM.key`.
    pub fn issue_client(&self, dir: &Path, stem: &str) -> anyhow::Result<ServerCert> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, stem);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        self.sign_and_write(params, key, dir, stem)
    }

    /// Issues a server certificate for `names` (DNS names or IP addresses), writes it and
    /// its key into `dir` as `STEM.pem` and `STEM.key`.
    pub fn issue(&self, dir: &Path, stem: &str, names: &[&str], validity: Validity) -> anyhow::Result<ServerCert> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("server"));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        if validity == Validity::Expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 12, 31);
        }
        self.sign_and_write(params, key, dir, stem)
    }
}
