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
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::error::ConfigError;
use crate::metrics::Metrics;

/// Answers a yes/no question about the daemon (ready to work, alive).
pub type Probe = Arc<dyn Fn() -> bool + Send + Sync>;

#[derive(Clone)]
struct AppState {
    metrics: Metrics,
    ready: Probe,
    live: Probe,
}

/// The endpoints, as (method, path, handler): the routers below are built from these lists,
/// and a test compares them with `openapi.json`'s paths, so the document cannot name a route
/// that does not exist or leave one out.
fn probe_routes() -> Vec<(&'static str, &'static str, MethodRouter<AppState>)> {
    vec![
        ("get", "/metrics", get(metrics_handler)),
        ("get", "/healthz", get(health_handler)),
        ("get", "/readyz", get(ready_handler)),
    ]
}

/// The `/v1` API's endpoints (see [`probe_routes`]); `/openapi.json` itself is not in the
/// document.
fn api_routes() -> Vec<(
    &'static str,
    &'static str,
    MethodRouter<std::sync::Arc<api::ApiState>>,
)> {
    vec![
        ("post", "/v1/predict", post(api::predict)),
        ("get", "/v1/status", get(api::status)),
        ("get", "/v1/models", get(api::models)),
        ("get", "/v1/models/{version}", get(api::model)),
        ("get", "/v1/models/{version}/weights", get(api::weights)),
        ("post", "/v1/models/{version}/activate", post(api::activate)),
        ("post", "/v1/retrain", post(api::retrain)),
    ]
}

/// The router of every endpoint; the `/v1` API when the learning loop runs. `/readyz`
/// answers `ready`, `/healthz` answers `live` (false: ingest stalled, restart the process).
pub fn router(metrics: Metrics, ready: Probe, live: Probe, api: Option<api::ApiState>) -> Router {
    let base = probe_routes()
        .into_iter()
        .fold(Router::new(), |r, (_, path, handler)| {
            r.route(path, handler)
        })
        .with_state(AppState {
            metrics: metrics.clone(),
            ready,
            live,
        });
    let Some(api) = api else {
        return base;
    };
    let limit = api.config.http.max_body_bytes;
    let timeout = api.config.http.request_timeout;
    let v1 = api_routes()
        .into_iter()
        .fold(Router::new(), |r, (_, path, handler)| {
            r.route(path, handler)
        })
        .route("/openapi.json", get(api::openapi))
        .with_state(std::sync::Arc::new(api))
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

/// The HTTP listener.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to listen on (`127.0.0.1:8080`; port 0 picks a free port, logged at start).
    pub listen: String,
    /// File holding the bearer token of the admin endpoints (activate, retrain). Empty: the
    /// `RELEARN_ADMIN_TOKEN` environment variable; neither: admin endpoints are disabled.
    #[serde(with = "crate::units::opt_path")]
    pub admin_token_file: Option<std::path::PathBuf>,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Most records in one predict request.
    pub max_batch_records: usize,
    /// Requests taking longer are answered 503 `timeout`, in milliseconds.
    #[serde(rename = "request_timeout_ms", with = "crate::units::millis")]
    pub request_timeout: std::time::Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            admin_token_file: None,
            max_body_bytes: 1 << 20,
            max_batch_records: 1024,
            request_timeout: std::time::Duration::from_millis(5000),
        }
    }
}

impl HttpConfig {
    /// Refuses values of this section that cannot work, naming the key.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::key(
                "http.listen",
                format!("`{}` is not an address like 127.0.0.1:8080", self.listen),
            ));
        }
        if self.max_body_bytes == 0 {
            return Err(ConfigError::key("http.max_body_bytes", "must be > 0"));
        }
        if self.max_batch_records == 0 {
            return Err(ConfigError::key("http.max_batch_records", "must be > 0"));
        }
        if self.request_timeout.is_zero() {
            return Err(ConfigError::key("http.request_timeout_ms", "must be > 0"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// `openapi.json` documents exactly the routes the routers serve, with their methods.
    #[test]
    fn the_openapi_document_lists_every_route() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("openapi.json")).expect("openapi.json is JSON");
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .expect("openapi.json has paths")
            .iter()
            .flat_map(|(path, item)| {
                let methods = item.as_object().expect("a path item is an object");
                methods.keys().map(move |m| (m.clone(), path.clone()))
            })
            .collect();
        let served: BTreeSet<(String, String)> = probe_routes()
            .into_iter()
            .map(|(m, p, _)| (m.to_string(), p.to_string()))
            .chain(
                api_routes()
                    .into_iter()
                    .map(|(m, p, _)| (m.to_string(), p.to_string())),
            )
            .collect();
        assert_eq!(documented, served);
    }
}
