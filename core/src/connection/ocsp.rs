//! Revocation by OCSP stapling (RFC 6960, RFC 6066 §8, RFC 8446 §4.4.2.1, RFC 7633).
//!
//! rustls asks every server for its OCSP status and hands the stapled response to the
//! certificate verifier, but checks nothing in it. [`check`] does, after the chain has been
//! verified: a response signed by the certificate's issuer (or a responder the issuer
//! authorised) saying "revoked" refuses the certificate. Anything else that is wrong with
//! a staple — unparsable, for another certificate, badly signed, out of date — is ignored
//! with a warning, as browsers do, because a server cannot be blamed for its CA's answer
//! and the staple is optional. The exception is a certificate that demands one
//! (TLS Feature `status_request`, "must-staple", RFC 7633): it is refused without a good,
//! current staple. No responder is ever contacted: that would tell a CA which servers this
//! user talks to.

use std::sync::Arc;
use std::time::Duration;

use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::{
    CertificateDer, SignatureVerificationAlgorithm, TrustAnchor, UnixTime,
};
use tokio_rustls::rustls::{self, CertificateError, OtherError};
use tracing::{debug, warn};
use x509_cert::der::asn1::{AnyRef, ObjectIdentifier};
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::CrlReason;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoRef};
use x509_ocsp::{BasicOcspResponse, CertStatus, OcspResponse, OcspResponseStatus};

/// `id-pkix-ocsp-basic`.
const OCSP_BASIC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
/// `id-kp-OCSPSigning`: the issuer delegated OCSP signing to this certificate.
const KP_OCSP_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.9");
/// `id-pe-tlsfeature` (RFC 7633).
const PE_TLS_FEATURE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.24");
/// The TLS `status_request` extension number, as listed in a TLS Feature extension.
const STATUS_REQUEST: u16 = 5;
const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

/// Clock difference tolerated between us and the responder.
const SKEW: Duration = Duration::from_secs(5 * 60);
/// How long a response without `nextUpdate` counts as current.
const NO_NEXT_UPDATE_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// What a usable stapled response says about the certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Not revoked, as of a current response.
    Good,
    /// Revoked at this time (seconds since the epoch), for this reason if given.
    Revoked {
        since: u64,
        reason: Option<CrlReason>,
    },
    /// The responder does not know the certificate.
    Unknown,
}

/// Why a stapled response cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    #[error("it is not a valid OCSP response")]
    Malformed,
    #[error("the responder answered {0:?} instead of a status")]
    NotSuccessful(OcspResponseStatus),
    #[error("it is not a basic OCSP response")]
    NotBasic,
    #[error("it is about other certificates")]
    NotAboutThisCertificate,
    #[error("it is not signed by the certificate's issuer or a responder it authorised")]
    BadSignature,
    #[error("it is out of date")]
    Stale,
    #[error("it is dated in the future")]
    NotYetValid,
}

/// The certificate that issued the end-entity certificate, as the verified path found it.
#[derive(Debug, Clone, Copy)]
pub struct Issuer<'a> {
    /// The issuer's DER `Name` (the end-entity certificate's `issuer` field).
    pub name: &'a [u8],
    /// The issuer's DER `SubjectPublicKeyInfo`.
    pub spki: &'a [u8],
}

