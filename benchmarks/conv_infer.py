#!/usr/bin/env python
"""Conv SNN inference: our compiled kernels against snnTorch on the same CSNN, batch and
steps, in the same run.

    ACCEL_SIM_DATA=../shared/data python benchmarks/conv_infer.py \
        --peer-python PEERVENV/bin/python --threads 2 --json

The network is configs/nir_nmnist_csnn.yaml's (trained in snnTorch by
benchmarks/train_nmnist_csnn.py, exported to NIR): 1156 -> conv 8x15x15 -> conv 16x7x7
-> 10, on the 100 N-MNIST test recordings at 5 ms steps (60 steps), one batch. Ours: the
NIR import's forward (event-driven conv, `--threads`). snnTorch's: the same modules
rebuilt in its venv with the NIR file's weights (`--peer-python`, this script with
`--peer`), torch with the same number of threads, no gradients. Each side is timed as the
median of `--repeats` forwards after a warm-up; both report their spikes per sample, which
must agree. Prints one JSON object with the machine.
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

ROOT = Path(__file__).resolve().parents[1]
NIR_FILE = ROOT / "tests" / "fixtures" / "nir" / "nmnist_csnn.nir"
DT_MS, STEPS = 5.0, 60


def rasters() -> tuple[np.ndarray, np.ndarray]:
    sys.path.insert(0, str(ROOT))
    from snn_frontend.spiking_data import load_nmnist

    s = load_nmnist(None, "test", STEPS, DT_MS)
    x = np.zeros((len(s), STEPS, 34 * 34), bool)
    for i in range(len(s)):
        a, b = s.offsets[i], s.offsets[i + 1]
        x[i, s.times[a:b], s.units[a:b]] = True
    return x, s.labels


def timed(fn, repeats: int) -> tuple[float, object]:
    out = fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def ours(threads: int, repeats: int) -> dict:
    from snn_frontend.nir_model import read_nir

    x, labels = rasters()
    model = read_nir(NIR_FILE, 1e-4, {"lif": ("euler", "subtract")})
    s, (spikes, last) = timed(lambda: model.forward(x, threads=threads), repeats)
    return {"s_per_batch": s, "backend": model.backend, "samples": len(x), "steps": STEPS,
            "input_spikes_per_sample": float(x.sum() / len(x)),
            "spikes_per_sample": {k: float(v.sum() / len(x)) for k, v in spikes.items()},
            "synops_per_sample": model.synops / len(x),
            "accuracy": float((last.sum(axis=1).argmax(axis=1) == labels).mean())}


def peer(threads: int, repeats: int) -> dict:
    """snnTorch (run in its venv): the training script's modules, the NIR file's weights."""
    import nir
    import snntorch
    import torch
    from snntorch import utils

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from train_nmnist_csnn import network

    torch.set_num_threads(threads)
    g = nir.read(str(NIR_FILE), type_check=False)
    net = network()
    with torch.no_grad():
        for name, node in g.nodes.items():
            if name.isdigit() and hasattr(node, "weight"):
                layer = net[int(name)]
                layer.weight.copy_(torch.as_tensor(np.asarray(node.weight)))
                layer.bias.copy_(torch.as_tensor(np.asarray(node.bias)))
    x, labels = rasters()
    xt = torch.from_numpy(x.astype(np.float32)).reshape(len(x), STEPS, 1, 34, 34)
    record = {}

    def forward():
        utils.reset(net)
        spikes = {"1": 0.0, "3": 0.0, "6": 0.0}
        outs = []
        with torch.no_grad():
            for t in range(STEPS):
                h1 = net[1](net[0](xt[:, t]))
                h3 = net[3](net[2](h1))
                o, _ = net[6](net[5](net[4](h3)))
                spikes["1"] += float(h1.sum())
                spikes["3"] += float(h3.sum())
                spikes["6"] += float(o.sum())
                outs.append(o)
        record.update(spikes=spikes, out=torch.stack(outs).sum(0))
        return record

    s, _ = timed(forward, repeats)
    acc = float((record["out"].argmax(1).numpy() == labels).mean())
    return {"s_per_batch": s, "framework": f"snntorch {snntorch.__version__}",
            "torch": torch.__version__, "threads": threads,
            "spikes_per_sample": {k: v / len(x) for k, v in record["spikes"].items()},
            "accuracy": acc}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer-python", help="python of a venv with torch, snnTorch and nir")
    ap.add_argument("--peer", action="store_true", help="(internal) run snnTorch's side")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.peer:
        print(json.dumps(peer(a.threads, a.repeats)))
        return
    from accel_sim.machine import machine_info

    result = {"benchmark": "conv_infer", "network": "nmnist_csnn", "machine": machine_info(),
              "threads": a.threads, "ours": ours(a.threads, a.repeats)}
    if a.peer_python:
        p = subprocess.run([a.peer_python, __file__, "--peer", "--threads", str(a.threads),
                            "--repeats", str(a.repeats)], capture_output=True, text=True,
                           check=True)
        result["snntorch"] = json.loads(p.stdout.strip().splitlines()[-1])
        result["speedup"] = result["snntorch"]["s_per_batch"] / result["ours"]["s_per_batch"]
    print(json.dumps(result, indent=None if a.json else 2))


if __name__ == "__main__":
    main()
