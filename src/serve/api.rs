//! The `/v1` API: predict with the serving model, status, model versions (metadata, weights,
//! activation) and manual retrains. Errors are JSON `{"error": {"code", "message"}}` with
//! stable codes; admin endpoints need `Authorization: Bearer <token>` (compared in constant
//! time).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use prometheus::core::Collector;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ingest::categories::Vocabulary;
use crate::ingest::decode::DecodeError;
use crate::ingest::decode::{Format, SchemaConfig};
use crate::ingest::pipeline::LagsSnapshot;
use crate::ingest::Decoder;
use crate::learn::checkpoint::export_safetensors;
use crate::learn::{BackendKind, ModelSpec, Task};
use crate::learner::{current, load_version, LoopHandle, LoopStatus, RetrainReport, VersionMeta};
use crate::metrics::Metrics;
use crate::record::Output;
use crate::serve::HttpConfig;
use crate::store::versions::{ModelVersions, VersionRecord};
use crate::store::{KvStore, RetrainLog, StoreError};

/// What the API reads of the configuration (`Config::api` builds it).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiConfig {
    /// `[http]`: body and batch limits, the request timeout.
    pub http: HttpConfig,
    /// How a predict body's records map to features.
    pub schema: SchemaConfig,
    /// The model the schema describes: a stored version must match it to be served.
    pub model: ModelSpec,
    /// The backend versions are rebuilt on.
    pub backend: BackendKind,
}

/// What the API handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub config: Arc<ApiConfig>,
    pub store: Arc<dyn KvStore>,
    pub handle: LoopHandle,
    pub metrics: Metrics,
    pub lags: Option<LagsSnapshot>,
    /// The admin bearer token; None disables the admin endpoints.
    pub admin_token: Option<Arc<String>>,
    /// Decoders for JSON objects and for lines in the stream's own format.
    pub json_decoder: Arc<Decoder>,
    pub line_decoder: Arc<Decoder>,
}

/// An API error: HTTP status, stable code, message.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub &'static str, pub String);

/// The body of every error answer: `{"error": {"code": ..., "message": ...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// A stable code (`bad_record`, `no_model`, `timeout`, ...) and a message for humans.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.1.to_string(),
                message: self.2,
            },
        };
        (self.0, Json(body)).into_response()
    }
}

fn bad(code: &'static str, msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, code, msg.into())
}

/// A 500 answer whose message is the error with its sources.
fn internal(e: impl Into<crate::error::BoxError>) -> ApiError {
    let e: crate::error::BoxError = e.into();
    ApiError(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        crate::error::Chain(&*e).to_string(),
    )
}

/// Equal bytes, in time that depends only on the lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorize(s: &ApiState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &s.admin_token else {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "admin_disabled",
            "admin endpoints are disabled: set http.admin_token_file or RELEARN_ADMIN_TOKEN".into(),
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing `Authorization: Bearer <token>`".into(),
            )
        })?;
    if !constant_time_eq(given.as_bytes(), token.as_bytes()) {
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "wrong admin token".into(),
        ));
    }
    Ok(())
}

/// Decoders for predict bodies: JSON objects by field name, and strings in the stream's own
/// format (a CSV line for a CSV stream).
pub fn decoders(schema: &SchemaConfig) -> Result<(Decoder, Decoder), DecodeError> {
    let mut json_schema = schema.clone();
    json_schema.format = Format::Json;
    Ok((Decoder::new(&json_schema)?, Decoder::new(schema)?))
}

impl ApiState {
    /// The API's state: the config, the store, the loop's handle, the metrics, the lag
    /// history (with `schema.lag_*`), the admin token, and the predict decoders built from
    /// the schema.
    pub fn new(
        config: ApiConfig,
        store: Arc<dyn KvStore>,
        handle: LoopHandle,
        metrics: Metrics,
        lags: Option<LagsSnapshot>,
        admin_token: Option<String>,
    ) -> Result<ApiState, DecodeError> {
        let (json_decoder, line_decoder) = decoders(&config.schema)?;
        Ok(ApiState {
            config: Arc::new(config),
            store,
            handle,
            metrics,
            lags,
            admin_token: admin_token.map(Arc::new),
            json_decoder: Arc::new(json_decoder),
            line_decoder: Arc::new(line_decoder),
        })
    }

