//! Parse → answer → re-parse: whenever hickory accepts the input as a query and we
//! answer it, our response must parse too, with the same ID and question.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;
use waypost::answer::{answer_packet, Transport};
#[path = "common.rs"]
mod common;
use common::snapshot;

fuzz_target!(|data: &[u8]| {
    let Ok(q) = Message::from_vec(data) else { return };
    if q.queries.len() != 1 {
        return;
    }
    let mut out = Vec::new();
    if answer_packet(snapshot(), data, Transport::Tcp, IpAddr::V4(Ipv4Addr::LOCALHOST), &mut out).is_none() {
        return;
    }
    let r = Message::from_vec(&out).expect("our response parses");
    assert_eq!(r.metadata.id, q.metadata.id);
    if let Some(rq) = r.queries.first() {
        assert_eq!(rq.name().to_ascii().to_lowercase(), q.queries[0].name().to_ascii().to_lowercase());
    }
});
