#!/usr/bin/env python3
"""The table of a study folder written by scripts/study.sh (standard library only).

usage: scripts/study-table.py OUT

Per method and bit width: mean ± sample standard deviation over seeds of the FINAL test accuracy
(data-free: the last record of metrics.jsonl, `student_after_accuracy`; quantize: the
`test_accuracy` the student file records, measured after its last step), the number of seeds,
and the mean ± sd over seeds of the diagnostics of `acq-dist diagnose` (centre spread, attention
gap, and for conditioned generators the slope of the centres on the asked positions); then the
real-image reference row. Prints the table and writes OUT/table.md.
"""
import json
import math
import os
import re
import struct
import sys

METHODS = [
    ("ptq", "PTQ", "Gaussian noise"),
    ("gdfq", "GDFQ", "synthetic"),
    ("acm", "GDFQ + condition/ACM", "synthetic"),
    ("pair", "+ paired loss", "synthetic"),
    ("acq", "+ consistency (= ACQ)", "synthetic"),
    ("qat", "QAT", "**REAL training set** (not data-free)"),
]
RUN = re.compile(r"^(ptq|gdfq|acm|pair|acq|qat|acq-(?:acm|pair|cons)[0-9.]+)-w([2-8])a\2-seed([0-9]+)$")
# scripts/study.sh --sweep: ACQ with one loss weight moved from its default, named acq-<term><weight>.
SWEEP = re.compile(r"^acq-(acm|pair|cons)([0-9.]+)$")
SWEEP_TERMS = {"acm": "ACM", "pair": "pair", "cons": "consistency"}


def rows_in_order(methods):
    """The study's arms in METHODS order, then the sweep's by term and weight."""
    sweep = [(SWEEP.match(m), m) for m in methods if SWEEP.match(m)]
    sweep.sort(key=lambda s: (list(SWEEP_TERMS).index(s[0].group(1)), float(s[0].group(2))))
    return [m for m in METHODS if m[0] in methods] + [
        (m, f"ACQ, {SWEEP_TERMS[match.group(1)]} weight {match.group(2)}", "synthetic") for match, m in sweep]


def fail(message):
    sys.exit(f"study-table.py: {message}")


def datafree_accuracy(folder):
    """The last record of metrics.jsonl, written after the final evaluation; None if absent."""
    path = os.path.join(folder, "metrics.jsonl")
    if not os.path.exists(path) or not os.path.exists(os.path.join(folder, "generator.safetensors")):
        return None
    with open(path) as f:
        lines = [line for line in f if line.strip()]
    if not lines:
        return None
    try:
        last = json.loads(lines[-1])
    except json.JSONDecodeError as e:
        fail(f"{path}: last line is not JSON ({e})")
    return last.get("student_after_accuracy")


def quantize_accuracy(folder):
    """`test_accuracy` from the acq_dist metadata of the student file's safetensors header."""
    path = os.path.join(folder, "student.safetensors")
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    try:
        notes = json.loads(header["__metadata__"]["acq_dist"])["notes"]
        return float(notes["test_accuracy"])
    except (KeyError, ValueError, TypeError) as e:
        fail(f"{path}: no test_accuracy in its acq_dist metadata ({e!r})")


def diagnostics(folder):
    path = os.path.join(folder, "diagnostics.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            fail(f"{path}: not JSON ({e})")


def mean_sd(values):
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, None
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: scripts/study-table.py OUT")
    out = sys.argv[1]
    if not os.path.isdir(out):
        fail(f"{out} is not a folder")
    settings_path = os.path.join(out, "settings.txt")
    settings = open(settings_path).read().strip() if os.path.exists(settings_path) else "(no settings.txt)"

    runs = {}  # (method, bits) -> [(seed, accuracy, diagnostics)]
    incomplete = []
    for name in sorted(os.listdir(out)):
        match = RUN.match(name)
        if not match:
            continue
        method, bits, seed = match.group(1), int(match.group(2)), int(match.group(3))
        folder = os.path.join(out, name)
        accuracy = quantize_accuracy(folder) if method in ("ptq", "qat") else datafree_accuracy(folder)
        if accuracy is None:
            incomplete.append(name)
            continue
        runs.setdefault((method, bits), []).append((seed, accuracy, diagnostics(folder)))

    def diag_mean(rows, key):
        """Mean ± sample sd over seeds of one diagnostic ("-" where no run measured it)."""
        values = [d[key] for _, _, d in rows if d is not None and key in d]
        if not values:
            return "-"
        m, sd = mean_sd(values)
        text = f"{m:.4g}" + (f" ± {sd:.2g}" if sd is not None else "")
        return text + ("" if len(values) == len(rows) else f" ({len(values)} of {len(rows)})")

    lines = [
        "# The study",
        "",
        f"Settings: {settings}.",
        "",
    ]
    if "preset=quick" in settings:
        lines += ["**Preset quick: a smoke test of the pipeline. These numbers are not results.**", ""]
    lines += [
        "Final test accuracy (after the last step, never a best epoch): mean ± sample standard deviation over seeds.",
        "Centre spread, attention gap and condition slope (how the centres follow the asked positions: 1 follows, 0 ignores): "
        "`acq-dist diagnose` on the run's generator, mean ± sample sd over seeds.",
        "",
        "| method | data | bits | final test accuracy (%) | seeds | centre spread | attention gap | condition slope |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for bits in sorted({b for _, b in runs}, reverse=True):
        for method, label, data in rows_in_order({m for m, b in runs if b == bits}):
            rows = runs.get((method, bits))
            if not rows:
                continue
            m, sd = mean_sd([100 * a for _, a, _ in rows])
            accuracy = f"{m:.2f} ± {sd:.2f}" if sd is not None else f"{m:.2f} (one seed, no sd)"
            synthetic = method not in ("ptq", "qat")
            lines.append(f"| {label} | {data} | W{bits}A{bits} | {accuracy} | {len(rows)} | "
                         f"{diag_mean(rows, 'centre_spread') if synthetic else '-'} | "
                         f"{diag_mean(rows, 'attention_gap') if synthetic else '-'} | "
                         f"{diag_mean(rows, 'condition_slope') if synthetic else '-'} |")
    real = diagnostics(os.path.join(out, "real"))
    if real is not None:
        lines.append(f"| real test images (reference, {real['samples']} images) | real | - | - | - | "
                     f"{real['centre_spread']:.4g} | {real['attention_gap']:.4g} | - |")
    if incomplete:
        lines += ["", f"Incomplete runs (left out): {', '.join(incomplete)}."]
    table = "\n".join(lines) + "\n"
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(table)
    print(table, end="")


if __name__ == "__main__":
    main()
