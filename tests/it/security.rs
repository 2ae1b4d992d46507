//! Control-plane security (issue 16): the API over HTTPS with certificates made in the
//! test (openssl, `deploy/fleet-certs.sh`), fleet peers over HTTPS with a private CA and
//! mutual TLS, a certificate swapped on reload, tokens by role (inline and from files),
//! the audit trail, and failed authentications slowed and refused per client.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{certificate_der, http, https, https_status, request_from, served_certificate, wait, ClientTls, Pki, TempDir, TestServer};

use crate::support::fixed_port as free_port;

fn zones() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("zones").display().to_string()
}

fn q(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

/// A config serving the example zones, with `extra` appended; written to `dir/waypost.toml`.
fn write_config(dir: &Path, server: &str, extra: &str) -> PathBuf {
    let path = dir.join("waypost.toml");
    std::fs::write(&path, format!("version = 1\n[server]\nzones-dir = {:?}\n{server}\n{extra}", zones())).unwrap();
    path
}

fn tls_keys(cert: &(PathBuf, PathBuf)) -> String {
    format!("http-tls-cert = {}\nhttp-tls-key = {}\n", q(&cert.0), q(&cert.1))
}

fn source(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

#[test]
fn the_api_speaks_https_only_with_a_certificate_from_a_test_ca() {
    let Some(pki) = Pki::new("pki-api") else { return };
    let server = pki.cert("ca", "server");
    let dir = TempDir::new("tls-api");
    let s = TestServer::start_config(&write_config(&dir.0, &tls_keys(&server), ""));
    let tls = ClientTls::new(&pki.ca("ca"), None);
    let st = https_status(s.http, &tls, &[]);
    assert_eq!(st["api"]["https"], true);
    assert_eq!(st["api"]["client_certificate_required"], false);
    assert_eq!(served_certificate(s.http, &tls), certificate_der(&server.0));

    // Plain HTTP on the TLS listener: a plain 400 that says why, and no API.
    let (code, body) = http(s.http, "GET", "/v1/status");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("HTTPS only"), "{body}");
    // A client that trusts another CA does not get through the handshake.
    let other = ClientTls::new(&pki.ca("other"), None);
    let err = https(s.http, &other, "GET", "/v1/status", &[], "").unwrap_err();
    assert!(err.contains("UnknownIssuer"), "{err}");
    wait("the plain request and the failed handshake counted", 5, || {
        https(s.http, &tls, "GET", "/metrics", &[], "").unwrap().1.lines().any(|l| l == "waypost_http_tls_failures_total 2")
    });
}

/// One fleet instance on `port`: HTTPS with `cert`, peers over HTTPS verified against
/// `ca`, and `extra` `[fleet]` keys.
fn fleet_instance(dir: &Path, me: &str, port: u16, cert: &(PathBuf, PathBuf), ca: &Path, peers: &[(&str, u16)], extra: &str) -> PathBuf {
    let d = dir.join(me);
    std::fs::create_dir_all(&d).unwrap();
    let mut fleet = format!("[fleet]\nvantage = \"{me}\"\ntoken = \"peer-t0ken\"\ninterval = \"200ms\"\nca = {}\n{extra}", q(ca));
    for (name, p) in peers {
        fleet += &format!("[[fleet.peers]]\nname = \"{name}\"\nurl = \"https://127.0.0.1:{p}\"\n");
    }
    write_config(&d, &format!("http-listen = \"127.0.0.1:{port}\"\n{}", tls_keys(cert)), &fleet)
}

fn peer<'a>(st: &'a Value, name: &str) -> &'a Value {
    st["fleet"]["peers"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap()
}

