#!/usr/bin/env python3
"""Brute-force reference for millrace windowed results.

Given a case folder (spec.yaml or spec.json, input.jsonl) it writes the window
result records (expected.jsonl) and the late records (expected-late.jsonl) that
the semantics of docs/windows.md give. It recomputes every result from the
window's list of events, with no incremental state, so that it can check the
incremental operator in src/millrace/window/.

Model (one partition):
  * watermark starts at -infinity; after each accepted event it becomes
    max(watermark, max event time - source.max_out_of_orderness);
  * an event older than watermark - source.allowed_lateness is late at the
    source and reaches no window;
  * per window spec and event, in input order: late check against the
    watermark before the event, add, corrections, advance the watermark,
    fire finals, drop state past end + allowed_lateness;
  * the end of the input raises the watermark to +infinity.

Usage: windows_reference.py CASE_DIR [--write]  (prints to stdout unless --write)
"""

import json
import math
import os
import re
import sys

NEG_INF = -(1 << 62)
POS_INF = 1 << 62

# --- a small YAML subset: block maps and lists, flow {..} and [..], scalars ---


def _scalar(text):
    text = text.strip()
    if text.startswith('"') or text.startswith("'"):
        return text[1:-1]
    if text in ("true", "True"):
        return True
    if text in ("false", "False"):
        return False
    if text in ("null", "~", ""):
        return None
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d*([eE][-+]?\d+)?|-?\d+[eE][-+]?\d+", text):
        return float(text)
    return text


def _flow(text, i):
    """Parses a flow value at text[i]; returns (value, next index)."""
    while text[i] == " ":
        i += 1
    if text[i] == "{":
        out, i = {}, i + 1
        while True:
            while text[i] in " ,":
                i += 1
            if text[i] == "}":
                return out, i + 1
            j = text.index(":", i)
            key = text[i:j].strip()
            val, i = _flow(text, j + 1)
            out[key] = val
    if text[i] == "[":
        out, i = [], i + 1
        while True:
            while text[i] in " ,":
                i += 1
            if text[i] == "]":
                return out, i + 1
            val, i = _flow(text, i)
            out.append(val)
    j = i
    while j < len(text) and text[j] not in ",}]":
        j += 1
    return _scalar(text[i:j]), j


def _value(text):
    text = text.strip()
    if text.startswith("{") or text.startswith("["):
        return _flow(text, 0)[0]
    return _scalar(text)


def parse_yaml(text):
    lines = []
    for raw in text.splitlines():
        line = re.sub(r"\s+#.*$", "", raw.rstrip())
        if line.strip() and not line.strip().startswith("#"):
            lines.append((len(line) - len(line.lstrip()), line.strip()))
    pos = [0]

    def block(indent):
        if pos[0] >= len(lines):
            return None
        if lines[pos[0]][1].startswith("- "):
            out = []
            while pos[0] < len(lines) and lines[pos[0]][0] == indent and lines[pos[0]][1].startswith("- "):
                ind, body = lines[pos[0]]
                rest = body[2:]
                if re.match(r"^[\w.-]+:(\s|$)", rest):
                    # A mapping whose first key sits on the dash line.
                    lines[pos[0]] = (ind + 2, rest)
                    out.append(block(ind + 2))
                else:
                    pos[0] += 1
                    out.append(_value(rest))
            return out
        out = {}
        while pos[0] < len(lines) and lines[pos[0]][0] == indent:
            _, body = lines[pos[0]]
            key, _, rest = body.partition(":")
            pos[0] += 1
            if rest.strip():
                out[key.strip()] = _value(rest)
            elif pos[0] < len(lines) and lines[pos[0]][0] > indent:
                out[key.strip()] = block(lines[pos[0]][0])
            elif pos[0] < len(lines) and lines[pos[0]][0] == indent and lines[pos[0]][1].startswith("- "):
                out[key.strip()] = block(indent)
            else:
                out[key.strip()] = None
        return out

    return block(lines[0][0]) if lines else {}


def duration_ms(v):
    if isinstance(v, int):
        return v
    total, units = 0, {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000}
    for num, unit in re.findall(r"(\d+)(ms|s|m|h|d)", v):
        total += int(num) * units[unit]
    return total


