//! The server's identity in its certificate (RFC 6120 §13.7.1.2, RFC 6125, RFC 7590):
//! besides the DNS-ID that rustls checks, an XMPP service may be named by an SRV-ID
//! (`id-on-dnsSRV`, RFC 4985: `_xmpp-client.example.org` or `_xmpps-client.example.org`)
//! or an XmppAddr (`id-on-xmppAddr`, RFC 6120: `example.org`). [`XmppServerVerifier`] is
//! rustls's PKIX verifier that also accepts those: the chain, the dates and the key usage
//! are checked exactly as for a DNS-ID; only the name may come from these fields. It also
//! reads the server's stapled OCSP status ([`super::ocsp`]), which rustls leaves unchecked.

use std::sync::Arc;

use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    self, CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use x509_cert::der::Decode as _;
use x509_cert::der::asn1::{Ia5StringRef, ObjectIdentifier, Utf8StringRef};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

/// `id-on-xmppAddr` (RFC 6120 §13.7.1.4).
const ID_ON_XMPP_ADDR: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.8.5");
/// `id-on-dnsSRV` (RFC 4985).
const ID_ON_DNS_SRV: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.8.7");

/// The XMPP identities (XmppAddr and SRV-ID, lowercased) a certificate names.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct XmppIdentities {
    pub xmpp_addrs: Vec<String>,
    pub srv_ids: Vec<String>,
}

impl XmppIdentities {
    /// Read them from a DER certificate (none if it does not parse).
    pub fn of(cert: &CertificateDer<'_>) -> XmppIdentities {
        let mut found = XmppIdentities::default();
        let Ok(cert) = x509_cert::Certificate::from_der(cert.as_ref()) else {
            return found;
        };
        let Ok(Some((_, san))) = cert.tbs_certificate.get::<SubjectAltName>() else {
            return found;
        };
        for name in san.0 {
            let GeneralName::OtherName(other) = name else {
                continue;
            };
            if other.type_id == ID_ON_XMPP_ADDR {
                if let Ok(s) = other.value.decode_as::<Utf8StringRef<'_>>() {
                    found.xmpp_addrs.push(s.as_str().to_ascii_lowercase());
                }
            } else if other.type_id == ID_ON_DNS_SRV
                && let Ok(s) = other.value.decode_as::<Ia5StringRef<'_>>()
            {
                found.srv_ids.push(s.as_str().to_ascii_lowercase());
            }
        }
        found
    }

    /// Whether they name the XMPP client service of `domain` (ASCII, as checked for TLS).
    pub fn names(&self, domain: &str) -> bool {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        self.xmpp_addrs.contains(&domain)
            || self.srv_ids.iter().any(|s| {
                s.strip_prefix("_xmpp-client.")
                    .or_else(|| s.strip_prefix("_xmpps-client."))
                    .is_some_and(|d| d.trim_end_matches('.') == domain)
            })
    }
}

/// PKIX as rustls does it, plus SRV-ID and XmppAddr as reference identities.
#[derive(Debug)]
pub struct XmppServerVerifier {
    pkix: Arc<WebPkiServerVerifier>,
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl XmppServerVerifier {
    pub fn new(
        roots: Arc<RootCertStore>,
        provider: Arc<CryptoProvider>,
    ) -> Result<XmppServerVerifier, rustls::client::VerifierBuilderError> {
        let pkix =
            WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone()).build()?;
        Ok(XmppServerVerifier {
            pkix,
            roots,
            provider,
        })
    }

    /// The chain, dates and key usage, without any name.
    fn verify_chain(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> bool {
        let Ok(cert) = webpki::EndEntityCert::try_from(end_entity) else {
            return false;
        };
        cert.verify_for_usage(
            self.provider.signature_verification_algorithms.all,
            &self.roots.roots,
            intermediates,
            now,
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .is_ok()
    }
}

impl ServerCertVerifier for XmppServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let revocation = || {
            super::ocsp::check(
                end_entity,
                intermediates,
                &self.roots.roots,
                ocsp_response,
                now,
                &self.provider,
            )
        };
        let error = match self.pkix.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => return revocation().map(|()| verified),
            Err(error) => error,
        };
        let wrong_name = matches!(
            &error,
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            )
        );
        if let (true, ServerName::DnsName(domain)) = (wrong_name, server_name)
            && XmppIdentities::of(end_entity).names(domain.as_ref())
            && self.verify_chain(end_entity, intermediates, now)
        {
            tracing::debug!(
                domain = domain.as_ref(),
                "certificate accepted by its SRV-ID or XmppAddr"
            );
            return revocation().map(|()| ServerCertVerified::assertion());
        }
        Err(error)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.pkix.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.pkix.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.pkix.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srv_ids_and_xmpp_addrs_name_the_client_service_only() {
        let ids = XmppIdentities {
            xmpp_addrs: vec!["example.org".to_owned()],
            srv_ids: vec![
                "_xmpp-client.chat.example".to_owned(),
                "_xmpp-server.other.example".to_owned(),
            ],
        };
        assert!(ids.names("example.org"));
        assert!(ids.names("Example.ORG."));
        assert!(ids.names("chat.example"));
        // A server-to-server SRV-ID does not name the client service.
        assert!(!ids.names("other.example"));
        assert!(!ids.names("sub.example.org"));
        assert!(!XmppIdentities::default().names("example.org"));
    }

    #[test]
    fn garbage_is_no_identity() {
        let garbage = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
        assert_eq!(XmppIdentities::of(&garbage), XmppIdentities::default());
    }
}