#[test]
fn two_instances_pull_each_other_over_https() {
    let Some(pki) = Pki::new("pki-fleet") else { return };
    let ca = pki.ca("ca");
    let dir = TempDir::new("tls-fleet");
    let (pa, pb) = (free_port(), free_port());
    let a = TestServer::start_config_with_http(&fleet_instance(&dir.0, "a", pa, &pki.cert("ca", "a"), &ca, &[("b", pb)], ""));
    let b = TestServer::start_config_with_http(&fleet_instance(&dir.0, "b", pb, &pki.cert("ca", "b"), &ca, &[("a", pa)], ""));
    let tls = ClientTls::new(&ca, None);
    wait("a and b reach each other over HTTPS", 10, || {
        peer(&https_status(a.http, &tls, &[]), "b")["reachable"] == true && peer(&https_status(b.http, &tls, &[]), "a")["reachable"] == true
    });
    let st = https_status(a.http, &tls, &[]);
    assert_eq!(peer(&st, "b")["url"], format!("https://127.0.0.1:{pb}"));
    assert!(!st["fleet"]["warnings"].to_string().contains("plain HTTP"), "{}", st["fleet"]["warnings"]);
}

#[test]
fn a_peer_with_a_certificate_from_another_ca_is_unreachable_and_says_why() {
    let Some(pki) = Pki::new("pki-other") else { return };
    let ca = pki.ca("ca");
    let dir = TempDir::new("tls-other");
    let (pa, pc) = (free_port(), free_port());
    let a = TestServer::start_config_with_http(&fleet_instance(&dir.0, "a", pa, &pki.cert("ca", "a"), &ca, &[("c", pc)], ""));
    // c's certificate is from another CA than the one a verifies peers against.
    let _c = TestServer::start_config_with_http(&fleet_instance(&dir.0, "c", pc, &pki.cert("other", "c"), &pki.ca("other"), &[], ""));
    let tls = ClientTls::new(&ca, None);
    // (Until c listens, the error is "connection refused".)
    wait("a has tried c's certificate", 10, || peer(&https_status(a.http, &tls, &[]), "c")["last_error"].as_str().is_some_and(|e| e.contains("certificate")));
    let st = https_status(a.http, &tls, &[]);
    let c = peer(&st, "c");
    assert_eq!(c["reachable"], false);
    let why = c["last_error"].as_str().unwrap();
    assert!(why.contains("invalid peer certificate: UnknownIssuer"), "{why}");
}

#[test]
fn mutual_tls_lets_in_only_clients_with_a_certificate_from_the_client_ca() {
    let Some(pki) = Pki::new("pki-mtls") else { return };
    let ca = pki.ca("ca");
    let dir = TempDir::new("tls-mtls");
    let (pa, pb, pn) = (free_port(), free_port(), free_port());
    let client = pki.cert("ca", "a-client");
    let with_cert = format!("client-cert = {}\nclient-key = {}\n", q(&client.0), q(&client.1));
    // b requires client certificates; a presents one, n does not.
    let b = TestServer::start_config_with_http(&fleet_instance(&dir.0, "b", pb, &pki.cert("ca", "b"), &ca, &[], &format!("client-ca = {}\n", q(&ca))));
    let a = TestServer::start_config_with_http(&fleet_instance(&dir.0, "a", pa, &pki.cert("ca", "a"), &ca, &[("b", pb)], &with_cert));
    let n = TestServer::start_config_with_http(&fleet_instance(&dir.0, "n", pn, &pki.cert("ca", "n"), &ca, &[("b", pb)], ""));
    let plain = ClientTls::new(&ca, None);
    let mutual = ClientTls::new(&ca, Some(&client));
    wait("a reaches b with its client certificate", 10, || peer(&https_status(a.http, &plain, &[]), "b")["reachable"] == true);
    wait("n has been refused by b", 10, || peer(&https_status(n.http, &plain, &[]), "b")["last_error"].as_str().is_some_and(|e| e.to_lowercase().contains("certificate")));
    let st = https_status(n.http, &plain, &[]);
    assert_eq!(peer(&st, "b")["reachable"], false, "{}", peer(&st, "b"));

    // Directly: without a client certificate nothing gets through, with one it does.
    let err = https(b.http, &plain, "GET", "/v1/status", &[], "").unwrap_err();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    let st = https_status(b.http, &mutual, &[]);
    assert_eq!(st["api"]["client_certificate_required"], true);
    // A client certificate from another CA is refused too.
    let stranger = pki.cert("other", "stranger");
    assert!(https(b.http, &ClientTls::new(&ca, Some(&stranger)), "GET", "/v1/status", &[], "").is_err());
}

