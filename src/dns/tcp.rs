//! TCP (RFC 7766): two-byte length framing, pipelined queries answered in order,
//! a cap on connections (global and per client), an idle timeout between queries, a read
//! timeout per message (so a slow client cannot hold a slot) and a write timeout (a
//! client that never reads).
//!
//! ```text
//! tcp-N thread (own single-threaded runtime; one per CPU, ≤ 4): accept ─► connection task
//!
//! readable ─► read all that is there ─► answer every complete message ─► one write
//!   ▲           (one buffer per conn)     (cache hit: copy + new ID;      (all answers
//!   │                                      else answer_packet; per pass:   of the pass)
//!   └── idle / read timeout, shutdown      one snapshot, one metrics flush)
//! ```
//!
//! Per query nothing allocates and nothing is awaited: a connection owns its input,
//! output and answer buffers, and answers are gathered per pass and written with one
//! system call (RFC 7766 §8: "DNS clients and servers SHOULD pass the two-octet length
//! field, and the message described by that length field, to the TCP layer at the same
//! time (e.g., in a single 'write' system call)"). A pass stops gathering at
//! [`BATCH_OUTPUT`] bytes, so a client that asks much and reads little holds a bounded
//! buffer. Connections stay open between queries until the idle timeout (RFC 7766
//! §6.2.3), and a query with the edns-tcp-keepalive option learns that timeout
//! (RFC 7828, `keepalive`).

use std::cell::RefCell;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::{timeout, Instant};

use super::cache::AnswerCache;
use super::keepalive;
use crate::answer::{answer_packet_guarded, Transport};
use crate::transfer::Inbox;
use crate::config::TcpLimits;
use crate::metrics::{Metrics, Proto, Tally};
use crate::snapshot::{Snapshot, SnapshotHandle};

/// Initial size of a connection's input buffer: a read takes up to this much, about a
/// hundred pipelined queries. It grows (once) for a message that does not fit.
const INPUT_INITIAL: usize = 4096;
/// Initial size of the output and answer buffers: most answers fit, larger ones grow them.
const OUTPUT_INITIAL: usize = 2048;
/// A pass writes what it gathered once it holds this many bytes, then goes on answering.
/// This bounds a connection's output buffer to about this plus one answer (≤ 64 KiB).
pub const BATCH_OUTPUT: usize = 64 * 1024;

thread_local! {
    /// TCP answers of this TCP thread (see `cache`). Only TCP answers go in, made with this
    /// server's keepalive TIMEOUT; entries are keyed by `Snapshot::id`, unique in the process
    /// and owned by one server, so another server's answers (other limits) are never hit.
    static CACHE: RefCell<AnswerCache> = RefCell::new(AnswerCache::default());
}

/// TCP threads at most when `server.tcp-threads` is 0 (see [`serve`]).
const MAX_THREADS: usize = 4;

/// Accepts connections until `shutdown` turns true; in-flight queries are finished.
///
/// Connections are served by TCP threads of their own, each with a single-threaded tokio
/// runtime and a handle on the listening socket (as the UDP workers have their own
/// threads, and as Knot has `tcp-workers`): `server.tcp-threads`, by default one per CPU
/// this process may run on, at most [`MAX_THREADS`]. On the shared multi-threaded
/// runtime, every wake-up of a connection also woke the other worker to look for work (a
/// futex wake and a context switch for about every second query at 40k queries/s); here
/// a connection's wake-up is one epoll_wait. Returns when every TCP thread has finished its connections.
pub async fn serve(
    listener: TcpListener,
    snapshot: Arc<SnapshotHandle>,
    metrics: Arc<Metrics>,
    inbox: Arc<Inbox>,
    limits: TcpLimits,
    shutdown: watch::Receiver<bool>,
) {
    let listener = match listener.into_std() {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "tcp listener cannot be moved to the TCP threads");
            return;
        }
    };
    // Accepted sockets inherit TCP_NODELAY from the listener (Linux): one setsockopt here
    // instead of one per connection. Answers are gathered into one write per pass, so
    // Nagle's algorithm would only delay them.
    let nodelay_inherited = socket2::SockRef::from(&listener).set_tcp_nodelay(true).is_ok();
    let threads = match limits.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, MAX_THREADS),
        n => n,
    };
    let accept = Arc::new(Admission {
        slots: Semaphore::new(limits.max_connections),
        per_client: std::sync::Mutex::default(),
        inbox,
    });
    // Each thread holds a sender; recv() returns None once every thread has ended.
    let (ended_tx, mut ended) = tokio::sync::mpsc::channel::<()>(1);
    for i in 0..threads {
        let handle = match listener.try_clone() {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "tcp listener cannot be shared with a TCP thread");
                break;
            }
        };
        let (snapshot, metrics, accept, shutdown, ended_tx) = (snapshot.clone(), metrics.clone(), accept.clone(), shutdown.clone(), ended_tx.clone());
        let spawned = std::thread::Builder::new().name(format!("tcp-{i}")).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "tcp thread cannot start its runtime");
                    return;
                }
            };
            runtime.block_on(async move {
                match TcpListener::from_std(handle) {
                    Ok(l) => accept_loop(l, snapshot, metrics, limits, accept, nodelay_inherited, shutdown).await,
                    Err(e) => tracing::error!(error = %e, "tcp thread cannot register the listener"),
                }
            });
            drop(ended_tx);
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a TCP thread");
        }
    }
    drop((listener, ended_tx));
    let _ = ended.recv().await;
}