    /// Predict bodies read categorical inputs from the ingest path's `vocabulary` (a value
    /// the stream has not brought yet sets no input).
    pub fn with_vocabulary(mut self, vocabulary: Arc<Vocabulary>) -> ApiState {
        let read = |d: &Decoder| Arc::new(d.clone().with_vocabulary(vocabulary.clone()));
        self.json_decoder = read(&self.json_decoder);
        self.line_decoder = read(&self.line_decoder);
        self
    }
}

/// `POST /v1/predict`: one record (a JSON object, or a string in the stream's format) or an
/// array of them.
/// Which model answers a predict request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelRole {
    /// What the loop serves and scores: the serving version with its output tracking,
    /// blended with the challenger by their recent losses (`challenger.blend`).
    #[default]
    Served,
    /// The serving version alone (with its output tracking).
    Champion,
    /// The challenger that learns from every labeled record (shadow traffic).
    Challenger,
}

/// The model a predict request is answered by, held for the request's duration.
enum Answering {
    Champion(Arc<crate::learner::Serving>),
    Challenger(Arc<crate::learner::ChallengerSnapshot>),
}

impl Answering {
    fn model(&self) -> &crate::learn::Model {
        match self {
            Answering::Champion(s) => &s.model,
            Answering::Challenger(c) => &c.model,
        }
    }

    /// The output tracking offset that goes with the model (`model.output_tracking`).
    fn shift(&self, handle: &crate::learner::LoopHandle) -> Option<crate::learn::tracking::Shift> {
        match self {
            Answering::Champion(_) => handle.shift(),
            Answering::Challenger(c) => c.shift.clone(),
        }
    }
}

/// A predict request's estimated floating-point operations (forward passes and the
/// neighbours' vote) up to which it runs on the tokio worker that read it; above, on the
/// blocking pool. One record of the default network over 54 inputs with the challenger and
/// a 1,000-record vote is about 0.2e6 (measured 15-40 us); a vote over 784 inputs (MNIST) or
/// a batch of several records goes to the pool.
const INLINE_MAX_FLOPS: f64 = 1.0e6;

/// Floating-point operations of one forward pass of `spec` (multiply-add = 2).
fn forward_flops(spec: &crate::learn::ModelSpec) -> f64 {
    spec.layer_dims()
        .iter()
        .map(|&(a, b)| 2.0 * (a * b) as f64)
        .sum()
}

/// Query parameters of `POST /v1/predict`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictQuery {
    #[serde(default)]
    pub model: ModelRole,
}

