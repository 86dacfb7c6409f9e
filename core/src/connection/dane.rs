//! DANE for XMPP (RFC 6698, RFC 7671, RFC 7673): the server's certificate checked against
//! the TLSA records its DNSSEC-signed zone publishes, instead of the public CAs.
//!
//! [`DaneVerifier`] is a rustls certificate verifier for a connection whose SRV and TLSA
//! answers were DNSSEC-secure. Only the DANE usages are accepted (RFC 7673 §3, RFC 7671):
//! - DANE-EE (3): the server's own certificate or key. Nothing else is checked: not the
//!   names, not the dates, not revocation (RFC 7671 §5.1), because the zone vouches for it.
//! - DANE-TA (2): a certificate the server presents is the trust anchor. The chain must lead
//!   to it, and name one of the reference identities: the account's domain or the SRV
//!   target (RFC 7673 §3). A stapled OCSP status is honoured as for PKIX
//!   ([`super::ocsp`]).
//!
//! PKIX-TA (0) and PKIX-EE (1) records are not usable for XMPP here; a record set with
//! nothing usable means PKIX as usual (the caller then does not use this verifier).

use std::borrow::Cow;
use std::sync::Arc;

use sha2::{Digest as _, Sha256, Sha512};
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    self, CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme,
};

/// TLSA certificate usage DANE-TA: a trust anchor of the server's chain.
pub const DANE_TA: u8 = 2;
/// TLSA certificate usage DANE-EE: the server's own certificate or key.
pub const DANE_EE: u8 = 3;

/// One TLSA record (RFC 6698 §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlsa {
    /// Certificate usage: [`DANE_TA`], [`DANE_EE`] (0 and 1 are the PKIX usages).
    pub usage: u8,
    /// 0: the full certificate; 1: its SubjectPublicKeyInfo.
    pub selector: u8,
    /// 0: exact; 1: SHA-256; 2: SHA-512.
    pub matching: u8,
    pub data: Vec<u8>,
}

impl Tlsa {
    /// Whether this record can be used for XMPP: a DANE usage, with a selector and a
    /// matching type this client knows.
    pub fn usable(&self) -> bool {
        matches!(self.usage, DANE_TA | DANE_EE) && self.selector <= 1 && self.matching <= 2
    }

    /// Whether `cert` is the certificate (or has the key) this record names.
    pub fn matches(&self, cert: &CertificateDer<'_>) -> bool {
        let selected: Cow<'_, [u8]> = match self.selector {
            0 => Cow::Borrowed(cert.as_ref()),
            1 => match spki(cert) {
                Some(spki) => Cow::Owned(spki),
                None => return false,
            },
            _ => return false,
        };
        match self.matching {
            0 => *selected == *self.data,
            1 => Sha256::digest(&selected).as_slice() == self.data,
            2 => Sha512::digest(&selected).as_slice() == self.data,
            _ => false,
        }
    }
}

/// The DER SubjectPublicKeyInfo of a certificate.
fn spki(cert: &CertificateDer<'_>) -> Option<Vec<u8>> {
    let parsed = webpki::EndEntityCert::try_from(cert).ok()?;
    Some(parsed.subject_public_key_info().as_ref().to_vec())
}

/// Why a certificate failed DANE (inside the rustls error the handshake ends with).
#[derive(Debug, thiserror::Error)]
#[error("it matches none of the domain's DNSSEC-signed TLSA records (DANE)")]
pub struct DaneMismatch;

/// A rustls verifier that trusts what the domain's secure TLSA records say.
#[derive(Debug)]
pub struct DaneVerifier {
    records: Vec<Tlsa>,
    /// Reference identities for DANE-TA chains: the account's domain and the SRV target.
    names: Vec<ServerName<'static>>,
    provider: Arc<CryptoProvider>,
}

impl DaneVerifier {
    /// A verifier for these records (unusable ones are dropped) and reference identities;
    /// `None` when no record is usable, which means PKIX as usual.
    pub fn new(
        records: &[Tlsa],
        names: Vec<ServerName<'static>>,
        provider: Arc<CryptoProvider>,
    ) -> Option<DaneVerifier> {
        let records: Vec<Tlsa> = records.iter().filter(|r| r.usable()).cloned().collect();
        (!records.is_empty()).then_some(DaneVerifier {
            records,
            names,
            provider,
        })
    }

    /// A client configuration that trusts only this verifier (safe default TLS versions).
    /// rustls calls installing any verifier of one's own "dangerous": here it is stricter
    /// than PKIX, not weaker — nothing but the domain's signed records is trusted.
    pub fn client_config(self) -> Result<rustls::ClientConfig, rustls::Error> {
        let provider = self.provider.clone();
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(self))
            .with_no_client_auth())
    }

    fn mismatch() -> rustls::Error {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
            DaneMismatch,
        ))))
    }
}

impl ServerCertVerifier for DaneVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self
            .records
            .iter()
            .any(|r| r.usage == DANE_EE && r.matches(end_entity))
        {
            return Ok(ServerCertVerified::assertion());
        }
        let anchors = intermediates.iter().filter(|c| {
            self.records
                .iter()
                .any(|r| r.usage == DANE_TA && r.matches(c))
        });
        for anchor in anchors {
            let mut roots = RootCertStore::empty();
            if roots.add(anchor.clone().into_owned()).is_err() {
                continue;
            }
            let roots = Arc::new(roots);
            let Ok(pkix) =
                WebPkiServerVerifier::builder_with_provider(roots.clone(), self.provider.clone())
                    .build()
            else {
                continue;
            };
            for name in &self.names {
                if pkix
                    .verify_server_cert(end_entity, intermediates, name, ocsp_response, now)
                    .is_ok()
                {
                    super::ocsp::check(
                        end_entity,
                        intermediates,
                        &roots.roots,
                        ocsp_response,
                        now,
                        &self.provider,
                    )?;
                    return Ok(ServerCertVerified::assertion());
                }
            }
        }
        Err(Self::mismatch())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
