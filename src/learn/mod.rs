//! The learning core: a burn MLP with named layers, partial training of chosen layers, online
//! EWC, layer diagnostics and checkpoints. It knows nothing of Kafka, HTTP or RocksDB.
//!
//! Tensor shapes are written in comments as `[batch, width]`. Layers are named `hidden.0`,
//! `hidden.1`, ..., `head` everywhere (config, metrics, logs, checkpoints); parameters are
//! `<layer>.weight` (`[in, out]`, burn's layout) and `<layer>.bias` (`[out]`).

pub mod checkpoint;
pub mod data;
pub mod diagnostics;
pub mod ewc;
pub mod loss;
pub mod model;
pub mod neighbours;
pub mod online;
pub mod prior;
pub mod tracking;
pub mod train;

pub use checkpoint::Checkpoint;
pub use data::{Dataset, Targets};
pub use ewc::Ewc;
pub use model::{
    Activation, BackendKind, LayerSet, Model, ModelSpec, Normalizer, ParamMap, RegressionLoss,
    TargetScale, Task,
};
pub use train::{TrainConfig, TrainReport};

/// A learning operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    #[error("backend `{0}` is not compiled in; rebuild with `--features {0}`")]
    BackendMissing(&'static str),
    #[error("unknown layer `{name}`; layers are {known:?}")]
    UnknownLayer { name: String, known: Vec<String> },
    #[error("no layer selected for training")]
    NoLayers,
    #[error("data has width {got}, the model expects {expected}")]
    Width { got: usize, expected: usize },
    #[error("label {label} is out of range for {classes} classes")]
    Label { label: u32, classes: usize },
    #[error("a regression target is not a finite number")]
    Target,
    #[error("empty dataset")]
    Empty,
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    #[error("checkpoint: cannot encode or decode it")]
    CheckpointCodec(#[source] crate::error::BoxError),
    #[error("weights file: {0}")]
    Weights(String),
    #[error("weights file: not a safetensors file")]
    WeightsFile(#[source] crate::error::BoxError),
    #[error("training diverged: loss is {0} in epoch {1}")]
    Diverged(f64, usize),
    #[error("tensor read failed")]
    Read(#[source] burn::tensor::DataError),
    #[error("this needs {} data and a {} model", .0.as_str(), .0.as_str())]
    Task(model::Task),
    #[error("training cancelled at shutdown")]
    Cancelled,
}
const _: fn() = || {
    fn assert<T: Send + Sync>() {}
    assert::<Model>();
    assert::<Ewc>();
};
