//! Three instances on loopback sharing health observations: agreement on a dead site,
//! stale votes of a stopped peer, vantage-restricted targets, zone serial mismatches.
//! (The network-partition case needs separate network paths: see deploy/lab/test.sh.)

use std::path::Path;

use serde_json::Value;

use crate::support::{self, http, mode, status, wait, Backend, TempDir, TestServer};

use crate::support::fixed_port as free_port;

fn zone(serial: u32) -> String {
    format!("$TTL 60\n@ SOA ns1 h {serial} 3600 600 86400 60\n@ NS ns1\nns1 A 127.0.0.1\n")
}

/// Writes one instance's directory (config + zone) and returns the config path.
fn instance(dir: &Path, me: &str, ports: &[(String, u16)], sites: &[&Backend; 3], restricted: bool) -> std::path::PathBuf {
    let d = dir.join(me);
    std::fs::create_dir_all(d.join("zones")).unwrap();
    std::fs::write(d.join("zones/fleet.test.zone"), zone(1)).unwrap();
    let my_port = ports.iter().find(|(n, _)| n == me).unwrap().1;
    let mut c = format!(
        "version = 1\n[server]\nhttp-listen = \"127.0.0.1:{my_port}\"\nzones-dir = \"zones\"\n\
         [health]\ninterval = \"200ms\"\ntimeout = \"200ms\"\nfall = 2\nrise = 2\n\
         [fleet]\nvantage = \"{me}\"\ntoken = \"t0ken\"\ninterval = \"200ms\"\nstale-after = \"1s\"\n"
    );
    for (n, p) in ports.iter().filter(|(n, _)| n != me) {
        c += &format!("[[fleet.peers]]\nname = \"{n}\"\nurl = \"http://127.0.0.1:{p}\"\n");
    }
    c += "[geo.map]\ndefault = [\"a\", \"b\", \"c\"]\n[services.\"web.fleet.test.\"]\nttl = 60\nfailover-ttl = 5\n";
    for (i, (name, site)) in ["a", "b", "c"].iter().zip(sites).enumerate() {
        c += &format!(
            "[datacenters.{name}]\nlocation = [0.0, 0.0]\nservices = {{ \"web.fleet.test.\" = [\"192.0.2.{}\"] }}\n\
             [datacenters.{name}.check]\ntype = \"http\"\naddress = \"127.0.0.1\"\nport = {}\npath = \"/health\"\n",
            21 + i,
            site.addr.port()
        );
        if restricted && *name == "c" {
            c += "vantage-points = [\"a\"]\n";
        }
    }
    let path = d.join("waypost.toml");
    std::fs::write(&path, c).unwrap();
    path
}

struct Fleet {
    _dir: TempDir,
    configs: Vec<std::path::PathBuf>,
    servers: Vec<Option<TestServer>>,
    sites: [Backend; 3],
}

fn fleet(restricted: bool) -> Fleet {
    let dir = TempDir::new("fleet");
    let sites = [Backend::start(), Backend::start(), Backend::start()];
    let ports: Vec<(String, u16)> = ["a", "b", "c"].iter().map(|n| (n.to_string(), free_port())).collect();
    let configs: Vec<_> = ["a", "b", "c"].iter().map(|n| instance(&dir.0, n, &ports, &[&sites[0], &sites[1], &sites[2]], restricted)).collect();
    let servers = configs.iter().map(|c| Some(TestServer::start_config_with_http(c))).collect();
    Fleet { _dir: dir, configs, servers, sites }
}

/// What web.fleet.test answers (no ECS: the same everywhere), with its TTL.
fn web(s: &TestServer) -> (String, u32) {
    support::web(s.udp, "web.fleet.test.", None)
}

fn target_of(st: &Value, port: u16) -> &Value {
    st["targets"].as_array().unwrap().iter().find(|t| t["address"] == format!("127.0.0.1:{port}")).unwrap()
}

