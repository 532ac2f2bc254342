//! Catastrophic forgetting on real data: digits, then the same digits with permuted pixels.
//! Training the second task with online EWC and replay must forget measurably less of the
//! first than plain fine-tuning, while still learning the second.

use relearn::datasets;
use relearn::learn::{
    train::train, BackendKind, Ewc, LayerSet, Model, ModelSpec, Normalizer, TrainConfig,
};

fn tasks() -> datasets::PermutedDigits {
    datasets::permuted_digits(2024, 11).expect("embedded digits")
}

fn fresh(norm: Normalizer) -> Model {
    let spec = ModelSpec::classifier(64, vec![128, 128], 10);
    Model::new(spec, norm, BackendKind::from_env(), 17).expect("model")
}

#[test]
fn ewc_with_replay_forgets_less_than_fine_tuning() {
    let t = tasks();
    // Pixel statistics are the same under a permutation only up to order; standardise with
    // the union so both tasks see comparable inputs.
    let mut both = t.a_train.clone();
    both.extend(&t.b_train);
    let model = fresh(Normalizer::fit(&both.x, 64));
    let cfg = TrainConfig {
        epochs: 15,
        batch_size: 32,
        learning_rate: 1e-3,
        ..TrainConfig::default()
    };
    let all = LayerSet::all(&model);
    let (after_a, _) = train(&model, &t.a_train, None, &all, &cfg, None).unwrap();
    let acc_a0 = after_a.accuracy(&t.a_test).unwrap();
    assert!(acc_a0 > 0.9, "task A is learned: {acc_a0}");

    // Plain fine-tuning on B.
    let (plain, _) = train(&after_a, &t.b_train, None, &all, &cfg, None).unwrap();
    let plain_a = plain.accuracy(&t.a_test).unwrap();
    let plain_b = plain.accuracy(&t.b_test).unwrap();

    // EWC anchored on A, plus 25% replay of A.
    let mut ewc = Ewc::new(500.0, 1.0);
    ewc.consolidate(&after_a, &t.a_train, 500).unwrap();
    let replay = t.a_train.subset(&(0..300).collect::<Vec<_>>());
    let cfg_ewc = TrainConfig {
        replay_ratio: 0.25,
        ..cfg.clone()
    };
    let (kept, report) = train(
        &after_a,
        &t.b_train,
        Some(&replay),
        &all,
        &cfg_ewc,
        Some(&ewc),
    )
    .unwrap();
    let kept_a = kept.accuracy(&t.a_test).unwrap();
    let kept_b = kept.accuracy(&t.b_test).unwrap();
    // EWC alone, no replay.
    let (ewc_only, _) = train(&after_a, &t.b_train, None, &all, &cfg, Some(&ewc)).unwrap();
    let ewc_a = ewc_only.accuracy(&t.a_test).unwrap();
    let ewc_b = ewc_only.accuracy(&t.b_test).unwrap();
    let forget_ewc = acc_a0 - ewc_a;
    let forget_plain = acc_a0 - plain_a;
    let forget_kept = acc_a0 - kept_a;
    eprintln!(
        "A after A {acc_a0:.3}; fine-tune: A {plain_a:.3} B {plain_b:.3} (forgetting {forget_plain:.3}); \
         EWC: A {ewc_a:.3} B {ewc_b:.3} (forgetting {forget_ewc:.3}); EWC+replay: A {kept_a:.3} B {kept_b:.3} (forgetting {forget_kept:.3}); penalty per epoch {:?}",
        report.epoch_penalty
    );
    assert!(plain_b > 0.85, "fine-tuning learns B: {plain_b}");
    assert!(kept_b > 0.8, "EWC + replay still learns B: {kept_b}");
    assert!(
        forget_plain > 0.05,
        "fine-tuning forgets A measurably: {forget_plain}"
    );
    assert!(ewc_b > 0.8, "EWC alone still learns B: {ewc_b}");
    assert!(
        forget_ewc < forget_plain - 0.04,
        "EWC alone forgets less: {forget_ewc} vs {forget_plain}"
    );
    assert!(
        forget_kept < forget_plain - 0.04,
        "EWC + replay forgets less: {forget_kept} vs {forget_plain}"
    );
}