/// What the stapled `response` says about `cert` (DER), issued by `issuer`, at `now`.
/// `algs` are the signature algorithms to accept.
pub fn status(
    response: &[u8],
    cert: &[u8],
    issuer: Issuer<'_>,
    now: UnixTime,
    algs: &[&dyn SignatureVerificationAlgorithm],
) -> Result<Status, Unusable> {
    let cert = x509_cert::Certificate::from_der(cert).map_err(|_| Unusable::Malformed)?;
    let response = OcspResponse::from_der(response).map_err(|_| Unusable::Malformed)?;
    if response.response_status != OcspResponseStatus::Successful {
        return Err(Unusable::NotSuccessful(response.response_status));
    }
    let bytes = response.response_bytes.ok_or(Unusable::Malformed)?;
    if bytes.response_type != OCSP_BASIC {
        return Err(Unusable::NotBasic);
    }
    let basic =
        BasicOcspResponse::from_der(bytes.response.as_bytes()).map_err(|_| Unusable::Malformed)?;
    let issuer_key = SubjectPublicKeyInfoRef::from_der(issuer.spki)
        .map_err(|_| Unusable::Malformed)?
        .subject_public_key
        .raw_bytes()
        .to_vec();
    let serial = trim_serial(cert.tbs_certificate.serial_number.as_bytes());
    let single = basic
        .tbs_response_data
        .responses
        .iter()
        .find(|single| {
            let id = &single.cert_id;
            trim_serial(id.serial_number.as_bytes()) == serial
                && digest(&id.hash_algorithm.oid, issuer.name)
                    .is_some_and(|h| h == id.issuer_name_hash.as_bytes())
                && digest(&id.hash_algorithm.oid, &issuer_key)
                    .is_some_and(|h| h == id.issuer_key_hash.as_bytes())
        })
        .ok_or(Unusable::NotAboutThisCertificate)?;
    if !signed_by_issuer_or_delegate(&basic, issuer, now, algs) {
        return Err(Unusable::BadSignature);
    }
    let now_secs = Duration::from_secs(now.as_secs());
    let this_update = single.this_update.0.to_unix_duration();
    if this_update > now_secs + SKEW {
        return Err(Unusable::NotYetValid);
    }
    let current = match &single.next_update {
        Some(next) => next.0.to_unix_duration() + SKEW >= now_secs,
        None => now_secs.saturating_sub(this_update) <= NO_NEXT_UPDATE_LIFETIME,
    };
    match &single.cert_status {
        CertStatus::Good(_) if current => Ok(Status::Good),
        CertStatus::Unknown(_) if current => Ok(Status::Unknown),
        // A revocation is final (but for a hold), so even an old response proves it.
        CertStatus::Revoked(info)
            if current || info.revocation_reason != Some(CrlReason::CertificateHold) =>
        {
            Ok(Status::Revoked {
                since: info.revocation_time.0.to_unix_duration().as_secs(),
                reason: info.revocation_reason,
            })
        }
        _ => Err(Unusable::Stale),
    }
}

/// Whether `cert` (DER) demands a stapled OCSP response (RFC 7633 "must-staple").
pub fn must_staple(cert: &[u8]) -> bool {
    let Ok(cert) = x509_cert::Certificate::from_der(cert) else {
        return false;
    };
    cert.tbs_certificate
        .extensions
        .iter()
        .flatten()
        .filter(|ext| ext.extn_id == PE_TLS_FEATURE)
        .any(|ext| {
            Vec::<u16>::from_der(ext.extn_value.as_bytes())
                .is_ok_and(|features| features.contains(&STATUS_REQUEST))
        })
}

/// Why a certificate was refused over its OCSP status (inside the rustls error).
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error(
        "revoked on {} ({}), as the server's own OCSP status says; its admin must replace it",
        crate::connection::error::day_of(*since),
        reason_text(*reason)
    )]
    Revoked {
        since: u64,
        reason: Option<CrlReason>,
    },
    #[error(
        "it demands a current OCSP status from the server (must-staple) and the server sent {0}; \
         its admin must fix the server's OCSP stapling"
    )]
    MustStaple(String),
}

