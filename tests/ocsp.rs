//! Revocation by OCSP stapling: real TLS servers staple responses made by `openssl ocsp`
//! for certificates from the test CA; the client believes only what the certificate's
//! issuer (or a responder it authorised) signed about that very certificate.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use starling_core::connection::ocsp::{self, Issuer, Status, Unusable};
use tokio_rustls::rustls::pki_types::{CertificateDer, UnixTime};
use x509_cert::der::{Decode as _, Encode as _};

use crate::security::{
    Cert, openssl, refused_stapling, self_signed_ca, sign_with_test_ca, tls_server_stapling,
    xmpp_handshake,
};
use crate::support;

/// What a test OCSP response says.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Says {
    Good,
    /// Revoked on 2024-11-26 for key compromise.
    Revoked,
}

/// Who signs a test OCSP response.
#[derive(Clone, Copy)]
enum Signer {
    /// The test CA, which issued the certificate.
    Ca,
    /// A self-signed CA that has nothing to do with the certificate.
    Stranger,
    /// A certificate the test CA issued, for OCSP signing (`id-kp-OCSPSigning`) or not.
    Delegate { for_ocsp: bool },
}

/// The DER OCSP response `signer` makes about the certificate `cert` (PEM) of the test CA
/// in `certs`, saying `says`; files go beside `cert`.
fn respond(certs: &Path, cert: &Path, says: Says, signer: Signer) -> Result<Vec<u8>> {
    let dir = cert.parent().context("certificate directory")?;
    let p = |x: &Path| x.display().to_string();
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-in"])
        .arg(cert)
        .output()?;
    ensure!(out.status.success(), "openssl x509 -serial failed");
    let serial = String::from_utf8(out.stdout)?;
    let serial = serial
        .trim()
        .strip_prefix("serial=")
        .context("openssl printed no serial")?;
    let line = match says {
        Says::Good => format!("V\t301231000000Z\t\t{serial}\tunknown\t/CN=x\n"),
        Says::Revoked => {
            format!("R\t301231000000Z\t241126000000Z,keyCompromise\t{serial}\tunknown\t/CN=x\n")
        }
    };
    let index = dir.join("index.txt");
    std::fs::write(&index, line)?;
    let (ca_crt, ca_key) = (certs.join("ca.crt"), certs.join("ca.key"));
    let (signer_crt, signer_key) = match signer {
        Signer::Ca => (ca_crt.clone(), ca_key.clone()),
        Signer::Stranger => self_signed_ca(dir, "Stranger")?,
        Signer::Delegate { for_ocsp } => {
            let (crt, key, csr, ext) = (
                dir.join("responder.crt"),
                dir.join("responder.key"),
                dir.join("responder.csr"),
                dir.join("responder.ext"),
            );
            let usage = if for_ocsp {
                "OCSPSigning"
            } else {
                "serverAuth"
            };
            std::fs::write(&ext, format!("extendedKeyUsage={usage}\n"))?;
            openssl(&[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-subj",
                "/CN=Responder",
                "-keyout",
                &p(&key),
                "-out",
                &p(&csr),
            ])?;
            sign_with_test_ca(certs, &csr, &ext, &crt)?;
            (crt, key)
        }
    };
    let response = dir.join("response.der");
    openssl(&[
        "ocsp",
        "-index",
        &p(&index),
        "-rsigner",
        &p(&signer_crt),
        "-rkey",
        &p(&signer_key),
        "-CA",
        &p(&ca_crt),
        "-issuer",
        &p(&ca_crt),
        "-cert",
        &p(cert),
        "-ndays",
        "1",
        "-noverify",
        "-respout",
        &p(&response),
    ])?;
    Ok(std::fs::read(response)?)
}

