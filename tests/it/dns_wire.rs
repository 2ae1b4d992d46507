//! Every answering rule over the wire, UDP and TCP, against tests/data/zones.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, RecordType};

use crate::support::{data, query, read_framed, tcp, tcp_raw, udp, udp_raw, TempDir, TestServer};

fn server() -> &'static TestServer {
    static S: OnceLock<TestServer> = OnceLock::new();
    S.get_or_init(|| TestServer::start_zones(&data("zones")))
}

fn ask(name: &str, t: RecordType) -> Message {
    udp(server().udp, &query(name, t, Some(1232)))
}

fn types(records: &[hickory_proto::rr::Record]) -> Vec<(String, RecordType)> {
    records.iter().map(|r| (r.name.to_string().to_lowercase(), r.record_type())).collect()
}

#[test]
fn positive_answers_are_authoritative() {
    let r = ask("ns1.example.com.", RecordType::A);
    assert!(r.metadata.authoritative);
    assert!(!r.metadata.recursion_available);
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(r.answers.len(), 1);
    assert!(r.authorities.is_empty());
}

#[test]
fn nxdomain_and_nodata_carry_the_soa_with_the_negative_ttl() {
    for (name, t, rc) in [
        ("nothere.example.com.", RecordType::A, ResponseCode::NXDomain),
        ("ns1.example.com.", RecordType::TXT, ResponseCode::NoError),
        ("c.example.com.", RecordType::A, ResponseCode::NoError), // empty non-terminal
    ] {
        let r = ask(name, t);
        assert_eq!(r.metadata.response_code, rc, "{name}");
        assert!(r.metadata.authoritative);
        assert!(r.answers.is_empty());
        assert_eq!(types(&r.authorities), vec![("example.com.".into(), RecordType::SOA)]);
        assert_eq!(r.authorities[0].ttl, 300, "min(SOA TTL 3600, MINIMUM 300)");
    }
}

#[test]
fn wildcards_follow_rfc_4592() {
    let r = ask("x.y.wild.example.com.", RecordType::A);
    assert_eq!(types(&r.answers), vec![("x.y.wild.example.com.".into(), RecordType::A)]);
    // wildcard NODATA
    let r = ask("x.wild.example.com.", RecordType::AAAA);
    assert_eq!((r.metadata.response_code, r.answers.len(), r.authorities.len()), (ResponseCode::NoError, 0, 1));
    // an existing name blocks the wildcard, below it there is none
    let r = ask("exists.wild.example.com.", RecordType::TXT);
    assert!(r.answers.is_empty());
    assert_eq!(ask("x.exists.wild.example.com.", RecordType::A).metadata.response_code, ResponseCode::NXDomain);
}

#[test]
fn cname_chains_are_followed_in_zone_and_loops_end() {
    let r = ask("chain1.example.com.", RecordType::A);
    let t = types(&r.answers);
    assert_eq!(t.len(), 4, "{t:?}");
    assert_eq!(t[3].1, RecordType::A);
    let r = ask("loop-a.example.com.", RecordType::A);
    assert_eq!(r.answers.len(), 2);
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    let r = ask("dangling.example.com.", RecordType::A);
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(r.answers.len(), 1);
}

#[test]
fn referrals_have_no_aa_and_carry_glue() {
    for name in ["sub.example.com.", "deep.below.sub.example.com.", "ns1.sub.example.com."] {
        let r = ask(name, RecordType::A);
        assert!(!r.metadata.authoritative, "{name}");
        assert!(r.answers.is_empty());
        assert!(r.authorities.iter().all(|a| a.record_type() == RecordType::NS));
        assert_eq!(r.authorities.len(), 4);
        let glue = types(&r.additionals);
        assert!(glue.contains(&("ns1.sub.example.com.".into(), RecordType::A)), "{glue:?}");
        assert!(glue.contains(&("ns1.sub.example.com.".into(), RecordType::AAAA)), "{glue:?}");
    }
    // DS at the cut is the parent's answer.
    let r = ask("sub.example.com.", RecordType::DS);
    assert!(r.metadata.authoritative);
    assert_eq!(types(&r.answers), vec![("sub.example.com.".into(), RecordType::DS)]);
}

