//! One probe of one target: HTTP(S) via reqwest (rustls, no redirects, capped body)
//! or a TCP connect. Knows nothing about DNS.

use std::time::Duration;

use tokio::time::Instant;

use crate::config::defaults::HTTP_BODY_LIMIT;
use crate::config::health::{Check, CheckKind};

/// The result of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    pub ok: bool,
    pub latency: Duration,
    pub error: Option<String>,
}

/// A reusable prober for one check (its own HTTP client: TLS settings and the Host
/// name → address pinning differ per check).
pub struct Prober {
    check: Check,
    client: Option<reqwest::Client>,
    url: String,
}

/// reqwest is built without a TLS crypto provider of its own; use ring (pure Rust + C
/// compiled by cc, no cmake), installed once per process.
pub fn ensure_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl Prober {
    pub fn new(check: &Check) -> Result<Prober, String> {
        ensure_crypto_provider();
        let (client, url) = match &check.kind {
            CheckKind::Tcp => (None, String::new()),
            CheckKind::Http { tls, path, host, insecure, .. } => {
                let scheme = if *tls { "https" } else { "http" };
                let mut b = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .timeout(check.timeout)
                    .connect_timeout(check.timeout)
                    .pool_max_idle_per_host(0)
                    .no_proxy()
                    .user_agent(concat!("waypost-health/", env!("CARGO_PKG_VERSION")));
                if *insecure {
                    b = b.danger_accept_invalid_certs(true);
                }
                let url = match host {
                    // Connect to the target address, but speak to (and verify) the host name.
                    Some(h) => {
                        b = b.resolve(h, check.target);
                        format!("{scheme}://{h}:{}{path}", check.target.port())
                    }
                    None => format!("{scheme}://{}{path}", check.target),
                };
                (Some(b.build().map_err(|e| format!("{}: {e}", check.id()))?), url)
            }
        };
        Ok(Prober { check: check.clone(), client, url })
    }

    /// Runs one probe, bounded by the check's timeout.
    pub async fn probe(&self) -> ProbeResult {
        let start = Instant::now();
        let outcome = tokio::time::timeout(self.check.timeout, self.run()).await;
        let latency = start.elapsed();
        match outcome {
            Ok(Ok(())) => ProbeResult { ok: true, latency, error: None },
            Ok(Err(e)) => ProbeResult { ok: false, latency, error: Some(e) },
            Err(_) => ProbeResult { ok: false, latency, error: Some(format!("timed out after {:?}", self.check.timeout)) },
        }
    }

    async fn run(&self) -> Result<(), String> {
        match (&self.check.kind, &self.client) {
            (CheckKind::Tcp, _) => {
                let s = tokio::net::TcpStream::connect(self.check.target).await.map_err(|e| format!("connect: {e}"))?;
                drop(s);
                Ok(())
            }
            (CheckKind::Http { method, expect, body, .. }, Some(client)) => {
                let m = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
                let mut resp = client.request(m, &self.url).send().await.map_err(|e| describe(&e))?;
                let status = resp.status().as_u16();
                if !expect.contains(status) {
                    return Err(format!("status {status}"));
                }
                if let Some(want) = body {
                    // Read at most HTTP_BODY_LIMIT bytes: a huge body cannot exhaust memory.
                    let mut got = Vec::new();
                    while got.len() < HTTP_BODY_LIMIT {
                        match resp.chunk().await.map_err(|e| describe(&e))? {
                            Some(c) => got.extend_from_slice(&c[..c.len().min(HTTP_BODY_LIMIT - got.len())]),
                            None => break,
                        }
                    }
                    if !String::from_utf8_lossy(&got).contains(want.as_str()) {
                        return Err(format!("body does not contain {want:?}"));
                    }
                }
                Ok(())
            }
            (CheckKind::Http { .. }, None) => Err("no HTTP client".into()),
        }
    }
}

/// A reqwest error with its sources, e.g. `…: invalid peer certificate: UnknownIssuer`.
pub(super) fn describe(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}
