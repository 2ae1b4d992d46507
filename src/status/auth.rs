//! Who may call which endpoint: a bearer token per [`Role`], checked by one middleware
//! ([`guard`]) in front of each route group, and failed authentications slowed and then
//! refused per client ([`FailedAuth`]).
//!
//! | role | endpoints | without its token configured |
//! |---|---|---|
//! | admin | `/v1/admin/*`, `POST /v1/reload` | overrides 403 (disabled); reload open, like SIGHUP |
//! | peer | `/v1/peer/observations` | 403 (no fleet) |
//! | read | `/v1/status`, `/`, `/v1/status.html`, `/v1/lookup`, `/metrics` | open |
//!
//! A request is compared with its endpoint's role's token only (in constant time), and
//! the roles' tokens differ (config validation), so a token of one role never opens
//! another role's endpoints. On success the middleware puts the [`Actor`] (client
//! address, role) into the request for the audit trail.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;

use super::http::ApiError;
use crate::config::access::{Role, Secret};
use crate::config::defaults::{AUTH_FAILURES_BEFORE_BLOCK, AUTH_FAILURE_CLIENTS, AUTH_FAILURE_DELAY_STEP, AUTH_FAILURE_MAX_DELAY, AUTH_FAILURE_WINDOW};
use crate::control::Control;
use crate::health::history::Actor;

/// The connection's remote address, put into every request by `http::serve`.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// Failed authentications per client over [`AUTH_FAILURE_WINDOW`]. Keyed by IPv4
/// address or IPv6 /64 (one host usually has a whole /64). Bounded to
/// [`AUTH_FAILURE_CLIENTS`] entries; std's `Mutex`, held for a map lookup only.
#[derive(Default)]
pub struct FailedAuth {
    clients: Mutex<HashMap<IpAddr, Failures>>,
}

#[derive(Clone, Copy)]
struct Failures {
    since: Instant,
    count: u32,
}

/// What [`FailedAuth`] decides for a client.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Look at the token.
    Check,
    /// Too many failures: refuse without looking, for this long.
    Blocked(Duration),
}

fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

impl FailedAuth {
    /// Whether `ip`'s token is looked at now.
    pub fn verdict(&self, ip: IpAddr, now: Instant) -> Verdict {
        let clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        match clients.get(&client_key(ip)) {
            Some(f) if f.count >= AUTH_FAILURES_BEFORE_BLOCK && now < f.since + AUTH_FAILURE_WINDOW => Verdict::Blocked(f.since + AUTH_FAILURE_WINDOW - now),
            _ => Verdict::Check,
        }
    }

    /// Counts a failure of `ip`; returns how long to hold its 401.
    pub fn failed(&self, ip: IpAddr, now: Instant) -> Duration {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if clients.len() >= AUTH_FAILURE_CLIENTS && !clients.contains_key(&client_key(ip)) {
            clients.retain(|_, f| now < f.since + AUTH_FAILURE_WINDOW);
            if clients.len() >= AUTH_FAILURE_CLIENTS {
                let oldest = clients.iter().min_by_key(|(_, f)| f.since).map(|(k, _)| *k);
                if let Some(k) = oldest {
                    clients.remove(&k);
                }
            }
        }
        let f = clients.entry(client_key(ip)).or_insert(Failures { since: now, count: 0 });
        if now >= f.since + AUTH_FAILURE_WINDOW {
            *f = Failures { since: now, count: 0 };
        }
        let before = f.count;
        f.count = f.count.saturating_add(1);
        (AUTH_FAILURE_DELAY_STEP * before).min(AUTH_FAILURE_MAX_DELAY)
    }
}

/// What one route group needs: its role, and whether it is open when that role has no
/// token (reload) or disabled (overrides, peers).
#[derive(Clone)]
pub struct Guard {
    pub control: Arc<Control>,
    pub failures: Arc<FailedAuth>,
    pub role: Role,
    pub open_without_token: bool,
}

fn token_of(control: &Control, role: Role) -> Option<Secret> {
    let snap = control.snapshot.load();
    match role {
        Role::Admin => snap.config.health.admin_token.clone(),
        Role::Peer => snap.config.fleet.token.clone(),
        Role::Read => snap.config.health.read_token.clone(),
    }
}