#[test]
fn required_glue_that_does_not_fit_sets_tc_and_tcp_gets_it_all() {
    let q = query("fat.example.com.", RecordType::A, None);
    let r = udp(server().udp, &q);
    assert!(r.metadata.truncation);
    assert!(r.to_vec().unwrap().len() <= 512);
    let r = tcp(server().tcp, &q);
    assert!(!r.metadata.truncation);
    assert_eq!(r.additionals.len(), 36);
}

#[test]
fn additional_section_has_in_zone_mx_and_srv_targets() {
    let r = ask("example.com.", RecordType::MX);
    let add = types(&r.additionals);
    assert!(add.contains(&("mail.example.com.".into(), RecordType::A)), "{add:?}");
    assert!(add.contains(&("mail.example.com.".into(), RecordType::AAAA)), "{add:?}");
    let r = ask("_sip._tcp.example.com.", RecordType::SRV);
    assert!(!r.additionals.is_empty());
}

#[test]
fn any_over_udp_is_one_rrset() {
    let r = ask("example.com.", RecordType::ANY);
    let t = types(&r.answers);
    assert!(!t.is_empty());
    assert!(t.iter().all(|x| x.1 == t[0].1), "one RRset only: {t:?}");
}

#[test]
fn outside_zones_classes_opcodes_and_transfers_are_refused_or_notimp() {
    let s = server();
    assert_eq!(ask("www.example.org.", RecordType::A).metadata.response_code, ResponseCode::Refused);
    assert_eq!(ask(".", RecordType::SOA).metadata.response_code, ResponseCode::Refused);
    let mut q = query("example.com.", RecordType::SOA, None);
    q.queries[0].set_query_class(DNSClass::CH);
    assert_eq!(udp(s.udp, &q).metadata.response_code, ResponseCode::Refused);
    for (op, rc) in [(OpCode::Notify, ResponseCode::Refused), (OpCode::Update, ResponseCode::Refused), (OpCode::Status, ResponseCode::NotImp)] {
        let mut q = query("example.com.", RecordType::SOA, None);
        q.metadata.op_code = op;
        let r = udp(s.udp, &q);
        assert_eq!(r.metadata.response_code, rc, "{op:?}");
        assert!(!r.metadata.authoritative);
    }
    for t in [RecordType::AXFR, RecordType::IXFR] {
        let q = query("example.com.", t, None);
        assert_eq!(udp(s.udp, &q).metadata.response_code, ResponseCode::Refused);
        assert_eq!(tcp(s.tcp, &q).metadata.response_code, ResponseCode::Refused);
    }
}

#[test]
fn edns_is_echoed_badvers_for_version_1_and_udp_size_is_capped() {
    let s = server();
    let r = ask("ns1.example.com.", RecordType::A);
    let e = r.edns.as_ref().expect("OPT echoed");
    assert_eq!(e.max_payload(), 1232);
    assert!(udp(s.udp, &query("ns1.example.com.", RecordType::A, None)).edns.is_none());

    let mut q = query("ns1.example.com.", RecordType::A, Some(1232));
    q.edns.as_mut().unwrap().set_version(1);
    let raw = udp_raw(s.udp, &q.to_vec().unwrap()).unwrap();
    // BADVERS = 16: header RCODE 0, OPT extended RCODE 1.
    assert_eq!(raw[3] & 0x0f, 0);
    let r = Message::from_vec(&raw).unwrap();
    assert_eq!(r.edns.as_ref().unwrap().rcode_high(), 1);
    assert!(r.answers.is_empty());

    // 40 TXT records: too big for 512 and for 1232 even when the client offers 4096.
    for size in [None, Some(1232), Some(4096)] {
        let q = query("big.example.com.", RecordType::TXT, size);
        let raw = udp_raw(s.udp, &q.to_vec().unwrap()).unwrap();
        assert!(raw.len() <= size.map_or(512, |_| 1232), "{size:?}: {} bytes", raw.len());
        let r = Message::from_vec(&raw).unwrap();
        assert!(r.metadata.truncation, "{size:?}");
        assert!(r.answers.is_empty(), "no partial RRset");
        let full = tcp(s.tcp, &q);
        assert!(!full.metadata.truncation);
        assert_eq!(full.answers.len(), 40);
    }
}

