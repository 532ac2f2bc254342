//! The configuration tree: every section, environment overrides and validation. Each stage
//! owns its section (the struct, its defaults and documentation, and `check` for the rules
//! within it: `ingest::kafka::KafkaConfig`, `serve::HttpConfig`, ...); this module aggregates
//! them into [`Config`] (re-exported here by name), layers the environment over the file, and
//! checks the rules that span sections.
//!
//! Configuration is TOML. Every struct refuses unknown keys, every field has a default (so an
//! empty file is a valid configuration that runs the embedded demo) and `validate` refuses bad
//! values with the key's dotted path and the reason. Environment variables of the form
//! `RELEARN__SECTION__KEY=value` override the file; the value is read as a TOML value when it
//! parses as one (`42`, `true`, `["a","b"]`) and as a string otherwise.

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use crate::ingest::decode::{Format, MissingPolicy, SchemaConfig, DEFAULT_MISSING_TOKENS};
pub use crate::ingest::file::FileSourceConfig;
pub use crate::ingest::kafka::{KafkaConfig, MANAGED_KAFKA_PROPERTIES, MIN_DEAD_LETTER_BYTES};
pub use crate::ingest::lags::LAG_LABELS_REGRESSION;
pub use crate::ingest::IngestConfig;
pub use crate::learn::ewc::EwcConfig;
pub use crate::learn::model::{ModelConfig, BOOTSTRAP_CLASSIFICATION, BOOTSTRAP_REGRESSION};
pub use crate::learn::Task;
pub use crate::serve::HttpConfig;
pub use crate::store::replay::ReplayConfig;
pub use crate::store::versions::ModelsConfig;
pub use crate::store::StoreConfig;

/// Prefix of environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "RELEARN__";

