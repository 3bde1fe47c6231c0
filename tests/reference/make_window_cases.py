#!/usr/bin/env python3
"""Writes the randomized window data-file cases tests/data/cases/windows-gen-*/.

Each case is a spec.yaml, an input.jsonl and the expected.jsonl /
expected-late.jsonl that tests/reference/windows_reference.py computes from
them. Generation is seeded, so running this again rewrites the same files.

The cases together cover: tumbling, hopping (slide dividing the size or not)
and session windows; every aggregate (count of events and of a field, sum,
avg, min, max, stddev, count_distinct, first, last, quantile) over optional
fields with nulls; events in order, out of order within max_out_of_orderness,
and beyond it (within a window's allowed lateness, beyond it, and beyond the
source's allowed lateness); late policies drop and side_output; retraction
on and off; one and two key fields; session merges, including merges of
sessions that already fired. A few malformed lines are mixed in (the harness
skips them).

Quantile aggregates are named p<digits> (p50, p90): the harness compares those
within the sketch's 1% relative error (see tests/data/cases/README.md).

Usage: make_window_cases.py [CASES_DIR]   (default: tests/data/cases)
"""

import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import windows_reference  # noqa: E402

BASE_TIME = 1767225600000  # 2026-01-01T00:00:00Z

# Written as a block map: yaml-cpp rejects a plain `double?` inside a flow map.
SCHEMA = [("id", "string"), ("user", "string"), ("region", "int64"), ("amount", "double?"),
          ("qty", "int64?"), ("tag", "string?"), ("ok", "bool?"), ("ts", "int64")]

AGGS = [
    "{name: n, agg: count}",
    "{name: n_amount, agg: count, field: amount}",
    "{name: total, agg: sum, field: amount}",
    "{name: mean, agg: avg, field: amount}",
    "{name: lo, agg: min, field: amount}",
    "{name: hi, agg: max, field: qty}",
    "{name: sd, agg: stddev, field: amount}",
    "{name: tags, agg: count_distinct, field: tag}",
    "{name: first_amount, agg: first, field: amount}",
    "{name: last_tag, agg: last, field: tag}",
    "{name: first_ok, agg: first, field: ok}",
    "{name: last_qty, agg: last, field: qty}",
    "{name: p50, agg: quantile, q: 0.5, field: amount}",
    "{name: p90, agg: quantile, q: 0.9, field: qty}",
]

SMALL_AGGS = [
    "{name: n, agg: count}",
    "{name: total, agg: sum, field: amount}",
    "{name: hi, agg: max, field: amount}",
    "{name: last_tag, agg: last, field: tag}",
    "{name: p90, agg: quantile, q: 0.9, field: amount}",
]


def window_yaml(w):
    lines = [f"  - name: {w['name']}", f"    key: [{', '.join(w['key'])}]", f"    type: {w['type']}"]
    for k in ("size", "slide", "gap"):
        if k in w:
            lines.append(f"    {k}: {w[k]}")
    lines.append("    aggs:")
    for a in w.get("aggs", AGGS):
        lines.append(f"      - {a}")
    lines.append(f"    allowed_lateness: {w['lateness']}")
    lines.append(f"    late: {w['late']}")
    lines.append(f"    retract: {'true' if w['retract'] else 'false'}")
    return "\n".join(lines)


def spec_yaml(case):
    src = case["source"]
    out = ["source:", "  time: ts",
           f"  max_out_of_orderness: {src['ooo']}",
           f"  allowed_lateness: {src['lateness']}",
           "  late: drop",
           "  schema:"]
    out += [f"    {name}: {t}" for name, t in SCHEMA]
    out += ["windows:"]
    out += [window_yaml(w) for w in case["windows"]]
    return "\n".join(out) + "\n"


def ms(text):
    return windows_reference.duration_ms(text)