#[test]
fn question_case_is_echoed_rd_copied_ra_never_set() {
    let mut q = query("NS1.ExAmPlE.cOm.", RecordType::A, None);
    q.metadata.recursion_desired = true;
    let raw = udp_raw(server().udp, &q.to_vec().unwrap()).unwrap();
    assert_eq!(&raw[12..12 + 17], b"\x03NS1\x07ExAmPlE\x03cOm\x00");
    let r = Message::from_vec(&raw).unwrap();
    assert!(r.metadata.recursion_desired);
    assert!(!r.metadata.recursion_available);
    assert_eq!(r.answers[0].name.to_string(), "NS1.ExAmPlE.cOm.");
}

/// The UDP workers keep whole answers by query bytes (dns::cache): asking the same bytes
/// again, with another ID, gives the same answer with that ID; other case, RD or EDNS
/// size are other questions and get their own answers.
#[test]
fn repeated_queries_get_the_same_answer_with_their_own_id() {
    let s = TestServer::start_zones(&data("zones"));
    let ask_raw = |m: &Message| udp_raw(s.udp, &m.to_vec().unwrap()).expect("an answer");
    let mut q = query("www.example.com.", RecordType::A, Some(1232));
    q.metadata.id = 0x1111;
    let first = ask_raw(&q);
    q.metadata.id = 0x2222;
    let second = ask_raw(&q);
    assert_eq!(&first[..2], &[0x11, 0x11]);
    assert_eq!(&second[..2], &[0x22, 0x22]);
    assert_eq!(first[2..], second[2..], "the same answer");
    let r = Message::from_vec(&second).unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(!r.answers.is_empty());

    let mut upper = query("WWW.Example.COM.", RecordType::A, Some(1232));
    upper.metadata.id = 0x3333;
    let upper = ask_raw(&upper);
    assert_eq!(&upper[12..12 + 17], b"\x03WWW\x07Example\x03COM\x00", "the client's case, not the cached one");
    assert_eq!(upper[2..12], second[2..12], "the same header apart from the ID");

    let mut rd = query("www.example.com.", RecordType::A, Some(1232));
    rd.metadata.recursion_desired = true;
    let rd = Message::from_vec(&ask_raw(&rd)).unwrap();
    assert!(rd.metadata.recursion_desired, "RD is copied from this query, not from the cached one");
    let classic = Message::from_vec(&ask_raw(&query("www.example.com.", RecordType::A, None))).unwrap();
    assert!(classic.edns.is_none(), "no EDNS in the query, none in the answer");
    let (_, metrics) = crate::support::http(s.http, "GET", "/metrics");
    assert!(metrics.lines().any(|l| l == "waypost_udp_answer_cache_hits_total 1"), "one hit (the second query):\n{metrics}");
}

/// A TCP thread keeps TCP answers the same way: two identical queries pipelined on one
/// connection get the same answer with their own IDs, the second from the cache, counted
/// in `waypost_tcp_answer_cache_hits_total`.
#[test]
fn pipelined_tcp_repeats_are_answered_from_the_tcp_cache() {
    let s = TestServer::start_zones(&data("zones"));
    let mut q = query("www.example.com.", RecordType::A, Some(1232));
    let mut wire = Vec::new();
    for id in [0x1111u16, 0x2222] {
        q.metadata.id = id;
        let m = q.to_vec().unwrap();
        wire.extend_from_slice(&(m.len() as u16).to_be_bytes());
        wire.extend_from_slice(&m);
    }
    let mut c = TcpStream::connect(s.tcp).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(&wire).unwrap();
    let first = read_framed(&mut c).expect("first answer");
    let second = read_framed(&mut c).expect("second answer");
    assert_eq!((&first[..2], &second[..2]), (&[0x11, 0x11][..], &[0x22, 0x22][..]));
    assert_eq!(first[2..], second[2..], "the same answer");
    let (_, metrics) = crate::support::http(s.http, "GET", "/metrics");
    assert!(metrics.lines().any(|l| l == "waypost_tcp_answer_cache_hits_total 1"), "one TCP hit:\n{metrics}");
    assert!(metrics.lines().any(|l| l == "waypost_udp_answer_cache_hits_total 0"), "no UDP hit:\n{metrics}");
}

fn header(id: u16, flags: u16, qd: u16, an: u16, ns: u16, ar: u16) -> Vec<u8> {
    [id, flags, qd, an, ns, ar].iter().flat_map(|v| v.to_be_bytes()).collect()
}

