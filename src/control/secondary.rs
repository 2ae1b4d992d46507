//! Zones received from a primary (`[secondary."ZONE."]`): one loop refreshes every such
//! zone on its SOA timers (RFC 1035 §4.3.5, RFC 1996: sooner on a NOTIFY), transfers
//! it when the primary's serial is newer (RFC 1982), keeps the copy on disk, and
//! publishes it through an ordinary reload. A failure keeps the copy serving; past the
//! SOA expire time without a successful refresh the zone answers SERVFAIL.
//!
//! ```text
//!  timer / NOTIFY (Inbox) ─► SOA query ─► newer? ─► IXFR (AXFR if that fails) ─► file.tmp
//!    ─► zones::load (the checks of a zone file) ─► rename ─► Control::reload
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::watch;

use crate::config::defaults::SECONDARY_MIN_REFRESH;
use crate::config::transfer::Secondary;
use crate::metrics::TransferLabels;
use crate::transfer::client::{self, Copy, Fetched};
use crate::wire::Name;

use super::Control;

/// What status shows of one secondary zone.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SecondaryStatus {
    pub zone: String,
    pub primary: String,
    /// Serial of the copy served (None: no copy yet).
    pub serial: Option<u32>,
    pub last_transfer: Option<String>,
    /// `ixfr` or `axfr`.
    pub last_transfer_kind: Option<&'static str>,
    /// Last time the primary answered (SOA check or transfer); after a restart, the
    /// copy's file time until it answers again.
    pub last_refresh: Option<String>,
    pub next_refresh: Option<String>,
    pub last_error: Option<String>,
    /// Past the SOA expire time without a refresh: answered with SERVFAIL.
    pub expired: bool,
}

struct ZoneState {
    status: SecondaryStatus,
    due: SystemTime,
    /// Last successful refresh (at start: the copy's modification time).
    fresh_at: Option<SystemTime>,
    /// The copy's SOA expire (None: no copy).
    expire: Option<Duration>,
}

