#!/usr/bin/env python3
"""Writes randomized per-event feature cases into tests/data/cases/perevent-gen-*/.

Each case is seeded and deterministic: rerunning this script rewrites the same
files. Inputs are out of order within and beyond the lateness bounds, contain
malformed lines, null optional fields and ties in event time; expected outputs
come from perevent_reference.py (a brute force, independent of the engine).

  python3 tests/reference/make_perevent_cases.py
"""
import datetime
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import perevent_reference as ref  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "cases")
T0 = 1767225600000  # 2026-01-01T00:00:00Z


def yaml_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def yaml_flow(d):
    parts = []
    for k, v in d.items():
        if isinstance(v, list):
            v = "[" + ", ".join(yaml_scalar(x) for x in v) + "]"
        elif isinstance(v, dict):
            v = yaml_flow(v)
        else:
            v = yaml_scalar(v)
        parts.append(f"{k}: {v}")
    return "{" + ", ".join(parts) + "}"


def write_spec(path, spec):
    src = spec["source"]
    lines = ["source:"]
    for k in ("time", "max_out_of_orderness", "allowed_lateness", "late"):
        lines.append(f"  {k}: {src[k]}")
    lines.append(f"  schema: {yaml_flow(src['schema'])}")
    lines.append("features:")
    for f in spec["features"]:
        lines.append(f"  - {yaml_flow(f)}")
    with open(path, "w") as out:
        out.write("\n".join(lines) + "\n")


def rfc3339(ms):
    dt = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def make_events(rng, n, cards, merchants, step_ms, disorder, null_rate, ties, rfc):
    """disorder: list of (probability, max_delay_ms) for events sent back in time."""
    lines = []
    t = T0
    countries = ["FR", "DE", "US", "GB"]
    for i in range(n):
        if not ties or rng.random() < 0.6:
            t += rng.randint(0, step_ms)
        et = t
        r = rng.random()
        acc = 0.0
        for p, delay in disorder:
            acc += p
            if r < acc:
                et = t - rng.randint(1, delay)
                break
        event = {
            "id": f"e{i}",
            "card_id": f"c{rng.randrange(cards)}",
            "merchant_id": f"m{rng.randrange(merchants)}",
            "amount": round(rng.lognormvariate(3.5, 1.0), 2),
            "country": rng.choice(countries),
            "present": rng.random() < 0.5,
            "ts": rfc3339(et) if rfc else et,
        }
        if rng.random() < null_rate:
            event["amount"] = None
        if rng.random() < null_rate:
            del event["country"]
        lines.append(json.dumps(event))
        if rng.random() < 0.01:
            lines.append(rng.choice([
                "not json",
                '{"id": "bad%d", "merchant_id": "m1", "amount": 1.0, "ts": %d}' % (i, t),
                '{"id": "bad%d", "card_id": "c1", "merchant_id": "m1", "amount": "x", "ts": %d}'
                % (i, t),
                '{"id": "bad%d", "card_id": "c1", "merchant_id": 7, "ts": %d}' % (i, t),
                '{"id": "bad%d", "card_id": "c1"' % i,
                '{"id": "bad%d", "card_id": "c1", "merchant_id": "m1", "amount": 2.0}' % i,
            ]))
    return lines


ALL_AGGS = [
    ("cnt", "count", None),
    ("sum", "sum", "amount"),
    ("avg", "avg", "amount"),
    ("min", "min", "amount"),
    ("max", "max", "amount"),
    ("std", "stddev", "amount"),
    ("dm", "count_distinct", "merchant_id"),
    ("first", "first", "amount"),
    ("last", "last", "amount"),
    ("p90", "quantile", "amount"),
    ("prevamt", "prev", "amount"),
    ("since", "time_since_last", None),
    ("namt", "count", "amount"),
    ("fcountry", "first", "country"),
    ("lcountry", "last", "country"),
    ("prevcountry", "prev", "country"),
    ("dcountry", "count_distinct", "country"),
    ("prevpresent", "prev", "present"),
]