/// `POST /v1/predict[?model=served|champion|challenger]`.
pub async fn predict(
    State(s): State<Arc<ApiState>>,
    query: Result<axum::extract::Query<PredictQuery>, axum::extract::rejection::QueryRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let role = query
        .map_err(|e| {
            bad(
                "bad_query",
                format!("{e} (model is `served`, `champion` or `challenger`)"),
            )
        })?
        .0
        .model;
    let (items, single) = request_items(&body, s.config.http.max_batch_records)?;
    let (answering, version) = answering(&s.handle, role)?;
    let x = model_inputs(&s, &items, answering.model().spec.input)?;
    let spec = answering.model().spec.clone();
    let target_sd = answering.model().target.std;
    let shift = answering.shift(&s.handle);
    // The served answer blends in the challenger as the loop does (its weight as of the
    // last durable batch), when it is a model of the same shape.
    let partner = if role == ModelRole::Served {
        s.handle.challenger().filter(|c| {
            c.weight > 0.0
                && c.model.spec.input == spec.input
                && c.model.spec.task == spec.task
                && c.model.spec.classes == spec.classes
        })
    } else {
        None
    };
    // The linear corrections read the raw inputs too.
    let linear = |s: &Option<crate::learn::tracking::Shift>| {
        s.as_ref().is_some_and(|s| !s.weights.is_empty())
    };
    // The neighbours vote in a served answer (their weight as of the last durable batch).
    let neighbours = if role == ModelRole::Served {
        s.handle.neighbours().filter(|n| {
            n.weight > 0.0
                && n.neighbours.inputs() == spec.input
                && n.neighbours.width() == spec.classes.max(1)
        })
    } else {
        None
    };
    // Last, the labels' recent distribution with its own tracking, as the loop blends it.
    let prior = (role == ModelRole::Served)
        .then(|| s.handle.prior())
        .flatten()
        .filter(|p| p.weight > 0.0);
    let inputs = if linear(&shift)
        || partner.as_ref().is_some_and(|c| linear(&c.shift))
        || neighbours.is_some()
        || prior.as_ref().is_some_and(|p| linear(&p.shift))
    {
        x.clone()
    } else {
        Vec::new()
    };
    // The forward passes and the vote: a request whose work is small (one record of a
    // small model: tens of microseconds) runs it where it is, since handing it to another
    // thread costs a wake-up that waits for a core whenever ingest and retrains hold both;
    // larger work runs on the blocking pool, so that it never stalls other requests on a
    // tokio worker and the request timeout answers while it finishes.
    let task = spec.task;
    let rows = (x.len() / spec.input.max(1)).max(1);
    let flops = rows as f64
        * (forward_flops(&spec)
            + partner
                .as_ref()
                .map_or(0.0, |c| forward_flops(&c.model.spec))
            + neighbours.as_ref().map_or(0.0, |n| {
                3.0 * (n.neighbours.len() * n.neighbours.inputs()) as f64
            }));
    let theirs = partner.clone();
    let voters = neighbours.clone();
    let work = move || {
        let forward = |model: &crate::learn::Model| match task {
            Task::Classification => model.predict_proba(&x),
            Task::Regression => model.predict_values(&x),
        };
        let out = forward(answering.model())?;
        let other = match &theirs {
            Some(c) => Some(forward(&c.model)?),
            None => None,
        };
        let votes = voters.map(|n| neighbour_votes(&n.neighbours, &x, task));
        Ok::<_, crate::learn::LearnError>((out, other, votes))
    };
    let (mut out, other, votes) = if flops <= INLINE_MAX_FLOPS {
        work().map_err(internal)?
    } else {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(internal)?
            .map_err(internal)?
    };
    // The served output is the one the loop scores: the model's, with the tracking offset,
    // blended with the challenger's.
    if let Some(shift) = &shift {
        apply_shift(shift, &mut out, &inputs, task, spec.classes, target_sd);
    }
    let challenger_weight = match (&partner, other) {
        (Some(c), Some(mut other)) if other.len() == out.len() => {
            if let Some(shift) = &c.shift {
                let sd = c.model.target.std;
                apply_shift(shift, &mut other, &inputs, task, spec.classes, sd);
            }
            let w = c.weight;
            for (a, b) in out.iter_mut().zip(&other) {
                *a = (1.0 - w) * *a + w * b;
            }
            Some(w)
        }
        _ => None,
    };
    // Then the neighbours' vote, where they have one.
    let neighbours_weight = match (&neighbours, votes) {
        (Some(n), Some(votes)) => {
            let w = n.weight;
            let per = spec.classes.max(1);
            for (row, vote) in out.chunks_exact_mut(per).zip(&votes) {
                if let Some(vote) = vote {
                    for (a, b) in row.iter_mut().zip(vote) {
                        *a = (1.0 - w) * *a + w * b;
                    }
                }
            }
            Some(w)
        }
        _ => None,
    };
    let prior_weight = prior.and_then(|p| {
        let w = p.weight;
        let per = spec.classes.max(1);
        let row: Vec<f32> = match p.output {
            Output::Class { probabilities, .. } => probabilities,
            Output::Value(v) => vec![v],
        };
        (row.len() == per).then(|| {
            let mut theirs = row.repeat(out.len() / per);
            if let Some(shift) = &p.shift {
                apply_shift(shift, &mut theirs, &inputs, task, spec.classes, target_sd);
            }
            for (a, b) in out.iter_mut().zip(&theirs) {
                *a = (1.0 - w) * *a + w * b;
            }
            w
        })
    });
    let preds = predicted(&out, task, spec.classes, &s.config.schema.classes);
    s.metrics.serve.predictions.inc_by(preds.len() as u64);
    let model = role;
    Ok(if single {
        let Some(prediction) = preds.into_iter().next() else {
            return Err(internal("no prediction for the record"));
        };
        Json(PredictOne {
            prediction,
            version,
            model,
            challenger_weight,
            neighbours_weight,
            prior_weight,
        })
        .into_response()
    } else {
        Json(PredictMany {
            version,
            model,
            challenger_weight,
            neighbours_weight,
            prior_weight,
            predictions: preds,
        })
        .into_response()
    })
}

