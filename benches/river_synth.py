#!/usr/bin/env python3
"""Writes streams from River's synthetic generators (20,000 records each, fixed seeds) as CSV
files with a header, so that `relearn eval` and the peer scripts run on identical records: a
check of relearn's defaults on concepts of known shape (linear, rule-based, clustered,
drifting) that none of them was chosen on.

    benches/river_synth.py OUT_DIR [NAME ...]

Streams (River 0.26.1, `river.datasets.synth`; label column `y`):
    agrawal     Agrawal loan rule 0, drifting to rule 4 around record 10,000 (width 1,000)
    rbfdrift    RandomRBFDrift: 5 classes, 10 inputs, 50 centroids, 25 of them moving
    led         LEDDrift: 10 digits from 24 binary inputs (17 irrelevant), 10% noise
    waveform    Waveform with noise: 3 classes, 40 inputs
    sea         SEA variant 0 to variant 2 around record 10,000 (width 500), 10% noise
    hyperplane  Hyperplane: 10 inputs, 5 drifting, 5% noise (a linear concept that rotates)
    sine        Sine function 0 to 1 around record 10,000 (width 200), with noise
    friedman    FriedmanDrift, gradual drift at 7,000 and 14,000 (numeric target)
    mv          Mv: numeric target, 3 string inputs
    planes2d    Planes2D: numeric target, 10 inputs
    rbf20       RandomRBF: 20 classes, 10 inputs, 60 centroids, no drift
    randomtree  RandomTree: 5 classes, 8 inputs, a tree of depth 6, no drift
    stagger     STAGGER function 0 to 2 around record 10,000 (width 1,000), 3 small integer inputs

The venv is the one `benches/river_peers.py` creates (~/.cache/relearn/river-venv).
"""
import csv
import itertools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from river_peers import ensure_venv  # noqa: E402

N = 20_000


def generators():
    from river.datasets import synth

    return {
        "agrawal": lambda: synth.ConceptDriftStream(
            stream=synth.Agrawal(classification_function=0, seed=1),
            drift_stream=synth.Agrawal(classification_function=4, seed=2),
            position=N // 2, width=1000, seed=3),
        "rbfdrift": lambda: synth.RandomRBFDrift(
            seed_model=1, seed_sample=2, n_classes=5, n_features=10, n_centroids=50,
            change_speed=0.001, n_drift_centroids=25),
        "led": lambda: synth.LEDDrift(
            seed=1, noise_percentage=0.1, irrelevant_features=True, n_drift_features=7),
        "waveform": lambda: synth.Waveform(seed=1, has_noise=True),
        "sea": lambda: synth.ConceptDriftStream(
            stream=synth.SEA(variant=0, seed=1, noise=0.1),
            drift_stream=synth.SEA(variant=2, seed=2, noise=0.1),
            position=N // 2, width=500, seed=3),
        "hyperplane": lambda: synth.Hyperplane(
            seed=1, n_features=10, n_drift_features=5, mag_change=0.001,
            noise_percentage=0.05),
        "sine": lambda: synth.ConceptDriftStream(
            stream=synth.Sine(classification_function=0, seed=1, has_noise=True),
            drift_stream=synth.Sine(classification_function=1, seed=2, has_noise=True),
            position=N // 2, width=200, seed=3),
        "friedman": lambda: synth.FriedmanDrift(drift_type="gra", position=(7000, 14000), seed=1),
        "mv": lambda: synth.Mv(seed=1),
        "planes2d": lambda: synth.Planes2D(seed=1),
        "rbf20": lambda: synth.RandomRBF(
            seed_model=7, seed_sample=8, n_classes=20, n_features=10, n_centroids=60),
        "randomtree": lambda: synth.RandomTree(
            seed_tree=3, seed_sample=4, n_classes=5, n_num_features=8, n_cat_features=0,
            max_tree_depth=6),
        "stagger": lambda: synth.ConceptDriftStream(
            stream=synth.STAGGER(classification_function=0, seed=1),
            drift_stream=synth.STAGGER(classification_function=2, seed=1),
            position=10_000, width=1_000, seed=1),
    }


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    gens = generators()
    for name in sys.argv[2:] or list(gens):
        if name not in gens:
            sys.exit(f"unknown stream {name}; one of {', '.join(gens)}")
        rows = list(itertools.islice(gens[name](), N))
        keys = list(rows[0][0])
        path = os.path.join(out, f"{name}.csv")
        with open(path, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow([f"x{k}" if isinstance(k, int) else k for k in keys] + ["y"])
            for x, y in rows:
                w.writerow([x[k] for k in keys] + [int(y) if isinstance(y, bool) else y])
        print(f"{path}: {len(rows)} rows, {len(keys)} inputs", file=sys.stderr)


if __name__ == "__main__":
    ensure_venv(os.path.abspath(__file__))
    main()
