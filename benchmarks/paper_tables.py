#!/usr/bin/env python
"""Markdown tables for docs/papers.md from finished run directories.

    python benchmarks/paper_tables.py fspinn BASE_RUN VARIANT_RUN [BASE VARIANT ...]
    python benchmarks/paper_tables.py continual ASP_RUN SPIKEDYN_RUN [...]
    python benchmarks/paper_tables.py ablation RUN [RUN ...]      # first run = reference
    python benchmarks/paper_tables.py continual_ablation RUN [RUN ...]
    python benchmarks/paper_tables.py ssgd DENSE_RUN SPARSE_RUN [DENSE SPARSE ...]

Ratios are the papers' savings factors, baseline / variant (7.5x memory means the
variant needs 7.5 times less); energies per sample, on the chip and energy table
each run was priced with.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def _s(run):
    return json.loads((Path(run) / "stats.json").read_text())


def _e(stats, phase):
    return stats["hardware"]["phases"][phase]["energy_per_sample_pj"]


def fspinn(pairs):
    print("| dataset, N | memory D&C / FSpiNN | train energy D&C / FSpiNN | infer energy D&C / FSpiNN "
          "| accuracy D&C | accuracy FSpiNN | μJ/inference D&C / FSpiNN |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for base, var in pairs:
        a, b = _s(base), _s(var)
        ds = json.loads((Path(var) / "run.json").read_text()).get("name", var)
        print(f"| {ds} | {a['memory']['total_bytes'] / b['memory']['total_bytes']:.2f}x "
              f"| {_e(a, 'train') / _e(b, 'train'):.2f}x | {_e(a, 'infer') / _e(b, 'infer'):.2f}x "
              f"| {100 * a['accuracy']['test']:.2f} % | {100 * b['accuracy']['test']:.2f} % "
              f"| {_e(a, 'infer') / 1e6:.1f} / {_e(b, 'infer') / 1e6:.1f} |")


def continual(pairs):
    print("| N | newest task ASP / SpikeDyn | earlier tasks ASP / SpikeDyn | train energy change "
          "| infer energy change |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for base, var in pairs:
        a, b = _s(base), _s(var)
        n = b["model"]["n_excitatory"]
        aa, bb = a["accuracy"], b["accuracy"]
        print(f"| {n} | {100 * aa['newest_mean']:.1f} / {100 * bb['newest_mean']:.1f} % "
              f"({100 * (bb['newest_mean'] - aa['newest_mean']):+.1f} points) "
              f"| {100 * aa['earlier_mean']:.1f} / {100 * bb['earlier_mean']:.1f} % "
              f"({100 * (bb['earlier_mean'] - aa['earlier_mean']):+.1f} points) "
              f"| {100 * (_e(b, 'train') / _e(a, 'train') - 1):+.0f} % "
              f"| {100 * (_e(b, 'infer') / _e(a, 'infer') - 1):+.0f} % |")


def ssgd(pairs):
    """Surrogate network, dense vs sparse backward: accuracy, activity, what the backward
    kept, and (runs with a chip) training energy per sample."""
    print("| run (dense / sparse) | test accuracy dense / sparse | active % L1 / L2 (sparse) "
          "| spiking % L1 / L2 (sparse) | kept for the backward per batch, dense / sparse "
          "| training μJ/sample dense / sparse |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for dense, sparse in pairs:
        a, b = _s(dense), _s(sparse)
        kept = [x["frontend"]["train"]["per_sample"]["backward_kept_bytes_per_batch"] / 2**20
                for x in (a, b)]
        energy = (f"{_e(a, 'train') / 1e6:.0f} / {_e(b, 'train') / 1e6:.0f}"
                  if "hardware" in a and "hardware" in b else "-")
        act = " / ".join(f"{100 * x:.2f}" for x in b["model"]["active_fraction"])
        spk = " / ".join(f"{100 * x:.2f}" for x in b["model"]["spike_fraction"])
        print(f"| {Path(dense).name} / {Path(sparse).name} "
              f"| {100 * a['accuracy']['test']:.2f} / {100 * b['accuracy']['test']:.2f} % "
              f"| {act} | {spk} | {kept[0]:.1f} / {kept[1]:.1f} MiB ({kept[0] / kept[1]:.1f}x) "
              f"| {energy} |")


def _rows(runs, cols):
    """One row per run; `cols`: (header, stats -> cell text)."""
    print("| run | " + " | ".join(h for h, _ in cols) + " |")
    print("| --- | " + " | ".join("---:" for _ in cols) + " |")
    for r in runs:
        s = _s(r)
        print(f"| {Path(r).name} | " + " | ".join(f(s) for _, f in cols) + " |")


_ENERGY_COLS = [
    ("train μJ/sample", lambda s: f"{_e(s, 'train') / 1e6:.1f}"),
    ("infer μJ/sample", lambda s: f"{_e(s, 'infer') / 1e6:.1f}"),
]
_WRITES = ("weight writes/sample",
           lambda s: f"{s['frontend']['train']['per_sample']['weight_writes']:,.0f}")


def ablation(runs):
    _rows(runs, [("test accuracy", lambda s: f"{100 * s['accuracy']['test']:.2f} %"),
                 *_ENERGY_COLS,
                 ("memory bytes", lambda s: f"{s['memory']['total_bytes']:,}"), _WRITES])


def continual_ablation(runs):
    _rows(runs, [("newest task", lambda s: f"{100 * s['accuracy']['newest_mean']:.1f} %"),
                 ("earlier tasks", lambda s: f"{100 * s['accuracy']['earlier_mean']:.1f} %"),
                 ("all learned after the last task", lambda s: f"{100 * s['accuracy']['test']:.1f} %"),
                 *_ENERGY_COLS, _WRITES])


def main():
    kind, runs = sys.argv[1], sys.argv[2:]
    if kind in ("ablation", "continual_ablation"):
        {"ablation": ablation, "continual_ablation": continual_ablation}[kind](runs)
        return
    pairs = list(zip(runs[0::2], runs[1::2]))
    {"fspinn": fspinn, "continual": continual, "ssgd": ssgd}[kind](pairs)


if __name__ == "__main__":
    main()
