//! UDP: one blocking socket per worker thread, all bound to the same address with
//! SO_REUSEPORT so the kernel spreads clients across workers. No async runtime on
//! this path: datagrams are read and written in batches (recvmmsg/sendmmsg, as Knot
//! does), with one snapshot load per batch and no allocation per query.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use super::cache::AnswerCache;
use crate::rrl;
use crate::transfer::Inbox;
use crate::answer::{answer_packet_guarded, answer_packet_within, Transport, CLASSIC_UDP_SIZE, MTU_SAFE_UDP_PAYLOAD};
use crate::snapshot::SnapshotHandle;
use crate::metrics::{Metrics, Proto, Tally};

/// How often a blocked worker wakes to see whether the server is shutting down.
const SHUTDOWN_POLL: Duration = Duration::from_millis(200);
/// Initial capacity of each answer buffer: a default-sized UDP answer (1232 bytes) fits;
/// a larger configured limit grows a buffer once. Small buffers keep a batch's working set
/// in few cache lines.
const OUTPUT_INITIAL: usize = 1536;

fn socket_for(addr: SocketAddr) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_port(true)?;
    s.set_read_timeout(Some(SHUTDOWN_POLL))?;
    never_fragment(&s, addr.is_ipv6());
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.bind(&addr.into())?;
    Ok(s)
}

/// Answers are never fragmented, and learnt path MTUs are ignored (IP_PMTUDISC_PROBE):
/// - DF is set on IPv4 and IPv6 answers are never fragmented at the source (RFC 9715
///   §3.1 R1/R2, as BIND does since DNS flag day 2020): fragments are what off-path
///   cache-poisoning attacks forge. An answer too big for the outgoing interface fails
///   with EMSGSIZE and is answered again within 1232 bytes (see `Batch::send`), so the
///   client gets TC and retries over TCP instead of losing a fragment on the way.
/// - Forged ICMP "fragmentation needed" messages cannot shrink answers (RFC 8900 §3.2):
///   only the interface MTU counts.
/// - With DF set the IPv4 identification field is 0, which spares the kernel the shared
///   IP-ID generator (`__ip_select_ident`, about 1.5% of the CPU per answer here) and
///   leaks no counter to observers.
///
/// Best effort: an older kernel without PROBE keeps its default.
fn never_fragment(s: &Socket, v6: bool) {
    let (level, name, value) = if v6 {
        (libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER, libc::IPV6_PMTUDISC_PROBE)
    } else {
        (libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, libc::IP_PMTUDISC_PROBE)
    };
    // SAFETY: a plain int option on a socket we own; the kernel copies 4 bytes from `value`.
    let r = unsafe {
        libc::setsockopt(s.as_raw_fd(), level, name, (&value as *const libc::c_int).cast(), std::mem::size_of::<libc::c_int>() as libc::socklen_t)
    };
    if r != 0 {
        tracing::debug!(error = %io::Error::last_os_error(), "cannot set PMTUDISC_PROBE on a UDP socket");
    }
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
    inbox: Arc<Inbox>,
    shutdown: Arc<AtomicBool>,
) -> io::Result<Vec<JoinHandle<()>>> {
    sockets
        .into_iter()
        .enumerate()
        .map(|(i, sock)| {
            let (snapshot, metrics, inbox, shutdown) = (snapshot.clone(), metrics.clone(), inbox.clone(), shutdown.clone());
            std::thread::Builder::new()
                .name(format!("udp-{i}"))
                .spawn(move || serve(sock, &snapshot, &metrics, &inbox, &shutdown))
        })
        .collect()
}

