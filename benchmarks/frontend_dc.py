#!/usr/bin/env python
"""Time the D&C frontend on real MNIST images, optionally next to a peer in the same run.

    python benchmarks/frontend_dc.py --neurons 400 --dt-ms 0.5 --mode train --samples 200 \
        --present-ms 350 --rest-ms 0 --json [--peer brian2 --peer-python /path/to/venv/bin/python]
    python benchmarks/frontend_dc.py --mode train --rest-ms 150 --state-reset false --samples 2000

The second form is D&C's literal protocol (the rest integrated, state carried over):
long enough for silent neurons' traces to decay toward zero, so a kernel that lets
them become subnormal shows it (`subnormal_state` counts them at the end; it is slow
on Intel cores). The JSON records the CPU model, since speed depends on it.

Prints one JSON object: `s_per_sample` (train: median over samples, one thread;
infer: wall time / samples with `--threads` threads), spikes per sample, and with
--peer the peer's own RESULT and the ratio ours / peer. Like the peers, the
network is untrained (random initial weights) and every presentation is exactly
one: no re-presentation of silent samples (`max_retries=0`).
Data: $ACCEL_SIM_DATA (the MNIST test split for infer, the training split for train).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from accel_sim.config import load_config
from accel_sim.machine import machine_info
from snn_frontend.counts import FrontendCounts
from snn_frontend.datasets import load_dataset
from snn_frontend.network import DiehlCookNetwork
from snn_frontend.numerics import subnormals

PEERS = Path(os.environ.get("ACCEL_SIM_PEERS", Path(__file__).resolve().parents[2] / "shared" /
                            "bench" / "peers"))


def ours(a) -> dict:
    cfg = load_config(None, [
        "data.dataset=mnist", f"network.n_excitatory={a.neurons}", f"encoding.dt_ms={a.dt_ms}",
        f"encoding.present_ms={a.present_ms}", f"encoding.rest_ms={a.rest_ms}",
        f"network.state_reset={a.state_reset}",
        "encoding.max_retries=0", f"seed={a.seed}", f"run.backend={a.backend}",
        f"network.model={a.model}"])
    split = "train" if a.mode == "train" else "test"
    images = load_dataset("mnist", split).images[: a.warmup + a.samples].reshape(-1, 784)
    net = DiehlCookNetwork.from_config(cfg, 784)
    counts = FrontendCounts()
    if a.mode == "train":
        for k in range(a.warmup):
            net.train_sample(images[k], k)
        times = []
        for k in range(a.warmup, a.warmup + a.samples):
            t0 = time.perf_counter()
            net.train_sample(images[k], k, counts=counts)
            times.append(time.perf_counter() - t0)
        s_per_sample = float(np.median(times))
        spread = [float(np.min(times)), float(np.max(times))]
        threads = 1
    else:
        threads = a.threads or os.cpu_count()
        net.infer(images[: a.warmup], 0, threads=threads)
        reps = []
        for _ in range(a.repeats):
            c = FrontendCounts()
            t0 = time.perf_counter()
            net.infer(images[a.warmup:], 1 << 40, threads=threads, counts=c)
            reps.append((time.perf_counter() - t0) / a.samples)
        counts = c
        s_per_sample = float(np.median(reps))
        spread = [float(min(reps)), float(max(reps))]
    n = counts.samples
    bad = subnormals({**net.state.arrays(), "weights": net.weights})
    return {
        "s_per_sample": s_per_sample, "s_per_sample_min_max": spread, "threads": threads,
        "backend": net.backend, "exc_spikes_per_sample": counts.exc_spikes / n,
        "inh_spikes_per_sample": counts.inh_spikes / n,
        "input_spikes_per_sample": counts.input_spikes / n,
        "synaptic_events_per_sample": counts.synaptic_events / n,
        "time_steps_per_sample": counts.time_steps / n,
        "s_per_step": s_per_sample * n / counts.time_steps if a.mode == "train" else None,
        "samples": n, "state_reset": a.state_reset == "true",
        "subnormal_state": bad,
    }


def peer(a) -> dict:
    py = a.peer_python or sys.executable
    if a.peer == "brian2":
        cmd = [py, str(PEERS / "brian2_dc.py"), "--mode", "standalone", "--n", str(a.neurons),
               "--dt", str(a.dt_ms), "--learn", "1" if a.mode == "train" else "0",
               "--present-ms", str(a.present_ms), "--rest-ms", str(a.rest_ms),
               "--samples", "20", "--warmup", "1",
               "--build-dir", tempfile.mkdtemp(prefix="b2sa_")]
    else:
        cmd = [py, str(PEERS / "bindsnet_dc.py"), "--n", str(a.neurons), "--dt", str(a.dt_ms),
               "--learn", "1" if a.mode == "train" else "0", "--time", str(a.present_ms),
               "--samples", "6", "--warmup", "1", "--threads", "1"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=PEERS)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"peer {a.peer} failed ({out.returncode}): {out.stderr[-2000:]}")
    res = json.loads(lines[-1][len("RESULT "):])
    if a.peer == "brian2":
        s = res["s_per_sample_loop"]
        spikes = res["exc_spikes_total"] / res["samples_simulated"]
    else:
        s = res["s_per_sample"]["median"] if isinstance(res["s_per_sample"], dict) else res["s_per_sample"]
        spikes = res["mean_exc_spikes"]
    return {"peer": a.peer, "command": " ".join(cmd), "s_per_sample": s,
            "exc_spikes_per_sample": spikes, "raw": res}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--neurons", type=int, default=400)
    ap.add_argument("--dt-ms", type=float, default=0.5)
    ap.add_argument("--mode", choices=["train", "infer"], default="train")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3, help="infer: timed passes over the samples")
    ap.add_argument("--present-ms", type=float, default=350.0)
    ap.add_argument("--rest-ms", type=float, default=0.0)
    ap.add_argument("--state-reset", choices=["true", "false"],
                    help="network.state_reset (default: true without a rest, false with one)")
    ap.add_argument("--threads", type=int, default=0, help="infer threads (0: all cores)")
    ap.add_argument("--backend", default="auto", choices=["auto", "cython", "numpy"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default="diehl_cook",
                    choices=["diehl_cook", "fspinn", "spikedyn", "asp"], help="network.model")
    ap.add_argument("--peer", choices=["brian2", "bindsnet"])
    ap.add_argument("--peer-python", help="python of the venv where the peer is installed")
    ap.add_argument("--json", action="store_true", help="print only the JSON object")
    a = ap.parse_args()
    if a.state_reset is None:
        a.state_reset = "true" if a.rest_ms == 0 else "false"
    res = {"benchmark": "frontend_dc", "model": a.model, "neurons": a.neurons, "dt_ms": a.dt_ms,
           "mode": a.mode, "present_ms": a.present_ms, "rest_ms": a.rest_ms,
           "machine": machine_info(), **ours(a)}
    if a.peer:
        p = peer(a)
        res["peer"] = p
        res["ratio_vs_peer"] = res["s_per_sample"] / p["s_per_sample"]
    text = json.dumps(res, indent=None if a.json else 2)
    print(text)


if __name__ == "__main__":
    main()