NUMERIC = ("sum", "avg", "mean", "min", "max", "stddev", "quantile")

# --- aggregates, each computed from the full list of a window's events ---


def aggregate(agg, events):
    """events: list of (seq, time, event dict) in any order."""
    kind, field = agg["agg"], agg.get("field")
    if kind == "count":
        if field is None:
            return len(events)
        return sum(1 for _, _, e in events if e.get(field) is not None)
    vals = [(t, s, e[field]) for s, t, e in events if e.get(field) is not None]
    nums = [float(v) for _, _, v in vals] if kind in NUMERIC else []
    if kind == "sum":
        return math.fsum(nums)
    if kind == "count_distinct":
        return len(set(json.dumps(v) for _, _, v in vals))
    if not vals:
        return None
    if kind in ("avg", "mean"):
        return math.fsum(nums) / len(nums)
    if kind == "min":
        return min(nums)
    if kind == "max":
        return max(nums)
    if kind == "stddev":
        mean = math.fsum(nums) / len(nums)
        return math.sqrt(math.fsum((x - mean) ** 2 for x in nums) / len(nums))
    if kind == "first":
        return min(vals, key=lambda x: (x[0], x[1]))[2]
    if kind == "last":
        return max(vals, key=lambda x: (x[0], x[1]))[2]
    if kind == "quantile":
        s = sorted(nums)
        return s[int(math.floor(agg["q"] * (len(s) - 1)))]
    raise ValueError("unknown agg " + kind)


class Instance:
    def __init__(self, key, start, end):
        self.key, self.start, self.end = key, start, end
        self.events = []
        self.fired = False
        self.last = None  # (start, end, values) of the last record emitted


class WindowRef:
    def __init__(self, spec, out, late_out):
        self.spec = spec
        self.name = spec["name"]
        self.keys = spec["key"] if isinstance(spec["key"], list) else [spec["key"]]
        self.type = spec["type"]
        self.size = duration_ms(spec.get("size", 0) or 0)
        self.slide = duration_ms(spec.get("slide", 0) or 0) if self.type == "hopping" else self.size
        self.gap = duration_ms(spec.get("gap", 0) or 0)
        self.lateness = duration_ms(spec.get("allowed_lateness", 0) or 0)
        self.late = spec.get("late", "drop")
        self.retract = bool(spec.get("retract", False))
        self.aggs = spec["aggs"]
        self.instances = {}  # tumbling/hopping: (key, start) -> Instance
        self.sessions = {}  # session: key -> [Instance]
        self.out, self.late_out = out, late_out

    def values(self, inst):
        return [aggregate(a, inst.events) for a in self.aggs]

    def emit(self, inst, kind, bounds_values=None):
        if bounds_values is None:
            bounds_values = (inst.start, inst.end, self.values(inst))
        start, end, vals = bounds_values
        rec = {"window": self.name}
        for k, v in zip(self.keys, inst.key):
            rec[k] = v
        rec["window_start"], rec["window_end"] = start, end
        for a, v in zip(self.aggs, vals):
            rec[a["name"]] = v
        rec["kind"] = kind
        self.out.append(rec)
        if kind != "retract":
            inst.last = bounds_values

    def correct(self, inst):
        if self.retract:
            self.emit(inst, "retract", inst.last)
        self.emit(inst, "update")

    def on_event(self, seq, t, ev, raw, wm):
        key = tuple(ev.get(k) for k in self.keys)
        item = (seq, t, ev)
        if self.type == "session":
            live = self.sessions.setdefault(key, [])
            touching = [s for s in live if s.start < t + self.gap and t < s.end]
            if not touching and t + self.gap + self.lateness <= wm:
                return self.late_event(raw, wm)
            merged = Instance(key, 0, 0)
            for s in touching:
                merged.events += s.events
                live.remove(s)
            merged.events.append(item)
            merged.start = min(x[1] for x in merged.events)
            merged.end = max(x[1] for x in merged.events) + self.gap
            fired = [s for s in touching if s.fired]
            live.append(merged)
            if fired:
                if self.retract:
                    for s in fired:
                        self.emit(s, "retract", s.last)
                merged.fired = True
                self.emit(merged, "update")
            return
        starts = []
        n = (t - self.size) // self.slide + 1
        while n * self.slide <= t:
            if n * self.slide + self.size > t:
                starts.append(n * self.slide)
            n += 1
        joined = False
        for start in starts:
            end = start + self.size
            if end + self.lateness <= wm:
                continue
            joined = True
            inst = self.instances.setdefault((key, start), Instance(key, start, end))
            inst.events.append(item)
            if inst.fired:
                self.correct(inst)
        if not joined:
            self.late_event(raw, wm)

    def late_event(self, raw, wm):
        if self.late == "side_output":
            self.late_out.append({"window": self.name,
                                  "reason": "window closed: end + allowed_lateness <= watermark",
                                  "watermark": wm, "event": json.loads(raw)})

    def advance(self, wm):
        every = list(self.instances.values()) + [s for ss in self.sessions.values() for s in ss]
        for inst in sorted(every, key=lambda i: (i.end, i.start)):
            if not inst.fired and inst.end <= wm:
                inst.fired = True
                self.emit(inst, "final")
        for k in [k for k, i in self.instances.items() if i.end + self.lateness <= wm]:
            del self.instances[k]
        for key in list(self.sessions):
            self.sessions[key] = [s for s in self.sessions[key] if s.end + self.lateness > wm]
            if not self.sessions[key]:
                del self.sessions[key]


