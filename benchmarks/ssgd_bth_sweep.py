#!/usr/bin/env python
"""The B_th sweep of Sparse Spiking Gradient Descent (their Fig. 3) on Fashion-MNIST: train
the sparse network at each backward window and see where learning breaks.

    python benchmarks/ssgd_bth_sweep.py --epochs 10 --out runs/bth [--windows 0.25 0.2 0.1 ...]

Every point is a real `accel-sim run` of configs/papers/ssgd_fmnist200_sparse.yaml (no chip)
with `learning.backward_window` set, plus one dense run as the baseline. Then the backward
pass of the trained network is timed at that window on 8 training batches (after 2
warm-up batches), next to the dense backward on the same batches. Prints one JSON object
(and writes it to benchmarks/results/ssgd_bth_sweep.json with --save): per window the test
accuracy, the active fraction per hidden layer, the backward's multiply-adds and its time
relative to dense. The paper swept on SHD (not available here) for 15 epochs; the window
values are theirs (half-widths 1 - b_th of their code).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from accel_sim import run_experiment
from accel_sim.config import load_config
from accel_sim.machine import machine_info
from snn_frontend.surrogate import spikeset_events

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "papers" / "ssgd_fmnist200_sparse.yaml"
WINDOWS = (0.25, 0.2, 0.1, 0.05, 0.01, 1e-3, 1e-4)


def train(out: Path, epochs: int, backward: str, window: float | None, threads: int) -> dict:
    """One training run (reused when its stats.json is already there)."""
    if (out / "stats.json").is_file():
        return json.loads((out / "stats.json").read_text())
    sets = ["hardware=null", "energy=null", f"learning.epochs={epochs}",
            f"learning.backward={backward}", f"run.threads={threads}"]
    if window is not None:
        sets.append(f"learning.backward_window={window}")
    return run_experiment(load_config(CONFIG, sets), out, progress=True)


def time_backward(model: Path, window: float | None, threads: int, batches: int = 8) -> dict:
    """Median backward time of the trained weights at `window` (None: dense)."""
    from accel_sim.families.surrogate import SurrogateFamily

    sets = ["hardware=null", "energy=null", "data.train_samples=2560", "data.test_samples=256"]
    if window is None:
        sets.append("learning.backward=dense")
    else:
        sets.append(f"learning.backward_window={window}")
    cfg = load_config(CONFIG, sets + [f"network.init_model={model}", f"run.threads={threads}"])
    family = SurrogateFamily()
    data = family.load_data(cfg)
    net = family.build(cfg, data)
    times, macs = [], []
    for it in range(2 + batches):
        idx = np.arange(it * 256, (it + 1) * 256)
        rec = net.forward(spikeset_events(data.train, idx))
        t0 = time.perf_counter()
        _, _, counts = net.backward(rec, data.train.labels[idx])
        if it >= 2:
            times.append(time.perf_counter() - t0)
            macs.append(sum(counts.weight_macs) + sum(counts.input_macs))
    net.close()
    return {"backward_s": statistics.median(times), "backward_macs": statistics.median(macs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--windows", type=float, nargs="+", default=list(WINDOWS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="runs/bth_sweep", help="folder for the runs")
    ap.add_argument("--save", action="store_true", help="also write benchmarks/results/")
    a = ap.parse_args()
    out = Path(a.out)
    dense = train(out / "dense", a.epochs, "dense", None, a.threads)
    dense_t = time_backward(out / "dense" / "model.npz", None, a.threads)
    rows = [{"window": None, "backward": "dense", "test_accuracy": dense["accuracy"]["test"],
             "active_fraction": [1.0, 1.0], **dense_t}]
    for w in a.windows:
        s = train(out / f"w{w:g}", a.epochs, "sparse", w, a.threads)
        t = time_backward(out / f"w{w:g}" / "model.npz", w, a.threads)
        rows.append({"window": w, "backward": "sparse", "test_accuracy": s["accuracy"]["test"],
                     "active_fraction": s["model"]["active_fraction"], **t,
                     "backward_speedup_vs_dense": dense_t["backward_s"] / t["backward_s"]})
    result = {"benchmark": "ssgd_bth_sweep", "dataset": "fashion_mnist", "hidden": [200, 200],
              "epochs": a.epochs, "threads": a.threads, **machine_info(), "points": rows}
    text = json.dumps(result, indent=2)
    print(text)
    if a.save:
        dest = ROOT / "benchmarks" / "results" / "ssgd_bth_sweep.json"
        dest.write_text(text + "\n")
    print("\n| B_th | test acc % | active % (L1 / L2) | backward MACs | backward ms | speedup vs dense |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        act = " / ".join(f"{100 * x:.3g}" for x in r["active_fraction"])
        sp = f"{r.get('backward_speedup_vs_dense', 1.0):.1f}x"
        print(f"| {r['window'] if r['window'] is not None else 'dense'} | "
              f"{100 * r['test_accuracy']:.2f} | {act} | {r['backward_macs']:.3g} | "
              f"{1e3 * r['backward_s']:.2f} | {sp} |")


if __name__ == "__main__":
    main()
