#!/usr/bin/env python3
"""River regression peers (linear regression, ARF, AMF, no-change, mean) on a CSV stream with
a numeric target, scored prequentially (test-then-train), for the side-by-side comparison
with `relearn eval` on the same file.

    benches/river_regression.py FILE --label COL [--features a,b,c | --drop a,b]
        [--categorical x,y] [--missing NA,unknown]
        [--learners linreg,linreg_ts,arf,amf,nochange,mean] [--json OUT.json] [--max-rows N]

The venv, the CSV reading and the missing-value rules are those of benches/river_peers.py
(imported from the same folder): a missing feature's key is left out of the record's dict.
A record whose target is empty, a --missing token or not a finite number is skipped.

Learners (River 0.26.1):
    linreg    preprocessing.StandardScaler() | linear_model.LinearRegression(); with
              --categorical the scaler is (Select(*numeric) | StandardScaler()) +
              (Select(*categorical) | OneHotEncoder()), Select tolerant of absent keys.
    linreg_ts the same inside preprocessing.TargetStandardScaler (River's own fix for
              LinearRegression's divergence on targets in the hundreds).
    arf       forest.ARFRegressor(seed=42)
    amf       forest.AMFRegressor(seed=42); for both, --categorical columns are one-hot
              encoded beside the numeric ones (AMF takes numbers only).
    nochange  predicts the previous target.
    mean      predicts the mean of the targets seen so far (stats.Mean).

Protocol: predict_one, then learn_one, one record at a time in file order; the first
record's prediction is 0 for every learner (nothing seen yet), and a None prediction is 0.
Metrics over all N records: MAE, RMSE, R^2 = 1 - SSE / SST (SST about the stream's mean).
"""
import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import river_peers  # noqa: E402  (venv handling and CSV loading)

ALL = ["linreg", "linreg_ts", "arf", "amf", "nochange", "mean"]


class Mean:
    def __init__(self):
        self.n, self.s = 0, 0.0

    def predict_one(self, x):
        return self.s / self.n if self.n else 0.0

    def learn_one(self, x, y):
        self.n += 1
        self.s += y


def make(name, numeric, categorical):
    from river import compose, forest, linear_model, preprocessing

    if name == "nochange":
        return river_peers.NoChange(), "previous target"
    if name == "mean":
        return Mean(), "mean of the targets so far"

    class Select(compose.Select):
        def transform_one(self, x):
            return {i: x[i] for i in self.keys if i in x}

    def encoded(numeric_step, numeric_desc):
        """String columns one-hot encoded beside the numeric ones (AMF takes numbers only)."""
        if not categorical:
            return numeric_step, numeric_desc
        step = Select(*numeric) if numeric_step is None else Select(*numeric) | numeric_step
        desc = "Select(*numeric)" + ("" if numeric_step is None else " | " + numeric_desc)
        return (step + (Select(*categorical) | preprocessing.OneHotEncoder()),
                f"({desc}) + (Select(*categorical) | OneHotEncoder())")

    if name in ("arf", "amf"):
        model = (forest.ARFRegressor(seed=42) if name == "arf"
                 else forest.AMFRegressor(seed=42))
        desc = f"forest.{type(model).__name__}(seed=42)"
        if not categorical:
            return model, desc
        prep, pdesc = encoded(None, "")
        return prep | model, f"{pdesc} | {desc}"
    prep, desc = encoded(preprocessing.StandardScaler(), "StandardScaler()")
    if not categorical:
        desc = "preprocessing.StandardScaler()"
    model = prep | linear_model.LinearRegression()
    desc = desc + " | linear_model.LinearRegression()"
    if name == "linreg_ts":
        return preprocessing.TargetStandardScaler(model), f"TargetStandardScaler({desc})"
    return model, desc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file")
    ap.add_argument("--label", required=True)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--features", default="")
    g.add_argument("--drop", default="")
    ap.add_argument("--categorical", default="")
    ap.add_argument("--missing", default="")
    ap.add_argument("--learners", default=",".join(ALL))
    ap.add_argument("--json", default=None)
    ap.add_argument("--max-rows", type=int, default=None)
    a = ap.parse_args()
    import river

    sl = river_peers.split_list
    cats = sl(a.categorical)
    missing = set(sl(a.missing)) | {""}
    feats, rows, labels, file_rows, _, skipped = river_peers.load(
        a.file, a.label, sl(a.features), sl(a.drop), cats, sl(a.missing), a.max_rows)
    data = []
    for r, y in zip(rows, labels):
        if y.strip() in missing:
            continue
        try:
            v = float(y)
        except ValueError:
            continue
        if math.isfinite(v):
            data.append((r, v))
    n = len(data)
    if n == 0:
        sys.exit("no records with a numeric target")
    numeric = [c for c in feats if c not in set(cats)]
    ys = [y for _, y in data]
    mean_y = sum(ys) / n
    sst = sum((y - mean_y) ** 2 for y in ys)
    results = []
    for name in sl(a.learners):
        if name not in ALL:
            sys.exit(f"unknown learner {name!r}; choose from {','.join(ALL)}")
        model, desc = make(name, numeric, [c for c in feats if c in set(cats)])
        print(f"{name}: {desc}", file=sys.stderr, flush=True)
        ae = se = 0.0
        t0 = time.perf_counter()
        for r, y in data:
            x = {k: v for k, v in zip(feats, r) if v is not None}
            p = model.predict_one(x)
            p = 0.0 if p is None or not math.isfinite(p) else p
            ae += abs(y - p)
            se += (y - p) ** 2
            model.learn_one(x, y)
        secs = time.perf_counter() - t0
        results.append({"name": name, "model": desc, "mae": ae / n, "rmse": math.sqrt(se / n),
                        "r2": 1 - se / sst if sst > 0 else None, "seconds": secs,
                        "records_per_s": n / secs if secs > 0 else None})
    f4 = lambda v: "-" if v is None else f"{v:.4f}"
    print(f"\n{os.path.basename(a.file)}: {n} records with a target, {len(feats)} features, "
          f"river {river.__version__}\n")
    print("| learner | River model | MAE | RMSE | R^2 | seconds |")
    print("|---|---|---|---|---|---|")
    for r in results:
        m = r["model"].replace("|", "\\|")
        print(f"| {r['name']} | `{m}` | {f4(r['mae'])} | {f4(r['rmse'])} | {f4(r['r2'])} | "
              f"{r['seconds']:.1f} |")
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump({"file": a.file, "rows": n, "file_rows": file_rows,
                       "skipped_empty_label": skipped, "river_version": river.__version__,
                       "label": a.label, "features": feats, "categorical": cats,
                       "learners": results}, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    river_peers.ensure_venv(__file__)
    main()
