//! HTTP API (axum), on the admin listen address:
//!
//! | route | |
//! |---|---|
//! | `GET /healthz`, `GET /readyz` | alive; ready once a zone is loaded |
//! | `POST /v1/reload` | reload config and zones (admin token when one is set) |
//! | `GET /metrics` | Prometheus text (read token when one is set) |
//! | `GET /v1/lookup` | explain the answer a client gets (read token when one is set) |
//! | `GET /v1/status`, `GET /`, `GET /v1/status.html` | the status document; the page; its view (read token when one is set) |
//! | `GET /v1/peer/observations` | this instance's observations, for fleet peers (peer token) |
//! | `PUT`/`DELETE /v1/admin/datacenters/{name}`, `/v1/admin/addresses/{addr}` | overrides (admin token) |
//!
//! Plain HTTP, or HTTPS only when `server.http-tls-cert`/`-key` are set (`serve`); who
//! may call what is `auth`. Admin changes carry the caller ([`Actor`]) into the audit trail.
//!
//! Every error is JSON (`{"error": "…"}`), including the extractors' own (bad JSON 400,
//! wrong content type 415, wrong fields 422, body too large 413) and unknown routes
//! (404) or methods (405). Reads snapshots; changes state only through `Control::reload`
//! and the monitor's overrides.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request, State};
use axum::Extension;
use axum::http::HeaderMap;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::json;

use super::auth::{self, ClientAddr, FailedAuth, Guard};
use crate::config::access::Role;
use crate::config::defaults::HTTP_MAX_BODY;
use crate::config::duration::parse_duration;
use crate::control::Control;
use crate::health::history::Actor;
use crate::health::{now_secs, Action, Override, OverrideTarget};
use crate::status::{page, report};