/// What every TCP thread consults when it accepts (never touched per query).
struct Admission {
    /// Where an accepted NOTIFY goes (see `transfer::respond`).
    inbox: Arc<Inbox>,
    slots: Semaphore,
    /// Connections per client address.
    per_client: std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>,
}

/// An admitted connection's slot and per-client count, given back on drop (also when the
/// connection task panics).
struct Admitted {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        {
            let mut m = self.admission.per_client.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = m.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&self.ip);
                }
            }
        }
        self.admission.slots.add_permits(1);
    }
}

/// One TCP thread: accepts until `shutdown`, then finishes its connections.
async fn accept_loop(
    listener: TcpListener,
    snapshot: Arc<SnapshotHandle>,
    metrics: Arc<Metrics>,
    limits: TcpLimits,
    accept: Arc<Admission>,
    nodelay_inherited: bool,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            // Reap ended connections so the set stays as small as the open ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
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
        let Ok(permit) = accept.slots.try_acquire() else {
            // Over the cap: close at once rather than queue (RFC 7766 §6.2.2 lets servers
            // close connections to manage resources).
            metrics.tcp_refused.inc();
            drop(stream);
            continue;
        };
        let ip = peer.ip().to_canonical();
        {
            let mut m = accept.per_client.lock().unwrap_or_else(|p| p.into_inner());
            let n = m.entry(ip).or_insert(0);
            if *n >= limits.max_per_client {
                metrics.tcp_refused.inc();
                drop(stream);
                continue;
            }
            *n += 1;
        }
        // The slot now belongs to `admitted`, which the connection task owns.
        permit.forget();
        let admitted = Admitted { admission: accept.clone(), ip };
        if !nodelay_inherited {
            let _ = stream.set_nodelay(true);
        }
        let (snapshot, metrics, shutdown) = (snapshot.clone(), metrics.clone(), shutdown.clone());
        connections.spawn(async move {
            metrics.tcp_connections.inc();
            if let Err(e) = connection(stream, peer.ip(), &snapshot, &metrics, &admitted.admission.inbox, &limits, shutdown).await {
                tracing::debug!(error = %e, %peer, "tcp connection ended");
            }
            metrics.tcp_connections.dec();
            drop(admitted);
        });
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// One connection's buffers, reused for every query on it.
struct Conn {
    peer: IpAddr,
    /// Bytes read and not yet answered: whole messages first, then at most one partial one.
    input: Vec<u8>,
    /// Framed answers of the current pass, written together.
    output: Vec<u8>,
    /// One answer as `answer_packet` writes it (it starts each answer with a clear buffer).
    answer: Vec<u8>,
    tally: Tally,
    /// The keepalive TIMEOUT (100 ms units) sent to queries that carry the option.
    keepalive: u16,
}

/// How a pass over the input ended.
#[derive(Debug, PartialEq, Eq)]
enum Pass {
    /// Every complete message was answered.
    Done,
    /// The output reached BATCH_OUTPUT: write it and answer on.
    Full,
    /// A message that gets no answer: after writing what came before it, close (there is
    /// no way to resynchronise politely).
    Close,
}

impl Conn {
    fn new(peer: IpAddr, limits: &TcpLimits) -> Conn {
        Conn {
            peer,
            input: Vec::with_capacity(INPUT_INITIAL),
            output: Vec::with_capacity(OUTPUT_INITIAL),
            answer: Vec::with_capacity(OUTPUT_INITIAL),
            tally: Tally::default(),
            keepalive: keepalive::timeout_units(limits.idle_timeout),
        }
    }

    /// Length of the message at `at` with its prefix, if its prefix is there.
    fn framed_len(&self, at: usize) -> Option<usize> {
        let len = self.input.get(at..at + 2)?;
        Some(2 + u16::from_be_bytes([len[0], len[1]]) as usize)
    }

    /// Answers the complete messages from input offset `*at` on into `output`, advancing
    /// `*at` past each one answered. Never awaits; the cache is borrowed for the pass only.
    fn answer_pass(&mut self, snap: &Snapshot, metrics: &Metrics, inbox: &Inbox, at: &mut usize) -> Pass {
        let Conn { peer, input, output, answer, tally, keepalive } = self;
        CACHE.with_borrow_mut(|cache| {
            while let Some(query) = input.get(*at..).and_then(|rest| {
                let n = 2 + u16::from_be_bytes([*rest.first()?, *rest.get(1)?]) as usize;
                rest.get(2..n)
            }) {
                let outcome = match cache.lookup(snap.id, query, *peer) {
                    Ok((cached, outcome)) => {
                        tally.cache_hits += 1;
                        output.extend_from_slice(&(cached.len() as u16).to_be_bytes());
                        let start = output.len();
                        output.extend_from_slice(cached);
                        output[start..start + 2].copy_from_slice(&query[..2]);
                        outcome
                    }
                    Err(miss) => {
                        let Some(mut outcome) = answer_packet_guarded(snap, query, Transport::Tcp, *peer, answer) else {
                            metrics.dropped_malformed.inc();
                            return Pass::Close;
                        };
                        if outcome.handoff {
                            // TSIG, transfers and NOTIFY: `transfer` writes the framed messages.
                            let Some(rc) = crate::transfer::respond(snap, query, Transport::Tcp, *peer, inbox, metrics, output) else {
                                metrics.dropped_malformed.inc();
                                return Pass::Close;
                            };
                            outcome.rcode = rc;
                            tally.response(outcome.rcode, false, None);
                            *at += 2 + query.len();
                            if output.len() >= BATCH_OUTPUT {
                                return Pass::Full;
                            }
                            continue;
                        }
                        // RFC 7828 §3.2.2: the option goes back to a query over TCP that sent it.
                        if keepalive::requested(query) {
                            keepalive::append(answer, *keepalive);
                        }
                        cache.put(miss, snap.id, query, *peer, &outcome, answer);
                        output.extend_from_slice(&(answer.len() as u16).to_be_bytes());
                        output.extend_from_slice(answer);
                        outcome
                    }
                };
                // Counted as sent: a write that fails after this closes the connection anyway.
                tally.response(outcome.rcode, outcome.truncated, outcome.service);
                *at += 2 + query.len();
                if output.len() >= BATCH_OUTPUT {
                    return Pass::Full;
                }
            }
            Pass::Done
        })
    }
}

/// Writes all of `buf` within `within`; false if that took too long. Most passes fit the
/// socket buffer: one write and no timer.
async fn write_batch(stream: &mut TcpStream, buf: &[u8], within: Duration) -> io::Result<bool> {
    let done = match stream.try_write(buf) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
        Err(e) => return Err(e),
    };
    if done == buf.len() {
        return Ok(true);
    }
    match timeout(within, stream.write_all(&buf[done..])).await {
        Err(_) => Ok(false),
        Ok(r) => r.map(|()| true),
    }
}

