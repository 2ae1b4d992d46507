//! HTTP API: `GET /healthz`, `GET /readyz`, `POST /v1/reload`, `GET /metrics`.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::config::defaults::HTTP_MAX_BODY;
use crate::control::Control;

pub fn router(control: Arc<Control>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/v1/reload", post(reload))
        .route("/metrics", get(metrics))
        .route("/v1/lookup", get(lookup))
        .layer(DefaultBodyLimit::max(HTTP_MAX_BODY))
        .with_state(control)
}

/// The process is alive and its HTTP side answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when at least one zone is loaded.
async fn readyz(State(c): State<Arc<Control>>) -> impl IntoResponse {
    let snap = c.snapshot.load();
    let zones = snap.catalog.zones.len();
    let body = json!({ "ready": zones > 0, "zones": zones, "generation": snap.generation });
    let code = if zones > 0 { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(body))
}

/// Reloads config and zones; on failure returns 422 with every problem (file:line: reason).
async fn reload(State(c): State<Arc<Control>>) -> impl IntoResponse {
    match c.reload().await {
        Ok(report) => (StatusCode::OK, Json(json!({ "ok": true, "report": report }))),
        Err(problems) => {
            let errors: Vec<_> = problems
                .iter()
                .map(|p| json!({ "file": p.file.display().to_string(), "line": p.line, "reason": p.msg, "text": p.to_string() }))
                .collect();
            let generation = c.snapshot.load().generation;
            (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "ok": false, "errors": errors, "serving_generation": generation })))
        }
    }
}

async fn metrics(State(c): State<Arc<Control>>) -> impl IntoResponse {
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
async fn lookup(State(c): State<Arc<Control>>, Query(p): Query<LookupParams>) -> impl IntoResponse {
    let snap = c.snapshot.load();
    match crate::lookup::lookup(&snap, &p.client, &p.name, &p.qtype) {
        Ok(report) => (StatusCode::OK, Json(serde_json::to_value(report).unwrap_or_default())),
        Err(e) => (StatusCode::BAD_REQUEST, Json(json!({ "error": e }))),
    }
}