#[test]
fn a_certificate_swapped_on_reload_is_served_by_the_same_listener_and_a_bad_one_is_refused() {
    let Some(pki) = Pki::new("pki-swap") else { return };
    let ca = pki.ca("ca");
    let dir = TempDir::new("tls-swap");
    let live = (dir.0.join("server.pem"), dir.0.join("server.key"));
    let first = pki.cert("ca", "first");
    std::fs::copy(&first.0, &live.0).unwrap();
    std::fs::copy(&first.1, &live.1).unwrap();
    let s = TestServer::start_config(&write_config(&dir.0, &tls_keys(&live), "[health]\nadmin-token = \"adm1n\"\n"));
    let tls = ClientTls::new(&ca, None);
    assert_eq!(served_certificate(s.http, &tls), certificate_der(&first.0));

    // New certificate and key over the old files, then a reload: the same address serves it.
    let second = pki.cert("ca", "second");
    std::fs::copy(&second.0, &live.0).unwrap();
    std::fs::copy(&second.1, &live.1).unwrap();
    let admin = [("Authorization", "Bearer adm1n")];
    let (code, body) = https(s.http, &tls, "POST", "/v1/reload", &admin, "").unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(served_certificate(s.http, &tls), certificate_der(&second.0));

    // A key that does not match the certificate: the reload fails, naming the file and
    // the reason, and the previous certificate keeps serving.
    std::fs::copy(&first.1, &live.1).unwrap();
    let (code, body) = https(s.http, &tls, "POST", "/v1/reload", &admin, "").unwrap();
    assert_eq!(code, 422, "{body}");
    let want = format!("server.http-tls-key: {}: does not match the certificate in {}", live.1.display(), live.0.display());
    assert!(body.contains(&want), "want {want:?} in {body}");
    assert_eq!(served_certificate(s.http, &tls), certificate_der(&second.0));
    let st = https_status(s.http, &tls, &[]);
    assert_eq!(st["last_reload"]["ok"], false);
    assert!(st["problems"].to_string().contains("does not match the certificate"), "{}", st["problems"]);
    // An unreadable certificate: the same.
    std::fs::copy(&second.1, &live.1).unwrap();
    std::fs::write(&live.0, "not a certificate\n").unwrap();
    let (code, body) = https(s.http, &tls, "POST", "/v1/reload", &admin, "").unwrap();
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("server.http-tls-cert: ") && body.contains("no certificate in it"), "{body}");
    assert_eq!(served_certificate(s.http, &tls), certificate_der(&second.0));
}

#[test]
fn a_bad_certificate_or_token_file_fails_check_and_start() {
    let Some(pki) = Pki::new("pki-check") else { return };
    let dir = TempDir::new("tls-check");
    let good = pki.cert("ca", "good");
    let other = pki.cert("ca", "other");
    for (server, health, want) in [
        (format!("http-tls-cert = {}\nhttp-tls-key = {}\n", q(&good.0), q(&other.1)), String::new(), format!("server.http-tls-key: {}: does not match the certificate in {}", other.1.display(), good.0.display())),
        (format!("http-tls-cert = {}\nhttp-tls-key = {}\n", q(&dir.0.join("missing.pem")), q(&good.1)), String::new(), format!("server.http-tls-cert: cannot read {}: No such file", dir.0.join("missing.pem").display())),
        (String::new(), "admin-token-file = \"admin.token\"\n".into(), format!("health.admin-token-file: cannot read {}: No such file", dir.0.join("admin.token").display())),
        (String::new(), "admin-token-file = \"empty.token\"\n".into(), format!("health.admin-token-file: {} is empty", dir.0.join("empty.token").display())),
        (String::new(), "admin-token = \"same\"\nread-token = \"same\"\n".into(), "health.read-token: must differ from health.admin-token".into()),
    ] {
        std::fs::write(dir.0.join("empty.token"), "\n").unwrap();
        let path = write_config(&dir.0, &server, &format!("[health]\n{health}"));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_waypost")).args(["check", "--config"]).arg(&path).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "check passed: {err}");
        assert!(err.contains(&want), "want {want:?} in:\n{err}");
        let problems = waypost::app::prepare(Some(path), Default::default()).err().expect("serve refuses it");
        assert!(problems.iter().any(|p| p.to_string().contains(&want)), "{problems:?}");
    }
}