def make_events(rng, case):
    """Event times in event-time order, then shuffled into arrival order by delays."""
    n, keys = case["events"], case["keys"]
    users = [f"u{i}" for i in range(keys)]
    t = BASE_TIME + rng.randrange(0, 60000)
    base = []
    # Keys are active in bursts: within a burst events are closer than the
    # session gap; between bursts a key rests a little longer than the gap, so
    # that a delayed event falling in the rest merges two sessions.
    active = {}
    gap = case.get("burst_gap", 30000)
    for i in range(n):
        t += rng.choice(case["steps"])
        user = rng.choice(users)
        last = active.get(user)
        if last is not None and t - last > gap // 2 and rng.random() < 0.5:
            # rest: jump this key's next event a bit past the gap
            et = last + gap + rng.randrange(1, gap // 3 + 2)
            t = max(t, et)
        active[user] = t
        base.append((t, user, i))
    events = []
    for t, user, i in base:
        ev = {"id": f"e{i}", "user": user, "region": rng.randrange(3)}
        ev["amount"] = round(rng.uniform(0.5, 400.0), 2) if rng.random() > case["nulls"] else None
        ev["qty"] = rng.randrange(1, 40) if rng.random() > case["nulls"] else None
        ev["tag"] = rng.choice(["a", "b", "c", "d", "e", "f\"q", "g\\h"]) if rng.random() > case["nulls"] else None
        ev["ok"] = rng.random() < 0.5 if rng.random() > case["nulls"] else None
        for k in ("amount", "qty", "tag", "ok"):
            if ev[k] is None and rng.random() < 0.5:
                del ev[k]  # missing and null both mean no value
        ev["ts"] = t
        events.append(ev)
    # Arrival order: most events on time, some out of order within the bound,
    # some delayed past it by up to `max_delay`.
    ooo = ms(case["source"]["ooo"])
    keyed = []
    for idx, ev in enumerate(events):
        r = rng.random()
        if r < case["p_jitter"]:
            d = rng.randrange(0, ooo + 1)
        elif r < case["p_jitter"] + case["p_late"]:
            d = rng.randrange(ooo, case["max_delay"] + 1)
        else:
            d = 0
        keyed.append((ev["ts"] + d, idx, ev))
    keyed.sort(key=lambda x: (x[0], x[1]))
    return [ev for _, _, ev in keyed]


CASES = [
    {"name": "windows-gen-01-in-order", "seed": 101, "events": 300, "keys": 6,
     "steps": [50, 200, 900, 2500], "nulls": 0.1, "p_jitter": 0.0, "p_late": 0.0, "max_delay": 0,
     "source": {"ooo": "2s", "lateness": "0s"},
     "windows": [
         {"name": "tumble_10s", "key": ["user"], "type": "tumbling", "size": "10s",
          "lateness": "0s", "late": "drop", "retract": False},
         {"name": "hop_30s_10s", "key": ["user"], "type": "hopping", "size": "30s", "slide": "10s",
          "lateness": "0s", "late": "side_output", "retract": False},
         {"name": "session_20s", "key": ["user"], "type": "session", "gap": "20s",
          "lateness": "0s", "late": "drop", "retract": True, "burst_gap": 20000},
     ]},
    {"name": "windows-gen-02-out-of-order-within", "seed": 202, "events": 500, "keys": 10,
     "steps": [20, 100, 400, 1500], "nulls": 0.15, "p_jitter": 0.4, "p_late": 0.0, "max_delay": 0,
     "source": {"ooo": "5s", "lateness": "0s"},
     "windows": [
         {"name": "tumble_15s", "key": ["user"], "type": "tumbling", "size": "15s",
          "lateness": "10s", "late": "side_output", "retract": True},
         {"name": "hop_60s_20s", "key": ["user", "region"], "type": "hopping", "size": "60s",
          "slide": "20s", "lateness": "5s", "late": "drop", "retract": False},
         {"name": "session_30s", "key": ["user"], "type": "session", "gap": "30s",
          "lateness": "20s", "late": "side_output", "retract": True},
     ]},
    {"name": "windows-gen-03-beyond-bounds", "seed": 303, "events": 900, "keys": 12,
     "steps": [10, 100, 300, 1200], "nulls": 0.1, "p_jitter": 0.2, "p_late": 0.2,
     "max_delay": 120000,
     "source": {"ooo": "3s", "lateness": "90s"},
     "windows": [
         {"name": "tumble_20s", "key": ["user"], "type": "tumbling", "size": "20s",
          "lateness": "30s", "late": "side_output", "retract": False},
         {"name": "hop_45s_15s", "key": ["user"], "type": "hopping", "size": "45s",
          "slide": "15s", "lateness": "30s", "late": "side_output", "retract": True},
         {"name": "session_25s", "key": ["user"], "type": "session", "gap": "25s",
          "lateness": "60s", "late": "drop", "retract": False},
     ]},
    {"name": "windows-gen-04-beyond-retract", "seed": 404, "events": 1000, "keys": 20,
     "steps": [5, 50, 200, 800], "nulls": 0.2, "p_jitter": 0.25, "p_late": 0.15,
     "max_delay": 200000,
     "source": {"ooo": "4s", "lateness": "3m"},
     "windows": [
         {"name": "tumble_30s", "key": ["user", "region"], "type": "tumbling", "size": "30s",
          "lateness": "1m", "late": "drop", "retract": True},
         {"name": "hop_50s_20s", "key": ["user"], "type": "hopping", "size": "50s",
          "slide": "20s", "lateness": "40s", "late": "drop", "retract": True},
         {"name": "session_15s", "key": ["user", "region"], "type": "session", "gap": "15s",
          "lateness": "45s", "late": "side_output", "retract": True},
     ]},
    {"name": "windows-gen-05-session-merges", "seed": 505, "events": 700, "keys": 5,
     "steps": [100, 500, 2000], "nulls": 0.1, "p_jitter": 0.1, "p_late": 0.3,
     "max_delay": 60000, "burst_gap": 10000,
     "source": {"ooo": "1s", "lateness": "2m"},
     "windows": [
         {"name": "session_10s_retract", "key": ["user"], "type": "session", "gap": "10s",
          "lateness": "40s", "late": "side_output", "retract": True},
         {"name": "session_10s_update", "key": ["user"], "type": "session", "gap": "10s",
          "lateness": "40s", "late": "drop", "retract": False},
         {"name": "session_10s_no_lateness", "key": ["user"], "type": "session", "gap": "10s",
          "lateness": "0s", "late": "side_output", "retract": True},
     ]},
    {"name": "windows-gen-06-sparse-nulls", "seed": 606, "events": 400, "keys": 40,
     "steps": [500, 3000, 9000], "nulls": 0.6, "p_jitter": 0.3, "p_late": 0.2,
     "max_delay": 90000,
     "source": {"ooo": "5s", "lateness": "2m"},
     "windows": [
         {"name": "tumble_1m", "key": ["user"], "type": "tumbling", "size": "1m",
          "lateness": "30s", "late": "side_output", "retract": True},
         {"name": "hop_50s_20s", "key": ["region"], "type": "hopping", "size": "50s",
          "slide": "20s", "lateness": "20s", "late": "side_output", "retract": False},
         {"name": "session_40s", "key": ["user"], "type": "session", "gap": "40s",
          "lateness": "30s", "late": "side_output", "retract": False, "burst_gap": 40000},
     ]},
    {"name": "windows-gen-07-many-keys", "seed": 707, "events": 2000, "keys": 150,
     "steps": [1, 10, 40, 150], "nulls": 0.1, "p_jitter": 0.3, "p_late": 0.05,
     "max_delay": 40000,
     "source": {"ooo": "2s", "lateness": "30s"},
     "windows": [
         {"name": "tumble_5s", "key": ["user"], "type": "tumbling", "size": "5s",
          "lateness": "5s", "late": "side_output", "retract": True, "aggs": SMALL_AGGS},
         {"name": "hop_20s_5s", "key": ["region"], "type": "hopping", "size": "20s",
          "slide": "5s", "lateness": "10s", "late": "drop", "retract": True, "aggs": SMALL_AGGS},
         {"name": "session_8s", "key": ["user"], "type": "session", "gap": "8s",
          "lateness": "10s", "late": "side_output", "retract": True, "aggs": SMALL_AGGS},
     ]},
]


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "data", "cases")
    for case in CASES:
        rng = random.Random(case["seed"])
        if "burst_gap" not in case:
            gaps = [ms(w["gap"]) for w in case["windows"] if w["type"] == "session"]
            case["burst_gap"] = gaps[0] if gaps else 30000
        events = make_events(rng, case)
        d = os.path.join(out_dir, case["name"])
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "spec.yaml"), "w") as f:
            f.write(spec_yaml(case))
        with open(os.path.join(d, "input.jsonl"), "w") as f:
            for i, ev in enumerate(events):
                f.write(json.dumps(ev, separators=(", ", ": ")) + "\n")
                if i % 397 == 200:
                    f.write('{"id": "bad", "user": 7, "ts": "not a time"}\n')
                    f.write("not json at all\n")
        out, late = windows_reference.run(d)
        with open(os.path.join(d, "expected.jsonl"), "w") as f:
            f.writelines(windows_reference.dumps(r) + "\n" for r in out)
        with open(os.path.join(d, "expected-late.jsonl"), "w") as f:
            f.writelines(windows_reference.dumps(r) + "\n" for r in late)
        with open(os.path.join(d, "compare.json"), "w") as f:
            json.dump({"relative": {"p50": 0.0101, "p90": 0.0101}}, f, indent=1)
            f.write("\n")
        kinds = {}
        for r in out:
            kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
        print(f"{case['name']}: {len(events)} events, {len(out)} results {kinds}, {len(late)} late")


if __name__ == "__main__":
    main()