async fn connection(
    mut stream: TcpStream,
    peer: IpAddr,
    snapshot: &SnapshotHandle,
    metrics: &Metrics,
    inbox: &Inbox,
    limits: &TcpLimits,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let mut c = Conn::new(peer, limits);
    let stop = shutdown.changed();
    tokio::pin!(stop);
    // One timer for the connection, re-armed lazily: it fires at or before the deadline
    // that applies, and only then is the real deadline checked (no timer per read).
    let timer = tokio::time::sleep(limits.idle_timeout);
    tokio::pin!(timer);
    // The end of the last pass (idle time counts from there), and when the first byte of
    // the partial message at the start of `input` arrived (the read timeout counts from there).
    let mut last_activity = Instant::now();
    let mut partial_since: Option<Instant> = None;
    loop {
        let deadline = match partial_since {
            Some(t) => t + limits.read_timeout,
            None => last_activity + limits.idle_timeout,
        };
        if deadline < timer.deadline() {
            timer.as_mut().reset(deadline);
        }
        let n = tokio::select! {
            biased;
            r = stream.read_buf(&mut c.input) => r?,
            _ = &mut timer => {
                if Instant::now() >= deadline {
                    return Ok(()); // idle, or a message that did not arrive in time
                }
                timer.as_mut().reset(deadline);
                continue;
            }
            _ = &mut stop => return Ok(()),
        };
        if n == 0 {
            return Ok(()); // client closed (a partial message is dropped)
        }
        let first_byte_at = Instant::now();
        let continues_partial = partial_since.is_some();

        // Answer everything complete, writing whenever a pass fills the output.
        let mut at = 0;
        loop {
            let pass = c.answer_pass(&snapshot.load(), metrics, inbox, &mut at);
            metrics.flush(Proto::Tcp, &mut c.tally);
            if !c.output.is_empty() {
                // A zone transfer's output can be megabytes: the write timeout applies per
                // MiB, so a secondary on a slow link is not cut off for the zone's size.
                let within = limits.write_timeout * (1 + (c.output.len() >> 20) as u32);
                let written = write_batch(&mut stream, &c.output, within).await?;
                c.output.clear();
                if !written {
                    return Ok(()); // the client does not read
                }
            }
            match pass {
                Pass::Full => continue,
                Pass::Done => break,
                Pass::Close => return Ok(()),
            }
        }
        // Keep the partial message at the front, with room for all of it.
        c.input.drain(..at);
        partial_since = match (c.input.is_empty(), at > 0 || !continues_partial) {
            (true, _) => None,
            (false, true) => Some(first_byte_at),
            (false, false) => partial_since,
        };
        if let Some(need) = c.framed_len(0) {
            if need > c.input.capacity() {
                c.input.reserve_exact(need - c.input.len());
            }
        }
        last_activity = Instant::now();
    }
}