/// Tokens of every role, two of them from files.
fn tokens_config(dir: &Path) -> PathBuf {
    std::fs::write(dir.join("admin.token"), "adm1n-fr0m-file\n").unwrap();
    std::fs::write(dir.join("peer.token"), "p33r-fr0m-file").unwrap();
    let extra = "[health]\nadmin-token-file = \"admin.token\"\nread-token = \"r3ad\"\n\
                 [fleet]\nvantage = \"ams\"\ntoken-file = \"peer.token\"\n\
                 [datacenters.ams]\nlocation = [52.37, 4.90]\nservices = { \"web.example.com.\" = [\"192.0.2.10\"] }\n\
                 [services.\"web.example.com.\"]\n";
    write_config(dir, "", extra)
}

#[test]
fn each_token_opens_only_its_roles_endpoints() {
    let dir = TempDir::new("tokens");
    let s = TestServer::start_config(&tokens_config(&dir.0));
    let tokens = [("admin", "adm1n-fr0m-file"), ("peer", "p33r-fr0m-file"), ("read", "r3ad")];
    let drain = r#"{"action":"drain"}"#;
    let endpoints = [
        ("read", "GET", "/v1/status", ""),
        ("read", "GET", "/", ""),
        ("read", "GET", "/metrics", ""),
        ("read", "GET", "/v1/lookup?client=192.0.2.1&name=web.example.com", ""),
        ("peer", "GET", "/v1/peer/observations", ""),
        ("admin", "POST", "/v1/reload", ""),
        ("admin", "PUT", "/v1/admin/datacenters/ams", drain),
        ("admin", "DELETE", "/v1/admin/datacenters/ams", ""),
    ];
    // Each (endpoint, token) pair from a client address of its own, so the failed-auth
    // limit per client does not come into it.
    let mut client = 10u8;
    for (role, method, path, body) in endpoints {
        for (token_role, token) in tokens.iter().copied().chain([("none", "")]) {
            client += 1;
            let bearer = format!("Bearer {token}");
            let mut headers = vec![("Content-Type", "application/json")];
            if !token.is_empty() {
                headers.push(("Authorization", &bearer));
            }
            let (code, answer) = request_from(source(client), s.http, method, path, &headers, body);
            if token_role == role {
                assert_eq!(code, 200, "{method} {path} with the {token_role} token: {answer}");
            } else {
                assert_eq!(code, 401, "{method} {path} with the {token_role} token must be refused: {answer}");
                assert!(answer.contains(&format!("takes the {role} token")), "{answer}");
            }
        }
    }
    assert_eq!(http(s.http, "GET", "/healthz").0, 200, "liveness stays open");
    // Tokens never show in status, whatever role reads it.
    let (_, st) = request_from(source(200), s.http, "GET", "/v1/status", &[("Authorization", "Bearer r3ad")], "");
    for (_, t) in tokens {
        assert!(!st.contains(t), "a token in status");
    }
    let st: Value = serde_json::from_str(&st).unwrap();
    assert_eq!(st["api"], serde_json::json!({"https": false, "certificate_file": null, "client_certificate_required": false, "admin_token": true, "peer_token": true, "read_token": true}));
}