/// The records of a predict body (one, or an array of at most `max`), and whether it was
/// one.
fn request_items(body: &[u8], max: usize) -> Result<(Vec<Value>, bool), ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| bad("bad_json", format!("request body is not JSON: {e}")))?;
    let (items, single) = match value {
        Value::Array(a) => (a, false),
        other => (vec![other], true),
    };
    if items.is_empty() {
        return Err(bad("empty_batch", "the array holds no record"));
    }
    if items.len() > max {
        return Err(bad(
            "batch_too_large",
            format!("{} records; http.max_batch_records is {max}", items.len()),
        ));
    }
    Ok((items, single))
}

/// The model that answers `role`, and the version it is (or was copied from); 503
/// `no_model` when there is none yet.
fn answering(handle: &LoopHandle, role: ModelRole) -> Result<(Answering, Option<u64>), ApiError> {
    let no_model = |what: &str| {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_model",
            format!("{what} (the first version is trained after model.bootstrap_labeled labeled records)"),
        )
    };
    Ok(match role {
        ModelRole::Served | ModelRole::Champion => {
            let c =
                current(&handle.serving).ok_or_else(|| no_model("no model version serves yet"))?;
            let v = Some(c.version);
            (Answering::Champion(c), v)
        }
        ModelRole::Challenger => {
            let c = handle
                .challenger()
                .ok_or_else(|| no_model("no challenger is learning"))?;
            let v = c.parent;
            (Answering::Challenger(c), v)
        }
    })
}

/// Every record's model inputs, `width` per record (the lagged history appended with
/// `schema.lag_*`); 400 `bad_record` names the first record that does not decode.
fn model_inputs(s: &ApiState, items: &[Value], width: usize) -> Result<Vec<f32>, ApiError> {
    let lags = s
        .lags
        .as_ref()
        .map(|l| l.read().unwrap_or_else(|p| p.into_inner()).clone());
    let mut x = Vec::with_capacity(items.len() * width);
    for (i, item) in items.iter().enumerate() {
        let record = match item {
            Value::Object(_) => s.json_decoder.decode(item.to_string().as_bytes()),
            Value::String(line) => s.line_decoder.decode(line.as_bytes()),
            _ => {
                return Err(bad(
                    "bad_record",
                    format!("record {i}: expected an object or a string"),
                ))
            }
        }
        .map_err(|e| {
            bad(
                "bad_record",
                format!("record {i}: {} ({})", e.detail, e.reason.as_str()),
            )
        })?;
        match &lags {
            Some(l) => x.extend(l.augmented(&record.features)),
            None => x.extend(record.features),
        }
    }
    Ok(x)
}

/// The neighbours' vote for each record of `x` (class probabilities or a value; None where
/// they have none).
fn neighbour_votes(
    nb: &crate::learn::neighbours::Neighbours,
    x: &[f32],
    task: Task,
) -> Vec<Option<Vec<f32>>> {
    x.chunks_exact(nb.inputs().max(1))
        .map(|row| match task {
            Task::Classification => {
                let mut p = vec![0.0; nb.width()];
                nb.predict_class(row, &mut p).then_some(p)
            }
            Task::Regression => nb.predict_value(row).map(|v| vec![v]),
        })
        .collect()
}

/// Applies the output tracking correction to the model's outputs `out` (class
/// probabilities, `classes` per record, or values), given each record's raw `inputs`.
fn apply_shift(
    shift: &crate::learn::tracking::Shift,
    out: &mut [f32],
    inputs: &[f32],
    task: Task,
    classes: usize,
    target_sd: f32,
) {
    let n = match task {
        Task::Classification => out.len() / classes.max(1),
        Task::Regression => out.len(),
    };
    let width = inputs.len().checked_div(n).unwrap_or(0);
    let row = |i: usize| inputs.get(i * width..(i + 1) * width).unwrap_or(&[]);
    match task {
        Task::Classification => out
            .chunks_exact_mut(classes.max(1))
            .enumerate()
            .for_each(|(i, p)| shift.adjust_probs(p, row(i))),
        Task::Regression => out
            .iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = shift.adjust_value(*v, row(i), target_sd)),
    }
}

