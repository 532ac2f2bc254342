//! Training-step cost: all layers, head only (with and without the frozen-prefix cache) and
//! first layer only, on the MLP 64-128-128-64-10 with batches of 256. Each measured call
//! trains 4 epochs of 8 steps; criterion reports time per call (divide by 32 for a step).
//!
//! `cargo bench --bench train_step` on the default backend; `RELEARN_TEST_BACKEND=tch` (with
//! `--features tch`) or `ndarray` (with `--features ndarray`) for the others.

use criterion::{criterion_group, criterion_main, Criterion};
use relearn::datasets;
use relearn::learn::{
    train::train, BackendKind, Dataset, LayerSet, Model, ModelSpec, Normalizer, TrainConfig,
};

fn setup() -> (Model, Dataset) {
    let digits = datasets::digits().expect("digits");
    let data = digits.subset(&(0..2048).map(|i| i % digits.len()).collect::<Vec<_>>());
    let spec = ModelSpec::classifier(64, vec![128, 128, 64], 10);
    let model = Model::new(
        spec,
        Normalizer::fit(&data.x, 64),
        BackendKind::from_env(),
        1,
    )
    .expect("model");
    (model, data)
}

fn bench(c: &mut Criterion) {
    let (model, data) = setup();
    let backend = BackendKind::from_env().name();
    let mut group = c.benchmark_group(format!("train_32_steps_{backend}"));
    group.sample_size(10);
    let cases: [(&str, Vec<&str>, bool); 5] = [
        (
            "all_layers",
            vec!["hidden.0", "hidden.1", "hidden.2", "head"],
            true,
        ),
        ("head_only_cached", vec!["head"], true),
        ("head_only_uncached", vec!["head"], false),
        ("last_two_cached", vec!["hidden.2", "head"], true),
        ("first_layer_only", vec!["hidden.0"], true),
    ];
    for (name, layers, cache) in cases {
        let set = LayerSet::named(&model, &layers).expect("layers");
        let cfg = TrainConfig {
            epochs: 4,
            batch_size: 256,
            prefix_cache: cache,
            ..TrainConfig::default()
        };
        group.bench_function(name, |b| {
            b.iter(|| train(&model, &data, None, &set, &cfg, None).expect("train"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