def load_spec(case_dir):
    jpath = os.path.join(case_dir, "spec.json")
    if os.path.exists(jpath):
        with open(jpath) as f:
            return json.load(f)
    with open(os.path.join(case_dir, "spec.yaml")) as f:
        return parse_yaml(f.read())


def parse_schema(schema):
    fields = {}
    for name, t in schema.items():
        fields[name] = (t.rstrip("?"), t.endswith("?"))
    return fields


def valid_event(line, fields, time_field):
    """The event dict, or None when the event parser would reject the line."""
    try:
        ev = json.loads(line)
    except ValueError:
        return None
    if not isinstance(ev, dict):
        return None
    for name, (t, optional) in fields.items():
        v = ev.get(name)
        if v is None:
            if not optional or name == time_field:
                return None
            continue
        if t == "string" and not isinstance(v, str):
            return None
        if t in ("int64", "int", "long", "timestamp") and (isinstance(v, bool) or not isinstance(v, int)):
            return None
        if t in ("double", "float") and (isinstance(v, bool) or not isinstance(v, (int, float))):
            return None
        if t == "bool" and not isinstance(v, bool):
            return None
        if t in ("double", "float"):
            ev[name] = float(v)  # 3 and 3.0 are the same double
    return ev


def run(case_dir):
    spec = load_spec(case_dir)
    src = spec["source"]
    time_field = src["time"]
    fields = parse_schema(src["schema"])
    ooo = duration_ms(src.get("max_out_of_orderness", 5000))
    src_lateness = duration_ms(src.get("allowed_lateness", 0) or 0)
    out, late_out = [], []
    windows = [WindowRef(w, out, late_out) for w in spec.get("windows", [])]
    wm, max_t, seq = NEG_INF, NEG_INF, 0
    with open(os.path.join(case_dir, "input.jsonl")) as f:
        for line in f:
            line = line.rstrip("\n")
            ev = valid_event(line, fields, time_field)
            if ev is None:
                continue
            t = ev[time_field]
            if t < wm - src_lateness:
                continue  # late at the source: the runtime drops or side-outputs it
            for w in windows:
                w.on_event(seq, t, ev, line, wm)
            seq += 1
            max_t = max(max_t, t)
            wm = max(wm, max_t - ooo)
            for w in windows:
                w.advance(wm)
    for w in windows:
        w.advance(POS_INF)
    return out, late_out


def dumps(rec):
    return json.dumps(rec, separators=(", ", ": "))


def main():
    case_dir = sys.argv[1]
    out, late_out = run(case_dir)
    if "--write" in sys.argv:
        with open(os.path.join(case_dir, "expected.jsonl"), "w") as f:
            f.writelines(dumps(r) + "\n" for r in out)
        with open(os.path.join(case_dir, "expected-late.jsonl"), "w") as f:
            f.writelines(dumps(r) + "\n" for r in late_out)
    else:
        for r in out:
            print(dumps(r))


if __name__ == "__main__":
    main()
