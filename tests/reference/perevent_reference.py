#!/usr/bin/env python3
"""Brute-force reference of millrace's per-event sliding features.

Independent of the engine: it recomputes every feature of every event from
scratch over the key's accepted events, straight from the semantics in
docs/semantics.md:
  - the watermark of the (single) input partition is max event time seen
    minus max_out_of_orderness; an event whose time is below watermark -
    allowed_lateness (watermark before the event) is late;
  - for an accepted event e of key k at time t, a feature's value is its
    aggregate over the accepted events of k that arrived before e, or e, with
    time in (t - window, t];
  - prev/time_since_last: the key's latest accepted event before e by
    (event time, arrival), if its time is in (t - window, t].
Used by make_perevent_cases.py to write data-file cases.
"""
import json
import math

DURATION_UNITS = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000}


def duration_ms(text):
    text = str(text)
    for unit in ("ms", "s", "m", "h", "d"):
        if text.endswith(unit) and text[: -len(unit)].isdigit():
            return int(text[: -len(unit)]) * DURATION_UNITS[unit]
    return int(text)


def rfc3339_ms(text):
    import datetime
    try:
        dt = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        return None
    return int(round(dt.timestamp() * 1000))


def check_type(value, type_name):
    base = type_name.rstrip("?")
    if value is None:
        return type_name.endswith("?")
    if base == "string":
        return isinstance(value, str)
    if base == "int64":
        return isinstance(value, int) and not isinstance(value, bool)
    if base == "double":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if base == "bool":
        return isinstance(value, bool)
    raise ValueError(base)


def parse_event(line, schema, time_field):
    """The event as a dict, or None when the line must go to dead letters."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict):
        return None
    for name, type_name in schema.items():
        optional = type_name.endswith("?") and name != time_field
        if name not in event:
            if optional:
                continue
            return None
        if not check_type(event[name], type_name if optional else type_name.rstrip("?")):
            return None
    return event


def aggregate(agg, values, q=None):
    """values: field values (non-null) of the window, in (time, arrival) order."""
    if agg == "count":
        return len(values)
    if agg == "count_distinct":
        return len(set(values))
    if agg == "sum":
        return math.fsum(values)  # 0 for no values, as windows do
    if not values:
        return None
    if agg == "sum":
        return math.fsum(values)
    if agg == "avg":
        return math.fsum(values) / len(values)
    if agg == "min":
        return min(values)
    if agg == "max":
        return max(values)
    if agg == "stddev":
        mean = math.fsum(values) / len(values)
        return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))
    if agg == "first":
        return values[0]
    if agg == "last":
        return values[-1]
    if agg == "quantile":
        ordered = sorted(values)
        return ordered[int(math.floor(q * (len(ordered) - 1)))]
    raise ValueError(agg)


def run(spec, lines):
    """Returns (outputs, late_events, dead_letter_count)."""
    src = spec["source"]
    schema = src["schema"]
    time_field = src["time"]
    ooo = duration_ms(src.get("max_out_of_orderness", "5s"))
    lateness = duration_ms(src.get("allowed_lateness", "0s"))
    features = spec.get("features", [])
    accepted = []  # (time, arrival, event)
    outputs, late, dead = [], [], 0
    max_time = None
    for arrival, line in enumerate(lines):
        if not line.strip():
            continue
        event = parse_event(line, schema, time_field)
        if event is None:
            dead += 1
            continue
        t = event[time_field]
        if isinstance(t, str):
            t = rfc3339_ms(t)
            if t is None:
                dead += 1
                continue
        if max_time is not None and t < max_time - ooo - lateness:
            late.append(event)
            continue
        accepted.append((t, arrival, event))
        out = dict(event)
        for f in features:
            keys = f["key"] if isinstance(f["key"], list) else [f["key"]]
            k = tuple(event[x] for x in keys)
            window = duration_ms(f.get("window", "1d"))
            same_key = [(ti, ai, ev) for (ti, ai, ev) in accepted
                        if tuple(ev[x] for x in keys) == k]
            agg = f["agg"]
            field = f.get("field")
            if agg in ("prev", "time_since_last"):
                before = [(ti, ai, ev) for (ti, ai, ev) in same_key if (ti, ai) < (t, arrival)]
                value = None
                if before:
                    pt, _, pev = max(before, key=lambda x: (x[0], x[1]))
                    if pt > t - window:
                        value = pev.get(field) if agg == "prev" else t - pt
                out[f["name"]] = value
                continue
            in_window = sorted((x for x in same_key if t - window < x[0] <= t),
                               key=lambda x: (x[0], x[1]))
            if field is None:
                values = [1 for _ in in_window]
            else:
                values = [ev.get(field) for (_, _, ev) in in_window if ev.get(field) is not None]
            out[f["name"]] = aggregate(agg, values, f.get("q"))
        outputs.append(out)
        max_time = t if max_time is None else max(max_time, t)
    return outputs, late, dead
