//! A TCP proxy on 127.0.0.1 that cuts every connection after it carried a byte budget from
//! the client, simulating a flaky network in the middle of (encrypted) stanzas.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct CuttingProxy {
    pub port: u16,
    /// Bytes a connection may carry client->server before it is cut; 0 = never cut.
    budget: Arc<AtomicU64>,
    cuts: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl CuttingProxy {
    pub async fn start(upstream_port: u16, budget: u64) -> Result<CuttingProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let budget = Arc::new(AtomicU64::new(budget));
        let cuts = Arc::new(AtomicUsize::new(0));
        let (b, c) = (budget.clone(), cuts.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (b, c) = (b.clone(), c.clone());
                tokio::spawn(async move {
                    if let Err(e) = relay(client, upstream_port, b, c).await {
                        eprintln!("proxy connection ended: {e}");
                    }
                });
            }
        });
        Ok(CuttingProxy {
            port,
            budget,
            cuts,
            task,
        })
    }

    /// Stops cutting new and existing connections.
    pub fn stop_cutting(&self) {
        self.budget.store(0, Ordering::SeqCst);
    }

    /// From now on, connections are cut once they carried `bytes` from the client (an
    /// existing one that carried more already: at its next byte).
    pub fn cut_after(&self, bytes: u64) {
        self.budget.store(bytes, Ordering::SeqCst);
    }

    pub fn cuts(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(
    client: TcpStream,
    upstream_port: u16,
    budget: Arc<AtomicU64>,
    cuts: Arc<AtomicUsize>,
) -> Result<()> {
    let server = TcpStream::connect(("127.0.0.1", upstream_port)).await?;
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let down = tokio::spawn(async move { tokio::io::copy(&mut sr, &mut cw).await });
    let mut carried: u64 = 0;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = cr.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        let limit = budget.load(Ordering::SeqCst);
        if limit > 0 && carried + n as u64 > limit {
            // Forward only part of this chunk, then cut both directions hard.
            let part = usize::try_from(limit.saturating_sub(carried)).unwrap_or(0);
            sw.write_all(&buf[..part]).await?;
            cuts.fetch_add(1, Ordering::SeqCst);
            down.abort();
            return Ok(());
        }
        carried += n as u64;
        sw.write_all(&buf[..n]).await?;
    }
    down.abort();
    Ok(())
}
