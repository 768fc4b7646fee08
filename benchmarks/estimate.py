#!/usr/bin/env python
"""The analytical estimate against the simulator on every shipped config.

    python benchmarks/estimate.py --train 200 --test 100 --json

Each shipped config (configs/*.yaml, configs/papers/*.yaml; SHD skipped when absent) runs
with `--train` training and `--test` test samples on its chip (edge when it has none),
saving the traces of its phases; the activity measured from those traces feeds
`accel_sim.estimate.estimate`. Prints one JSON object: per config and phase the
estimate / simulator ratio of the energy and latency, the largest count error, the
seconds the estimate took (the closed forms, the chip's structure included) and the
seconds the simulator took on the same phases.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from accel_sim import load_config, run_experiment
from accel_sim.estimate import activity_of_run, estimate
from accel_sim.machine import machine_info

ROOT = Path(__file__).resolve().parents[1]


def sets_for(path: Path, train: int, test: int) -> list[str] | None:
    cfg = load_config(path)
    if cfg.data.dataset == "shd":
        return None
    sets = [f"data.train_samples={train}", f"data.test_samples={test}",
            "run.checkpoint_every=0", f"run.trace_phases={json.dumps(list(cfg.run.phases))}"]
    if cfg.data.label_samples is not None:
        sets.append(f"data.label_samples={test}")
    if cfg.network.model == "surrogate":
        sets += ["learning.batch_size=20", "learning.epochs=1"]
    if cfg.hardware is None:
        sets += ["hardware=edge", "energy=generic_45nm"]
    return sets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=int, default=200)
    ap.add_argument("--test", type=int, default=100)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    configs = sorted([*ROOT.glob("configs/*.yaml"), *ROOT.glob("configs/papers/*.yaml")])
    rows = {}
    for path in configs:
        sets = sets_for(path, args.train, args.test)
        if sets is None:
            continue
        cfg = load_config(path, sets)
        with tempfile.TemporaryDirectory() as tmp:
            stats = run_experiment(cfg, Path(tmp) / "run", progress=False)
            spec, act = activity_of_run(Path(tmp) / "run")
            t0 = time.perf_counter()
            est = estimate(cfg, spec, act)
            est_s = time.perf_counter() - t0
        run = {"estimate_s": est_s, "phases": {}}
        for phase, e in est["phases"].items():
            s = stats["hardware"]["phases"][phase]
            total = sum(s["counts"].values())
            worst = max((abs(e["counts"].get(k, 0) / n - 1) for k, n in s["counts"].items()
                         if n > 1e-3 * total), default=0.0)
            run["phases"][phase] = {
                "energy_ratio": e["energy_pj"] / s["energy_pj"]["total"],
                "latency_ratio": e["latency_s"] / s["latency_s"],
                "worst_count_error": worst}
        rows[path.name] = run
    ratios = [p["energy_ratio"] for r in rows.values() for p in r["phases"].values()]
    out = {"benchmark": "estimate", "train": args.train, "test": args.test, **machine_info(),
           "configs": rows,
           "max_energy_error": max(abs(x - 1) for x in ratios),
           "max_latency_error": max(abs(p["latency_ratio"] - 1) for r in rows.values()
                                    for p in r["phases"].values()),
           "max_count_error": max(p["worst_count_error"] for r in rows.values()
                                  for p in r["phases"].values()),
           "max_estimate_s": max(r["estimate_s"] for r in rows.values())}
    print(json.dumps(out, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