pub use crate::error::ConfigError;

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
    /// The process's memory: the allocator's free heap returned to the system.
    pub memory: MemoryConfig,
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
    pub challenger: crate::challenger::ChallengerConfig,
    /// The nearest-neighbour member of the served output.
    pub neighbours: crate::learn::neighbours::NeighboursConfig,
    /// The labels' recent distribution, the last member of the served output.
    pub prior: crate::learn::prior::PriorConfig,
    /// Retention of model versions.
    pub models: ModelsConfig,
    /// The shutdown budget.
    pub shutdown: ShutdownConfig,
    /// Labels that arrive after their features, joined by key.
    pub labels: crate::ingest::join::LabelsConfig,
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
        let mut table: toml::Table = text.parse().map_err(ConfigError::Syntax)?;
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
        crate::ingest::lags::input_names(&self.schema, self.lag_labels())
    }

    /// Past labels appended to each record's input: `schema.lag_labels`, or when it is unset
    /// [`LAG_LABELS_REGRESSION`] for a numeric target whose labels come with their records,
    /// and none for a classifier (whose output tracking follows runs of one class already)
    /// or with delayed labels (a past label is not known when a record arrives).
    pub fn lag_labels(&self) -> usize {
        self.schema.lag_labels.unwrap_or(match self.schema.task {
            Task::Regression if !self.labels.enabled => LAG_LABELS_REGRESSION,
            _ => 0,
        })
    }

    /// What the ingest pipeline reads: the schema, the replay buffer, the label join.
    pub fn pipeline(&self) -> crate::ingest::pipeline::PipelineConfig {
        crate::ingest::pipeline::PipelineConfig {
            schema: self.schema.clone(),
            replay: self.replay.clone(),
            labels: self.labels.enabled.then(|| self.labels.clone()),
            label_topics: if self.labels.enabled {
                self.kafka.label_topics.clone()
            } else {
                Vec::new()
            },
            lag_labels: self.lag_labels(),
        }
    }

    /// What the learning loop reads: its sections and what the schema decides for it.
    pub fn learner(&self) -> crate::learner::config::LearnerConfig {
        crate::learner::config::LearnerConfig {
            spec: self.model_spec(),
            classes: self.schema.classes.clone(),
            categorical: self.schema.categorical.clone(),
            drift_groups: self.drift_groups(),
            bootstrap_labeled: self.bootstrap_labeled(),
            model: self.model.clone(),
            train: self.train.clone(),
            ewc: self.ewc.clone(),
            drift: self.drift.clone(),
            triggers: self.triggers.clone(),
            retrain: self.retrain.clone(),
            challenger: self.challenger.clone(),
            neighbours: self.neighbours.clone(),
            prior: self.prior.clone(),
            models: self.models.clone(),
            ingest_nice: self.ingest.nice,
            grace: self.shutdown.grace,
        }
    }

    /// What the HTTP API reads: `[http]`, the schema, the model a served version must match.
    pub fn api(&self) -> crate::serve::api::ApiConfig {
        crate::serve::api::ApiConfig {
            http: self.http.clone(),
            schema: self.schema.clone(),
            model: self.model_spec(),
            backend: self.model.backend,
        }
    }

    /// What the Kafka source reads: `[kafka]`, the batch bounds, whether labels are consumed.
    pub fn kafka_source(&self) -> crate::ingest::kafka::KafkaSourceConfig {
        crate::ingest::kafka::KafkaSourceConfig {
            kafka: self.kafka.clone(),
            ingest: self.ingest.clone(),
            consume_label_topics: self.labels.enabled,
        }
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
            + self.label_width() * self.lag_labels()
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
        self.schema.label.is_some()
            && (self.schema.task == Task::Regression || self.schema.classes.len() >= 2)
    }

    pub fn uses_kafka(&self) -> bool {
        self.kafka
            .brokers
            .as_deref()
            .is_some_and(|b| !b.trim().is_empty())
    }

    /// Refuses values that parse but cannot work, naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.schema.check()?;
        let s = &self.schema;
        if let Some((key, reason)) = self.labels.problem(s.key.as_deref()) {
            return Err(ConfigError::key(key, reason));
        }
        if self.labels.enabled && s.lag_labels.is_some_and(|n| n > 0) {
            return Err(ConfigError::key(
                "schema.lag_labels",
                "past labels are not known when a record arrives with labels.enabled (delayed labels)",
            ));
        }
        if s.features.is_empty()
            && s.categorical.is_empty()
            && s.time.is_empty()
            && self.lag_labels() == 0
        {
            return Err(ConfigError::key(
                "schema.features",
                "no input: a target alone needs its past values as inputs, which delayed labels (labels.enabled) do not give",
            ));
        }
        if !self.labels.enabled && !self.kafka.label_topics.is_empty() {
            return Err(ConfigError::key(
                "kafka.label_topics",
                "label topics need labels.enabled = true",
            ));
        }
        self.shutdown.check()?;
        self.store.check()?;
        self.ingest.check()?;
        self.replay.check()?;
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
        self.http.check()?;
        self.model.check()?;
        self.train.check()?;
        self.ewc.check()?;
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
        if let Err((key, reason)) = self.neighbours.check() {
            return Err(ConfigError::key(key, reason));
        }
        if let Err((key, reason)) = self.prior.check() {
            return Err(ConfigError::key(key, reason));
        }
        if self.uses_kafka() {
            self.kafka.check()?;
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

/// `[shutdown]`: how long SIGTERM or SIGINT may take.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// Seconds from SIGTERM to exit. A running retrain is cancelled between training steps
    /// and the open batch is written; a daemon still running at the deadline exits with
    /// status 1 (the store stays consistent: every batch is one atomic write). Keep it under
    /// the supervisor's kill delay (Kubernetes' terminationGracePeriodSeconds, systemd's
    /// TimeoutStopSec).
    #[serde(rename = "grace_seconds", with = "crate::units::seconds")]
    pub grace: std::time::Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            grace: std::time::Duration::from_secs(20),
        }
    }
}

