#!/usr/bin/env python3
"""River peer baselines (ARF, HAT, HT, logistic regression, no-change, majority) on a CSV
stream, scored prequentially (test-then-train), for the side-by-side comparison with
relearn's learners on the same streams.

    benches/river_peers.py FILE --label COL [--features a,b,c | --drop a,b]
        [--categorical x,y] [--missing NA,unknown]
        [--learners arf,hat,ht,logreg,nochange,majority] [--json OUT.json] [--max-rows N]

The script creates (if absent) a venv under ~/.cache/relearn/river-venv, installs
river==0.26.1 there with pip, and re-executes itself inside it, so it can be run with any
python3.

Data: FILE is a CSV (optionally .gz) with a header line; rows are read in file order, which
is the stream order. Features default to every column except the label, minus --drop.
A feature value that is empty, is one of the --missing tokens, or (for a numeric column)
fails float(), is missing: its key is left out of the record's dict, which River learners
tolerate. Columns named in --categorical are passed as strings. Labels are the label
column's raw strings; a record whose label is empty is skipped (none in these streams).

Learners (River 0.26.1, defaults unless stated):
    arf       forest.ARFClassifier(seed=42)
    hat       tree.HoeffdingAdaptiveTreeClassifier(seed=42)
    ht        tree.HoeffdingTreeClassifier()
    logreg    preprocessing.StandardScaler() | linear_model.LogisticRegression() for two
              classes (labels mapped to False/True, True = the last label in sorted order);
              preprocessing.StandardScaler() | multiclass.OneVsRestClassifier(
              linear_model.LogisticRegression()) for more than two. With --categorical the
              scaler is replaced by (Select(*numeric) | StandardScaler()) +
              (Select(*categorical) | OneHotEncoder()); Select here is compose.Select
              made tolerant of absent (missing) keys, since compose.Select raises KeyError.
    nochange  predicts the previous record's label.
    majority  predicts the most frequent label seen so far (ties: the label that reached
              the top count first).

Protocol: prequential test-then-train, one record at a time in file order: predict_one,
then learn_one. The very first record (no prediction possible) counts as wrong for every
learner, so that all learners are scored on identical records; any later None prediction
also counts as wrong. The learners run one after another, not in parallel.

Metrics per learner, over all N records read:
    accuracy        correct / N
    kappa           Cohen's kappa, (acc - p_e) / (1 - p_e), with chance p_e from the
                    marginals of the predictions and the true labels over the whole stream
                    (the first record's missing prediction is a category of its own)
    kappa_temporal  (acc - acc_nochange) / (1 - acc_nochange) (Zliobaite et al. 2015),
                    acc_nochange being the no-change baseline's accuracy on the same records
    seconds         wall time of the predict/learn loop (building each record's dict included)
    records_per_s   N / seconds

Output: a markdown table on stdout, a progress line on stderr every 10% of the stream, and
with --json a JSON file {"file", "rows", "river_version", "learners": [{"name", "accuracy",
"kappa", "kappa_temporal", "seconds", ...}], ...}.
"""
import argparse
import csv
import gzip
import json
import math
import os
import subprocess
import sys
import time

RIVER_VERSION = "0.26.1"
VENV = os.path.expanduser("~/.cache/relearn/river-venv")
ALL_LEARNERS = ["arf", "hat", "ht", "logreg", "nochange", "majority"]


def ensure_venv(script=None):
    """Re-execute `script` (default: this file) inside the river venv, creating it and
    installing river first if needed."""
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    py = os.path.join(VENV, "bin", "python")
    if not os.path.exists(py):
        print(f"creating venv {VENV}", file=sys.stderr)
        subprocess.check_call(["python3", "-m", "venv", VENV])
    check = f"import river, sys; sys.exit(river.__version__ != {RIVER_VERSION!r})"
    if subprocess.call([py, "-c", check], stderr=subprocess.DEVNULL) != 0:
        print(f"installing river=={RIVER_VERSION} into {VENV}", file=sys.stderr)
        subprocess.check_call([py, "-m", "pip", "install", "-q", f"river=={RIVER_VERSION}"])
    os.execv(py, [py, os.path.abspath(script or __file__)] + sys.argv[1:])


def split_list(s):
    return [t for t in (s or "").split(",") if t != ""]


def label_sort_key(v):
    try:
        return (0, float(v), v)
    except ValueError:
        return (1, 0.0, v)


