//! Packet bytes → response (or drop), against the differential-test zones. Any panic is a bug.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use waypost::answer::{answer_packet, Transport};
#[path = "common.rs"]
mod common;
use common::snapshot;

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    for t in [Transport::Udp, Transport::Tcp] {
        let _ = answer_packet(snapshot(), data, t, IpAddr::V4(Ipv4Addr::LOCALHOST), &mut out);
    }
});