fn reason_text(reason: Option<CrlReason>) -> &'static str {
    match reason {
        None | Some(CrlReason::Unspecified) => "no reason given",
        Some(CrlReason::KeyCompromise) => "its key was compromised",
        Some(CrlReason::CaCompromise) => "its CA was compromised",
        Some(CrlReason::AaCompromise) => "its attribute authority was compromised",
        Some(CrlReason::AffiliationChanged) => "the owner changed",
        Some(CrlReason::Superseded) => "superseded",
        Some(CrlReason::CessationOfOperation) => "the server ceased operation",
        Some(CrlReason::CertificateHold) => "on hold",
        Some(CrlReason::RemoveFromCRL) => "removed from the list",
        Some(CrlReason::PrivilegeWithdrawn) => "privilege withdrawn",
    }
}

/// The verifier's revocation step, after the chain to `roots` has been verified: `Err`
/// refuses the certificate (see the module documentation for when).
pub(crate) fn check(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    roots: &[TrustAnchor<'_>],
    response: &[u8],
    now: UnixTime,
    provider: &CryptoProvider,
) -> Result<(), rustls::Error> {
    let demanded = must_staple(end_entity);
    if response.is_empty() && !demanded {
        return Ok(());
    }
    let refuse = |refusal: Refusal| {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(refusal))))
    };
    if response.is_empty() {
        return Err(refuse(Refusal::MustStaple("none".to_owned())));
    }
    let algs = provider.signature_verification_algorithms.all;
    let outcome = (|| {
        let ee = webpki::EndEntityCert::try_from(end_entity).map_err(|_| Unusable::Malformed)?;
        let path = ee
            .verify_for_usage(
                algs,
                roots,
                intermediates,
                now,
                webpki::KeyUsage::server_auth(),
                None,
                None,
            )
            .map_err(|_| Unusable::Malformed)?;
        let name = wrap_sequence(ee.issuer()).ok_or(Unusable::Malformed)?;
        let spki = path.issuer_spki();
        let issuer = Issuer {
            name: &name,
            spki: spki.as_ref(),
        };
        status(response, end_entity.as_ref(), issuer, now, algs)
    })();
    match outcome {
        Ok(Status::Revoked { since, reason }) => Err(refuse(Refusal::Revoked { since, reason })),
        Ok(Status::Good) => {
            debug!("the server's stapled OCSP status is good");
            Ok(())
        }
        Ok(Status::Unknown) if demanded => Err(refuse(Refusal::MustStaple(
            "one in which its CA does not know it".to_owned(),
        ))),
        Err(why) if demanded => Err(refuse(Refusal::MustStaple(format!(
            "an unusable one: {why}"
        )))),
        Ok(Status::Unknown) => {
            warn!("the server's stapled OCSP status says its CA does not know the certificate");
            Ok(())
        }
        Err(why) => {
            warn!(%why, "ignoring the server's stapled OCSP status");
            Ok(())
        }
    }
}

/// Whether the response is signed by the issuer's key, or by a certificate it carries that
/// the issuer signed for OCSP signing (RFC 6960 §4.2.2.2) and that is valid `now`.
fn signed_by_issuer_or_delegate(
    basic: &BasicOcspResponse,
    issuer: Issuer<'_>,
    now: UnixTime,
    algs: &[&dyn SignatureVerificationAlgorithm],
) -> bool {
    let Ok(tbs) = basic.tbs_response_data.to_der() else {
        return false;
    };
    let Some(signature) = basic.signature.as_bytes() else {
        return false;
    };
    if verify(
        issuer.spki,
        &basic.signature_algorithm,
        &tbs,
        signature,
        algs,
    ) {
        return true;
    }
    let now = Duration::from_secs(now.as_secs());
    basic.certs.iter().flatten().any(|delegate| {
        let tbs_cert = &delegate.tbs_certificate;
        let validity = &tbs_cert.validity;
        let issued_by_issuer = tbs_cert
            .issuer
            .to_der()
            .is_ok_and(|name| name.as_slice() == issuer.name);
        let for_ocsp = tbs_cert
            .get::<x509_cert::ext::pkix::ExtendedKeyUsage>()
            .ok()
            .flatten()
            .is_some_and(|(_, eku)| eku.0.contains(&KP_OCSP_SIGNING));
        let valid_now = validity.not_before.to_unix_duration() <= now
            && now <= validity.not_after.to_unix_duration();
        let (Ok(delegate_tbs), Some(delegate_sig), Ok(delegate_spki)) = (
            tbs_cert.to_der(),
            delegate.signature.as_bytes(),
            tbs_cert.subject_public_key_info.to_der(),
        ) else {
            return false;
        };
        issued_by_issuer
            && for_ocsp
            && valid_now
            && verify(
                issuer.spki,
                &delegate.signature_algorithm,
                &delegate_tbs,
                delegate_sig,
                algs,
            )
            && verify(
                &delegate_spki,
                &basic.signature_algorithm,
                &tbs,
                signature,
                algs,
            )
    })
}

