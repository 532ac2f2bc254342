//! The losses a model learns by: the training loss of its task (cross-entropy, Huber or
//! squared error on the standardised target), the likelihood whose gradients make EWC's
//! Fisher, and the check that targets fit the model. Training (`train`, `online`) and EWC
//! (`ewc`) both use them.

use burn::tensor::{activation, Tensor, TensorData};

use super::model::HUBER_DELTA;
use super::{LearnError, Model, Targets, Task};

/// Negative log-likelihood: `[batch, classes]` logits and one-hot targets -> mean, `[1]`.
pub(crate) fn nll(logits: Tensor<2>, onehot: Tensor<2>) -> Tensor<1> {
    (activation::log_softmax(logits, 1) * onehot)
        .sum_dim(1)
        .mean()
        .neg()
}

/// One-hot rows for labels: `[n, classes]`.
pub(crate) fn onehot(labels: &[u32], classes: usize, device: &burn::tensor::Device) -> Tensor<2> {
    let mut v = vec![0f32; labels.len() * classes];
    for (i, &y) in labels.iter().enumerate() {
        v[i * classes + y as usize] = 1.0;
    }
    Tensor::from_data(TensorData::new(v, [labels.len(), classes]), device)
}

/// The standardised regression targets as a `[n, 1]` column.
fn target_column(model: &Model, v: &[f32], device: &burn::tensor::Device) -> Tensor<2> {
    let t: Vec<f32> = v.iter().map(|&y| model.target.apply(y)).collect();
    Tensor::from_data(TensorData::new(t, [v.len(), 1]), device)
}

/// The training loss of head outputs `out` (`[batch, classes]`) against `y`, `[1]`:
/// cross-entropy for classes; for values, the model's `RegressionLoss` on the standardised
/// target (Huber with [`HUBER_DELTA`], or half the squared error).
pub(crate) fn task_loss(
    model: &Model,
    out: Tensor<2>,
    y: &Targets,
    device: &burn::tensor::Device,
) -> Tensor<1> {
    match y {
        Targets::Classes(c) => nll(out, onehot(c, model.spec.classes, device)),
        Targets::Values(_) if model.spec.loss == crate::learn::RegressionLoss::Squared => {
            likelihood_loss(model, out, y, device)
        }
        Targets::Values(v) => {
            let a = (out - target_column(model, v, device)).abs();
            let q = a.clone().clamp_max(HUBER_DELTA);
            let linear = (a - q.clone()).mul_scalar(HUBER_DELTA);
            (q.clone() * q).mul_scalar(0.5).add(linear).mean()
        }
    }
}

/// The negative log-likelihood whose gradients make the Fisher information: cross-entropy for
/// classes, the Gaussian `0.5 * r^2` on the standardised target for values, `[1]`.
pub(crate) fn likelihood_loss(
    model: &Model,
    out: Tensor<2>,
    y: &Targets,
    device: &burn::tensor::Device,
) -> Tensor<1> {
    match y {
        Targets::Values(v) => {
            let r = out - target_column(model, v, device);
            (r.clone() * r).mul_scalar(0.5).mean()
        }
        classes => task_loss(model, out, classes, device),
    }
}

/// Refuses targets that do not fit the model: the wrong kind, a class out of range, a
/// non-finite value.
pub(crate) fn check_targets(model: &Model, y: &Targets) -> Result<(), LearnError> {
    match (model.spec.task, y) {
        (Task::Classification, Targets::Classes(c)) => {
            if let Some(&label) = c.iter().find(|&&y| y as usize >= model.spec.classes) {
                return Err(LearnError::Label {
                    label,
                    classes: model.spec.classes,
                });
            }
            Ok(())
        }
        (Task::Regression, Targets::Values(v)) => {
            if v.iter().any(|t| !t.is_finite()) {
                return Err(LearnError::Target);
            }
            Ok(())
        }
        (task, _) => Err(LearnError::Task(task)),
    }
}