/// The answers for the outputs `out`: a value each, or the most probable of `classes`
/// classes named by `names` with every probability.
fn predicted(out: &[f32], task: Task, classes: usize, names: &[String]) -> Vec<Predicted> {
    match task {
        Task::Regression => out
            .iter()
            .map(|&value| Predicted::Value { value })
            .collect(),
        Task::Classification => out
            .chunks_exact(classes.max(1))
            .map(|row| {
                let best = row
                    .iter()
                    .enumerate()
                    .fold(
                        (0, f32::NEG_INFINITY),
                        |b, (i, &v)| if v > b.1 { (i, v) } else { b },
                    )
                    .0;
                Predicted::Class {
                    class: names.get(best).cloned(),
                    index: best,
                    probabilities: names.iter().cloned().zip(row.iter().copied()).collect(),
                }
            })
            .collect(),
    }
}

/// One record's prediction in a `/v1/predict` answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Predicted {
    /// A classifier's: the most probable class, its index, every class's probability.
    Class {
        class: Option<String>,
        index: usize,
        probabilities: std::collections::BTreeMap<String, f32>,
    },
    /// A regression's value.
    Value { value: f32 },
}

/// `/v1/predict` for one record: its prediction, the version and model that answered.
#[derive(Debug, Serialize)]
pub struct PredictOne {
    #[serde(flatten)]
    pub prediction: Predicted,
    /// The serving version, or the one the challenger was copied from.
    pub version: Option<u64>,
    pub model: ModelRole,
    /// The challenger's weight in a served answer (absent: the model named alone answered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenger_weight: Option<f32>,
    /// The nearest neighbours' weight in a served answer (absent: they did not vote).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub neighbours_weight: Option<f32>,
    /// The labels' recent distribution's weight in a served answer (absent: not blended).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prior_weight: Option<f32>,
}

/// `/v1/predict` for a batch.
#[derive(Debug, Serialize)]
pub struct PredictMany {
    pub version: Option<u64>,
    pub model: ModelRole,
    /// The challenger's weight in a served answer (absent: the model named alone answered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenger_weight: Option<f32>,
    /// The nearest neighbours' weight in a served answer (absent: they did not vote).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub neighbours_weight: Option<f32>,
    /// The labels' recent distribution's weight in a served answer (absent: not blended).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prior_weight: Option<f32>,
    pub predictions: Vec<Predicted>,
}

/// The `/v1/status` answer: the loop's snapshot and what the API adds.
#[derive(Debug, Serialize)]
pub struct StatusResponse {
    #[serde(flatten)]
    pub state: LoopStatus,
    /// The last retrain's report, without its per-layer choice and epochs.
    pub last_retrain: Option<RetrainReport>,
    pub retrains_recorded: usize,
    pub replay_records: i64,
    pub consumer_lag_records: f64,
    pub records: u64,
}

/// `GET /v1/status`.
pub async fn status(State(s): State<Arc<ApiState>>) -> Result<Json<StatusResponse>, ApiError> {
    let mut state = s.handle.status();
    state.serving_version = current(&s.handle.serving).map(|v| v.version);
    let log = RetrainLog::new(s.store.as_ref());
    let last: Option<RetrainReport> = log.last().map_err(internal)?;
    let lag: f64 = s
        .metrics
        .ingest
        .lag
        .collect()
        .iter()
        .flat_map(|f| f.get_metric())
        .map(|m| m.get_gauge().get_value())
        .sum();
    Ok(Json(StatusResponse {
        state,
        last_retrain: last.as_ref().map(RetrainReport::summary),
        retrains_recorded: log.count().map_err(internal)?,
        replay_records: s.metrics.store.replay_records.get(),
        consumer_lag_records: lag,
        records: s.metrics.ingest.records.get(),
    }))
}

/// `GET /v1/models`: the serving version and every kept version, without their reference
/// statistics and per-layer choice (`/v1/models/{version}` has them).
#[derive(Debug, Serialize)]
pub struct ModelsResponse {
    pub active: Option<u64>,
    /// Versions removed by the retention policy (`models.keep_last`) so far.
    pub pruned: u64,
    pub versions: Vec<VersionRecord<VersionMeta>>,
}

impl ModelsResponse {
    /// The listing of the versions in `store`.
    pub fn read(store: &dyn KvStore) -> Result<ModelsResponse, StoreError> {
        let versions = ModelVersions::new(store);
        Ok(ModelsResponse {
            active: versions.active()?,
            pruned: versions.pruned()?,
            versions: versions
                .list::<VersionMeta>()?
                .into_iter()
                .map(listing)
                .collect(),
        })
    }
}

