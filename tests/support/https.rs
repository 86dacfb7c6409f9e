//! A scripted HTTPS server for tests (HTTP/1.1, one request per connection).

use anyhow::{Context as _, Result};
use tokio_rustls::rustls;

/// What the scripted server does with one request.
#[derive(Debug, Clone, Copy)]
pub enum Act {
    /// Reads the whole body, then answers with this status.
    Status(u16),
    /// Reads a little of the body, then hangs up.
    Drop,
}

/// A scripted HTTPS server (the test server's certificate: clients trust it through the
/// test CA) that acts out `script`, one request each, and reports each request's head and
/// body. Stands in for an upload server that fails, or a UnifiedPush distributor.
pub async fn scripted_server(
    server: &starling::testbed::Prosody,
    script: Vec<Act>,
) -> Result<(u16, tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>)> {
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let certs = server.ca_file().parent().context("certs dir")?;
    let chain = rustls_pemfile::certs(&mut std::io::BufReader::new(std::fs::File::open(
        certs.join("localhost.crt"),
    )?))
    .collect::<Result<Vec<_>, _>>()?;
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(std::fs::File::open(
        certs.join("localhost.key"),
    )?))?
    .context("no server key")?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        for act in script {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                return;
            };
            let mut data = Vec::new();
            let mut buf = [0u8; 16 * 1024];
            let head_end = loop {
                if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                    break at + 4;
                }
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => data.extend_from_slice(&buf[..n]),
                }
            };
            let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            let want = match act {
                Act::Drop => (length / 3).max(1),
                Act::Status(_) => length,
            };
            while data.len() - head_end < want {
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => data.extend_from_slice(&buf[..n]),
                }
            }
            let body = data[head_end..].to_vec();
            if tx.send((head, body)).is_err() {
                return;
            }
            if let Act::Status(code) = act {
                let answer =
                    format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                if tls.write_all(answer.as_bytes()).await.is_ok() {
                    let _ = tls.shutdown().await;
                }
            }
        }
    });
    Ok((port, rx))
}