/// Serves the API with limits: a connection cap (over it, connections are closed at
/// once and counted), a header-read timeout, a bound on each connection's lifetime and
/// on the request head and body. Stops accepting when `shutdown` fires.
///
/// With TLS configured (the current snapshot's `http_tls`, read per connection, so a
/// reload swaps the certificate while the listener stays) every connection must complete
/// a TLS handshake within [`HTTP_TLS_HANDSHAKE_TIMEOUT`]; one that starts with plain HTTP
/// gets a plain 400 that says so, and is closed.
pub async fn serve(listener: tokio::net::TcpListener, router: Router, control: Arc<Control>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    use crate::config::defaults::HTTP_MAX_CONNECTIONS;
    let slots = Arc::new(tokio::sync::Semaphore::new(HTTP_MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let Ok((stream, client)) = accepted else {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            control.metrics.http_refused.inc();
            drop(stream);
            continue;
        };
        let tls = control.snapshot.load().http_tls.clone();
        let (router, control) = (router.clone(), control.clone());
        tokio::spawn(async move {
            match tls {
                None => serve_connection(stream, client, router).await,
                Some(cfg) => match accept_tls(stream, cfg).await {
                    Ok(tls_stream) => serve_connection(tls_stream, client, router).await,
                    Err(e) => {
                        control.metrics.http_tls_failures.inc();
                        tracing::debug!(%client, error = %e, "TLS handshake failed");
                    }
                },
            }
            drop(permit);
        });
    }
}

/// The TLS handshake, bounded in time; plain HTTP is answered with a plain 400.
async fn accept_tls(stream: tokio::net::TcpStream, cfg: Arc<rustls::ServerConfig>) -> Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>, String> {
    use crate::config::defaults::HTTP_TLS_HANDSHAKE_TIMEOUT;
    use tokio::io::AsyncWriteExt;
    let handshake = async {
        // A TLS connection starts with a handshake record (content type 22).
        let mut first = [0u8; 1];
        let n = stream.peek(&mut first).await.map_err(|e| e.to_string())?;
        if n == 1 && first[0] != 22 {
            use tokio::io::AsyncReadExt;
            let mut stream = stream;
            // Read the request head first: closing with unread bytes would reset the
            // connection, and the client would see a broken pipe instead of the reason.
            let mut head = Vec::with_capacity(1024);
            let mut buf = [0u8; 1024];
            while head.len() < crate::config::defaults::HTTP_MAX_HEAD && !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let body = "{\"error\": \"this listener speaks HTTPS only\"}";
            let reply = format!("HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            let _ = stream.write_all(reply.as_bytes()).await;
            let _ = stream.shutdown().await;
            return Err("plain HTTP on the HTTPS listener".to_string());
        }
        tokio_rustls::TlsAcceptor::from(cfg).accept(stream).await.map_err(|e| e.to_string())
    };
    tokio::time::timeout(HTTP_TLS_HANDSHAKE_TIMEOUT, handshake).await.map_err(|_| "TLS handshake timed out".to_string())?
}

/// One connection's requests (HTTP/1.1), each carrying the client's address.
async fn serve_connection<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static>(stream: S, client: std::net::SocketAddr, router: Router) {
    use crate::config::defaults::{HTTP_CONNECTION_LIFETIME, HTTP_HEADER_TIMEOUT, HTTP_MAX_HEAD};
    use tower_service::Service;
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ClientAddr(client));
        let mut router = router.clone();
        async move { router.call(req).await }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(HTTP_HEADER_TIMEOUT).max_buf_size(HTTP_MAX_HEAD.max(8192));
    let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
    let _ = tokio::time::timeout(HTTP_CONNECTION_LIFETIME, conn).await;
}

/// The routes, grouped by the role whose token opens them (`auth`'s table).
pub fn router(control: Arc<Control>) -> Router {
    let failures = Arc::new(FailedAuth::default());
    let guard = |role, open_without_token| {
        axum::middleware::from_fn_with_state(Guard { control: control.clone(), failures: failures.clone(), role, open_without_token }, auth::guard)
    };
    let open = Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz));
    let read = Router::new()
        .route("/metrics", get(metrics))
        .route("/v1/lookup", get(lookup))
        .route("/v1/status", get(status))
        .route("/v1/status.html", get(status_view))
        .route("/", get(page))
        .route_layer(guard(Role::Read, true));
    let peer = Router::new().route("/v1/peer/observations", get(peer_observations)).route_layer(guard(Role::Peer, false));
    // Reload is open without an admin token, like SIGHUP: it only reads files on disk.
    let reload = Router::new().route("/v1/reload", post(reload)).route_layer(guard(Role::Admin, true));
    let admin = Router::new()
        .route("/v1/admin/datacenters/{name}", put(set_dc).delete(clear_dc))
        .route("/v1/admin/addresses/{addr}", put(set_addr).delete(clear_addr))
        .route_layer(guard(Role::Admin, false));
    open.merge(read)
        .merge(peer)
        .merge(reload)
        .merge(admin)
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this route".into()) })
        .layer(DefaultBodyLimit::max(HTTP_MAX_BODY))
        .with_state(control)
}

/// An API error: the status code with `{"error": "…"}`.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl ApiError {
    fn into_parts(self) -> (StatusCode, Json<serde_json::Value>) {
        (self.0, Json(json!({ "error": self.1 })))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.into_parts().into_response()
    }
}

/// `axum::Json`, with its rejections (400, 413, 415, 422) answered as [`ApiError`]s.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Json::<T>::from_request(req, state).await.map(|Json(v)| ApiJson(v)).map_err(|r| ApiError(r.status(), r.body_text()))
    }
}

/// `axum::extract::Query`, with its rejection (400) answered as an [`ApiError`].
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state).await.map(|q| ApiQuery(q.0)).map_err(|r| ApiError(r.status(), r.body_text()))
    }
}

/// `axum::extract::Path`, with its rejections answered as [`ApiError`]s.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state).await.map(|p| ApiPath(p.0)).map_err(|r| ApiError(r.status(), r.body_text()))
    }
}

/// The process is alive and its HTTP side answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when at least one zone is loaded.
async fn readyz(State(c): State<Arc<Control>>) -> impl IntoResponse {
    let snap = c.snapshot.load();
    let zones = snap.catalog.len();
    let body = json!({ "ready": zones > 0, "zones": zones, "generation": snap.generation });
    let code = if zones > 0 { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(body))
}

