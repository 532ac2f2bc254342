"""River's ADWIN and PageHinkley (default parameters) on the TCPD series, scored exactly like
benches/tcpd.rs (TCPDBench's f_measure with margin 5, and detection delay), for the
side-by-side comparison with relearn's detectors.

    python3 -m venv ~/.cache/relearn/river-venv
    ~/.cache/relearn/river-venv/bin/pip install river==0.26.1
    ~/.cache/relearn/river-venv/bin/python benches/river_tcpd.py
"""
import csv
import gzip
import json
import os

from river import drift

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data", "tcpd")


def true_positives(T, X, margin=5):
    X = set(X)
    tp = 0
    for tau in sorted(T):
        close = sorted((abs(tau - x), x) for x in X if abs(tau - x) <= margin)
        if close:
            X.remove(close[0][1])
            tp += 1
    return tp


def f_measure(annotators, predictions, margin=5):
    tks = [set(a) | {0} for a in annotators]
    x = set(predictions) | {0}
    tstar = set().union(*tks)
    p = true_positives(tstar, x, margin) / len(x)
    r = sum(true_positives(t, x, margin) / len(t) for t in tks) / len(tks)
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def delay(annotators, predictions):
    truth = sorted({t for a in annotators for t in a if t > 0})
    ds = []
    for i, tau in enumerate(truth):
        nxt = truth[i + 1] if i + 1 < len(truth) else float("inf")
        hits = [x for x in predictions if tau <= x < nxt]
        if hits:
            ds.append(hits[0] - tau)
    return sum(ds) / len(ds) if ds else None


def detections(det, xs):
    out = []
    for i, x in enumerate(xs):
        if x is None:
            continue
        det.update(x)
        if det.drift_detected:
            out.append(i)
    return out


with open(os.path.join(DATA, "annotations.json")) as f:
    ann = json.load(f)
print("| series | n | River ADWIN F1 | delay | River PageHinkley F1 | delay | detections (ADWIN / PH) |")
print("|---|---|---|---|---|---|---|")
fa = fp = 0.0
for name in sorted(ann):
    with gzip.open(os.path.join(DATA, name + ".gz"), "rt") as f:
        rows = list(csv.reader(f))[1:]
    xs = []
    for r in rows:
        try:
            xs.append(float(r[1]))
        except (ValueError, IndexError):
            xs.append(None)
    annotators = list(ann[name]["annotations_by_annotator"].values())
    a = detections(drift.ADWIN(), xs)
    p = detections(drift.PageHinkley(), xs)
    f1a, f1p = f_measure(annotators, a), f_measure(annotators, p)
    da, dp = delay(annotators, a), delay(annotators, p)
    fmt = lambda d: "-" if d is None else f"{d:.1f}"
    fa += f1a
    fp += f1p
    print(f"| {name[:-4]} | {len(xs)} | {f1a:.3f} | {fmt(da)} | {f1p:.3f} | {fmt(dp)} | {len(a)} / {len(p)} |")
print(f"| mean | | {fa / len(ann):.3f} | | {fp / len(ann):.3f} | | |")
