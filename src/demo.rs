//! `waypost demo`: the example config plus three small HTTP sites on loopback that the
//! example's data centres are checked against, so failover can be watched with `dig`.
//! Each site answers `GET /health` with 200, or 500 once toggled (`POST /toggle`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;

/// The demo sites: (data centre, port).
pub const SITES: [(&str, u16); 3] = [("ams", 18081), ("iad", 18082), ("sin", 18083)];
/// The demo's admin token.
pub const TOKEN: &str = "demo";

#[derive(Clone)]
struct Site {
    name: &'static str,
    healthy: Arc<AtomicBool>,
}

async fn health(State(s): State<Site>) -> (StatusCode, String) {
    if s.healthy.load(Ordering::Relaxed) {
        (StatusCode::OK, format!("ok {}\n", s.name))
    } else {
        (StatusCode::INTERNAL_SERVER_ERROR, format!("{} is down (demo toggle)\n", s.name))
    }
}

async fn toggle(State(s): State<Site>) -> String {
    let now = !s.healthy.fetch_xor(true, Ordering::Relaxed);
    format!("{} is now {}\n", s.name, if now { "healthy" } else { "failing" })
}

/// Starts the sites; returns their addresses.
pub async fn start_sites() -> std::io::Result<Vec<(String, SocketAddr)>> {
    let mut out = Vec::new();
    for (name, port) in SITES {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("demo site {name} needs 127.0.0.1:{port}: {e}"))
        })?;
        let addr = listener.local_addr()?;
        let site = Site { name, healthy: Arc::new(AtomicBool::new(true)) };
        let app = Router::new().route("/health", get(health)).route("/toggle", post(toggle)).with_state(site);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        out.push((name.to_string(), addr));
    }
    Ok(out)
}

/// TOML added to the example config: a check per data centre against its site, fast
/// timers so failover shows in seconds, the admin token, and a state file.
pub fn extra_config(state_file: &std::path::Path) -> String {
    let mut t = format!(
        "[health]\nadmin-token = \"{TOKEN}\"\nstate-file = {:?}\ninterval = \"1s\"\ntimeout = \"500ms\"\nfall = 2\nrise = 2\n",
        state_file.display().to_string()
    );
    for (name, port) in SITES {
        t += &format!("[datacenters.{name}.check]\ntype = \"http\"\naddress = \"127.0.0.1\"\nport = {port}\npath = \"/health\"\n");
    }
    t
}

/// What the demo prints once it runs.
pub fn instructions(dns: SocketAddr, http: SocketAddr) -> String {
    let p = dns.port();
    format!(
        "\nWaypost demo: DNS on {dns}, status page http://{http}/\n\
         Data centres ams, iad, sin are health-checked against local sites on ports 18081-18083.\n\n\
         Watch London's answer (ams) and its TTL:\n  \
         watch -n1 dig @127.0.0.1 -p {p} web.example.com A +subnet=81.2.69.160/27 +noall +answer\n\n\
         Take ams down (its site starts failing; answers move to iad with a 10 s TTL within ~2 s):\n  \
         curl -X POST http://127.0.0.1:18081/toggle\n\
         Bring it back (two good checks later answers return to ams with TTL 60):\n  \
         curl -X POST http://127.0.0.1:18081/toggle\n\n\
         Or drain it with the admin API (checks keep running):\n  \
         curl -X PUT -H 'Authorization: Bearer {TOKEN}' -d '{{\"action\":\"drain\",\"expires_in\":\"5m\"}}' -H 'Content-Type: application/json' http://{http}/v1/admin/datacenters/ams\n  \
         curl -X DELETE -H 'Authorization: Bearer {TOKEN}' http://{http}/v1/admin/datacenters/ams\n\n\
         Health JSON: curl http://{http}/v1/status   Metrics: curl http://{http}/metrics\n"
    )
}