/// `GET /v1/models`.
pub async fn models(State(s): State<Arc<ApiState>>) -> Result<Json<ModelsResponse>, ApiError> {
    Ok(Json(
        ModelsResponse::read(s.store.as_ref()).map_err(internal)?,
    ))
}

/// A version's record as listed.
pub fn listing(mut r: VersionRecord<VersionMeta>) -> VersionRecord<VersionMeta> {
    r.metadata = r.metadata.listing();
    r
}

fn version_or_404(s: &ApiState, v: u64) -> Result<(VersionRecord<VersionMeta>, Vec<u8>), ApiError> {
    ModelVersions::new(s.store.as_ref())
        .get(v)
        .map_err(internal)?
        .ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                "no_such_version",
                format!("model version {v} does not exist"),
            )
        })
}

/// `GET /v1/models/{version}`: metadata, validation and cost report (reference statistics
/// included).
pub async fn model(
    State(s): State<Arc<ApiState>>,
    Path(v): Path<u64>,
) -> Result<Json<VersionRecord<VersionMeta>>, ApiError> {
    let (record, _) = version_or_404(&s, v)?;
    Ok(Json(record))
}

/// `GET /v1/models/{version}/weights`: safetensors in PyTorch layout (`[out, in]` weights).
pub async fn weights(
    State(s): State<Arc<ApiState>>,
    Path(v): Path<u64>,
) -> Result<Response, ApiError> {
    version_or_404(&s, v)?;
    let serving =
        load_version(s.store.as_ref(), &s.config.model, s.config.backend, v).map_err(internal)?;
    let bytes = export_safetensors(&serving.model).map_err(internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"relearn-v{v}.safetensors\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// `POST /v1/models/{version}/activate` (admin): rollback or roll forward, swapped into
/// serving at once.
pub async fn activate(
    State(s): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(v): Path<u64>,
) -> Result<Json<Activated>, ApiError> {
    authorize(&s, &headers)?;
    version_or_404(&s, v)?;
    if s.handle.running.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(ApiError(
            StatusCode::CONFLICT,
            "retrain_running",
            "a retrain is running; activate after it ends".into(),
        ));
    }
    let serving =
        load_version(s.store.as_ref(), &s.config.model, s.config.backend, v).map_err(internal)?;
    ModelVersions::new(s.store.as_ref())
        .activate(v)
        .map_err(internal)?;
    s.handle.swap(serving);
    s.metrics.learn.model_version.set(v as i64);
    tracing::info!(version = v, "model version activated over HTTP");
    Ok(Json(Activated { active: v }))
}

/// The answer of `POST /v1/models/{version}/activate`.
#[derive(Debug, Serialize)]
pub struct Activated {
    pub active: u64,
}

/// The answer of `POST /v1/retrain`.
#[derive(Debug, Serialize)]
pub struct RetrainRequested {
    pub requested: bool,
    pub layers: Option<Vec<String>>,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RetrainRequest {
    layers: Option<Vec<String>>,
}

/// `POST /v1/retrain` (admin): a manual trigger, optionally of named layers
/// (`{"layers": ["head"]}`); it starts at the loop's next tick (within a second).
pub async fn retrain(
    State(s): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<RetrainRequested>), ApiError> {
    authorize(&s, &headers)?;
    let req: RetrainRequest = if body.is_empty() {
        RetrainRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| bad("bad_json", e.to_string()))?
    };
    if let (Some(layers), Some(serving)) = (&req.layers, current(&s.handle.serving)) {
        let known = serving.model.layer_names();
        if let Some(l) = layers.iter().find(|l| !known.contains(l)) {
            return Err(bad(
                "unknown_layer",
                format!("unknown layer `{l}`; layers are {known:?}"),
            ));
        }
        if layers.is_empty() {
            return Err(bad("unknown_layer", "the list of layers is empty"));
        }
    }
    s.handle.request_retrain(req.layers.clone());
    Ok((
        StatusCode::ACCEPTED,
        Json(RetrainRequested {
            requested: true,
            layers: req.layers,
        }),
    ))
}

/// `GET /openapi.json`.
pub async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
}