#[test]
fn malformed_packets_get_formerr_or_are_dropped_and_nothing_breaks() {
    let s = server();
    let q = b"\x07example\x03com\x00\x00\x06\x00\x01";
    let formerr = |p: &[u8]| {
        let r = udp_raw(s.udp, p).expect("an answer");
        assert_eq!(r[3] & 0x0f, 1, "FORMERR for {p:?}");
        assert!(r[2] & 0x80 != 0);
    };
    // QDCOUNT 0 and 2
    formerr(&header(1, 0, 0, 0, 0, 0));
    formerr(&[header(2, 0, 2, 0, 0, 0), q.to_vec(), q.to_vec()].concat());
    // truncated question, label too long, compression pointer in the question
    formerr(&[header(3, 0, 1, 0, 0, 0), q[..6].to_vec()].concat());
    formerr(&[header(4, 0, 1, 0, 0, 0), vec![64], vec![b'a'; 64], vec![0, 0, 1, 0, 1]].concat());
    formerr(&[header(5, 0, 1, 0, 0, 0), vec![0xc0, 0x0c, 0, 1, 0, 1]].concat());
    // an additional record whose compression pointer points forward (a loop)
    formerr(&[header(6, 0, 1, 0, 0, 1), q.to_vec(), vec![0xc0, 0x40, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]].concat());
    // two OPT records, trailing garbage
    let opt = [0u8, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0];
    formerr(&[header(7, 0, 1, 0, 0, 2), q.to_vec(), opt.to_vec(), opt.to_vec()].concat());
    formerr(&[header(8, 0, 1, 0, 0, 0), q.to_vec(), vec![1, 2, 3]].concat());
    // short packets and responses are dropped
    for len in 0..12 {
        assert!(udp_raw(s.udp, &vec![0u8; len]).is_none(), "len {len}");
    }
    assert!(udp_raw(s.udp, &[header(9, 0x8000, 1, 0, 0, 0), q.to_vec()].concat()).is_none(), "QR=1 is never answered");
    // still serving
    assert_eq!(ask("ns1.example.com.", RecordType::A).answers.len(), 1);
    // and over TCP a malformed query gets FORMERR too
    let r = tcp_raw(s.tcp, &header(10, 0, 0, 0, 0, 0)).unwrap();
    assert_eq!(r[3] & 0x0f, 1);
}

#[test]
fn tcp_pipelined_queries_are_all_answered_in_order() {
    let mut stream = TcpStream::connect(server().tcp).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let names = ["ns1.example.com.", "ns2.example.com.", "nothere.example.com.", "big.example.com."];
    let mut ids = Vec::new();
    let mut batch = Vec::new();
    for n in names {
        let q = query(n, if n.starts_with("big") { RecordType::TXT } else { RecordType::A }, None);
        ids.push(q.metadata.id);
        let b = q.to_vec().unwrap();
        batch.extend_from_slice(&(b.len() as u16).to_be_bytes());
        batch.extend_from_slice(&b);
    }
    stream.write_all(&batch).unwrap();
    for id in ids {
        let r = Message::from_vec(&read_framed(&mut stream).unwrap()).unwrap();
        assert_eq!(r.metadata.id, id);
        assert!(!r.metadata.truncation);
    }
}

fn limited_server(dir: &TempDir) -> TestServer {
    let cfg = dir.0.join("waypost.toml");
    std::fs::write(
        &cfg,
        format!(
            "version = 1\n[server]\nzones-dir = {:?}\ntcp-max-connections = 2\ntcp-idle-timeout = \"400ms\"\ntcp-read-timeout = \"400ms\"\n",
            data("zones").display().to_string()
        ),
    )
    .unwrap();
    TestServer::start_config(&cfg)
}

fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut b = [0u8; 1];
    matches!(stream.read(&mut b), Ok(0)) || matches!(stream.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset)
}

#[test]
fn tcp_idle_and_slow_clients_are_closed() {
    let dir = TempDir::new("tcp-limits");
    let s = limited_server(&dir);
    // idle: connect and say nothing
    let mut idle = TcpStream::connect(s.tcp).unwrap();
    let t = Instant::now();
    assert!(closed_within(&mut idle, Duration::from_secs(5)));
    assert!(t.elapsed() >= Duration::from_millis(300));
    // slow-loris: the length and half a message, then nothing
    let mut slow = TcpStream::connect(s.tcp).unwrap();
    slow.write_all(&[0, 40, 0x12, 0x34]).unwrap();
    assert!(closed_within(&mut slow, Duration::from_secs(5)));
}

