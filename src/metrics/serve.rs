//! HTTP serving metrics: records predicted, `/v1` requests by status code and their latency.

use prometheus::{Histogram, IntCounter, IntCounterVec};

use super::Registrar;

/// The HTTP API's metrics (`relearn_serve_*`).
#[derive(Clone)]
pub struct ServeMetrics {
    /// Records predicted over HTTP.
    pub predictions: IntCounter,
    /// `/v1` requests by HTTP `code`.
    pub requests: IntCounterVec,
    /// Seconds to answer a `/v1` request.
    pub request_seconds: Histogram,
}

impl ServeMetrics {
    pub(super) fn register(r: &mut Registrar<'_>) -> ServeMetrics {
        ServeMetrics {
            predictions: r.counter(
                "relearn_serve_predictions_total",
                "Records predicted over HTTP.",
            ),
            requests: r.counters(
                "relearn_serve_requests_total",
                "/v1 requests by HTTP status code.",
                "code",
                &[],
            ),
            request_seconds: r.histogram(
                "relearn_serve_request_duration_seconds",
                "Seconds to answer a /v1 request.",
                &[
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0,
                ],
            ),
        }
    }
}
