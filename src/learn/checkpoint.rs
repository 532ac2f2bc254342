//! Checkpoints: architecture, standardisation, weights, EWC state and metadata in one
//! safetensors buffer (fits a RocksDB value), and weight export/import as `.safetensors`.
//!
//! Checkpoint tensors are named `weights/<param>`, `fisher/<param>`, `theta_star/<param>`,
//! `norm/mean`, `norm/std`, `target/scale` (regression), in burn's layout (`[in, out]` weights), little-endian f32, so a
//! round trip is bit-identical. Exported weight files use PyTorch's `nn.Linear` layout
//! (`<layer>.weight` is `[out, in]`, `<layer>.bias` is `[out]`), so a model trained elsewhere
//! can be imported by naming its layers `hidden.0`, ..., `head`.

use std::collections::{BTreeMap, HashMap};

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use super::{BackendKind, Ewc, LearnError, Model, ModelSpec, Normalizer, ParamMap, TargetScale};

const FORMAT: &str = "relearn.checkpoint.v1";

/// Everything needed to rebuild a model version.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub spec: ModelSpec,
    pub norm: Normalizer,
    /// The regression target's standardisation (`target/scale`, `[mean, std]`; identity for a
    /// classifier and for checkpoints from before regression).
    pub target: TargetScale,
    pub weights: ParamMap,
    /// Online EWC state (Fisher, anchors, lambda, gamma), if any.
    pub ewc: Option<Ewc>,
    /// Free-form metadata (version, trigger, reports as JSON...).
    pub metadata: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
struct EwcHeader {
    lambda: f64,
    gamma: f64,
}

fn err(e: impl std::fmt::Display) -> LearnError {
    LearnError::Checkpoint(e.to_string())
}

/// The codec (safetensors, JSON) refused a checkpoint's bytes or metadata.
fn codec(e: impl Into<crate::error::BoxError>) -> LearnError {
    LearnError::CheckpointCodec(e.into())
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f32_values(view: &TensorView<'_>, name: &str) -> Result<Vec<f32>, LearnError> {
    if view.dtype() != Dtype::F32 {
        return Err(LearnError::Weights(format!(
            "tensor `{name}` is {:?}, expected F32",
            view.dtype()
        )));
    }
    Ok(view
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// The transpose of a row-major `[rows, cols]` matrix.
fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = values[r * cols + c];
        }
    }
    t
}