#[test]
fn tcp_connection_cap_leaves_udp_unaffected() {
    let dir = TempDir::new("tcp-cap");
    let s = limited_server(&dir);
    let q = query("ns1.example.com.", RecordType::A, None).to_vec().unwrap();
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(s.tcp).unwrap();
        c.write_all(&[&(q.len() as u16).to_be_bytes()[..], &q].concat()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert!(read_framed(&mut c).is_some());
        held.push(c);
    }
    let mut third = TcpStream::connect(s.tcp).unwrap();
    let _ = third.write_all(&[&(q.len() as u16).to_be_bytes()[..], &q].concat());
    third.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    assert!(read_framed(&mut third).is_none(), "third connection is closed unanswered");
    assert_eq!(udp(s.udp, &query("ns1.example.com.", RecordType::A, None)).answers.len(), 1);
    drop(held);
}

/// TXT strings of a CH answer, with its class, TTL and AA flag.
fn chaos_txt(server: std::net::SocketAddr, name: &str, t: RecordType) -> (ResponseCode, Vec<(String, DNSClass, u32)>, bool) {
    let mut q = query(name, t, Some(1232));
    q.queries[0].set_query_class(DNSClass::CH);
    let r = udp(server, &q);
    let answers = r
        .answers
        .iter()
        .map(|rec| {
            let text = match &rec.data {
                hickory_proto::rr::RData::TXT(t) => t.txt_data.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect::<Vec<_>>().join(""),
                other => format!("{other:?}"),
            };
            (text, rec.dns_class, rec.ttl)
        })
        .collect();
    (r.metadata.response_code, answers, r.metadata.authoritative)
}

#[test]
fn chaos_txt_answers_identity_and_version_like_knot() {
    let s = server();
    let version = format!("Waypost {}", env!("CARGO_PKG_VERSION"));
    let host = waypost::config::chaos::host_name();
    for (name, want) in [("version.bind.", &version), ("VERSION.server.", &version), ("id.server.", &host), ("hostname.bind.", &host)] {
        let (rc, answers, aa) = chaos_txt(s.udp, name, RecordType::TXT);
        assert_eq!(rc, ResponseCode::NoError, "{name}");
        assert_eq!(answers, vec![(want.clone(), DNSClass::CH, 0)], "{name}");
        assert!(!aa, "{name}: Knot sets no AA on CH answers");
    }
    // Other CH names and other types are REFUSED, as Knot does.
    for (name, t) in [("authors.bind.", RecordType::TXT), ("version.bind.", RecordType::A), ("example.com.", RecordType::TXT)] {
        let (rc, answers, _) = chaos_txt(s.udp, name, t);
        assert_eq!((rc, answers.len()), (ResponseCode::Refused, 0), "{name} {t:?}");
    }

    // Configured: an explicit identity, and the version turned off.
    let dir = TempDir::new("chaos");
    let cfg = dir.0.join("waypost.toml");
    std::fs::write(&cfg, format!("version = 1\n[server]\nzones-dir = {:?}\nidentity = \"dc1-ns1\"\nversion = \"\"\n", data("zones"))).unwrap();
    let t = TestServer::start_config(&cfg);
    assert_eq!(chaos_txt(t.udp, "id.server.", RecordType::TXT).1, vec![("dc1-ns1".to_string(), DNSClass::CH, 0)]);
    assert_eq!(chaos_txt(t.udp, "version.bind.", RecordType::TXT).0, ResponseCode::Refused);
    let mut q = query("id.server.", RecordType::TXT, None);
    q.queries[0].set_query_class(DNSClass::CH);
    assert_eq!(tcp(t.tcp, &q).answers.len(), 1, "over TCP too");
}

/// An A query for www.example.com with an OPT record, carrying an empty NSID option or none.
fn nsid_query(ask: bool) -> Vec<u8> {
    let mut p = vec![0x4e, 0x53, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
    p.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
    if ask {
        p.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 4, 0, 3, 0, 0]);
    } else {
        p.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    }
    p
}