impl ZoneState {
    /// What the copy on disk tells of a zone: its serial, its SOA expire, and when it was
    /// last refreshed. That time is the file's modification time: a transfer writes the
    /// file and every other successful refresh sets it (as BIND does with its secondary
    /// files), so it survives a restart without another state file. A copy put back
    /// without its time (`cp` without `-p`) counts as refreshed when it was put back.
    fn from_disk(sec: &Secondary, now: SystemTime) -> ZoneState {
        let copy = Copy::read(&sec.file);
        let mtime = std::fs::metadata(&sec.file).and_then(|m| m.modified()).ok().filter(|_| copy.is_some());
        let (_, _, expire) = timers(copy.as_ref());
        ZoneState {
            status: SecondaryStatus {
                zone: sec.apex.to_string(),
                primary: sec.primary.to_string(),
                serial: copy.and_then(|c| c.soa).map(|s| s.serial),
                last_refresh: mtime.map(rfc3339),
                ..Default::default()
            },
            due: now,
            fresh_at: mtime,
            expire,
        }
    }
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Refreshes every secondary zone of the current config until shutdown.
pub async fn run(control: Arc<Control>, mut shutdown: watch::Receiver<bool>) {
    let mut states: BTreeMap<Name, ZoneState> = BTreeMap::new();
    loop {
        let config = control.snapshot.load().config.clone();
        let zones = &config.transfer.secondaries;
        states.retain(|apex, _| zones.iter().any(|s| &s.apex == apex));
        let now = SystemTime::now();
        // A zone new to the loop (at start, or added by a reload): its copy's expiry is
        // decided and shown before any network, so a copy already past its expire does not
        // answer while the first refresh waits for a primary that is down.
        let added: Vec<&Secondary> = zones.iter().filter(|s| !states.contains_key(&s.apex)).collect();
        for &sec in &added {
            let mut st = ZoneState::from_disk(sec, now);
            check_expiry(&control, sec, &mut st);
            states.insert(sec.apex.clone(), st);
        }
        if !added.is_empty() {
            control.set_secondaries(states.values().map(|s| s.status.clone()).collect());
        }
        for sec in zones {
            let Some(st) = states.get_mut(&sec.apex) else { continue };
            let notified = control.inbox.take(&sec.apex);
            if notified || now >= st.due {
                refresh(&control, sec, st).await;
            }
            check_expiry(&control, sec, st);
        }
        control.set_secondaries(states.values().map(|s| s.status.clone()).collect());
        let next = states.values().map(|s| s.due).min().and_then(|d| d.duration_since(SystemTime::now()).ok()).unwrap_or(Duration::ZERO);
        // Re-read the config at least every second (a reload may add or drop zones).
        let wait = next.min(Duration::from_secs(1)).max(Duration::from_millis(20));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = control.inbox.wait() => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// The SOA timers of the copy, held to the minimum (a 0 would spin).
fn timers(copy: Option<&Copy>) -> (Duration, Duration, Option<Duration>) {
    let secs = |s: u32| Duration::from_secs(s as u64).max(SECONDARY_MIN_REFRESH);
    match copy.and_then(|c| c.soa) {
        Some(s) => (secs(s.refresh), secs(s.retry), Some(Duration::from_secs(s.expire as u64))),
        // No copy yet: ask again soon.
        None => (SECONDARY_MIN_REFRESH, SECONDARY_MIN_REFRESH, None),
    }
}

async fn refresh(control: &Arc<Control>, sec: &Secondary, st: &mut ZoneState) {
    let key = {
        let snap = control.snapshot.load();
        sec.key.map(|k| snap.config.transfer.keys[k].clone())
    };
    let copy = Copy::read(&sec.file);
    let (refresh_every, retry_every, _) = timers(copy.as_ref());
    let result = refresh_once(control, sec, key.as_ref(), copy.as_ref(), st).await;
    let now = SystemTime::now();
    let label = match &result {
        Ok(()) => "ok",
        Err(_) => "failed",
    };
    control.metrics.transfers.get_or_create(&TransferLabels { kind: "refresh", result: label }).inc();
    match result {
        Ok(()) => {
            st.status.last_error = None;
            st.status.last_refresh = Some(rfc3339(now));
            st.fresh_at = Some(now);
            let (refresh_every, _, expire) = timers(Copy::read(&sec.file).as_ref());
            st.due = now + refresh_every;
            st.expire = expire;
            // The copy's time tells a restart how fresh it is (for expire).
            if let Ok(f) = std::fs::File::options().append(true).open(&sec.file) {
                let _ = f.set_modified(now);
            }
        }
        Err(e) => {
            tracing::warn!(zone = %sec.apex, primary = %sec.primary, error = %e, "refresh from the primary failed; the copy held keeps serving");
            st.status.last_error = Some(e);
            st.due = now + retry_every.min(refresh_every);
        }
    }
    st.status.next_refresh = Some(rfc3339(st.due));
}

async fn refresh_once(control: &Arc<Control>, sec: &Secondary, key: Option<&crate::config::transfer::TsigKey>, copy: Option<&Copy>, st: &mut ZoneState) -> Result<(), String> {
    let soa = client::soa(sec.primary, &sec.apex, key).await.map_err(|e| format!("SOA query: {e}"))?;
    if let Some(held) = copy.and_then(|c| c.soa) {
        if held.serial == soa.serial {
            return Ok(());
        }
        if !crate::transfer::serial_lt(held.serial, soa.serial) {
            return Err(format!("the primary's serial {} is older than the copy's {} (RFC 1982); keeping the copy", soa.serial, held.serial));
        }
    }
    // IXFR from the copy, AXFR when there is none or the IXFR fails.
    let within = control.snapshot.load().config.transfer.timeout;
    let fetched = match client::fetch(sec.primary, &sec.apex, key, copy, within).await {
        Ok(f) => f,
        Err(e) if copy.is_some() => {
            tracing::info!(zone = %sec.apex, error = %e, "IXFR failed; trying AXFR");
            client::fetch(sec.primary, &sec.apex, key, None, within).await.map_err(|e| format!("AXFR: {e}"))?
        }
        Err(e) => return Err(format!("AXFR: {e}")),
    };
    let (new, incremental) = match fetched {
        Fetched::UpToDate => return Ok(()),
        Fetched::Zone { copy, incremental } => (copy, incremental),
    };
    // The received zone must pass every check of a zone file before it replaces the copy.
    let tmp = sec.file.with_extension("received");
    new.write(&tmp, &sec.apex, sec.primary).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    let limits = control.snapshot.load().config.load_limits;
    let checked = crate::zones::load::load_zone(&tmp, &limits);
    match checked {
        Err(problems) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(format!("the received zone is rejected: {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")));
        }
        Ok(z) if z.zone.apex != sec.apex => {
            let _ = std::fs::remove_file(&tmp);
            return Err(format!("the received zone is {}, not {}", z.zone.apex, sec.apex));
        }
        Ok(_) => {}
    }
    std::fs::rename(&tmp, &sec.file).map_err(|e| format!("cannot replace {}: {e}", sec.file.display()))?;
    let kind = if incremental { "ixfr" } else { "axfr" };
    st.status.serial = new.soa.map(|s| s.serial);
    st.status.last_transfer = Some(rfc3339(SystemTime::now()));
    st.status.last_transfer_kind = Some(kind);
    tracing::info!(zone = %sec.apex, primary = %sec.primary, serial = st.status.serial, kind, "zone received");
    control.set_expired(&sec.apex, false);
    control.reload(crate::health::history::Actor::Transfer).await.map(|_| ()).map_err(|p| format!("the received zone did not load: {}", p.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")))
}

/// Marks, before anything is served, every secondary zone whose copy on disk is already
/// past its SOA expire (its modification time + expire, see [`ZoneState::from_disk`]), so
/// a restart with the primary down answers SERVFAIL at once rather than serving the stale
/// copy until the first refresh attempt fails.
pub fn expire_stale_copies(control: &Control) {
    let config = control.snapshot.load().config.clone();
    let now = SystemTime::now();
    for sec in &config.transfer.secondaries {
        check_expiry(control, sec, &mut ZoneState::from_disk(sec, now));
    }
}

/// Past the SOA expire since the last successful refresh?
fn past_expire(fresh_at: Option<SystemTime>, expire: Option<Duration>, now: SystemTime) -> bool {
    match (expire, fresh_at) {
        (Some(e), Some(t)) => t + e < now,
        _ => false,
    }
}

/// Marks the zone expired (SERVFAIL) or not, publishing when that changes.
fn check_expiry(control: &Control, sec: &Secondary, st: &mut ZoneState) {
    let expired = past_expire(st.fresh_at, st.expire, SystemTime::now());
    st.status.expired = expired;
    if expired == control.is_expired(&sec.apex) {
        return;
    }
    if expired {
        tracing::error!(zone = %sec.apex, primary = %sec.primary, "zone expired: no refresh from the primary within the SOA expire time; answering SERVFAIL");
    }
    control.set_expired(&sec.apex, expired);
    control.publish_expired();
}
