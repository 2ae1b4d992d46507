//! Packet bytes → response (or drop), against the differential-test zones. Any panic is a bug.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use waypost::answer::{answer_packet, Transport};
use waypost::snapshot::Snapshot;
use waypost::zones::{load_catalog, LoadLimits};

fn snapshot() -> &'static Snapshot {
    static S: OnceLock<Snapshot> = OnceLock::new();
    S.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/zones");
        Snapshot::from_catalog(load_catalog(std::path::Path::new(dir), &LoadLimits::default(), None).expect("zones").catalog)
    })
}

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    for t in [Transport::Udp, Transport::Tcp] {
        let _ = answer_packet(snapshot(), data, t, IpAddr::V4(Ipv4Addr::LOCALHOST), &mut out);
    }
});