fn serialize(
    tensors: Vec<(String, Vec<usize>, Vec<u8>)>,
    meta: HashMap<String, String>,
) -> Result<Vec<u8>, LearnError> {
    let views = tensors
        .iter()
        .map(|(n, s, b)| TensorView::new(Dtype::F32, s.clone(), b).map(|v| (n.clone(), v)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(codec)?;
    safetensors::serialize(views, Some(meta)).map_err(codec)
}

impl Checkpoint {
    /// A checkpoint of `model` (and its EWC state).
    pub fn of(
        model: &Model,
        ewc: Option<&Ewc>,
        metadata: BTreeMap<String, String>,
    ) -> Result<Checkpoint, LearnError> {
        Ok(Checkpoint {
            spec: model.spec.clone(),
            norm: model.norm.clone(),
            target: model.target,
            weights: model.params()?,
            ewc: ewc.cloned(),
            metadata,
        })
    }

    /// Serialises to one safetensors buffer.
    pub fn to_bytes(&self) -> Result<Vec<u8>, LearnError> {
        let mut tensors = Vec::new();
        let mut add = |prefix: &str, map: &ParamMap| {
            for (name, (shape, values)) in map {
                tensors.push((format!("{prefix}/{name}"), shape.clone(), f32_bytes(values)));
            }
        };
        add("weights", &self.weights);
        if let Some(e) = &self.ewc {
            add("fisher", &e.fisher);
            add("theta_star", &e.theta_star);
        }
        let w = self.norm.mean.len();
        tensors.push(("norm/mean".into(), vec![w], f32_bytes(&self.norm.mean)));
        tensors.push(("norm/std".into(), vec![w], f32_bytes(&self.norm.std)));
        if self.target != TargetScale::default() {
            let t = [
                self.target.mean,
                self.target.std,
                self.target.lo,
                self.target.hi,
            ];
            tensors.push(("target/scale".into(), vec![4], f32_bytes(&t)));
        }
        let mut meta = HashMap::new();
        meta.insert("format".into(), FORMAT.into());
        meta.insert(
            "spec".into(),
            serde_json::to_string(&self.spec).map_err(codec)?,
        );
        meta.insert(
            "metadata".into(),
            serde_json::to_string(&self.metadata).map_err(codec)?,
        );
        if let Some(e) = &self.ewc {
            let h = EwcHeader {
                lambda: e.lambda,
                gamma: e.gamma,
            };
            meta.insert("ewc".into(), serde_json::to_string(&h).map_err(codec)?);
        }
        serialize(tensors, meta)
    }

    /// Reads what `to_bytes` wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<Checkpoint, LearnError> {
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(codec)?;
        let meta = header
            .metadata()
            .clone()
            .ok_or_else(|| err("no metadata: not a relearn checkpoint"))?;
        if meta.get("format").map(String::as_str) != Some(FORMAT) {
            return Err(err(format!(
                "format {:?} is not {FORMAT}",
                meta.get("format")
            )));
        }
        let spec: ModelSpec =
            serde_json::from_str(meta.get("spec").ok_or_else(|| err("no spec"))?).map_err(codec)?;
        let metadata: BTreeMap<String, String> = match meta.get("metadata") {
            Some(m) => serde_json::from_str(m).map_err(codec)?,
            None => BTreeMap::new(),
        };
        let st = SafeTensors::deserialize(bytes).map_err(codec)?;
        let (mut weights, mut fisher, mut star) =
            (ParamMap::new(), ParamMap::new(), ParamMap::new());
        let (mut mean, mut std) = (None, None);
        let mut target = TargetScale::default();
        for (name, view) in st.tensors() {
            let values = f32_values(&view, &name)?;
            let shape = view.shape().to_vec();
            match name.split_once('/') {
                Some(("weights", p)) => {
                    weights.insert(p.to_string(), (shape, values));
                }
                Some(("fisher", p)) => {
                    fisher.insert(p.to_string(), (shape, values));
                }
                Some(("theta_star", p)) => {
                    star.insert(p.to_string(), (shape, values));
                }
                Some(("norm", "mean")) => mean = Some(values),
                Some(("norm", "std")) => std = Some(values),
                Some(("target", "scale")) if values.len() == 4 => {
                    target = TargetScale {
                        mean: values[0],
                        std: values[1],
                        lo: values[2],
                        hi: values[3],
                    }
                }
                _ => return Err(err(format!("unexpected tensor `{name}`"))),
            }
        }
        let ewc = match meta.get("ewc") {
            Some(h) => {
                let h: EwcHeader = serde_json::from_str(h).map_err(codec)?;
                Some(Ewc {
                    lambda: h.lambda,
                    gamma: h.gamma,
                    fisher,
                    theta_star: star,
                })
            }
            None => None,
        };
        Ok(Checkpoint {
            spec,
            norm: Normalizer {
                mean: mean.ok_or_else(|| err("no norm/mean"))?,
                std: std.ok_or_else(|| err("no norm/std"))?,
            },
            target,
            weights,
            ewc,
            metadata,
        })
    }

    /// Rebuilds the model on `backend`.
    pub fn to_model(&self, backend: BackendKind) -> Result<Model, LearnError> {
        let mut model = Model::new(self.spec.clone(), self.norm.clone(), backend, 0)?;
        model.target = self.target;
        model.set_params(&self.weights)?;
        Ok(model)
    }
}

/// The model's weights as a `.safetensors` file in PyTorch's layout (`weight` is `[out, in]`).
pub fn export_safetensors(model: &Model) -> Result<Vec<u8>, LearnError> {
    let mut tensors = Vec::new();
    for (name, (shape, values)) in model.params()? {
        if shape.len() == 2 {
            let (i, o) = (shape[0], shape[1]);
            tensors.push((name, vec![o, i], f32_bytes(&transpose(&values, i, o))));
        } else {
            tensors.push((name, shape, f32_bytes(&values)));
        }
    }
    let mut meta = HashMap::new();
    meta.insert(
        "relearn.spec".into(),
        serde_json::to_string(&model.spec).map_err(codec)?,
    );
    meta.insert(
        "relearn.layout".into(),
        "torch.nn.Linear: weight [out, in]".into(),
    );
    serialize(tensors, meta)
}

/// Loads weights from a `.safetensors` file in PyTorch's layout into `model`. Every parameter
/// must be present with its exact shape; anything else is refused with the tensor's name.
pub fn import_safetensors(model: &mut Model, bytes: &[u8]) -> Result<(), LearnError> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| LearnError::WeightsFile(e.into()))?;
    let file: BTreeMap<String, TensorView<'_>> = st.tensors().into_iter().collect();
    let expected = model.expected_shapes();
    let mut map = ParamMap::new();
    // Check in layer order, so the first problem reported is the first layer's.
    for layer in model.layer_names() {
        for part in ["weight", "bias"] {
            let name = format!("{layer}.{part}");
            let want = &expected[&name];
            let torch_shape: Vec<usize> = want.iter().rev().copied().collect();
            let view = file.get(&name).ok_or_else(|| {
                LearnError::Weights(format!(
                    "tensor `{name}` is missing (expected shape {torch_shape:?})"
                ))
            })?;
            let shape = view.shape().to_vec();
            if shape != torch_shape {
                return Err(LearnError::Weights(format!(
                    "tensor `{name}` has shape {shape:?}, expected {torch_shape:?}{}",
                    if want.len() == 2 { " ([out, in])" } else { "" }
                )));
            }
            let values = f32_values(view, &name)?;
            if want.len() == 2 {
                let (i, o) = (want[0], want[1]);
                map.insert(name, (vec![i, o], transpose(&values, o, i)));
            } else {
                map.insert(name, (shape, values));
            }
        }
    }
    if let Some(extra) = file.keys().find(|k| !expected.contains_key(*k)) {
        return Err(LearnError::Weights(format!(
            "tensor `{extra}` is not a parameter of this model (layers {:?})",
            model.layer_names()
        )));
    }
    model.set_params(&map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::{Activation, Dataset};

    fn model(hidden: Vec<usize>, seed: u64) -> Model {
        let spec = ModelSpec {
            input: 4,
            hidden,
            classes: 3,
            task: Default::default(),
            loss: Default::default(),
            activation: Activation::Gelu,
            dropout: 0.0,
        };
        let norm = Normalizer {
            mean: vec![0.5, -1.0, 0.0, 3.25],
            std: vec![1.0, 2.0, 0.1, 7.0],
        };
        Model::new(spec, norm, BackendKind::from_env(), seed).unwrap()
    }

    fn bits(m: &ParamMap) -> Vec<(String, Vec<u32>)> {
        m.iter()
            .map(|(k, (_, v))| (k.clone(), v.iter().map(|x| x.to_bits()).collect()))
            .collect()
    }

    #[test]
    fn a_regression_model_keeps_its_task_and_target_scale() {
        let mut m = model(vec![5], 2);
        m.spec.classes = 1;
        m.spec.task = crate::learn::Task::Regression;
        let mut m = Model::new(m.spec.clone(), m.norm.clone(), BackendKind::from_env(), 2).unwrap();
        m.target = TargetScale {
            mean: 189.5,
            std: 181.25,
            lo: 1.0,
            hi: 977.0,
        };
        let data = Dataset::with_targets(
            (0..40).map(|i| i as f32 / 7.0).collect(),
            crate::learn::Targets::Values((0..10).map(|i| i as f32 * 10.0).collect()),
            4,
        )
        .unwrap();
        let mut ewc = Ewc::new(1.0, 0.9);
        ewc.consolidate(&m, &data, 10).unwrap();
        let c = Checkpoint::of(&m, Some(&ewc), BTreeMap::new()).unwrap();
        let back = Checkpoint::from_bytes(&c.to_bytes().unwrap()).unwrap();
        assert_eq!(back, c);
        let rebuilt = back.to_model(BackendKind::from_env()).unwrap();
        assert_eq!(rebuilt.spec.task, crate::learn::Task::Regression);
        assert_eq!(rebuilt.target, m.target);
        let x = &data.x[..8];
        assert_eq!(
            rebuilt.predict_values(x).unwrap(),
            m.predict_values(x).unwrap()
        );
        assert!(
            rebuilt.predict_proba(x).is_err(),
            "a regression model has no classes"
        );
    }

    #[test]
    fn a_checkpoint_from_before_regression_is_a_classifier() {
        let m = model(vec![3], 4);
        let mut c = Checkpoint::of(&m, None, BTreeMap::new()).unwrap();
        // What an older binary wrote: no `task` in the spec, no target tensor.
        let bytes = c.to_bytes().unwrap();
        let back = Checkpoint::from_bytes(&bytes).unwrap();
        assert_eq!(back.spec.task, crate::learn::Task::Classification);
        assert_eq!(back.target, TargetScale::default());
        let old_spec = r#"{"input":4,"hidden":[3],"classes":3,"activation":"gelu","dropout":0.0}"#;
        let spec: ModelSpec = serde_json::from_str(old_spec).unwrap();
        c.spec.task = crate::learn::Task::Classification;
        assert_eq!(spec, c.spec);
    }

    #[test]
    fn round_trip_is_bit_identical() {
        let m = model(vec![5, 6], 1);
        let data = Dataset::new(
            (0..40).map(|i| i as f32 / 7.0).collect(),
            (0..10).map(|i| i % 3).collect(),
            4,
        )
        .unwrap();
        let mut ewc = Ewc::new(12.5, 0.9);
        ewc.consolidate(&m, &data, 10).unwrap();
        let mut meta = BTreeMap::new();
        meta.insert("version".to_string(), "7".to_string());
        let c = Checkpoint::of(&m, Some(&ewc), meta).unwrap();
        let bytes = c.to_bytes().unwrap();
        let back = Checkpoint::from_bytes(&bytes).unwrap();
        assert_eq!(back, c);
        assert_eq!(bits(&back.weights), bits(&c.weights));
        let e = back.ewc.as_ref().unwrap();
        assert_eq!(bits(&e.fisher), bits(&ewc.fisher));
        assert_eq!(bits(&e.theta_star), bits(&ewc.theta_star));
        assert_eq!(
            Checkpoint::from_bytes(&back.to_bytes().unwrap()).unwrap(),
            c
        );
        let rebuilt = back.to_model(BackendKind::from_env()).unwrap();
        assert_eq!(bits(&rebuilt.params().unwrap()), bits(&m.params().unwrap()));
        assert_eq!(rebuilt.norm, m.norm);
        let x = [0.1f32, 0.2, 0.3, 0.4];
        assert_eq!(
            rebuilt.predict_proba(&x).unwrap(),
            m.predict_proba(&x).unwrap()
        );
    }

    #[test]
    fn export_import_round_trip_and_mismatch_errors() {
        let m = model(vec![5], 1);
        let file = export_safetensors(&m).unwrap();
        let st = SafeTensors::deserialize(&file).unwrap();
        assert_eq!(
            st.tensor("hidden.0.weight").unwrap().shape(),
            &[5, 4],
            "[out, in]"
        );
        let mut other = model(vec![5], 2);
        assert_ne!(bits(&other.params().unwrap()), bits(&m.params().unwrap()));
        import_safetensors(&mut other, &file).unwrap();
        assert_eq!(bits(&other.params().unwrap()), bits(&m.params().unwrap()));

        let mut wider = model(vec![6], 1);
        let e = import_safetensors(&mut wider, &file)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("hidden.0.weight") && e.contains("[5, 4]") && e.contains("[6, 4]"),
            "{e}"
        );
        let mut deeper = model(vec![5, 5], 1);
        let e = import_safetensors(&mut deeper, &file)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("hidden.1.weight") && e.contains("missing"),
            "{e}"
        );
        let e = import_safetensors(&mut other, b"not a file")
            .unwrap_err()
            .to_string();
        assert!(e.contains("safetensors"), "{e}");
        assert!(
            Checkpoint::from_bytes(&file).is_err(),
            "an export is not a checkpoint"
        );
    }
}