/// Why a role's endpoints are off when it has no token.
fn disabled(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin API disabled: set [health] admin-token",
        Role::Peer => "no fleet: set [fleet] token",
        Role::Read => "read endpoints need no token here",
    }
}

/// Whether `Authorization: Bearer …` carries `token` (constant time).
fn carries(headers: &HeaderMap, token: &Secret) -> bool {
    use subtle::ConstantTimeEq;
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).unwrap_or("");
    bool::from(given.as_bytes().ct_eq(token.expose().as_bytes()))
}

/// The middleware: lets the request through with its [`Actor`], or answers 401 (held
/// a little longer per recent failure of the client), 403 (role disabled) or 429.
pub async fn guard(State(g): State<Guard>, mut req: Request, next: Next) -> Response {
    let client = req.extensions().get::<ClientAddr>().map(|c| c.0);
    let Some(token) = token_of(&g.control, g.role) else {
        if g.role == Role::Read || g.open_without_token {
            req.extensions_mut().insert(Actor::Api { client, role: None });
            return next.run(req).await;
        }
        return ApiError(StatusCode::FORBIDDEN, disabled(g.role).into()).into_response();
    };
    let now = Instant::now();
    if let Some(ip) = client.map(|c| c.ip()) {
        if let Verdict::Blocked(left) = g.failures.verdict(ip, now) {
            g.control.metrics.http_auth_limited.inc();
            let secs = left.as_secs().max(1);
            let mut r = ApiError(StatusCode::TOO_MANY_REQUESTS, format!("too many failed authentications from this address; retry in {secs} s")).into_response();
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
            return r;
        }
    }
    if carries(req.headers(), &token) {
        req.extensions_mut().insert(Actor::Api { client, role: Some(g.role) });
        return next.run(req).await;
    }
    g.control.metrics.http_auth_failures.inc();
    let hold = client.map_or(AUTH_FAILURE_MAX_DELAY, |c| g.failures.failed(c.ip(), now));
    tracing::warn!(client = ?client, role = g.role.as_str(), path = %req.uri().path(), "missing or wrong bearer token");
    tokio::time::sleep(hold).await;
    ApiError(StatusCode::UNAUTHORIZED, format!("missing or wrong bearer token (this endpoint takes the {} token)", g.role.as_str())).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_slowed_then_refused_per_client_until_the_window_ends() {
        let f = FailedAuth::default();
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(f.failed(a, t0), Duration::ZERO, "a first typo is answered at once");
        assert_eq!(f.failed(a, t0), AUTH_FAILURE_DELAY_STEP);
        for _ in 2..AUTH_FAILURES_BEFORE_BLOCK {
            assert_eq!(f.verdict(a, t0), Verdict::Check);
            assert!(f.failed(a, t0) <= AUTH_FAILURE_MAX_DELAY);
        }
        assert_eq!(f.verdict(a, t0 + Duration::from_secs(1)), Verdict::Blocked(AUTH_FAILURE_WINDOW - Duration::from_secs(1)));
        assert_eq!(f.verdict("192.0.2.2".parse().unwrap(), t0), Verdict::Check, "per client");
        assert_eq!(f.verdict(a, t0 + AUTH_FAILURE_WINDOW), Verdict::Check, "until the window ends");
        assert_eq!(f.failed(a, t0 + AUTH_FAILURE_WINDOW), Duration::ZERO, "a new window");
        // One IPv6 /64 is one client.
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        for i in 0..AUTH_FAILURES_BEFORE_BLOCK {
            f.failed(v6(&format!("2001:db8:1:2::{i:x}")), t0);
        }
        assert!(matches!(f.verdict(v6("2001:db8:1:2:ffff::1"), t0), Verdict::Blocked(_)));
        assert_eq!(f.verdict(v6("2001:db8:1:3::1"), t0), Verdict::Check);
    }

    #[test]
    fn the_table_is_bounded() {
        let f = FailedAuth::default();
        let t0 = Instant::now();
        for i in 0..(AUTH_FAILURE_CLIENTS as u32 + 10) {
            f.failed(IpAddr::V4(i.into()), t0 + Duration::from_millis(u64::from(i)));
        }
        assert_eq!(f.clients.lock().unwrap().len(), AUTH_FAILURE_CLIENTS);
    }
}