#[test]
fn nsid_is_sent_only_when_configured_and_asked_for() {
    // Default: no identifier; the OPT record (last in the answer) has no options.
    let r = udp_raw(server().udp, &nsid_query(true)).expect("answer");
    assert!(r.ends_with(&[0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]), "{r:02x?}");
    // Configured: the identifier comes back in an NSID option (RFC 5001 §2.2) ...
    let dir = TempDir::new("nsid");
    let cfg = dir.0.join("waypost.toml");
    std::fs::write(&cfg, format!("version = 1\n[server]\nzones-dir = {:?}\nnsid = \"dc1-ns1\"\n", data("zones"))).unwrap();
    let t = TestServer::start_config(&cfg);
    let r = udp_raw(t.udp, &nsid_query(true)).expect("answer");
    assert!(r.ends_with(b"\x00\x0b\x00\x03\x00\x07dc1-ns1"), "{r:02x?}");
    // ... and only to a query that asked for it.
    let r = udp_raw(t.udp, &nsid_query(false)).expect("answer");
    assert!(r.ends_with(&[0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]), "no options without the request: {r:02x?}");
}

/// `q` framed for TCP.
fn framed(q: &[u8]) -> Vec<u8> {
    [&(q.len() as u16).to_be_bytes()[..], q].concat()
}

/// A query for `name` with an OPT record holding `options` (raw option bytes).
fn query_with_options(name: &str, t: RecordType, options: &[u8]) -> Vec<u8> {
    let mut q = query(name, t, None).to_vec().unwrap();
    q[11] = 1; // ARCOUNT
    q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]);
    q.extend_from_slice(&(options.len() as u16).to_be_bytes());
    q.extend_from_slice(options);
    q
}

/// Many queries in one write (several hundred, some repeated, some with big answers, so
/// that the server writes them in several passes): every one is answered, in order, with
/// the answer a lone query gets.
#[test]
fn tcp_a_write_of_many_queries_gets_every_answer_in_order() {
    let s = server();
    let names = [
        ("ns1.example.com.", RecordType::A),
        ("nothere.example.com.", RecordType::A),
        ("big.example.com.", RecordType::TXT),
        ("many.example.com.", RecordType::A),
        ("to-big.example.com.", RecordType::TXT),
        ("x.wild.example.com.", RecordType::TXT),
    ];
    let mut batch = Vec::new();
    let mut want = Vec::new();
    for i in 0..300 {
        let (n, t) = names[i % names.len()];
        let q = query(n, t, if i % 2 == 0 { Some(4096) } else { None });
        let alone = tcp(s.tcp, &q);
        want.push((q.metadata.id, alone.answers.len(), alone.metadata.response_code));
        batch.extend_from_slice(&framed(&q.to_vec().unwrap()));
    }
    let mut stream = TcpStream::connect(s.tcp).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.write_all(&batch).unwrap();
    for (i, (id, answers, rcode)) in want.into_iter().enumerate() {
        let r = Message::from_vec(&read_framed(&mut stream).unwrap_or_else(|| panic!("answer {i}"))).unwrap();
        assert_eq!(r.metadata.id, id, "answer {i} in order");
        assert_eq!((r.answers.len(), r.metadata.response_code), (answers, rcode), "answer {i}");
        assert!(!r.metadata.truncation);
    }
    // The connection stays open for more (RFC 7766 §6.2.1).
    stream.write_all(&framed(&query("ns2.example.com.", RecordType::A, None).to_vec().unwrap())).unwrap();
    assert_eq!(Message::from_vec(&read_framed(&mut stream).unwrap()).unwrap().answers.len(), 1);
}

/// A message split anywhere across reads, the length prefix included, is answered once
/// whole; a second message that starts in the same write as the end of the first is too.
#[test]
fn tcp_a_query_split_across_reads_is_answered() {
    let s = server();
    let a = query("ns1.example.com.", RecordType::A, Some(1232));
    let b = query("ns2.example.com.", RecordType::A, None);
    let bytes = [framed(&a.to_vec().unwrap()), framed(&b.to_vec().unwrap())].concat();
    for cuts in [vec![1], vec![2], vec![1, 5, 20], vec![bytes.len() / 2 + 3]] {
        let mut stream = TcpStream::connect(s.tcp).unwrap();
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut from = 0;
        for &cut in &cuts {
            stream.write_all(&bytes[from..cut]).unwrap();
            std::thread::sleep(Duration::from_millis(30));
            from = cut;
        }
        stream.write_all(&bytes[from..]).unwrap();
        for want in [&a, &b] {
            let r = Message::from_vec(&read_framed(&mut stream).unwrap_or_else(|| panic!("cuts {cuts:?}"))).unwrap();
            assert_eq!(r.metadata.id, want.metadata.id, "cuts {cuts:?}");
            assert_eq!(r.answers.len(), 1);
        }
    }
}