def load(path, label, features, drop, categorical, missing, max_rows):
    """Rows as tuples (value or None per feature) plus labels, for the first max_rows
    records; the whole file is scanned for its row count and label values."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        if label not in header:
            sys.exit(f"label column {label!r} not in header {header}")
        for c in features + drop + categorical:
            if c not in header:
                sys.exit(f"column {c!r} not in header {header}")
        if features:
            feats = [c for c in header if c in set(features)]
        else:
            feats = [c for c in header if c != label and c not in set(drop)]
        cats = set(categorical)
        li = header.index(label)
        idx = [header.index(c) for c in feats]
        kinds = [c in cats for c in feats]
        miss = set(missing) | {""}
        cache = {}  # share float/str objects between rows (kddcup has few distinct values)
        rows, labels, file_labels = [], [], {}
        file_rows = skipped = 0
        for r in reader:
            if not r:
                continue
            y = r[li]
            if y == "":
                skipped += 1
                continue
            file_rows += 1
            file_labels[y] = file_labels.get(y, 0) + 1
            if max_rows is not None and len(rows) >= max_rows:
                continue
            row = []
            for j, is_cat in zip(idx, kinds):
                s = r[j]
                if s in miss:
                    row.append(None)
                    continue
                key = (is_cat, s)
                v = cache.get(key)
                if v is None:
                    if is_cat:
                        v = s
                    else:
                        try:
                            v = float(s)
                        except ValueError:
                            v = False  # marker: unparsable, treated as missing
                        if isinstance(v, float) and math.isnan(v):
                            v = False
                    cache[key] = v
                row.append(None if v is False else v)
            rows.append(tuple(row))
            labels.append(y)
    return feats, rows, labels, file_rows, file_labels, skipped


class NoChange:
    def __init__(self):
        self.last = None

    def predict_one(self, x):
        return self.last

    def learn_one(self, x, y):
        self.last = y


class Majority:
    def __init__(self):
        self.counts = {}
        self.best = None

    def predict_one(self, x):
        return self.best

    def learn_one(self, x, y):
        n = self.counts.get(y, 0) + 1
        self.counts[y] = n
        if self.best is None or n > self.counts[self.best]:
            self.best = y


def make_learner(name, n_classes, numeric, categorical):
    """(model, description, label encoder, label decoder)."""
    from river import compose, forest, linear_model, multiclass, preprocessing, tree

    ident = (lambda y: y, lambda p: p)
    if name == "arf":
        return forest.ARFClassifier(seed=42), "forest.ARFClassifier(seed=42)", ident
    if name == "hat":
        return (tree.HoeffdingAdaptiveTreeClassifier(seed=42),
                "tree.HoeffdingAdaptiveTreeClassifier(seed=42)", ident)
    if name == "ht":
        return tree.HoeffdingTreeClassifier(), "tree.HoeffdingTreeClassifier()", ident
    if name == "nochange":
        return NoChange(), "previous label", ident
    if name == "majority":
        return Majority(), "most frequent label so far", ident
    if name != "logreg":
        sys.exit(f"unknown learner {name!r}")

    class Select(compose.Select):
        """compose.Select that skips absent (missing) keys instead of raising KeyError."""

        def transform_one(self, x):
            return {i: x[i] for i in self.keys if i in x}

    if categorical:
        prep = ((Select(*numeric) | preprocessing.StandardScaler())
                + (Select(*categorical) | preprocessing.OneHotEncoder()))
        pdesc = ("(compose.Select(*numeric) | preprocessing.StandardScaler()) + "
                 "(compose.Select(*categorical) | preprocessing.OneHotEncoder())")
    else:
        prep = preprocessing.StandardScaler()
        pdesc = "preprocessing.StandardScaler()"
    if n_classes <= 2:
        return (prep | linear_model.LogisticRegression(),
                pdesc + " | linear_model.LogisticRegression()", None)
    return (prep | multiclass.OneVsRestClassifier(linear_model.LogisticRegression()),
            pdesc + " | multiclass.OneVsRestClassifier(linear_model.LogisticRegression())",
            ident)


def run_learner(name, model, codec, feats, rows, labels):
    enc, dec = codec
    n = len(rows)
    marks = {max(1, n * k // 10) for k in range(1, 11)}
    preds = [None] * n
    correct = 0
    t0 = time.perf_counter()
    for i in range(n):
        x = {k: v for k, v in zip(feats, rows[i]) if v is not None}
        y = labels[i]
        if i > 0:
            p = dec(model.predict_one(x))
            preds[i] = p
            if p == y:
                correct += 1
        model.learn_one(x, enc(y))
        if i + 1 in marks:
            el = time.perf_counter() - t0
            print(f"  {name}: {i + 1}/{n} ({100 * (i + 1) / n:.0f}%) acc {correct / (i + 1):.4f} "
                  f"{el:.1f}s {(i + 1) / max(el, 1e-9):.0f} rec/s", file=sys.stderr, flush=True)
    secs = time.perf_counter() - t0
    return preds, correct, secs


def cohen_kappa(preds, labels):
    n = len(labels)
    tp, pp = {}, {}
    agree = 0
    for p, y in zip(preds, labels):
        tp[y] = tp.get(y, 0) + 1
        pp[p] = pp.get(p, 0) + 1
        agree += p == y
    po = agree / n
    pe = sum(c * pp.get(k, 0) for k, c in tp.items()) / (n * n)
    return (po - pe) / (1 - pe) if pe < 1 else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("--label", required=True)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--features", default="", help="comma-separated feature columns")
    g.add_argument("--drop", default="", help="comma-separated columns to leave out")
    ap.add_argument("--categorical", default="", help="comma-separated string columns")
    ap.add_argument("--missing", default="", help="comma-separated missing-value tokens")
    ap.add_argument("--learners", default=",".join(ALL_LEARNERS))
    ap.add_argument("--json", default=None)
    ap.add_argument("--max-rows", type=int, default=None)
    a = ap.parse_args()

    import river

    learners = split_list(a.learners)
    for l in learners:
        if l not in ALL_LEARNERS:
            sys.exit(f"unknown learner {l!r}; choose from {','.join(ALL_LEARNERS)}")
    categorical = split_list(a.categorical)
    t0 = time.perf_counter()
    feats, rows, labels, file_rows, file_labels, skipped = load(
        a.file, a.label, split_list(a.features), split_list(a.drop), categorical,
        split_list(a.missing), a.max_rows)
    n = len(rows)
    if n == 0:
        sys.exit("no records")
    classes = sorted(set(labels), key=label_sort_key)
    numeric = [c for c in feats if c not in set(categorical)]
    cats = [c for c in feats if c in set(categorical)]
    n_missing = sum(v is None for r in rows for v in r)
    print(f"{a.file}: {n} records (file {file_rows}), {len(feats)} features "
          f"({len(cats)} categorical), {len(classes)} classes, {n_missing} missing cells, "
          f"loaded in {time.perf_counter() - t0:.1f}s; river {river.__version__}",
          file=sys.stderr, flush=True)

    nochange_correct = sum(labels[i] == labels[i - 1] for i in range(1, n))
    acc_nc = nochange_correct / n

    results = []
    for name in learners:
        model, desc, codec = make_learner(name, len(classes), numeric, cats)
        if codec is None:  # binary logistic regression: labels <-> bool
            pos = classes[-1]
            neg = classes[0] if len(classes) > 1 else None
            codec = (lambda y, pos=pos: y == pos,
                     lambda p, pos=pos, neg=neg: None if p is None else (pos if p else neg))
        print(f"{name}: {desc}", file=sys.stderr, flush=True)
        preds, correct, secs = run_learner(name, model, codec, feats, rows, labels)
        acc = correct / n
        kt = (acc - acc_nc) / (1 - acc_nc) if acc_nc < 1 else None
        results.append({
            "name": name, "model": desc, "accuracy": acc, "kappa": cohen_kappa(preds, labels),
            "kappa_temporal": kt, "seconds": secs, "records_per_s": n / secs if secs > 0 else None,
        })
        del model, preds

    f3 = lambda v: "-" if v is None else f"{v:.4f}"
    print(f"\n{os.path.basename(a.file)}: {n} records, {len(feats)} features, "
          f"{len(classes)} classes, river {river.__version__}, no-change accuracy {acc_nc:.4f}\n")
    print("| learner | River model | accuracy | kappa | kappa-temporal | seconds | records/s |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        model_md = r["model"].replace("|", "\\|")  # a literal | would end the table cell
        print(f"| {r['name']} | `{model_md}` | {f3(r['accuracy'])} | {f3(r['kappa'])} | "
              f"{f3(r['kappa_temporal'])} | {r['seconds']:.1f} | {r['records_per_s']:.0f} |")

    if a.json:
        out = {
            "file": a.file, "rows": n, "file_rows": file_rows, "skipped_empty_label": skipped,
            "max_rows": a.max_rows, "river_version": river.__version__, "label": a.label,
            "features": feats, "categorical": cats, "missing_tokens": split_list(a.missing),
            "missing_cells": n_missing, "classes": classes,
            "file_label_counts": dict(sorted(file_labels.items(), key=lambda kv: label_sort_key(kv[0]))),
            "nochange_accuracy": acc_nc, "protocol": "prequential test-then-train; first record counts as wrong",
            "command": " ".join(["benches/river_peers.py"] + sys.argv[1:]),
            "learners": results,
        }
        d = os.path.dirname(os.path.abspath(a.json))
        os.makedirs(d, exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    ensure_venv()
    main()