#[test]
fn the_fleet_agrees_on_a_dead_site_and_shows_stale_votes_of_a_stopped_peer() {
    let mut f = fleet(false);
    let up = |f: &Fleet| f.servers.iter().flatten().all(|s| web(s).0 == "192.0.2.21");
    wait("all answer a", 10, || up(&f));
    // Every instance sees every peer fresh and three votes per target.
    wait("peers fresh", 10, || {
        f.servers.iter().flatten().all(|s| {
            let st = status(s.http);
            st["fleet"]["peers"].as_array().unwrap().iter().all(|p| p["fresh"] == true)
                && target_of(&st, f.sites[0].addr.port())["votes"].as_array().unwrap().len() == 3
        })
    });
    f.sites[0].set(mode::ERROR_500);
    wait("all answer b", 10, || f.servers.iter().flatten().all(|s| web(s) == ("192.0.2.22".into(), 5)));
    let st = status(f.servers[2].as_ref().unwrap().http);
    let a = target_of(&st, f.sites[0].addr.port());
    assert_eq!(a["verdict"]["up"], false);
    assert!(a["verdict"]["reason"].as_str().unwrap().contains("of 3 fresh vantage points"), "{a}");
    f.sites[0].set(mode::OK);
    wait("all answer a again", 10, || up(&f));

    // Stop instance b: a and c keep serving; b's votes go stale.
    f.servers[1] = None;
    wait("b stale on a and c", 10, || {
        [0, 2].iter().all(|&i| {
            let st = status(f.servers[i].as_ref().unwrap().http);
            let b = st["fleet"]["peers"].as_array().unwrap().iter().find(|p| p["name"] == "b").unwrap().clone();
            let votes = target_of(&st, f.sites[0].addr.port())["votes"].as_array().unwrap().clone();
            b["reachable"] == false && votes.iter().any(|v| v["vantage"] == "b" && v["fresh"] == false)
        })
    });
    // Two fresh voters still decide together.
    f.sites[0].set(mode::ERROR_500);
    wait("a and c answer b", 10, || [0, 2].iter().all(|&i| web(f.servers[i].as_ref().unwrap()).0 == "192.0.2.22"));
    let st = status(f.servers[0].as_ref().unwrap().http);
    assert!(target_of(&st, f.sites[0].addr.port())["verdict"]["reason"].as_str().unwrap().contains("2 of 2 fresh"));
}

#[test]
fn a_target_checked_from_one_vantage_point_is_decided_by_it_everywhere() {
    let f = fleet(true);
    let c_port = f.sites[2].addr.port();
    wait("c's target has a vote from a", 10, || {
        f.servers.iter().flatten().all(|s| {
            let st = status(s.http);
            let votes = target_of(&st, c_port)["votes"].as_array().unwrap().clone();
            votes.len() == 1 && votes[0]["vantage"] == "a" && votes[0]["fresh"] == true
        })
    });
    let st = status(f.servers[1].as_ref().unwrap().http);
    assert_eq!(target_of(&st, c_port)["probed_here"], false);
    assert_eq!(target_of(&st, f.sites[0].addr.port())["probed_here"], true);
}

#[test]
fn a_zone_changed_on_one_instance_shows_as_a_serial_mismatch() {
    let f = fleet(false);
    let a_dir = f.configs[0].parent().unwrap();
    std::fs::write(a_dir.join("zones/fleet.test.zone"), zone(2)).unwrap();
    assert_eq!(http(f.servers[0].as_ref().unwrap().http, "POST", "/v1/reload").0, 200);
    wait("b warns about a's serial", 10, || {
        let st = status(f.servers[1].as_ref().unwrap().http);
        st["fleet"]["warnings"].as_array().unwrap().iter().any(|w| w == "zone fleet.test.: peer a serves serial 2, we serve 1")
    });
    let st = status(f.servers[0].as_ref().unwrap().http);
    assert!(st["fleet"]["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().contains("peer b serves serial 1, we serve 2")), "{}", st["fleet"]);
}

#[test]
fn an_unchanged_observations_document_is_answered_304() {
    use std::io::{Read, Write};
    let f = fleet(false);
    let s = f.servers[0].as_ref().unwrap();
    wait("a has results", 10, || status(s.http)["targets"].as_array().unwrap().iter().all(|t| t["has_result"] == true));
    let get = |extra: &str| {
        let mut c = std::net::TcpStream::connect(s.http).unwrap();
        write!(c, "GET /v1/peer/observations HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer t0ken\r\n{extra}Connection: close\r\n\r\n").unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        out
    };
    let first = get("");
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    let etag = first.lines().find_map(|l| l.strip_prefix("etag: ")).expect("ETag header").to_string();
    let again = get(&format!("If-None-Match: {etag}\r\n"));
    assert!(again.starts_with("HTTP/1.1 304"), "{again}");
    let doc: Value = serde_json::from_str(first.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(doc["vantage"], "a");
    assert_eq!(doc["targets"].as_array().unwrap().len(), 3);
    let mut c = std::net::TcpStream::connect(s.http).unwrap();
    write!(c, "GET /v1/peer/observations HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 401"), "no token: {out}");
}
