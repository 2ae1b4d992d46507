//! UDP: one blocking socket per worker thread, all bound to the same address with
//! SO_REUSEPORT so the kernel spreads clients across workers. No async runtime on
//! this path: a packet costs one recv, one snapshot load, one answer, one send.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::answer::{answer_packet_guarded, Transport};
use crate::snapshot::SnapshotHandle;
use crate::status::metrics::{Metrics, Proto};

/// How often a blocked worker wakes to see whether the server is shutting down.
const SHUTDOWN_POLL: Duration = Duration::from_millis(200);
/// Largest datagram we read; anything longer is truncated by the kernel and then malformed.
const RECV_BUFFER: usize = 65_535;

fn socket_for(addr: SocketAddr) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_port(true)?;
    s.set_read_timeout(Some(SHUTDOWN_POLL))?;
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.bind(&addr.into())?;
    Ok(s)
}

/// Binds `workers` sockets to `addr` (port 0 is resolved by the first bind).
pub fn bind(addr: SocketAddr, workers: usize) -> io::Result<Vec<UdpSocket>> {
    let first = socket_for(addr)?;
    let bound = first.local_addr()?.as_socket().ok_or_else(|| io::Error::other("not an inet socket"))?;
    let mut socks = vec![UdpSocket::from(first)];
    for _ in 1..workers.max(1) {
        socks.push(UdpSocket::from(socket_for(bound)?));
    }
    Ok(socks)
}

/// Starts one thread per socket; they stop when `shutdown` becomes true.
pub fn spawn_workers(
    sockets: Vec<UdpSocket>,
    snapshot: Arc<SnapshotHandle>,
    metrics: Arc<Metrics>,
    shutdown: Arc<AtomicBool>,
) -> io::Result<Vec<JoinHandle<()>>> {
    sockets
        .into_iter()
        .enumerate()
        .map(|(i, sock)| {
            let (snapshot, metrics, shutdown) = (snapshot.clone(), metrics.clone(), shutdown.clone());
            std::thread::Builder::new()
                .name(format!("udp-{i}"))
                .spawn(move || serve(sock, &snapshot, &metrics, &shutdown))
        })
        .collect()
}

fn serve(sock: UdpSocket, snapshot: &SnapshotHandle, metrics: &Metrics, shutdown: &AtomicBool) {
    let mut inbuf = vec![0u8; RECV_BUFFER];
    let mut out = Vec::with_capacity(RECV_BUFFER);
    while !shutdown.load(Ordering::Relaxed) {
        let (len, peer) = match sock.recv_from(&mut inbuf) {
            Ok(v) => v,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "udp receive failed");
                continue;
            }
        };
        let snap = snapshot.load();
        match answer_packet_guarded(&snap.catalog, &snap.settings, &inbuf[..len], Transport::Udp, peer.ip(), &mut out) {
            Some(outcome) => {
                metrics.count_response(Proto::Udp, outcome.rcode, outcome.truncated);
                if let Err(e) = sock.send_to(&out, peer) {
                    tracing::debug!(error = %e, %peer, "udp send failed");
                }
            }
            None => {
                metrics.dropped_malformed.inc();
            }
        }
    }
}
