#!/usr/bin/env python3
"""Summarise the last `cargo bench --bench engine` run: per-event times, rates and ratios.

Reads criterion's estimates (target/criterion/<group>/<bench>/new/estimates.json); every
iteration of every bench handles 1024 events. Prints a Markdown table, and the goals with
their measured ratio (>= 1.00 means met).
"""
import json
import os
import sys

EVENTS_PER_ITER = 1024
ROOT = os.environ.get("CRITERION_DIR", os.path.join(os.path.dirname(__file__), "..", "target", "criterion"))

BENCHES = [
    ("decode", "apache_avro_generic", "Avro decode, apache-avro generic reader"),
    ("decode", "serde_avro_fast", "Avro decode, typed (serde_avro_fast)"),
    ("evaluate", "default_matrix", "Matrix evaluation, default matrix"),
    ("evaluate", "default_matrix_without_phrase_triggers", "  … without the two phrase triggers"),
    ("decode_evaluate", "serde_avro_fast", "Decode + validate + evaluate (typed)"),
    ("decode_evaluate", "apache_avro_generic", "Decode + validate + evaluate (generic)"),
    ("outputs", "plan", "Build the verdict and escalations (context packages)"),
    ("outputs", "encode_verdicts", "Encode the verdict (typed Avro)"),
    ("stage", "handoff_process", "The pipeline's whole per-record stage"),
]

# Per changelog record (the records the stage writes for the 1,024 events), not per event.
CHANGELOG = ["json", "binary"]


def per_event_ns(group, bench, per_iter=EVENTS_PER_ITER):
    path = os.path.join(ROOT, group, bench, "new", "estimates.json")
    with open(path) as f:
        est = json.load(f)
    return est["mean"]["point_estimate"] / per_iter


def changelog_table():
    """Bytes, encode and decode time per changelog record in each form; None before the bench ran."""
    rows = {}
    for name in CHANGELOG:
        try:
            with open(os.path.join(ROOT, "changelog", f"{name}.bytes.json")) as f:
                size = json.load(f)
            n = size["records"]
            rows[name] = (
                size["bytes"],
                per_event_ns("changelog", f"encode_{name}", n),
                per_event_ns("changelog", f"decode_{name}", n),
                n,
            )
        except FileNotFoundError:
            return None
    return rows


def main():
    try:
        ns = {(g, b): per_event_ns(g, b) for g, b, _ in BENCHES}
    except FileNotFoundError as e:
        sys.exit(f"no criterion results ({e.filename}): run `cargo bench --bench engine` first")
    print("| what | ns/event | events/s (one core) |")
    print("|---|---:|---:|")
    for g, b, label in BENCHES:
        v = ns[(g, b)]
        print(f"| {label} | {v:,.0f} | {1e9 / v:,.0f} |")
    fast, generic = ns[("decode", "serde_avro_fast")], ns[("decode", "apache_avro_generic")]
    evaluate = ns[("evaluate", "default_matrix")]
    both = ns[("decode_evaluate", "serde_avro_fast")]
    print()
    print(f"- typed decoder vs generic reader: {generic / fast:.2f}x faster")
    rate = 1e9 / evaluate
    print(f"- goal >= 3,000,000 evaluations/s/core: measured {rate:,.0f}/s, ratio {rate / 3e6:.2f}")
    print(f"- goal decode + evaluate <= 1,000 ns/event: measured {both:,.0f} ns, ratio {1000 / both:.2f}")
    stage = ns[("stage", "handoff_process")]
    for what, v, goal in [
        ("decode + validate + evaluate", both, 1.2),
        ("the whole stage with the human loop", stage, 2.0),
    ]:
        ratio = v / fast
        met = "met" if ratio <= goal else "not met"
        print(f"- goal {what} <= {goal} x the typed decode alone: {ratio:.2f} x ({met})")
    rows = changelog_table()
    if rows is None:
        return
    n = rows["json"][3]
    print()
    print(f"Changelog records ({n} written for these events), per record:")
    print()
    print("| form | bytes | encode ns | decode ns |")
    print("|---|---:|---:|---:|")
    for name in CHANGELOG:
        b, enc, dec, _ = rows[name]
        print(f"| {name} | {b:,} | {enc:,.0f} | {dec:,.0f} |")
    (jb, je, jd, _), (bb, be, bd, _) = rows["json"], rows["binary"]
    print()
    print(f"- binary against JSON: {bb / jb:.2f} x the bytes, {be / je:.2f} x the encode time, "
          f"{bd / jd:.2f} x the decode time")


if __name__ == "__main__":
    main()
