#!/usr/bin/env python
"""Time our surrogate-gradient training step on real latency-coded Fashion-MNIST batches,
optionally next to snnTorch on the same network and batches in the same run.

    python benchmarks/bptt.py --hidden 200 --batch 256 --steps 100 --threads 2 --json \
        [--peer-python /path/to/peers-venv/bin/python] [--model RUN/model.npz]

Network 784 -> hidden -> hidden -> 10 (Perez-Nieves & Goodman 2021, F-MNIST settings:
beta = exp(-1/10), init N(0, 20 (1 - beta) / sqrt(fan_in)) with seed 0, or the weights of a
trained run with --model). Batch i is the i-th block of `--batch` training images. After
`--warmup` untimed batches, each of `--iters` batches is timed, medians reported:

  forward_s           the forward pass, all layers (event-driven)
  backward_dense_s    dense BPTT backward, all layers (the surrogate everywhere)
  backward_sparse_s   the sparse backward (|V - 1| < --window), all layers
  adam_s              one Adam step on every weight matrix
  step_sparse_s       forward + sparse backward + Adam: one whole training step
  step_dense_s        the same with the dense backward
  backward_layer2_*_s the second hidden layer's own backward (its weight and input-spike
                      gradients), the part the paper timed
and `active_fraction` (per hidden layer: active entries / (B (T-1) N)), `spike_fraction`
(spikes / (B T N)), input spikes per sample, and the CPU model. Dense and sparse backward
run on the same forward records (the weights are not updated while they are timed).

With --peer-python, benchmarks/snntorch_bptt2.py runs in that interpreter on the same
images (same count, batch, steps, threads) and `snntorch_step_s` and the ratios
`step_speedup_vs_snntorch` and `backward_speedup_sparse_vs_dense` are added.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from accel_sim.machine import machine_info
from snn_frontend.datasets import load_dataset
from snn_frontend.spiking_data import latency_code
from snn_frontend.surrogate import SurrogateNetwork, SurrogateParams, spikeset_events

HERE = Path(__file__).resolve().parent


def ours(a) -> dict:
    n = (a.warmup + a.iters) * a.batch
    ds = load_dataset("fashion_mnist", "train")
    data = latency_code(ds.images[:n], steps=a.steps, labels=ds.labels[:n])
    params = SurrogateParams(784, (a.hidden, a.hidden), 10, steps=a.steps, window=a.window)
    dense_p = SurrogateParams(784, (a.hidden, a.hidden), 10, steps=a.steps, window=None)

    def network(p):
        if a.model:
            with np.load(a.model) as z:
                return SurrogateNetwork(p, [z[f"W{i}"] for i in range(3)], threads=a.threads)
        return SurrogateNetwork.initialise(p, 0, threads=a.threads)

    sparse_net, dense_net, step_net = network(params), network(dense_p), network(params)
    dense_step_net = network(dense_p)
    rows: dict[str, list[float]] = {k: [] for k in (
        "forward_s", "backward_dense_s", "backward_sparse_s", "adam_s", "step_sparse_s",
        "step_dense_s", "backward_layer2_dense_s", "backward_layer2_sparse_s")}
    active, spikes = [], []
    for it in range(a.warmup + a.iters):
        idx = np.arange(it * a.batch, (it + 1) * a.batch)
        ev = spikeset_events(data, idx)
        labels = data.labels[idx]
        t0 = time.perf_counter()
        rec = sparse_net.forward(ev)
        t1 = time.perf_counter()
        _, grads, counts = sparse_net.backward(rec, labels)
        t2 = time.perf_counter()
        drec = dense_net.forward(ev)
        t3 = time.perf_counter()
        _, _, dcounts = dense_net.backward(drec, labels)
        t4 = time.perf_counter()
        sparse_net.adam_step(grads)
        t5 = time.perf_counter()
        step_net.train_step(ev, labels)
        t6 = time.perf_counter()
        dense_step_net.train_step(ev, labels)
        t7 = time.perf_counter()
        if it < a.warmup:
            continue
        for k, v in (("forward_s", t1 - t0), ("backward_sparse_s", t2 - t1),
                     ("backward_dense_s", t4 - t3), ("adam_s", t5 - t4),
                     ("step_sparse_s", t6 - t5), ("step_dense_s", t7 - t6),
                     ("backward_layer2_dense_s", dcounts.seconds[1]),
                     ("backward_layer2_sparse_s", counts.seconds[1])):
            rows[k].append(v)
        B, T = a.batch, a.steps
        active.append([n / (B * (T - 1) * a.hidden) for n in counts.active])
        spikes.append([len(layer.spikes.idx) / (B * T * a.hidden) for layer in rec.layers])
    out = {k: statistics.median(v) for k, v in rows.items()}
    out.update({f"{k}_min_max": [min(v), max(v)] for k, v in rows.items()})
    out.update(
        active_fraction=np.mean(active, axis=0).tolist(),
        spike_fraction=np.mean(spikes, axis=0).tolist(),
        input_spikes_per_sample=float(data.spike_counts().mean()),
        backward_speedup_sparse_vs_dense=out["backward_dense_s"] / out["backward_sparse_s"],
        backward_layer2_speedup=out["backward_layer2_dense_s"] / out["backward_layer2_sparse_s"],
        backend=sparse_net.backend)
    for net in (sparse_net, dense_net, step_net, dense_step_net):
        net.close()
    return out


def peer(a) -> dict:
    cmd = [a.peer_python, str(HERE / "snntorch_bptt2.py"), "--json", "--hidden", str(a.hidden),
           "--batch", str(a.batch), "--steps", str(a.steps), "--threads", str(a.threads),
           "--iters", str(a.iters), "--warmup", str(a.warmup),
           "--samples", str((a.warmup + a.iters) * a.batch), "--data", a.data]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    line = [x for x in res.stdout.splitlines() if x.startswith("RESULT ")]
    if res.returncode or not line:
        sys.exit(f"snnTorch run failed ({res.returncode}):\n{res.stderr[-2000:]}")
    return json.loads(line[-1][len("RESULT "):])


def main() -> None:
    import os

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hidden", type=int, default=200)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--window", type=float, default=0.2, help="B_th of the sparse backward")
    ap.add_argument("--model", help="model.npz of a trained run (W0, W1, W2) instead of the init")
    ap.add_argument("--peer-python", help="a Python with snnTorch: time it in the same run")
    ap.add_argument("--data", default=os.environ.get("ACCEL_SIM_DATA", ""))
    ap.add_argument("--json", action="store_true", help="print only the JSON object")
    a = ap.parse_args()
    if a.data:
        os.environ["ACCEL_SIM_DATA"] = a.data
    result = {"benchmark": "bptt", "hidden": [a.hidden, a.hidden], "batch": a.batch,
              "steps": a.steps, "threads": a.threads, "iters": a.iters, "warmup": a.warmup,
              "window": a.window, "weights": a.model or "init (seed 0)", **machine_info(),
              **ours(a)}
    if a.peer_python:
        p = peer(a)
        result["snntorch"] = p
        result["snntorch_step_s"] = p["step_s"]
        result["step_speedup_vs_snntorch"] = p["step_s"] / result["step_sparse_s"]
        result["step_speedup_dense_vs_snntorch"] = p["step_s"] / result["step_dense_s"]
    text = json.dumps(result, indent=None if a.json else 2)
    print(text)


if __name__ == "__main__":
    main()
