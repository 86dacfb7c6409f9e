//! Plumbing for scripted XMPP servers: for what Debian's Prosody cannot do, a test plays
//! the server itself over real TLS (the test CA's `localhost` certificate) and real XML
//! streams (tokio-xmpp's responder side), writing each element it sends by hand.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use minidom::Element;
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_xmpp::parsers::stream_features::StreamFeatures;
use tokio_xmpp::xmlstream::{ReadError, StreamHeader, Timeouts, XmlStream, accept_stream};

/// The `<stream:features/>` namespace.
pub const STREAMS: &str = "http://etherx.jabber.org/streams";

/// A scripted server's end of a client stream.
pub type Stream = XmlStream<BufStream<tokio_rustls::server::TlsStream<TcpStream>>, Element>;

/// An element from test XML.
pub fn elem(xml: &str) -> Result<Element> {
    xml.parse().with_context(|| format!("test XML {xml}"))
}

/// A TLS acceptor presenting the test server's `localhost` certificate (from the test CA).
pub fn tls_acceptor(server: &starling::testbed::Prosody) -> Result<tokio_rustls::TlsAcceptor> {
    let certs = server.ca_file().parent().context("certs dir")?;
    let pem = |name: &str| -> Result<std::io::BufReader<std::fs::File>> {
        Ok(std::io::BufReader::new(std::fs::File::open(
            certs.join(name),
        )?))
    };
    let chain = rustls_pemfile::certs(&mut pem("localhost.crt")?).collect::<Result<_, _>>()?;
    let key = rustls_pemfile::private_key(&mut pem("localhost.key")?)?.context("no key")?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Accepts direct TLS on `tcp`, takes the client's stream header and answers with ours and
/// `features` (a `<features xmlns='http://etherx.jabber.org/streams'/>` element).
pub async fn accept(
    tcp: TcpStream,
    acceptor: &tokio_rustls::TlsAcceptor,
    features: Element,
) -> Result<Stream> {
    let tls = acceptor.accept(tcp).await?;
    let mut accepted =
        accept_stream(BufStream::new(tls), "jabber:client", Timeouts::tight()).await?;
    let _ = accepted.take_header();
    let header = StreamHeader {
        from: Some("localhost".into()),
        to: None,
        id: Some("scripted".into()),
    };
    let features = StreamFeatures::try_from(features)?;
    Ok(accepted
        .send_header(header)
        .await?
        .send_features(&features)
        .await?)
}

/// The next element, skipping soft timeouts; `None` at the end of the stream.
pub async fn next(stream: &mut Stream) -> Result<Option<Element>> {
    use futures::StreamExt as _;
    loop {
        match stream.next().await {
            Some(Ok(element)) => return Ok(Some(element)),
            Some(Err(ReadError::SoftTimeout)) => {}
            Some(Err(ReadError::StreamFooterReceived)) | None => return Ok(None),
            Some(Err(e)) => bail!("reading from the client: {e:?}"),
        }
    }
}

pub async fn send(stream: &mut Stream, element: &Element) -> Result<()> {
    use futures::SinkExt as _;
    stream.send(element).await?;
    Ok(())
}
