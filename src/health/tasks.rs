//! The monitor's tasks (pingora's `background.rs`): one probe loop per unique check and
//! one pull loop per peer. Each is bounded in time per round, so a hung target or a dead
//! peer delays only itself. The probe itself is a [`Probe`], so tests bring their own and
//! drive the loops with `tokio::time::pause()`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::fleet;
use super::probe::{ProbeResult, Prober};
use super::Monitor;
use crate::config::fleet::{FleetConfig, Peer};
use crate::config::fnv1a;
use crate::config::health::Check;

/// One probe of one target, bounded in time by the implementation.
pub trait Probe: Send + Sync {
    fn probe(&self) -> Pin<Box<dyn Future<Output = ProbeResult> + Send + '_>>;
}

impl Probe for Prober {
    fn probe(&self) -> Pin<Box<dyn Future<Output = ProbeResult> + Send + '_>> {
        Box::pin(Prober::probe(self))
    }
}

/// Makes the probe of a check.
pub type ProbeFactory = Arc<dyn Fn(&Check) -> Result<Arc<dyn Probe>, String> + Send + Sync>;

/// HTTP(S) and TCP probes ([`Prober`]).
pub(super) fn real_probes() -> ProbeFactory {
    Arc::new(|check: &Check| Ok(Arc::new(Prober::new(check)?) as Arc<dyn Probe>))
}

/// A stable start offset within the interval, so checks do not all fire together.
pub(super) fn jitter(id: &str, interval: Duration) -> Duration {
    let ms = interval.as_millis().max(1) as u64;
    Duration::from_millis(fnv1a(id.as_bytes()) % ms)
}

/// One task per check: probe every interval (bounded concurrency; a hung target only
/// holds its own slot until its timeout), report to the monitor.
pub(super) async fn probe_loop(monitor: Arc<Monitor>, id: String, check: Check) {
    let prober = match monitor.probe_for(&check) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(target_id = %id, error = %e, "cannot build the probe");
            return;
        }
    };
    tokio::time::sleep(jitter(&id, check.interval)).await;
    let mut tick = tokio::time::interval(check.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let sem = monitor.semaphore();
        let Ok(permit) = sem.acquire().await else { return };
        let r = prober.probe().await;
        drop(permit);
        monitor.observe(&id, &r);
    }
}

/// The HTTP client for pulling peers: `https://` peers verified against `[fleet] ca`
/// (else the system's roots), with this instance's client certificate if configured.
fn peer_client(fleet: &FleetConfig) -> Result<reqwest::Client, String> {
    let tls = crate::tls::client_config(&fleet.tls).map_err(|e| e.to_string())?;
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy().use_preconfigured_tls(tls).build().map_err(|e| e.to_string())
}

/// One task per peer: pull its observations every interval (bounded by a timeout; a slow
/// or dead peer delays nothing else).
pub(super) async fn peer_loop(monitor: Arc<Monitor>, peer: Peer, fleet: FleetConfig) {
    let client = match peer_client(&fleet) {
        Ok(c) => c,
        Err(e) => {
            // The reload path checked the same TLS files (crate::tls::load); say so if
            // they changed in between.
            tracing::error!(peer = %peer.name, error = %e, "cannot build the peer client");
            monitor.record_pull(&peer.name, Err(format!("cannot build the peer client: {e}")), Duration::ZERO);
            return;
        }
    };
    let timeout = fleet.interval.max(Duration::from_millis(200)).min(Duration::from_secs(5));
    let mut tick = tokio::time::interval(fleet.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let started = tokio::time::Instant::now();
        let etag = monitor.peer_etag(&peer.name);
        let r = fleet::pull(&client, &peer, fleet.token.as_ref().map(|t| t.expose()), etag.as_deref(), timeout).await;
        monitor.record_pull(&peer.name, r, started.elapsed());
    }
}