/// A revoked certificate is refused when the server itself staples its revocation, and the
/// error says so, with the date and the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stapled_revocation_refuses_the_certificate() -> Result<()> {
    refused_stapling(
        Cert::For("localhost"),
        |certs, cert| respond(certs, cert, Says::Revoked, Signer::Ca),
        "certificate not trusted for localhost: revoked on 2024-11-26 (its key was compromised), \
         as the server's own OCSP status says; its admin must replace it",
    )
    .await
}

/// Only the issuer's (or its authorised responder's) word about this very certificate
/// counts: a revocation signed by anyone else, or about another certificate, is ignored,
/// and so is garbage. A must-staple certificate (RFC 7633) is refused without a good staple.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_issuers_word_about_this_certificate_counts() -> Result<()> {
    let server = support::fresh_server()?;
    let ca_file = server.ca_file().to_owned();
    let certs = ca_file.parent().context("certs dir")?.to_owned();
    let work = tempfile::tempdir()?;
    // A revoked status about another certificate of the same CA.
    let other_dir = work.path().join("other");
    std::fs::create_dir(&other_dir)?;
    tls_server_stapling(Cert::For("localhost"), &certs, &other_dir, |_, _| {
        Ok(Vec::new())
    })
    .await?;
    let about_another = respond(
        &certs,
        &other_dir.join("other.crt"),
        Says::Revoked,
        Signer::Ca,
    )?;

    type Staple = Box<dyn FnOnce(&Path, &Path) -> Result<Vec<u8>>>;
    let by = |says: Says, signer: Signer| -> Staple {
        Box::new(move |certs: &Path, cert: &Path| respond(certs, cert, says, signer))
    };
    let cases: Vec<(&str, Cert, Staple, Option<&str>)> = vec![
        (
            "good, from the CA",
            Cert::For("localhost"),
            by(Says::Good, Signer::Ca),
            None,
        ),
        (
            "revoked, from an authorised responder",
            Cert::For("localhost"),
            by(Says::Revoked, Signer::Delegate { for_ocsp: true }),
            Some("revoked on 2024-11-26"),
        ),
        (
            "revoked, from a certificate of the CA not meant for OCSP",
            Cert::For("localhost"),
            by(Says::Revoked, Signer::Delegate { for_ocsp: false }),
            None,
        ),
        (
            "revoked, signed by a stranger",
            Cert::For("localhost"),
            by(Says::Revoked, Signer::Stranger),
            None,
        ),
        (
            "revoked, about another certificate",
            Cert::For("localhost"),
            Box::new(move |_: &Path, _: &Path| Ok(about_another)),
            None,
        ),
        (
            "garbage",
            Cert::For("localhost"),
            Box::new(|_: &Path, _: &Path| Ok(b"\x30\x03\x0a\x01\x00".to_vec())),
            None,
        ),
        (
            "must-staple, none stapled",
            Cert::MustStaple,
            Box::new(|_: &Path, _: &Path| Ok(Vec::new())),
            Some("must-staple) and the server sent none"),
        ),
        (
            "must-staple, good",
            Cert::MustStaple,
            by(Says::Good, Signer::Ca),
            None,
        ),
        (
            "must-staple, signed by a stranger",
            Cert::MustStaple,
            by(Says::Good, Signer::Stranger),
            Some("an unusable one: it is not signed by the certificate's issuer"),
        ),
    ];
    for (case, cert, staple, refusal) in cases {
        let dir = tempfile::tempdir()?;
        let port = tls_server_stapling(cert, &certs, dir.path(), staple).await?;
        let got = xmpp_handshake(port, &ca_file).await?;
        match refusal {
            None => ensure!(got.is_ok(), "{case}: refused: {got:?}"),
            Some(why) => ensure!(
                got.as_ref().is_err_and(|e| e.contains(why)),
                "{case}: expected a refusal with {why:?}, got {got:?}"
            ),
        }
    }
    Ok(())
}

