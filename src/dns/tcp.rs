//! TCP (RFC 7766): two-byte length framing, pipelined queries answered in order,
//! a cap on connections, an idle timeout between queries, a read timeout per message
//! (so a slow client cannot hold a slot) and a write timeout (a client that never reads).

use std::io;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::timeout;

use crate::answer::{answer_packet_guarded, Transport};
use crate::config::TcpLimits;
use crate::snapshot::SnapshotHandle;
use crate::metrics::{Metrics, Proto};

/// Accepts connections until `shutdown` turns true; in-flight queries are finished.
pub async fn serve(
    listener: TcpListener,
    snapshot: Arc<SnapshotHandle>,
    metrics: Arc<Metrics>,
    limits: TcpLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    // Connections per client address (accept path only; never touched per query).
    let per_client: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>> = Arc::default();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "tcp accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            // Over the cap: close at once rather than queue (RFC 7766 §6.2.2 lets servers
            // close connections to manage resources).
            metrics.tcp_refused.inc();
            drop(stream);
            continue;
        };
        let ip = peer.ip().to_canonical();
        {
            let mut m = per_client.lock().unwrap_or_else(|p| p.into_inner());
            let n = m.entry(ip).or_insert(0);
            if *n >= limits.max_per_client {
                metrics.tcp_refused.inc();
                drop(stream);
                continue;
            }
            *n += 1;
        }
        let _ = stream.set_nodelay(true);
        let (snapshot, metrics, shutdown, per_client) = (snapshot.clone(), metrics.clone(), shutdown.clone(), per_client.clone());
        tokio::spawn(async move {
            metrics.tcp_connections.inc();
            if let Err(e) = connection(stream, &snapshot, &metrics, &limits, shutdown).await {
                tracing::debug!(error = %e, %peer, "tcp connection ended");
            }
            metrics.tcp_connections.dec();
            let mut m = per_client.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = m.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&ip);
                }
            }
            drop(permit);
        });
    }
}

async fn connection(
    mut stream: TcpStream,
    snapshot: &SnapshotHandle,
    metrics: &Metrics,
    limits: &TcpLimits,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let peer = stream.peer_addr()?.ip();
    let mut msg = Vec::with_capacity(512);
    let mut out = Vec::with_capacity(4096);
    loop {
        // Wait for the next query: idle timeout, or stop when shutting down.
        let mut len = [0u8; 2];
        let first = tokio::select! {
            r = timeout(limits.idle_timeout, stream.read(&mut len[..1])) => r,
            _ = shutdown.changed() => return Ok(()),
        };
        match first {
            Err(_) => return Ok(()),   // idle timeout
            Ok(Ok(0)) => return Ok(()), // client closed
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
        }
        // The rest of the message must arrive within the read timeout.
        let rest = async {
            stream.read_exact(&mut len[1..]).await?;
            let n = u16::from_be_bytes(len) as usize;
            msg.resize(n, 0);
            stream.read_exact(&mut msg).await?;
            Ok::<_, io::Error>(())
        };
        match timeout(limits.read_timeout, rest).await {
            Err(_) => return Ok(()),
            Ok(r) => r?,
        }
        let snap = snapshot.load();
        let outcome = answer_packet_guarded(&snap, &msg, Transport::Tcp, peer, &mut out);
        drop(snap);
        let Some(outcome) = outcome else {
            // Not a query we answer: close, as there is no way to resynchronise politely.
            metrics.dropped_malformed.inc();
            return Ok(());
        };
        metrics.count_response(Proto::Tcp, outcome.rcode, false);
        if let Some(s) = outcome.service {
            metrics.count_service(s);
        }
        let mut framed = Vec::with_capacity(out.len() + 2);
        framed.extend_from_slice(&(out.len() as u16).to_be_bytes());
        framed.extend_from_slice(&out);
        match timeout(limits.write_timeout, stream.write_all(&framed)).await {
            Err(_) => return Ok(()),
            Ok(r) => r?,
        }
    }
}
