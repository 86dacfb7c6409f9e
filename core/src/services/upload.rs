//! HTTP File Upload (XEP-0363) and downloads over HTTPS: the PUT of a slot with its headers,
//! streamed with progress and retried on transient failures, and downloads with a size cap.
//! TLS trust is the account's (see [`crate::connection::https_client_config`]).

use std::path::Path;
use std::time::Duration;

use futures::StreamExt as _;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};

use crate::proto::upload::Slot;

/// Attempts of one PUT before giving up (transient failures only).
const ATTEMPTS: u32 = 3;
/// The wait before the second attempt; doubled before each further one.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// Bytes per chunk of a streamed body (and between progress reports at most).
const CHUNK: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("cannot set up HTTPS: {0}")]
    Tls(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the upload server refused the file: HTTP {0}")]
    Refused(u16),
    #[error("the upload failed after {ATTEMPTS} attempts: {0}")]
    GaveUp(String),
    #[error("the download failed: {0}")]
    Download(String),
    #[error("the file is larger than the {limit} bytes allowed")]
    TooLarge { limit: u64 },
    #[error("cancelled")]
    Cancelled,
}

/// An HTTP client with the account's TLS trust.
pub fn client(ca_file: Option<&Path>) -> Result<reqwest::Client, UploadError> {
    let tls = crate::connection::https_client_config(ca_file)
        .map_err(|e| UploadError::Tls(e.to_string()))?;
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .https_only(true)
        .connect_timeout(Duration::from_secs(20))
        .build()
        .map_err(|e| UploadError::Tls(e.to_string()))
}

/// What to upload: a file on disk (as it is, or encrypted on the way: XEP-0454), or bytes
/// made in memory (an image without its metadata, possibly encrypted).
pub enum Source<'a> {
    File(&'a Path),
    EncryptedFile(&'a Path, crate::crypto::aesgcm::FileKey),
    Bytes(std::sync::Arc<Vec<u8>>),
}

/// Told the bytes sent so far; returns false to cancel.
pub type Progress = std::sync::Arc<dyn Fn(u64) -> bool + Send + Sync>;

/// PUTs `source` (`size` bytes of `content_type`) to the slot, reporting bytes sent to
/// `progress`. Connection failures, timeouts and 5xx answers are retried ([`ATTEMPTS`] in
/// all, backing off); any other refusal is final, and so is a cancel.
pub async fn put(
    http: &reqwest::Client,
    slot: &Slot,
    source: Source<'_>,
    size: u64,
    content_type: &str,
    progress: Progress,
) -> Result<(), UploadError> {
    let mut wait = FIRST_RETRY;
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        // Every attempt starts from nothing sent (and a cancel stops before it).
        if !progress(0) {
            return Err(UploadError::Cancelled);
        }
        if attempt > 1 {
            tracing::info!(attempt, error = %last, "retrying the upload");
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
        let body = match &source {
            Source::File(path) => file_body(path, None, progress.clone()).await?,
            Source::EncryptedFile(path, key) => {
                file_body(path, Some(key), progress.clone()).await?
            }
            Source::Bytes(bytes) => bytes_body(bytes.clone(), progress.clone()),
        };
        let mut req = http
            .put(&slot.put)
            .header(CONTENT_LENGTH, size)
            .header(CONTENT_TYPE, content_type)
            .timeout(Duration::from_secs(30) + Duration::from_millis(size / 50));
        for (name, value) in &slot.headers {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) else {
                continue;
            };
            req = req.header(name, value);
        }
        match req.body(body).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) if transient(r.status()) => last = format!("HTTP {}", r.status().as_u16()),
            Ok(r) => return Err(UploadError::Refused(r.status().as_u16())),
            Err(e) => last = describe(&e),
        }
    }
    Err(UploadError::GaveUp(last))
}

/// Server trouble worth another try.
fn transient(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}

