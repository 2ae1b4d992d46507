//! NOTIFY out (RFC 1996): on every serial change of a zone, each `[transfer] notify`
//! target is told over UDP, TSIG-signed when its entry names a key, retried with the
//! wait doubling until it answers (each try after the first counted as
//! `waypost_transfers_total{kind="notify-out",result="retry"}`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;

use crate::config::defaults::{NOTIFY_FIRST_WAIT, NOTIFY_TRIES};
use crate::config::transfer::TsigKey;
use crate::metrics::{Metrics, TransferLabels};
use crate::snapshot::Snapshot;
use crate::wire::query::{class, rcode, rtype};
use crate::wire::Name;

use super::tsig;

/// The zones of `new` whose serial differs from `old`'s (or that are new), with it.
pub fn changed(old: &Snapshot, new: &Snapshot) -> Vec<(Name, u32)> {
    new.catalog
        .iter()
        .filter(|z| old.catalog.find(z.apex.as_wire()).filter(|o| o.apex == z.apex).is_none_or(|o| o.serial != z.serial))
        .map(|z| (z.apex.clone(), z.serial))
        .collect()
}

/// Tells every notify target of each changed zone, in the background.
pub fn spawn_all(snap: &Snapshot, zones: Vec<(Name, u32)>, metrics: &Arc<Metrics>) {
    let cfg = &snap.config.transfer;
    for (apex, serial) in zones {
        for t in &cfg.notify {
            let key = t.key.map(|k| cfg.keys[k].clone());
            let (apex, address, metrics) = (apex.clone(), t.address, metrics.clone());
            tokio::spawn(async move {
                let result = send(&apex, address, key.as_ref(), &metrics).await;
                let label = if result.is_ok() { "ok" } else { "failed" };
                metrics.transfers.get_or_create(&TransferLabels { kind: "notify-out", result: label }).inc();
                match result {
                    Ok(()) => tracing::info!(zone = %apex, serial, target = %address, "NOTIFY acknowledged"),
                    Err(e) => tracing::warn!(zone = %apex, serial, target = %address, error = %e, "NOTIFY not acknowledged"),
                }
            });
        }
    }
}

/// A random message ID (RFC 5452 §9.2: IDs a spoofer cannot guess).
pub(super) fn random_id() -> u16 {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 2];
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    u16::from_be_bytes(b)
}

/// A NOTIFY for `apex` (opcode 4, AA, the SOA question), signed with `key` when given;
/// returns it with the MAC its answer's signature covers.
pub fn message(apex: &Name, key: Option<&TsigKey>, now: u64) -> (Vec<u8>, Option<Vec<u8>>) {
    let mut m = Vec::with_capacity(512);
    m.extend_from_slice(&random_id().to_be_bytes());
    m.extend_from_slice(&[0x24, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    m.extend_from_slice(apex.as_wire());
    m.extend_from_slice(&rtype::SOA.to_be_bytes());
    m.extend_from_slice(&class::IN.to_be_bytes());
    let mac = key.map(|k| tsig::sign(&mut m, k, None, tsig::Part::First, 0, &[], now));
    (m, mac)
}

/// Sends one NOTIFY until `address` acknowledges it (NOERROR, signed when it was) or the
/// tries run out; each try after the first is counted.
pub async fn send(apex: &Name, address: SocketAddr, key: Option<&TsigKey>, metrics: &Metrics) -> Result<(), String> {
    let bind: SocketAddr = if address.is_ipv4() { "0.0.0.0:0".parse().unwrap_or(address) } else { "[::]:0".parse().unwrap_or(address) };
    let sock = UdpSocket::bind(bind).await.map_err(|e| format!("cannot bind: {e}"))?;
    let mut wait = NOTIFY_FIRST_WAIT;
    let mut last = String::from("no answer");
    for attempt in 0..NOTIFY_TRIES {
        if attempt > 0 {
            metrics.transfers.get_or_create(&TransferLabels { kind: "notify-out", result: "retry" }).inc();
        }
        let (m, mac) = message(apex, key, super::now_secs());
        if let Err(e) = sock.send_to(&m, address).await {
            last = format!("cannot send: {e}");
        } else {
            match tokio::time::timeout(wait, answer(&sock, address, &m, key, mac)).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => last = e,
                Err(_) => last = format!("no answer within {wait:?}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        wait *= 2;
    }
    Err(last)
}

/// Waits for the answer to `m` from `address` (other datagrams are ignored).
async fn answer(sock: &UdpSocket, address: SocketAddr, m: &[u8], key: Option<&TsigKey>, mac: Option<Vec<u8>>) -> Result<(), String> {
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, from) = sock.recv_from(&mut buf).await.map_err(|e| format!("cannot receive: {e}"))?;
        let a = &buf[..n];
        if from != address || n < 12 || a[..2] != m[..2] || a[2] & 0x80 == 0 {
            continue;
        }
        if let (Some(k), Some(mac)) = (key, &mac) {
            let mut check = tsig::ResponseCheck::new(k, mac.clone());
            check.message(a, super::now_secs())?;
        }
        let rc = (a[3] & 0x0f) as u16;
        return if rc == rcode::NOERROR { Ok(()) } else { Err(format!("answered RCODE {rc}")) };
    }
}