/// The process's memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryConfig {
    /// Whole seconds between two returns of the allocator's free heap to the system
    /// (jemalloc's purge of every arena, or glibc's `malloc_trim` in a build without the
    /// `jemalloc` feature; `app::heap`); 0 turns it off. With glibc the resident set grows
    /// over hours of traffic without it, by what glibc keeps of freed memtables and tensors.
    #[serde(rename = "trim_seconds", with = "crate::units::opt_seconds")]
    pub trim: Option<std::time::Duration>,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            trim: Some(std::time::Duration::from_secs(30)),
        }
    }
}

impl ShutdownConfig {
    /// Refuses values of this section that cannot work, naming the key.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !(1..=3600).contains(&self.grace.as_secs()) {
            return Err(ConfigError::key(
                "shutdown.grace_seconds",
                format!("must be in 1..=3600, got {}", self.grace.as_secs()),
            ));
        }
        Ok(())
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
    fn past_targets_are_inputs_of_a_regression_unless_set_or_delayed() {
        let mut c = Config::default();
        assert_eq!(c.lag_labels(), 0, "a classifier gets none");
        c.schema.task = Task::Regression;
        c.schema.features = vec!["x".into()];
        assert_eq!(c.lag_labels(), 8);
        let names = c.input_names();
        assert_eq!(names.len(), 9);
        assert_eq!(names[..3], ["x", "label@-1", "label@-2"]);
        assert_eq!(names[8], "label@-8");
        assert_eq!(c.input_width(), 9);
        c.labels.enabled = true;
        assert_eq!(c.lag_labels(), 0, "delayed labels are not known yet");
        c.labels.enabled = false;
        c.schema.lag_labels = Some(0);
        assert_eq!(c.lag_labels(), 0);
        c.schema.lag_labels = Some(5);
        assert_eq!(c.lag_labels(), 5);
    }

    #[test]
    fn a_target_alone_is_a_series_of_its_past_values() {
        let mut c = Config::default();
        c.schema.features.clear();
        c.schema.classes.clear();
        c.schema.columns = vec!["y".into()];
        c.schema.label = Some("y".into());
        c.schema.task = Task::Regression;
        c.validate().expect("past targets are the inputs");
        assert_eq!(c.input_width(), 8);
        let refused = |c: &Config| c.validate().expect_err("no input").to_string();
        c.labels.enabled = true;
        c.schema.key = Some("id".into());
        c.schema.columns.push("id".into());
        let e = refused(&c);
        assert!(
            e.contains("schema.features") && e.contains("labels.enabled"),
            "{e}"
        );
        c.labels.enabled = false;
        c.schema.lag_labels = Some(0);
        let e = refused(&c);
        assert!(e.contains("schema.features"), "{e}");
        c.schema.lag_labels = None;
        c.schema.task = Task::Classification;
        c.schema.classes = vec!["a".into(), "b".into()];
        let e = refused(&c);
        assert!(e.contains("schema.features"), "{e}");
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
        assert_eq!((c.schema.lag_records, c.schema.lag_labels), (1, Some(4)));
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
        c.schema.lag_labels = Some(1);
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
            ("[memory]\ntrim_seconds = -1", "memory.trim_seconds"),
            ("[prior]\nblend = -1.0", "prior.blend"),
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
            (
                "[challenger]\nrecent_replay_ratio = 1.0",
                "challenger.recent_replay_ratio",
            ),
            ("[train]\nepochs = 0", "train.epochs"),
            ("[ewc]\ngamma = 2.0", "ewc.gamma"),
            ("[retrain]\nnice = 20", "retrain.nice"),
            ("[retrain]\nnice = -1", "retrain.nice"),
            ("[ingest]\nnice = 20", "ingest.nice"),
            ("[ingest]\nnice = -3", "ingest.nice"),
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
        assert_eq!(c.kafka.brokers.as_deref(), Some("h:1"));
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