/// A message that gets no answer (here a response, QR=1) closes the connection, after the
/// answers to the queries before it in the same write.
#[test]
fn tcp_an_unanswerable_message_closes_after_the_answers_before_it() {
    let s = server();
    let a = query("ns1.example.com.", RecordType::A, None);
    let mut bad = query("ns2.example.com.", RecordType::A, None).to_vec().unwrap();
    bad[2] |= 0x80;
    let c = query("ns2.example.com.", RecordType::A, None);
    let mut stream = TcpStream::connect(s.tcp).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.write_all(&[framed(&a.to_vec().unwrap()), framed(&bad), framed(&c.to_vec().unwrap())].concat()).unwrap();
    let r = Message::from_vec(&read_framed(&mut stream).unwrap()).unwrap();
    assert_eq!(r.metadata.id, a.metadata.id);
    assert!(read_framed(&mut stream).is_none(), "closed after the first answer");
}

/// Pipelining does not get around the read timeout: a complete query followed by part of
/// another is answered, then the connection is closed when the rest does not come.
#[test]
fn tcp_a_partial_message_after_a_complete_one_still_times_out() {
    let dir = TempDir::new("tcp-partial");
    let s = limited_server(&dir);
    let q = query("ns1.example.com.", RecordType::A, None);
    let mut stream = TcpStream::connect(s.tcp).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.write_all(&[framed(&q.to_vec().unwrap()), vec![0, 40, 0x12]].concat()).unwrap();
    assert_eq!(Message::from_vec(&read_framed(&mut stream).unwrap()).unwrap().metadata.id, q.metadata.id);
    let t = Instant::now();
    assert!(closed_within(&mut stream, Duration::from_secs(5)));
    assert!(t.elapsed() >= Duration::from_millis(300), "closed after the read timeout (400 ms), not at once");
}

/// The keepalive option (11) in a TCP answer, as (option code, TIMEOUT).
fn keepalive_of(answer: &[u8]) -> Option<u16> {
    let m = Message::from_vec(answer).expect("parsable answer");
    assert!(m.edns.is_some(), "the answer keeps its OPT record");
    // It is the last option of the last record.
    let tail = answer.get(answer.len() - 6..)?;
    (tail[..4] == [0, 11, 0, 2]).then(|| u16::from_be_bytes([tail[4], tail[5]]))
}

/// RFC 7828: a query over TCP with edns-tcp-keepalive gets the option back with the idle
/// timeout in units of 100 ms; without the option, or over UDP, the answer has none.
/// Repeated queries (answered from the TCP answer cache) carry it too.
#[test]
fn tcp_keepalive_is_answered_with_the_idle_timeout() {
    let dir = TempDir::new("tcp-keepalive");
    let s = limited_server(&dir); // tcp-idle-timeout = 400 ms
    let with = query_with_options("ns1.example.com.", RecordType::A, &[0, 11, 0, 0]);
    let with_nsid = query_with_options("nothere.example.com.", RecordType::A, &[0, 3, 0, 0, 0, 11, 0, 0]);
    let without = query_with_options("ns1.example.com.", RecordType::A, &[]);
    let mut stream = TcpStream::connect(s.tcp).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for _ in 0..3 {
        stream.write_all(&[framed(&with), framed(&with_nsid), framed(&without)].concat()).unwrap();
        let a = read_framed(&mut stream).unwrap();
        assert_eq!(keepalive_of(&a), Some(4), "400 ms idle timeout = 4 × 100 ms");
        assert_eq!(Message::from_vec(&a).unwrap().answers.len(), 1);
        let b = read_framed(&mut stream).unwrap();
        assert_eq!(keepalive_of(&b), Some(4), "with another option before it, NXDOMAIN");
        assert_eq!(Message::from_vec(&b).unwrap().metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(keepalive_of(&read_framed(&mut stream).unwrap()), None, "not asked for");
    }
    // The default idle timeout (10 s) is 100.
    let r = tcp_raw(server().tcp, &with).unwrap();
    assert_eq!(keepalive_of(&r), Some(100));
    // RFC 7828 §3.2.2: never over UDP.
    let u = udp_raw(s.udp, &with).unwrap();
    assert_eq!(keepalive_of(&u), None);
}
