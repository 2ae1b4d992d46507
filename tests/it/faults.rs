//! Faults: a corrupt or unwritable state file, peers that send garbage or huge bodies.
//! The server keeps answering correctly, logs, counts, and keeps what it had.

use crate::geo::{example_config, start_with};
use crate::support::{self, http, mode, status, wait, Backend, TempDir, TestServer};

/// What a London client gets for web.example.com.
fn web(s: &TestServer) -> String {
    support::web(s.udp, "web.example.com.", Some("81.2.69.160/27")).0
}

#[test]
fn a_truncated_state_file_is_set_aside_and_the_server_starts() {
    let dir = TempDir::new("state-truncated");
    let state = dir.0.join("state.json");
    std::fs::write(&state, "{\"version\":1,\"targets\":{\"http://127.0").unwrap();
    let cfg = example_config(&[]) + &format!("\n[health]\nstate-file = {:?}\n", state.display().to_string());
    let s = start_with(&dir, &cfg);
    assert_eq!(web(&s), "192.0.2.10");
    let st = status(s.http);
    assert!(st["state_file"]["error"].as_str().unwrap().contains("corrupt state file"), "{}", st["state_file"]);
    assert!(dir.0.join("state.corrupt").exists(), "the corrupt file is kept for inspection");
    wait("counted", 10, || http(s.http, "GET", "/metrics").1.contains("waypost_state_file_errors 1"));
}

#[test]
fn an_unwritable_state_file_is_reported_and_the_old_one_kept() {
    let dir = TempDir::new("state-unwritable");
    let state = dir.0.join("state.json");
    let cfg = example_config(&[]) + &format!("\n[health]\nadmin-token = \"t\"\nstate-file = {:?}\n", state.display().to_string());
    let s = start_with(&dir, &cfg);
    // A first override is saved.
    let put = |s: &TestServer, dc: &str| {
        use std::io::{Read, Write};
        let body = r#"{"action":"drain"}"#;
        let mut c = std::net::TcpStream::connect(s.http).unwrap();
        write!(c, "PUT /v1/admin/datacenters/{dc} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    };
    put(&s, "sin");
    wait("saved", 10, || std::fs::read_to_string(&state).is_ok_and(|t| t.contains("sin")));
    let saved = std::fs::read_to_string(&state).unwrap();
    // The temp file's place becomes a directory: every write now fails.
    std::fs::create_dir_all(state.with_extension("tmp")).unwrap();
    put(&s, "ams");
    wait("answers follow the override", 10, || web(&s) == "198.51.100.10");
    wait("error reported", 10, || status(s.http)["state_file"]["error"].as_str().is_some());
    assert_eq!(std::fs::read_to_string(&state).unwrap(), saved, "the previously saved state is intact");
}

#[test]
fn peers_that_send_garbage_or_huge_bodies_are_marked_unreachable() {
    let garbage = Backend::start();
    garbage.set(mode::GARBAGE);
    let huge = Backend::start();
    huge.set(mode::HUGE);
    let dir = TempDir::new("bad-peers");
    let cfg = example_config(&[])
        + &format!(
            "\n[fleet]\nvantage = \"ams\"\ntoken = \"t\"\ninterval = \"200ms\"\n[[fleet.peers]]\nname = \"garbage\"\nurl = \"http://{}\"\n[[fleet.peers]]\nname = \"huge\"\nurl = \"http://{}\"\n",
            garbage.addr, huge.addr
        );
    let s = start_with(&dir, &cfg);
    wait("both peers tried", 10, || {
        let st = status(s.http);
        st["fleet"]["peers"].as_array().unwrap().iter().all(|p| p["last_error"].is_string())
    });
    let st = status(s.http);
    let peers = st["fleet"]["peers"].as_array().unwrap();
    let err = |n: &str| peers.iter().find(|p| p["name"] == n).unwrap()["last_error"].as_str().unwrap().to_string();
    assert!(err("garbage").contains("not an observations document"), "{}", err("garbage"));
    assert!(err("huge").contains("larger than"), "{}", err("huge"));
    assert!(peers.iter().all(|p| p["reachable"] == false));
    assert!(st["fleet"]["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().contains("own view")));
    assert_eq!(web(&s), "192.0.2.10", "answers are unaffected");
}