/// Reloads config and zones; on failure returns 422 with every problem (file:line: reason).
/// Needs the admin token when one is configured (open otherwise, like SIGHUP: a reload
/// only reads the files already on disk).
async fn reload(State(c): State<Arc<Control>>, Extension(by): Extension<Actor>) -> Response {
    match c.reload(by).await {
        Ok(report) => (StatusCode::OK, Json(json!({ "ok": true, "report": report }))).into_response(),
        Err(problems) => {
            let errors: Vec<_> = problems
                .iter()
                .map(|p| json!({ "file": p.file.display().to_string(), "line": p.line, "reason": p.msg, "text": p.to_string() }))
                .collect();
            let generation = c.snapshot.load().generation;
            (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "ok": false, "errors": errors, "serving_generation": generation }))).into_response()
        }
    }
}

async fn metrics(State(c): State<Arc<Control>>) -> impl IntoResponse {
    // The data-centre gauges are computed at scrape time, from the same states as status.
    let overrides = c.monitor.report().overrides;
    let states = report::datacenter_states(&c.snapshot.load(), &overrides);
    let dcs: Vec<_> = states.into_iter().map(|s| (s.name, s.state, s.action.map(Action::as_str))).collect();
    c.metrics.observe_datacenters(&dcs);
    let signed: Vec<(String, u64)> =
        c.snapshot.load().catalog.iter().filter_map(|z| Some((z.apex.to_string(), z.dnssec.as_ref()?.earliest_expiry?))).collect();
    let now = crate::health::now_secs();
    c.metrics.observe_signed_zones(&signed, now);
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], c.metrics.render())
}

#[derive(serde::Deserialize)]
struct LookupParams {
    client: String,
    name: String,
    #[serde(rename = "type", default = "default_type")]
    qtype: String,
}

fn default_type() -> String {
    "A".into()
}

/// Explains the answer `client` gets for `name`, from the live snapshot.
async fn lookup(State(c): State<Arc<Control>>, ApiQuery(p): ApiQuery<LookupParams>) -> impl IntoResponse {
    let snap = c.snapshot.load();
    match crate::lookup::lookup(&snap, &p.client, &p.name, &p.qtype) {
        Ok(report) => (StatusCode::OK, Json(serde_json::to_value(report).unwrap_or_default())),
        Err(e) => (StatusCode::BAD_REQUEST, Json(json!({ "error": e }))),
    }
}

/// The health-status document (schema in README, "Status API").
async fn status(State(c): State<Arc<Control>>) -> impl IntoResponse {
    Json(report::status(&c))
}

/// The status page for people: self-contained HTML with the first view rendered in,
/// so it works without JavaScript; with it, it refreshes from `/v1/status.html`.
async fn page(State(c): State<Arc<Control>>) -> impl IntoResponse {
    let html = page::page(&document(&c));
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], html)
}

/// The status page's view alone (what the page refreshes itself with).
async fn status_view(State(c): State<Arc<Control>>) -> impl IntoResponse {
    let html = page::view(&document(&c));
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], html)
}

/// The status document as the page reads it: the JSON `/v1/status` sends.
fn document(c: &Control) -> serde_json::Value {
    serde_json::to_value(report::status(c)).unwrap_or_default()
}

#[derive(serde::Deserialize)]
struct OverrideBody {
    action: ActionSpec,
    /// e.g. "10m"; absent: until removed.
    expires_in: Option<String>,
}

/// An admin action as the API takes it.
#[derive(serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum ActionSpec {
    Down,
    Up,
    Drain,
}

fn set_override(c: &Control, by: Actor, target: OverrideTarget, body: OverrideBody) -> Answer {
    let now = now_secs();
    let expires_at = match body.expires_in.as_deref().map(parse_duration) {
        None => None,
        Some(Ok(d)) => Some(now + d.as_secs().max(1)),
        Some(Err(e)) => return ApiError(StatusCode::BAD_REQUEST, format!("expires_in: {e}")).into_parts(),
    };
    let action = match body.action {
        ActionSpec::Down => Action::Down,
        ActionSpec::Up => Action::Up,
        ActionSpec::Drain => Action::Drain,
    };
    let o = Override { target, action, set_at: now, expires_at };
    c.monitor.set_override(o.clone(), by);
    let published = publish_now(c);
    let shown = json!({ "target": report::target_ref(&o.target), "action": o.action.as_str(), "set_at": report::rfc3339(o.set_at), "expires_at": o.expires_at.map(report::rfc3339) });
    (StatusCode::OK, Json(json!({ "ok": true, "override": shown, "generation": published.0, "snapshot": published.1 })))
}

