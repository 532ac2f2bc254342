#!/usr/bin/env python3
"""NYC flights 2013 as a delayed-label stream, for `relearn run` with `[labels] enabled`.

Each flight becomes a feature record at its scheduled departure (what is known at take-off:
date, hour, carrier, origin, destination, distance, departure delay) and, for flights that
arrived, a label record at its scheduled arrival (the key and `late` = arrival delay > 15
minutes). Records are ordered by those times (stable), so a label comes a flight's duration
after its features; cancelled and diverted flights never get one (they expire).

    python3 benches/flights_delayed.py ../shared/datasets/streams/nycflights13_flights/nycflights13_flights.csv.gz OUT_DIR

writes OUT_DIR/delayed.jsonl (features and label records) and OUT_DIR/immediate.jsonl (the
same flights, the label in the feature record: the no-delay reference), plus relearn.toml
configs for both, and OUT_DIR/labeled.csv.gz (the flights that arrived, with their label:
`relearn eval` and benches/river_peers.py compare on it). Standard library only.
"""
import csv
import gzip
import json
import os
import sys


def minutes(hhmm):
    v = int(hhmm)
    return (v // 100) * 60 + v % 100


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    import datetime

    rows = []
    with gzip.open(src, "rt", newline="") as f:
        for r in csv.DictReader(f):
            day = datetime.date(int(r["year"]), int(r["month"]), int(r["day"]))
            base = (day - datetime.date(2013, 1, 1)).days * 1440
            dep = base + minutes(r["sched_dep_time"])
            arr = base + minutes(r["sched_arr_time"])
            if arr < dep:
                arr += 1440
            rows.append((dep, arr, r))
    rows.sort(key=lambda t: t[0])
    events, immediate = [], []
    for i, (dep, arr, r) in enumerate(rows):
        key = f"f{i}"
        feats = {
            "id": key,
            "month": int(r["month"]),
            "weekday": datetime.date(int(r["year"]), int(r["month"]), int(r["day"])).weekday(),
            "hour": int(r["hour"]),
            "distance": float(r["distance"]),
            "dep_delay": None if r["dep_delay"] == "NA" else float(r["dep_delay"]),
            "carrier": r["carrier"],
            "origin": r["origin"],
            "dest": r["dest"],
        }
        label = None if r["arr_delay"] == "NA" else ("yes" if float(r["arr_delay"]) > 15 else "no")
        events.append((dep, 0, i, json.dumps(feats)))
        if label is not None:
            events.append((arr, 1, i, json.dumps({"id": key, "late": label})))
        immediate.append(json.dumps(dict(feats, late=label)))
    events.sort()
    with open(os.path.join(out, "delayed.jsonl"), "w") as f:
        for e in events:
            f.write(e[3] + "\n")
    with open(os.path.join(out, "immediate.jsonl"), "w") as f:
        for line in immediate:
            f.write(line + "\n")
    # The arrived flights with their label, as CSV, for `relearn eval` and the River peers
    # (benches/river_peers.py) on identical records.
    columns = ["month", "weekday", "hour", "distance", "dep_delay", "carrier", "origin", "dest", "late"]
    with gzip.open(os.path.join(out, "labeled.csv.gz"), "wt") as f:
        f.write(",".join(columns) + "\n")
        for line in immediate:
            r = json.loads(line)
            if r["late"] is not None:
                f.write(",".join("" if r[c] is None else str(r[c]) for c in columns) + "\n")
    for name, delayed in (("delayed", True), ("immediate", False)):
        with open(os.path.join(out, f"{name}.toml"), "w") as f:
            f.write(
                f"""[schema]
format = "json"
features = ["month", "weekday", "hour", "distance", "dep_delay"]
categorical = ["carrier", "origin", "dest"]
label = "late"
classes = ["no", "yes"]
key = "id"
[labels]
enabled = {"true" if delayed else "false"}
[file]
path = "{os.path.abspath(os.path.join(out, name + '.jsonl'))}"
predictions_path = "{os.path.abspath(os.path.join(out, name + '-predictions.jsonl'))}"
[store]
path = "{os.path.abspath(os.path.join(out, name + '-store'))}"
[http]
listen = "127.0.0.1:0"
"""
            )
    print(f"{len(rows)} flights, {len(events)} delayed-stream records -> {out}")


if __name__ == "__main__":
    main()
