use super::*;
use crate::wire::Name;

fn key() -> TsigKey {
    TsigKey { name: Name::from_text("xfr").unwrap(), algorithm: TsigAlgorithm::Sha256, secret: b"0123456789abcdef".to_vec().into() }
}

fn query() -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend_from_slice(b"\x07example\x03com\x00\x00\xfc\x00\x01");
    q
}

#[test]
fn signed_request_checks_and_tampering_fails() {
    let k = key();
    let mut q = query();
    let mac = sign(&mut q, &k, None, Part::First, 0, &[], 1_000_000);
    let ok = check_request(&q, std::slice::from_ref(&k), 1_000_100).unwrap().unwrap();
    assert_eq!(ok, Checked { key: 0, mac: mac.clone() });
    // Unsigned: None.
    assert_eq!(check_request(&query(), std::slice::from_ref(&k), 0), Ok(None));
    // Another secret: BADSIG; unknown key: BADKEY; too late: BADTIME.
    let other = TsigKey { secret: b"another".to_vec().into(), ..key() };
    assert_eq!(check_request(&q, std::slice::from_ref(&other), 1_000_000), Err(Rejected::Unsigned { error: error::BADSIG }));
    let named = TsigKey { name: Name::from_text("other").unwrap(), ..key() };
    assert_eq!(check_request(&q, &[named], 1_000_000), Err(Rejected::Unsigned { error: error::BADKEY }));
    assert!(matches!(check_request(&q, std::slice::from_ref(&k), 1_000_000 + 301), Err(Rejected::BadTime { key: 0, .. })));
    let mut bad = q.clone();
    bad[13] ^= 0x20;
    assert_eq!(check_request(&bad, std::slice::from_ref(&k), 1_000_000), Err(Rejected::Unsigned { error: error::BADSIG }));
    // A TSIG that is not the last record: FORMERR.
    let mut notlast = q.clone();
    notlast.extend_from_slice(&[0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]);
    notlast[11] += 1;
    assert_eq!(check_request(&notlast, std::slice::from_ref(&k), 1_000_000), Err(Rejected::Malformed));
}

#[test]
fn a_stream_checks_message_by_message() {
    let k = key();
    let mut q = query();
    let qmac = sign(&mut q, &k, None, Part::First, 0, &[], 50);
    let mut check = ResponseCheck::new(&k, qmac.clone());
    let mut prior = qmac;
    for i in 0..3 {
        let mut m = query();
        m[2] = 0x84;
        let part = if i == 0 { Part::First } else { Part::Subsequent };
        if i == 1 {
            // An unsigned message in between, covered by the next signed one.
            check.message(&m, 50).unwrap();
            let mut next = query();
            next[2] = 0x84;
            let mut covered = m.clone();
            covered.extend_from_slice(&next);
            // Sign as the server would: prior MAC + both messages + timers.
            let mut ctx = hmac::Context::with_key(&hmac::Key::new(hmac::HMAC_SHA256, &k.secret));
            feed_prior(&mut ctx, Some(&prior));
            ctx.update(&covered);
            feed_variables(&mut ctx, &k, 50, TSIG_FUDGE, 0, &[], true);
            let mac = ctx.sign().as_ref().to_vec();
            append(&mut next, k.name.as_wire(), algorithm_name(k.algorithm), 50, &mac, 0, &[]);
            check.message(&next, 50).unwrap();
            prior = mac;
            continue;
        }
        prior = sign(&mut m, &k, Some(&prior), part, 0, &[], 50);
        check.message(&m, 50).unwrap();
    }
    check.finish().unwrap();
    let mut m = query();
    sign(&mut m, &k, Some(b"wrong"), Part::Subsequent, 0, &[], 50);
    assert!(check.message(&m, 50).is_err());
}

/// (algorithm, its wire name, MAC length, the MAC of `query()` signed with `key()`'s secret
/// at 1,000,000 with fudge 300, computed apart from this code with Python's `hmac` over the
/// RFC 8945 §4.3.3 digest: the message, then key name, class ANY, TTL 0, algorithm name,
/// time, fudge, error 0, other length 0).
const ALGORITHMS: [(TsigAlgorithm, &[u8], usize, &str); 4] = [
    (TsigAlgorithm::Sha1, b"\x09hmac-sha1\x00", 20, "f3e16d80d0e0b5963e8cc3956d5a88ee256fa554"),
    (TsigAlgorithm::Sha256, b"\x0bhmac-sha256\x00", 32, "2fd62cab3a55b1d0ba87dca0b99b9dad4cce912ea0d31b91675e307dc147e0be"),
    (
        TsigAlgorithm::Sha384,
        b"\x0bhmac-sha384\x00",
        48,
        "dc6a6d3058119ac93ce2a7ae13bca7e726657f217790ca193b5ff541ba79d3fbf73502f957061583a504d6d8a8a02fc9",
    ),
    (
        TsigAlgorithm::Sha512,
        b"\x0bhmac-sha512\x00",
        64,
        "2f15b80453708d763e6e0b7844909347922ace6ec9747587b44af11dcbc670b3573678e301cf0aa5822ab2a79385dc421fc9d14c1054ccec474eb79c50e062fe",
    ),
];

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn every_algorithm_signs_as_the_rfc_says_and_checks() {
    for (alg, wire_name, len, expected) in ALGORITHMS {
        let k = TsigKey { algorithm: alg, ..key() };
        let mut q = query();
        let mac = sign(&mut q, &k, None, Part::First, 0, &[], 1_000_000);
        assert_eq!(hex(&mac), expected, "{alg:?}: the MAC of a known message");
        let r = find(&q).unwrap().unwrap();
        assert_eq!((r.algorithm, r.mac.len(), r.fudge), (Some(alg), len, TSIG_FUDGE), "{alg:?}");
        assert!(q.windows(wire_name.len()).any(|w| w == wire_name), "{alg:?}: its name on the wire");
        assert_eq!(check_request(&q, std::slice::from_ref(&k), 1_000_000), Ok(Some(Checked { key: 0, mac: mac.clone() })), "{alg:?}");
        // The same name and secret under another algorithm is another key (§5.2.1: BADKEY).
        for (other, ..) in ALGORITHMS.iter().filter(|a| a.0 != alg) {
            let wrong = TsigKey { algorithm: *other, ..key() };
            assert_eq!(check_request(&q, &[wrong], 1_000_000), Err(Rejected::Unsigned { error: error::BADKEY }), "{alg:?} checked as {other:?}");
        }
        let mut bad = q.clone();
        bad[14] ^= 1;
        assert_eq!(check_request(&bad, std::slice::from_ref(&k), 1_000_000), Err(Rejected::Unsigned { error: error::BADSIG }), "{alg:?}");
        // Outside the fudge: BADTIME, with the request's time for the answer.
        assert_eq!(
            check_request(&q, std::slice::from_ref(&k), 1_000_000 - 301),
            Err(Rejected::BadTime { key: 0, mac: mac.clone(), time_signed: 1_000_000 }),
            "{alg:?}"
        );
        // A response stream of three messages, each signed over the MAC before it.
        let mut check = ResponseCheck::new(&k, mac.clone());
        let mut prior = mac;
        for part in [Part::First, Part::Subsequent, Part::Subsequent] {
            let mut m = query();
            m[2] = 0x84;
            prior = sign(&mut m, &k, Some(&prior), part, 0, &[], 1_000_010);
            assert_eq!(prior.len(), len);
            check.message(&m, 1_000_010).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        }
        check.finish().unwrap();
    }
}
