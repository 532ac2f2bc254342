//! The configuration tree: every key, its default, environment overrides and validation.
//!
//! Configuration is TOML. Every struct refuses unknown keys, every field has a default (so an
//! empty file is a valid configuration that runs the embedded demo) and `validate` refuses bad
//! values with the key's dotted path and the reason. Environment variables of the form
//! `RELEARN__SECTION__KEY=value` override the file; the value is read as a TOML value when it
//! parses as one (`42`, `true`, `["a","b"]`) and as a string otherwise.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::learn::Task;

/// Prefix of environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "RELEARN__";

/// A configuration that could not be loaded; every variant names the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config is not valid TOML: {0}")]
    Syntax(String),
    #[error("config key `{key}`: {reason}")]
    Key { key: String, reason: String },
    #[error("environment override {var}: {reason}")]
    Env { var: String, reason: String },
}

impl ConfigError {
    fn key(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Key {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where records come from when no Kafka broker is configured.
    pub file: FileSourceConfig,
    /// Kafka consumer, dead-letter topic and librdkafka pass-through properties.
    pub kafka: KafkaConfig,
    /// How a record's bytes map to features and a label.
    pub schema: SchemaConfig,
    /// Batching of the ingest path (one RocksDB write batch per ingest batch).
    pub ingest: IngestConfig,
    /// The RocksDB state directory.
    pub store: StoreConfig,
    /// The replay buffer of past labeled records.
    pub replay: ReplayConfig,
    /// The HTTP listener (metrics, health, readiness).
    pub http: HttpConfig,
    /// The model's architecture and backend.
    pub model: ModelConfig,
    /// Training hyper-parameters of a retrain.
    pub train: crate::learn::TrainConfig,
    /// Online EWC.
    pub ewc: EwcConfig,
    /// Drift detectors: windows and thresholds.
    pub drift: crate::drift::monitor::DriftConfig,
    /// When a retrain starts.
    pub triggers: crate::drift::trigger::TriggerConfig,
    /// Which layers a retrain changes and the validation gate.
    pub retrain: crate::retrain::RetrainConfig,
    /// Continuous learning: the challenger beside the serving model.
    pub challenger: crate::learner::challenger::ChallengerConfig,
    /// Retention of model versions.
    pub models: ModelsConfig,
    /// The shutdown budget.
    pub shutdown: ShutdownConfig,
    /// Labels that arrive after their features, joined by key.
    pub labels: crate::ingest::join::LabelsConfig,
}

/// `[shutdown]`: how long SIGTERM or SIGINT may take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// Seconds from SIGTERM to exit. A running retrain is cancelled between training steps
    /// and the open batch is written; a daemon still running at the deadline exits with
    /// status 1 (the store stays consistent: every batch is one atomic write). Keep it under
    /// the supervisor's kill delay (Kubernetes' terminationGracePeriodSeconds, systemd's
    /// TimeoutStopSec).
    pub grace_seconds: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self { grace_seconds: 20 }
    }
}

/// `[models]`: how many versions the store keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    /// Versions kept besides the first version, every version that was ever activated by
    /// hand (a rollback) or pinned, and the active one; older ones are deleted when a new one is written. 0 = all.
    pub keep_last: usize,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        Self { keep_last: 50 }
    }
}

/// The file source: CSV or JSON lines from a file (optionally gzip-compressed) or stdin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileSourceConfig {
    /// Path of the input. Empty: the Elec2 stream embedded in the binary. `-`: standard input.
    /// A name ending in `.gz` is decompressed.
    pub path: String,
    /// Whether the first line is a CSV header; when true, CSV columns are taken from it.
    pub header: bool,
    /// Where malformed records go (JSON lines with reason, source, offset and the payload in
    /// base64). Empty: `dead-letter.jsonl` inside the store directory.
    pub dead_letter_path: String,
    /// Exit after the end of the input is reached (true), or keep serving (false).
    pub exit_at_end: bool,
    /// Where the serving model's prediction for every scored record goes (JSON lines: key,
    /// source position, model version, class and probabilities or value, time), written
    /// before the batch's offsets. Empty: nowhere. With Kafka, see `kafka.predictions_topic`.
    pub predictions_path: String,
}

impl Default for FileSourceConfig {
    fn default() -> Self {
        Self {
            path: String::new(),
            header: true,
            dead_letter_path: String::new(),
            exit_at_end: true,
            predictions_path: String::new(),
        }
    }
}

