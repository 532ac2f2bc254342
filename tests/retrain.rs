//! The retrain job on real data: a drifted window (digits with permuted pixels) is learned by
//! a partial retrain with EWC + replay and promoted; a window with flipped labels is
//! rejected by the forgetting gate; a diverging candidate is rejected.

use relearn::config::EwcConfig;
use relearn::datasets;
use relearn::learn::diagnostics::activation_stats;
use relearn::learn::train::train;
use relearn::learn::{
    BackendKind, Dataset, Ewc, LayerSet, Model, ModelSpec, Normalizer, TrainConfig,
};
use relearn::retrain::{run, Outcome, RetrainConfig, RetrainInput};

struct Setup {
    serving: Model,
    ewc: Ewc,
    a_train: Dataset,
    b_train: Dataset,
}

fn setup() -> Setup {
    let datasets::PermutedDigits {
        a_train, b_train, ..
    } = datasets::permuted_digits(2024, 11).expect("digits");
    let mut both = a_train.clone();
    both.extend(&b_train);
    let spec = ModelSpec::classifier(64, vec![128, 128], 10);
    let model = Model::new(
        spec,
        Normalizer::fit(&both.x, 64),
        BackendKind::from_env(),
        17,
    )
    .unwrap();
    let cfg = TrainConfig {
        epochs: 15,
        batch_size: 32,
        ..TrainConfig::default()
    };
    let (serving, _) = train(&model, &a_train, None, &LayerSet::all(&model), &cfg, None).unwrap();
    let mut ewc = Ewc::new(500.0, 1.0);
    ewc.consolidate(&serving, &a_train, 500).unwrap();
    Setup {
        serving,
        ewc,
        a_train,
        b_train,
    }
}

fn configs() -> (RetrainConfig, TrainConfig, EwcConfig) {
    (
        RetrainConfig {
            max_forgetting: 0.05,
            validation_replay: 400,
            ..RetrainConfig::default()
        },
        TrainConfig {
            epochs: 15,
            batch_size: 32,
            replay_ratio: 0.25,
            ..TrainConfig::default()
        },
        EwcConfig {
            lambda: 500.0,
            gamma: 1.0,
            fisher_examples: 300,
        },
    )
}

#[test]
fn drifted_window_is_learned_and_promoted() {
    let s = setup();
    let reference = activation_stats(&s.serving, &s.a_train.x).unwrap();
    let (rc, tc, ec) = configs();
    let input = RetrainInput {
        current: &s.serving,
        ewc: Some(&s.ewc),
        reference: &reference,
        recent: &s.b_train,
        replay: &s.a_train,
        seed: 3,
    };
    let r = run(&input, &rc, &tc, &ec).unwrap();
    let v = r.validation.clone().unwrap();
    eprintln!(
        "layers {:?} choices {:?} validation {v:?}",
        r.layers, r.choices
    );
    assert_eq!(r.outcome, Outcome::Promoted, "{v:?}");
    assert!(!r.choices.is_empty(), "auto selection scored the layers");
    assert!(r.layers.len() <= 2);
    assert!(v.gain > 0.3, "the drifted window is learned: {v:?}");
    assert!(v.forgetting <= 0.05);
    let report = r.train.unwrap();
    assert!(report.flops <= report.flops_full);
    assert!(r.candidate.is_some() && r.ewc.is_some());
}

/// The replay buffer samples the whole stream, recent records included; those are new
/// knowledge, so they neither count as old knowledge nor get replayed: a buffer holding the
/// recent window too gives exactly the run of a buffer without it.
#[test]
fn recent_records_in_the_replay_buffer_are_not_old_knowledge() {
    let s = setup();
    let reference = activation_stats(&s.serving, &s.a_train.x).unwrap();
    let (rc, tc, ec) = configs();
    let mut mixed = s.a_train.clone();
    mixed.extend(&s.b_train);
    let go = |replay: &Dataset| {
        let input = RetrainInput {
            current: &s.serving,
            ewc: Some(&s.ewc),
            reference: &reference,
            recent: &s.b_train,
            replay,
            seed: 3,
        };
        run(&input, &rc, &tc, &ec).unwrap()
    };
    let (with, without) = (go(&mixed), go(&s.a_train));
    let (v, w) = (with.validation.unwrap(), without.validation.unwrap());
    assert_eq!(v, w);
    assert_eq!(v.old_records, 400.min(s.a_train.len() / 2));
    assert_eq!(with.train.unwrap().flops, without.train.unwrap().flops);
}

#[test]
fn flipped_labels_are_rejected_and_the_serving_model_is_unchanged() {
    let s = setup();
    let before = s.serving.params().unwrap();
    let probe = s.a_train.subset(&(0..50).collect::<Vec<_>>());
    let answers = s.serving.predict_proba(&probe.x).unwrap();
    let mut flipped = s.a_train.clone();
    if let relearn::learn::Targets::Classes(labels) = &mut flipped.y {
        for y in labels {
            *y = (*y + 1) % 10;
        }
    }
    let reference = activation_stats(&s.serving, &s.a_train.x).unwrap();
    let (rc, mut tc, ec) = configs();
    tc.replay_ratio = 0.0;
    let input = RetrainInput {
        current: &s.serving,
        ewc: None,
        reference: &reference,
        recent: &flipped,
        replay: &s.a_train,
        seed: 3,
    };
    let r = run(
        &input,
        &RetrainConfig {
            layers: relearn::retrain::LayerPolicy::Keyword("all".into()),
            ..rc
        },
        &tc,
        &ec,
    )
    .unwrap();
    let v = r.validation.clone().unwrap();
    eprintln!("validation {v:?}");
    match &r.outcome {
        Outcome::Rejected { reason } => assert!(reason.contains("forgetting"), "{reason}"),
        other => panic!("flipped labels were promoted: {other:?} {v:?}"),
    }
    assert!(r.candidate.is_none());
    assert_eq!(s.serving.params().unwrap(), before);
    assert_eq!(s.serving.predict_proba(&probe.x).unwrap(), answers);
}

#[test]
fn a_diverging_candidate_is_rejected() {
    let s = setup();
    let (rc, mut tc, ec) = configs();
    tc.learning_rate = 1e30;
    let input = RetrainInput {
        current: &s.serving,
        ewc: Some(&s.ewc),
        reference: &[],
        recent: &s.b_train,
        replay: &s.a_train,
        seed: 3,
    };
    let r = run(&input, &rc, &tc, &ec).unwrap();
    match r.outcome {
        Outcome::Rejected { reason } => assert!(reason.contains("diverged"), "{reason}"),
        other => panic!("{other:?}"),
    }
}
