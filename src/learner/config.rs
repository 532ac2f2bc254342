//! What the learning loop reads of the configuration: the sections it runs on, and what the
//! schema decides for it (the model's shape, the drift groups, the categorical fields).
//! `Config::learner` builds it, so the loop depends on no other stage's configuration.

use std::time::Duration;

use crate::challenger::ChallengerConfig;
use crate::drift::monitor::{DriftConfig, InputGroup};
use crate::drift::trigger::TriggerConfig;
use crate::learn::ewc::EwcConfig;
use crate::learn::model::ModelConfig;
use crate::learn::{ModelSpec, Task, TrainConfig};
use crate::retrain::RetrainConfig;
use crate::store::versions::ModelsConfig;

/// The learning loop's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct LearnerConfig {
    /// The model the schema describes (inputs, outputs, task, hidden layers).
    pub spec: ModelSpec,
    /// The class names (`schema.classes`; empty for a numeric target).
    pub classes: Vec<String>,
    /// The categorical fields' names (`schema.categorical`).
    pub categorical: Vec<String>,
    /// What input drift is measured on, named (`Config::drift_groups`).
    pub drift_groups: Vec<(String, InputGroup)>,
    /// Labeled records before the first model (`Config::bootstrap_labeled`).
    pub bootstrap_labeled: usize,
    /// `[model]`.
    pub model: ModelConfig,
    /// `[train]`.
    pub train: TrainConfig,
    /// `[ewc]`.
    pub ewc: EwcConfig,
    /// `[drift]`.
    pub drift: DriftConfig,
    /// `[triggers]`.
    pub triggers: TriggerConfig,
    /// `[retrain]`.
    pub retrain: RetrainConfig,
    /// `[challenger]`.
    pub challenger: ChallengerConfig,
    /// `[neighbours]`.
    pub neighbours: crate::learn::neighbours::NeighboursConfig,
    /// `[prior]`.
    pub prior: crate::learn::prior::PriorConfig,
    /// `[models]`.
    pub models: ModelsConfig,
    /// `ingest.nice`: the retrain thread runs `retrain.nice` below it.
    pub ingest_nice: i32,
    /// `shutdown.grace_seconds`: how long a retrain may take to stop.
    pub grace: Duration,
}

impl LearnerConfig {
    /// Classification or regression.
    pub fn task(&self) -> Task {
        self.spec.task
    }

    /// The model's input width.
    pub fn input_width(&self) -> usize {
        self.spec.input
    }
}
