#!/usr/bin/env python3
"""Writes the small real streams that River's wheel ships (no download) as CSV files with a
header, in River's order, so that `relearn eval` and the peer scripts run on identical
records: a check of relearn's defaults on streams they were not chosen on.

    benches/river_bundled.py OUT_DIR

Streams (River 0.26.1, `river.datasets`):
    phishing.csv       Phishing: 1,250 web pages, 9 numeric features, label is_phishing
    bananas.csv        Bananas: 5,300 points, 2 numeric features, label y (-1 / 1)
    segment.csv        ImageSegments: 2,310 regions, 18 numeric features, 7 classes (category)
    chick-weights.csv  ChickWeights: 578 weighings, time/chick/diet, numeric target weight

The venv is the one `benches/river_peers.py` creates (~/.cache/relearn/river-venv).
"""
import csv
import gzip
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from river_peers import ensure_venv  # noqa: E402


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    import river.datasets as d

    root = os.path.dirname(d.__file__)
    with gzip.open(os.path.join(root, "phishing.csv.gz"), "rb") as src, open(
        os.path.join(out, "phishing.csv"), "wb"
    ) as dst:
        shutil.copyfileobj(src, dst)
    shutil.copy(os.path.join(root, "chick-weights.csv"), os.path.join(out, "chick-weights.csv"))
    # Bananas is a libsvm file inside a zip; segment a CSV inside a zip.
    with open(os.path.join(out, "bananas.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["x1", "x2", "y"])
        for x, y in d.Bananas():
            w.writerow([x["1"], x["2"], 1 if y else -1])
    with open(os.path.join(out, "segment.csv"), "w", newline="") as f:
        w = None
        for x, y in d.ImageSegments():
            if w is None:
                w = csv.writer(f, lineterminator="\n")
                w.writerow(list(x) + ["category"])
            w.writerow(list(x.values()) + [y])
    for name in ("phishing.csv", "bananas.csv", "segment.csv", "chick-weights.csv"):
        with open(os.path.join(out, name)) as f:
            print(f"{out}/{name}: {sum(1 for _ in f) - 1} rows", file=sys.stderr)


if __name__ == "__main__":
    ensure_venv(os.path.abspath(__file__))
    main()