/// Whether `signature` over `message` by the key in `spki` (DER) verifies with one of
/// `algs` for the signature algorithm `alg`, matched as webpki matches them.
fn verify(
    spki: &[u8],
    alg: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
    algs: &[&dyn SignatureVerificationAlgorithm],
) -> bool {
    let Ok(spki) = SubjectPublicKeyInfoRef::from_der(spki) else {
        return false;
    };
    let (Some(key_alg), Some(sig_alg)) = (contents(&spki.algorithm), contents(alg)) else {
        return false;
    };
    let Some(key) = spki.subject_public_key.as_bytes() else {
        return false;
    };
    algs.iter().any(|a| {
        *a.public_key_alg_id() == *key_alg
            && *a.signature_alg_id() == *sig_alg
            && a.verify_signature(key, message, signature).is_ok()
    })
}

/// The DER contents (without tag and length) of an encodable value.
fn contents(value: &impl Encode) -> Option<Vec<u8>> {
    let der = value.to_der().ok()?;
    Some(AnyRef::from_der(&der).ok()?.value().to_vec())
}

/// `contents` wrapped in a DER SEQUENCE.
fn wrap_sequence(contents: &[u8]) -> Option<Vec<u8>> {
    AnyRef::new(x509_cert::der::Tag::Sequence, contents)
        .ok()?
        .to_der()
        .ok()
}

/// A serial number without the leading zero octets DER may add.
fn trim_serial(serial: &[u8]) -> &[u8] {
    let zeros = serial.iter().take_while(|&&b| b == 0).count();
    &serial[zeros.min(serial.len().saturating_sub(1))..]
}

/// `data` hashed with the CertID hash algorithm `oid`, if it is one we know.
fn digest(oid: &ObjectIdentifier, data: &[u8]) -> Option<Vec<u8>> {
    Some(match *oid {
        SHA1 => Sha1::digest(data).to_vec(),
        SHA256 => Sha256::digest(data).to_vec(),
        SHA384 => Sha384::digest(data).to_vec(),
        SHA512 => Sha512::digest(data).to_vec(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_malformed_and_demands_nothing() {
        let algs = rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .all;
        let issuer = Issuer {
            name: &[0x30, 0x00],
            spki: &[0x30, 0x00],
        };
        for junk in [&b""[..], b"\x30\x03\x0a\x01\x00", b"not der at all"] {
            assert_eq!(
                status(junk, junk, issuer, UnixTime::now(), algs),
                Err(Unusable::Malformed)
            );
            assert!(!must_staple(junk));
        }
    }

    #[test]
    fn serials_compare_without_leading_zeros() {
        assert_eq!(trim_serial(&[0, 0x80, 1]), &[0x80, 1]);
        assert_eq!(trim_serial(&[0]), &[0]);
        assert_eq!(trim_serial(&[5]), &[5]);
        assert_eq!(trim_serial(&[]), &[] as &[u8]);
    }

    #[test]
    fn sequences_wrap_their_contents() {
        assert_eq!(wrap_sequence(&[1, 2]), Some(vec![0x30, 2, 1, 2]));
    }
}