fn serve(sock: UdpSocket, snapshot: &SnapshotHandle, metrics: &Metrics, inbox: &Inbox, shutdown: &AtomicBool) {
    let mut batch = Batch::new();
    let mut cache = AnswerCache::default();
    let mut tally = Tally::with_capacity(BATCH);
    let mut sampled: u32 = 0;
    while !shutdown.load(Ordering::Relaxed) {
        let n = match batch.receive(&sock) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "udp receive failed");
                continue;
            }
        };
        // One snapshot for the whole batch: a reload lands between batches.
        let snap = snapshot.load();
        let second = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as u32);
        for i in 0..n {
            let Some((query, peer, out)) = batch.slot(i) else {
                metrics.dropped_malformed.inc();
                batch.skip(i);
                continue;
            };
            // The latency histogram samples one query in LATENCY_SAMPLE: two clock reads and
            // a histogram update per query would cost more than the answer itself.
            sampled = sampled.wrapping_add(1);
            let started = (sampled % LATENCY_SAMPLE == 0).then(std::time::Instant::now);
            let outcome = match cache.get(snap.id, query, peer.ip(), out) {
                Ok(cached) => {
                    tally.cache_hits += 1;
                    Some(cached)
                }
                Err(miss) => {
                    let mut outcome = answer_packet_guarded(&snap, query, Transport::Udp, peer.ip(), out);
                    match &mut outcome {
                        // TSIG, transfers and NOTIFY (rare): answered by `transfer`.
                        Some(o) if o.handoff => match crate::transfer::respond(&snap, query, Transport::Udp, peer.ip(), inbox, metrics, out) {
                            Some(rc) => o.rcode = rc,
                            None => outcome = None,
                        },
                        Some(o) => cache.put(miss, snap.id, query, peer.ip(), o, out),
                        None => {}
                    }
                    outcome
                }
            };
            if let Some(t) = started {
                metrics.answer_seconds.observe(t.elapsed().as_secs_f64());
            }
            match outcome {
                Some(outcome) => match snap.rrl.check(peer.ip(), outcome.rrl_class, second) {
                    rrl::Verdict::Send => tally.response(outcome.rcode, outcome.truncated, outcome.service),
                    rrl::Verdict::Slip => {
                        rrl::truncate_response(out, outcome.question_end);
                        metrics.rrl_slipped.inc();
                    }
                    rrl::Verdict::Drop => {
                        metrics.rrl_dropped.inc();
                        batch.skip(i);
                    }
                },
                None => {
                    metrics.dropped_malformed.inc();
                    batch.skip(i);
                }
            }
        }
        drop(snap);
        metrics.flush(Proto::Udp, &mut tally);
        // Rare: an answer bigger than the outgoing interface's MTU (see never_fragment).
        let too_big = |query: &[u8], peer: SocketAddr, limit: usize, out: &mut Vec<u8>| {
            if limit == SHRINK_LIMITS[0] {
                // Counted once per answer, not per size tried.
                metrics.udp_too_big.inc();
            }
            answer_packet_within(&snapshot.load(), query, Transport::Udp, peer.ip(), limit, out).is_some()
        };
        if let Err(e) = batch.send(&sock, n, too_big) {
            tracing::debug!(error = %e, "udp send failed");
        }
    }
}

/// One UDP query in this many is timed for `waypost_answer_seconds`.
const LATENCY_SAMPLE: u32 = 16;

/// Datagrams read or written per system call (recvmmsg/sendmmsg).
const BATCH: usize = 32;
/// Receive slot size: larger queries are truncated by the kernel, flagged MSG_TRUNC, and
/// dropped. 4 KiB plus two cache lines, so that consecutive slots do not start in the
/// same L1 cache set (a 4 KiB stride would make all 32 compete for one set).
const SLOT: usize = 4096 + 128;

/// Buffers for one recvmmsg/sendmmsg round. The kernel structures point into the
/// buffers, which are heap allocations that never move or grow, so moving the Batch
/// is safe. Each round resets only the entries the previous round changed.
struct Batch {
    input: Vec<[u8; SLOT]>,
    output: Vec<Vec<u8>>,
    addrs: Vec<libc::sockaddr_storage>,
    iov: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
    /// Slots with nothing to send.
    skipped: [bool; BATCH],
    /// Length of each received datagram.
    received: [u16; BATCH],
    /// The slot each entry of the send list answers (send() packs the list).
    order: [u8; BATCH],
    /// Entries 0..dirty were changed by the last receive or send.
    dirty: usize,
}