#[test]
fn the_audit_trail_records_a_drain_with_the_client_address_and_role() {
    let dir = TempDir::new("audit");
    let s = TestServer::start_config(&tokens_config(&dir.0));
    let admin = ("Authorization", "Bearer adm1n-fr0m-file");
    let json = ("Content-Type", "application/json");
    let (code, body) = request_from(source(7), s.http, "PUT", "/v1/admin/datacenters/ams", &[admin, json], r#"{"action":"drain","expires_in":"10m"}"#);
    assert_eq!(code, 200, "{body}");
    assert_eq!(request_from(source(8), s.http, "DELETE", "/v1/admin/datacenters/ams", &[admin], "").0, 200);
    assert_eq!(request_from(source(9), s.http, "POST", "/v1/reload", &[admin], "").0, 200);
    let (_, st) = request_from(source(10), s.http, "GET", "/v1/status", &[("Authorization", "Bearer r3ad")], "");
    let st: Value = serde_json::from_str(&st).unwrap();
    let audit = st["audit"].as_array().unwrap();
    assert_eq!(audit.len(), 3, "{audit:?}");
    let (reload, removed, drain) = (&audit[0], &audit[1], &audit[2]);
    assert_eq!((drain["action"].as_str(), drain["by"].as_str(), drain["role"].as_str()), (Some("override-set"), Some("api"), Some("admin")));
    assert!(drain["client"].as_str().unwrap().starts_with("127.0.0.7:"), "{drain}");
    assert_eq!((drain["target"]["kind"].as_str(), drain["target"]["name"].as_str(), drain["from"].as_str(), drain["to"].as_str()), (Some("datacenter"), Some("ams"), Some("none"), Some("drain")));
    assert!(drain["expires_at"].is_string() && drain["at"].is_string(), "{drain}");
    assert!(drain["text"].as_str().unwrap().contains("(admin): override set: datacenter ams none -> drain"), "{drain}");
    assert_eq!((removed["action"].as_str(), removed["to"].as_str()), (Some("override-removed"), Some("none")));
    assert!(removed["client"].as_str().unwrap().starts_with("127.0.0.8:"));
    assert_eq!((reload["action"].as_str(), reload["ok"].as_bool(), reload["generation"].as_u64()), (Some("reload"), Some(true), Some(2)));
    assert!(reload["client"].as_str().unwrap().starts_with("127.0.0.9:"));
    // The override changes are in recent changes too, as before.
    assert_eq!(st["recent_changes"].as_array().unwrap().iter().filter(|c| c["kind"] == "admin").count(), 2);
}

#[test]
fn failed_authentication_is_slowed_then_refused_per_client() {
    let dir = TempDir::new("auth-limit");
    let s = TestServer::start_config(&tokens_config(&dir.0));
    let wrong = [("Authorization", "Bearer guess")];
    let right = [("Authorization", "Bearer adm1n-fr0m-file")];
    let started = std::time::Instant::now();
    for i in 0..10 {
        let (code, body) = request_from(source(50), s.http, "POST", "/v1/reload", &wrong, "");
        assert_eq!(code, 401, "guess {i}: {body}");
    }
    // 0 + 100 + … + 900 ms: each failure holds the next 401 a little longer.
    assert!(started.elapsed() >= std::time::Duration::from_millis(4500), "{:?}", started.elapsed());
    // Now even the right token is not looked at from that client…
    let (code, body) = request_from(source(50), s.http, "POST", "/v1/reload", &right, "");
    assert_eq!(code, 429, "{body}");
    assert!(body.contains("too many failed authentications"), "{body}");
    // …while another client is not affected.
    assert_eq!(request_from(source(51), s.http, "POST", "/v1/reload", &right, "").0, 200);
    let (_, metrics) = request_from(source(52), s.http, "GET", "/metrics", &[("Authorization", "Bearer r3ad")], "");
    assert!(metrics.lines().any(|l| l == "waypost_http_auth_failures_total 10"), "{metrics}");
    assert!(metrics.lines().any(|l| l == "waypost_http_auth_limited_total 1"), "{metrics}");
}

#[test]
fn plain_http_peers_still_work_with_a_warning() {
    let dir = TempDir::new("plain-peer");
    let (pa, pb) = (free_port(), free_port());
    let mk = |me: &str, port: u16, other: &str, other_port: u16| {
        let d = dir.0.join(me);
        std::fs::create_dir_all(&d).unwrap();
        let fleet = format!("[fleet]\nvantage = \"{me}\"\ntoken = \"t\"\ninterval = \"200ms\"\n[[fleet.peers]]\nname = \"{other}\"\nurl = \"http://127.0.0.1:{other_port}\"\n");
        write_config(&d, &format!("http-listen = \"127.0.0.1:{port}\"\n"), &fleet)
    };
    let a = TestServer::start_config_with_http(&mk("a", pa, "b", pb));
    let _b = TestServer::start_config_with_http(&mk("b", pb, "a", pa));
    wait("a reaches b over plain HTTP", 10, || peer(&crate::support::status(a.http), "b")["reachable"] == true);
    let warnings = crate::support::status(a.http)["fleet"]["warnings"].to_string();
    assert!(warnings.contains(&format!("peer b is pulled over plain HTTP (http://127.0.0.1:{pb})")), "{warnings}");
}