/// Read-your-writes: the snapshot that carries an override is published before the call
/// answers (the health publisher would have done it within ~50 ms, and a query sent right
/// after the 200 could still get the old answer). (generation, snapshot id) now serving.
fn publish_now(c: &Control) -> (u64, u64) {
    c.publish_health();
    let snap = c.snapshot.load();
    (snap.generation, snap.id)
}

/// A response of the admin endpoints.
type Answer = (StatusCode, Json<serde_json::Value>);

fn address(text: &str) -> Result<IpAddr, ApiError> {
    text.parse().map_err(|_| ApiError(StatusCode::BAD_REQUEST, format!("{text:?} is not an IP address")))
}

fn clear_override(c: &Control, by: Actor, target: &OverrideTarget) -> Answer {
    let removed = c.monitor.clear_override(target, by);
    let published = publish_now(c);
    (if removed { StatusCode::OK } else { StatusCode::NOT_FOUND }, Json(json!({ "ok": removed, "generation": published.0, "snapshot": published.1 })))
}

/// The override's body, as the API takes it (looked at only after `auth::guard` let the
/// admin through).
fn body(body: Result<ApiJson<OverrideBody>, ApiError>) -> Result<OverrideBody, ApiError> {
    body.map(|ApiJson(b)| b)
}

async fn set_dc(State(c): State<Arc<Control>>, Extension(by): Extension<Actor>, ApiPath(name): ApiPath<String>, b: Result<ApiJson<OverrideBody>, ApiError>) -> Answer {
    let b = match body(b) {
        Ok(b) => b,
        Err(e) => return e.into_parts(),
    };
    if c.snapshot.load().geo.config.dc_index(&name).is_none() {
        return ApiError(StatusCode::NOT_FOUND, format!("no data centre {name:?}")).into_parts();
    }
    set_override(&c, by, OverrideTarget::Datacenter(name), b)
}

async fn clear_dc(State(c): State<Arc<Control>>, Extension(by): Extension<Actor>, ApiPath(name): ApiPath<String>) -> Answer {
    clear_override(&c, by, &OverrideTarget::Datacenter(name))
}

fn configured_address(c: &Control, a: IpAddr) -> bool {
    c.snapshot.load().config.geo.services.iter().flat_map(|s| &s.per_dc).any(|d| match a {
        IpAddr::V4(v) => d.v4.contains(&v),
        IpAddr::V6(v) => d.v6.contains(&v),
    })
}

async fn set_addr(State(c): State<Arc<Control>>, Extension(by): Extension<Actor>, ApiPath(addr): ApiPath<String>, b: Result<ApiJson<OverrideBody>, ApiError>) -> Answer {
    let (b, a) = match body(b).and_then(|b| Ok((b, address(&addr)?))) {
        Ok(x) => x,
        Err(e) => return e.into_parts(),
    };
    if !configured_address(&c, a) {
        return ApiError(StatusCode::NOT_FOUND, format!("{a} is not an address of any service")).into_parts();
    }
    set_override(&c, by, OverrideTarget::Address(a), b)
}

async fn clear_addr(State(c): State<Arc<Control>>, Extension(by): Extension<Actor>, ApiPath(addr): ApiPath<String>) -> Answer {
    match address(&addr) {
        Ok(a) => clear_override(&c, by, &OverrideTarget::Address(a)),
        Err(e) => e.into_parts(),
    }
}

/// This instance's own health observations for its fleet peers (the peer token).
/// Answers 304 when the peer's If-None-Match equals the current document's ETag, so a
/// steady fleet exchanges headers only.
async fn peer_observations(State(c): State<Arc<Control>>, headers: HeaderMap) -> Response {
    let snap = c.snapshot.load();
    let doc = c.monitor.observations(snap.generation, snap.config.routing_digest(), snap.loaded.serials());
    let body = doc.encode();
    let etag = crate::health::fleet::etag(&body);
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (StatusCode::OK, [(header::ETAG, etag), (header::CONTENT_TYPE, "application/json".to_string())], body).into_response()
}