/// The Kafka source. When `brokers` is empty the file source runs instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port...]`. Empty: use the file source.
    pub brokers: String,
    /// Topics to consume.
    pub topics: Vec<String>,
    /// Topics of label records (delayed labels, `labels.enabled`): each record carries
    /// `schema.key` and `schema.label` only (CSV columns: `labels.label_columns`). Consumed
    /// in the same group, their offsets stored with the joins they produced.
    pub label_topics: Vec<String>,
    /// Consumer group id.
    pub group_id: String,
    /// Topic that receives every record that cannot be decoded, with its reason in headers.
    pub dead_letter_topic: String,
    /// Topic that receives the serving model's prediction for every scored record (JSON:
    /// key, source position, model version, class and probabilities or value, time), keyed
    /// by the record's key, the source position in headers; idempotent producer, delivered
    /// before the batch's offsets are stored (at least once: deduplicate on the headers).
    /// Empty: none.
    pub predictions_topic: String,
    /// Where to start in a partition with no offset stored in RocksDB nor committed in Kafka:
    /// `earliest` or `latest`.
    pub auto_offset_reset: String,
    /// Extra librdkafka properties passed through unchanged to the consumer and the producer
    /// (SASL, TLS...). Keys the daemon manages itself are refused.
    pub properties: BTreeMap<String, String>,
    /// librdkafka properties for the consumer only (`session.timeout.ms`,
    /// `group.instance.id`, fetch tuning...); applied after `properties`.
    pub consumer_properties: BTreeMap<String, String>,
    /// librdkafka properties for the dead-letter producer only; applied after `properties`.
    pub producer_properties: BTreeMap<String, String>,
    /// Largest dead letter produced, in bytes (payload, key and headers). A larger malformed
    /// record is dead-lettered with its payload truncated to fit; headers carry its original
    /// size and SHA-256. Keep it at or below the dead-letter topic's `max.message.bytes`
    /// (a letter the broker still refuses as too large is resent with a 1 KiB prefix).
    pub dead_letter_max_bytes: usize,
    /// `/healthz` answers 503 once the consumer has made no progress (no successful poll)
    /// for this many seconds: a fatal consumer error that could not be recovered, or a
    /// broker outage longer than this, so a supervisor restarts the daemon. 0 = never.
    pub stall_timeout_seconds: u64,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: String::new(),
            topics: vec!["relearn.records".into()],
            label_topics: Vec::new(),
            group_id: "relearn".into(),
            dead_letter_topic: "relearn.dead-letter".into(),
            predictions_topic: String::new(),
            auto_offset_reset: "earliest".into(),
            properties: BTreeMap::new(),
            consumer_properties: BTreeMap::new(),
            producer_properties: BTreeMap::new(),
            dead_letter_max_bytes: 1_000_000,
            stall_timeout_seconds: 300,
        }
    }
}

/// The smallest `kafka.dead_letter_max_bytes`: room for the headers and a payload prefix.
pub const MIN_DEAD_LETTER_BYTES: usize = 4096;

/// librdkafka properties the daemon sets itself; a pass-through may not override them, since
/// exactly-once state depends on them.
pub const MANAGED_KAFKA_PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "enable.partition.eof",
];

/// Record encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON object per record; fields by name. Numbers may also be given as strings.
    Json,
    /// One CSV line per record; fields by position (see `columns`).
    Csv,
}

/// How a record's bytes map to features, a label, a key and a timestamp.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchemaConfig {
    /// `json` or `csv`.
    pub format: Format,
    /// Ordered feature field names; the model's input width is their number.
    pub features: Vec<String>,
    /// Label field name. Empty: records carry no label. A record whose label field is absent
    /// or empty is an unlabeled record, not a malformed one.
    pub label: String,
    /// What the label is: `classification` (one of `classes`) or `regression` (a number).
    pub task: Task,
    /// Class names in index order (`["DOWN", "UP"]`). Use `["0", "1", ...]` for numeric labels.
    /// Ignored with `task = "regression"`.
    pub classes: Vec<String>,
    /// Optional field that holds the record's key (kept for predictions). Empty: none.
    pub key: String,
    /// Optional field that holds the record's event time in milliseconds. Empty: none.
    pub timestamp: String,
    /// CSV column names in order. Empty: `features` then `label`. Ignored for JSON and when
    /// the file source reads a header.
    pub columns: Vec<String>,
    /// CSV field delimiter (one ASCII character).
    pub delimiter: String,
    /// Records larger than this many bytes are malformed (`too_large`).
    pub max_record_bytes: usize,
    /// Temporal augmentation: append the features of this many previous records (stream
    /// order) to each record's input. Meaningful for one ordered stream (one partition).
    pub lag_records: usize,
    /// Temporal augmentation: append the one-hot labels of this many previous records.
    pub lag_labels: usize,
    /// String input fields (country, device, carrier). Each is hashed into
    /// `categorical_buckets` one-hot inputs; a value never seen before is not an error. A
    /// number in such a field is read as its text. Disjoint from `features`.
    pub categorical: Vec<String>,
    /// One-hot inputs per categorical field (feature hashing, FNV-1a). Two values share an
    /// input only when their hashes collide; more buckets make that rarer.
    pub categorical_buckets: usize,
    /// What an absent, null or empty field, or one of `missing_tokens`, does.
    pub missing: MissingPolicy,
    /// Values that mean "missing" in a numeric or categorical field, compared after trimming.
    pub missing_tokens: Vec<String>,
}

/// What a missing feature value does (`schema.missing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MissingPolicy {
    /// A missing numeric value becomes the model normaliser's mean (its standardised input is
    /// 0); a missing categorical value sets none of its inputs. Counted per field.
    Impute,
    /// As `impute`, plus one 0/1 input per numeric feature that says the value was missing
    /// (changes the model's input width).
    Indicate,
    /// A missing value makes the record malformed (`missing_field`, to the dead-letter sink).
    Reject,
}

