//! A GeoIP database swap publishes the database and nothing else: a zone edit that
//! nobody has reloaded yet stays unpublished.

use std::path::PathBuf;

use hickory_proto::rr::{RData, RecordType};

use crate::geo::{copy_db, example_config, start_with};
use crate::support::{ask_ecs, http, query, udp, wait, TempDir};

#[test]
fn a_geoip_swap_during_an_unreviewed_zone_edit_publishes_the_database_only() {
    let dir = TempDir::new("geo-swap-edit");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let zones = dir.0.join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    std::fs::copy(root.join("zones/example.com.zone"), zones.join("example.com.zone")).unwrap();
    let db = dir.0.join("geo.mmdb");
    copy_db("geo/loopback-geo-test.mmdb", &db);
    let shipped_db = format!("{:?}", root.join("tests/data/geo/GeoIP2-City-Test.mmdb").display().to_string());
    let shipped_zones = format!("zones-dir = {:?}", root.join("zones").display().to_string());
    let cfg = example_config(&[])
        .replace(&shipped_db, &format!("{:?}", db.display().to_string()))
        .replace(&shipped_zones, &format!("zones-dir = {:?}", zones.display().to_string()));
    let s = start_with(&dir, &cfg);
    let mail = || {
        let r = udp(s.udp, &query("mail.example.com.", RecordType::A, None));
        r.answers.iter().filter_map(|a| if let RData::A(a) = &a.data { Some(a.to_string()) } else { None }).collect::<Vec<_>>()
    };
    let web = || ask_ecs(s.udp, "web.example.com.", RecordType::A, "81.2.69.160/27").0;
    assert_eq!(mail(), vec!["192.0.2.25"]);
    assert_eq!(web(), vec!["198.51.100.10"], "81.2.69.160 is unknown to the synthetic database: iad");
    let (_, ready) = http(s.http, "GET", "/readyz");

    // An operator is half-way through a zone edit (not reloaded)...
    let path = zones.join("example.com.zone");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("mail    A       192.0.2.25", "mail    A       192.0.2.99")).unwrap();
    // ... when a geoipupdate job replaces the database.
    copy_db("geo/GeoIP2-City-Test.mmdb", &db);
    wait("the new database to route London to ams", 15, || web() == vec!["192.0.2.10"]);
    assert_eq!(mail(), vec!["192.0.2.25"], "the unreviewed zone edit must not go live with the database");
    let (_, ready_after) = http(s.http, "GET", "/readyz");
    assert_eq!(ready, ready_after, "same zones and generation: {ready_after}");
}