def features_for(rng, windows, keys):
    feats = []
    for key_name, key in keys:
        for short, agg, field in ALL_AGGS:
            w = rng.choice(windows)
            f = {"name": f"{key_name}_{short}_{w}", "key": key, "agg": agg}
            if field:
                f["field"] = field
            f["window"] = w
            if agg == "quantile":
                f["q"] = 0.9
            feats.append(f)
    return feats


def write_case(name, spec, lines):
    d = os.path.join(ROOT, name)
    os.makedirs(d, exist_ok=True)
    write_spec(os.path.join(d, "spec.yaml"), spec)
    with open(os.path.join(d, "input.jsonl"), "w") as out:
        out.write("\n".join(lines) + "\n")
    outputs, late, dead = ref.run(spec, lines)
    with open(os.path.join(d, "expected.jsonl"), "w") as out:
        for o in outputs:
            out.write(json.dumps(o) + "\n")
    with open(os.path.join(d, "expected-late.jsonl"), "w") as out:
        if spec["source"]["late"] == "side_output":
            for e in late:
                out.write(json.dumps(e) + "\n")
    with open(os.path.join(d, "expected-dead-letters"), "w") as out:
        out.write(f"{dead}\n")
    quantiles = {f["name"]: 0.0101 for f in spec["features"] if f["agg"] == "quantile"}
    with open(os.path.join(d, "compare.json"), "w") as out:
        json.dump({"relative": quantiles}, out, indent=1)
        out.write("\n")
    print(f"{name}: {len(lines)} lines, {len(outputs)} outputs, {len(late)} late, {dead} dead")


def source(late, ooo="5s", lateness="1m", rfc=False):
    return {
        "time": "ts", "max_out_of_orderness": ooo, "allowed_lateness": lateness, "late": late,
        "schema": {"id": "string", "card_id": "string", "merchant_id": "string",
                   "amount": "double?", "country": "string?", "present": "bool",
                   "ts": "string" if rfc else "int64"},
    }


def main():
    keys = [("c", ["card_id"]), ("m", ["merchant_id"]), ("cm", ["card_id", "merchant_id"])]
    cases = [
        # name, seed, late policy, events, cards, merchants, step, disorder, nulls, ties, rfc, ooo, L
        ("perevent-gen-side-output", 1, "side_output", 1500, 12, 6, 4000,
         [(0.15, 4000), (0.05, 60000), (0.03, 400000)], 0.05, False, False, "5s", "1m"),
        ("perevent-gen-drop", 2, "drop", 1500, 8, 4, 3000,
         [(0.2, 5000), (0.1, 30000), (0.05, 200000)], 0.1, False, False, "10s", "20s"),
        ("perevent-gen-in-order", 3, "drop", 2000, 4, 3, 2000, [], 0.02, False, False, "1s", "0s"),
        ("perevent-gen-ties", 4, "side_output", 1200, 6, 3, 500,
         [(0.2, 1500)], 0.05, True, False, "2s", "5s"),
        ("perevent-gen-rfc3339", 5, "side_output", 800, 10, 5, 6000,
         [(0.1, 5000), (0.05, 600000)], 0.05, False, True, "5s", "2m"),
        ("perevent-gen-wide-disorder", 6, "side_output", 1500, 5, 3, 1000,
         [(0.3, 50000), (0.1, 200000)], 0.05, False, False, "1m", "2m"),
    ]
    windows = ["30s", "5m", "1h", "1d"]
    for (name, seed, late, n, cards, merchants, step, disorder, nulls, ties, rfc, ooo,
         lateness) in cases:
        rng = random.Random(seed)
        spec = {"source": source(late, ooo, lateness, rfc),
                "features": features_for(rng, windows, keys)}
        lines = make_events(rng, n, cards, merchants, step, disorder, nulls, ties, rfc)
        write_case(name, spec, lines)


if __name__ == "__main__":
    main()