/// reqwest's error with its causes (the top level alone says little).
fn describe(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// A file streamed from disk (encrypted on the way under `key`, tag last), reporting
/// progress as it goes: memory stays flat whatever the file's size.
async fn file_body(
    path: &Path,
    key: Option<&crate::crypto::aesgcm::FileKey>,
    progress: Progress,
) -> Result<reqwest::Body, UploadError> {
    use crate::crypto::aesgcm::Stream;
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|source| UploadError::Read {
            path: path.display().to_string(),
            source,
        })?;
    let chunks = tokio_util::io::ReaderStream::with_capacity(file, CHUNK);
    let Some(key) = key else {
        return Ok(reqwest::Body::wrap_stream(counted(chunks, progress)));
    };
    let state = std::sync::Arc::new(std::sync::Mutex::new(Some(Stream::encrypting(key))));
    let tail = state.clone();
    let sealed = chunks
        .map(move |chunk| {
            let chunk = chunk?;
            let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
            let s = s
                .as_mut()
                .ok_or_else(|| std::io::Error::other("stream ended"))?;
            Ok(s.update(&chunk))
        })
        .chain(futures::stream::once(async move {
            let s = tail.lock().unwrap_or_else(|p| p.into_inner()).take();
            s.map(|s| s.finish_encrypt().to_vec())
                .ok_or_else(|| std::io::Error::other("stream ended"))
        }));
    Ok(reqwest::Body::wrap_stream(counted(sealed, progress)))
}

/// Bytes streamed in chunks, reporting progress as they go.
fn bytes_body(bytes: std::sync::Arc<Vec<u8>>, progress: Progress) -> reqwest::Body {
    let chunks = (0..bytes.len().div_ceil(CHUNK)).map(move |i| {
        let end = ((i + 1) * CHUNK).min(bytes.len());
        Ok::<_, std::io::Error>(bytes[i * CHUNK..end].to_vec())
    });
    reqwest::Body::wrap_stream(counted(futures::stream::iter(chunks), progress))
}

/// Passes chunks through, reporting the running total; when `progress` says stop, the body
/// ends with an error, which fails the request.
fn counted<S, B>(
    stream: S,
    progress: Progress,
) -> impl futures::Stream<Item = std::io::Result<B>> + Send + 'static
where
    S: futures::Stream<Item = std::io::Result<B>> + Send + 'static,
    B: AsRef<[u8]> + Send + 'static,
{
    let mut sent = 0u64;
    stream.map(move |chunk| {
        let chunk = chunk?;
        sent += chunk.as_ref().len() as u64;
        if progress(sent) {
            Ok(chunk)
        } else {
            Err(std::io::Error::other("cancelled"))
        }
    })
}

/// Downloads `url` (https) into `out`, decrypting on the way under `key` (XEP-0454; the
/// tag is checked at the end: the caller must not use `out` unless this succeeds),
/// refusing more than `limit` bytes — announced or actually sent — and reporting bytes
/// received to `progress` (false cancels). Memory stays flat.
pub async fn download_into(
    http: &reqwest::Client,
    url: &str,
    key: Option<&crate::crypto::aesgcm::FileKey>,
    limit: u64,
    out: &mut (impl tokio::io::AsyncWrite + Unpin),
    progress: Progress,
) -> Result<u64, UploadError> {
    use tokio::io::AsyncWriteExt as _;
    let resp = http
        .get(url)
        .send()
        .await
        .map_err(|e| UploadError::Download(describe(&e)))?;
    if !resp.status().is_success() {
        return Err(UploadError::Download(format!(
            "HTTP {}",
            resp.status().as_u16()
        )));
    }
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(UploadError::TooLarge { limit });
    }
    let mut stream = key.map(crate::crypto::aesgcm::Stream::decrypting);
    let mut received = 0u64;
    let mut body = resp.bytes_stream();
    let write_error = |e: std::io::Error| UploadError::Download(format!("cannot save: {e}"));
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| UploadError::Download(describe(&e)))?;
        received += chunk.len() as u64;
        if received > limit {
            return Err(UploadError::TooLarge { limit });
        }
        if !progress(received) {
            return Err(UploadError::Cancelled);
        }
        match stream.as_mut() {
            Some(s) => out
                .write_all(&s.update(&chunk))
                .await
                .map_err(write_error)?,
            None => out.write_all(&chunk).await.map_err(write_error)?,
        }
    }
    if let Some(s) = stream {
        s.finish_decrypt()
            .map_err(|e| UploadError::Download(e.to_string()))?;
    }
    out.flush().await.map_err(write_error)?;
    Ok(received)
}

/// Downloads `url` (https) into memory, refusing more than `limit` bytes — announced
/// (Content-Length) or actually sent.
pub async fn download(
    http: &reqwest::Client,
    url: &str,
    limit: u64,
) -> Result<Vec<u8>, UploadError> {
    let mut body = Vec::new();
    download_into(
        http,
        url,
        None,
        limit,
        &mut body,
        std::sync::Arc::new(|_| true),
    )
    .await?;
    Ok(body)
}