impl Batch {
    fn new() -> Self {
        let mut b = Batch {
            input: vec![[0u8; SLOT]; BATCH],
            output: (0..BATCH).map(|_| Vec::with_capacity(OUTPUT_INITIAL)).collect(),
            // never panics: all-zero bytes are a valid sockaddr_storage / iovec / mmsghdr.
            addrs: vec![unsafe { std::mem::zeroed() }; BATCH],
            iov: vec![unsafe { std::mem::zeroed() }; BATCH],
            msgs: vec![unsafe { std::mem::zeroed() }; BATCH],
            skipped: [false; BATCH],
            received: [0; BATCH],
            order: [0; BATCH],
            dirty: BATCH,
        };
        for i in 0..BATCH {
            let h = &mut b.msgs[i].msg_hdr;
            h.msg_name = (&mut b.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_iov = &mut b.iov[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
        }
        b
    }

    /// Blocks until at least one datagram arrives (or the socket's read timeout passes).
    fn receive(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        for i in 0..self.dirty {
            self.iov[i] = libc::iovec { iov_base: self.input[i].as_mut_ptr().cast(), iov_len: SLOT };
            let m = &mut self.msgs[i];
            m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            m.msg_hdr.msg_flags = 0;
            m.msg_len = 0;
            self.skipped[i] = false;
        }
        // SAFETY: msgs holds BATCH initialised headers whose pointers reference buffers owned
        // by self, which outlive the call; the kernel writes at most iov_len / msg_namelen bytes.
        let n = unsafe {
            libc::recvmmsg(sock.as_raw_fd(), self.msgs.as_mut_ptr(), BATCH as libc::c_uint, libc::MSG_WAITFORONE, std::ptr::null_mut())
        };
        if n < 0 {
            self.dirty = 0;
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for (len, m) in self.received.iter_mut().zip(&self.msgs[..n]) {
            *len = m.msg_len as u16;
        }
        self.dirty = n;
        Ok(n)
    }

    /// The i-th received datagram, its sender and its answer buffer; None if the datagram
    /// was truncated or has no usable address.
    fn slot(&mut self, i: usize) -> Option<(&[u8], SocketAddr, &mut Vec<u8>)> {
        let m = &self.msgs[i];
        if m.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
            return None;
        }
        let peer = sockaddr_to_std(&self.addrs[i])?;
        Some((&self.input[i][..self.received[i] as usize], peer, &mut self.output[i]))
    }

    fn skip(&mut self, i: usize) {
        self.skipped[i] = true;
    }

    /// Sends the answers of slots 0..n (skipping dropped ones) to their senders. An answer
    /// the kernel refuses as too big for the outgoing interface (EMSGSIZE) is handed to
    /// `too_big(query, peer, limit, answer)` to be answered again within `limit` bytes
    /// (1232, then 512) and sent again; `too_big` returns false to drop it instead.
    fn send<F>(&mut self, sock: &UdpSocket, n: usize, mut too_big: F) -> io::Result<()>
    where
        F: FnMut(&[u8], SocketAddr, usize, &mut Vec<u8>) -> bool,
    {
        let mut k = 0;
        for i in 0..n {
            if self.skipped[i] {
                continue;
            }
            self.iov[k] = libc::iovec { iov_base: self.output[i].as_mut_ptr().cast(), iov_len: self.output[i].len() };
            if k != i {
                self.addrs[k] = self.addrs[i];
                self.msgs[k].msg_hdr.msg_namelen = self.msgs[i].msg_hdr.msg_namelen;
            }
            self.msgs[k].msg_hdr.msg_flags = 0;
            self.order[k] = i as u8;
            k += 1;
        }
        let mut sent = 0;
        // Smaller answers already tried for entry `sent`.
        let mut shrunk = 0;
        while sent < k {
            // SAFETY: as in receive(); entries sent..k are initialised and point into self.
            let r = unsafe { libc::sendmmsg(sock.as_raw_fd(), self.msgs[sent..].as_mut_ptr(), (k - sent) as libc::c_uint, 0) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                if e.raw_os_error() == Some(libc::EMSGSIZE) && shrunk < SHRINK_LIMITS.len() {
                    let i = self.order[sent] as usize;
                    let limit = SHRINK_LIMITS[shrunk];
                    shrunk += 1;
                    let query = &self.input[i][..self.received[i] as usize];
                    if let Some(peer) = sockaddr_to_std(&self.addrs[sent]) {
                        if too_big(query, peer, limit, &mut self.output[i]) {
                            self.iov[sent] = libc::iovec { iov_base: self.output[i].as_mut_ptr().cast(), iov_len: self.output[i].len() };
                            continue;
                        }
                    }
                }
                // Skip the datagram that failed (e.g. an unreachable peer) and go on.
                sent += 1;
                shrunk = 0;
                if sent >= k {
                    return Err(e);
                }
                continue;
            }
            sent += r as usize;
            shrunk = 0;
        }
        Ok(())
    }
}

/// Answer sizes tried, in order, for an answer too big for the outgoing interface: one
/// that fits the IPv6 minimum MTU, then the classic DNS limit (every IPv4 host takes 576).
const SHRINK_LIMITS: [usize; 2] = [MTU_SAFE_UDP_PAYLOAD, CLASSIC_UDP_SIZE];

fn sockaddr_to_std(a: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match a.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let sin = unsafe { &*(a as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::new(ip.into(), u16::from_be(sin.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let sin6 = unsafe { &*(a as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::new(ip.into(), u16::from_be(sin6.sin6_port)))
        }
        _ => None,
    }
}