impl MissingPolicy {
    /// The TOML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MissingPolicy::Impute => "impute",
            MissingPolicy::Indicate => "indicate",
            MissingPolicy::Reject => "reject",
        }
    }
}

/// Default `schema.missing_tokens`.
pub const DEFAULT_MISSING_TOKENS: &[&str] =
    &["NA", "N/A", "NaN", "nan", "null", "NULL", "None", "?"];

impl Default for SchemaConfig {
    fn default() -> Self {
        Self {
            format: Format::Csv,
            features: [
                "day",
                "period",
                "nswprice",
                "nswdemand",
                "vicprice",
                "vicdemand",
                "transfer",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            label: "class".into(),
            task: Task::Classification,
            classes: vec!["DOWN".into(), "UP".into()],
            key: String::new(),
            timestamp: String::new(),
            columns: Vec::new(),
            delimiter: ",".into(),
            max_record_bytes: 65_536,
            lag_records: 0,
            lag_labels: 0,
            categorical: Vec::new(),
            categorical_buckets: 32,
            missing: MissingPolicy::Impute,
            missing_tokens: DEFAULT_MISSING_TOKENS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

/// Batching on the ingest path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Most records in one batch (one RocksDB write batch, one offset commit).
    pub batch_max_records: usize,
    /// Longest a record waits in an open batch before the batch is written, in milliseconds
    /// (Kafka, standard input, a FIFO; a regular file is cut by count only, so a replay is
    /// reproducible).
    pub batch_max_wait_ms: u64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            batch_max_records: 4096,
            batch_max_wait_ms: 100,
        }
    }
}

/// The RocksDB state directory.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Directory of the RocksDB database. Empty: a temporary directory removed at exit (the
    /// demo); set it for any state that must survive a restart.
    pub path: String,
    /// fsync the write-ahead log on every batch. Off, state survives a process crash (the WAL
    /// is in the page cache); on, it also survives power loss, at a lower batch rate.
    pub sync: bool,
}

/// The replay buffer: a reservoir sample of the labeled stream kept in RocksDB.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplayConfig {
    /// Most records kept.
    pub capacity: u32,
    /// Keep one reservoir per class with an equal share of the capacity (class-balanced), or
    /// one reservoir over the whole stream.
    pub class_balanced: bool,
    /// Seed of the sampling; the same stream and seed give the same buffer.
    pub seed: u64,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            class_balanced: false,
            seed: 42,
        }
    }
}

/// The HTTP listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to listen on (`127.0.0.1:8080`; port 0 picks a free port, logged at start).
    pub listen: String,
    /// File holding the bearer token of the admin endpoints (activate, retrain). Empty: the
    /// `RELEARN_ADMIN_TOKEN` environment variable; neither: admin endpoints are disabled.
    pub admin_token_file: String,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Most records in one predict request.
    pub max_batch_records: usize,
    /// Requests taking longer are answered 503 `timeout`, in milliseconds.
    pub request_timeout_ms: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            admin_token_file: String::new(),
            max_body_bytes: 1 << 20,
            max_batch_records: 1024,
            request_timeout_ms: 5000,
        }
    }
}

/// The model: input width and classes come from `[schema]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Hidden layer widths; layers are named `hidden.0`, `hidden.1`, ..., then `head`.
    pub hidden: Vec<usize>,
    /// Hidden activation: `relu`, `gelu` or `tanh`.
    pub activation: crate::learn::Activation,
    /// Dropout after each hidden activation, during training only, in [0, 1).
    pub dropout: f64,
    /// burn backend: `flex` (default build), `ndarray`, `tch` (libtorch) or `cuda`; each
    /// needs its cargo feature.
    pub backend: crate::learn::BackendKind,
    /// Seed of the initial weights.
    pub seed: u64,
    /// Labeled records in the recent window before the first model (version 1) is trained;
    /// at most `drift.window`. Unset: [`BOOTSTRAP_CLASSIFICATION`] for a classifier,
    /// [`BOOTSTRAP_REGRESSION`] for a regression head (see [`Config::bootstrap_labeled`]).
    pub bootstrap_labeled: Option<usize>,
    /// The loss of a regression head (`schema.task = "regression"`): `huber` or `squared`.
    pub loss: crate::learn::RegressionLoss,
    /// Output tracking (`learn::tracking`): per-record offsets of the served output that
    /// follow persistent errors between training steps; off serves the model's output as is.
    pub output_tracking: bool,
}

/// Labeled records before a classifier's first model when `model.bootstrap_labeled` is unset.
/// Chosen on the development streams (relearn eval, defaults): on 2026-12-02 24 against 32
/// gained on chess (+4.6 points), Luxembourg (+1.2) and keystroke (+0.7); with the linear
/// output corrections (2026-12-03), which learn from the features from the first scored
/// record, 10 against 24 gained on chess (+2.4), Luxembourg (+1.0) and keystroke (+0.5) and
/// held shuttle within 0.1 (Elec2 moved by 1 point, within its spread between bootstrap
/// sizes).
pub const BOOTSTRAP_CLASSIFICATION: usize = 10;
/// Labeled records before a regression head's first model when `model.bootstrap_labeled` is
/// unset: the target's scale is fitted on them. On 2026-12-02 24 or fewer raised the MAE on
/// three of the four numeric-target streams; with the linear corrections and the persistence
/// forecast in output tracking (2026-12-03), 16 against 32 lowered it on Trump approval
/// (-12%), bike sharing (-2%) and PM2.5 (-0.3%) and held metro traffic (+0.2%); 10 raised
/// bike sharing's and metro traffic's.
pub const BOOTSTRAP_REGRESSION: usize = 16;

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            hidden: vec![64, 64],
            activation: crate::learn::Activation::Relu,
            dropout: 0.0,
            backend: crate::learn::BackendKind::Flex,
            seed: 1,
            bootstrap_labeled: None,
            loss: crate::learn::RegressionLoss::Huber,
            output_tracking: true,
        }
    }
}

