#!/usr/bin/env python3
"""Writes three streams that scikit-multiflow's wheel ships as CSV files with a header, in
their file order, so that `relearn eval` and the peer scripts run on identical records: a
check of relearn's defaults on streams they were not chosen on.

    benches/skmultiflow_streams.py OUT_DIR

Streams (scikit-multiflow 0.1.3, `skmultiflow/data/datasets/`, copied as they are):
    covtype.csv         Forest Covertype: 581,012 records, 54 numeric features (10
                        measurements, 44 zero/one indicators), 7 classes (Cover_Type)
    weather.csv         NOAA weather (Elwell and Polikar): 18,159 days, 8 numeric features,
                        rain or not (target)
    moving_squares.csv  Moving squares (Losing et al.): 200,000 points, 2 numeric features,
                        4 classes (target), squares that move all the time

The wheel (16 MB) comes from PyPI through `pip download` (the python3 running this script,
or the venv `benches/river_peers.py` creates) into ~/.cache/relearn/skmultiflow and is
checked against its SHA-256; the CSV files are checked too.
"""
import hashlib
import os
import subprocess
import sys
import zipfile

WHEEL = "scikit_multiflow-0.1.3-cp35-cp35m-manylinux1_x86_64.whl"
WHEEL_SHA256 = "ee644a48b3b75b10410a7b015dbbec2a1d264de91158e47f31ebb7ccf2a07af3"
STREAMS = {
    "covtype.csv": "ea35ca6820fcbe0bdc6707e9ed31e11a9de84f07d88da73b511c737383c271a6",
    "weather.csv": "3c38f05bdc5c4cb115f122414c66976e3662c875d96d7199d9e47fc46aff150e",
    "moving_squares.csv": "d982e203c9847b50b9865bd01c31df59e50bef4c792a314d670b1344a43578f4",
}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_wheel(cache):
    path = os.path.join(cache, WHEEL)
    if os.path.exists(path) and sha256(path) == WHEEL_SHA256:
        return path
    os.makedirs(cache, exist_ok=True)
    pips = [[sys.executable, "-m", "pip"]]
    venv_pip = os.path.expanduser("~/.cache/relearn/river-venv/bin/pip")
    if os.path.exists(venv_pip):
        pips.append([venv_pip])
    args = ["download", "--no-deps", "--only-binary", ":all:", "--python-version", "3.5",
            "--platform", "manylinux1_x86_64", "--implementation", "cp", "--abi", "cp35m",
            "scikit-multiflow==0.1.3", "-d", cache, "-q"]
    for pip in pips:
        if subprocess.run(pip + args).returncode == 0 and os.path.exists(path):
            break
    if not os.path.exists(path):
        sys.exit(f"could not download {WHEEL} with pip (python3 -m pip, or the venv of "
                 "benches/river_peers.py: run that script once to create it)")
    got = sha256(path)
    if got != WHEEL_SHA256:
        sys.exit(f"{path}: SHA-256 {got}, expected {WHEEL_SHA256}")
    return path


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    wheel = fetch_wheel(os.path.expanduser("~/.cache/relearn/skmultiflow"))
    with zipfile.ZipFile(wheel) as z:
        for name, want in STREAMS.items():
            dst = os.path.join(out, name)
            with z.open(f"skmultiflow/data/datasets/{name}") as src, open(dst, "wb") as f:
                f.write(src.read())
            got = sha256(dst)
            if got != want:
                sys.exit(f"{dst}: SHA-256 {got}, expected {want}")
            with open(dst) as f:
                print(f"{dst}: {sum(1 for _ in f) - 1} rows", file=sys.stderr)


if __name__ == "__main__":
    main()
