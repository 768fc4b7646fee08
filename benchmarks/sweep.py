#!/usr/bin/env python
"""Time a 16-point hardware sweep over one cached D&C N=400 inference trace.

    python benchmarks/sweep.py --samples 1000 [--model RUN/model.npz] --json

The sweep (written to a temporary folder): configs/mnist_dc400.yaml inferring `--samples`
MNIST test images, over the edge chip's SRAM per core (32, 64, 128, 256 KiB) x NoC cast
(unicast, multicast) x core count (8, 16). It runs three times from scratch, each in a
fresh sweep directory: on a local process pool with 1 worker, with 2 workers, and on a
Dask LocalCluster with 2 workers. Prints one JSON object: each run's wall time, the
frontend run's and the replay stage's time, the speedup of 2 workers over 1 (whole sweep
and replay stage), Dask's wall time relative to the local pool's, the frontend runs each
performed (1), and the activity of the trace (spikes per sample).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from accel_sim.machine import machine_info
from accel_sim.sweep import run_sweep

ROOT = Path(__file__).resolve().parents[1]


def sweep_file(folder: Path, samples: int, model: str | None) -> Path:
    body = {
        "version": 1, "base": str(ROOT / "configs" / "mnist_dc400.yaml"),
        "set": {"run.phases": ["infer"], "data.test_samples": samples,
                "data.train_samples": 1, "run.checkpoint_every": 0},
        "grid": {"hardware.sram.size_kib": [32, 64, 128, 256],
                 "hardware.noc.cast": ["unicast", "multicast"]},
        "zip": {"hardware.cores.count": [8, 16], "hardware.cores.mesh_width": [4, 4],
                "hardware.cores.mesh_height": [2, 4]},
    }
    if model:
        body["set"]["network.init_model"] = str(Path(model).resolve())
    p = folder / "hw16.yaml"
    p.write_text(json.dumps(body))
    return p


def one(path: Path, out: Path, executor: str, workers: int) -> dict:
    res = run_sweep(path, out, executor=executor, workers=workers, progress=False)
    bad = [r for r in res.rows if r["status"] != "ok"]
    if bad:
        sys.exit(f"sweep points failed: {bad[0]['error']}")
    return {"executor": executor, "workers": res.workers, "points": len(res.rows),
            "wall_s": res.wall_s, "frontend_runs": res.frontend_runs, "replays": res.replays,
            **{k: v for k, v in res.timing.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--model", help="model.npz of a trained D&C N=400 run (default: untrained)")
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = sweep_file(tmp, args.samples, args.model)
        runs = {"local_1": one(path, tmp / "l1", "local", 1),
                "local_2": one(path, tmp / "l2", "local", 2)}
        if not args.no_dask:
            runs["dask_2"] = one(path, tmp / "d2", "dask", 2)
        cache = next((tmp / "l1" / "cache").iterdir())
        stats = json.loads((cache / "stats.json").read_text())
    infer = stats["frontend"]["infer"]["per_sample"]
    l1, l2 = runs["local_1"], runs["local_2"]
    out = {"benchmark": "sweep", "points": l1["points"], "samples": args.samples,
           "trained": bool(args.model), **machine_info(), "runs": runs,
           "speedup_2_vs_1_workers": l1["wall_s"] / l2["wall_s"],
           "replay_speedup_2_vs_1_workers": l1["replay_s"] / l2["replay_s"],
           "target_wall_s": l1["frontend_s"] + l1["replay_s"] / 1.8,
           "spikes_per_sample": {k: v for k, v in infer.items() if "spike" in k}}
    if "dask_2" in runs:
        out["dask_vs_local_wall"] = runs["dask_2"]["wall_s"] / l2["wall_s"]
    print(json.dumps(out, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