/// Online elastic weight consolidation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EwcConfig {
    /// Penalty strength lambda (0 disables EWC).
    pub lambda: f64,
    /// Decay of the old Fisher at each promotion, in [0, 1]: `F <- gamma F + F_new`.
    pub gamma: f64,
    /// Examples the Fisher is estimated on (one backward pass each).
    pub fisher_examples: usize,
}

impl Default for EwcConfig {
    fn default() -> Self {
        Self {
            lambda: 100.0,
            gamma: 0.9,
            fisher_examples: 500,
        }
    }
}

impl Config {
    /// The model architecture this config describes.
    pub fn model_spec(&self) -> crate::learn::ModelSpec {
        crate::learn::ModelSpec {
            input: self.input_width(),
            hidden: self.model.hidden.clone(),
            classes: self.label_width(),
            task: self.schema.task,
            loss: self.model.loss,
            activation: self.model.activation,
            dropout: self.model.dropout,
        }
    }

    /// Loads the file at `path` (or the defaults when `None`), applies environment overrides
    /// from `env` and validates the result.
    pub fn load<I>(path: Option<&Path>, env: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let text = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.to_path_buf(),
                source,
            })?,
            None => String::new(),
        };
        Config::from_toml_with_env(&text, env)
    }

    /// Parses TOML text, applies environment overrides and validates.
    pub fn from_toml_with_env<I>(text: &str, env: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Syntax(e.to_string()))?;
        for (var, value) in env {
            if let Some(path) = var.strip_prefix(ENV_PREFIX) {
                apply_override(&mut table, &var, path, &value)?;
            }
        }
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let key = e.path().to_string();
                ConfigError::key(key, e.into_inner().to_string())
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Parses TOML text with no environment overrides.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml_with_env(text, std::iter::empty())
    }

    /// Whether records come from Kafka (a broker is configured) or from the file source.
    /// The model's input names: features, then lagged features and labels.
    pub fn input_names(&self) -> Vec<String> {
        crate::ingest::lags::input_names(&self.schema)
    }

    /// What input drift is measured on, named: each numeric input (features, missing
    /// indicators, lagged copies, lagged labels) alone, each categorical field's one-hot
    /// block (and each lagged copy of it) as one group. One metric series per group.
    pub fn drift_groups(&self) -> Vec<(String, crate::drift::monitor::InputGroup)> {
        use crate::drift::monitor::InputGroup;
        let s = &self.schema;
        let copy_width = crate::ingest::decode::decoded_width(s);
        let buckets = s.categorical_buckets;
        let mut out = Vec::new();
        for k in 0..=s.lag_records {
            let base = k * copy_width;
            let suffix = if k == 0 {
                String::new()
            } else {
                format!("@-{k}")
            };
            for (j, f) in s.features.iter().enumerate() {
                out.push((format!("{f}{suffix}"), InputGroup::Numeric(base + j)));
            }
            for (j, c) in s.categorical.iter().enumerate() {
                let start = base + s.features.len() + j * buckets;
                out.push((
                    format!("{c}{suffix}"),
                    InputGroup::Categorical {
                        start,
                        len: buckets,
                    },
                ));
            }
            if s.missing == MissingPolicy::Indicate {
                let start = base + s.features.len() + s.categorical.len() * buckets;
                for (j, f) in s.features.iter().enumerate() {
                    out.push((
                        format!("{f}:missing{suffix}"),
                        InputGroup::Numeric(start + j),
                    ));
                }
            }
        }
        let names = self.input_names();
        let labels_start = copy_width * (1 + s.lag_records);
        for (j, name) in names.iter().enumerate().skip(labels_start) {
            out.push((name.clone(), InputGroup::Numeric(j)));
        }
        out
    }

    /// Labeled records before the first model: `model.bootstrap_labeled`, or by task when
    /// it is unset.
    pub fn bootstrap_labeled(&self) -> usize {
        self.model
            .bootstrap_labeled
            .unwrap_or(match self.schema.task {
                Task::Classification => BOOTSTRAP_CLASSIFICATION,
                Task::Regression => BOOTSTRAP_REGRESSION,
            })
    }

    /// The model's input width.
    pub fn input_width(&self) -> usize {
        crate::ingest::decode::decoded_width(&self.schema) * (1 + self.schema.lag_records)
            + self.label_width() * self.schema.lag_labels
    }

    /// Outputs of the model's head, and inputs of one lagged label: the number of classes, or
    /// 1 for regression.
    pub fn label_width(&self) -> usize {
        match self.schema.task {
            Task::Classification => self.schema.classes.len(),
            Task::Regression => 1,
        }
    }

    /// The number of classes (0 for regression).
    pub fn num_classes(&self) -> usize {
        match self.schema.task {
            Task::Classification => self.schema.classes.len(),
            Task::Regression => 0,
        }
    }

    /// Whether the learning loop can run: a label field, and class names for classification.
    pub fn learning_enabled(&self) -> bool {
        !self.schema.label.is_empty()
            && (self.schema.task == Task::Regression || self.schema.classes.len() >= 2)
    }

    pub fn uses_kafka(&self) -> bool {
        !self.kafka.brokers.trim().is_empty()
    }

    /// Refuses values that parse but cannot work, naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.schema;
        if s.features.is_empty() && s.categorical.is_empty() {
            return Err(ConfigError::key(
                "schema.features",
                "at least one feature (or schema.categorical field) is required",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for f in &s.features {
            if f.trim().is_empty() {
                return Err(ConfigError::key(
                    "schema.features",
                    "feature names must not be empty",
                ));
            }
            if !seen.insert(f.as_str()) {
                return Err(ConfigError::key(
                    "schema.features",
                    format!("feature `{f}` is listed twice"),
                ));
            }
        }
        for f in &s.categorical {
            if f.trim().is_empty() {
                return Err(ConfigError::key(
                    "schema.categorical",
                    "field names must not be empty",
                ));
            }
            if !seen.insert(f.as_str()) {
                return Err(ConfigError::key(
                    "schema.categorical",
                    format!(
                        "`{f}` is listed twice or is also in schema.features (a field is numeric or categorical, not both)"
                    ),
                ));
            }
        }
        if !s.categorical.is_empty() && !(1..=4096).contains(&s.categorical_buckets) {
            return Err(ConfigError::key(
                "schema.categorical_buckets",
                format!("must be in 1..=4096, got {}", s.categorical_buckets),
            ));
        }
        if s.missing_tokens.iter().any(|t| t.trim() != t) {
            return Err(ConfigError::key(
                "schema.missing_tokens",
                "tokens are compared after trimming: remove leading and trailing spaces",
            ));
        }
        if !s.label.is_empty() {
            if seen.contains(s.label.as_str()) {
                return Err(ConfigError::key(
                    "schema.label",
                    format!("`{}` is also a feature", s.label),
                ));
            }
            if s.task == Task::Classification && s.classes.len() < 2 {
                return Err(ConfigError::key(
                    "schema.classes",
                    "a labeled classification schema needs at least two classes (or set schema.task = \"regression\" for a numeric target)",
                ));
            }
        }
        let mut classes = std::collections::HashSet::new();
        for c in &s.classes {
            if !classes.insert(c.as_str()) {
                return Err(ConfigError::key(
                    "schema.classes",
                    format!("class `{c}` is listed twice"),
                ));
            }
        }
        if s.delimiter.len() != 1 || !s.delimiter.is_ascii() {
            return Err(ConfigError::key(
                "schema.delimiter",
                format!("must be one ASCII character, got {:?}", s.delimiter),
            ));
        }
        if s.format == Format::Csv && !s.columns.is_empty() {
            for f in s
                .features
                .iter()
                .chain(&s.categorical)
                .chain(std::iter::once(&s.label))
            {
                if !f.is_empty() && !s.columns.contains(f) {
                    return Err(ConfigError::key(
                        "schema.columns",
                        format!("field `{f}` is not among the columns"),
                    ));
                }
            }
        }
        if s.lag_records > 64 {
            return Err(ConfigError::key("schema.lag_records", "must be <= 64"));
        }
        if s.lag_labels > 64 {
            return Err(ConfigError::key("schema.lag_labels", "must be <= 64"));
        }
        if s.lag_labels > 0 && s.task == Task::Classification && s.classes.is_empty() {
            return Err(ConfigError::key(
                "schema.lag_labels",
                "needs schema.classes (past labels are one-hot encoded)",
            ));
        }
        if s.max_record_bytes == 0 {
            return Err(ConfigError::key("schema.max_record_bytes", "must be > 0"));
        }
        if let Some((key, reason)) = self.labels.problem(&s.key) {
            return Err(ConfigError::key(key, reason));
        }
        if self.labels.enabled && s.lag_labels > 0 {
            return Err(ConfigError::key(
                "schema.lag_labels",
                "past labels are not known when a record arrives with labels.enabled (delayed labels)",
            ));
        }
        if !self.labels.enabled && !self.kafka.label_topics.is_empty() {
            return Err(ConfigError::key(
                "kafka.label_topics",
                "label topics need labels.enabled = true",
            ));
        }
        if !(1..=3600).contains(&self.shutdown.grace_seconds) {
            return Err(ConfigError::key(
                "shutdown.grace_seconds",
                format!("must be in 1..=3600, got {}", self.shutdown.grace_seconds),
            ));
        }
        if self.ingest.batch_max_records == 0 {
            return Err(ConfigError::key("ingest.batch_max_records", "must be > 0"));
        }
        if self.ingest.batch_max_wait_ms == 0 {
            return Err(ConfigError::key("ingest.batch_max_wait_ms", "must be > 0"));
        }
        if self.replay.capacity == 0 {
            return Err(ConfigError::key("replay.capacity", "must be > 0"));
        }
        if self.replay.class_balanced {
            if s.task == Task::Regression {
                return Err(ConfigError::key(
                    "replay.class_balanced",
                    "a regression target has no classes to balance; set it to false",
                ));
            }
            if s.classes.is_empty() {
                return Err(ConfigError::key(
                    "replay.class_balanced",
                    "needs schema.classes to size one reservoir per class",
                ));
            }
            if (self.replay.capacity as usize) < s.classes.len() {
                return Err(ConfigError::key(
                    "replay.capacity",
                    format!(
                        "class-balanced mode needs at least one slot per class ({} classes)",
                        s.classes.len()
                    ),
                ));
            }
        }
        if self.http.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::key(
                "http.listen",
                format!(
                    "`{}` is not an address like 127.0.0.1:8080",
                    self.http.listen
                ),
            ));
        }
        if self.http.max_body_bytes == 0 {
            return Err(ConfigError::key("http.max_body_bytes", "must be > 0"));
        }
        if self.http.max_batch_records == 0 {
            return Err(ConfigError::key("http.max_batch_records", "must be > 0"));
        }
        if self.http.request_timeout_ms == 0 {
            return Err(ConfigError::key("http.request_timeout_ms", "must be > 0"));
        }
        if self.model.hidden.contains(&0) {
            return Err(ConfigError::key("model.hidden", "layer widths must be > 0"));
        }
        if !(0.0..1.0).contains(&self.model.dropout) {
            return Err(ConfigError::key("model.dropout", "must be in [0, 1)"));
        }
        let t = &self.train;
        if t.epochs == 0 {
            return Err(ConfigError::key("train.epochs", "must be > 0"));
        }
        if t.batch_size < 2 {
            return Err(ConfigError::key("train.batch_size", "must be >= 2"));
        }
        if !(t.learning_rate.is_finite() && t.learning_rate > 0.0) {
            return Err(ConfigError::key(
                "train.learning_rate",
                "must be a positive number",
            ));
        }
        if !(0.0..1.0).contains(&t.replay_ratio) {
            return Err(ConfigError::key("train.replay_ratio", "must be in [0, 1)"));
        }
        if !(self.ewc.lambda.is_finite() && self.ewc.lambda >= 0.0) {
            return Err(ConfigError::key("ewc.lambda", "must be a number >= 0"));
        }
        if !(0.0..=1.0).contains(&self.ewc.gamma) {
            return Err(ConfigError::key("ewc.gamma", "must be in [0, 1]"));
        }
        if self.ewc.fisher_examples == 0 {
            return Err(ConfigError::key("ewc.fisher_examples", "must be > 0"));
        }
        if let Err((key, reason)) = self.drift.check() {
            return Err(ConfigError::key(key, reason));
        }
        let bootstrap = self.bootstrap_labeled();
        if bootstrap < 10 || bootstrap > self.drift.window {
            return Err(ConfigError::key(
                "model.bootstrap_labeled",
                format!(
                    "must be in [10, drift.window = {}], got {bootstrap}",
                    self.drift.window
                ),
            ));
        }
        if let Err((key, reason)) = self.triggers.check() {
            return Err(ConfigError::key(key, reason));
        }
        if let Err((key, reason)) = self.retrain.check() {
            return Err(ConfigError::key(key, reason));
        }
        if let Err((key, reason)) = self.challenger.check() {
            return Err(ConfigError::key(key, reason));
        }
        if self.uses_kafka() {
            let k = &self.kafka;
            if k.topics.is_empty() || k.topics.iter().any(|t| t.trim().is_empty()) {
                return Err(ConfigError::key(
                    "kafka.topics",
                    "at least one non-empty topic is required",
                ));
            }
            if k.group_id.trim().is_empty() {
                return Err(ConfigError::key("kafka.group_id", "must not be empty"));
            }
            if k.dead_letter_topic.trim().is_empty() {
                return Err(ConfigError::key(
                    "kafka.dead_letter_topic",
                    "must not be empty: malformed records must go somewhere",
                ));
            }
            if k.topics.contains(&k.dead_letter_topic)
                || k.label_topics.contains(&k.dead_letter_topic)
            {
                return Err(ConfigError::key(
                    "kafka.dead_letter_topic",
                    "must differ from the consumed topics",
                ));
            }
            if k.topics.contains(&k.predictions_topic)
                || k.label_topics.contains(&k.predictions_topic)
            {
                return Err(ConfigError::key(
                    "kafka.predictions_topic",
                    "must differ from the consumed topics",
                ));
            }
            if let Some(t) = k
                .label_topics
                .iter()
                .find(|t| t.trim().is_empty() || k.topics.contains(t))
            {
                return Err(ConfigError::key(
                    "kafka.label_topics",
                    format!("`{t}` is empty or also in kafka.topics (a label on the record topics needs no label topic)"),
                ));
            }
            if k.dead_letter_max_bytes < MIN_DEAD_LETTER_BYTES {
                return Err(ConfigError::key(
                    "kafka.dead_letter_max_bytes",
                    format!(
                        "must be at least {} (room for the headers and a payload prefix), got {}",
                        MIN_DEAD_LETTER_BYTES, k.dead_letter_max_bytes
                    ),
                ));
            }
            if !matches!(k.auto_offset_reset.as_str(), "earliest" | "latest") {
                return Err(ConfigError::key(
                    "kafka.auto_offset_reset",
                    format!(
                        "must be `earliest` or `latest`, got `{}`",
                        k.auto_offset_reset
                    ),
                ));
            }
            for (section, map) in [
                ("properties", &k.properties),
                ("consumer_properties", &k.consumer_properties),
                ("producer_properties", &k.producer_properties),
            ] {
                for key in map.keys() {
                    if MANAGED_KAFKA_PROPERTIES.contains(&key.as_str()) {
                        return Err(ConfigError::key(
                            format!("kafka.{section}.\"{key}\""),
                            "is managed by relearn; use the dedicated key or leave it out",
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Sets `table[a][b]... = value` for an override `RELEARN__A__B=value`.
fn apply_override(
    table: &mut toml::Table,
    var: &str,
    path: &str,
    value: &str,
) -> Result<(), ConfigError> {
    let parts: Vec<String> = path.split("__").map(|p| p.to_ascii_lowercase()).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(ConfigError::Env {
            var: var.into(),
            reason: "empty key segment".into(),
        });
    }
    let parsed = parse_env_value(value);
    let (last, sections) = parts.split_last().expect("split yields at least one part");
    let mut node = table;
    for section in sections {
        let entry = node
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(ConfigError::Env {
                    var: var.into(),
                    reason: format!("`{section}` is not a section"),
                })
            }
        };
    }
    node.insert(last.clone(), parsed);
    Ok(())
}

/// Reads an environment value as a TOML value when it is one, else as a string.
fn parse_env_value(value: &str) -> toml::Value {
    let doc = format!("v = {value}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(value.into())),
        Err(_) => toml::Value::String(value.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::from_toml(text).unwrap_err().to_string()
    }

    #[test]
    fn empty_file_is_the_default() {
        assert_eq!(Config::from_toml("").unwrap(), Config::default());
    }

    #[test]
    fn bootstrap_defaults_by_task_unless_set() {
        let mut c = Config::default();
        assert_eq!(c.bootstrap_labeled(), BOOTSTRAP_CLASSIFICATION);
        c.schema.task = Task::Regression;
        assert_eq!(c.bootstrap_labeled(), BOOTSTRAP_REGRESSION);
        let c = Config::from_toml("[model]\nbootstrap_labeled = 100").unwrap();
        assert_eq!(c.bootstrap_labeled(), 100);
    }

    #[test]
    fn template_matches_defaults() {
        let text = include_str!("../config/relearn.toml");
        assert_eq!(Config::from_toml(text).unwrap(), Config::default());
    }

    #[test]
    fn elec2_profile_is_valid() {
        let c = Config::from_toml(include_str!("../config/elec2.toml")).unwrap();
        c.validate().unwrap();
        assert_eq!((c.schema.lag_records, c.schema.lag_labels), (1, 4));
        assert_eq!(c.input_width(), 7 * 2 + 2 * 4);
        assert_eq!(c.input_names().len(), c.input_width());
        assert_drift_groups_cover_each_input_once(&c);
    }

    fn assert_drift_groups_cover_each_input_once(c: &Config) {
        let mut covered = vec![0; c.input_width()];
        for (_, g) in c.drift_groups() {
            match g {
                crate::drift::monitor::InputGroup::Numeric(j) => covered[j] += 1,
                crate::drift::monitor::InputGroup::Categorical { start, len } => {
                    covered[start..start + len].iter_mut().for_each(|v| *v += 1)
                }
            }
        }
        assert!(covered.iter().all(|&n| n == 1), "{covered:?}");
    }

    #[test]
    fn categorical_and_indicator_inputs_are_laid_out_and_grouped() {
        let mut c = Config::default();
        c.schema.features = vec!["x".into(), "z".into()];
        c.schema.categorical = vec!["city".into()];
        c.schema.categorical_buckets = 4;
        c.schema.missing = MissingPolicy::Indicate;
        c.schema.lag_records = 1;
        c.schema.lag_labels = 1;
        c.validate().unwrap();
        // (2 numeric + 4 buckets + 2 indicators) x (1 + 1 lag) + 2 lagged classes.
        assert_eq!(c.input_width(), 8 * 2 + 2);
        assert_eq!(c.input_names().len(), c.input_width());
        assert_eq!(c.input_names()[2], "city#0");
        assert_eq!(c.input_names()[6], "x:missing");
        assert_eq!(c.input_names()[8], "x@-1");
        let names: Vec<String> = c.drift_groups().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "x",
                "z",
                "city",
                "x:missing",
                "z:missing",
                "x@-1",
                "z@-1",
                "city@-1",
                "x:missing@-1",
                "z:missing@-1",
                "label@-1=DOWN",
                "label@-1=UP"
            ]
        );
        assert_drift_groups_cover_each_input_once(&c);
    }

    #[test]
    fn unknown_key_is_named() {
        let e = err("[replay]\ncapacityy = 3\n");
        assert!(e.contains("replay"), "{e}");
        assert!(e.contains("capacityy"), "{e}");
    }

    #[test]
    fn unknown_section_is_named() {
        let e = err("[replays]\ncapacity = 3\n");
        assert!(e.contains("replays"), "{e}");
    }

    #[test]
    fn wrong_type_is_named() {
        let e = err("[replay]\ncapacity = \"lots\"\n");
        assert!(e.contains("replay.capacity"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let cases = [
            ("[replay]\ncapacity = 0", "replay.capacity"),
            ("[schema]\nfeatures = []", "schema.features"),
            ("[schema]\nfeatures = [\"a\", \"a\"]", "schema.features"),
            ("[schema]\nclasses = [\"x\"]", "schema.classes"),
            ("[schema]\ndelimiter = \";;\"", "schema.delimiter"),
            ("[schema]\nformat = \"xml\"", "schema.format"),
            ("[labels]\nenabled = true", "schema.key"),
            (
                "[schema]\nkey = \"id\"\n[labels]\nenabled = true\nmax_delay_records = 0",
                "labels.max_delay_records",
            ),
            (
                "[schema]\nkey = \"id\"\nlag_labels = 1\n[labels]\nenabled = true",
                "schema.lag_labels",
            ),
            ("[kafka]\nlabel_topics = [\"l\"]", "kafka.label_topics"),
            (
                "[schema]\nkey = \"id\"\n[labels]\nenabled = true\n[kafka]\nbrokers = \"b:1\"\nlabel_topics = [\"relearn.records\"]",
                "kafka.label_topics",
            ),
            (
                "[kafka]\nbrokers = \"b:1\"\npredictions_topic = \"relearn.records\"",
                "kafka.predictions_topic",
            ),
            ("[schema]\nlabel = \"day\"", "schema.label"),
            (
                "[schema]\ncolumns = [\"day\"]\nfeatures = [\"x\"]",
                "schema.columns",
            ),
            ("[http]\nlisten = \"nowhere\"", "http.listen"),
            ("[model]\nhidden = [8, 0]", "model.hidden"),
            ("[model]\ndropout = 1.0", "model.dropout"),
            ("[model]\nbootstrap_labeled = 5", "model.bootstrap_labeled"),
            ("[model]\nactivation = \"swish\"", "model.activation"),
            ("[model]\nbackend = \"tpu\"", "model.backend"),
            ("[train]\nlearning_rate = -1.0", "train.learning_rate"),
            ("[train]\nreplay_ratio = 1.5", "train.replay_ratio"),
            ("[train]\nepochs = 0", "train.epochs"),
            ("[ewc]\ngamma = 2.0", "ewc.gamma"),
            ("[ewc]\nlambda = -1.0", "ewc.lambda"),
            (
                "[triggers]\ndrift_detectors = [\"x\"]",
                "triggers.drift_detectors",
            ),
            (
                "[triggers]\naccuracy_below = 1.5",
                "triggers.accuracy_below",
            ),
            (
                "[ingest]\nbatch_max_records = 0",
                "ingest.batch_max_records",
            ),
            (
                "[kafka]\nbrokers = \"127.0.0.1:9092\"\ntopics = []",
                "kafka.topics",
            ),
            (
                "[kafka]\nbrokers = \"b:1\"\ndead_letter_topic = \"\"",
                "kafka.dead_letter_topic",
            ),
            (
                "[kafka]\nbrokers = \"b:1\"\nauto_offset_reset = \"middle\"",
                "kafka.auto_offset_reset",
            ),
            (
                "[kafka]\nbrokers = \"b:1\"\n[kafka.properties]\n\"enable.auto.commit\" = \"true\"",
                "kafka.properties",
            ),
            (
                "[kafka]\nbrokers = \"b:1\"\n[kafka.consumer_properties]\n\"group.id\" = \"x\"",
                "kafka.consumer_properties",
            ),
            (
                "[replay]\nclass_balanced = true\ncapacity = 1",
                "replay.capacity",
            ),
        ];
        for (text, key) in cases {
            let e = err(text);
            assert!(e.contains(key), "{text:?} gave {e:?}, expected key {key}");
        }
    }

    #[test]
    fn env_overrides_apply() {
        let env = vec![
            ("RELEARN__KAFKA__BROKERS".to_string(), "h:1".to_string()),
            ("RELEARN__REPLAY__CAPACITY".to_string(), "7".to_string()),
            (
                "RELEARN__KAFKA__TOPICS".to_string(),
                "[\"a\",\"b\"]".to_string(),
            ),
            ("OTHER".to_string(), "x".to_string()),
        ];
        let c = Config::from_toml_with_env("", env).unwrap();
        assert_eq!(c.kafka.brokers, "h:1");
        assert_eq!(c.replay.capacity, 7);
        assert_eq!(c.kafka.topics, vec!["a", "b"]);
        assert!(c.uses_kafka());
    }

    #[test]
    fn env_override_with_bad_value_names_the_key() {
        let env = vec![("RELEARN__REPLAY__SEED".to_string(), "abc".to_string())];
        let e = Config::from_toml_with_env("", env).unwrap_err().to_string();
        assert!(e.contains("replay.seed"), "{e}");
    }
}
