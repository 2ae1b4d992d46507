//! Wiring: reads the config and the state file and builds the first snapshot
//! ([`prepare`]), binds the listeners, starts the UDP workers, the TCP and HTTP tasks
//! and the control side's loops, handles signals, and owns shutdown. Decides nothing.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::Config;
use crate::control::{self, Control};
use crate::health::Monitor;
use crate::dns;
use crate::snapshot::{Snapshot, SnapshotHandle};
use crate::metrics::Metrics;
use crate::status::http;

/// Longest time shutdown waits for in-flight TCP queries and the HTTP server.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot bind {proto} {addr}")]
    Bind { proto: &'static str, addr: SocketAddr, source: std::io::Error },
    #[error("cannot start UDP workers")]
    Threads(#[source] std::io::Error),
}

/// A started server: where it listens and how to stop it.
pub struct Running {
    pub udp: Vec<SocketAddr>,
    pub tcp: Vec<SocketAddr>,
    pub http: SocketAddr,
    pub control: Arc<Control>,
    shutdown_tx: watch::Sender<bool>,
    udp_stop: Arc<AtomicBool>,
    udp_threads: Vec<JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Number of UDP workers for a config (0 = one per core).
fn udp_workers(config: &Config) -> usize {
    match config.udp_workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// Everything `start` needs: the config, its first snapshot (built with the saved
/// health state), and the health monitor that read the state file.
pub struct Prepared {
    pub config: Config,
    pub snapshot: Snapshot,
    pub report: crate::control::ReloadReport,
    pub monitor: Arc<Monitor>,
    pub config_path: Option<std::path::PathBuf>,
    pub overrides: crate::config::Overrides,
}

/// Loads the config, reads the state file, loads zones and builds the first snapshot.
pub fn prepare(config_path: Option<std::path::PathBuf>, overrides: crate::config::Overrides) -> Result<Prepared, Vec<crate::config::Problem>> {
    let config = Config::load(config_path.as_deref(), &overrides)?;
    let monitor = Monitor::new(config.health.state_file.clone()).map_err(|msg| {
        vec![crate::config::Problem { file: config.health.state_file.clone().unwrap_or_default(), line: 0, msg }]
    })?;
    let (config, mut snapshot, report) = crate::control::load_all(config_path.as_deref(), &overrides, None, Some(&monitor))?;
    crate::transfer::prepare(None, &mut snapshot);
    Ok(Prepared { config, snapshot, report, monitor, config_path, overrides })
}

/// Port-0 attempts at one port number free for both TCP and UDP.
const PORT_ZERO_ATTEMPTS: usize = 16;

/// The TCP listener and the UDP sockets of one DNS address, on one port number. TCP is
/// bound first; for port 0 the kernel picks a TCP port whose UDP twin may be taken by
/// another program, so then another port is tried.
async fn bind_dns(addr: SocketAddr, workers: usize) -> Result<(tokio::net::TcpListener, SocketAddr, SocketAddr, Vec<std::net::UdpSocket>), StartError> {
    let mut attempt = 1;
    loop {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| StartError::Bind { proto: "tcp", addr, source })?;
        let tcp_addr = listener.local_addr().map_err(|source| StartError::Bind { proto: "tcp", addr, source })?;
        let udp_addr = SocketAddr::new(addr.ip(), tcp_addr.port());
        match dns::udp::bind(udp_addr, workers) {
            Ok(socks) => return Ok((listener, tcp_addr, udp_addr, socks)),
            Err(e) if addr.port() == 0 && e.kind() == std::io::ErrorKind::AddrInUse && attempt < PORT_ZERO_ATTEMPTS => attempt += 1,
            Err(source) => return Err(StartError::Bind { proto: "udp", addr: udp_addr, source }),
        }
    }
}

/// Binds everything and starts serving. Must be called inside a tokio runtime.
pub async fn start(p: Prepared) -> Result<Running, StartError> {
    let Prepared { config, snapshot, monitor, config_path, overrides, .. } = p;
    let config = &config;
    // Before the first answer: the serials this start serves are kept.
    crate::control::build::keep_serials(config, &snapshot.serials, None);
    let metrics = Arc::new(Metrics::new());
    metrics.zones.set(snapshot.catalog.len() as i64);
    metrics.generation.set(snapshot.generation as i64);
    metrics.set_services(&snapshot.services);
    let handle = Arc::new(SnapshotHandle::new(snapshot));
    let control = Arc::new(Control::new(config_path, overrides, handle.clone(), metrics.clone(), monitor.clone()));
    // Before the first query: a secondary copy already past its expire answers SERVFAIL.
    control::secondary::expire_stale_copies(&control);
    let m = metrics.clone();
    monitor.set_observer(Box::new(move |id, r, flipped| m.observe_probe(id, r, flipped)));
    monitor.reconcile(&config.health, &config.fleet);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let udp_stop = Arc::new(AtomicBool::new(false));
    let workers = udp_workers(config);

    let mut udp = Vec::new();
    let mut tcp = Vec::new();
    let mut udp_threads = Vec::new();
    let mut tasks = Vec::new();
    for &addr in &config.dns_listen {
        let (listener, tcp_addr, udp_addr, socks) = bind_dns(addr, workers).await?;
        tracing::info!(udp = %udp_addr, tcp = %tcp_addr, udp_workers = workers, "serving DNS");
        udp.push(udp_addr);
        tcp.push(tcp_addr);
        udp_threads.extend(dns::udp::spawn_workers(socks, handle.clone(), metrics.clone(), control.inbox.clone(), udp_stop.clone()).map_err(StartError::Threads)?);
        tasks.push(tokio::spawn(dns::tcp::serve(listener, handle.clone(), metrics.clone(), control.inbox.clone(), config.tcp, shutdown_rx.clone())));
    }

    let http_listener = tokio::net::TcpListener::bind(config.http_listen)
        .await
        .map_err(|source| StartError::Bind { proto: "http", addr: config.http_listen, source })?;
    let http_addr = http_listener.local_addr().map_err(|source| StartError::Bind { proto: "http", addr: config.http_listen, source })?;
    let scheme = if handle.load().http_tls.is_some() { "https" } else { "http" };
    tracing::info!(http = %http_addr, scheme, "serving HTTP API");
    let router = http::router(control.clone());
    tasks.push(tokio::spawn(http::serve(http_listener, router, control.clone(), shutdown_rx.clone())));

    tasks.push(tokio::spawn(control::tasks::watch_geo_database(control.clone(), shutdown_rx.clone())));
    tasks.push(tokio::spawn(control::tasks::publish_health(control.clone(), shutdown_rx.clone())));
    tasks.push(tokio::spawn(control::tasks::resign(control.clone(), shutdown_rx.clone())));
    tasks.push(tokio::spawn(control::secondary::run(control.clone(), shutdown_rx.clone())));

    // What the first build freed goes back to the system once answers flow (trimming a big
    // heap takes a moment; the query threads do not allocate, so they do not wait on it).
    std::thread::spawn(crate::control::return_freed_memory);
    Ok(Running { udp, tcp, http: http_addr, control, shutdown_tx, udp_stop, udp_threads, tasks })
}

impl Running {
    /// Stops accepting, finishes in-flight TCP queries (bounded by [`SHUTDOWN_GRACE`]) and
    /// joins the UDP workers.
    pub async fn shutdown(self) {
        let _ = self.shutdown_tx.send(true);
        self.control.monitor.stop();
        self.udp_stop.store(true, Ordering::Relaxed);
        let tasks = futures_join(self.tasks);
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, tasks).await;
        let threads = self.udp_threads;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }

    /// Serves until SIGTERM or SIGINT; reloads on SIGHUP. `signals` must be installed
    /// before the server announces itself, or an early SIGHUP would kill the process.
    pub async fn run_until_signal(self, mut signals: Signals) {
        loop {
            tokio::select! {
                _ = signals.hup.recv() => {
                    tracing::info!("SIGHUP: reloading");
                    let _ = self.control.reload(crate::health::history::Actor::Signal).await;
                }
                _ = signals.term.recv() => break,
                _ = signals.int.recv() => break,
            }
        }
        tracing::info!("shutting down");
        self.shutdown().await;
    }
}

/// The signals the server handles, installed before anything is bound.
pub struct Signals {
    hup: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    /// Must be called inside a tokio runtime.
    pub fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals { hup: signal(SignalKind::hangup())?, term: signal(SignalKind::terminate())?, int: signal(SignalKind::interrupt())? })
    }
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}
