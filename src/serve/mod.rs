//! The HTTP surface: `/metrics` (Prometheus text), `/healthz` (the process answers and
//! ingest is not stalled),
//! `/readyz` (the store is open and the source holds its input), and the `/v1` API
//! (`api.rs`) with its OpenAPI document; body limit and timeout on every request.

pub mod api;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Answers a yes/no question about the daemon (ready to work, alive).
pub type Probe = Arc<dyn Fn() -> bool + Send + Sync>;

#[derive(Clone)]
struct AppState {
    metrics: Metrics,
    ready: Probe,
    live: Probe,
}

/// The router of every endpoint; the `/v1` API when the learning loop runs. `/readyz`
/// answers `ready`, `/healthz` answers `live` (false: ingest stalled, restart the process).
pub fn router(metrics: Metrics, ready: Probe, live: Probe, api: Option<api::ApiState>) -> Router {
    let base = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(health_handler))
        .route("/readyz", get(ready_handler))
        .with_state(AppState {
            metrics: metrics.clone(),
            ready,
            live,
        });
    let Some(api) = api else {
        return base;
    };
    let limit = api.config.http.max_body_bytes;
    let timeout = std::time::Duration::from_millis(api.config.http.request_timeout_ms);
    let v1 = Router::new()
        .route("/v1/predict", post(api::predict))
        .route("/v1/status", get(api::status))
        .route("/v1/models", get(api::models))
        .route("/v1/models/{version}", get(api::model))
        .route("/v1/models/{version}/weights", get(api::weights))
        .route("/v1/models/{version}/activate", post(api::activate))
        .route("/v1/retrain", post(api::retrain))
        .route("/openapi.json", get(api::openapi))
        .with_state(api)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let metrics = metrics.clone();
                async move {
                    let started = std::time::Instant::now();
                    let resp = match tokio::time::timeout(timeout, next.run(req)).await {
                        Ok(r) => r,
                        Err(_) => api::ApiError(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "timeout",
                            format!("request took longer than {} ms", timeout.as_millis()),
                        )
                        .into_response(),
                    };
                    metrics
                        .serve
                        .requests
                        .with_label_values(&[resp.status().as_str()])
                        .inc();
                    metrics
                        .serve
                        .request_seconds
                        .observe(started.elapsed().as_secs_f64());
                    resp
                }
            },
        ));
    base.merge(v1)
}

async fn metrics_handler(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
}

async fn health_handler(State(s): State<AppState>) -> impl IntoResponse {
    if (s.live)() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "ingest stalled\n")
    }
}

async fn ready_handler(State(s): State<AppState>) -> impl IntoResponse {
    if (s.ready)() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then drains open requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