/// A good status expires with its `nextUpdate`; a revocation does not (it is final).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_status_expires_and_a_revocation_does_not() -> Result<()> {
    let server = support::fresh_server()?;
    let certs = server.ca_file().parent().context("certs dir")?.to_owned();
    let work = tempfile::tempdir()?;
    tls_server_stapling(Cert::For("localhost"), &certs, work.path(), |_, _| {
        Ok(Vec::new())
    })
    .await?;
    let cert_pem = work.path().join("other.crt");
    let der = |pem: &Path| -> Result<CertificateDer<'static>> {
        rustls_pemfile::certs(&mut std::io::BufReader::new(std::fs::File::open(pem)?))
            .next()
            .context("no certificate")?
            .context("bad PEM")
    };
    let (cert, ca) = (der(&cert_pem)?, der(&certs.join("ca.crt"))?);
    // x509-cert is built without `std` here, so its errors are not `std::error::Error`.
    let der_error = |e: x509_cert::der::Error| anyhow::anyhow!("the test CA certificate: {e}");
    let ca = x509_cert::Certificate::from_der(ca.as_ref()).map_err(der_error)?;
    let (name, spki) = (
        ca.tbs_certificate.subject.to_der().map_err(der_error)?,
        ca.tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(der_error)?,
    );
    let issuer = Issuer {
        name: &name,
        spki: &spki,
    };
    let algs = tokio_rustls::rustls::crypto::ring::default_provider()
        .signature_verification_algorithms
        .all;
    let now = UnixTime::now();
    let in_three_days = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        now.as_secs() + 3 * 24 * 3600,
    ));
    let good = respond(&certs, &cert_pem, Says::Good, Signer::Ca)?;
    ensure!(ocsp::status(&good, cert.as_ref(), issuer, now, algs) == Ok(Status::Good));
    let later = ocsp::status(&good, cert.as_ref(), issuer, in_three_days, algs);
    ensure!(later == Err(Unusable::Stale), "{later:?}");
    let revoked = respond(&certs, &cert_pem, Says::Revoked, Signer::Ca)?;
    let later = ocsp::status(&revoked, cert.as_ref(), issuer, in_three_days, algs);
    ensure!(
        matches!(later, Ok(Status::Revoked { since, .. }) if since == 1_732_579_200),
        "{later:?}"
    );
    Ok(())
}

/// DANE-TA (a trust anchor from the domain's TLSA records) still builds a PKIX chain, so a
/// stapled revocation refuses the certificate as with the public CAs; DANE-EE pins the key
/// itself and ignores revocation by design (RFC 7671 §5.1): the zone vouches for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dane_ta_honours_a_stapled_revocation_and_dane_ee_does_not_look() -> Result<()> {
    use crate::dane::{handshake, openssl_sha256, record};
    use starling_core::connection::dane::{DANE_EE, DANE_TA};
    let server = support::fresh_server()?;
    let certs = server.ca_file().parent().context("certs dir")?.to_owned();
    let revoked = |certs: &Path, cert: &Path| respond(certs, cert, Says::Revoked, Signer::Ca);

    let work = tempfile::tempdir()?;
    let port =
        tls_server_stapling(Cert::WithCa("xmpp.srv.test"), &certs, work.path(), revoked).await?;
    let anchor = [record(
        DANE_TA,
        0,
        openssl_sha256(&certs.join("ca.crt"), 0)?,
    )];
    let got = handshake(port, "srv.test", &anchor, &["srv.test", "xmpp.srv.test"]).await;
    ensure!(
        got.as_ref().is_err_and(|e| e.contains("Revoked")),
        "DANE-TA with a revoked staple: {got:?}"
    );

    let work = tempfile::tempdir()?;
    let port =
        tls_server_stapling(Cert::For("xmpp.srv.test"), &certs, work.path(), revoked).await?;
    let key = [record(
        DANE_EE,
        1,
        openssl_sha256(&work.path().join("served.crt"), 1)?,
    )];
    let got = handshake(port, "srv.test", &key, &["srv.test"]).await;
    ensure!(got.is_ok(), "DANE-EE ignores revocation: {got:?}");
    Ok(())
}
